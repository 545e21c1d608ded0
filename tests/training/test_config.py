"""Training settings (:mod:`pipeline.training.config`): :class:`TrainConfig`'s checks, the
learning-rate schedule on known values, the masked loss and the selection texts."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.training.config import (
    SELECTION,
    SEQUENCE_SELECTION,
    TrainConfig,
    learning_rate,
    masked_bce,
    selection_text,
)


def test_learning_rate_warms_up_then_decays() -> None:
    kw = {"total_steps": 100, "warmup_steps": 10, "base_lr": 1.0, "min_lr": 0.1}
    rates = [learning_rate(step=s, **kw) for s in range(120)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(rates[:10], rates[1:10], strict=False))
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[55] == pytest.approx(0.55)  # half way through the decay
    assert rates[100] == rates[119] == pytest.approx(0.1)
    assert learning_rate(step=0, total_steps=10, warmup_steps=0, base_lr=2.0, min_lr=0.0) == 2.0


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.25),  # warm-up: base_lr * (step + 1) / warmup_steps
        (1, 0.5),
        (3, 1.0),
        (4, 1.0),  # the decay starts at the peak
        (8, (1 + math.cos(math.pi / 4)) / 2),  # a quarter of the decay
        (12, 0.5),  # half way: the mean of base and min
        (20, 0.0),  # the end
        (500, 0.0),  # and it stays there
    ],
)
def test_learning_rate_known_values(step: int, expected: float) -> None:
    rate = learning_rate(step=step, total_steps=20, warmup_steps=4, base_lr=1.0, min_lr=0.0)
    assert rate == pytest.approx(expected, abs=1e-12)


def test_learning_rate_constant_when_min_equals_base() -> None:
    kw = {"total_steps": 7, "warmup_steps": 0, "base_lr": 0.3, "min_lr": 0.3}
    assert [learning_rate(step=s, **kw) for s in range(10)] == pytest.approx([0.3] * 10)


def test_train_config_checks_values() -> None:
    with pytest.raises(ConfigError, match="batch_size: 0"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="label_fraction: 1.5"):
        TrainConfig(label_fraction=1.5)
    with pytest.raises(ConfigError, match=r"\['optimiser'\]"):
        TrainConfig.from_dict({"optimiser": "sgd"})
    assert TrainConfig.from_dict({"epochs": 3}).epochs == 3


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"epochs": 0}, "train.epochs: 0 must be an integer >= 1"),
        ({"epochs": 2.5}, "train.epochs: 2.5 must be an integer >= 1"),
        ({"patience": True}, "train.patience: True must be an integer >= 1"),
        ({"pool_frames": 0}, "train.pool_frames: 0"),
        ({"max_windows": -1}, "train.max_windows: -1"),
        ({"eval_chunks": 0}, "train.eval_chunks: 0"),
        ({"num_workers": -1}, "train.num_workers: -1 must be an integer >= 0"),
        ({"seed": -1}, "train.seed: -1 must be an integer >= 0"),
        ({"crop_frames": 0}, "train.crop_frames: 0 must be an integer >= 1"),
        ({"lr": 0.0}, "train.lr: 0.0 must be > 0"),
        ({"lr": -1e-3}, "train.lr: -0.001 must be a number >= 0"),
        ({"weight_decay": "none"}, "train.weight_decay: 'none' must be a number >= 0"),
        ({"warmup_epochs": -0.5}, "train.warmup_epochs: -0.5"),
        ({"min_lr_fraction": 1.5}, "train.min_lr_fraction: 1.5 must be a number in [0, 1]"),
        ({"label_fraction": 0.0}, "train.label_fraction: 0.0"),
        ({"tag_label_fraction": True}, "train.tag_label_fraction: True"),
    ],
)
def test_train_config_errors_quote_the_value(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        TrainConfig(**settings)
    assert message in str(excinfo.value)


def test_train_config_edges_and_round_trip() -> None:
    default = TrainConfig()
    assert default.crop_frames is None and default.label_fraction == 1.0
    edges = TrainConfig(min_lr_fraction=0.0, warmup_epochs=0, crop_frames=1, num_workers=0)
    assert edges.min_lr_fraction == 0.0 and edges.crop_frames == 1
    plain = edges.to_dict()
    assert plain["crop_frames"] == 1 and set(plain) == {f.name for f in dataclasses.fields(edges)}
    assert TrainConfig.from_dict(plain) == edges
    with pytest.raises(dataclasses.FrozenInstanceError):
        edges.epochs = 5  # type: ignore[misc]
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['lr_max', 'steps'\]"):
        TrainConfig.from_dict({"steps": 1, "lr_max": 1.0, "epochs": 1})


def test_masked_bce_averages_the_observed_labels_only() -> None:
    logits = torch.tensor([[0.0, 10.0], [2.0, -3.0]])
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    everything = masked_bce(logits, y, torch.ones(2, 2))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    assert everything.item() == pytest.approx(expected.item(), rel=1e-6)
    # only the first label observed: its loss is -log(sigmoid(0)) = log 2
    first = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert masked_bce(logits, y, first).item() == pytest.approx(math.log(2.0), rel=1e-6)
    # the hidden label (logit 10 for a negative: a loss of about 10) does not count
    assert masked_bce(logits, y, first).item() < everything.item()
    assert masked_bce(logits, y, torch.zeros(2, 2)).item() == 0.0  # nothing observed
    half = masked_bce(logits.half(), y, torch.ones(2, 2))  # float16 logits are computed in float32
    assert half.dtype == torch.float32


def test_selection_text_per_input_kind() -> None:
    assert selection_text("sequence") == SEQUENCE_SELECTION
    assert selection_text("window") == SELECTION
    assert SELECTION != SEQUENCE_SELECTION and "ROC-AUC" in SELECTION


def test_min_lr_fraction_error_states_its_range() -> None:
    assert TrainConfig(min_lr_fraction=0.0).min_lr_fraction == 0.0  # 0 is allowed
    with pytest.raises(ConfigError) as excinfo:
        TrainConfig(min_lr_fraction=-0.1)
    assert "[0, 1]" in str(excinfo.value)
