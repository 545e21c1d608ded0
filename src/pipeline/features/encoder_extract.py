"""Extraction of one shard with a pretrained encoder (``kind: encoder``) into the same Zarr
store layout and failure table as the other feature kinds
(:func:`pipeline.features.extract.extract_shard` hands these feature sets here).

The encoder is loaded once per job, on the GPU when the job has one. Dask threads decode a
round of tracks (libsndfile and soxr release the GIL) while the model embeds: the windows of
several tracks go through the model together (``encoder.batch_size`` chunks per forward
pass), then each track's windows are appended to the store in track order (one writer). A
track that fails to decode, or whose embeddings fail, becomes a row of the failure table;
the shard completes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np

from pipeline.errors import AudioError, PipelineError
from pipeline.features.encoder import EncoderExtractor
from pipeline.features.failures import write_failures
from pipeline.features.settings import FeatureSettings
from pipeline.io.audio import DecodeInfo, iter_windows
from pipeline.io.parallel import compute
from pipeline.io.store import StoreWriter

__all__ = ["DecodedTrack", "decode_track", "extract_encoder_shard"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class DecodedTrack:
    """The audio windows of one track (``windows`` (n, samples) float32), or why none."""

    track_id: str
    path: str
    windows: np.ndarray | None = None
    starts_s: np.ndarray | None = None
    duration_s: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)

    def fail(self, *, stage: str, error: str, level: str = "error") -> None:
        """Add a failure row."""
        self.failures.append(
            {
                "track_id": self.track_id,
                "path": self.path,
                "stage": stage,
                "level": level,
                "error": error,
            }
        )


def decode_track(*, track_id: str, path: str, settings: FeatureSettings) -> DecodedTrack:
    """Decode one file into windows at the feature set's rate; never raises for bad audio."""
    track = DecodedTrack(track_id=track_id, path=path)
    info = DecodeInfo(path=path)
    try:
        pairs = list(iter_windows(path=path, settings=settings.window, info=info))
        track.starts_s = np.asarray([s for s, _ in pairs], dtype=np.float32)
        track.windows = np.stack([w for _, w in pairs]).astype(np.float32, copy=False)
        track.duration_s = info.duration_s
    except AudioError as exc:
        track.fail(stage="decode", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - one track must not kill the shard
        track.fail(stage="decode", error=f"{type(exc).__name__}: {exc}")
    for warning in info.warnings:
        track.fail(stage="decode", error=warning, level="warning")
    return track


def _decode_group(rows: Sequence[tuple[str, str]], settings: FeatureSettings) -> list[DecodedTrack]:
    return [decode_track(track_id=t, path=p, settings=settings) for t, p in rows]


def _embed(
    tracks: Sequence[DecodedTrack], extractor: EncoderExtractor, *, windows_per_call: int
) -> list[np.ndarray | None]:
    """Embeddings of each decoded track (None for failed ones), several tracks per call."""
    ok = [t for t in tracks if t.windows is not None]
    if not ok:
        return [None] * len(tracks)
    counts = [len(t.windows) for t in ok if t.windows is not None]
    stacked = np.concatenate([t.windows for t in ok if t.windows is not None])
    try:
        out = np.concatenate(
            [
                extractor(stacked[i : i + windows_per_call])
                for i in range(0, len(stacked), windows_per_call)
            ]
        )
    except Exception:  # noqa: BLE001 - retry one track at a time to find the bad one
        if len(ok) == 1:
            raise
        results: list[np.ndarray | None] = []
        for track in tracks:
            try:
                results.append(_embed([track], extractor, windows_per_call=windows_per_call)[0])
            except Exception as exc:  # noqa: BLE001 - this track fails, the others go on
                track.fail(stage="features", error=f"{type(exc).__name__}: {exc}")
                results.append(None)
        return results
    pieces = iter(np.split(out, np.cumsum(counts)[:-1]))
    return [next(pieces) if t.windows is not None else None for t in tracks]


def extract_encoder_shard(
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
    device: str | None = None,
    extractor: EncoderExtractor | None = None,
) -> dict[str, int]:
    """Embed one shard's tracks into a Zarr store and a failure table.

    Parameters are those of :func:`pipeline.features.extract.extract_shard`, plus
    ``device`` (None: CUDA when available) and an already built ``extractor``. The store's
    ``windows`` are ``(n_windows, n_layers, dim)``; its attributes hold the feature settings
    with the encoder's ``n_layers``, ``dim`` and ``licence`` filled in, and ``encoder``
    (model id, revision, licence, family).

    Returns
    -------
    dict
        ``n_tracks``, ``n_stored``, ``n_failed``, ``n_warnings``, ``n_windows``.
    """
    extractor = extractor or EncoderExtractor(settings, device=device)
    resolved = extractor.settings
    assert resolved.encoder is not None
    enc = extractor.encoder
    writer = StoreWriter(
        path=store_path,
        window_shape=extractor.shape,
        attrs={
            **(attrs or {}),
            "features": resolved.to_dict(),
            "encoder": {
                "model": resolved.encoder.model,
                "revision": resolved.encoder.revision,
                "licence": resolved.encoder.licence,
                "family": enc.family,
                "device": str(enc.device),
            },
        },
        compression=compression,
        windows_per_shard=windows_per_shard,
    )
    rows = list(
        zip(
            (str(t) for t in tracks["track_id"]),
            (str(p) for p in tracks["path"]),
            strict=True,
        )
    )
    groups = [rows[i : i + tracks_per_task] for i in range(0, len(rows), tracks_per_task)]
    per_round = max(threads, 1) * 2
    failures: list[dict[str, str]] = []
    n_stored = 0
    # windows per model call: enough chunks to fill batch_size
    windows_per_call = max(1, resolved.encoder.batch_size)
    for i in range(0, len(groups), per_round):
        tasks = [dask.delayed(_decode_group)(g, settings) for g in groups[i : i + per_round]]
        decoded = [
            t for group in compute(tasks, threads=threads, address=dask_scheduler) for t in group
        ]
        try:
            embedded = _embed(decoded, extractor, windows_per_call=windows_per_call)
        except Exception as exc:  # noqa: BLE001 - only reached for a single bad track
            embedded = [None] * len(decoded)
            for track in decoded:
                if track.windows is not None:
                    track.fail(stage="features", error=f"{type(exc).__name__}: {exc}")
        for track, windows in zip(decoded, embedded, strict=True):
            failures.extend(track.failures)
            if windows is None or track.starts_s is None:
                continue
            try:
                writer.add(
                    track_id=track.track_id,
                    windows=windows,
                    starts_s=track.starts_s,
                    duration_s=track.duration_s,
                )
            except PipelineError as exc:
                failures.append(
                    {
                        "track_id": track.track_id,
                        "path": track.path,
                        "stage": "store",
                        "level": "error",
                        "error": f"{track.path!r}: {exc}",
                    }
                )
                continue
            n_stored += 1
    counts = writer.close()
    write_failures(Path(failed_path), failures)
    summary = {
        "n_tracks": len(rows),
        "n_stored": n_stored,
        "n_failed": sum(f["level"] == "error" for f in failures),
        "n_warnings": sum(f["level"] == "warning" for f in failures),
        "n_windows": counts["n_windows"],
    }
    log.info("%s (%s on %s): %s", store_path, resolved.encoder.model, enc.device, summary)
    return summary
