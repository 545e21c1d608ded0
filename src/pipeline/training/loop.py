"""The one training loop: epochs of optimizer steps, validation, best epoch, early stopping.

Every gradient-trained model of the pipeline runs :func:`fit`: end-to-end window and sequence
networks (:mod:`pipeline.training.window`), the bag-of-frames MLP
(:mod:`pipeline.training.bag_of_frames`), the LSTM on frozen embeddings
(:mod:`pipeline.training.sequence`), the triplet projection of
:mod:`pipeline.retrieval.metric_learning` and the few-shot fine-tuning of
:mod:`pipeline.fewshot.finetune`. What differs between them is passed in as callables:

- ``batches(epoch)``: the epoch's batches (any objects), drawn when the epoch starts, so
  that a trainer shuffles, mines or crops in its own seeded order;
- ``batch_loss(batch)``: the forward pass, returning the loss and its weight in the epoch's
  mean (observed labels, triplets, examples);
- ``validate(epoch)``: metrics of the model after the epoch (run in eval mode, without
  gradients);
- ``on_best(best)`` and ``on_epoch_end(state)``: what to write (a checkpoint, the history,
  the state to resume from).

One epoch, in this order: ``batches(epoch)``; ``model.train()``; for every batch: the
learning rate of the step from ``schedule`` (when given), ``zero_grad``, ``batch_loss``,
backward and optimizer step (through the ``GradScaler`` when given); then ``model.eval()``
and ``validate``; a history row; the best-epoch test on the ``monitor`` metric (with
:func:`improves`: higher is better, NaN never wins); ``on_best`` when it won, and
``on_epoch_end``. Training stops after ``epochs`` epochs, or before an epoch once ``patience``
epochs in a row have not improved. A run resumes from a :class:`LoopState` (epochs, steps,
history and best epoch so far); the model's, optimizer's and random generators' states are
the caller's to restore. The loop draws no random numbers itself.

With ``tensorboard_dir``, each history row is also written as TensorBoard scalars (step =
epoch; tags are the history's columns, ``train_loss``, ``valid_roc_auc``, ``lr``, ...) into
event files there; :func:`tensorboard_dir` names the folder next to ``history.csv`` when a
model's ``train.tensorboard`` is on. A resumed run appends a new event file to the folder.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline.errors import ConfigError
from pipeline.io.progress import Progress
from pipeline.training.config import TrainConfig, learning_rate

__all__ = ["Best", "LoopState", "improves", "cosine_schedule", "fit", "tensorboard_dir"]

#: The folder of a run's TensorBoard event files, in its output folder (next to history.csv).
TENSORBOARD_DIR = "tensorboard"

log = logging.getLogger(__name__)


@dataclass
class Best:
    """The best epoch so far.

    Attributes
    ----------
    epoch : int
        1-based epoch number.
    value : float
        Its ``monitor`` metric.
    metrics : dict
        All its validation metrics.
    state_dict : dict of str to Tensor
        The model's weights after that epoch (detached CPU copies).
    """

    epoch: int
    value: float
    metrics: dict[str, float]
    state_dict: dict[str, torch.Tensor]


@dataclass
class LoopState:
    """Where a run stands: what :func:`fit` returns and resumes from.

    Attributes
    ----------
    epoch : int
        Epochs finished.
    step : int
        Optimizer steps taken (the position in the learning-rate schedule).
    bad_epochs : int
        Epochs in a row without a better ``monitor`` value.
    history : list of dict
        One row per epoch: ``epoch, train_loss``, the validation metrics, ``lr`` (of the
        epoch's last step) and ``seconds`` (batches, steps and validation).
    best : Best or None
        The best epoch; None before the first validated epoch, or without validation.
    """

    epoch: int = 0
    step: int = 0
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best: Best | None = None


def improves(value: float, best: float | None) -> bool:
    """Whether a validation score beats the best so far (None: nothing yet; NaN never wins).

    Examples
    --------
    >>> improves(0.5, None), improves(0.5, 0.4), improves(0.4, 0.4), improves(float("nan"), 0.4)
    (True, True, False, False)
    """
    if best is None:
        return True
    if math.isnan(value):
        return False
    return math.isnan(best) or value > best


def cosine_schedule(*, cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning rate of each step under ``cfg``: warm-up, then cosine decay.

    Parameters
    ----------
    cfg : TrainConfig
        ``lr``, ``min_lr_fraction``, ``warmup_epochs`` and ``epochs``.
    steps_per_epoch : int
        Optimizer steps of one epoch.

    Returns
    -------
    callable
        ``step -> lr``: :func:`pipeline.training.config.learning_rate` over
        ``cfg.epochs * steps_per_epoch`` steps, ``round(cfg.warmup_epochs * steps_per_epoch)``
        of them warm-up, from ``cfg.lr`` down to ``cfg.lr * cfg.min_lr_fraction``.
    """
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = int(round(cfg.warmup_epochs * steps_per_epoch))
    min_lr = cfg.lr * cfg.min_lr_fraction

    def rate(step: int) -> float:
        return learning_rate(
            step=step,
            total_steps=total_steps,
            warmup_steps=warmup_steps,
            base_lr=cfg.lr,
            min_lr=min_lr,
        )

    return rate


def tensorboard_dir(*, cfg: TrainConfig, out_dir: str | Path) -> Path | None:
    """``out_dir / "tensorboard"`` when ``cfg.tensorboard`` is on, else None (for :func:`fit`)."""
    return Path(out_dir) / TENSORBOARD_DIR if cfg.tensorboard else None


class _EventLog:
    """History rows as TensorBoard scalars (``torch.utils.tensorboard``, imported only here)."""

    def __init__(self, folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # the optional dependency is missing
            raise ConfigError(
                f"train.tensorboard is on but TensorBoard cannot be imported ({exc}): "
                "pip install 'music-tagging-pipeline[tensorboard]' or tensorboard"
            ) from exc
        folder.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(log_dir=str(folder))

    def write(self, row: Mapping[str, float]) -> None:
        epoch = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and isinstance(value, int | float) and math.isfinite(value):
                self._writer.add_scalar(key, float(value), global_step=epoch)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def fit(
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batches: Callable[[int], Iterable[Any]],
    batch_loss: Callable[[Any], tuple[torch.Tensor, float]],
    validate: Callable[[int], Mapping[str, float]] | None = None,
    monitor: str = "valid_roc_auc",
    patience: int | None = None,
    schedule: Callable[[int], float] | None = None,
    scaler: torch.amp.GradScaler | None = None,
    state: LoopState | None = None,
    on_best: Callable[[Best], None] | None = None,
    on_epoch_end: Callable[[LoopState], None] | None = None,
    name: str = "",
    progress: bool = False,
    tensorboard_dir: str | Path | None = None,
) -> LoopState:
    """Train ``model`` for ``epochs`` epochs (module docstring); the final state.

    Parameters
    ----------
    model : nn.Module
        Switched to training mode for the steps, to eval mode for ``validate``.
    optimizer : torch.optim.Optimizer
    epochs : int
        Last epoch (a resumed ``state`` continues after its ``epoch``).
    batches : callable
        ``epoch -> iterable of batches``, called once at the start of each epoch.
    batch_loss : callable
        ``batch -> (loss, weight)``: a scalar loss tensor to minimise and its weight in the
        epoch's ``train_loss`` (the weighted mean of the batches' losses).
    validate : callable, optional
        ``epoch -> metrics`` (a mapping holding ``monitor``), after the epoch's steps. None:
        no validation, no best epoch, no early stopping (the model keeps its last weights).
    monitor : str
        The metric that chooses the best epoch (higher is better, see :func:`improves`).
    patience : int, optional
        Stop once this many epochs in a row have not improved; None: never.
    schedule : callable, optional
        ``step -> lr`` (e.g. :func:`cosine_schedule`), set on every parameter group before
        each step; None leaves the optimizer's rates alone.
    scaler : torch.amp.GradScaler, optional
        Backward and step through it (mixed precision); None: ``loss.backward()`` and
        ``optimizer.step()``.
    state : LoopState, optional
        Where to resume from; None starts afresh. It is updated in place.
    on_best : callable, optional
        Called with the new :class:`Best` when an epoch improves.
    on_epoch_end : callable, optional
        Called with the state after every epoch (history row and best epoch updated).
    name : str
        Names the run in the progress bar and the log.
    progress : bool
        Show a progress bar over each epoch's batches.
    tensorboard_dir : str or Path, optional
        Also write every history row as TensorBoard scalars into event files in this
        folder (module docstring); None: no event files.

    Returns
    -------
    LoopState
        ``state`` after the last epoch run.
    """
    state = LoopState() if state is None else state
    events = _EventLog(Path(tensorboard_dir)) if tensorboard_dir is not None else None
    try:
        _epochs(
            model=model,
            optimizer=optimizer,
            epochs=epochs,
            batches=batches,
            batch_loss=batch_loss,
            validate=validate,
            monitor=monitor,
            patience=patience,
            schedule=schedule,
            scaler=scaler,
            state=state,
            on_best=on_best,
            on_epoch_end=on_epoch_end,
            name=name,
            progress=progress,
            events=events,
        )
    finally:
        if events is not None:
            events.close()
    return state


def _epochs(
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batches: Callable[[int], Iterable[Any]],
    batch_loss: Callable[[Any], tuple[torch.Tensor, float]],
    validate: Callable[[int], Mapping[str, float]] | None,
    monitor: str,
    patience: int | None,
    schedule: Callable[[int], float] | None,
    scaler: torch.amp.GradScaler | None,
    state: LoopState,
    on_best: Callable[[Best], None] | None,
    on_epoch_end: Callable[[LoopState], None] | None,
    name: str,
    progress: bool,
    events: _EventLog | None,
) -> None:
    """The epochs of :func:`fit` (its parameters); ``state`` is updated in place."""
    for epoch in range(state.epoch + 1, epochs + 1):
        if patience is not None and state.bad_epochs >= patience:
            break
        started = time.perf_counter()
        epoch_batches = batches(epoch)
        model.train()
        train_loss, lr = _run_epoch(
            epoch_batches,
            model=model,
            optimizer=optimizer,
            batch_loss=batch_loss,
            schedule=schedule,
            scaler=scaler,
            state=state,
            desc=f"{name} epoch {epoch}/{epochs}",
            progress=progress,
        )
        metrics: dict[str, float] = {}
        if validate is not None:
            model.eval()
            with torch.no_grad():
                metrics = dict(validate(epoch))
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            **metrics,
            "lr": lr,
            "seconds": time.perf_counter() - started,
        }
        state.history.append(row)
        state.epoch = epoch
        if events is not None:
            events.write(row)
        log.info(
            "%s epoch %d: train loss %.4f%s, lr %.2e (%.1f s)",
            name,
            epoch,
            train_loss,
            "".join(f", {key} {value:.4f}" for key, value in metrics.items()),
            lr,
            row["seconds"],
        )
        if validate is not None:
            value = metrics[monitor]
            if improves(value, None if state.best is None else state.best.value):
                state.best = Best(
                    epoch=epoch,
                    value=value,
                    metrics=metrics,
                    state_dict={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                )
                state.bad_epochs = 0
                if on_best is not None:
                    on_best(state.best)
            else:
                state.bad_epochs += 1
        if on_epoch_end is not None:
            on_epoch_end(state)


def _run_epoch(
    epoch_batches: Iterable[Any],
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_loss: Callable[[Any], tuple[torch.Tensor, float]],
    schedule: Callable[[int], float] | None,
    scaler: torch.amp.GradScaler | None,
    state: LoopState,
    desc: str,
    progress: bool,
) -> tuple[float, float]:
    """One pass over the batches; ``state.step`` advances by one per batch.

    Returns
    -------
    train_loss : float
        Weighted mean of the batches' losses (0 without batches).
    lr : float
        The learning rate of the last step (of the first group without a schedule).
    """
    loss_sum, weight_sum = 0.0, 0.0
    lr = schedule(state.step) if schedule is not None else optimizer.param_groups[0]["lr"]
    bar = tqdm(epoch_batches, desc=desc, unit="batch", disable=not progress, leave=False)
    # A long epoch says how far it is in the log (at most every 30 s; the bar is tqdm's).
    total = 0
    if isinstance(epoch_batches, Sized):
        try:
            total = len(epoch_batches)
        except TypeError:  # a DataLoader over an iterable-style dataset has no length
            total = 0
    lines = Progress(total=total, name=desc, unit="batches", logger=log, bar=False, final=False)
    for batch in bar:
        if schedule is not None:
            lr = schedule(state.step)
            for group in optimizer.param_groups:
                group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss, weight = batch_loss(batch)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        state.step += 1
        value = float(loss.detach())
        loss_sum += value * weight
        weight_sum += weight
        bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.2e}")
        lines.advance()
    bar.close()
    return loss_sum / max(weight_sum, 1.0), lr
