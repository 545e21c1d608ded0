"""Training the bag-of-frames tagger (``bag_of_frames``): :func:`train_bag_of_frames` samples
frames, fits the codebook, computes the histograms and trains the MLP.

The seed thesis' baseline (after Aucouturier & Pachet's bag-of-frames and its codebook
variants, e.g. Hoffman, Blei & Cook 2009): a track is the distribution of its frames over
a codebook, whatever their order. The codebook and histograms are
:mod:`pipeline.features.codebook`; the settings, the MLP and the tagger that reads the
checkpoint are :mod:`pipeline.inference.bag_of_frames`. Training:

1. Frames: the stored MFCC or log-mel frame vectors that hold audio (the zero padding of a
   short track's last window is dropped; overlapping windows count once, the rule of
   :func:`pipeline.features.windows.pool_sequence`), normalised with the train split's band
   statistics.
2. Codebook: :class:`sklearn.cluster.MiniBatchKMeans` (seeded) on at most ``max_frames``
   frames sampled evenly over the train split's tracks (seeded).
3. Histogram: the fraction of a track's frames nearest to each codeword (``soft``: each
   frame spreads over the codewords with weights ``softmax(-d^2 / bandwidth)``, the
   bandwidth being the codebook's mean squared distance of a frame to its nearest codeword).
   A window's histogram uses that window's frames only.
4. Classifier: histograms standardised with the train split's mean and std, then a one
   hidden-layer MLP (:class:`HistogramMLP`) that returns logits, trained with masked
   ``BCEWithLogitsLoss`` and Adam on the train split in :func:`pipeline.training.loop.fit`;
   the epoch with the best validation macro ROC-AUC (song level) is kept, with early
   stopping after ``patience`` epochs.

Why a torch MLP rather than :class:`sklearn.neural_network.MLPClassifier`: the epoch is
chosen on the pipeline's own validation split and metric (``MLPClassifier``'s early stopping
holds out a random part of the training data and scores accuracy), the label budget's masks
go into the loss, the loss is the pipeline's one (logits + BCE), and the weights go into the
checkpoint as tensors. K-means is sklearn's.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from pipeline.errors import ConfigError, PipelineError
from pipeline.features.codebook import fit_codebook, histogram, track_frames
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import hop_frames, normaliser
from pipeline.inference.bag_of_frames import BagOfFramesConfig, HistogramMLP
from pipeline.io.checkpoint import FORMAT_VERSION
from pipeline.io.device import torch_device
from pipeline.models.layers import count_parameters
from pipeline.models.registry import parse_hparams
from pipeline.numeric import json_float
from pipeline.training.config import TrainConfig, masked_bce
from pipeline.training.loop import LoopState, cosine_schedule, fit, tensorboard_dir
from pipeline.training.two_stage import (
    StoreReader,
    budget_summary,
    fit_scaler,
    song_metrics,
    split_data,
    write_outputs,
)

__all__ = ["SELECTION", "train_bag_of_frames"]

log = logging.getLogger(__name__)

#: How the checkpoint's epoch is chosen.
SELECTION = "best valid macro ROC-AUC (song level, whole-track histogram) over MLP epochs"


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _sample_frames(
    reader: StoreReader,
    tracks: pd.DataFrame,
    *,
    max_frames: int,
    seed: int,
    normalise: Mapping[str, Any],
    progress: bool,
) -> np.ndarray:
    """At most ``max_frames`` frames, about as many from every track, shape (n, n_bins).

    Each track's sample is seeded by ``seed`` and a hash of its ``track_id``, so it does not
    depend on the order of the index.
    """
    per_track = max(1, math.ceil(max_frames / len(tracks)))
    parts = []
    bar = tqdm(
        reader.tracks(tracks),
        total=len(tracks),
        desc="bag_of_frames: sampling frames",
        disable=not progress,
        leave=False,
    )
    for track_id, (windows, valid) in zip(tracks["track_id"], bar, strict=True):
        frames = track_frames(windows, valid, **normalise)  # (T, n_bins)
        if len(frames) > per_track:
            key = hashlib.blake2b(str(track_id).encode(), digest_size=8).digest()
            rng = np.random.default_rng([seed, int.from_bytes(key, "little")])
            frames = frames[np.sort(rng.choice(len(frames), per_track, replace=False))]
        parts.append(frames)
    frames = np.concatenate(parts)
    if len(frames) > max_frames:
        rng = np.random.default_rng([seed, len(tracks)])
        frames = frames[np.sort(rng.choice(len(frames), max_frames, replace=False))]
    return frames


def _histograms(
    reader: StoreReader,
    tracks: pd.DataFrame,
    *,
    codebook: np.ndarray,
    bandwidth: float,
    soft: bool,
    normalise: Mapping[str, Any],
    desc: str,
    progress: bool,
) -> np.ndarray:
    """Whole-track histograms of every row, shape (n_tracks, K)."""
    bar = tqdm(
        reader.tracks(tracks), total=len(tracks), desc=desc, disable=not progress, leave=False
    )
    return np.stack(
        [
            histogram(
                track_frames(windows, valid, **normalise),
                codebook,
                soft=soft,
                bandwidth=bandwidth,
            )
            for windows, valid in bar
        ]
    )


def _fit_mlp(
    *,
    x_train: np.ndarray,
    y_train: np.ndarray,
    m_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    config: BagOfFramesConfig,
    cfg: TrainConfig,
    progress: bool,
    events_dir: Path | None = None,
) -> tuple[LoopState, int]:
    """Train the MLP in :func:`pipeline.training.loop.fit`; the loop's end state (best epoch
    on the valid split, history) and the MLP's parameter count.

    Parameters
    ----------
    x_train : np.ndarray, shape (n_train, K)
        Standardised histograms of the labelled train tracks.
    y_train, m_train : np.ndarray, shape (n_train, n_tags)
        Labels and label masks.
    x_valid : np.ndarray, shape (n_valid, K)
    y_valid : np.ndarray, shape (n_valid, n_tags)
    """
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's generator
        torch.manual_seed(cfg.seed)
        mlp = HistogramMLP(
            n_inputs=x_train.shape[1],
            hidden=config.hidden,
            n_tags=y_train.shape[1],
            dropout=config.dropout,
        )
        n_params = count_parameters(mlp)
        optimizer = torch.optim.Adam(mlp.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        generator = torch.Generator().manual_seed(cfg.seed)
        xt, yt, mt = (
            torch.from_numpy(np.ascontiguousarray(a, np.float32))
            for a in (x_train, y_train, m_train)
        )
        xv = torch.from_numpy(np.ascontiguousarray(x_valid, np.float32))

        def batches(epoch: int) -> tuple[torch.Tensor, ...]:
            return torch.randperm(len(xt), generator=generator).split(cfg.batch_size)

        def batch_loss(batch: torch.Tensor) -> tuple[torch.Tensor, float]:
            return masked_bce(mlp(xt[batch]), yt[batch], mt[batch]), float(mt[batch].sum())

        state = fit(
            model=mlp,
            optimizer=optimizer,
            epochs=cfg.epochs,
            batches=batches,
            batch_loss=batch_loss,
            validate=lambda epoch: song_metrics(y_valid, mlp(xv).numpy()),
            monitor="valid_roc_auc",
            patience=cfg.patience,
            schedule=cosine_schedule(cfg=cfg, steps_per_epoch=math.ceil(len(xt) / cfg.batch_size)),
            name="bag_of_frames",
            progress=progress,
            tensorboard_dir=events_dir,
        )
    return state, n_params


def train_bag_of_frames(
    *,
    architecture: str,
    hparams: Mapping[str, Any],
    train_config: TrainConfig,
    index: pd.DataFrame,
    stats: Mapping[str, Any],
    tags: Sequence[str],
    features: Mapping[str, Any],
    out_dir: Path,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit the codebook and the MLP; write the checkpoint, history and summary.

    The signature and the outputs are those of :func:`pipeline.training.window.train_model`:
    ``checkpoint.pt`` (``kind="bag_of_frames"``), ``history.csv`` (one row per MLP epoch)
    and ``train_summary.json``.

    Parameters
    ----------
    architecture : str
        ``"bag_of_frames"`` (recorded in the summary).
    hparams : mapping
        Fields of :class:`BagOfFramesConfig`; unknown keys are a ConfigError.
    train_config : TrainConfig
        The MLP's ``epochs, batch_size, lr, weight_decay, warmup_epochs, min_lr_fraction,
        patience``; ``seed`` (codebook sample, K-means, MLP); the label budget. Must have
        ``crop_frames=None`` (histograms cover whole windows); the rest does not apply.
    index, stats, tags, features, out_dir
        As :func:`pipeline.training.window.train_model`.
    device : str, optional
        Checked, but the fit runs on the CPU (numpy, sklearn and a tiny MLP).
    progress : bool
        Progress bars over tracks.

    Returns
    -------
    dict
        The keys of :func:`pipeline.training.window.train_model`'s summary; ``params`` counts the
        codebook, the histogram scaler and the MLP. Also ``codebook_size``, ``n_codebook_frames``
        and ``codebook_time_s``.
    """
    started = time.perf_counter()
    config = parse_hparams(BagOfFramesConfig, hparams, architecture=architecture)
    cfg = train_config
    if cfg.crop_frames is not None:
        raise ConfigError(
            f"train.crop_frames: {cfg.crop_frames!r} does not apply to {architecture!r}, whose "
            "histograms cover whole windows (set it to null)"
        )
    torch_device(device)  # a wrong device is an error here too
    settings = FeatureSettings.from_dict(features)
    reader = StoreReader(features=settings)
    train = split_data(
        index,
        split="train",
        tags=tags,
        seed=cfg.seed,
        label_fraction=cfg.label_fraction,
        tag_label_fraction=cfg.tag_label_fraction,
    )
    valid = split_data(index, split="valid", tags=tags)
    n_bins, _ = reader.shape(str(train.tracks["store"].iat[0]))
    mean, inv_std = normaliser(stats, n_bins=n_bins)
    normalise = {"mean": mean, "inv_std": inv_std, "hop": hop_frames(settings)}

    frames = _sample_frames(
        reader,
        train.tracks,
        max_frames=config.max_frames,
        seed=cfg.seed,
        normalise=normalise,
        progress=progress,
    )
    codebook_started = time.perf_counter()
    codebook, bandwidth = fit_codebook(frames, size=config.codebook_size, seed=cfg.seed)
    codebook_time = time.perf_counter() - codebook_started
    log.info(
        "bag_of_frames: %d-word codebook from %d frames in %.1f s",
        len(codebook),
        len(frames),
        codebook_time,
    )
    hist = {
        "codebook": codebook,
        "bandwidth": bandwidth,
        "soft": config.soft,
        "normalise": normalise,
        "progress": progress,
    }
    h_train = _histograms(reader, train.tracks, desc="bag_of_frames: train histograms", **hist)
    h_valid = _histograms(reader, valid.tracks, desc="bag_of_frames: valid histograms", **hist)
    scale_mean, scale_std = fit_scaler(h_train)  # (K,) each, over every train-split track

    kept = train.budget
    fitted, mlp_params = _fit_mlp(
        x_train=(h_train[kept] - scale_mean) / scale_std,
        y_train=train.labels[kept],
        m_train=train.masks[kept],
        x_valid=(h_valid - scale_mean) / scale_std,
        y_valid=valid.labels,
        config=config,
        cfg=cfg,
        progress=progress,
        events_dir=tensorboard_dir(cfg=cfg, out_dir=out_dir),
    )
    best, history = fitted.best, fitted.history
    if best is None:
        raise PipelineError(f"{architecture}: no epoch was trained (epochs={cfg.epochs})")
    checkpoint = {
        "format_version": FORMAT_VERSION,
        "kind": "bag_of_frames",
        "tags": [str(t) for t in tags],
        "features": settings.to_dict(),
        "stats": {
            "mean": [float(v) for v in stats["mean"]],
            "std": [float(v) for v in stats["std"]],
        },
        "architecture": str(architecture),
        "hparams": asdict(config),
        "train_config": cfg.to_dict(),
        "codebook": torch.from_numpy(codebook),
        "bandwidth": float(bandwidth),
        "scaler": {"mean": torch.from_numpy(scale_mean), "std": torch.from_numpy(scale_std)},
        "classifier": {
            "hidden": config.hidden,
            "dropout": float(config.dropout),
            "state_dict": best.state_dict,
        },
        "selection": {"criterion": SELECTION, "epoch": int(best.epoch), "value": best.value},
    }
    n_params = codebook.size + scale_mean.size + scale_std.size + mlp_params
    summary = {
        "architecture": str(architecture),
        "params": int(n_params),
        "train_time_s": time.perf_counter() - started,
        "best_epoch": int(best.epoch),
        "best_valid_roc_auc": json_float(best.value),
        "best_valid_pr_auc": json_float(best.metrics["valid_pr_auc"]),
        "epochs_run": len(history),
        "stopped_early": bool(len(history) < cfg.epochs),
        "device": "cpu",
        "amp": False,
        "selection": SELECTION,
        **budget_summary(
            train, label_fraction=cfg.label_fraction, tag_label_fraction=cfg.tag_label_fraction
        ),
        "codebook_size": int(len(codebook)),
        "n_codebook_frames": int(len(frames)),
        "codebook_time_s": codebook_time,
    }
    write_outputs(out_dir=Path(out_dir), checkpoint=checkpoint, history=history, summary=summary)
    log.info("bag_of_frames: %s", summary)
    return summary
