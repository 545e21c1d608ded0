"""End-to-end network training (:func:`pipeline.training.window.train_model`) on synthetic
stores: it learns, it resumes exactly, it writes what it promises."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import pipeline.training.window as train_module
from pipeline.errors import ConfigError
from pipeline.evaluation.tables import HISTORY_COLUMNS
from pipeline.io.checkpoint import load_checkpoint
from pipeline.training.config import SELECTION, TrainConfig
from pipeline.training.window import train_model
from tests.helpers.training import SUMMARY_KEYS

FCN = {"depth": 4, "width": 4, "dropout": 0.1}
LSTM = {"hidden": 16, "mlp": 16, "dropout": 0.1}


def _train(data: dict, out: Path, *, architecture: str = "fcn", hparams=None, **cfg) -> dict:
    config = TrainConfig(
        **{"batch_size": 8, "lr": 3e-3, "warmup_epochs": 0.5, "patience": 20, **cfg}
    )
    return train_model(
        architecture=architecture,
        hparams=FCN if hparams is None else hparams,
        train_config=config,
        index=data["index"],
        stats=data["stats"],
        tags=data["tags"],
        features=data["features"],
        out_dir=out,
        progress=False,
    )


def test_training_learns_the_synthetic_tags(synthetic: dict, tmp_path: Path) -> None:
    summary = _train(synthetic, tmp_path, epochs=4, lr=1e-2, tensorboard=True)
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history.columns) == HISTORY_COLUMNS
    assert history["epoch"].tolist() == list(range(1, 5))
    assert history["train_loss"].iloc[-1] < 0.7 * history["train_loss"].iloc[0]
    assert history["valid_roc_auc"].max() > 0.9
    assert summary["best_valid_roc_auc"] == pytest.approx(history["valid_roc_auc"].max())
    assert summary["best_epoch"] == int(history["valid_roc_auc"].idxmax()) + 1
    assert summary["selection"] == SELECTION and summary["device"] == "cpu"
    assert summary["params"] > 0 and summary["epochs_run"] == 4
    assert SUMMARY_KEYS <= set(summary)  # the keys the two-stage trainers promise too
    assert json.loads((tmp_path / "train_summary.json").read_text()) == summary
    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint["selection"]["epoch"] == summary["best_epoch"]
    assert checkpoint["tags"] == synthetic["tags"] and checkpoint["input_kind"] == "window"
    # train.tensorboard: the same curves as TensorBoard events next to history.csv
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    logged = [(e.step, e.value) for e in events.Scalars("valid_roc_auc")]
    assert logged == [
        (epoch, pytest.approx(value, rel=1e-6))
        for epoch, value in zip(history["epoch"], history["valid_roc_auc"], strict=True)
    ]


def test_sequence_model_trains(synthetic: dict, tmp_path: Path) -> None:
    summary = _train(
        synthetic,
        tmp_path,
        architecture="lstm",
        hparams=LSTM,
        epochs=5,
        batch_size=4,
        pool_frames=8,
        lr=1e-2,
    )
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["train_loss"].iloc[-1] < 0.9 * history["train_loss"].iloc[0]
    assert summary["best_valid_roc_auc"] > 0.75  # an LSTM learns this task more slowly
    assert load_checkpoint(tmp_path / "checkpoint.pt")["input_kind"] == "sequence"
    with pytest.raises(ConfigError, match="crop_frames"):
        _train(synthetic, tmp_path / "x", architecture="lstm", hparams=LSTM, crop_frames=8)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("crop_frames", [None, 32])
def test_two_loader_workers_train_exactly_as_one_process(
    synthetic: dict, tmp_path: Path, crop_frames: int | None
) -> None:
    """Batches read in worker processes (shared, reused buffers): the same weights and
    history as batches read in the training process."""
    cfg = {"epochs": 2, "crop_frames": crop_frames, "eval_chunks": 3}
    _train(synthetic, tmp_path / "in_process", **cfg, num_workers=0)
    _train(synthetic, tmp_path / "workers", **cfg, num_workers=2)
    _assert_same_weights(
        _weights(tmp_path / "in_process" / "last.pt"), _weights(tmp_path / "workers" / "last.pt")
    )
    a, b = (pd.read_csv(tmp_path / run / "history.csv") for run in ("in_process", "workers"))
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))


def test_more_epochs_continue_where_the_last_run_ended(synthetic: dict, tmp_path: Path) -> None:
    # A constant learning rate, so that 2 + 2 epochs and 4 epochs follow the same schedule.
    cfg = {"crop_frames": 32, "eval_chunks": 3, "min_lr_fraction": 1.0, "warmup_epochs": 0.0}
    _train(synthetic, tmp_path / "straight", epochs=4, **cfg)
    assert not (tmp_path / "straight" / "tensorboard").exists()  # off by default
    _train(synthetic, tmp_path / "resumed", epochs=2, **cfg)
    assert len(pd.read_csv(tmp_path / "resumed" / "history.csv")) == 2
    summary = _train(synthetic, tmp_path / "resumed", epochs=4, **cfg)
    history = pd.read_csv(tmp_path / "resumed" / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4] and summary["epochs_run"] == 4
    _assert_same_weights(
        _weights(tmp_path / "straight" / "last.pt"), _weights(tmp_path / "resumed" / "last.pt")
    )
    straight = pd.read_csv(tmp_path / "straight" / "history.csv")
    pd.testing.assert_frame_equal(history.drop(columns="seconds"), straight.drop(columns="seconds"))


def test_an_interrupted_run_resumes_exactly(
    synthetic: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = {"epochs": 3, "crop_frames": 32, "eval_chunks": 3}  # warm-up, cosine over 3 epochs
    _train(synthetic, tmp_path / "straight", **cfg)

    save = train_module._save_state

    def crash_after_epoch_2(state: dict, path: Path) -> None:
        save(state, path)
        if state["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_save_state", crash_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        _train(synthetic, tmp_path / "resumed", **cfg)
    monkeypatch.setattr(train_module, "_save_state", save)
    (tmp_path / "resumed" / "checkpoint.pt").unlink()  # as Snakemake removes a failed job's outputs
    _train(synthetic, tmp_path / "resumed", **cfg, num_workers=1)  # workers change nothing
    _assert_same_weights(
        _weights(tmp_path / "straight" / "last.pt"), _weights(tmp_path / "resumed" / "last.pt")
    )
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert a["selection"] == b["selection"]
    _assert_same_weights(a["state_dict"], b["state_dict"])

    # Other settings: last.pt is not reused.
    summary = _train(synthetic, tmp_path / "resumed", **{**cfg, "epochs": 1, "lr": 1e-3})
    assert summary["epochs_run"] == 1


def test_early_stopping_and_label_budget(synthetic: dict, tmp_path: Path) -> None:
    summary = _train(
        synthetic,
        tmp_path,
        epochs=30,
        patience=1,
        lr=1e-9,
        warmup_epochs=0.0,
        label_fraction=0.5,
        tag_label_fraction=0.5,
    )
    assert summary["stopped_early"] and summary["epochs_run"] < 30
    assert summary["n_train_tracks"] == 12
    assert 0 < summary["n_train_labels"] < 24
    assert not math.isnan(summary["best_valid_roc_auc"])
