"""Two-stage taggers on synthetic stores: they learn, they save plain checkpoints, they load.

The stores of :func:`tests.helpers.synthetic.build_synthetic`: tag ``low`` is a tone in band 3, tag
``high`` a tone in band 11; 24 train / 8 valid / 8 test tracks of 1 to 3 windows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import pipeline.inference.loading  # noqa: F401  (registers the tagger kinds)
from pipeline.errors import ConfigError, PipelineError
from pipeline.evaluation.metrics import macro_auc
from pipeline.evaluation.predict import predict_split
from pipeline.evaluation.tables import HISTORY_COLUMNS
from pipeline.features.codebook import codeword_weights
from pipeline.features.settings import FeatureSettings
from pipeline.inference.embedding import EmbeddingClassifierConfig
from pipeline.inference.loading import load_tagger
from pipeline.inference.network import NetworkTagger
from pipeline.inference.registry import TAGGER_KINDS
from pipeline.io.checkpoint import load_checkpoint, save_checkpoint
from pipeline.training.config import TrainConfig
from pipeline.training.embedding import frozen_network
from pipeline.training.run import TWO_STAGE_TRAINERS
from pipeline.training.two_stage import StoreReader
from tests.helpers.synthetic import build_synthetic

BOF = {"codebook_size": 16, "hidden": 16, "max_frames": 2000}
BOF_TRAIN = {"epochs": 15, "batch_size": 8, "lr": 1e-2, "patience": 5}
FCN = {"depth": 4, "width": 4}
# Random filters followed by a global max over frequency barely tell a tone in band 3 from one
# in band 11; musicnn's timbral filters spanning every band (height 1.0) keep where it is.
MUSICNN = {"timbral_heights": [1.0], "temporal_lengths": [8]}
EMBEDDING = {"network": "musicnn", "network_hparams": MUSICNN, "C": [0.1, 1.0]}

#: Keys of :func:`pipeline.training.window.train_model`'s summary.
SUMMARY_KEYS = {
    "architecture",
    "params",
    "train_time_s",
    "best_epoch",
    "best_valid_roc_auc",
    "best_valid_pr_auc",
    "epochs_run",
    "stopped_early",
    "device",
    "amp",
    "selection",
    "n_train_items",
    "n_train_tracks",
    "n_train_labels",
    "n_train_positive_labels",
    "label_fraction",
    "tag_label_fraction",
}


def _fit(data: dict, out: Path, architecture: str, hparams: dict, **cfg) -> dict:
    return TWO_STAGE_TRAINERS[architecture](
        architecture=architecture,
        hparams=hparams,
        train_config=TrainConfig(**cfg),
        index=data["index"],
        stats=data["stats"],
        tags=data["tags"],
        features=data["features"],
        out_dir=out,
        progress=False,
    )


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("twostage")
    data = build_synthetic(root / "stores")
    summaries = {
        "bag_of_frames": _fit(data, root / "bof", "bag_of_frames", BOF, **BOF_TRAIN),
        "embedding_svm": _fit(data, root / "emb", "embedding_svm", EMBEDDING),
    }
    return {
        **data,
        "root": root,
        "summaries": summaries,
        "dirs": {"bag_of_frames": root / "bof", "embedding_svm": root / "emb"},
    }


def _tracks(data: dict, split: str) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
    """(windows, valid frames, tags) of every track of a split."""
    reader = StoreReader(features=FeatureSettings.from_dict(data["features"]))
    rows = data["index"][data["index"]["split"] == split]
    return [(*reader.track(row), list(row.tags)) for row in rows.itertuples(index=False)]


@pytest.mark.parametrize("architecture", ["bag_of_frames", "embedding_svm"])
def test_tags_are_learned(fitted: dict, architecture: str) -> None:
    tagger = load_tagger(fitted["dirs"][architecture] / "checkpoint.pt")
    songs, labels = [], []
    for windows, valid, tags in _tracks(fitted, "test"):
        _, song = tagger.predict_track(windows, valid_frames=valid)
        songs.append(song)
        labels.append([t in tags for t in fitted["tags"]])
    roc, _, n_scored = macro_auc(np.array(labels, float), np.array(songs))
    assert n_scored == 2 and roc > 0.9, roc


@pytest.mark.parametrize("architecture", ["bag_of_frames", "embedding_svm"])
def test_outputs_match_the_network_trainer(fitted: dict, architecture: str) -> None:
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


def test_bag_of_frames_checkpoint_and_tagger(fitted: dict) -> None:
    raw = torch.load(fitted["dirs"]["bag_of_frames"] / "checkpoint.pt", weights_only=True)
    assert raw["kind"] == "bag_of_frames" and raw["codebook"].shape == (16, 16)
    assert raw["scaler"]["mean"].shape == (16,) and raw["hparams"]["soft"] is False
    summary = fitted["summaries"]["bag_of_frames"]
    assert summary["params"] == 16 * 16 + 2 * 16 + (16 * 16 + 16) + (16 * 2 + 2)
    tagger = load_tagger(fitted["dirs"]["bag_of_frames"] / "checkpoint.pt")
    assert tagger.aggregation == "model" and tagger.tags == fitted["tags"]
    windows, valid, _ = max(_tracks(fitted, "test"), key=lambda t: len(t[0]))
    assert len(windows) > 1
    hists = tagger.embed_windows(windows, valid_frames=valid)
    assert hists.shape == (len(windows), 16)
    np.testing.assert_allclose(hists.sum(axis=1), 1.0, rtol=1e-5)
    track = tagger.embed_track(windows, valid_frames=valid)
    np.testing.assert_allclose(track.sum(), 1.0, rtol=1e-5)
    logits = tagger.predict_windows(windows, valid_frames=valid)
    window_probs, song = tagger.predict_track(windows, valid_frames=valid)
    assert logits.shape == window_probs.shape == (len(windows), 2) and song.shape == (2,)
    np.testing.assert_allclose(window_probs, 1 / (1 + np.exp(-logits)), rtol=1e-5)
    with pytest.raises(PipelineError, match=r"\(2, 16, 50\)"):
        tagger.predict_windows(np.zeros((2, 16, 50), np.float16))


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


def test_bad_settings_are_config_errors(fitted: dict, tmp_path: Path) -> None:
    cases = [
        ("bag_of_frames", {"codebok_size": 8}, {}, r"\['codebok_size'\]"),
        ("bag_of_frames", {"codebook_size": 1}, {}, "codebook_size: 1"),
        ("bag_of_frames", {"soft": "yes"}, {}, "soft: 'yes'"),
        ("bag_of_frames", BOF, {"crop_frames": 8}, "crop_frames: 8"),
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
    bof = fitted["dirs"]["bag_of_frames"] / "checkpoint.pt"
    with pytest.raises(ConfigError, match="'bag_of_frames'"):
        _fit(fitted, tmp_path / "x", "embedding_svm", {"weights": str(bof)})


def test_tagger_kinds_are_registered(fitted: dict, tmp_path: Path) -> None:
    assert {"bag_of_frames", "embedding_classifier"} <= set(TAGGER_KINDS)
    partial = tmp_path / "partial.pt"
    checkpoint = load_checkpoint(fitted["dirs"]["bag_of_frames"] / "checkpoint.pt")
    del checkpoint["codebook"]
    save_checkpoint(checkpoint, partial)
    with pytest.raises(PipelineError, match=r"'bag_of_frames' lacks key\(s\) \['codebook'\]"):
        load_tagger(partial)
