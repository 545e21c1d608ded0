"""Linear classifiers on fixed vectors, one per tag (the second stage of ``embedding_svm``).

One binary model per tag (one-vs-rest) with balanced class weights, fitted on the tag's
observed labels only (the label budget hides some): sklearn's
:class:`~sklearn.linear_model.LogisticRegression` or :class:`~sklearn.svm.LinearSVC`, behind
the :data:`CLASSIFIERS` registry. A tag with a single class among its observed labels gets
a constant logit, its smoothed prior. The fitted weights are plain arrays, so that the
checkpoint holds tensors and the tagger needs no sklearn object.
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from pipeline.inference.linear import CLASSIFIERS
from pipeline.numeric import sigmoid

__all__ = ["fit_linear", "masked_log_loss"]

log = logging.getLogger(__name__)


def fit_linear(
    x: np.ndarray,
    labels: np.ndarray,
    masks: np.ndarray,
    *,
    classifier: str,
    C: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One linear classifier per tag on the observed labels.

    Parameters
    ----------
    x : np.ndarray, shape (n, dim)
        Standardised embeddings.
    labels, masks : np.ndarray, shape (n, n_tags)
    classifier : str
        A key of :data:`CLASSIFIERS`.
    C : float
    seed : int

    Returns
    -------
    weight : np.ndarray, shape (n_tags, dim), float32
    bias : np.ndarray, shape (n_tags,), float32
        Logits are ``x @ weight.T + bias``.
    """
    spec = CLASSIFIERS[classifier]
    weight = np.zeros((labels.shape[1], x.shape[1]), dtype=np.float32)
    bias = np.zeros(labels.shape[1], dtype=np.float32)
    not_converged = 0
    for k in range(labels.shape[1]):
        rows = masks[:, k] > 0
        y = labels[rows, k]
        positives = int(y.sum())
        if 0 < positives < len(y):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                model = spec.make(C, seed).fit(x[rows], y.astype(np.int64))
            not_converged += any(issubclass(w.category, ConvergenceWarning) for w in caught)
            weight[k] = model.coef_[0]
            bias[k] = model.intercept_[0]
        else:  # one class only: a constant logit, the smoothed prior
            prior = (positives + 0.5) / (len(y) + 1.0)
            bias[k] = math.log(prior / (1.0 - prior))
    if not_converged:
        log.warning("%s (C=%g): %d tag(s) did not converge", classifier, C, not_converged)
    return weight, bias


def masked_log_loss(labels: np.ndarray, masks: np.ndarray, logits: np.ndarray) -> float:
    """Binary cross-entropy of ``sigmoid(logits)`` over the observed labels."""
    p = np.clip(sigmoid(logits).astype(np.float64), 1e-7, 1 - 1e-7)
    loss = -(labels * np.log(p) + (1 - labels) * np.log1p(-p))
    return float((loss * masks).sum() / max(masks.sum(), 1.0))
