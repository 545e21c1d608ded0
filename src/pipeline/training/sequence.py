"""Training ``embedding_lstm``: frozen network embeddings per window, a sequence-to-one LSTM
on them (:func:`train_embedding_sequence`).

The seed thesis' ``lstm`` over per-window CNN features: a song of up to ~5 minutes is the
sequence of its windows' embeddings, which an LSTM summarises and an MLP turns into tags.

1. Network: a frozen window network, obtained exactly as ``embedding_svm`` obtains it
   (:func:`pipeline.training.embedding.frozen_network`): a trained window model's
   ``checkpoint.pt`` (``weights``; in ``config.yaml`` ``from_model``, which the workflow turns
   into ``weights``), or a registered window architecture with seeded random weights
   (``network``, ``network_hparams``).
2. Sequences: the track's middle ``train.max_windows`` consecutive windows (all of a shorter
   track; the block :class:`pipeline.training.loaders.TrackSequenceDataset` validates on,
   also in training), each window's ``model.embed`` (a crop model: the mean over
   ``eval_chunks`` crops, as :func:`pipeline.inference.network.window_logits`), standardised
   with the mean and std of the train split's window embeddings. Each split's sequences are
   computed once.
3. Sequence model: the registered ``lstm`` architecture (:mod:`pipeline.models.lstm`, its
   hyper-parameters under ``lstm:``) on the sequences (``n_bins`` = the embedding size),
   trained in :func:`pipeline.training.loop.fit` with masked ``BCEWithLogitsLoss`` (the label
   budget) and Adam with the learning rate schedule of
   :func:`pipeline.training.config.learning_rate`; the epoch with the best validation macro
   ROC-AUC (song level) is kept, with early stopping after ``patience`` epochs.

The checkpoint (kind ``"embedding_sequence"``) is read by
:class:`pipeline.inference.sequence.EmbeddingSequenceTagger`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline.errors import PipelineError
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import middle_block
from pipeline.inference.network import NetworkTagger
from pipeline.inference.sequence import SEQUENCE_ARCHITECTURE, EmbeddingSequenceConfig, run_lstm
from pipeline.io.checkpoint import FORMAT_VERSION, plain
from pipeline.io.device import torch_device
from pipeline.models import build_model
from pipeline.models.layers import count_parameters
from pipeline.models.registry import parse_hparams
from pipeline.numeric import json_float
from pipeline.training.config import TrainConfig, masked_bce
from pipeline.training.embedding import frozen_network
from pipeline.training.loop import LoopState, cosine_schedule, fit, tensorboard_dir
from pipeline.training.two_stage import (
    StoreReader,
    budget_summary,
    fit_scaler,
    song_metrics,
    split_data,
    write_outputs,
)

__all__ = ["train_embedding_sequence"]

log = logging.getLogger(__name__)

#: How the epoch is chosen (stated in the checkpoint and the summary).
SELECTION = "best valid macro ROC-AUC (song level, the LSTM's summary of the embedding sequence)"


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _sequences(
    network: NetworkTagger,
    reader: StoreReader,
    tracks: pd.DataFrame,
    *,
    max_windows: int,
    desc: str,
    progress: bool,
) -> list[np.ndarray]:
    """Unstandardised embedding sequences of every row, each shape (time_i, D), float32."""
    out = []
    bar = tqdm(
        tracks.itertuples(index=False),
        total=len(tracks),
        desc=desc,
        disable=not progress,
        leave=False,
    )
    for row in bar:
        windows, valid = reader.track(row)
        start, stop = middle_block(len(windows), max_windows=max_windows)
        emb = network.embed_windows(windows[start:stop], valid_frames=valid[start:stop])
        out.append(np.asarray(emb, np.float32))
    return out


def _fit_lstm(
    *,
    x_train: list[np.ndarray],
    y_train: np.ndarray,
    m_train: np.ndarray,
    x_valid: list[np.ndarray],
    y_valid: np.ndarray,
    lstm: Mapping[str, Any],
    cfg: TrainConfig,
    device: torch.device,
    name: str,
    progress: bool,
    events_dir: Path | None = None,
) -> tuple[LoopState, int]:
    """Train the LSTM in :func:`pipeline.training.loop.fit`; the loop's end state (best epoch
    on the valid split, history) and the LSTM's parameter count.

    Parameters
    ----------
    x_train : list of np.ndarray, each shape (time_i, D)
        Standardised sequences of the labelled train tracks.
    y_train, m_train : np.ndarray, shape (n_train, n_tags)
        Labels and label masks.
    x_valid : list of np.ndarray, each shape (time_i, D)
    y_valid : np.ndarray, shape (n_valid, n_tags)
    lstm : mapping
        Hyper-parameters of the ``lstm`` architecture.
    """
    if not x_train:
        raise PipelineError("embedding_lstm: no labelled train track (label budget)")
    dim = x_train[0].shape[1]
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's generator
        torch.manual_seed(cfg.seed)
        model = build_model(
            SEQUENCE_ARCHITECTURE,
            n_tags=y_train.shape[1],
            n_bins=dim,
            n_frames=cfg.max_windows,
            hparams=lstm,
        ).to(device)
        n_params = count_parameters(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        generator = torch.Generator().manual_seed(cfg.seed)
        seqs = [torch.from_numpy(np.ascontiguousarray(s, np.float32)) for s in x_train]
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.int64)
        yt = torch.from_numpy(np.ascontiguousarray(y_train, np.float32))
        mt = torch.from_numpy(np.ascontiguousarray(m_train, np.float32))

        def batches(epoch: int) -> tuple[torch.Tensor, ...]:
            return torch.randperm(len(seqs), generator=generator).split(cfg.batch_size)

        def batch_loss(batch: torch.Tensor) -> tuple[torch.Tensor, float]:
            x = nn.utils.rnn.pad_sequence(
                [seqs[i] for i in batch.tolist()], batch_first=True
            )  # (B, time, D)
            y, mask = yt[batch].to(device), mt[batch].to(device)
            loss = masked_bce(model(x.to(device), lengths[batch]), y, mask)
            return loss, float(mask.sum())

        def validate(epoch: int) -> dict[str, float]:
            logits = run_lstm(model, x_valid, embed=False, device=device)  # (n_valid, K)
            return song_metrics(y_valid, logits)

        state = fit(
            model=model,
            optimizer=optimizer,
            epochs=cfg.epochs,
            batches=batches,
            batch_loss=batch_loss,
            validate=validate,
            monitor="valid_roc_auc",
            patience=cfg.patience,
            schedule=cosine_schedule(
                cfg=cfg, steps_per_epoch=math.ceil(len(seqs) / cfg.batch_size)
            ),
            name=name,
            progress=progress,
            tensorboard_dir=events_dir,
        )
    return state, n_params


def train_embedding_sequence(
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
    """Embed the train and valid tracks' window sequences, train the LSTM; write the files.

    The signature and the outputs are those of :func:`pipeline.training.window.train_model`:
    ``checkpoint.pt`` (``kind="embedding_sequence"``, the frozen network included),
    ``history.csv`` (one row per LSTM epoch) and ``train_summary.json``.

    Parameters
    ----------
    architecture : str
        ``"embedding_lstm"`` (recorded in the summary).
    hparams : mapping
        Fields of :class:`EmbeddingSequenceConfig`; unknown keys are a ConfigError.
    train_config : TrainConfig
        The LSTM's ``epochs, batch_size, lr, weight_decay, warmup_epochs, min_lr_fraction,
        patience``; ``max_windows`` (longest sequence, in windows); ``seed`` (random
        weights, LSTM); the label budget; for random crop networks ``crop_frames`` and
        ``eval_chunks``. ``pool_frames`` does not apply.
    index, stats, tags, features, out_dir
        As :func:`pipeline.training.window.train_model`.
    device : str, optional
        Where the network and the LSTM run; None: CUDA when available.
    progress : bool
        Progress bars over tracks and epochs.

    Returns
    -------
    dict
        The keys of :func:`pipeline.training.window.train_model`'s summary; ``params`` counts the
        LSTM
        and the embedding scaler, ``frozen_params`` the network (also stated in ``note``).
        Also ``network``, ``weights``, ``embedding_dim``, ``max_windows``, ``n_train_windows``
        and ``embedding_time_s``.
    """
    started = time.perf_counter()
    config = parse_hparams(EmbeddingSequenceConfig, hparams, architecture=architecture)
    cfg = train_config
    dev = torch_device(device)
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
    if train.tracks.empty:
        raise PipelineError(f"{architecture}: the index has no train-split track")
    n_bins, _ = reader.shape(str(train.tracks["store"].iat[0]))
    net = frozen_network(
        config,
        cfg=cfg,
        tags=tags,
        features=settings,
        stats=stats,
        n_bins=n_bins,
        architecture=architecture,
    )
    network = NetworkTagger(net, device=str(dev))
    frozen = count_parameters(network.model, trainable_only=False)

    embed_started = time.perf_counter()
    common: dict[str, Any] = {"max_windows": cfg.max_windows, "progress": progress}
    s_train = _sequences(network, reader, train.tracks, desc=f"{architecture}: train", **common)
    s_valid = _sequences(network, reader, valid.tracks, desc=f"{architecture}: valid", **common)
    embedding_time = time.perf_counter() - embed_started
    # (D,) each, over every window of every train-split sequence (label budget or not)
    mean, std = fit_scaler(np.concatenate(s_train))
    x_train = [(s - mean) / std for s in s_train]
    x_valid = [(s - mean) / std for s in s_valid]

    kept = train.budget
    lstm_hparams = dict(config.lstm)
    fitted, lstm_params = _fit_lstm(
        x_train=[x for x, k in zip(x_train, kept, strict=True) if k],
        y_train=train.labels[kept],
        m_train=train.masks[kept],
        x_valid=x_valid,
        y_valid=valid.labels,
        lstm=lstm_hparams,
        cfg=cfg,
        device=dev,
        name=f"{architecture}: lstm",
        progress=progress,
        events_dir=tensorboard_dir(cfg=cfg, out_dir=out_dir),
    )
    best, history = fitted.best, fitted.history
    if best is None:
        raise PipelineError(f"{architecture}: no epoch was trained (epochs={cfg.epochs})")

    source = "random" if config.weights == "random" else str(config.weights)
    dim = int(mean.size)
    checkpoint = {
        "format_version": FORMAT_VERSION,
        "kind": "embedding_sequence",
        "tags": [str(t) for t in tags],
        "features": settings.to_dict(),
        "stats": net["stats"],
        "architecture": str(architecture),
        "hparams": config.to_dict(),
        "train_config": cfg.to_dict(),
        "network": {**net, "source": source},
        "scaler": {"mean": torch.from_numpy(mean), "std": torch.from_numpy(std)},
        "sequence_model": {
            "architecture": SEQUENCE_ARCHITECTURE,
            "hparams": plain(lstm_hparams),
            "state_dict": best.state_dict,
        },
        "max_windows": int(cfg.max_windows),
        "selection": {"criterion": SELECTION, "epoch": int(best.epoch), "value": best.value},
    }
    summary = {
        "architecture": str(architecture),
        "params": int(lstm_params + 2 * dim),
        "train_time_s": time.perf_counter() - started,
        "best_epoch": int(best.epoch),
        "best_valid_roc_auc": json_float(best.value),
        "best_valid_pr_auc": json_float(best.metrics["valid_pr_auc"]),
        "epochs_run": len(history),
        "stopped_early": bool(len(history) < cfg.epochs),
        "device": str(dev),
        "amp": False,
        "selection": SELECTION,
        **budget_summary(
            train, label_fraction=cfg.label_fraction, tag_label_fraction=cfg.tag_label_fraction
        ),
        "frozen_params": int(frozen),
        "note": (
            f"params counts the LSTM and the embedding scaler; the frozen "
            f"{net['architecture']} network ({source} weights) has {frozen} more"
        ),
        "network": net["architecture"],
        "weights": source,
        "embedding_dim": dim,
        "max_windows": int(cfg.max_windows),
        "n_train_windows": int(sum(len(s) for s in s_train)),
        "embedding_time_s": embedding_time,
    }
    write_outputs(out_dir=Path(out_dir), checkpoint=checkpoint, history=history, summary=summary)
    log.info("%s: %s", architecture, summary)
    return summary
