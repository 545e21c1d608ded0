"""Tagging metrics: per-tag ROC-AUC and PR-AUC, their macro and micro averages.

ROC-AUC is the probability that a random positive scores above a random negative (ties count
one half); PR-AUC is average precision as :func:`sklearn.metrics.average_precision_score`
computes it (precision at each distinct threshold, weighted by the recall it adds, with no
interpolation). A tag without a positive, or without a negative, in ``y_true`` has neither;
it gets NaN with ``evaluated=False``, is left out of the averages and listed in
``skipped_tags``, and never stops an evaluation.

:func:`macro_auc` is the light version that trainers call after every epoch: the macro
averages only, over the tags that can be scored, with a choice of how the areas are summed
(:func:`tag_aucs`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from pipeline.errors import PipelineError

__all__ = [
    "AUC_METHODS",
    "PER_TAG_COLUMNS",
    "label_matrix",
    "macro_auc",
    "per_tag_metrics",
    "summary_metrics",
    "tag_aucs",
]

#: How :func:`tag_aucs` sums the areas.
AUC_METHODS = ("sklearn", "fast")

#: Columns of :func:`per_tag_metrics`.
PER_TAG_COLUMNS = ["tag", "n_positive", "n_negative", "roc_auc", "pr_auc", "evaluated"]


def label_matrix(*, track_tags: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """Multi-hot labels of tracks from their tag lists.

    Parameters
    ----------
    track_tags : sequence of sequences of str, length n_tracks
        Each track's tags (e.g. the ``tags`` column of ``index.parquet``).
    vocabulary : sequence of str, length n_tags
        The ordered tag vocabulary (``vocabulary.json``'s ``tags``).

    Returns
    -------
    np.ndarray, shape (n_tracks, n_tags), int8
        1 where the track has the tag.
    """
    column = {tag: k for k, tag in enumerate(vocabulary)}
    if len(column) != len(vocabulary):
        raise PipelineError(f"vocabulary has duplicate tags: {list(vocabulary)!r}")
    out = np.zeros((len(track_tags), len(column)), dtype=np.int8)
    for i, tags in enumerate(track_tags):
        for tag in tags:
            if tag not in column:
                raise PipelineError(
                    f"track {i}: tag {tag!r} is not in the vocabulary {list(vocabulary)!r}"
                )
            out[i, column[tag]] = 1
    return out


def per_tag_metrics(
    *, y_true: np.ndarray, y_score: np.ndarray, tags: Sequence[str]
) -> pd.DataFrame:
    """ROC-AUC and PR-AUC of each tag.

    Parameters
    ----------
    y_true : np.ndarray, shape (n_tracks, n_tags)
        Binary labels (0/1 or bool).
    y_score : np.ndarray, shape (n_tracks, n_tags)
        Finite scores; any monotone transform (logits or probabilities) gives the same result.
    tags : sequence of str, length n_tags

    Returns
    -------
    pd.DataFrame
        One row per tag, in order, with :data:`PER_TAG_COLUMNS`: ``n_positive`` and
        ``n_negative`` (int), ``roc_auc`` and ``pr_auc`` (float, NaN where not evaluated),
        ``evaluated`` (bool: the tag has at least one positive and one negative).
    """
    y_true, y_score = _check(y_true=y_true, y_score=y_score, tags=tags)
    n_positive = y_true.sum(axis=0).astype(np.int64)
    n_negative = len(y_true) - n_positive
    evaluated = (n_positive > 0) & (n_negative > 0)
    roc = np.full(len(tags), np.nan)
    pr = np.full(len(tags), np.nan)
    for k in np.flatnonzero(evaluated):
        roc[k], pr[k] = tag_aucs(y_true[:, k], y_score[:, k])
    return pd.DataFrame(
        {
            "tag": [str(tag) for tag in tags],
            "n_positive": n_positive,
            "n_negative": n_negative,
            "roc_auc": roc,
            "pr_auc": pr,
            "evaluated": evaluated,
        },
        columns=PER_TAG_COLUMNS,
    )


def tag_aucs(
    y_true: np.ndarray, y_score: np.ndarray, *, method: str = "sklearn"
) -> tuple[float, float]:
    """ROC-AUC and average precision of one tag that has both a positive and a negative.

    Parameters
    ----------
    y_true : np.ndarray, shape (n_tracks,)
        0/1 labels, at least one of each.
    y_score : np.ndarray, shape (n_tracks,)
        Scores.
    method : {"sklearn", "fast"}
        ``"sklearn"``: :func:`sklearn.metrics.roc_auc_score` and
        :func:`sklearn.metrics.average_precision_score`. ``"fast"``: the same sums written out
        without sklearn's input checks, which cost more than the sums when a small classifier
        is validated every epoch: thresholds are the distinct scores (ties form one step),
        ROC-AUC is the trapezoidal area under the ROC curve from (0, 0), average precision
        the sum of precision times the recall each threshold adds, in order of falling score.
        The two agree to about 1e-15 but not bit for bit (sklearn drops collinear ROC points
        and sums in another order; on random inputs about a quarter of the ROC-AUCs and a
        third of the APs differ in the last bits), so each caller keeps the method it has
        always used and its numbers stay reproducible.

    Returns
    -------
    roc_auc, average_precision : float
    """
    if method == "sklearn":
        roc = roc_auc_score(y_true, y_score)
        return float(roc), float(average_precision_score(y_true, y_score))
    if method != "fast":
        raise PipelineError(f"AUC method {method!r} is not one of {list(AUC_METHODS)}")
    order = np.argsort(-y_score, kind="mergesort")
    score, y = y_score[order], y_true[order]
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]  # end of each threshold
    tps = np.cumsum(y)[last]
    fps = last + 1 - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    roc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2.0)
    ap = float(np.sum(np.diff(tpr) * (tps / (tps + fps))))
    return roc, ap


def macro_auc(
    y_true: np.ndarray, y_score: np.ndarray, *, method: str = "sklearn"
) -> tuple[float, float, int]:
    """Macro ROC-AUC and PR-AUC (average precision) over the tags that can be scored.

    Unlike :func:`summary_metrics`, inputs are not checked: this is the validation score a
    trainer computes after every epoch.

    Parameters
    ----------
    y_true : np.ndarray, shape (n_tracks, n_tags)
        0/1 labels.
    y_score : np.ndarray, shape (n_tracks, n_tags)
        Scores (probabilities).
    method : {"sklearn", "fast"}
        How each tag's areas are summed (:func:`tag_aucs`); ``"fast"`` works in float64.

    Returns
    -------
    roc_auc, pr_auc : float
        Means over tags with at least one positive and one negative; NaN when none has.
    n_scored : int
        Tags scored.
    """
    if method == "fast":
        y_true = np.asarray(y_true, dtype=np.float64)
        y_score = np.asarray(y_score, dtype=np.float64)
    roc, pr = [], []
    for k in range(y_true.shape[1]):
        positives = int(y_true[:, k].sum())
        if 0 < positives < len(y_true):
            tag_roc, tag_pr = tag_aucs(y_true[:, k], y_score[:, k], method=method)
            roc.append(tag_roc)
            pr.append(tag_pr)
    if not roc:
        return math.nan, math.nan, 0
    return float(np.mean(roc)), float(np.mean(pr)), len(roc)


def summary_metrics(
    *, y_true: np.ndarray, y_score: np.ndarray, tags: Sequence[str]
) -> dict[str, Any]:
    """Macro and micro averages of ROC-AUC and PR-AUC over the evaluated tags.

    Parameters
    ----------
    y_true : np.ndarray, shape (n_tracks, n_tags)
        Binary labels.
    y_score : np.ndarray, shape (n_tracks, n_tags)
        Finite scores. Micro averages pool all (track, tag) pairs of the evaluated tags, so the
        scores of different tags must be comparable there (use probabilities).
    tags : sequence of str, length n_tags

    Returns
    -------
    dict
        ``macro_roc_auc``, ``macro_pr_auc`` (means of the per-tag values), ``micro_roc_auc``,
        ``micro_pr_auc`` (on the flattened evaluated columns), ``n_tags_evaluated``,
        ``n_tags``, ``n_tracks`` and ``skipped_tags`` (tags without a positive or without a
        negative). Averages are NaN when no tag can be evaluated. ``single_label`` is True
        when every track carries exactly one of the tags (genre classification: GTZAN, FMA's
        top-level genre); ``accuracy`` is then the fraction of tracks whose highest score is
        their label (argmax over all tags, as the literature reports such datasets), else
        None.
    """
    y_true, y_score = _check(y_true=y_true, y_score=y_score, tags=tags)
    per_tag = per_tag_metrics(y_true=y_true, y_score=y_score, tags=tags)
    evaluated = per_tag["evaluated"].to_numpy()
    out: dict[str, Any] = {
        "macro_roc_auc": float("nan"),
        "macro_pr_auc": float("nan"),
        "micro_roc_auc": float("nan"),
        "micro_pr_auc": float("nan"),
        "n_tags_evaluated": int(evaluated.sum()),
        "n_tags": len(tags),
        "n_tracks": int(len(y_true)),
        "skipped_tags": per_tag.loc[~evaluated, "tag"].tolist(),
        "single_label": single_label(y_true),
        "accuracy": None,
    }
    if out["single_label"]:
        out["accuracy"] = argmax_accuracy(y_true=y_true, y_score=y_score)
    if evaluated.any():
        flat_true = y_true[:, evaluated].ravel()
        flat_score = y_score[:, evaluated].ravel()
        out["macro_roc_auc"] = float(per_tag.loc[evaluated, "roc_auc"].mean())
        out["macro_pr_auc"] = float(per_tag.loc[evaluated, "pr_auc"].mean())
        out["micro_roc_auc"] = float(roc_auc_score(flat_true, flat_score))
        out["micro_pr_auc"] = float(average_precision_score(flat_true, flat_score))
    return out


def single_label(y_true: np.ndarray) -> bool:
    """Whether every track (row) carries exactly one label; False for no track.

    Parameters
    ----------
    y_true : np.ndarray, shape (n_tracks, n_tags)
        Binary labels.
    """
    return bool(len(y_true) > 0 and np.all(np.asarray(y_true).sum(axis=1) == 1))


def argmax_accuracy(*, y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Fraction of tracks whose highest-scoring tag is a label (ties: the first tag).

    Parameters
    ----------
    y_true : np.ndarray, shape (n_tracks, n_tags)
        Binary labels (exactly one per track for the accuracy of a single-label dataset).
    y_score : np.ndarray, shape (n_tracks, n_tags)
        Scores; only their order within a track matters.

    Returns
    -------
    float
        In [0, 1]; NaN when there is no track.
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    if len(y_true) == 0:
        return float("nan")
    predicted = np.argmax(y_score, axis=1)
    return float(np.mean(y_true[np.arange(len(y_true)), predicted] > 0))


def _check(
    *, y_true: np.ndarray, y_score: np.ndarray, tags: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and values; return int8 labels and float64 scores."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise PipelineError(
            f"y_true {y_true.shape} and y_score {y_score.shape} must be the same "
            "(n_tracks, n_tags) shape"
        )
    if y_true.shape[1] != len(tags):
        raise PipelineError(f"{y_true.shape[1]} label columns but {len(tags)} tags: {list(tags)!r}")
    if y_true.shape[0] == 0:
        raise PipelineError(f"no tracks to evaluate: y_true has shape {y_true.shape}")
    values = np.unique(y_true)
    if not np.isin(values, [0, 1]).all():
        raise PipelineError(f"y_true must be 0/1; it holds {values[:10].tolist()!r}")
    finite = np.isfinite(y_score)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise PipelineError(
            f"y_score is not finite: {y_score[row, col]!r} at track {row}, tag {tags[col]!r}"
        )
    return y_true.astype(np.int8), y_score
