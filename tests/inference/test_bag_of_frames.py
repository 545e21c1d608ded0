"""The bag-of-frames tagger: codeword histograms of windows and tracks, and the MLP on them.

Windows are built from the codewords themselves, so the histograms are known fractions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import ConfigError, PipelineError
from pipeline.inference.bag_of_frames import BagOfFramesConfig, BagOfFramesTagger, HistogramMLP
from tests.helpers.checkpoints import RANDOM_STATS, random_bag_of_frames_checkpoint
from tests.helpers.synthetic import N_BINS, N_FRAMES

MEAN, STD = RANDOM_STATS["mean"][0], RANDOM_STATS["std"][0]


def _windows_of_codewords(tagger: BagOfFramesTagger, codes: list[list[int]]) -> np.ndarray:
    """Raw dB windows whose normalised frame ``t`` of window ``i`` is codeword
    ``codes[i][t]`` (float16-exact: codewords rounded first)."""
    frames = np.stack([tagger.codebook[c] for c in codes])  # (n, N_FRAMES, N_BINS)
    return (frames.transpose(0, 2, 1) * STD + MEAN).astype(np.float16)


def _checkpoint() -> dict:
    """A random checkpoint of 6 codewords that float16 dB values reproduce exactly (whole
    multiples of 1 / STD)."""
    checkpoint = random_bag_of_frames_checkpoint(codebook_size=6)
    checkpoint["codebook"] = torch.round(checkpoint["codebook"] * STD) / STD
    return checkpoint


@pytest.fixture(scope="module")
def tagger() -> BagOfFramesTagger:
    return BagOfFramesTagger(_checkpoint())


def test_window_histograms_count_codewords(tagger: BagOfFramesTagger) -> None:
    codes = [[0] * 16 + [1] * 48, [2] * 32 + [5] * 32]
    windows = _windows_of_codewords(tagger, codes)
    histograms = tagger.embed_windows(windows)
    assert histograms.shape == (2, 6)
    np.testing.assert_allclose(histograms[0], [0.25, 0.75, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(histograms[1], [0, 0, 0.5, 0, 0, 0.5], atol=1e-6)
    # the second window holds 40 frames of audio: 32 of codeword 2, 8 of codeword 5
    short = tagger.embed_windows(windows, valid_frames=np.array([64, 40]))
    np.testing.assert_allclose(short[1], [0, 0, 0.8, 0, 0, 0.2], atol=1e-6)


def test_track_histogram_counts_overlapping_frames_once(tagger: BagOfFramesTagger) -> None:
    """Windows start 63 frames apart: the last frame of a window is the next one's first."""
    assert tagger.hop == 63
    codes = [[3] * 63 + [4], [4] * 10 + [1] * 54]
    track = tagger.embed_track(_windows_of_codewords(tagger, codes), valid_frames=[64, 20])
    # 63 frames of codeword 3, then window 2's 20 frames: 10 of codeword 4 and 10 of 1
    np.testing.assert_allclose(track, np.array([0, 10, 0, 63, 10, 0]) / 83, atol=1e-6)


def test_predictions_are_the_mlp_on_standardised_histograms(tagger: BagOfFramesTagger) -> None:
    codes = [[0] * 64, [1] * 32 + [2] * 32, [5] * 64]
    windows = _windows_of_codewords(tagger, codes)
    checkpoint = tagger.mlp.state_dict()
    scaler_mean, scaler_std = tagger._scale_mean.numpy(), tagger._scale_std.numpy()

    def mlp(histograms: np.ndarray) -> np.ndarray:
        x = (histograms - scaler_mean) / scaler_std
        h = np.maximum(
            x @ checkpoint["hidden.weight"].numpy().T + checkpoint["hidden.bias"].numpy(), 0
        )
        return h @ checkpoint["output.weight"].numpy().T + checkpoint["output.bias"].numpy()

    histograms = tagger.embed_windows(windows)
    np.testing.assert_allclose(tagger.predict_windows(windows), mlp(histograms), atol=1e-5)
    window_probs, song = tagger.predict_track(windows)
    np.testing.assert_allclose(window_probs, 1 / (1 + np.exp(-mlp(histograms))), atol=1e-6)
    expected = 1 / (1 + np.exp(-mlp(tagger.embed_track(windows)[None])[0]))
    np.testing.assert_allclose(song, expected, atol=1e-6)
    assert tagger.aggregation == "model" and tagger.kind == "bag_of_frames"


def test_soft_assignment_spreads_each_frame() -> None:
    tagger = BagOfFramesTagger(random_bag_of_frames_checkpoint(soft=True))
    windows = np.random.default_rng(0).normal(MEAN, STD, (2, N_BINS, N_FRAMES))
    histograms = tagger.embed_windows(windows.astype(np.float16))
    np.testing.assert_allclose(histograms.sum(axis=1), 1.0, atol=1e-5)
    assert (histograms > 0).all()  # every codeword gets some weight


def test_histogram_mlp() -> None:
    torch.manual_seed(0)
    mlp = HistogramMLP(n_inputs=4, hidden=3, n_tags=2, dropout=0.5).eval()
    x = torch.rand(5, 4)
    with torch.no_grad():
        expected = mlp.output(torch.relu(mlp.hidden(x)))
        torch.testing.assert_close(mlp(x), expected)
    assert mlp(x).shape == (5, 2)


@pytest.mark.parametrize(
    ("hparams", "message"),
    [
        ({"codebook_size": 1}, "codebook_size: 1 must be at least 2"),
        ({"codebook_size": 0}, "codebook_size: 0 must be an integer >= 1"),
        ({"max_frames": 2.5}, "max_frames: 2.5"),
        ({"hidden": True}, "hidden: True"),
        ({"soft": "yes"}, "soft: 'yes' must be true or false"),
        ({"dropout": 1.0}, r"dropout: 1.0 must be a number in \[0, 1\)"),
    ],
)
def test_bad_config_names_the_key(hparams: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=f"bag_of_frames.{message}"):
        BagOfFramesConfig(**hparams)


def test_checkpoint_keys_and_window_shape_are_checked(tagger: BagOfFramesTagger) -> None:
    checkpoint = random_bag_of_frames_checkpoint()
    del checkpoint["scaler"]
    with pytest.raises(PipelineError, match=r"'bag_of_frames' lacks key\(s\) \['scaler'\]"):
        BagOfFramesTagger(checkpoint)
    with pytest.raises(PipelineError, match=r"\(1, 16, 60\)"):
        tagger.embed_track(np.zeros((1, N_BINS, 60), np.float16))
