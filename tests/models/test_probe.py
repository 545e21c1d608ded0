"""Probes on frozen encoder embeddings: shapes, layer choice, learned layer weights, and
training through the one loop on real tiny-encoder stores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.inference.loading import load_tagger
from pipeline.io.checkpoint import load_checkpoint
from pipeline.io.files import read_json
from pipeline.models import build_model
from pipeline.training.run import run_training
from tests.helpers.encoders import encoder_dataset


def test_linear_and_mlp_probes_map_layers_by_dim_to_logits():
    x = torch.randn(5, 4, 32)
    linear = build_model("probe_linear", n_tags=3, n_bins=4, n_frames=32, hparams={"layer": -1})
    mlp = build_model("probe_mlp", n_tags=3, n_bins=4, n_frames=32, hparams={"hidden": 8})
    assert linear(x).shape == (5, 3) and mlp(x).shape == (5, 3)
    torch.testing.assert_close(linear.embed(x), x[:, 3])
    assert mlp.embed(x).shape == (5, 8)
    np.testing.assert_allclose(linear.layer_weights().numpy(), [0, 0, 0, 1])
    np.testing.assert_allclose(mlp.layer_weights().numpy(), [0.25] * 4)


def test_weighted_sum_of_equal_layers_is_that_layer():
    probe = build_model("probe_linear", n_tags=2, n_bins=3, n_frames=6)
    x = torch.randn(2, 1, 6).expand(2, 3, 6)
    torch.testing.assert_close(probe.embed(x), x[:, 0])


def test_probe_settings_are_checked():
    with pytest.raises(ConfigError, match="probe_linear.layer: 4 is not a stored layer"):
        build_model("probe_linear", n_tags=2, n_bins=4, n_frames=8, hparams={"layer": 4})
    with pytest.raises(ConfigError, match="probe_mlp.hidden"):
        build_model("probe_mlp", n_tags=2, n_bins=4, n_frames=8, hparams={"hidden": 0})


@pytest.mark.parametrize("architecture", ["probe_linear", "probe_mlp"])
def test_probe_trains_on_encoder_stores_and_records_the_licence(
    tiny_encoders, tmp_path, architecture
):
    data = encoder_dataset(tmp_path / "data", tiny_encoders["hubert"])
    out = tmp_path / architecture
    summary = run_training(
        model={
            "architecture": architecture,
            "features": "enc",
            "hparams": {"hidden": 16} if architecture == "probe_mlp" else {},
            "train": {"epochs": 8, "batch_size": 4, "lr": 0.01, "patience": 8},
        },
        index_path=data["index_path"],
        stats_path=data["stats_path"],
        vocabulary_path=data["vocabulary_path"],
        out_dir=out,
        progress=False,
    )
    assert summary["licence"] == "cc-by-nc-4.0"
    assert read_json(out / "train_summary.json")["licence"] == "cc-by-nc-4.0"
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint["licence"] == "cc-by-nc-4.0"
    assert checkpoint["features"]["encoder"]["n_layers"] == 4
    tagger = load_tagger(out / "checkpoint.pt")
    test = data["index"][data["index"]["split"] == "test"].iloc[0]
    from pipeline.io.store import FeatureStore

    windows = FeatureStore(test["store"]).track_windows(track=int(test["track"]))
    window_probs, song = tagger.predict_track(windows)
    assert window_probs.shape == (len(windows), 3) and song.shape == (3,)
    assert tagger.embed_track(windows).ndim == 1
