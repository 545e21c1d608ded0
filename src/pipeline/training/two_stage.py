"""What the two-stage trainers share (:mod:`pipeline.training.bag_of_frames`,
:mod:`pipeline.training.embedding`, :mod:`pipeline.training.sequence`): a split's stored
tracks with their labels and label budget (:func:`split_data`), the stores read track by
track (:class:`StoreReader`), standardisation (:func:`fit_scaler`), song-level validation
metrics (:func:`song_metrics`), the label-budget keys of a summary (:func:`budget_summary`)
and the files a trainer writes (:func:`write_outputs`).

A two-stage trainer turns every track into one fixed vector (a codeword histogram, a pooled
network embedding), then fits a small classifier on the vectors of the train split. Tracks
are read one at a time from the shard stores, as stored (raw dB, float16), with the frames
of each window that hold audio (:func:`pipeline.features.windows.audio_frames`), exactly as
:func:`pipeline.evaluation.predict.predict_split` hands them to a tagger; the trainer and the
tagger then run the same code on them, so the validation score a trainer reports is the one
``predict_split`` reproduces.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import zarr

from pipeline.evaluation.metrics import macro_auc
from pipeline.evaluation.tables import HISTORY_COLUMNS
from pipeline.features.index import split_tracks
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import audio_frames
from pipeline.io.checkpoint import save_checkpoint
from pipeline.io.files import write_json
from pipeline.io.store import FeatureStore
from pipeline.numeric import sigmoid
from pipeline.training.loaders import label_mask, select_tracks

__all__ = [
    "SplitData",
    "StoreReader",
    "split_data",
    "fit_scaler",
    "song_metrics",
    "budget_summary",
    "write_outputs",
]

#: Smallest standard deviation a standardised feature is divided by.
_MIN_STD = 1e-6


@dataclass
class SplitData:
    """The stored tracks of one split with their labels.

    Attributes
    ----------
    tracks : pd.DataFrame
        Rows of ``index.parquet`` (``track_id, store, start, stop, duration_s, ...``).
    labels : np.ndarray, shape (n_tracks, n_tags), float32
        0/1; tags outside the vocabulary are ignored.
    masks : np.ndarray, shape (n_tracks, n_tags), float32
        1 for labels a classifier may see (label budget), else 0.
    budget : np.ndarray of bool, shape (n_tracks,)
        Tracks kept by the label budget (``label_fraction``); all True outside training.
    """

    tracks: pd.DataFrame
    labels: np.ndarray
    masks: np.ndarray
    budget: np.ndarray


def split_data(
    index: pd.DataFrame,
    *,
    split: str,
    tags: Sequence[str],
    seed: int = 0,
    label_fraction: float = 1.0,
    tag_label_fraction: float = 1.0,
) -> SplitData:
    """The stored tracks of a split, their labels and the label budget's masks.

    The label budget is the one of :mod:`pipeline.training.loaders` (same seeded hashes,
    so a two-stage model and a network trained with the same budget see the same labels).
    Unlike the network datasets, the tracks outside the budget are kept (``budget`` False):
    their audio may still shape what uses no labels (the codebook, the embedding scaler).
    """
    tracks = split_tracks(index, split=split)
    ids = [str(t) for t in tracks["track_id"]]
    position = {str(tag): k for k, tag in enumerate(tags)}
    labels = np.zeros((len(tracks), len(position)), dtype=np.float32)
    for i, track_tags in enumerate(tracks["tags"]):
        for tag in track_tags if track_tags is not None else ():
            if tag in position:
                labels[i, position[tag]] = 1.0
    budget = select_tracks(ids, fraction=label_fraction, seed=seed)
    masks = label_mask(ids, [str(t) for t in tags], fraction=tag_label_fraction, seed=seed)
    masks = masks * budget[:, None].astype(np.float32)
    return SplitData(tracks=tracks, labels=labels, masks=masks, budget=budget)


class StoreReader:
    """Stored windows and their audio frames, track by track, from the index's stores.

    Each store is opened once and its feature settings checked against ``features``.

    Parameters
    ----------
    features : FeatureSettings
        The settings every store must hold.
    """

    def __init__(self, *, features: FeatureSettings) -> None:
        self.features = features
        self._stores: dict[str, tuple[zarr.Array, np.ndarray]] = {}

    def _open(self, store: str) -> tuple[zarr.Array, np.ndarray]:
        if store not in self._stores:
            self._stores[store] = FeatureStore(Path(store)).checked_windows(
                features=self.features.to_dict()
            )
        return self._stores[store]

    def shape(self, store: str) -> tuple[int, int]:
        """``(n_bins, n_frames)`` of the store's windows."""
        windows, _ = self._open(str(store))
        return int(windows.shape[1]), int(windows.shape[2])

    def track(self, row: Any) -> tuple[np.ndarray, np.ndarray]:
        """One index row's windows and valid frames.

        Returns
        -------
        windows : np.ndarray, shape (n_windows, n_bins, n_frames), float16
        valid : np.ndarray, shape (n_windows,), int64
        """
        windows, starts = self._open(str(row.store))
        start, stop = int(row.start), int(row.stop)
        valid = audio_frames(
            starts_s=starts[start:stop],
            duration_s=float(row.duration_s),
            features=self.features,
        )
        return cast(np.ndarray, windows[start:stop]), valid

    def tracks(self, tracks: pd.DataFrame) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """:meth:`track` for every row, in order."""
        for row in tracks.itertuples(index=False):
            yield self.track(row)


def fit_scaler(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (at least 1e-6), float32, each shape (dim,).

    Parameters
    ----------
    x : np.ndarray, shape (n, dim)
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > _MIN_STD, std, 1.0)  # a constant column is only centred
    return mean.astype(np.float32), std.astype(np.float32)


def song_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Song-level loss and macro AUCs, as :func:`pipeline.training.window.train_model`
    computes them in validation (AUCs summed by the ``"fast"`` method of
    :func:`pipeline.evaluation.metrics.tag_aucs`).

    Parameters
    ----------
    labels : np.ndarray, shape (n_tracks, n_tags)
    logits : np.ndarray, shape (n_tracks, n_tags)

    Returns
    -------
    dict
        ``valid_loss`` (binary cross-entropy of the probabilities), ``valid_roc_auc``,
        ``valid_pr_auc``.
    """
    probs = sigmoid(logits).astype(np.float64)
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log1p(-clipped))
    roc, pr, _ = macro_auc(labels, probs, method="fast")
    return {"valid_loss": float(loss), "valid_roc_auc": roc, "valid_pr_auc": pr}


def budget_summary(train: SplitData, *, label_fraction: float, tag_label_fraction: float) -> dict:
    """The label-budget keys of a training summary (as
    :func:`pipeline.training.window.train_model`)."""
    kept = train.budget
    return {
        "n_train_items": int(kept.sum()),
        "n_train_tracks": int(kept.sum()),
        "n_train_labels": int(train.masks.sum()),
        "n_train_positive_labels": int((train.masks * train.labels).sum()),
        "label_fraction": float(label_fraction),
        "tag_label_fraction": float(tag_label_fraction),
    }


def write_outputs(
    *,
    out_dir: Path,
    checkpoint: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    extra_columns: Sequence[str] = (),
) -> None:
    """Write ``checkpoint.pt``, ``history.csv`` and ``train_summary.json`` into ``out_dir``.

    ``history.csv`` has :data:`pipeline.evaluation.tables.HISTORY_COLUMNS` (NaN where a value does
    not
    apply) followed by ``extra_columns``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_checkpoint(checkpoint, out_dir / "checkpoint.pt")
    columns = [*HISTORY_COLUMNS, *extra_columns]
    table = pd.DataFrame([{c: row.get(c, math.nan) for c in columns} for row in history])
    table.to_csv(out_dir / "history.csv", index=False)
    write_json(dict(summary), out_dir / "train_summary.json")
