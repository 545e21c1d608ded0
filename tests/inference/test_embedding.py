"""The embedding classifier: a frozen network's embeddings, standardised, and a linear
classifier on them; its config and the check of where the network comes from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ConfigError, PipelineError
from pipeline.inference.embedding import (
    EmbeddingClassifierConfig,
    EmbeddingClassifierTagger,
    check_network_source,
)
from pipeline.inference.network import NetworkTagger
from tests.helpers.checkpoints import random_embedding_classifier_checkpoint
from tests.helpers.synthetic import N_BINS, N_FRAMES


@pytest.fixture(scope="module")
def checkpoint() -> dict:
    return random_embedding_classifier_checkpoint()


def _windows(n: int, *, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(-60.0, 6.0, size=(n, N_BINS, N_FRAMES)).astype(np.float16)


def test_logits_are_the_linear_classifier_on_standardised_embeddings(checkpoint: dict) -> None:
    tagger = EmbeddingClassifierTagger(checkpoint)
    network = NetworkTagger(checkpoint["network"])
    windows, valid = _windows(4, seed=1), np.array([64, 64, 64, 30])
    embeddings = network.embed_windows(windows, valid_frames=valid)
    np.testing.assert_array_equal(tagger.embed_windows(windows, valid_frames=valid), embeddings)
    np.testing.assert_allclose(tagger.embed_track(windows, valid_frames=valid), embeddings.mean(0))
    scaler = {k: v.numpy().astype(np.float64) for k, v in checkpoint["scaler"].items()}
    weight = checkpoint["classifier"]["weight"].numpy()
    bias = checkpoint["classifier"]["bias"].numpy()
    expected = (embeddings - scaler["mean"]) / scaler["std"] @ weight.T + bias
    logits = tagger.predict_windows(windows, valid_frames=valid)
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    window_probs, song = tagger.predict_track(windows, valid_frames=valid)
    np.testing.assert_allclose(window_probs, 1 / (1 + np.exp(-expected)), atol=1e-6)
    # linear: the classifier on the mean embedding is the mean of the window logits
    np.testing.assert_allclose(song, 1 / (1 + np.exp(-expected.mean(axis=0))), atol=1e-6)
    assert tagger.aggregation == "model" and tagger.kind == "embedding_classifier"


def test_missing_keys_are_named(checkpoint: dict) -> None:
    partial = {k: v for k, v in checkpoint.items() if k != "classifier"}
    with pytest.raises(
        PipelineError, match=r"'embedding_classifier' lacks key\(s\) \['classifier'\]"
    ):
        EmbeddingClassifierTagger(partial)


def test_config_defaults_grid_and_plain_dict() -> None:
    config = EmbeddingClassifierConfig()
    assert (config.network, config.weights, config.classifier) == ("musicnn", "random", "logistic")
    assert config.grid == [1.0]
    grid = EmbeddingClassifierConfig(C=[0.1, 1, 10], network_hparams={"pool": (2, 4)})
    assert grid.grid == [0.1, 1.0, 10.0]
    assert grid.to_dict() == {
        "network": "musicnn",
        "network_hparams": {"pool": [2, 4]},
        "weights": "random",
        "classifier": "logistic",
        "C": [0.1, 1, 10],
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classifier": "tree"}, r"classifier: 'tree' is not one of \['logistic', 'svm'\]"),
        ({"C": 0}, "C: 0 must be a number > 0"),
        ({"C": []}, r"C: \[\] must be"),
        ({"C": [1.0, -1.0]}, r"C: \[1.0, -1.0\]"),
        ({"C": True}, "C: True"),
        ({"network": 3}, "network: 3 is not a name"),
    ],
)
def test_bad_config_names_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=f"embedding_svm.{message}"):
        EmbeddingClassifierConfig(**kwargs)


def test_network_source_is_random_or_an_existing_checkpoint(tmp_path: Path) -> None:
    existing = tmp_path / "checkpoint.pt"
    existing.write_bytes(b"")
    for weights in ("random", str(existing), existing):
        check_network_source(architecture="a", network="fcn", network_hparams={}, weights=weights)
    with pytest.raises(ConfigError, match=r"a.network_hparams: \[1\] is not a mapping"):
        check_network_source(architecture="a", network="fcn", network_hparams=[1], weights="random")
    with pytest.raises(ConfigError, match="a.weights: 3 is not 'random' or a checkpoint path"):
        check_network_source(architecture="a", network="fcn", network_hparams={}, weights=3)
    missing = str(tmp_path / "missing.pt")
    with pytest.raises(ConfigError, match="missing.pt.*neither 'random' nor an existing"):
        check_network_source(architecture="a", network="fcn", network_hparams={}, weights=missing)
    with pytest.raises(ConfigError, match="neither"):
        check_network_source(architecture="a", network="fcn", network_hparams={}, weights=tmp_path)
