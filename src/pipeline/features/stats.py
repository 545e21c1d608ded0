"""Dataset-wide band statistics: a Dask reduction of per-band mean and std over the train split's
stored windows (padding excluded)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd

from pipeline.errors import PipelineError
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import audio_frames
from pipeline.io.parallel import compute
from pipeline.io.store import FeatureStore

__all__ = ["band_statistics"]


def _block_moments(
    store: Path, rows: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-band sum, sum of squares and frame count over some windows of one store."""
    windows = FeatureStore(store).windows
    lo, hi = int(rows.min()), int(rows.max()) + 1
    block = np.asarray(windows[lo:hi])[rows - lo].astype(np.float64)  # (n, bins, frames)
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
        starts_all = shard_store.window_starts()
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
