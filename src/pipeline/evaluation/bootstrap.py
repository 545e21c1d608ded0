"""Bootstrap uncertainty over test tracks: confidence intervals of macro ROC-AUC / PR-AUC and
of means of per-query values, and a paired test between two models.

A bootstrap resample draws ``n`` tracks with replacement from the ``n`` evaluated tracks; it
is stored as a count per track (:func:`resample_counts`, shape ``(n_resamples, n)``), so one
resample is a weighting of the original tracks and every model of a comparison is scored on
the same resampled tracks (a paired bootstrap). The areas of a weighted sample are those of
the sample with each track repeated ``count`` times: :func:`weighted_tag_aucs` computes them
for all resamples at once (ties share a step, as in :func:`pipeline.evaluation.metrics.tag_aucs`).
A tag without a positive (or without a negative) in a resample is skipped in that resample's
macro average, as :func:`pipeline.evaluation.metrics.macro_auc` skips it; a resample where no
tag can be scored gives NaN and is left out of the interval. Intervals are percentile
intervals; every random draw comes from ``numpy.random.default_rng(seed)``.

Light on purpose (NumPy only): the leaderboard job computes the intervals of every row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.errors import PipelineError, check_int

__all__ = [
    "BootstrapSettings",
    "bootstrap_macro_auc",
    "interval",
    "mean_interval",
    "paired_test",
    "resample_counts",
    "weighted_tag_aucs",
]


@dataclass(frozen=True, kw_only=True)
class BootstrapSettings:
    """How intervals and tests are drawn (the config's ``evaluation.bootstrap``).

    Attributes
    ----------
    resamples : int
        Bootstrap resamples (>= 1).
    seed : int
        Seed of the resampling (same seed and tracks, same intervals).
    confidence : float
        Coverage of the intervals, in (0, 1); the test's level is ``1 - confidence``.
    """

    resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        check_int("bootstrap.resamples", self.resamples, minimum=1)
        check_int("bootstrap.seed", self.seed, minimum=0)
        if not 0.0 < float(self.confidence) < 1.0:
            raise PipelineError(f"bootstrap.confidence: {self.confidence!r} must be in (0, 1)")

    @classmethod
    def from_dict(cls, entry: dict[str, Any] | None) -> BootstrapSettings:
        """From the config's ``evaluation.bootstrap`` mapping (missing keys: defaults)."""
        return cls(**dict(entry or {}))


def resample_counts(n: int, *, resamples: int, seed: int) -> np.ndarray:
    """How often each of ``n`` tracks is drawn in each bootstrap resample.

    Returns
    -------
    np.ndarray, shape (resamples, n), float64
        Each row sums to ``n``.
    """
    check_int("n", n, minimum=1)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n, size=(resamples, n))  # (B, n) track indices
    flat = drawn + n * np.arange(resamples)[:, None]
    return np.bincount(flat.ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)


def weighted_tag_aucs(
    y_true: np.ndarray, y_score: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ROC-AUC and average precision of one tag under each row of weights.

    Parameters
    ----------
    y_true : np.ndarray, shape (n,)
        0/1 labels.
    y_score : np.ndarray, shape (n,)
        Finite scores.
    weights : np.ndarray, shape (B, n)
        Non-negative weights (bootstrap counts).

    Returns
    -------
    roc_auc, average_precision : np.ndarray, shape (B,)
        NaN in rows where the weighted sample has no positive or no negative.
    """
    y = np.asarray(y_true, dtype=np.float64)
    score = np.asarray(y_score, dtype=np.float64)
    order = np.argsort(score, kind="mergesort")  # ascending
    sorted_score = score[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_score)) + 1]  # first of each tie group
    w = np.asarray(weights, dtype=np.float64)[:, order]  # (B, n)
    positive = np.add.reduceat(w * y[order], starts, axis=1)  # (B, G) ascending score
    negative = np.add.reduceat(w * (1.0 - y[order]), starts, axis=1)
    n_pos, n_neg = positive.sum(axis=1), negative.sum(axis=1)
    ok = (n_pos > 0) & (n_neg > 0)
    below = np.cumsum(negative, axis=1) - negative  # negatives scored lower
    pairs = (positive * (below + 0.5 * negative)).sum(axis=1)
    roc = np.divide(pairs, n_pos * n_neg, out=np.full(len(w), np.nan), where=ok)
    tp = np.cumsum(positive[:, ::-1], axis=1)  # descending thresholds
    fp = np.cumsum(negative[:, ::-1], axis=1)
    called = tp + fp
    precision = np.divide(tp, called, out=np.zeros_like(tp), where=called > 0)
    hits = (positive[:, ::-1] * precision).sum(axis=1)
    ap = np.divide(hits, n_pos, out=np.full(len(w), np.nan), where=ok)
    return roc, ap


def bootstrap_macro_auc(
    y_true: np.ndarray, y_score: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Macro ROC-AUC and PR-AUC of every resample.

    Parameters
    ----------
    y_true : np.ndarray, shape (n, n_tags)
        0/1 labels.
    y_score : np.ndarray, shape (n, n_tags)
        Finite scores.
    weights : np.ndarray, shape (B, n)
        From :func:`resample_counts`.

    Returns
    -------
    roc_auc, pr_auc : np.ndarray, shape (B,)
        Means over the tags that have a positive and a negative in each resample; NaN where
        no tag has.
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 2 or y_true.shape != y_score.shape or weights.shape[1] != len(y_true):
        raise PipelineError(
            f"y_true {y_true.shape}, y_score {y_score.shape} and weights {weights.shape} must "
            "be (n, n_tags), (n, n_tags) and (B, n)"
        )
    if not np.isfinite(y_score).all():
        raise PipelineError("y_score is not finite")
    rocs = np.full((len(weights), y_true.shape[1]), np.nan)
    aps = np.full_like(rocs, np.nan)
    for k in range(y_true.shape[1]):
        if 0 < y_true[:, k].sum() < len(y_true):  # never scorable otherwise
            rocs[:, k], aps[:, k] = weighted_tag_aucs(y_true[:, k], y_score[:, k], weights)
    return _nanmean_rows(rocs), _nanmean_rows(aps)


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Mean of the finite values of each row; NaN for a row without any."""
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    total = np.where(finite, values, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.full(len(values), np.nan), where=count > 0)


def interval(values: np.ndarray, *, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap values (NaN values are left out).

    Returns
    -------
    low, high : float
        NaN when no value is finite.
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return math.nan, math.nan
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def mean_interval(values: np.ndarray, *, settings: BootstrapSettings) -> tuple[float, float]:
    """Bootstrap interval of the mean of per-item values (e.g. per-query AP).

    Parameters
    ----------
    values : np.ndarray, shape (n,)
        Finite values; an empty array gives NaN bounds.
    settings : BootstrapSettings
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return math.nan, math.nan
    counts = resample_counts(len(values), resamples=settings.resamples, seed=settings.seed)
    means = counts @ values / len(values)  # (B,)
    return interval(means, confidence=settings.confidence)


def paired_test(
    first: np.ndarray, second: np.ndarray, *, confidence: float
) -> dict[str, float | bool]:
    """Paired bootstrap test of the difference of two models' metric on the same resamples.

    Parameters
    ----------
    first, second : np.ndarray, shape (B,)
        The metric of each model in each resample (the same resampled tracks for both).
    confidence : float
        The difference is significant when ``p_value < 1 - confidence``.

    Returns
    -------
    dict
        ``difference_ci_low``, ``difference_ci_high`` (percentile interval of ``first -
        second``), ``p_value`` (two-sided: twice the smaller share of resamples on either
        side of zero, with the add-one correction, at most 1) and ``significant``. Resamples
        where either value is NaN are left out; with none left, the bounds are NaN, ``p_value``
        is 1 and the difference is not significant.
    """
    difference = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    difference = difference[np.isfinite(difference)]
    low, high = interval(difference, confidence=confidence)
    b = len(difference)
    if b == 0:
        return {"difference_ci_low": low, "difference_ci_high": high, "p_value": 1.0,
                "significant": False}  # fmt: skip
    below = (1 + int((difference <= 0).sum())) / (b + 1)
    above = (1 + int((difference >= 0).sum())) / (b + 1)
    p_value = min(1.0, 2.0 * min(below, above))
    return {
        "difference_ci_low": low,
        "difference_ci_high": high,
        "p_value": p_value,
        "significant": bool(p_value < 1.0 - confidence),
    }
