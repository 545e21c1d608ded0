"""Feature extraction of one shard: decode, window, compute features, write one Zarr store.

A thread pool runs tracks in parallel inside the job (libsndfile, soxr and NumPy/SciPy's FFT
and BLAS release the GIL), submitted as a stream (:func:`pipeline.io.parallel.stream`: a new
task whenever one finishes, a bounded number in flight, no rounds), or a Dask cluster when
one is named; tracks go largest file first (:func:`longest_first`: the threads finish
together), and the main thread appends results to the store in that order while the pool
keeps computing, so writes overlap the compute and there is exactly one writer. The job
imports neither torch, librosa, pandas nor Dask (its fixed cost is that of NumPy, SciPy's
FFT, Zarr and PyArrow). A track that fails becomes a row of the shard's failure table and the
shard completes: ``stage`` is ``decode`` (every refusal of :func:`pipeline.io.audio.iter_windows`:
not a regular file, undecodable, absurd sample rate or sample values, changed while read, too
short), ``features`` (the extractor raised) or ``store`` (features that are NaN or infinite as
float16, which the store writer refuses). Warnings (silent, truncated, decoded by the fallback
decoder, fewer frames than the header declares) are rows with ``level`` ``warning``; the track
is stored.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import AudioError, PipelineError
from pipeline.features.extractors import Extractor, make_extractor
from pipeline.features.failures import write_failures
from pipeline.features.settings import ENCODER_KIND, FeatureSettings
from pipeline.io.audio import DecodeInfo, iter_windows
from pipeline.io.parallel import one_blas_thread, stream
from pipeline.io.progress import Progress
from pipeline.io.store import FeatureStore, StoreWriter
from pipeline.numeric import to_float16

__all__ = [
    "TrackResult",
    "extract_track",
    "extract_shard",
    "derive_shard",
    "longest_first",
    "read_tracks",
]

log = logging.getLogger(__name__)


_WINDOWS_PER_CALL = 4  # larger batches are slower per window on the CPU (cache)


@dataclass(kw_only=True)
class TrackResult:
    """Features of one track, or the reason it has none.

    ``windows`` has shape (n_windows, n_bins, n_frames), float16; ``starts_s`` (n_windows,).
    """

    track_id: str
    path: str
    windows: np.ndarray | None = None
    starts_s: np.ndarray | None = None
    duration_s: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)


def extract_track(*, track_id: str, path: str, extractor: Extractor) -> TrackResult:
    """Decode one file and compute its feature windows; never raises for bad audio.

    Parameters
    ----------
    track_id : str
    path : str
    extractor : Extractor
        Built from the feature set's settings (:func:`pipeline.features.extractors.make_extractor`).

    Returns
    -------
    TrackResult
        ``windows`` is None when the track failed; ``failures`` lists errors and warnings.
    """
    result = TrackResult(track_id=track_id, path=path)
    info = DecodeInfo(path=path)
    settings = extractor.settings
    stage = "decode"
    try:
        feats: list[np.ndarray] = []
        starts: list[float] = []
        for batch_starts, batch in _batched(
            iter_windows(path=path, settings=settings.window, info=info), _WINDOWS_PER_CALL
        ):
            stage = "features"
            feats.append(to_float16(extractor(batch)))  # beyond float16: inf, refused
            starts.extend(batch_starts)
            stage = "decode"
        result.windows = np.concatenate(feats)
        result.starts_s = np.asarray(starts, dtype=np.float32)
        result.duration_s = info.duration_s
    except AudioError as exc:
        result.failures.append(_failure(result, stage="decode", error=str(exc)))
    except Exception as exc:  # noqa: BLE001 - any failure of one track must not kill the shard
        result.failures.append(_failure(result, stage=stage, error=f"{type(exc).__name__}: {exc}"))
    for warning in info.warnings:
        result.failures.append(_failure(result, stage="decode", error=warning, level="warning"))
    return result


def _failure(result: TrackResult, *, stage: str, error: str, level: str = "error") -> dict:
    return {
        "track_id": result.track_id,
        "path": result.path,
        "stage": stage,
        "level": level,
        "error": error,
    }


def _batched(
    windows: Iterator[tuple[float, np.ndarray]], size: int
) -> Iterator[tuple[list[float], np.ndarray]]:
    starts: list[float] = []
    batch: list[np.ndarray] = []
    for start, window in windows:
        starts.append(start)
        batch.append(window)
        if len(batch) == size:
            yield starts, np.stack(batch)
            starts, batch = [], []
    if batch:
        yield starts, np.stack(batch)


def _extract_group(tracks: Sequence[tuple[str, str]], extractor: Extractor) -> list[TrackResult]:
    return [extract_track(track_id=t, path=p, extractor=extractor) for t, p in tracks]


def longest_first(rows: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(track_id, path)`` rows by decreasing file size (ties in their given order).

    The order in which a shard's tracks are computed and stored: with the longest tracks
    first, the threads finish together (a 10-minute track started last would leave the
    others idle while it runs). A file that cannot be stat-ed sorts last; its decoding
    reports why.
    """

    def size(path: str) -> int:
        try:
            return os.stat(path).st_size
        except OSError:
            return -1

    sizes = [size(path) for _, path in rows]
    order = sorted(range(len(rows)), key=lambda i: -sizes[i])  # stable: ties keep their order
    return [rows[i] for i in order]


def read_tracks(path: Path) -> dict[str, list[str]]:
    """A shard list (Parquet with ``track_id`` and ``path``) as columns of strings.

    Read with PyArrow's ``ParquetFile`` alone: ``pq.read_table`` goes through
    ``pyarrow.dataset``, which imports pandas (0.4 s of a job's fixed cost).
    """
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path).read(columns=["track_id", "path"])
    return {name: [str(v) for v in table.column(name).to_pylist()] for name in table.column_names}


def extract_shard(
    *,
    tracks: Mapping[str, Sequence[Any]] | Any,
    settings: FeatureSettings,
    store_path: Path,
    failed_path: Path,
    threads: int = 1,
    compression: str = "none",
    windows_per_shard: int = 0,
    tracks_per_task: int = 4,
    attrs: Mapping[str, Any] | None = None,
    dask_scheduler: str | None = None,
) -> dict[str, int]:
    """Extract one feature set for a shard's tracks into a Zarr store and a failure table.

    Parameters
    ----------
    tracks : pd.DataFrame or mapping of columns
        Columns ``track_id`` and ``path`` (a DataFrame, or :func:`read_tracks`'s dict of
        lists). They are computed and stored largest file first (:func:`longest_first`);
        the store's index maps each track to its windows.
    settings : FeatureSettings
    store_path : Path
        The ``.zarr`` directory to write (see :mod:`pipeline.io.store`).
    failed_path : Path
        Parquet table with :data:`FAILURE_COLUMNS`, written even when empty.
    threads : int
        Threads (the rule's ``threads``).
    compression, windows_per_shard
        Storage options of :class:`pipeline.io.store.StoreWriter`.
    tracks_per_task : int
        Tracks per task; tasks are streamed, so 1 balances best, and a few keep a Dask
        cluster's scheduling costs negligible.
    attrs : mapping, optional
        Extra store attributes (dataset, shard).
    dask_scheduler : str, optional
        Address of a running Dask scheduler; default local threads
        (:func:`pipeline.io.parallel.stream`).

    Returns
    -------
    dict
        ``n_tracks`` (in the shard), ``n_stored``, ``n_failed``, ``n_warnings``, ``n_windows``.
    """
    if settings.kind == ENCODER_KIND:  # a pretrained encoder: its own batched job
        # Imported here, not at the top: it needs torch and transformers, and a log-mel
        # job's fixed cost is kept to NumPy/SciPy (benchmarks/README.md).
        from pipeline.features.encoder_extract import extract_encoder_shard

        return extract_encoder_shard(
            tracks=tracks,
            settings=settings,
            store_path=store_path,
            failed_path=failed_path,
            threads=threads,
            compression=compression,
            windows_per_shard=windows_per_shard,
            tracks_per_task=tracks_per_task,
            attrs=attrs,
            dask_scheduler=dask_scheduler,
        )
    extractor = make_extractor(settings)
    writer = StoreWriter(
        path=store_path,
        window_shape=extractor.shape,
        attrs={**(attrs or {}), "features": settings.to_dict()},
        compression=compression,
        windows_per_shard=windows_per_shard,
    )
    rows = longest_first(
        list(
            zip(
                (str(t) for t in tracks["track_id"]),
                (str(p) for p in tracks["path"]),
                strict=True,
            )
        )
    )
    size = max(int(tracks_per_task), 1)
    groups = [rows[i : i + size] for i in range(0, len(rows), size)]
    failures: list[dict[str, str]] = []
    n_stored = 0
    progress = Progress(total=len(rows), name=f"extract {store_path}", logger=log)
    try:
        with one_blas_thread():  # the pool supplies the parallelism; avoid oversubscription
            for group in stream(
                functools.partial(_extract_group, extractor=extractor),
                groups,
                threads=threads,
                address=dask_scheduler,
            ):
                for result in group:
                    progress.advance(audio_s=result.duration_s)
                    failures.extend(result.failures)
                    if result.windows is None or result.starts_s is None:
                        continue
                    try:
                        writer.add(
                            track_id=result.track_id,
                            windows=result.windows,
                            starts_s=result.starts_s,
                            duration_s=result.duration_s,
                        )
                    except PipelineError as exc:  # non-finite features: never stored
                        error = f"{result.path!r}: {exc}"
                        failures.append(_failure(result, stage="store", error=error))
                        continue
                    n_stored += 1
    finally:
        progress.close()
    counts = writer.close()
    write_failures(failed_path, failures)
    n_failed = sum(f["level"] == "error" for f in failures)
    summary = {
        "n_tracks": len(rows),
        "n_stored": n_stored,
        "n_failed": n_failed,
        "n_warnings": len(failures) - n_failed,
        "n_windows": counts["n_windows"],
    }
    log.info("%s: %s", store_path, summary)
    return summary


def derive_shard(
    *,
    source_store: Path,
    source_failed: Path,
    settings: FeatureSettings,
    store_path: Path,
    failed_path: Path,
    threads: int = 1,
    compression: str = "none",
    windows_per_shard: int = 0,
    attrs: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """A feature set computed from another set's store of the same shard (no decoding).

    An MFCC set is the DCT (and deltas) of the log-mel, so when a dataset extracts both
    with the same log-mel settings (:meth:`FeatureSettings.derives_from`), each file is
    decoded once: the MFCC job reads the log-mel store. The log-mel it starts from is the
    stored float16 one, so the MFCCs differ from those computed from the float32 log-mel by
    the float16 rounding of the log-mel (at most 0.03 dB per band, tested), a fraction of
    a float16 step of the stored MFCCs. Tracks and failures are those of the source.

    Parameters
    ----------
    source_store, source_failed : Path
        The source set's store and failure table of the same shard.
    settings : FeatureSettings
        This set's settings (``derives_from`` the store's).
    store_path, failed_path, threads, compression, windows_per_shard, attrs
        As :func:`extract_shard`.

    Returns
    -------
    dict
        As :func:`extract_shard`.

    Raises
    ------
    PipelineError
        The source store holds settings this set cannot be derived from.
    """
    import pyarrow.parquet as pq

    source = FeatureStore(Path(source_store))
    stored = FeatureSettings.from_dict(source.attrs["features"])
    if not settings.derives_from(stored):
        raise PipelineError(
            f"{str(source_store)!r}: features {settings.name!r} cannot be derived from the "
            f"stored {stored.name!r} (kind {stored.kind!r}, other log-mel settings)"
        )
    extractor = make_extractor(settings)
    writer = StoreWriter(
        path=store_path,
        window_shape=extractor.shape,
        attrs={**(attrs or {}), "features": settings.to_dict(), "derived_from": stored.name},
        compression=compression,
        windows_per_shard=windows_per_shard,
    )
    index = source.index()
    starts = source.window_starts()
    windows = source.windows
    offsets = index["offsets"]

    def derive(track: int) -> np.ndarray:
        db = np.asarray(windows[int(offsets[track]) : int(offsets[track + 1])], np.float32)
        return to_float16(extractor.from_log_mel(db))

    with one_blas_thread():
        for track, feats in enumerate(stream(derive, range(len(offsets) - 1), threads=threads)):
            a, b = int(offsets[track]), int(offsets[track + 1])
            writer.add(
                track_id=str(index["track_id"][track]),
                windows=feats,
                starts_s=starts[a:b],
                duration_s=float(index["duration_s"][track]),
            )
    counts = writer.close()
    failures = pq.ParquetFile(source_failed).read().to_pylist()  # no pandas (read_tracks)
    write_failures(failed_path, failures)
    n_failed = sum(f["level"] == "error" for f in failures)
    summary = {
        "n_tracks": counts["n_tracks"] + n_failed,
        "n_stored": counts["n_tracks"],
        "n_failed": n_failed,
        "n_warnings": len(failures) - n_failed,
        "n_windows": counts["n_windows"],
    }
    log.info("%s (from %s): %s", store_path, source_store, summary)
    return summary
