"""A linear classifier's weights applied to embeddings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["LinearClassifier", "CLASSIFIERS"]


@dataclass(frozen=True)
class LinearClassifier:
    """A registered linear classifier.

    Attributes
    ----------
    make : callable
        ``make(C, seed) -> estimator`` for one binary tag (``fit``, ``coef_``,
        ``intercept_``).
    probabilistic : bool
        Whether ``sigmoid(decision)`` is the model's probability (then its cross-entropy is
        the history's loss; else the loss is NaN).
    """

    make: Callable[[float, int], Any]
    probabilistic: bool


def _logistic(C: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression  # sklearn only when fitting

    return LogisticRegression(C=C, class_weight="balanced", max_iter=2000)


def _svm(C: float, seed: int) -> Any:
    from sklearn.svm import LinearSVC  # sklearn only when fitting

    return LinearSVC(C=C, class_weight="balanced", random_state=seed, max_iter=10_000)


#: Classifier name (``hparams.classifier``) -> how to build it.
CLASSIFIERS: dict[str, LinearClassifier] = {
    "logistic": LinearClassifier(make=_logistic, probabilistic=True),
    "svm": LinearClassifier(make=_svm, probabilistic=False),
}
