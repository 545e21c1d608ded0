"""Shared pieces of the training tests: the summary keys every trainer writes, a two-stage
fit on the data of :func:`tests.helpers.synthetic.build_synthetic`, and a split's tracks as
the stores hold them (what a tagger reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.features.settings import FeatureSettings
from pipeline.training.config import TrainConfig
from pipeline.training.run import TWO_STAGE_TRAINERS
from pipeline.training.two_stage import StoreReader

__all__ = ["SUMMARY_KEYS", "fit_two_stage", "stored_tracks"]

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


def fit_two_stage(
    data: dict, out: Path, architecture: str, hparams: dict, **cfg: Any
) -> dict[str, Any]:
    """Train a two-stage model (a key of ``TWO_STAGE_TRAINERS``) on ``data``; its summary."""
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


def stored_tracks(data: dict, split: str) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
    """(windows, valid frames, tags) of every track of a split."""
    reader = StoreReader(features=FeatureSettings.from_dict(data["features"]))
    rows = data["index"][data["index"]["split"] == split]
    return [(*reader.track(row), list(row.tags)) for row in rows.itertuples(index=False)]
