"""Frames, K-means codebooks and codeword histograms (the first stage of bag of frames).

A track's frames are its stored feature frames that hold audio, normalised with the train
split's band statistics (:func:`track_frames`); a codebook is a K-means clustering of frames
(:func:`fit_codebook`); a histogram is the fraction of frames nearest to each codeword, or
with soft assignment each frame's ``softmax(-d^2 / bandwidth)`` weights over the codewords
(:func:`codeword_weights`, :func:`histogram`).
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import PipelineError
from pipeline.features.windows import pool_sequence

__all__ = ["codeword_weights", "fit_codebook", "histogram", "track_frames"]

#: Frames assigned to codewords per matrix product (bounds memory for long tracks).
_CHUNK = 32_768


def track_frames(
    windows: np.ndarray,
    valid: np.ndarray,
    *,
    mean: np.ndarray,
    inv_std: np.ndarray,
    hop: int,
) -> np.ndarray:
    """A track's normalised frames that hold audio, in order.

    Parameters
    ----------
    windows : np.ndarray, shape (n_windows, n_bins, n_frames)
        Stored (raw) windows of one track.
    valid : np.ndarray, shape (n_windows,)
    mean, inv_std : np.ndarray, shape (n_bins, 1)
    hop : int
        Frames between window starts (overlapping frames count once).

    Returns
    -------
    np.ndarray, shape (total_frames, n_bins), float32
    """
    x = (windows.astype(np.float32) - mean) * inv_std  # (n_windows, n_bins, n_frames)
    return pool_sequence(x, valid_frames=valid, hop_frames=hop, pool_frames=1)


def fit_codebook(frames: np.ndarray, *, size: int, seed: int) -> tuple[np.ndarray, float]:
    """K-means codebook of frames and its bandwidth.

    Parameters
    ----------
    frames : np.ndarray, shape (n, n_bins)
    size : int
        Codewords; at most ``n``.
    seed : int

    Returns
    -------
    codebook : np.ndarray, shape (size, n_bins), float32
    bandwidth : float
        Mean squared distance of a frame to its nearest codeword (soft assignment's scale).
    """
    if len(frames) < size:
        raise PipelineError(
            f"bag_of_frames: {len(frames)} train frames cannot make a codebook of "
            f"{size} codewords (codebook_size)"
        )
    from sklearn.cluster import MiniBatchKMeans  # sklearn only when fitting

    kmeans = MiniBatchKMeans(
        n_clusters=size,
        random_state=seed,
        n_init=3,
        batch_size=min(4096, len(frames)),
        max_iter=100,
    )
    kmeans.fit(frames.astype(np.float32))
    codebook = kmeans.cluster_centers_.astype(np.float32)  # (K, n_bins)
    nearest = np.concatenate(
        [
            _squared_distances(frames[i : i + _CHUNK], codebook).min(axis=1)
            for i in range(0, len(frames), _CHUNK)
        ]
    )
    return codebook, float(max(nearest.mean(), 1e-6))


def _squared_distances(frames: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """(T, d), (K, d) -> squared Euclidean distances (T, K), float32, >= 0."""
    d2 = (
        (frames * frames).sum(axis=1, keepdims=True)
        - 2.0 * frames @ codebook.T
        + (codebook * codebook).sum(axis=1)[None, :]
    )  # (T, K)
    return np.maximum(d2, 0.0)


def codeword_weights(
    frames: np.ndarray, codebook: np.ndarray, *, soft: bool, bandwidth: float
) -> np.ndarray:
    """Each frame's weight on each codeword (rows sum to 1).

    Parameters
    ----------
    frames : np.ndarray, shape (T, n_bins)
    codebook : np.ndarray, shape (K, n_bins)
    soft : bool
        ``softmax(-d^2 / bandwidth)`` over codewords; False: 1 for the nearest codeword.
    bandwidth : float

    Returns
    -------
    np.ndarray, shape (T, K), float32
    """
    d2 = _squared_distances(frames.astype(np.float32, copy=False), codebook)  # (T, K)
    if soft:
        z = -(d2 - d2.min(axis=1, keepdims=True)) / bandwidth
        w = np.exp(z)
        return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)
    out = np.zeros_like(d2)
    out[np.arange(len(d2)), d2.argmin(axis=1)] = 1.0
    return out


def histogram(
    frames: np.ndarray, codebook: np.ndarray, *, soft: bool, bandwidth: float
) -> np.ndarray:
    """Normalised codeword histogram of frames, shape (K,), float32 (sums to 1)."""
    sums = np.zeros(len(codebook), dtype=np.float64)
    for i in range(0, len(frames), _CHUNK):
        sums += codeword_weights(
            frames[i : i + _CHUNK], codebook, soft=soft, bandwidth=bandwidth
        ).sum(axis=0, dtype=np.float64)
    return (sums / max(len(frames), 1)).astype(np.float32)
