"""Dataset-wide views over all shard stores of a feature set: the track index and band stats.

Both read the stores the ``extract_features`` jobs wrote; the band statistics are a Dask
reduction over blocks of windows, counting only frames that hold audio (the zero padding of a
short track's last window would otherwise pull the mean down to the floor value).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd

from pipeline.data import audio_frames
from pipeline.errors import PipelineError
from pipeline.extract import FAILURE_COLUMNS
from pipeline.features import FeatureSettings
from pipeline.io import write_json
from pipeline.parallel import compute
from pipeline.store import FeatureStore

__all__ = [
    "build_index",
    "band_statistics",
    "collect_failures",
    "write_feature_index",
    "INDEX_COLUMNS",
]

log = logging.getLogger(__name__)

INDEX_COLUMNS = [
    "track_id",
    "store",
    "track",
    "start",
    "stop",
    "n_windows",
    "duration_s",
    "split",
    "tags",
]


def build_index(*, stores: Sequence[Path], manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per stored track: where its windows are, with its split and tags.

    Parameters
    ----------
    stores : sequence of Path
        The feature set's shard stores.
    manifest : pd.DataFrame
        The dataset's manifest (``track_id``, ``split``, ``tags``).

    Returns
    -------
    pd.DataFrame
        :data:`INDEX_COLUMNS`; ``store`` is the store path, ``track`` the track's position in
        it and ``start:stop`` its rows of the store's ``windows`` array.
    """
    parts = []
    for path in stores:
        idx = FeatureStore(Path(path)).index()
        offsets = idx["offsets"]
        parts.append(
            pd.DataFrame(
                {
                    "track_id": idx["track_id"].astype(str),
                    "store": str(path),
                    "track": np.arange(len(idx["track_id"]), dtype=np.int64),
                    "start": offsets[:-1],
                    "stop": offsets[1:],
                    "n_windows": np.diff(offsets),
                    "duration_s": idx["duration_s"].astype(float),
                }
            )
        )
    index = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=INDEX_COLUMNS)
    meta = manifest[["track_id", "split", "tags"]]
    index = index.drop(columns=["split", "tags"], errors="ignore").merge(
        meta, on="track_id", how="left", validate="one_to_one"
    )
    unknown = index["split"].isna()
    if unknown.any():
        raise PipelineError(
            f"{int(unknown.sum())} stored tracks are not in the manifest, e.g. "
            f"{index.loc[unknown, 'track_id'].iloc[0]!r}: re-run the feature extraction"
        )
    return index[INDEX_COLUMNS].sort_values("track_id", kind="stable").reset_index(drop=True)


def _block_moments(
    store: Path, rows: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-band sum, sum of squares and frame count over some windows of one store."""
    windows = FeatureStore(store).windows
    lo, hi = int(rows.min()), int(rows.max()) + 1
    block = windows[lo:hi][rows - lo].astype(np.float64)  # (n, bins, frames)
    mask = np.arange(block.shape[-1])[None, :] < valid[:, None]  # (n, frames)
    masked = block * mask[:, None, :]
    total = masked.sum(axis=(0, 2))
    squares = (masked * block).sum(axis=(0, 2))
    count = np.full(block.shape[1], mask.sum(), dtype=np.float64)
    return total, squares, count


def band_statistics(
    *,
    index: pd.DataFrame,
    split: str = "train",
    threads: int = 1,
    block_windows: int = 64,
    dask_scheduler: str | None = None,
) -> dict[str, Any]:
    """Per-band mean and standard deviation over the windows of one split.

    Parameters
    ----------
    index : pd.DataFrame
        From :func:`build_index`.
    split : str
        Tracks of this split are counted (the train split, so nothing leaks from test).
    threads : int
        Dask threads.
    block_windows : int
        Windows per Dask task.
    dask_scheduler : str, optional
        Address of a running Dask scheduler; default local threads.

    Returns
    -------
    dict
        ``mean`` and ``std`` (lists, one value per band), ``n_windows``, ``n_frames``,
        ``split``.
    """
    chosen = index[index["split"] == split]
    if chosen.empty or chosen["n_windows"].sum() == 0:
        raise PipelineError(f"no stored windows in split {split!r}: cannot compute band stats")
    tasks = []
    for store, part in chosen.groupby("store", sort=True):
        shard_store = FeatureStore(Path(store))
        settings = shard_store.attrs["features"]
        starts_all = shard_store.group["window_start_s"][:]
        spans = zip(part["start"], part["stop"], strict=True)
        rows = np.concatenate([np.arange(a, b) for a, b in spans])
        durations = np.repeat(part["duration_s"].to_numpy(float), part["n_windows"].to_numpy())
        valid = audio_frames(
            starts_s=starts_all[rows],
            duration_s=durations,
            features=FeatureSettings.from_dict(settings),
        )
        for i in range(0, len(rows), block_windows):
            sl = slice(i, i + block_windows)
            tasks.append(dask.delayed(_block_moments)(Path(store), rows[sl], valid[sl]))
    results = compute(tasks, threads=threads, address=dask_scheduler)
    total = sum(r[0] for r in results)
    squares = sum(r[1] for r in results)
    count = sum(r[2] for r in results)
    mean = total / count
    var = np.maximum(squares / count - mean**2, 0.0)
    return {
        "split": split,
        "mean": [float(v) for v in mean],
        "std": [float(math.sqrt(v)) for v in var],
        "n_windows": int(chosen["n_windows"].sum()),
        "n_frames": int(count[0]),
    }


def collect_failures(paths: Sequence[Path]) -> pd.DataFrame:
    """All shards' failure tables in one, with a ``shard`` column."""
    parts = [pd.read_parquet(p).assign(shard=Path(p).name.split(".")[0]) for p in paths]
    if not parts:
        return pd.DataFrame(columns=[*FAILURE_COLUMNS, "shard"])
    return pd.concat(parts, ignore_index=True)


def write_feature_index(
    *,
    manifest_path: Path,
    stores: Sequence[Path],
    failed: Sequence[Path],
    index_path: Path,
    failed_path: Path,
    summary_path: Path,
) -> dict[str, Any]:
    """Write a feature set's index, its failures (CSV, for people) and a summary.

    Returns
    -------
    dict
        The summary: tracks in the manifest, stored, failed, warnings, windows, and the
        number of failures per stage.
    """
    manifest = pd.read_parquet(manifest_path)
    index = build_index(stores=stores, manifest=manifest)
    index.to_parquet(index_path, index=False)
    failures = collect_failures(failed)
    failures.to_csv(failed_path, index=False)
    errors = failures[failures["level"] == "error"]
    summary = {
        "n_tracks": len(manifest),
        "n_stored": len(index),
        "n_failed": len(errors),
        "n_warnings": int((failures["level"] == "warning").sum()),
        "n_windows": int(index["n_windows"].sum()),
        "failed_by_stage": {str(k): int(v) for k, v in errors["stage"].value_counts().items()},
        "stored_by_split": {str(k): int(v) for k, v in index["split"].value_counts().items()},
    }
    write_json(summary, summary_path)
    log.info(
        "%s: %d of %d tracks stored, %d failed, %d warnings (details: %s)",
        index_path.parent,
        summary["n_stored"],
        summary["n_tracks"],
        summary["n_failed"],
        summary["n_warnings"],
        failed_path,
    )
    if summary["n_failed"]:
        log.warning("%d tracks failed; see %s", summary["n_failed"], failed_path)
    return summary
