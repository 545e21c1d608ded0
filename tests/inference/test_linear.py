"""The registered linear classifiers of the embedding classifier."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.inference.linear import CLASSIFIERS, LinearClassifier


def test_registry_and_probabilistic_flags() -> None:
    assert sorted(CLASSIFIERS) == ["logistic", "svm"]
    assert all(isinstance(c, LinearClassifier) for c in CLASSIFIERS.values())
    assert CLASSIFIERS["logistic"].probabilistic and not CLASSIFIERS["svm"].probabilistic


@pytest.mark.parametrize("name", ["logistic", "svm"])
def test_estimators_are_balanced_and_separate_a_separable_tag(name: str) -> None:
    """One rare positive class (10 of 100) on the first feature: balanced weights find it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 3))
    y = np.zeros(100, dtype=int)
    y[:10] = 1
    x[:10, 0] += 4.0
    estimator = CLASSIFIERS[name].make(0.5, 7)
    assert estimator.C == 0.5 and estimator.class_weight == "balanced"
    estimator.fit(x, y)
    assert estimator.coef_.shape == (1, 3) and estimator.intercept_.shape == (1,)
    assert np.argmax(np.abs(estimator.coef_[0])) == 0 and estimator.coef_[0, 0] > 0
    decision = x @ estimator.coef_[0] + estimator.intercept_[0]
    assert (decision[:10] > 0).mean() >= 0.9 and (decision[10:] < 0).mean() >= 0.9


def test_svm_is_seeded() -> None:
    assert CLASSIFIERS["svm"].make(1.0, 3).random_state == 3
