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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-band sum, sum of squares and frame count over some windows of one store, and the
    rows among them that hold a non-finite value."""
    windows = FeatureStore(store).windows
    lo, hi = int(rows.min()), int(rows.max()) + 1
    block = np.asarray(windows[lo:hi])[rows - lo].astype(np.float64)  # (n, bins, frames)
    mask = np.arange(block.shape[-1])[None, :] < valid[:, None]  # (n, frames)
    masked = np.where(mask[:, None, :], block, 0.0)
    total = masked.sum(axis=(0, 2))
    squares = (masked * masked).sum(axis=(0, 2))
    count = np.full(block.shape[1], mask.sum(), dtype=np.float64)
    bad_rows = rows[~np.isfinite(block).all(axis=(1, 2))]
    return total, squares, count, bad_rows


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
        ``split``. Every value is finite.

    Raises
    ------
    PipelineError
        The split has no stored window or no frame of audio, or a band's statistics are not
        finite (a store holds NaN or infinity): the message names the feature set, the bands
        and the first tracks holding such values. Statistics are never written with NaN.
    """
    chosen = index[index["split"] == split]
    if chosen.empty or chosen["n_windows"].sum() == 0:
        raise PipelineError(f"no stored windows in split {split!r}: cannot compute band stats")
    tasks = []
    names: set[str] = set()
    parts: list[pd.DataFrame] = []
    stores: list[str] = []  # the store of each task
    for store, part in chosen.groupby("store", sort=True):
        shard_store = FeatureStore(Path(store))
        settings = shard_store.attrs["features"]
        names.add(str(settings.get("name", "?")))
        parts.append(part)
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
            stores.append(str(store))
    results = compute(tasks, threads=threads, address=dask_scheduler)
    total = sum(r[0] for r in results)
    squares = sum(r[1] for r in results)
    count = sum(r[2] for r in results)
    if count[0] == 0:
        raise PipelineError(
            f"feature set {', '.join(sorted(names))!r}: the windows of split {split!r} hold no "
            "frame of audio: cannot compute band stats"
        )
    mean = total / count
    with np.errstate(invalid="ignore"):  # inf - inf: a stored infinity, refused just below
        var = np.maximum(squares / count - mean**2, 0.0)
    _check_finite(
        mean=mean,
        var=var,
        bad_rows=[(store, r[3]) for store, r in zip(stores, results, strict=True)],
        parts=parts,
        feature_set=", ".join(sorted(names)),
        split=split,
    )
    return {
        "split": split,
        "mean": [float(v) for v in mean],
        "std": [float(math.sqrt(v)) for v in var],
        "n_windows": int(chosen["n_windows"].sum()),
        "n_frames": int(count[0]),
    }


def _check_finite(
    *,
    mean: np.ndarray,
    var: np.ndarray,
    bad_rows: list[tuple[str, np.ndarray]],
    parts: list[pd.DataFrame],
    feature_set: str,
    split: str,
) -> None:
    """Raise PipelineError when a band's mean or variance is not finite (a store holds NaN or
    infinity), naming the feature set, the bands and the first tracks that hold them."""
    bands = np.flatnonzero(~(np.isfinite(mean) & np.isfinite(var)))
    if bands.size == 0:
        return
    by_store = pd.concat(parts, ignore_index=True)
    tracks: list[str] = []
    for store, rows in bad_rows:
        rows_of = by_store[by_store["store"] == store]
        for row in rows:
            hit = rows_of[(rows_of["start"] <= row) & (row < rows_of["stop"])]
            tracks += hit["track_id"].astype(str).tolist()
    unique = list(dict.fromkeys(tracks))
    named = ", ".join(repr(t) for t in unique[:3]) + (", ..." if len(unique) > 3 else "")
    shown = ", ".join(map(str, bands[:10].tolist())) + (", ..." if bands.size > 10 else "")
    raise PipelineError(
        f"feature set {feature_set!r}, split {split!r}: band statistics are not finite in "
        f"{bands.size} of {mean.size} band(s) ({shown}): the stores hold NaN or infinity"
        + (f" in {len(unique)} track(s) ({named})" if unique else "")
        + ": re-extract those features"
    )
