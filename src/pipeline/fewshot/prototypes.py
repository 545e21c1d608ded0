"""The prototype method of few-shot tagging: on frozen, L2-normalised track embeddings, a
positive and a negative prototype per tag (:func:`prototype_scores`), and the method callable
of :func:`pipeline.fewshot.episodes.run_fewshot` (:func:`prototype_method`)."""

from __future__ import annotations

import numpy as np

from pipeline.errors import PipelineError
from pipeline.fewshot.labels import Method, bool_labels
from pipeline.numeric import l2_normalise

__all__ = ["prototype_scores", "prototype_method"]


# --------------------------------------------------------------------------------------------
# Prototypes on frozen embeddings
# --------------------------------------------------------------------------------------------


def prototype_scores(
    *, support: np.ndarray, support_labels: np.ndarray, queries: np.ndarray
) -> np.ndarray:
    """Multi-label prototypical network scores (Snell et al. 2017).

    Embeddings are L2-normalised; tag ``k`` has a positive prototype ``p+`` (mean of the
    support embeddings with the tag) and a negative one ``p-`` (mean of those without); a
    query ``q`` gets ``softmax(-|q - p+|^2, -|q - p-|^2)[0] = sigmoid(|q - p-|^2 - |q - p+|^2)``.

    Parameters
    ----------
    support : np.ndarray, shape (n_support, D)
        Support embeddings.
    support_labels : np.ndarray, shape (n_support, n_tags), bool
    queries : np.ndarray, shape (n_query, D)

    Returns
    -------
    np.ndarray, shape (n_query, n_tags), float64
        Probability of each tag; a column is NaN for a tag without a positive or without a
        negative in the support set.
    """
    support = np.asarray(support, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.float64)
    support_labels = bool_labels(support_labels, name="support_labels")
    if support.ndim != 2 or queries.ndim != 2 or support.shape[1] != queries.shape[1]:
        raise PipelineError(
            f"support {support.shape} and queries {queries.shape} must be (n, D) embeddings "
            "of the same D"
        )
    if len(support_labels) != len(support):
        raise PipelineError(
            f"support_labels has {len(support_labels)} rows but support has {len(support)}"
        )
    s, q = l2_normalise(support, eps=1e-12), l2_normalise(queries, eps=1e-12)  # float64
    n_pos = support_labels.sum(axis=0)  # (n_tags,)
    n_neg = len(s) - n_pos
    ok = (n_pos > 0) & (n_neg > 0)
    pos = support_labels.T.astype(np.float64)  # (n_tags, n_support)
    proto_pos = (pos @ s) / np.maximum(n_pos, 1)[:, None]  # (n_tags, D)
    proto_neg = ((1.0 - pos) @ s) / np.maximum(n_neg, 1)[:, None]  # (n_tags, D)
    d_pos = _squared_distances(q, proto_pos)  # (n_query, n_tags)
    d_neg = _squared_distances(q, proto_neg)
    scores = 1.0 / (1.0 + np.exp(-(d_neg - d_pos)))
    scores[:, ~ok] = np.nan
    return scores


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a_i - b_j|^2, shape (len(a), len(b)), never negative."""
    d = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.maximum(d, 0.0)


# --------------------------------------------------------------------------------------------
# Method builders
# --------------------------------------------------------------------------------------------


def prototype_method(*, embeddings: np.ndarray, labels: np.ndarray) -> Method:
    """The prototype method on frozen track embeddings, for :func:`run_fewshot`.

    Parameters
    ----------
    embeddings : np.ndarray, shape (n_tracks, D)
        One embedding per track (e.g. a tagger's ``embed_track``), rows aligned with
        ``labels``.
    labels : np.ndarray, shape (n_tracks, n_tags), bool

    Returns
    -------
    callable
        ``(support_idx, query_idx, tag_idx) -> (n_query, len(tag_idx))`` probabilities.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = bool_labels(labels, name="labels")
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise PipelineError(
            f"embeddings of shape {embeddings.shape} are not (n, D) for {len(labels)} tracks"
        )
    if not np.isfinite(embeddings).all():
        row = int(np.flatnonzero(~np.isfinite(embeddings).all(axis=1))[0])
        raise PipelineError(f"embeddings of track row {row} are not finite")

    def method(support_idx: np.ndarray, query_idx: np.ndarray, tag_idx: np.ndarray) -> np.ndarray:
        return prototype_scores(
            support=embeddings[support_idx],
            support_labels=labels[np.ix_(support_idx, tag_idx)],
            queries=embeddings[query_idx],
        )

    return method
