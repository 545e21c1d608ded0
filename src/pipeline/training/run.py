"""Which trainer fits an architecture, and the train step of one model as the workflow runs it.

Networks train end to end with :func:`pipeline.training.window.train_model`; the two-stage
models (bag of frames, embeddings + linear classifier, embedding sequences + LSTM) have
trainers with the same signature and outputs, so the workflow treats every model alike. Their
song-level taggers give their own song prediction (``aggregation="model"``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from pipeline.io.checkpoint import load_checkpoint, save_checkpoint
from pipeline.io.files import read_json, write_json
from pipeline.io.store import FeatureStore
from pipeline.training.bag_of_frames import train_bag_of_frames
from pipeline.training.config import TrainConfig
from pipeline.training.embedding import train_embedding_classifier
from pipeline.training.sequence import train_embedding_sequence
from pipeline.training.window import train_model
from pipeline.training.zero_shot import train_zero_shot_clap

__all__ = ["TWO_STAGE_TRAINERS", "get_trainer", "run_training"]

log = logging.getLogger(__name__)

#: Architecture name -> trainer with the signature of :func:`pipeline.training.window.train_model`.
TWO_STAGE_TRAINERS: dict[str, Callable[..., dict[str, Any]]] = {
    "bag_of_frames": train_bag_of_frames,
    "embedding_svm": train_embedding_classifier,
    "embedding_lstm": train_embedding_sequence,
    "zero_shot_clap": train_zero_shot_clap,
}


def get_trainer(architecture: str) -> Callable[..., dict[str, Any]]:
    """The trainer of an architecture: a two-stage fit, or end-to-end network training."""
    return TWO_STAGE_TRAINERS.get(architecture, train_model)


def run_training(
    *,
    model: Mapping[str, Any],
    index_path: Path,
    stats_path: Path,
    vocabulary_path: Path,
    out_dir: Path,
    threads: int = 1,
    network_checkpoint: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train one configured model on one dataset.

    Parameters
    ----------
    model : mapping
        The model's validated config entry (``architecture``, ``features``, ``hparams``,
        ``train``).
    index_path, stats_path, vocabulary_path : Path
        The feature set's ``index.parquet`` and ``stats.json``, the dataset's
        ``vocabulary.json``.
    out_dir : Path
        Receives ``checkpoint.pt``, ``last.pt``, ``history.csv``, ``train_summary.json``.
    threads : int
        Torch CPU threads.
    network_checkpoint : Path, optional
        The trained network an embedding model borrows (``hparams.from_model``).

    Returns
    -------
    dict
        The trainer's summary.
    """
    torch.set_num_threads(max(threads, 1))
    index = pd.read_parquet(index_path)
    hparams = dict(model.get("hparams", {}))
    if network_checkpoint is not None:
        hparams.pop("from_model", None)
        hparams["weights"] = str(network_checkpoint)
    features = FeatureStore(Path(index["store"].iloc[0])).attrs["features"]
    trainer = get_trainer(model["architecture"])
    summary = trainer(
        architecture=model["architecture"],
        hparams=hparams,
        train_config=TrainConfig.from_dict(model.get("train", {})),
        index=index,
        stats=read_json(stats_path),
        tags=read_json(vocabulary_path)["tags"],
        features=features,
        out_dir=Path(out_dir),
        progress=progress,
    )
    licence = (features.get("encoder") or {}).get("licence")
    if licence:  # weights of a pretrained encoder: their licence goes with the model
        summary = _record_licence(Path(out_dir), summary=summary, licence=str(licence))
    log.info("trained %s: %s", model["architecture"], summary)
    return summary


def _record_licence(out_dir: Path, *, summary: Mapping[str, Any], licence: str) -> dict[str, Any]:
    """Add ``licence`` (of the pretrained encoder a model depends on) to its checkpoint and
    ``train_summary.json``; the leaderboard lists it."""
    path = out_dir / "checkpoint.pt"
    checkpoint = load_checkpoint(path)
    if checkpoint.get("licence") != licence:
        checkpoint["licence"] = licence
        save_checkpoint(checkpoint, path)
    out = {**summary, "licence": licence}
    write_json(out, out_dir / "train_summary.json")
    return out
