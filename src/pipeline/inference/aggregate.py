"""Song-level tags from window-level predictions: mean, max and auto-pooling.

A track's windows are rows ``offsets[i]:offsets[i+1]`` of the window predictions (the layout
of the shard stores). All methods act on probabilities, ``p = sigmoid(logits)``:

- ``mean``: the average of ``p`` over a track's windows;
- ``max``: the maximum;
- ``autopool`` (McFee, Salamon & Bello 2018, "Adaptive pooling operators for weakly labeled
  sound event detection"): per tag ``k``, the weighted average with weights
  ``softmax(alpha[k] * p[:, k])`` over the track's windows; ``alpha = 0`` is the mean, large
  positive ``alpha`` tends to the max, large negative to the min. :func:`fit_autopool_alpha`
  picks ``alpha`` per tag on the validation split by minimising song-level binary
  cross-entropy.

A track with one window gets its window's probability from every method. Methods live in
:data:`AGGREGATIONS`; add one with :func:`register_aggregation`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from pipeline.errors import PipelineError

__all__ = [
    "AGGREGATIONS",
    "ALPHA_LIMIT",
    "Aggregation",
    "aggregate",
    "fit_autopool_alpha",
    "offsets_from_track_ids",
    "register_aggregation",
    "song_bce",
]

#: ``pool(probabilities, offsets, alpha) -> song probabilities`` (see :class:`Aggregation`).
Pool = Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]

#: :func:`fit_autopool_alpha` searches ``alpha`` in ``[-ALPHA_LIMIT, ALPHA_LIMIT]``.
ALPHA_LIMIT = 10.0

# Probabilities are clipped to [EPS, 1 - EPS] inside the cross-entropy.
EPS = 1e-7


@dataclass(frozen=True)
class Aggregation:
    """A registered song-level aggregation.

    Attributes
    ----------
    pool : callable
        ``pool(probabilities, offsets, alpha) -> song probabilities``: ``probabilities`` has
        shape (n_windows, n_tags), ``offsets`` (n_tracks + 1,), ``alpha`` (n_tags,) or None;
        returns shape (n_tracks, n_tags).
    uses_alpha : bool
        Whether the method needs a per-tag ``alpha`` (fitted by :func:`fit_autopool_alpha`).
    """

    pool: Pool
    uses_alpha: bool = False


#: Method name -> :class:`Aggregation`. Filled by :func:`register_aggregation`.
AGGREGATIONS: dict[str, Aggregation] = {}


def register_aggregation(name: str, *, uses_alpha: bool = False) -> Callable[[Pool], Pool]:
    """Function decorator that adds a pooling function to :data:`AGGREGATIONS`."""

    def add(pool: Pool) -> Pool:
        AGGREGATIONS[name] = Aggregation(pool=pool, uses_alpha=uses_alpha)
        return pool

    return add


@register_aggregation("mean")
def _mean(p: np.ndarray, offsets: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    counts = np.diff(offsets)[:, None]  # (n_tracks, 1)
    return np.add.reduceat(p, offsets[:-1], axis=0) / counts  # (n_tracks, n_tags)


@register_aggregation("max")
def _max(p: np.ndarray, offsets: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    return np.maximum.reduceat(p, offsets[:-1], axis=0)  # (n_tracks, n_tags)


@register_aggregation("autopool", uses_alpha=True)
def _autopool(p: np.ndarray, offsets: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if alpha is None:
        raise PipelineError("aggregation 'autopool' needs a per-tag alpha")
    return _autopool_many(p, offsets, alpha[None, :])[0]


def _autopool_many(p: np.ndarray, offsets: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Auto-pooling for several alpha vectors at once.

    ``p`` (n_windows, n_tags), ``offsets`` (n_tracks + 1,), ``alphas`` (n_alpha, n_tags);
    returns (n_alpha, n_tracks, n_tags).
    """
    starts = offsets[:-1]
    counts = np.diff(offsets)  # (n_tracks,)
    z = alphas[:, None, :] * p[None, :, :]  # (n_alpha, n_windows, n_tags)
    z_max = np.maximum.reduceat(z, starts, axis=1)  # (n_alpha, n_tracks, n_tags)
    w = np.exp(z - np.repeat(z_max, counts, axis=1))  # (n_alpha, n_windows, n_tags), <= 1
    numerator = np.add.reduceat(w * p[None], starts, axis=1)  # (n_alpha, n_tracks, n_tags)
    denominator = np.add.reduceat(w, starts, axis=1)  # >= 1: the window at the max has w = 1
    return numerator / denominator


def aggregate(
    *,
    window_logits: np.ndarray,
    offsets: np.ndarray | None = None,
    track_ids: Sequence[str] | np.ndarray | None = None,
    method: str = "mean",
    alpha: np.ndarray | None = None,
) -> np.ndarray:
    """Song-level probabilities from window logits.

    Parameters
    ----------
    window_logits : np.ndarray, shape (n_windows, n_tags)
        A model's outputs (logits) for every window.
    offsets : np.ndarray, shape (n_tracks + 1,), int, optional
        Track ``i`` has windows ``offsets[i]:offsets[i+1]`` (non-empty); ``offsets[0] == 0``,
        ``offsets[-1] == n_windows``. Give either ``offsets`` or ``track_ids``.
    track_ids : sequence of str, length n_windows, optional
        The track of each window; a track's windows must be contiguous. Tracks come out in
        order of first appearance (see :func:`offsets_from_track_ids`).
    method : str
        A key of :data:`AGGREGATIONS`: ``"mean"``, ``"max"`` or ``"autopool"``.
    alpha : np.ndarray, shape (n_tags,), optional
        Per-tag auto-pooling parameter, any finite value (required by ``autopool`` and only
        used there); :func:`fit_autopool_alpha` fits it within ``[-ALPHA_LIMIT, ALPHA_LIMIT]``.

    Returns
    -------
    np.ndarray, shape (n_tracks, n_tags), float64
        Probabilities in [0, 1].
    """
    logits = _check_logits(window_logits)
    offsets = _resolve_offsets(offsets=offsets, track_ids=track_ids, n_windows=len(logits))
    if method not in AGGREGATIONS:
        raise PipelineError(f"aggregation {method!r} is not one of {sorted(AGGREGATIONS)}")
    spec = AGGREGATIONS[method]
    if spec.uses_alpha:
        if alpha is None:
            raise PipelineError(
                f"aggregation {method!r} needs a per-tag alpha (see fit_autopool_alpha)"
            )
        alpha = np.asarray(alpha, dtype=np.float64)
        if alpha.shape != (logits.shape[1],) or not np.isfinite(alpha).all():
            raise PipelineError(
                f"alpha must be finite with shape ({logits.shape[1]},); got shape {alpha.shape}"
            )
    elif alpha is not None:
        raise PipelineError(f"aggregation {method!r} takes no alpha; only 'autopool' does")
    return spec.pool(expit(logits), offsets, alpha)


def fit_autopool_alpha(
    *,
    window_logits: np.ndarray,
    offsets: np.ndarray,
    y_true: np.ndarray,
    alphas: np.ndarray | None = None,
    refine: int = 21,
) -> np.ndarray:
    """Per-tag auto-pooling ``alpha`` that minimises song-level binary cross-entropy.

    Tags are independent, so each tag's ``alpha`` is searched on a grid (deterministic, no
    random source), then on a finer grid around the best point. Where the loss is flat to
    within 1e-9 (e.g. every track has one window), the ``alpha`` closest to 0 (the mean) wins.
    A tag without a positive or without a negative in ``y_true`` gets ``alpha = 0``: its
    cross-entropy only rewards pushing every score the same way.

    Parameters
    ----------
    window_logits : np.ndarray, shape (n_windows, n_tags)
        Window logits of the fitting split (the validation split: never the test split).
    offsets : np.ndarray, shape (n_tracks + 1,), int
        Track ``i`` has windows ``offsets[i]:offsets[i+1]``.
    y_true : np.ndarray, shape (n_tracks, n_tags)
        Song-level binary labels.
    alphas : np.ndarray, shape (n_grid,), optional
        The coarse grid; default 81 points over ``[-ALPHA_LIMIT, ALPHA_LIMIT]`` (step 0.25).
        Values outside that range are clipped.
    refine : int
        Points of the finer grid spanning one coarse step either side of the best point
        (0 or 1: no refinement).

    Returns
    -------
    np.ndarray, shape (n_tags,), float64
        ``alpha`` per tag, in ``[-ALPHA_LIMIT, ALPHA_LIMIT]``.
    """
    logits = _check_logits(window_logits)
    offsets = _resolve_offsets(offsets=offsets, track_ids=None, n_windows=len(logits))
    y_true = np.asarray(y_true, dtype=np.float64)
    n_tags = logits.shape[1]
    if y_true.shape != (len(offsets) - 1, n_tags):
        raise PipelineError(
            f"y_true has shape {y_true.shape}; expected (n_tracks, n_tags) = "
            f"({len(offsets) - 1}, {n_tags})"
        )
    if alphas is None:
        alphas = np.linspace(-ALPHA_LIMIT, ALPHA_LIMIT, 81)
    raw = np.asarray(alphas, dtype=np.float64)
    if raw.ndim != 1 or raw.size == 0 or not np.isfinite(raw).all():
        raise PipelineError(f"alphas must be a non-empty 1-D grid of finite values: {alphas!r}")
    grid = np.unique(np.clip(raw, -ALPHA_LIMIT, ALPHA_LIMIT))
    p = expit(logits)
    best = _grid_search(p, offsets, y_true, np.broadcast_to(grid[:, None], (grid.size, n_tags)))
    if refine > 1 and grid.size > 1:
        step = float(np.diff(grid).max())
        fine = best[None, :] + np.linspace(-step, step, refine)[:, None]  # (refine, n_tags)
        fine = np.clip(np.vstack([best[None, :], fine]), -ALPHA_LIMIT, ALPHA_LIMIT)
        best = _grid_search(p, offsets, y_true, fine)
    positives = y_true.sum(axis=0)
    best[(positives == 0) | (positives == len(y_true))] = 0.0
    return best


def song_bce(*, probabilities: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """Binary cross-entropy per tag, averaged over tracks.

    Parameters
    ----------
    probabilities : np.ndarray, shape (..., n_tracks, n_tags)
        Song-level probabilities (clipped to ``[1e-7, 1 - 1e-7]``).
    y_true : np.ndarray, shape (n_tracks, n_tags)
        Binary labels.

    Returns
    -------
    np.ndarray, shape (..., n_tags)
    """
    q = np.clip(probabilities, EPS, 1.0 - EPS)
    loss = -(y_true * np.log(q) + (1.0 - y_true) * np.log1p(-q))
    return loss.mean(axis=-2)


def offsets_from_track_ids(track_ids: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets of contiguous runs of windows of the same track.

    Parameters
    ----------
    track_ids : sequence of str, length n_windows
        The track of each window; each track's windows must be contiguous.

    Returns
    -------
    offsets : np.ndarray, shape (n_tracks + 1,), int64
    tracks : np.ndarray, shape (n_tracks,), object
        Track ids in order of first appearance.
    """
    ids = np.asarray(track_ids, dtype=object)
    if ids.ndim != 1 or ids.size == 0:
        raise PipelineError(f"track_ids must be a non-empty 1-D sequence; got shape {ids.shape}")
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    tracks = ids[starts]
    seen: set[object] = set()
    for track in tracks:
        if track in seen:
            raise PipelineError(f"the windows of track {track!r} are not contiguous")
        seen.add(track)
    return np.r_[starts, ids.size].astype(np.int64), tracks


def _grid_search(
    p: np.ndarray, offsets: np.ndarray, y_true: np.ndarray, candidates: np.ndarray
) -> np.ndarray:
    """Best candidate per tag; ``candidates`` (n_alpha, n_tags) -> (n_tags,).

    Ties (within 1e-9 of the minimum) go to the candidate closest to 0.
    """
    losses = np.empty(candidates.shape)
    # Chunks over the candidates bound the memory to ~64 MiB of float64 temporaries.
    chunk = max(1, int(8e6 // max(1, p.size)))
    for lo in range(0, len(candidates), chunk):
        pooled = _autopool_many(p, offsets, candidates[lo : lo + chunk])
        losses[lo : lo + chunk] = song_bce(probabilities=pooled, y_true=y_true)
    near_best = losses <= losses.min(axis=0, keepdims=True) + 1e-9
    distance = np.where(near_best, np.abs(candidates), np.inf)  # (n_alpha, n_tags)
    return candidates[np.argmin(distance, axis=0), np.arange(candidates.shape[1])].copy()


def _check_logits(window_logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(window_logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise PipelineError(
            f"window_logits must have shape (n_windows, n_tags) with n_windows > 0; "
            f"got {logits.shape}"
        )
    if not np.isfinite(logits).all():
        row = int(np.argwhere(~np.isfinite(logits))[0, 0])
        raise PipelineError(f"window_logits are not finite at window {row}: {logits[row]!r}")
    return logits


def _resolve_offsets(
    *,
    offsets: np.ndarray | None,
    track_ids: Sequence[str] | np.ndarray | None,
    n_windows: int,
) -> np.ndarray:
    if (offsets is None) == (track_ids is None):
        raise PipelineError("give exactly one of offsets and track_ids")
    if track_ids is not None:
        if len(track_ids) != n_windows:
            raise PipelineError(f"{len(track_ids)} track_ids for {n_windows} windows")
        return offsets_from_track_ids(track_ids)[0]
    offsets = np.asarray(offsets)
    if offsets.ndim != 1 or offsets.size < 2 or not np.issubdtype(offsets.dtype, np.integer):
        raise PipelineError(f"offsets must be 1-D integers of length n_tracks + 1: {offsets!r}")
    if offsets[0] != 0 or offsets[-1] != n_windows:
        raise PipelineError(
            f"offsets must run from 0 to n_windows = {n_windows}: "
            f"got {int(offsets[0])} .. {int(offsets[-1])}"
        )
    counts = np.diff(offsets)
    if (counts <= 0).any():
        track = int(np.flatnonzero(counts <= 0)[0])
        raise PipelineError(
            f"track {track} has no windows (offsets {int(offsets[track])}, "
            f"{int(offsets[track + 1])}); every track needs at least one"
        )
    return offsets.astype(np.int64)
