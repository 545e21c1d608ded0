"""Prototypes on frozen embeddings (:mod:`pipeline.fewshot.prototypes`): clusters are
separated, shuffled labels are chance, tags without a positive or negative are NaN, and the
scores on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.fewshot.prototypes import prototype_method, prototype_scores
from tests.helpers.fewshot import macro_auc as _macro_auc


def _clusters(n: int, *, n_tags: int, dim: int, noise: float, seed: int):
    """One tag per track; embedding = the tag's centre + noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_tags, dim)) * 3.0
    tag = rng.integers(0, n_tags, size=n)
    labels = np.eye(n_tags, dtype=bool)[tag]
    return centres[tag] + noise * rng.normal(size=(n, dim)), labels


def test_prototypes_separate_clusters_perfectly() -> None:
    x, labels = _clusters(200, n_tags=4, dim=8, noise=0.1, seed=0)
    scores = prototype_scores(support=x[:20], support_labels=labels[:20], queries=x[20:])
    assert scores.shape == (180, 4) and ((scores > 0) & (scores < 1)).all()
    assert _macro_auc(labels[20:], scores) == 1.0
    # scale-free: embeddings are L2-normalised
    scaled = prototype_scores(support=5 * x[:20], support_labels=labels[:20], queries=x[20:])
    np.testing.assert_allclose(scaled, scores)


def test_prototypes_on_shuffled_labels_are_chance() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 16))
    labels = rng.random((3000, 5)) < 0.3  # independent of x
    scores = prototype_scores(support=x[:100], support_labels=labels[:100], queries=x[100:])
    assert abs(_macro_auc(labels[100:], scores) - 0.5) < 0.03


def test_prototypes_nan_for_tags_without_positive_or_negative() -> None:
    x, labels = _clusters(40, n_tags=2, dim=4, noise=0.1, seed=1)
    support_labels = np.stack([labels[:10, 0], np.ones(10, bool), np.zeros(10, bool)], axis=1)
    scores = prototype_scores(support=x[:10], support_labels=support_labels, queries=x[10:])
    assert np.isfinite(scores[:, 0]).all()
    assert np.isnan(scores[:, 1]).all() and np.isnan(scores[:, 2]).all()
    with pytest.raises(PipelineError, match="same D"):
        prototype_scores(support=x[:10], support_labels=labels[:10], queries=x[10:, :3])


def test_prototype_scores_known_values() -> None:
    """Unit prototypes [1, 0] (with the tag) and [0, 1] (without): a query on the positive
    one scores sigmoid(|q - p-|^2 - |q - p+|^2) = sigmoid(2), one halfway scores 0.5."""
    support = np.array([[2.0, 0.0], [0.0, 3.0]])  # lengths do not matter: L2-normalised
    queries = np.array([[5.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    scores = prototype_scores(support=support, support_labels=np.array([[1], [0]]), queries=queries)
    assert scores.dtype == np.float64 and scores.shape == (3, 1)
    sigmoid2 = 1.0 / (1.0 + np.exp(-2.0))
    np.testing.assert_allclose(scores[:, 0], [sigmoid2, 1.0 - sigmoid2, 0.5], rtol=1e-12)
    # two positives average into one prototype: [1, 0] and [0, 1] give [0.5, 0.5]
    three = prototype_scores(
        support=np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]),
        support_labels=np.array([[True], [True], [False]]),
        queries=np.array([[1.0, 0.0]]),
    )
    # |q - p+|^2 = 0.25 + 0.25, |q - p-|^2 = 4: sigmoid(3.5)
    np.testing.assert_allclose(three[0, 0], 1.0 / (1.0 + np.exp(-3.5)), rtol=1e-12)


def test_prototype_method_scores_the_chosen_rows_and_tags() -> None:
    x, labels = _clusters(30, n_tags=3, dim=5, noise=0.3, seed=2)
    method = prototype_method(embeddings=x, labels=labels.astype(int))
    support, query, tags = np.arange(12), np.arange(12, 30), np.array([2, 0])
    expected = prototype_scores(
        support=x[support], support_labels=labels[:12][:, [2, 0]], queries=x[12:]
    )
    np.testing.assert_array_equal(method(support, query, tags), expected)
    bad = x.copy()
    bad[4, 1] = np.inf
    with pytest.raises(PipelineError, match="track row 4 are not finite"):
        prototype_method(embeddings=bad, labels=labels)
    with pytest.raises(PipelineError, match="for 30 tracks"):
        prototype_method(embeddings=x[:10], labels=labels)
    with pytest.raises(PipelineError, match="support_labels has 3 rows but support has 2"):
        prototype_scores(support=x[:2], support_labels=labels[:3], queries=x[2:])
