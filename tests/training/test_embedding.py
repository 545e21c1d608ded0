"""The ``embedding_svm`` trainer (:func:`pipeline.training.embedding.train_embedding_classifier`)
and its frozen network (:func:`pipeline.training.embedding.frozen_network`) on synthetic
stores: it learns, it saves a plain checkpoint, its tagger loads and reproduces it.

The stores of :func:`tests.helpers.synthetic.build_synthetic` (fixture ``synthetic``): tag
``low`` is a tone in band 3, tag ``high`` a tone in band 11; 24 train / 8 valid / 8 test
tracks of 1 to 3 windows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.evaluation.metrics import macro_auc
from pipeline.evaluation.predict import predict_split
from pipeline.evaluation.tables import HISTORY_COLUMNS
from pipeline.features.settings import FeatureSettings
from pipeline.inference.embedding import EmbeddingClassifierConfig
from pipeline.inference.loading import load_tagger
from pipeline.inference.network import NetworkTagger
from pipeline.io.checkpoint import save_checkpoint
from pipeline.training.config import TrainConfig
from pipeline.training.embedding import frozen_network
from tests.helpers.checkpoints import random_bag_of_frames_checkpoint
from tests.helpers.training import SUMMARY_KEYS, fit_two_stage, stored_tracks

FCN = {"depth": 4, "width": 4}
# Random filters followed by a global max over frequency barely tell a tone in band 3 from one
# in band 11; musicnn's timbral filters spanning every band (height 1.0) keep where it is.
MUSICNN = {"timbral_heights": [1.0], "temporal_lengths": [8]}
EMBEDDING = {"network": "musicnn", "network_hparams": MUSICNN, "C": [0.1, 1.0]}


def _fit(data: dict, out: Path, architecture: str, hparams: dict, **cfg) -> dict:
    return fit_two_stage(data, out, architecture, hparams, **cfg)


_tracks = stored_tracks


@pytest.fixture(scope="module")
def fitted(synthetic: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("embedding_svm")
    summaries = {"embedding_svm": _fit(synthetic, root / "emb", "embedding_svm", EMBEDDING)}
    return {
        **synthetic,
        "root": root,
        "summaries": summaries,
        "dirs": {"embedding_svm": root / "emb"},
    }


def test_tags_are_learned(fitted: dict) -> None:
    architecture = "embedding_svm"
    tagger = load_tagger(fitted["dirs"][architecture] / "checkpoint.pt")
    songs, labels = [], []
    for windows, valid, tags in _tracks(fitted, "test"):
        _, song = tagger.predict_track(windows, valid_frames=valid)
        songs.append(song)
        labels.append([t in tags for t in fitted["tags"]])
    roc, _, n_scored = macro_auc(np.array(labels, float), np.array(songs))
    assert n_scored == 2 and roc > 0.9, roc


def test_outputs_match_the_network_trainer(fitted: dict) -> None:
    architecture = "embedding_svm"
    out, summary = fitted["dirs"][architecture], fitted["summaries"][architecture]
    assert SUMMARY_KEYS <= set(summary) and summary["architecture"] == architecture
    assert json.loads((out / "train_summary.json").read_text()) == summary
    assert summary["params"] > 0 and summary["n_train_tracks"] == 24
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns[: len(HISTORY_COLUMNS)]) == HISTORY_COLUMNS
    assert len(history) == summary["epochs_run"] >= 1
    assert summary["best_valid_roc_auc"] == pytest.approx(history["valid_roc_auc"].max())
    assert summary["best_epoch"] == int(history["valid_roc_auc"].idxmax()) + 1

    raw = torch.load(out / "checkpoint.pt", weights_only=True)
    assert raw["tags"] == fitted["tags"] and raw["features"] == fitted["features"]
    assert raw["selection"]["epoch"] == summary["best_epoch"]
    save_checkpoint(raw, out / "copy.pt")  # only plain values: the format's own check passes
    # The tagger reproduces the validation score the checkpoint was selected on.
    songs, windows = predict_split(
        checkpoint=out / "checkpoint.pt", index=fitted["index"], split="valid"
    )
    assert windows.empty  # song predictions are the model's own (aggregation "model")
    labels = np.array([[t in row for t in fitted["tags"]] for row in songs["labels"]], float)
    roc, _, _ = macro_auc(labels, songs[fitted["tags"]].to_numpy())
    assert roc == pytest.approx(raw["selection"]["value"], abs=1e-6)


def test_each_c_of_the_grid_is_one_history_row(fitted: dict) -> None:
    """The grid of C is searched in order, one row each; the first best valid score wins."""
    summary = fitted["summaries"]["embedding_svm"]
    history = pd.read_csv(fitted["dirs"]["embedding_svm"] / "history.csv")
    assert list(history.columns) == [*HISTORY_COLUMNS, "C"]
    assert history["C"].tolist() == [0.1, 1.0] and history["epoch"].tolist() == [1, 2]
    first_best = int(np.argmax(history["valid_roc_auc"].to_numpy()))
    assert summary["C"] == history["C"].iloc[first_best]
    assert "over C in [0.1, 1.0]" in summary["selection"] and summary["stopped_early"] is False
    assert history["lr"].isna().all()  # no learning rate for a linear fit
    assert summary["embedding_dim"] == 64 and summary["classifier"] == "logistic"  # default
    assert history["train_loss"].notna().all()  # logistic: a probabilistic training loss
    assert summary["network"] == "musicnn" and summary["weights"] == "random"


def test_embedding_checkpoint_and_tagger(fitted: dict) -> None:
    path = fitted["dirs"]["embedding_svm"] / "checkpoint.pt"
    raw = torch.load(path, weights_only=True)
    summary = fitted["summaries"]["embedding_svm"]
    assert raw["kind"] == "embedding_classifier" and raw["network"]["architecture"] == "musicnn"
    assert raw["classifier"]["weight"].shape == (2, 64) and raw["classifier"]["C"] == summary["C"]
    assert summary["params"] == 2 * 65 + 2 * 64 and summary["frozen_params"] > 0
    assert str(summary["frozen_params"]) in summary["note"] and summary["C"] in (0.1, 1.0)
    tagger = load_tagger(path)
    windows, valid, _ = max(_tracks(fitted, "test"), key=lambda t: len(t[0]))
    embeddings = tagger.embed_windows(windows, valid_frames=valid)
    assert embeddings.shape == (len(windows), 64)
    np.testing.assert_allclose(tagger.embed_track(windows, valid_frames=valid), embeddings.mean(0))
    logits = tagger.predict_windows(windows, valid_frames=valid)
    _, song = tagger.predict_track(windows, valid_frames=valid)
    # linear classifier on the mean embedding: the song logit is the mean window logit
    np.testing.assert_allclose(np.log(song / (1 - song)), logits.mean(axis=0), rtol=1e-4, atol=1e-4)


def test_random_weights_are_seeded(fitted: dict, tmp_path: Path) -> None:
    features = FeatureSettings.from_dict(fitted["features"])
    common = {"tags": fitted["tags"], "features": features, "stats": fitted["stats"], "n_bins": 16}
    config = EmbeddingClassifierConfig(network="musicnn", network_hparams={"temporal_lengths": [8]})
    state = torch.get_rng_state()
    a = frozen_network(config, cfg=TrainConfig(seed=3), **common)
    b = frozen_network(config, cfg=TrainConfig(seed=3), **common)
    c = frozen_network(config, cfg=TrainConfig(seed=4), **common)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is untouched
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert not all(torch.equal(a["state_dict"][k], c["state_dict"][k]) for k in a["state_dict"])
    windows, valid, _ = _tracks(fitted, "valid")[0]
    np.testing.assert_array_equal(
        NetworkTagger(a).embed_windows(windows, valid_frames=valid),
        NetworkTagger(b).embed_windows(windows, valid_frames=valid),
    )
    # A saved network checkpoint as ``weights``: its architecture replaces ``network``.
    net = tmp_path / "net.pt"
    save_checkpoint(
        frozen_network(
            EmbeddingClassifierConfig(network="fcn", network_hparams=FCN),
            cfg=TrainConfig(),
            **common,
        ),
        net,
    )
    summary = _fit(
        fitted,
        tmp_path / "from_file",
        "embedding_svm",
        {"weights": str(net), "classifier": "svm"},
        label_fraction=0.5,
        tag_label_fraction=0.5,
    )
    assert summary["network"] == "fcn" and summary["weights"] == str(net)
    assert summary["n_train_tracks"] == 12 and 0 < summary["n_train_labels"] < 24
    history = pd.read_csv(tmp_path / "from_file" / "history.csv")
    assert math.isnan(history["train_loss"].iloc[0]) and math.isnan(history["lr"].iloc[0])


def test_bad_settings_are_config_errors(fitted: dict, tmp_path: Path) -> None:
    cases = [
        ("embedding_svm", {"network": "fcn", "hidden": 3}, {}, r"\['hidden'\]"),
        ("embedding_svm", {"classifier": "forest"}, {}, "'forest'"),
        ("embedding_svm", {"C": [1.0, -2]}, {}, r"C: \[1.0, -2\]"),
        ("embedding_svm", {"weights": "/no/such.pt"}, {}, "'/no/such.pt'"),
        ("embedding_svm", {"network": "lstm"}, {}, "'lstm'"),
        ("embedding_svm", {"network": "nope"}, {}, "'nope'"),
        ("embedding_svm", {"network": "fcn", "network_hparams": {"depht": 2}}, {}, "depht"),
    ]
    for architecture, hparams, cfg, match in cases:
        with pytest.raises(ConfigError, match=match):
            _fit(fitted, tmp_path / "x", architecture, hparams, **cfg)
    # A checkpoint of another kind is not a network to borrow.
    bof = tmp_path / "bag_of_frames.pt"
    save_checkpoint(random_bag_of_frames_checkpoint(), bof)
    with pytest.raises(ConfigError, match="'bag_of_frames'"):
        _fit(fitted, tmp_path / "x", "embedding_svm", {"weights": str(bof)})
