"""The bag-of-frames trainer (:func:`pipeline.training.bag_of_frames.train_bag_of_frames`) on
synthetic stores: it learns, it saves a plain checkpoint, its tagger loads and reproduces it.

The stores of :func:`tests.helpers.synthetic.build_synthetic` (fixture ``synthetic``): tag
``low`` is a tone in band 3, tag ``high`` a tone in band 11; 24 train / 8 valid / 8 test
tracks of 1 to 3 windows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.errors import ConfigError, PipelineError
from pipeline.evaluation.metrics import macro_auc
from pipeline.evaluation.predict import predict_split
from pipeline.evaluation.tables import HISTORY_COLUMNS
from pipeline.inference.loading import load_tagger
from pipeline.io.checkpoint import save_checkpoint
from pipeline.training.bag_of_frames import SELECTION
from tests.helpers.training import SUMMARY_KEYS, fit_two_stage, stored_tracks

BOF = {"codebook_size": 16, "hidden": 16, "max_frames": 2000}
BOF_TRAIN = {"epochs": 15, "batch_size": 8, "lr": 1e-2, "patience": 5}


def _fit(data: dict, out: Path, architecture: str, hparams: dict, **cfg) -> dict:
    return fit_two_stage(data, out, architecture, hparams, **cfg)


_tracks = stored_tracks


@pytest.fixture(scope="module")
def fitted(synthetic: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("bag_of_frames")
    summaries = {"bag_of_frames": _fit(synthetic, root / "bof", "bag_of_frames", BOF, **BOF_TRAIN)}
    return {
        **synthetic,
        "root": root,
        "summaries": summaries,
        "dirs": {"bag_of_frames": root / "bof"},
    }


def test_tags_are_learned(fitted: dict) -> None:
    architecture = "bag_of_frames"
    tagger = load_tagger(fitted["dirs"][architecture] / "checkpoint.pt")
    songs, labels = [], []
    for windows, valid, tags in _tracks(fitted, "test"):
        _, song = tagger.predict_track(windows, valid_frames=valid)
        songs.append(song)
        labels.append([t in tags for t in fitted["tags"]])
    roc, _, n_scored = macro_auc(np.array(labels, float), np.array(songs))
    assert n_scored == 2 and roc > 0.9, roc


def test_outputs_match_the_network_trainer(fitted: dict) -> None:
    architecture = "bag_of_frames"
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


def test_summary_states_the_codebook(fitted: dict) -> None:
    summary = fitted["summaries"]["bag_of_frames"]
    assert summary["selection"] == SELECTION and summary["device"] == "cpu"
    assert summary["codebook_size"] == 16 and summary["amp"] is False
    # Each train track gives its audio frames (overlapping windows share one frame: a window
    # adds at most its 63-frame hop, the last one all its valid frames), at most
    # ceil(max_frames / 24) = 84 of them; together fewer than max_frames=2000.
    per_track = [
        int(np.minimum(valid[:-1], 63).sum() + valid[-1])
        for _, valid, _ in _tracks(fitted, "train")
    ]
    assert len(per_track) == 24 and max(per_track) > 84
    assert summary["n_codebook_frames"] == sum(min(n, 84) for n in per_track) < 2000
    assert summary["stopped_early"] == (summary["epochs_run"] < BOF_TRAIN["epochs"])
    raw = torch.load(fitted["dirs"]["bag_of_frames"] / "checkpoint.pt", weights_only=True)
    assert raw["selection"]["criterion"] == SELECTION and raw["bandwidth"] > 0
    assert raw["train_config"]["epochs"] == BOF_TRAIN["epochs"]


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


def test_bad_settings_are_config_errors(fitted: dict, tmp_path: Path) -> None:
    cases = [
        ("bag_of_frames", {"codebok_size": 8}, {}, r"\['codebok_size'\]"),
        ("bag_of_frames", {"codebook_size": 1}, {}, "codebook_size: 1"),
        ("bag_of_frames", {"soft": "yes"}, {}, "soft: 'yes'"),
        ("bag_of_frames", BOF, {"crop_frames": 8}, "crop_frames: 8"),
    ]
    for architecture, hparams, cfg, match in cases:
        with pytest.raises(ConfigError, match=match):
            _fit(fitted, tmp_path / "x", architecture, hparams, **cfg)
