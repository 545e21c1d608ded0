"""Tagging metrics: per-tag ROC-AUC and PR-AUC, their macro and micro averages.

ROC-AUC is the probability that a random positive scores above a random negative (ties count
one half); PR-AUC is average precision as :func:`sklearn.metrics.average_precision_score`
computes it (precision at each distinct threshold, weighted by the recall it adds, with no
interpolation). A tag without a positive, or without a negative, in ``y_true`` has neither;
it gets NaN with ``evaluated=False``, is left out of the averages and listed in
``skipped_tags``, and never stops an evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from pipeline.errors import PipelineError

__all__ = ["PER_TAG_COLUMNS", "label_matrix", "per_tag_metrics", "summary_metrics"]

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
        roc[k] = roc_auc_score(y_true[:, k], y_score[:, k])
        pr[k] = average_precision_score(y_true[:, k], y_score[:, k])
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
        negative). Averages are NaN when no tag can be evaluated.
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
    }
    if evaluated.any():
        flat_true = y_true[:, evaluated].ravel()
        flat_score = y_score[:, evaluated].ravel()
        out["macro_roc_auc"] = float(per_tag.loc[evaluated, "roc_auc"].mean())
        out["macro_pr_auc"] = float(per_tag.loc[evaluated, "pr_auc"].mean())
        out["micro_roc_auc"] = float(roc_auc_score(flat_true, flat_score))
        out["micro_pr_auc"] = float(average_precision_score(flat_true, flat_score))
    return out


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
