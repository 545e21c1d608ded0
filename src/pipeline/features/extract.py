"""Feature extraction of one shard: decode, window, compute features, write one Zarr store.

Dask's threaded scheduler runs tracks in parallel inside the job (libsndfile, soxr and torch
release the GIL); the main thread appends results to the store in track order, so there is
exactly one writer. A track that fails becomes a row of the shard's failure table and the
shard completes: ``stage`` is ``decode`` (every refusal of :func:`pipeline.io.audio.iter_windows`:
not a regular file, undecodable, absurd sample rate or sample values, changed while read, too
short), ``features`` (the extractor raised) or ``store`` (features that are NaN or infinite as
float16, which the store writer refuses). Warnings (silent, truncated, decoded by the fallback
decoder, fewer frames than the header declares) are rows with ``level`` ``warning``; the track
is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import torch

from pipeline.errors import AudioError, PipelineError
from pipeline.features.encoder_extract import extract_encoder_shard
from pipeline.features.extractors import Extractor, make_extractor
from pipeline.features.index import FAILURE_COLUMNS
from pipeline.features.settings import ENCODER_KIND, FeatureSettings
from pipeline.io.audio import DecodeInfo, iter_windows
from pipeline.io.parallel import compute
from pipeline.io.progress import Progress
from pipeline.io.store import StoreWriter

__all__ = ["TrackResult", "extract_track", "extract_shard"]

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
            with np.errstate(over="ignore"):  # beyond float16 is inf: the store refuses it
                feats.append(extractor(batch).astype(np.float16))
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


def extract_shard(
    *,
    tracks: pd.DataFrame,
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
    tracks : pd.DataFrame
        Columns ``track_id`` and ``path``, in the order they are stored.
    settings : FeatureSettings
    store_path : Path
        The ``.zarr`` directory to write (see :mod:`pipeline.io.store`).
    failed_path : Path
        Parquet table with :data:`FAILURE_COLUMNS`, written even when empty.
    threads : int
        Dask threads (the rule's ``threads``).
    compression, windows_per_shard
        Storage options of :class:`pipeline.io.store.StoreWriter`.
    tracks_per_task : int
        Tracks per Dask task; tasks are kept coarse so scheduling costs stay negligible.
    attrs : mapping, optional
        Extra store attributes (dataset, shard).
    dask_scheduler : str, optional
        Address of a running Dask scheduler; default local threads
        (:func:`pipeline.io.parallel.compute`).

    Returns
    -------
    dict
        ``n_tracks`` (in the shard), ``n_stored``, ``n_failed``, ``n_warnings``, ``n_windows``.
    """
    if settings.kind == ENCODER_KIND:  # a pretrained encoder: its own batched job
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
    rows = list(zip(tracks["track_id"].astype(str), tracks["path"].astype(str), strict=True))
    groups = [rows[i : i + tracks_per_task] for i in range(0, len(rows), tracks_per_task)]
    per_round = max(threads, 1) * 4
    failures: list[dict[str, str]] = []
    n_stored = 0
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Dask supplies the parallelism; avoid oversubscription
    progress = Progress(total=len(rows), name=f"extract {store_path}", logger=log)
    try:
        for i in range(0, len(groups), per_round):
            tasks = [dask.delayed(_extract_group)(g, extractor) for g in groups[i : i + per_round]]
            for group in compute(tasks, threads=threads, address=dask_scheduler):
                for result in group:
                    progress.advance(audio_s=result.duration_s)
                    failures.extend(result.failures)
                    if result.windows is not None:
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
        torch.set_num_threads(torch_threads)
        progress.close()
    counts = writer.close()
    table = pd.DataFrame(failures, columns=FAILURE_COLUMNS).astype(str)
    Path(failed_path).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(failed_path, index=False)
    summary = {
        "n_tracks": len(rows),
        "n_stored": n_stored,
        "n_failed": int((table["level"] == "error").sum()),
        "n_warnings": int((table["level"] == "warning").sum()),
        "n_windows": counts["n_windows"],
    }
    log.info("%s: %s", store_path, summary)
    return summary
