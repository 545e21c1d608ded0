"""Bootstrap intervals and the paired test (:mod:`pipeline.evaluation.bootstrap`), with known
answers: weighted areas equal sklearn's on the explicitly resampled tracks, identical models
are not significantly different (p = 1), a perfect model beats a random one, intervals hold
the point estimate, and the same seed gives the same numbers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from pipeline.errors import ConfigError, PipelineError
from pipeline.evaluation.bootstrap import (
    BootstrapSettings,
    bootstrap_macro_auc,
    interval,
    mean_interval,
    paired_test,
    resample_counts,
    weighted_tag_aucs,
)
from pipeline.evaluation.metrics import macro_auc


def _labels(n: int, n_tags: int, *, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_tags)) < 0.3).astype(np.int8)
    y[0], y[1] = 1, 0  # every tag has a positive and a negative
    return y


def test_resample_counts_draw_n_tracks_per_resample_reproducibly() -> None:
    counts = resample_counts(7, resamples=50, seed=3)
    assert counts.shape == (50, 7)
    assert (counts.sum(axis=1) == 7).all() and (counts >= 0).all()
    np.testing.assert_array_equal(counts, resample_counts(7, resamples=50, seed=3))
    assert not np.array_equal(counts, resample_counts(7, resamples=50, seed=4))


def test_weighted_areas_are_sklearns_on_the_repeated_tracks() -> None:
    """Ties (scores rounded to one decimal) share a step, as in sklearn."""
    rng = np.random.default_rng(1)
    n = 40
    y = (rng.random(n) < 0.3).astype(int)
    score = np.round(rng.random(n), 1)
    weights = resample_counts(n, resamples=60, seed=2)
    roc, ap = weighted_tag_aucs(y, score, weights)
    checked = 0
    for b in range(len(weights)):
        rows = np.repeat(np.arange(n), weights[b].astype(int))
        if 0 < y[rows].sum() < len(rows):
            assert roc[b] == pytest.approx(roc_auc_score(y[rows], score[rows]), abs=1e-12)
            assert ap[b] == pytest.approx(average_precision_score(y[rows], score[rows]), abs=1e-12)
            checked += 1
        else:
            assert np.isnan(roc[b]) and np.isnan(ap[b])
    assert checked > 50


def test_unit_weights_give_macro_auc_and_tags_without_positives_are_skipped() -> None:
    y = _labels(30, 4, seed=0)
    y[:, 3] = 0  # never scorable: skipped as macro_auc skips it
    score = np.random.default_rng(5).random((30, 4))
    roc, pr = bootstrap_macro_auc(y, score, np.ones((1, 30)))
    expected_roc, expected_pr, n_scored = macro_auc(y, score)
    assert n_scored == 3
    assert roc[0] == pytest.approx(expected_roc, abs=1e-12)
    assert pr[0] == pytest.approx(expected_pr, abs=1e-12)


def test_a_resample_where_no_tag_can_be_scored_is_nan_and_left_out() -> None:
    y = np.array([[1], [0], [0]])
    score = np.array([[0.9], [0.1], [0.2]])
    weights = np.array([[3.0, 0.0, 0.0], [1.0, 1.0, 1.0]])  # first: only the positive
    roc, pr = bootstrap_macro_auc(y, score, weights)
    assert np.isnan(roc[0]) and np.isnan(pr[0])
    assert roc[1] == 1.0 and pr[1] == 1.0
    assert interval(roc, confidence=0.95) == (1.0, 1.0)
    assert all(np.isnan(interval(np.array([np.nan]), confidence=0.95)))


def test_interval_holds_the_point_estimate_and_is_deterministic() -> None:
    rng = np.random.default_rng(7)
    y = _labels(80, 5, seed=7)
    score = y + rng.normal(scale=1.0, size=y.shape)  # informative, not perfect
    settings = BootstrapSettings(resamples=400, seed=11)
    weights = resample_counts(80, resamples=settings.resamples, seed=settings.seed)
    roc, pr = bootstrap_macro_auc(y, score, weights)
    point_roc, point_pr, _ = macro_auc(y, score)
    low, high = interval(roc, confidence=settings.confidence)
    assert low < point_roc < high and high - low < 0.3
    low_pr, high_pr = interval(pr, confidence=settings.confidence)
    assert low_pr < point_pr < high_pr
    again = bootstrap_macro_auc(y, score, resample_counts(80, resamples=400, seed=11))
    np.testing.assert_array_equal(roc, again[0])
    assert np.isfinite(roc).all() and np.isfinite(pr).all()


def test_identical_models_are_not_significantly_different() -> None:
    y = _labels(50, 3, seed=2)
    score = np.random.default_rng(2).random((50, 3))
    weights = resample_counts(50, resamples=200, seed=0)
    roc, _ = bootstrap_macro_auc(y, score, weights)
    test = paired_test(roc, roc, confidence=0.95)
    assert test["p_value"] == 1.0 and test["significant"] is False
    assert test["difference_ci_low"] == test["difference_ci_high"] == 0.0


def test_a_perfect_model_beats_a_random_one() -> None:
    y = _labels(60, 4, seed=3)
    perfect = y + 0.1 * np.random.default_rng(3).random(y.shape)  # positives always above
    chance = np.random.default_rng(4).random(y.shape)
    weights = resample_counts(60, resamples=500, seed=0)
    first, _ = bootstrap_macro_auc(y, perfect, weights)
    second, _ = bootstrap_macro_auc(y, chance, weights)
    assert (first == 1.0).all()
    test = paired_test(first, second, confidence=0.95)
    assert test["significant"] is True
    assert test["p_value"] == pytest.approx(2 / 501)  # no resample favours the random model
    assert 0 < test["difference_ci_low"] <= test["difference_ci_high"] <= 1
    reverse = paired_test(second, first, confidence=0.95)
    assert reverse["p_value"] == test["p_value"] and reverse["difference_ci_high"] < 0


def test_mean_interval_of_per_query_values() -> None:
    settings = BootstrapSettings(resamples=300, seed=1)
    assert mean_interval(np.full(10, 0.25), settings=settings) == (0.25, 0.25)
    values = np.random.default_rng(0).random(100)
    low, high = mean_interval(values, settings=settings)
    assert low < values.mean() < high
    assert mean_interval(values, settings=settings) == (low, high)
    assert all(np.isnan(mean_interval(np.zeros(0), settings=settings)))


def test_settings_are_checked() -> None:
    assert BootstrapSettings.from_dict({}) == BootstrapSettings(resamples=1000, seed=0)
    with pytest.raises(ConfigError, match="resamples"):
        BootstrapSettings(resamples=0)
    with pytest.raises(PipelineError, match="confidence"):
        BootstrapSettings(confidence=1.0)
    with pytest.raises(PipelineError, match="weights"):
        bootstrap_macro_auc(np.zeros((3, 2)), np.zeros((3, 2)), np.ones((4, 5)))
