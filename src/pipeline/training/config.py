"""Training settings shared by every trainer: :class:`TrainConfig`, the learning-rate
schedule (:func:`learning_rate`), the masked loss (:func:`masked_bce`), the settings a
resumed run may change and the texts that state how a checkpoint's epoch is chosen."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from pipeline.errors import ConfigError, check_int

__all__ = ["TrainConfig", "learning_rate", "masked_bce", "SELECTION"]


#: How the checkpoint's epoch is chosen (stated in every summary and table).
SELECTION = "best valid macro ROC-AUC (song level, mean of windows)"
#: The same criterion for sequence models, whose song prediction is their own summary.
SEQUENCE_SELECTION = "best valid macro ROC-AUC (song level, the sequence model's summary)"


def selection_text(input_kind: str) -> str:
    """How the checkpoint of a model with this input kind is chosen, for tables."""
    return SEQUENCE_SELECTION if input_kind == "sequence" else SELECTION


#: Settings that may change between a run and its resumption.
RESUMABLE = ("epochs", "patience", "num_workers", "tensorboard")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How a model is trained.

    Parameters
    ----------
    epochs : int
        Most epochs (passes over the training windows or tracks).
    batch_size : int
        Windows (or tracks, for sequence models) per step.
    lr : float
        Peak learning rate of Adam.
    weight_decay : float
        Adam's L2 penalty.
    warmup_epochs : float
        Linear warm-up length in epochs (may be fractional; 0: none).
    min_lr_fraction : float
        The cosine decay ends at ``lr * min_lr_fraction`` (1: constant learning rate).
    patience : int
        Stop after this many epochs without a better valid macro ROC-AUC.
    crop_frames : int or None
        Window models: train on random crops of this many frames (short-chunk models,
        e.g. 231 frames = 3.69 s) and evaluate ``eval_chunks`` crops per window; None
        trains and evaluates on whole windows. Must be None for sequence models.
    pool_frames : int
        Sequence models: frames averaged into one step.
    max_windows : int
        Sequence models: longest sequence, in windows.
    num_workers : int
        DataLoader worker processes (0: load in the main process). Does not change results.
    seed : int
        Seeds weights, shuffling, crops, dropout and the label budget.
    label_fraction : float
        Fraction of the training tracks used (label budget, :mod:`pipeline.training.loaders`).
    tag_label_fraction : float
        Probability that a training (track, tag) label is observed (label budget).
    eval_chunks : int
        Crops per window when evaluating a crop model.
    tensorboard : bool
        Also write the history as TensorBoard event files, into ``tensorboard/`` next to
        ``history.csv`` (needs the ``tensorboard`` package). Does not change results.
    """

    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    min_lr_fraction: float = 0.01
    patience: int = 10
    crop_frames: int | None = None
    pool_frames: int = 16
    max_windows: int = 10
    num_workers: int = 0
    seed: int = 0
    label_fraction: float = 1.0
    tag_label_fraction: float = 1.0
    eval_chunks: int = 16
    tensorboard: bool = False

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "patience", "pool_frames", "max_windows"):
            check_int(f"train.{key}", getattr(self, key), minimum=1)
        check_int("train.eval_chunks", self.eval_chunks, minimum=1)
        if not isinstance(self.tensorboard, bool):
            raise ConfigError(f"train.tensorboard: {self.tensorboard!r} must be true or false")
        check_int("train.num_workers", self.num_workers, minimum=0)
        check_int("train.seed", self.seed, minimum=0)
        if self.crop_frames is not None:
            check_int("train.crop_frames", self.crop_frames, minimum=1)
        for key in ("lr", "weight_decay", "warmup_epochs"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"train.{key}: {value!r} must be a number >= 0")
        if not self.lr > 0:
            raise ConfigError(f"train.lr: {self.lr!r} must be > 0")
        for key in ("min_lr_fraction", "label_fraction", "tag_label_fraction"):
            value = getattr(self, key)
            low_ok = value >= 0 if key == "min_lr_fraction" else value > 0
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (low_ok and value <= 1)
            ):
                interval = "[0, 1]" if key == "min_lr_fraction" else "(0, 1]"
                raise ConfigError(f"train.{key}: {value!r} must be a number in {interval}")

    def to_dict(self) -> dict[str, Any]:
        """Plain settings (checkpoints, summaries)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> TrainConfig:
        """Build from a config entry; unknown keys are a ConfigError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"train: unknown key(s) {unknown}; allowed: {sorted(known)}")
        return cls(**settings)


def learning_rate(
    *, step: int, total_steps: int, warmup_steps: int, base_lr: float, min_lr: float
) -> float:
    """Learning rate of an optimizer step: linear warm-up, then cosine decay.

    Steps ``0 .. warmup_steps - 1`` rise linearly to ``base_lr`` (step ``s`` gets
    ``base_lr * (s + 1) / warmup_steps``); then the rate follows half a cosine from
    ``base_lr`` down to ``min_lr`` at ``total_steps`` (and stays there after it)::

        progress = (step - warmup_steps) / (total_steps - warmup_steps)
        lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * progress)) / 2

    Parameters
    ----------
    step : int
        Optimizer steps already taken (0 for the first).
    total_steps : int
        Steps of the whole run.
    warmup_steps : int
        Steps of the warm-up (0: none).
    base_lr, min_lr : float
        Peak and final learning rates.

    Returns
    -------
    float

    Examples
    --------
    >>> learning_rate(step=0, total_steps=100, warmup_steps=10, base_lr=1e-3, min_lr=0.0)
    0.0001
    >>> learning_rate(step=10, total_steps=100, warmup_steps=10, base_lr=1e-3, min_lr=0.0)
    0.001
    >>> learning_rate(step=100, total_steps=100, warmup_steps=10, base_lr=1e-3, min_lr=0.0)
    0.0
    """
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = min(max(step - warmup_steps, 0) / max(total_steps - warmup_steps, 1), 1.0)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def masked_bce(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, averaged over the observed labels only.

    Parameters
    ----------
    logits, y, mask : Tensor, shape (batch, n_tags)
        ``mask`` is 1 for observed labels and 0 for hidden ones (label budget).

    Returns
    -------
    Tensor, scalar
        0 when no label of the batch is observed.
    """
    loss = nn.functional.binary_cross_entropy_with_logits(
        logits.float(), y, reduction="none"
    )  # (B, K)
    return (loss * mask).sum() / mask.sum().clamp_min(1.0)
