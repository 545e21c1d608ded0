"""Frames, K-means codebooks and codeword histograms, on points with known clusters."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.features.codebook import codeword_weights, fit_codebook, histogram, track_frames

CENTRES = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]], dtype=np.float32)


def _clusters(n_per: int, *, sigma: float, seed: int) -> np.ndarray:
    """``n_per`` seeded Gaussian points around each of :data:`CENTRES`, shape (3 n_per, 2)."""
    rng = np.random.default_rng(seed)
    points = [c + sigma * rng.standard_normal((n_per, 2)) for c in CENTRES]
    return np.concatenate(points).astype(np.float32)


def test_track_frames_normalise_and_skip_overlap_and_padding() -> None:
    windows = np.arange(2 * 2 * 4, dtype=np.float16).reshape(2, 2, 4)  # (window, band, frame)
    mean = np.array([[1.0], [2.0]], np.float32)
    inv_std = np.array([[1.0], [0.5]], np.float32)
    frames = track_frames(windows, np.array([4, 2]), mean=mean, inv_std=inv_std, hop=3)
    assert frames.shape == (5, 2) and frames.dtype == np.float32
    # window 0 keeps frames 0..2 (the hop), window 1 its 2 valid frames
    band0 = [0, 1, 2, 8, 9]
    band1 = [4, 5, 6, 12, 13]
    np.testing.assert_allclose(frames[:, 0], np.array(band0) - 1.0)
    np.testing.assert_allclose(frames[:, 1], (np.array(band1) - 2.0) * 0.5)


def test_fit_codebook_finds_the_clusters() -> None:
    frames = _clusters(200, sigma=0.1, seed=0)
    codebook, bandwidth = fit_codebook(frames, size=3, seed=0)
    assert codebook.shape == (3, 2) and codebook.dtype == np.float32
    found = sorted(codebook.tolist(), key=lambda c: (round(c[0]), round(c[1])))
    np.testing.assert_allclose(found, CENTRES[[0, 2, 1]], atol=0.05)
    assert bandwidth == pytest.approx(2 * 0.1**2, rel=0.2)  # mean squared distance, 2 dims
    again, _ = fit_codebook(frames, size=3, seed=0)
    np.testing.assert_array_equal(again, codebook)


def test_fit_codebook_needs_enough_frames() -> None:
    with pytest.raises(PipelineError, match="5 train frames cannot make a codebook of 8"):
        fit_codebook(np.zeros((5, 2), np.float32), size=8, seed=0)


def test_hard_weights_pick_the_nearest_codeword() -> None:
    frames = np.array([[0.1, 0.2], [4.0, 1.0], [0.5, 4.4], [2.4, 0.0]], np.float32)
    weights = codeword_weights(frames, CENTRES, soft=False, bandwidth=1.0)
    assert weights.dtype == np.float32
    assert weights.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]]


def test_soft_weights_are_a_softmax_of_negative_squared_distances() -> None:
    codebook = np.array([[0.0, 0.0], [1.0, 0.0]], np.float32)
    frames = np.array([[0.0, 0.0], [0.5, 0.0], [100.0, 0.0]], np.float32)
    weights = codeword_weights(frames, codebook, soft=True, bandwidth=2.0)
    e = np.exp(-0.5)  # d^2 = 0 and 1, divided by the bandwidth 2
    np.testing.assert_allclose(weights[0], [1 / (1 + e), e / (1 + e)], atol=1e-6)
    np.testing.assert_allclose(weights[1], [0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(weights[2], [0.0, 1.0], atol=1e-6)  # far away: no overflow
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)


def test_histogram_is_the_fraction_of_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = _clusters(10, sigma=0.1, seed=1)[:25]  # 10, 10 and 5 frames
    hard = histogram(frames, CENTRES, soft=False, bandwidth=1.0)
    np.testing.assert_allclose(hard, [0.4, 0.4, 0.2], atol=1e-7)
    soft = histogram(frames, CENTRES, soft=True, bandwidth=1.0)
    assert soft.sum() == pytest.approx(1.0) and np.abs(soft - hard).max() < 1e-3
    monkeypatch.setattr("pipeline.features.codebook._CHUNK", 4)  # long tracks: in chunks
    np.testing.assert_allclose(histogram(frames, CENTRES, soft=True, bandwidth=1.0), soft)
    empty = histogram(frames[:0], CENTRES, soft=False, bandwidth=1.0)
    assert empty.tolist() == [0.0, 0.0, 0.0]


def test_codeword_assignment() -> None:
    codebook = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], np.float32)
    frames = np.array([[1.0, 0.0], [9.0, 1.0], [0.0, 7.0], [6.0, 4.0], [5.0, 0.0]], np.float32)
    hard = codeword_weights(frames, codebook, soft=False, bandwidth=1.0)
    np.testing.assert_array_equal(hard[:4].argmax(axis=1), [0, 1, 2, 1])
    np.testing.assert_array_equal(hard.sum(axis=1), 1.0)
    soft = codeword_weights(frames, codebook, soft=True, bandwidth=10.0)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    assert (soft[:4].argmax(axis=1) == [0, 1, 2, 1]).all()
    np.testing.assert_allclose(soft[4, :2], 0.5, atol=1e-4)  # halfway between two codewords
    sharp = codeword_weights(frames[:4], codebook, soft=True, bandwidth=1e-2)
    np.testing.assert_allclose(sharp, hard[:4], atol=1e-6)
