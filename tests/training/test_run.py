"""Which trainer fits an architecture (:func:`pipeline.training.run.get_trainer`) and the train
step as the workflow runs it (:func:`pipeline.training.run.run_training`: files in, a trained
model out), on the synthetic stores of the ``synthetic`` fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.features.settings import FeatureSettings
from pipeline.inference.embedding import EmbeddingClassifierConfig
from pipeline.inference.loading import load_tagger
from pipeline.io.checkpoint import load_checkpoint, save_checkpoint
from pipeline.io.files import write_json
from pipeline.models.registry import ARCHITECTURES
from pipeline.training.bag_of_frames import train_bag_of_frames
from pipeline.training.config import TrainConfig
from pipeline.training.embedding import frozen_network, train_embedding_classifier
from pipeline.training.run import TWO_STAGE_TRAINERS, get_trainer, run_training
from pipeline.training.sequence import train_embedding_sequence
from pipeline.training.window import train_model
from pipeline.training.zero_shot import train_zero_shot_clap


def _inputs(data: dict, folder: Path, *, tags: list[str] | None = None) -> dict[str, Path]:
    """The files the workflow hands run_training: the index, band stats and vocabulary."""
    folder.mkdir(parents=True, exist_ok=True)
    data["index"].to_parquet(folder / "index.parquet")
    write_json(data["stats"], folder / "stats.json")
    write_json({"tags": data["tags"] if tags is None else tags}, folder / "vocabulary.json")
    return {
        "index_path": folder / "index.parquet",
        "stats_path": folder / "stats.json",
        "vocabulary_path": folder / "vocabulary.json",
    }


def test_dispatch_and_registration() -> None:
    assert get_trainer("embedding_lstm") is train_embedding_sequence


def test_get_trainer_picks_the_two_stage_trainer_or_train_model() -> None:
    assert TWO_STAGE_TRAINERS == {
        "bag_of_frames": train_bag_of_frames,
        "embedding_svm": train_embedding_classifier,
        "embedding_lstm": train_embedding_sequence,
        "zero_shot_clap": train_zero_shot_clap,
    }
    assert get_trainer("bag_of_frames") is train_bag_of_frames
    assert get_trainer("embedding_svm") is train_embedding_classifier
    networks = [name for name in ARCHITECTURES if name not in TWO_STAGE_TRAINERS]
    assert {"fcn", "lstm"} <= set(networks)
    for name in networks:  # every registered network trains end to end
        assert get_trainer(name) is train_model, name


def test_run_training_trains_a_network_from_the_workflow_files(
    synthetic: dict, tmp_path: Path
) -> None:
    """The tags come from the vocabulary file (here in reverse order), the feature settings
    from the stores, the training settings from the model entry."""
    paths = _inputs(synthetic, tmp_path / "in", tags=["high", "low"])
    model = {
        "architecture": "fcn",
        "features": "logmel",
        "hparams": {"depth": 4, "width": 4},
        "train": {"epochs": 1, "batch_size": 8, "crop_frames": 32, "eval_chunks": 2},
    }
    torch.set_num_threads(2)
    summary = run_training(model=model, out_dir=tmp_path / "out", progress=False, **paths)
    assert torch.get_num_threads() == 1  # threads=1 by default
    assert summary["architecture"] == "fcn" and summary["epochs_run"] == 1
    assert json.loads((tmp_path / "out" / "train_summary.json").read_text()) == summary
    checkpoint = load_checkpoint(tmp_path / "out" / "checkpoint.pt")
    assert checkpoint["tags"] == ["high", "low"]
    assert checkpoint["features"] == synthetic["features"]
    assert checkpoint["stats"]["mean"] == pytest.approx(synthetic["stats"]["mean"])
    assert checkpoint["train_config"] == TrainConfig.from_dict(model["train"]).to_dict()
    assert checkpoint["hparams"]["depth"] == 4 and checkpoint["crop_frames"] == 32
    assert (tmp_path / "out" / "history.csv").is_file() and (tmp_path / "out" / "last.pt").is_file()


def test_run_training_dispatches_two_stage_models(synthetic: dict, tmp_path: Path) -> None:
    model = {
        "architecture": "bag_of_frames",
        "features": "logmel",
        "hparams": {"codebook_size": 4, "hidden": 4, "max_frames": 200},
        "train": {"epochs": 2, "batch_size": 8},
    }
    summary = run_training(
        model=model, out_dir=tmp_path / "out", progress=False, **_inputs(synthetic, tmp_path)
    )
    assert summary["architecture"] == "bag_of_frames" and summary["codebook_size"] == 4
    assert load_checkpoint(tmp_path / "out" / "checkpoint.pt")["kind"] == "bag_of_frames"


def test_run_training_checks_the_train_settings(synthetic: dict, tmp_path: Path) -> None:
    model = {"architecture": "fcn", "features": "logmel", "train": {"epoch": 1}}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['epoch'\]"):
        run_training(
            model=model, out_dir=tmp_path / "out", progress=False, **_inputs(synthetic, tmp_path)
        )
    assert not (tmp_path / "out").exists()


def test_from_model_through_run_training(synthetic: dict, tmp_path: Path) -> None:
    """The workflow's path: ``hparams.from_model`` becomes the network checkpoint's path."""
    features = FeatureSettings.from_dict(synthetic["features"])
    network = tmp_path / "fcn.pt"
    save_checkpoint(
        frozen_network(
            EmbeddingClassifierConfig(network="fcn", network_hparams={"depth": 4, "width": 4}),
            cfg=TrainConfig(),
            tags=synthetic["tags"],
            features=features,
            stats=synthetic["stats"],
            n_bins=16,
        ),
        network,
    )
    synthetic["index"].to_parquet(tmp_path / "index.parquet")
    write_json(synthetic["stats"], tmp_path / "stats.json")
    write_json({"tags": synthetic["tags"]}, tmp_path / "vocabulary.json")
    model = {
        "architecture": "embedding_lstm",
        "features": "logmel",
        "hparams": {"from_model": "fcn", "lstm": {"hidden": 8, "mlp": 0}},
        "train": {"epochs": 2, "max_windows": 1, "label_fraction": 0.5},
    }
    summary = run_training(
        model=model,
        index_path=tmp_path / "index.parquet",
        stats_path=tmp_path / "stats.json",
        vocabulary_path=tmp_path / "vocabulary.json",
        out_dir=tmp_path / "out",
        network_checkpoint=network,
        progress=False,
    )
    assert summary["network"] == "fcn" and summary["weights"] == str(network)
    assert summary["n_train_tracks"] == 12 and summary["max_windows"] == 1
    assert summary["n_train_windows"] == 24  # one window per train track
    tagger = load_tagger(tmp_path / "out" / "checkpoint.pt")
    assert tagger.max_windows == 1 and tagger.model.embedding_dim == 8
