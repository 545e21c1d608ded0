"""Window geometry on stored features: frames holding audio, crops, middle blocks, pooling,
normalisation, the hop between windows in frames, and reading rows of a store's windows.

Pure NumPy (no torch): the feature statistics, the taggers and the trainers share these rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pipeline.errors import PipelineError, check_int
from pipeline.features.settings import ENCODER_KIND, FeatureSettings

__all__ = [
    "audio_frames",
    "chunk_grid",
    "crop_starts",
    "normaliser",
    "pool_sequence",
    "hop_frames",
    "middle_block",
    "store_windows",
]


# --------------------------------------------------------------------------------------------
# Pure helpers (shared with training, the tagger and prediction)
# --------------------------------------------------------------------------------------------


def middle_block(n_windows: int, *, max_windows: int) -> tuple[int, int]:
    """Rows ``start:stop`` of a track's windows that a sequence model reads outside training.

    All windows of a track of at most ``max_windows``; else the middle ``max_windows``
    (validation, prediction and tagging; training draws a random block instead).

    Examples
    --------
    >>> middle_block(3, max_windows=10)
    (0, 3)
    >>> middle_block(15, max_windows=10)
    (2, 12)
    """
    extra = n_windows - max_windows
    start = extra // 2 if extra > 0 else 0
    return start, start + min(n_windows, max_windows)


def audio_frames(
    *, starts_s: np.ndarray, duration_s: np.ndarray | float, features: FeatureSettings
) -> np.ndarray:
    """Frames of each window that hold audio rather than the zero padding of a short tail.

    The same rule as the band statistics: ``ceil(audio samples left / hop) + 1`` frames,
    never more than the window's centred frames nor ``n_frames``, and at least 1.

    Parameters
    ----------
    starts_s : np.ndarray, shape (n_windows,)
        Start of each window in its track, in seconds.
    duration_s : np.ndarray, shape (n_windows,), or float
        Duration of each window's track, in seconds.
    features : FeatureSettings

    Returns
    -------
    np.ndarray, shape (n_windows,), int64
    """
    starts = np.asarray(starts_s, dtype=np.float64)
    if features.kind == ENCODER_KIND:  # a "frame" is an embedding dimension: all hold audio
        return np.full(starts.shape, features.n_frames, dtype=np.int64)
    remaining = np.maximum(np.asarray(duration_s, dtype=np.float64) - starts, 0.0)
    frames = np.ceil(remaining * features.sample_rate / features.hop_length).astype(np.int64) + 1
    return np.clip(np.minimum(frames, features.natural_n_frames), 1, features.n_frames)


def crop_starts(*, valid_frames: np.ndarray, crop_frames: int, n_chunks: int) -> np.ndarray:
    """Evenly spaced crop starts inside each window's audio frames (evaluation of crop models).

    Parameters
    ----------
    valid_frames : np.ndarray, shape (n_windows,)
        Frames holding audio (:func:`audio_frames`).
    crop_frames : int
        Crop length.
    n_chunks : int
        Crops per window (Won et al. 2020 use 16).

    Returns
    -------
    np.ndarray, shape (n_windows, n_chunks), int64
        Starts in ``[0, max(valid - crop, 0)]``; a window with less audio than one crop has
        all crops at 0.
    """
    last = np.maximum(np.asarray(valid_frames, dtype=np.int64) - crop_frames, 0)  # (n,)
    steps = np.linspace(0.0, 1.0, n_chunks) if n_chunks > 1 else np.zeros(1)
    return np.round(last[:, None] * steps[None, :]).astype(np.int64)


def chunk_grid(*, valid_frames: np.ndarray, chunk_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive chunks covering each window's audio frames (a taggram at a crop model's
    own resolution).

    A window with ``v`` frames of audio gets ``ceil(v / chunk_frames)`` chunks starting at
    ``0, c, 2c, ...``; the last one, when it would run past the audio, starts at ``v - c``
    instead, so that every chunk holds audio only (it then overlaps the one before). A
    window with less audio than one chunk gets one chunk at 0.

    Parameters
    ----------
    valid_frames : np.ndarray, shape (n_windows,)
        Frames holding audio (:func:`audio_frames`).
    chunk_frames : int
        Chunk length (the model's crop length), >= 1.

    Returns
    -------
    window : np.ndarray, shape (n_chunks,), int64
        The window of each chunk (chunks in window order, then time order).
    start : np.ndarray, shape (n_chunks,), int64
        First frame of each chunk in its window.
    """
    check_int("chunk_frames", chunk_frames, minimum=1, error=PipelineError)
    valid = np.maximum(np.asarray(valid_frames, dtype=np.int64), 1)  # (n,)
    counts = -(-valid // chunk_frames)  # ceil
    window = np.repeat(np.arange(len(valid)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    start = (np.arange(len(window)) - first) * chunk_frames
    last = np.maximum(valid - chunk_frames, 0)[window]
    return window, np.minimum(start, last).astype(np.int64)


def normaliser(stats: Mapping[str, Any], *, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and inverse std as float32 arrays of shape (n_bins, 1).

    A band with (near) zero variance is only centred (inverse std 1), never divided by 0.
    """
    try:
        mean = np.asarray(stats["mean"], dtype=np.float32)
        std = np.asarray(stats["std"], dtype=np.float32)
    except KeyError as exc:
        raise PipelineError(f"band statistics lack {exc.args[0]!r}: {sorted(stats)}") from exc
    if mean.shape != (n_bins,) or std.shape != (n_bins,):
        raise PipelineError(
            f"band statistics have {mean.shape[0]} means and {std.shape[0]} stds, "
            f"but the windows have {n_bins} bands"
        )
    inv_std = np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-6), 1.0).astype(np.float32)
    return mean[:, None], inv_std[:, None]


def pool_sequence(
    windows: np.ndarray, *, valid_frames: np.ndarray, hop_frames: int, pool_frames: int
) -> np.ndarray:
    """A track's consecutive windows as one time-pooled sequence of frame vectors.

    Each window keeps its first ``min(valid, hop_frames)`` frames (the last window keeps all
    its valid frames), so overlapping windows are not counted twice and end padding is
    dropped; then consecutive groups of ``pool_frames`` frames are averaged (the last group
    may be shorter).

    Parameters
    ----------
    windows : np.ndarray, shape (n_windows, n_bins, n_frames)
        Normalised windows, in order.
    valid_frames : np.ndarray, shape (n_windows,)
    hop_frames : int
        Frames between window starts.
    pool_frames : int

    Returns
    -------
    np.ndarray, shape (ceil(total_frames / pool_frames), n_bins), float32
    """
    n = len(windows)
    if n == 0:
        raise PipelineError("pool_sequence: a track needs at least one window")
    keep = np.minimum(np.asarray(valid_frames, dtype=np.int64), hop_frames)
    keep[-1] = valid_frames[-1]
    frames = np.concatenate([w[:, :k] for w, k in zip(windows, keep, strict=True)], axis=1)
    total = frames.shape[1]  # frames: (n_bins, total)
    edges = np.arange(0, total, pool_frames)
    sums = np.add.reduceat(frames.astype(np.float32, copy=False), edges, axis=1)
    counts = np.diff(np.append(edges, total)).astype(np.float32)
    return np.ascontiguousarray((sums / counts[None, :]).T)  # (time, n_bins)


def hop_frames(features: FeatureSettings) -> int:
    """Feature frames between the starts of consecutive windows (at most ``n_frames``)."""
    hop = int(round(features.window.hop / features.hop_length))
    return max(1, min(hop, features.n_frames))


def store_windows(*, store: str | Path, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a store's windows, shape (n, n_bins, n_frames), float16."""
    try:
        arr = zarr.open_array(f"{store}/windows", mode="r")
    except (FileNotFoundError, zarr.errors.ArrayNotFoundError) as exc:
        raise PipelineError(f"{str(store)!r}: no windows array ({exc})") from exc
    return np.asarray(arr[start:stop])
