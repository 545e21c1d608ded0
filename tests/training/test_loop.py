"""The one training loop on a tiny regression: steps, schedule, selection, stopping, resuming."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from pipeline.errors import ConfigError
from pipeline.io.progress import INTERVAL_ENV
from pipeline.training.config import TrainConfig, learning_rate
from pipeline.training.loop import (
    TENSORBOARD_DIR,
    Best,
    LoopState,
    cosine_schedule,
    fit,
    improves,
    tensorboard_dir,
)

N, DIM, BATCH = 12, 3, 4


def _problem(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = nn.Linear(DIM, 1)
    x = torch.randn(N, DIM)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3  # (N, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1), x, y


def _batches(epoch: int) -> list[torch.Tensor]:
    """A different, seeded order every epoch (a function of the epoch only)."""
    order = torch.randperm(N, generator=torch.Generator().manual_seed(epoch))
    return list(order.split(BATCH))


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    def batch_loss(batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        return ((model(x[batch]) - y[batch]) ** 2).mean(), float(len(batch))

    return batch_loss


def _scripted(values: list[float]):
    """A validation that returns the given scores, epoch by epoch."""
    return lambda epoch: {"score": values[epoch - 1]}


def test_improves() -> None:
    assert improves(0.1, None) and improves(math.nan, None)  # the first epoch always wins
    assert improves(0.6, 0.5) and not improves(0.5, 0.5) and not improves(0.4, 0.5)
    assert not improves(math.nan, 0.5) and improves(0.1, math.nan)


def test_cosine_schedule_is_learning_rate() -> None:
    cfg = TrainConfig(epochs=3, lr=0.02, warmup_epochs=0.5, min_lr_fraction=0.1)
    rate = cosine_schedule(cfg=cfg, steps_per_epoch=4)
    for step in range(14):
        assert rate(step) == learning_rate(
            step=step, total_steps=12, warmup_steps=2, base_lr=0.02, min_lr=0.02 * 0.1
        )


def test_steps_history_and_train_loss() -> None:
    model, optimizer, x, y = _problem()
    losses: list[tuple[float, float]] = []
    batch_loss = _loss(model, x, y)

    def recorded(batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        loss, weight = batch_loss(batch)
        losses.append((float(loss.detach()), weight))
        return loss, weight

    rates = [0.1, 0.05, 0.02]
    state = fit(
        model=model,
        optimizer=optimizer,
        epochs=2,
        batches=lambda epoch: _batches(epoch)[:2] if epoch == 1 else _batches(epoch),
        batch_loss=recorded,
        schedule=lambda step: rates[min(step, 2)],
    )
    assert state.epoch == 2 and state.step == 2 + 3 and state.best is None
    assert [row["epoch"] for row in state.history] == [1, 2]
    assert list(state.history[0]) == ["epoch", "train_loss", "lr", "seconds"]
    assert state.history[0]["lr"] == 0.05 and state.history[1]["lr"] == 0.02
    first = sum(v * w for v, w in losses[:2]) / sum(w for _, w in losses[:2])
    assert state.history[0]["train_loss"] == pytest.approx(first)
    assert optimizer.param_groups[0]["lr"] == 0.02
    assert state.history[1]["train_loss"] < state.history[0]["train_loss"]  # it learns


def test_without_schedule_the_rates_stay() -> None:
    model, _, x, y = _problem()
    optimizer = torch.optim.SGD(
        [{"params": [model.weight], "lr": 0.01}, {"params": [model.bias], "lr": 0.2}]
    )
    state = fit(
        model=model, optimizer=optimizer, epochs=1, batches=_batches, batch_loss=_loss(model, x, y)
    )
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.2]
    assert state.history[0]["lr"] == 0.01


def test_best_epoch_early_stopping_and_hooks() -> None:
    model, optimizer, x, y = _problem()
    weights: dict[int, torch.Tensor] = {}
    calls: list[tuple[str, int]] = []

    def end(state: LoopState) -> None:
        weights[state.epoch] = model.weight.detach().clone()
        calls.append(("end", state.epoch))

    state = fit(
        model=model,
        optimizer=optimizer,
        epochs=10,
        batches=_batches,
        batch_loss=_loss(model, x, y),
        validate=_scripted([0.5, 0.7, 0.6, math.nan, 0.9]),
        monitor="score",
        patience=2,
        on_best=lambda best: calls.append(("best", best.epoch)),
        on_epoch_end=end,
    )
    # epochs 3 and 4 do not improve (NaN never wins): no epoch 5
    assert state.epoch == 4 and len(state.history) == 4 and state.bad_epochs == 2
    assert calls == [("best", 1), ("end", 1), ("best", 2), ("end", 2), ("end", 3), ("end", 4)]
    assert isinstance(state.best, Best) and state.best.epoch == 2 and state.best.value == 0.7
    assert state.best.metrics == {"score": 0.7} and state.history[1]["score"] == 0.7
    assert torch.equal(state.best.state_dict["weight"], weights[2])
    assert not torch.equal(model.weight, weights[2])  # the model keeps training
    assert state.best.state_dict["weight"].data_ptr() != model.weight.data_ptr()


def test_modes_and_gradients_of_each_stage() -> None:
    model, optimizer, x, y = _problem()
    seen: dict[str, tuple[bool, bool]] = {}
    batch_loss = _loss(model, x, y)

    def batches(epoch: int) -> list[torch.Tensor]:
        seen["batches"] = (model.training, torch.is_grad_enabled())
        return _batches(epoch)

    def loss(batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        seen["loss"] = (model.training, torch.is_grad_enabled())
        return batch_loss(batch)

    def validate(epoch: int) -> dict[str, float]:
        seen["validate"] = (model.training, torch.is_grad_enabled())
        return {"score": 1.0}

    model.eval()
    fit(
        model=model,
        optimizer=optimizer,
        epochs=1,
        batches=batches,
        batch_loss=loss,
        validate=validate,
        monitor="score",
    )
    assert seen == {"batches": (False, True), "loss": (True, True), "validate": (False, False)}


def test_a_resumed_run_equals_a_straight_one() -> None:
    def run(epochs: int, state: LoopState | None, model, optimizer, x, y) -> LoopState:
        return fit(
            model=model,
            optimizer=optimizer,
            epochs=epochs,
            batches=_batches,
            batch_loss=_loss(model, x, y),
            validate=lambda epoch: {"score": -float(((model(x) - y) ** 2).mean())},
            monitor="score",
            patience=5,
            schedule=lambda step: 0.1 / (1 + step),
            state=state,
        )

    straight = run(4, None, *_problem())
    model, optimizer, x, y = _problem()
    half = run(2, None, model, optimizer, x, y)
    assert half.epoch == 2 and half.step == 6
    resumed = run(4, half, model, optimizer, x, y)
    assert resumed is half and resumed.epoch == 4 and resumed.step == straight.step == 12
    drop = [{k: v for k, v in row.items() if k != "seconds"} for row in straight.history]
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.history] == drop
    assert straight.best is not None and resumed.best is not None
    assert resumed.best.epoch == straight.best.epoch
    for key, value in straight.best.state_dict.items():
        assert torch.equal(value, resumed.best.state_dict[key]), key
    # a finished run resumed with as many epochs does nothing
    again = run(4, resumed, model, optimizer, x, y)
    assert again.epoch == 4 and len(again.history) == 4


def test_a_crash_in_a_hook_stops_the_run() -> None:
    model, optimizer, x, y = _problem()
    state = LoopState()

    def crash(done: LoopState) -> None:
        if done.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(
            model=model,
            optimizer=optimizer,
            epochs=5,
            batches=_batches,
            batch_loss=_loss(model, x, y),
            state=state,
            on_epoch_end=crash,
        )
    assert state.epoch == 2 and len(state.history) == 2


def test_a_disabled_grad_scaler_changes_nothing() -> None:
    results = []
    for scaler in (None, torch.amp.GradScaler("cpu", enabled=False)):
        model, optimizer, x, y = _problem()
        fit(
            model=model,
            optimizer=optimizer,
            epochs=2,
            batches=_batches,
            batch_loss=_loss(model, x, y),
            scaler=scaler,
        )
        results.append(model.weight.detach().clone())
    assert torch.equal(results[0], results[1])


def test_patience_stops_a_resumed_run_before_its_first_epoch() -> None:
    model, optimizer, x, y = _problem()
    state = LoopState(epoch=3, step=9, bad_epochs=2)
    out = fit(
        model=model,
        optimizer=optimizer,
        epochs=6,
        batches=_batches,
        batch_loss=_loss(model, x, y),
        validate=_scripted([0.0] * 6),
        monitor="score",
        patience=2,
        state=state,
    )
    assert out.epoch == 3 and out.history == [] and out.step == 9


def test_tensorboard_event_files_hold_the_history(tmp_path: Path) -> None:
    model, optimizer, x, y = _problem()
    folder = tmp_path / "model" / TENSORBOARD_DIR
    state = fit(
        model=model,
        optimizer=optimizer,
        epochs=3,
        batches=_batches,
        batch_loss=_loss(model, x, y),
        validate=_scripted([0.5, math.nan, 0.7]),
        monitor="score",
        tensorboard_dir=folder,
    )
    events = EventAccumulator(str(folder))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["lr", "score", "seconds", "train_loss"]
    for key in ("train_loss", "lr", "seconds"):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        expected = [(row["epoch"], row[key]) for row in state.history]
        assert [s for s, _ in logged] == [1, 2, 3]
        np.testing.assert_allclose([v for _, v in logged], [v for _, v in expected], rtol=1e-6)
    # NaN (a validation without a score) is left out, not written as a point
    assert [(e.step, e.value) for e in events.Scalars("score")] == [
        (1, pytest.approx(0.5)),
        (3, pytest.approx(0.7)),
    ]


def test_a_resumed_run_appends_its_epochs_to_the_event_folder(tmp_path: Path) -> None:
    model, optimizer, x, y = _problem()
    common = {
        "model": model,
        "optimizer": optimizer,
        "batches": _batches,
        "batch_loss": _loss(model, x, y),
        "tensorboard_dir": tmp_path,
    }
    state = fit(epochs=2, **common)
    fit(epochs=4, state=state, **common)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [e.step for e in events.Scalars("train_loss")] == [1, 2, 3, 4]


def test_tensorboard_dir_follows_the_train_setting(tmp_path: Path) -> None:
    assert tensorboard_dir(cfg=TrainConfig(), out_dir=tmp_path) is None
    on = TrainConfig(tensorboard=True)
    assert tensorboard_dir(cfg=on, out_dir=tmp_path) == tmp_path / "tensorboard"
    with pytest.raises(ConfigError, match="train.tensorboard: 'yes' must be true or false"):
        TrainConfig.from_dict({"tensorboard": "yes"})


def test_long_epochs_log_their_progress(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    model, optimizer, x, y = _problem()
    caplog.set_level(logging.INFO, logger="pipeline.training.loop")
    run = {"model": model, "optimizer": optimizer, "batches": _batches, "name": "tiny"}
    fit(epochs=1, batch_loss=_loss(model, x, y), **run)  # 30 s between lines: none
    assert not [m for m in caplog.messages if "batches" in m]
    monkeypatch.setenv(INTERVAL_ENV, "1e-9")  # every batch is "30 s later"
    fit(epochs=1, batch_loss=_loss(model, x, y), **run)
    lines = [m for m in caplog.messages if "batches" in m]
    assert [line.split(", ")[0] for line in lines] == [
        f"tiny epoch 1/1: {k}/3 batches ({100 * k / 3:.1f} %)" for k in (1, 2, 3)
    ]
    caplog.clear()  # batches without a length (a generator): counted, no total
    fit(epochs=1, batch_loss=_loss(model, x, y), **{**run, "batches": lambda e: iter(_batches(e))})
    lines = [m for m in caplog.messages if "batches" in m]
    assert [line.split(", ")[0] for line in lines] == [
        f"tiny epoch 1/1: {k} batches" for k in (1, 2, 3)
    ]
