"""Per-tag linear classifiers on fixed vectors (:mod:`pipeline.training.linear`): separable
tags are separated, hidden labels are left out, a one-class tag gets its smoothed prior, and
the masked log loss on known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.training.linear import fit_linear, masked_log_loss


def _separable(n: int = 60, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x (n, 3): tag 0 is ``x0 > 0``, tag 1 is ``x1 > 0`` (margin 0.5); x2 is noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    x[:, :2] += np.sign(x[:, :2]) * 0.5
    labels = (x[:, :2] > 0).astype(np.float32)
    return x.astype(np.float32), labels


@pytest.mark.parametrize("classifier", ["logistic", "svm"])
def test_separable_tags_are_separated(classifier: str) -> None:
    x, labels = _separable()
    weight, bias = fit_linear(x, labels, np.ones_like(labels), classifier=classifier, C=1.0, seed=0)
    assert weight.shape == (2, 3) and bias.shape == (2,)
    assert weight.dtype == np.float32 and bias.dtype == np.float32
    logits = x @ weight.T + bias
    np.testing.assert_array_equal(logits > 0, labels > 0)
    # each tag leans on its own dimension
    assert abs(weight[0, 0]) > abs(weight[0, 1]) and abs(weight[1, 1]) > abs(weight[1, 0])
    assert weight[0, 0] > 0 and weight[1, 1] > 0


def test_hidden_labels_are_left_out() -> None:
    """Flipping the hidden labels changes nothing: the fit is the one on the observed rows."""
    x, labels = _separable(80, seed=1)
    rng = np.random.default_rng(2)
    masks = (rng.random(labels.shape) < 0.6).astype(np.float32)
    noisy = np.where(masks > 0, labels, 1.0 - labels)
    weight, bias = fit_linear(x, noisy, masks, classifier="logistic", C=1.0, seed=0)
    for k in range(2):
        rows = masks[:, k] > 0
        w_k, b_k = fit_linear(
            x[rows],
            labels[rows, k : k + 1],
            np.ones((rows.sum(), 1), np.float32),
            classifier="logistic",
            C=1.0,
            seed=0,
        )
        np.testing.assert_array_equal(weight[k], w_k[0])
        assert bias[k] == b_k[0]


def test_a_one_class_tag_gets_its_smoothed_prior() -> None:
    x, labels = _separable(20)
    labels = np.concatenate([labels, np.zeros((20, 1), np.float32)], axis=1)
    masks = np.ones_like(labels)
    masks[:5, 0] = 0.0
    labels[:, 0] = 1.0  # tag 0: only positives
    labels[:5, 0] = 0.0  # ... among the observed ones (the negatives are hidden)
    weight, bias = fit_linear(x, labels, masks, classifier="svm", C=1.0, seed=0)
    np.testing.assert_array_equal(weight[[0, 2]], 0.0)
    # (positives + 0.5) / (observed + 1): 15.5 / 16 for tag 0, 0.5 / 21 for tag 2
    assert bias[0] == pytest.approx(math.log(15.5 / 0.5), rel=1e-6)
    assert bias[2] == pytest.approx(math.log(0.5 / 20.5), rel=1e-6)
    assert weight[1].any()  # tag 1 has both classes: a real fit
    nothing = np.zeros_like(masks)
    _, prior = fit_linear(x, labels, nothing, classifier="logistic", C=1.0, seed=0)
    np.testing.assert_allclose(prior, 0.0, atol=1e-7)  # no label: prior 0.5, logit 0


def test_fits_are_deterministic_and_c_regularises() -> None:
    x, labels = _separable(60, seed=3)
    masks = np.ones_like(labels)
    a = fit_linear(x, labels, masks, classifier="svm", C=1.0, seed=5)
    b = fit_linear(x, labels, masks, classifier="svm", C=1.0, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    small, _ = fit_linear(x, labels, masks, classifier="logistic", C=0.01, seed=0)
    large, _ = fit_linear(x, labels, masks, classifier="logistic", C=100.0, seed=0)
    assert (np.linalg.norm(small, axis=1) < np.linalg.norm(large, axis=1)).all()


def test_masked_log_loss_known_values() -> None:
    labels = np.array([[1.0, 0.0], [0.0, 1.0]])
    zero = np.zeros((2, 2))
    assert masked_log_loss(labels, np.ones((2, 2)), zero) == pytest.approx(math.log(2.0))
    logits = np.array([[math.log(3.0), 50.0], [0.0, -50.0]])  # p = 0.75, ~1, 0.5, ~0
    only_first = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert masked_log_loss(labels, only_first, logits) == pytest.approx(-math.log(0.75))
    two = np.array([[1.0, 0.0], [1.0, 0.0]])
    expected = (-math.log(0.75) + math.log(2.0)) / 2
    assert masked_log_loss(labels, two, logits) == pytest.approx(expected)
    # the confidently wrong labels are clipped at p = 1e-7, not infinite
    wrong = masked_log_loss(labels, np.array([[0.0, 1.0], [0.0, 1.0]]), logits)
    assert wrong == pytest.approx(-math.log(1e-7), rel=1e-4)
    assert masked_log_loss(labels, np.zeros((2, 2)), logits) == 0.0
