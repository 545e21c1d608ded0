"""Song-level aggregation of window predictions: mean, max, auto-pooling and its fitting."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from pipeline.errors import PipelineError
from pipeline.inference.aggregate import (
    AGGREGATIONS,
    aggregate,
    fit_autopool_alpha,
    offsets_from_track_ids,
    register_aggregation,
)

N_TAGS = 3


def _windows(*, n_tracks: int, n_windows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random logits, shape (n_tracks * n_windows, N_TAGS), and their offsets."""
    rng = np.random.default_rng(seed)
    offsets = np.arange(n_tracks + 1) * n_windows
    return rng.normal(0.0, 2.0, size=(n_tracks * n_windows, N_TAGS)), offsets


def test_registry_holds_the_three_methods() -> None:
    assert {"mean", "max", "autopool"} <= set(AGGREGATIONS)
    assert AGGREGATIONS["autopool"].uses_alpha and not AGGREGATIONS["mean"].uses_alpha


def test_single_window_tracks_are_the_same_for_every_method() -> None:
    logits, offsets = _windows(n_tracks=7, n_windows=1, seed=0)
    expected = expit(logits)
    alpha = np.array([-3.0, 0.0, 8.0])
    for method in ("mean", "max", "autopool"):
        out = aggregate(
            window_logits=logits,
            offsets=offsets,
            method=method,
            alpha=alpha if AGGREGATIONS[method].uses_alpha else None,
        )
        np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_mean_and_max_of_uneven_tracks() -> None:
    logits = logit(np.array([[0.2], [0.6], [0.5], [0.9], [0.1], [0.3]]))
    offsets = np.array([0, 2, 3, 6])  # tracks of 2, 1 and 3 windows
    mean = aggregate(window_logits=logits, offsets=offsets, method="mean")
    top = aggregate(window_logits=logits, offsets=offsets, method="max")
    np.testing.assert_allclose(mean[:, 0], [0.4, 0.5, 13 / 30])
    np.testing.assert_allclose(top[:, 0], [0.6, 0.5, 0.9])


def test_autopool_limits() -> None:
    logits, offsets = _windows(n_tracks=20, n_windows=6, seed=1)
    mean = aggregate(window_logits=logits, offsets=offsets, method="mean")
    top = aggregate(window_logits=logits, offsets=offsets, method="max")
    zero = aggregate(window_logits=logits, offsets=offsets, method="autopool", alpha=np.zeros(3))
    np.testing.assert_allclose(zero, mean, rtol=1e-12)
    # Each of the 5 other windows pulls the result down by at most
    # max_x x exp(-alpha x) = 1 / (alpha e) below the max: 5 / (50 e) < 0.037.
    large = aggregate(
        window_logits=logits, offsets=offsets, method="autopool", alpha=np.full(3, 50.0)
    )
    assert np.all(large <= top + 1e-12) and np.all(top - large < 5 / (50 * np.e))
    small = aggregate(
        window_logits=logits, offsets=offsets, method="autopool", alpha=np.full(3, -50.0)
    )
    low = -np.maximum.reduceat(-expit(logits), offsets[:-1], axis=0)
    assert np.all(small - low < 5 / (50 * np.e))
    # Between mean and max for positive alpha, and numerically stable for huge alpha.
    mid = aggregate(window_logits=logits, offsets=offsets, method="autopool", alpha=np.full(3, 3.0))
    assert np.all((mean <= mid + 1e-12) & (mid <= top + 1e-12))
    huge = aggregate(
        window_logits=logits, offsets=offsets, method="autopool", alpha=np.full(3, 1e6)
    )
    np.testing.assert_allclose(huge, top)


def test_track_ids_equal_offsets() -> None:
    logits, offsets = _windows(n_tracks=3, n_windows=2, seed=2)
    ids = ["b", "b", "a", "a", "c", "c"]
    found, tracks = offsets_from_track_ids(ids)
    np.testing.assert_array_equal(found, offsets)
    assert tracks.tolist() == ["b", "a", "c"]
    np.testing.assert_array_equal(
        aggregate(window_logits=logits, track_ids=ids, method="max"),
        aggregate(window_logits=logits, offsets=offsets, method="max"),
    )
    with pytest.raises(PipelineError, match="'a' are not contiguous"):
        offsets_from_track_ids(["a", "b", "a"])


def test_fit_recovers_max_when_a_label_means_any_window() -> None:
    rng = np.random.default_rng(3)
    n_tracks, n_windows = 300, 6
    offsets = np.arange(n_tracks + 1) * n_windows
    active = rng.random((n_tracks * n_windows, N_TAGS)) < 0.15
    logits = np.where(active, 4.0, -4.0) + rng.normal(0.0, 0.5, size=active.shape)
    y_true = np.maximum.reduceat(active, offsets[:-1], axis=0).astype(float)
    alpha = fit_autopool_alpha(window_logits=logits, offsets=offsets, y_true=y_true)
    assert np.all(alpha >= 8.0)


def test_fit_recovers_mean_when_a_label_is_drawn_from_the_average() -> None:
    logits, offsets = _windows(n_tracks=400, n_windows=6, seed=4)
    mean = aggregate(window_logits=logits, offsets=offsets, method="mean")
    y_true = (np.random.default_rng(5).random(mean.shape) < mean).astype(float)
    alpha = fit_autopool_alpha(window_logits=logits, offsets=offsets, y_true=y_true)
    assert np.all(np.abs(alpha) < 1.0)


def test_fit_falls_back_to_the_mean_when_the_loss_is_flat_or_a_tag_is_constant() -> None:
    logits, offsets = _windows(n_tracks=30, n_windows=1, seed=6)
    y_true = (np.random.default_rng(7).random((30, N_TAGS)) < 0.5).astype(float)
    alpha = fit_autopool_alpha(window_logits=logits, offsets=offsets, y_true=y_true)
    np.testing.assert_array_equal(alpha, 0.0)  # one window per track: every alpha is equal

    logits, offsets = _windows(n_tracks=30, n_windows=4, seed=8)
    y_true[:, 1] = 0.0  # no positive
    alpha = fit_autopool_alpha(window_logits=logits, offsets=offsets, y_true=y_true)
    assert alpha[1] == 0.0


def test_custom_aggregation_can_be_registered() -> None:
    @register_aggregation("first")
    def _first(p: np.ndarray, offsets: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        return p[offsets[:-1]]

    try:
        logits, offsets = _windows(n_tracks=3, n_windows=2, seed=9)
        out = aggregate(window_logits=logits, offsets=offsets, method="first")
        np.testing.assert_allclose(out, expit(logits[[0, 2, 4]]))
    finally:
        del AGGREGATIONS["first"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "median"}, "'median' is not one of"),
        ({"method": "autopool"}, "needs a per-tag alpha"),
        ({"method": "autopool", "alpha": np.zeros(2)}, r"shape \(3,\)"),
        ({"method": "mean", "alpha": np.zeros(3)}, "takes no alpha"),
        ({"offsets": np.array([0, 2, 2, 4])}, "track 1 has no windows"),
        ({"offsets": np.array([0, 3])}, "from 0 to n_windows = 4"),
        ({"offsets": None}, "exactly one of offsets and track_ids"),
        ({"window_logits": np.full((4, 3), np.nan)}, "not finite at window 0"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs: dict, match: str) -> None:
    arguments = {"window_logits": np.zeros((4, 3)), "offsets": np.array([0, 2, 4])} | kwargs
    with pytest.raises(PipelineError, match=match):
        aggregate(**arguments)
