"""The zero-shot tagger on synthetic embeddings with known cosines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.features.settings import FeatureSettings
from pipeline.inference.zero_shot import ZeroShotTagger
from pipeline.numeric import sigmoid


def _checkpoint(**changes) -> dict:
    features = FeatureSettings.from_dict(
        {
            "kind": "encoder",
            "sample_rate": 48000,
            "encoder": {"model": "some/clap", "n_layers": 1, "dim": 2},
        },
        name="clap",
    )
    checkpoint = {
        "format_version": 1,
        "kind": "zero_shot",
        "tags": ["east", "north"],
        "features": features.to_dict(),
        "stats": {"mean": [0.0], "std": [1.0]},
        "text_embeddings": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        "prompts": ["east music", "north music"],
        "scale": 10.0,
        "layer": 0,
    }
    return {**checkpoint, **changes}


def test_logits_are_scaled_cosines_and_songs_the_mean_probability():
    tagger = ZeroShotTagger(_checkpoint())
    windows = np.array([[[3.0, 4.0]], [[0.0, -2.0]]], dtype=np.float16)  # (2, 1, 2)
    expected = 10.0 * np.array([[0.6, 0.8], [0.0, -1.0]])
    np.testing.assert_allclose(tagger.predict_windows(windows), expected, rtol=1e-3)
    probs, song = tagger.predict_track(windows)
    np.testing.assert_allclose(probs, sigmoid(expected), rtol=1e-3)
    np.testing.assert_allclose(song, sigmoid(expected).mean(axis=0), rtol=1e-3)
    np.testing.assert_allclose(tagger.embed_track(windows), [0.3, -0.1], rtol=1e-3)
    assert tagger.aggregation == "mean"


def test_bad_checkpoints_and_windows_are_named():
    with pytest.raises(PipelineError, match="2 text embeddings for 3 tags"):
        ZeroShotTagger(_checkpoint(tags=["a", "b", "c"]))
    with pytest.raises(PipelineError, match="lacks key"):
        ZeroShotTagger({k: v for k, v in _checkpoint().items() if k != "scale"})
    with pytest.raises(PipelineError, match=r"not \(n, 1, 2\)"):
        ZeroShotTagger(_checkpoint()).predict_windows(np.zeros((1, 1, 3)))
