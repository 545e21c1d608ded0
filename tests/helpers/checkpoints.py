"""Checkpoints for tests: trained briefly on :mod:`tests.helpers.synthetic` stores, or built
with random weights in milliseconds.

The trained ones back the session fixtures ``checkpoints`` and ``trained`` of
``tests/conftest.py``; :func:`random_network_checkpoint` is for unit tests that need a real
network tagger but not a trained one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.features.codebook import fit_codebook
from pipeline.inference.bag_of_frames import BagOfFramesConfig, HistogramMLP
from pipeline.io.checkpoint import FORMAT_VERSION, network_checkpoint
from pipeline.models import build_model
from pipeline.training.config import TrainConfig
from pipeline.training.run import TWO_STAGE_TRAINERS
from pipeline.training.window import train_model
from tests.helpers.synthetic import N_BINS, SETTINGS, TAGS, build_synthetic

__all__ = [
    "KINDS",
    "RANDOM_STATS",
    "random_bag_of_frames_checkpoint",
    "random_embedding_classifier_checkpoint",
    "random_embedding_sequence_checkpoint",
    "random_network_checkpoint",
    "train_checkpoints",
    "train_fcn_and_lstm",
]

#: The tagger kinds of :func:`train_checkpoints`, by the folder (and key) they are saved under.
KINDS = ("fcn", "lstm", "bag_of_frames", "embedding_svm", "embedding_lstm")

#: Band statistics of random checkpoints: about those of the synthetic stores' noise.
RANDOM_STATS = {"mean": [-60.0] * N_BINS, "std": [4.0] * N_BINS}


def _common(data: dict) -> dict[str, Any]:
    return {
        "index": data["index"],
        "stats": data["stats"],
        "tags": data["tags"],
        "features": data["features"],
        "progress": False,
    }


def train_checkpoints(root: Path) -> dict:
    """A checkpoint of each tagger kind, trained briefly on 24 synthetic tracks.

    ``fcn``: a crop-trained window model (aggregation "mean"); ``lstm``: a sequence model
    reading at most 2 windows; ``bag_of_frames``, ``embedding_svm`` and ``embedding_lstm``
    (an LSTM on the embeddings of at most 2 windows): two-stage models.

    Returns
    -------
    dict
        :func:`tests.helpers.synthetic.build_synthetic`'s entries, ``root``, and the
        checkpoint path of each of :data:`KINDS`.
    """
    data = build_synthetic(root / "stores", n_tracks=24)
    common = _common(data)
    train_model(
        architecture="fcn",
        hparams={"depth": 4, "width": 4},
        train_config=TrainConfig(epochs=2, batch_size=8, lr=3e-3, crop_frames=32, eval_chunks=2),
        out_dir=root / "fcn",
        **common,
    )
    train_model(
        architecture="lstm",
        hparams={"hidden": 8, "mlp": 8, "dropout": 0.0},
        train_config=TrainConfig(epochs=1, batch_size=8, pool_frames=8, max_windows=2),
        out_dir=root / "lstm",
        **common,
    )
    TWO_STAGE_TRAINERS["bag_of_frames"](
        architecture="bag_of_frames",
        hparams={"codebook_size": 8, "hidden": 8, "max_frames": 500},
        train_config=TrainConfig(epochs=2, batch_size=8, lr=1e-2),
        out_dir=root / "bag_of_frames",
        **common,
    )
    TWO_STAGE_TRAINERS["embedding_svm"](
        architecture="embedding_svm",
        hparams={"network": "fcn", "network_hparams": {"depth": 4, "width": 4}, "C": 1.0},
        train_config=TrainConfig(),
        out_dir=root / "embedding_svm",
        **common,
    )
    TWO_STAGE_TRAINERS["embedding_lstm"](
        architecture="embedding_lstm",
        hparams={
            "network": "fcn",
            "network_hparams": {"depth": 4, "width": 4},
            "lstm": {"hidden": 8, "mlp": 8, "dropout": 0.0},
        },
        train_config=TrainConfig(epochs=2, batch_size=8, lr=1e-2, max_windows=2),
        out_dir=root / "embedding_lstm",
        **common,
    )
    return {**data, "root": root, **{k: root / k / "checkpoint.pt" for k in KINDS}}


def train_fcn_and_lstm(root: Path) -> dict:
    """A crop-trained FCN (3 epochs) and an LSTM (2 epochs) on 40 synthetic tracks.

    Returns
    -------
    dict
        :func:`tests.helpers.synthetic.build_synthetic`'s entries and the checkpoint paths
        ``fcn`` and ``lstm``.
    """
    data = build_synthetic(root / "stores")
    common = _common(data)
    train_model(
        architecture="fcn",
        hparams={"depth": 4, "width": 4, "dropout": 0.1},
        train_config=TrainConfig(epochs=3, batch_size=8, lr=3e-3, crop_frames=32, eval_chunks=4),
        out_dir=root / "fcn",
        **common,
    )
    train_model(
        architecture="lstm",
        hparams={"hidden": 8, "mlp": 8, "dropout": 0.0},
        train_config=TrainConfig(epochs=2, batch_size=8, pool_frames=8, max_windows=2),
        out_dir=root / "lstm",
        **common,
    )
    return {**data, "fcn": root / "fcn" / "checkpoint.pt", "lstm": root / "lstm" / "checkpoint.pt"}


def random_network_checkpoint(
    architecture: str = "fcn",
    *,
    tags: Sequence[str] = TAGS,
    crop_frames: int | None = 32,
    eval_chunks: int = 4,
    max_windows: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """A ``kind="network"`` checkpoint of a tiny network with seeded random weights.

    On the feature settings of :mod:`tests.helpers.synthetic` (16 bands, 64 frames);
    ``"fcn"`` is a window model (crops of ``crop_frames``, or whole windows for None),
    ``"lstm"`` a sequence model pooling 8 frames per step.
    """
    torch.manual_seed(seed)
    if architecture == "fcn":
        hparams: dict[str, Any] = {"depth": 4, "width": 4, "dropout": 0.0}
        kind, n_frames = "window", crop_frames or SETTINGS.n_frames
    else:
        hparams = {"hidden": 8, "mlp": 8, "dropout": 0.0}
        kind, crop_frames, n_frames = "sequence", None, 16
    model = build_model(
        architecture, n_tags=len(tags), n_bins=N_BINS, n_frames=n_frames, hparams=hparams
    )
    return network_checkpoint(
        architecture=architecture,
        hparams=hparams,
        train_config={},
        tags=list(tags),
        features=SETTINGS.to_dict(),
        stats=RANDOM_STATS,
        input_kind=kind,
        crop_frames=crop_frames,
        pool_frames=8,
        eval_chunks=eval_chunks,
        max_windows=max_windows,
        state_dict=model.state_dict(),
        selection={"criterion": "random weights", "epoch": 0, "value": None},
    )


def _two_stage(kind: str, architecture: str, tags: Sequence[str], **keys: Any) -> dict[str, Any]:
    """The common keys of a random two-stage checkpoint, and ``keys``."""
    return {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "tags": list(tags),
        "features": SETTINGS.to_dict(),
        "stats": {k: list(v) for k, v in RANDOM_STATS.items()},
        "architecture": architecture,
        "train_config": {},
        "selection": {"criterion": "random weights", "epoch": 0, "value": None},
        **keys,
    }


def random_bag_of_frames_checkpoint(
    *, tags: Sequence[str] = TAGS, codebook_size: int = 6, soft: bool = False, seed: int = 0
) -> dict[str, Any]:
    """A ``kind="bag_of_frames"`` checkpoint: a K-means codebook of seeded random frames, a
    random scaler and an MLP with seeded random weights."""
    rng = np.random.default_rng(seed)
    frames = rng.standard_normal((400, N_BINS)).astype(np.float32)
    codebook, bandwidth = fit_codebook(frames, size=codebook_size, seed=seed)
    config = BagOfFramesConfig(codebook_size=codebook_size, soft=soft, hidden=8)
    torch.manual_seed(seed)
    mlp = HistogramMLP(n_inputs=codebook_size, hidden=8, n_tags=len(tags), dropout=0.0)
    return _two_stage(
        "bag_of_frames",
        "bag_of_frames",
        tags,
        hparams=asdict(config),
        codebook=torch.from_numpy(codebook),
        bandwidth=float(bandwidth),
        scaler={
            "mean": torch.full((codebook_size,), 1.0 / codebook_size),
            "std": torch.from_numpy(rng.uniform(0.05, 0.2, codebook_size).astype(np.float32)),
        },
        classifier={"hidden": 8, "dropout": 0.0, "state_dict": mlp.state_dict()},
    )


def random_embedding_classifier_checkpoint(
    *, tags: Sequence[str] = TAGS, seed: int = 0
) -> dict[str, Any]:
    """A ``kind="embedding_classifier"`` checkpoint: a random whole-window FCN and a seeded
    random linear classifier on its 32-dimensional embeddings."""
    network = random_network_checkpoint(tags=tags, crop_frames=None, seed=seed)
    rng = np.random.default_rng(seed)
    dim = 32  # FCN-4 of width 4
    return _two_stage(
        "embedding_classifier",
        "embedding_svm",
        tags,
        hparams={"network": "fcn", "network_hparams": network["hparams"], "classifier": "svm"},
        network={**network, "source": "random"},
        scaler={
            "mean": torch.from_numpy(rng.normal(0.0, 0.1, dim).astype(np.float32)),
            "std": torch.from_numpy(rng.uniform(0.5, 2.0, dim).astype(np.float32)),
        },
        classifier={
            "kind": "svm",
            "C": 1.0,
            "weight": torch.from_numpy(rng.normal(0.0, 1.0, (len(tags), dim))),
            "bias": torch.from_numpy(rng.normal(0.0, 1.0, len(tags))),
        },
    )


def random_embedding_sequence_checkpoint(
    *, tags: Sequence[str] = TAGS, max_windows: int = 3, seed: int = 0
) -> dict[str, Any]:
    """A ``kind="embedding_sequence"`` checkpoint: a random whole-window FCN and an LSTM with
    seeded random weights reading the standardised embeddings of ``max_windows`` windows."""
    network = random_network_checkpoint(tags=tags, crop_frames=None, seed=seed)
    rng = np.random.default_rng(seed)
    dim = 32  # FCN-4 of width 4
    lstm = {"hidden": 8, "mlp": 8, "dropout": 0.0}
    torch.manual_seed(seed)
    model = build_model("lstm", n_tags=len(tags), n_bins=dim, n_frames=max_windows, hparams=lstm)
    return _two_stage(
        "embedding_sequence",
        "embedding_lstm",
        tags,
        hparams={"network": "fcn", "network_hparams": network["hparams"], "lstm": lstm},
        network={**network, "source": "random"},
        scaler={
            "mean": torch.from_numpy(rng.normal(0.0, 0.1, dim).astype(np.float32)),
            "std": torch.from_numpy(rng.uniform(0.5, 2.0, dim).astype(np.float32)),
        },
        sequence_model={"architecture": "lstm", "hparams": lstm, "state_dict": model.state_dict()},
        max_windows=max_windows,
    )
