"""Training ``embedding_svm`` (frozen network embeddings + a linear classifier,
:func:`train_embedding_classifier`), and the frozen network that it and ``embedding_lstm``
embed with (:func:`frozen_network`). The tagger is :mod:`pipeline.inference.embedding`.

Two-stage tagging as in Pons & Serra, "Randomly weighted CNNs for (music) audio
classification" (ICASSP 2019), where the embeddings of a network with random, untrained
weights and a linear classifier on top are a strong baseline, and as transfer learning
from a trained tagger:

1. Network: a registered window architecture (``network``, ``network_hparams``) with
   seeded random weights, or a trained ``checkpoint.pt`` of a window model (``weights`` is
   its path; its architecture, hyper-parameters, weights, band statistics and crop settings
   are used). The network is frozen and runs in eval mode.
2. Embeddings: ``model.embed`` of each window (a crop model: the mean over
   ``eval_chunks`` crops, as :func:`pipeline.inference.network.window_logits`), mean-pooled
   over the track's windows, standardised with the train split's mean and std.
3. Classifier: one linear model per tag (one-vs-rest) with balanced class weights:
   :class:`sklearn.linear_model.LogisticRegression` (``"logistic"``) or
   :class:`sklearn.svm.LinearSVC` (``"svm"``, whose decision function is used as logits).
   ``C`` is a number, or a list of numbers from which the validation split's macro ROC-AUC
   (song level) chooses. Tags are fitted one by one so that the label budget's hidden labels
   are left out per tag; a tag with one class among its observed labels gets a constant
   logit (its smoothed prior).

A linear classifier on mean-pooled embeddings gives a song logit equal to the mean of the
window logits; the song probability is the sigmoid of that logit (``aggregation="model"``).
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
from tqdm.auto import tqdm

from pipeline.errors import ConfigError, PipelineError
from pipeline.features.settings import FeatureSettings
from pipeline.inference.embedding import EmbeddingClassifierConfig, NetworkSource
from pipeline.inference.linear import CLASSIFIERS
from pipeline.inference.network import NetworkTagger
from pipeline.io.checkpoint import FORMAT_VERSION, load_checkpoint, network_checkpoint
from pipeline.io.device import torch_device
from pipeline.models.layers import count_parameters
from pipeline.models.registry import ARCHITECTURES, build_model, parse_hparams
from pipeline.numeric import json_float
from pipeline.training.config import TrainConfig
from pipeline.training.linear import fit_linear, masked_log_loss
from pipeline.training.loop import improves
from pipeline.training.two_stage import (
    StoreReader,
    budget_summary,
    fit_scaler,
    song_metrics,
    split_data,
    write_outputs,
)

__all__ = ["train_embedding_classifier", "frozen_network"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _track_embeddings(
    network: NetworkTagger,
    reader: StoreReader,
    tracks: pd.DataFrame,
    *,
    desc: str,
    progress: bool,
) -> np.ndarray:
    """Mean-pooled embeddings of every row, shape (n_tracks, D), float32."""
    bar = tqdm(
        reader.tracks(tracks), total=len(tracks), desc=desc, disable=not progress, leave=False
    )
    return np.stack(
        [network.embed_track(windows, valid_frames=valid) for windows, valid in bar]
    ).astype(np.float32)


def train_embedding_classifier(
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
    """Embed the train and valid tracks, fit the classifier; write checkpoint, history, summary.

    The signature and the outputs are those of :func:`pipeline.training.window.train_model`:
    ``checkpoint.pt`` (``kind="embedding_classifier"``, the frozen network included),
    ``history.csv`` (one row per value of C, with a ``C`` column; ``lr`` is NaN, and the
    losses too for the SVM) and ``train_summary.json``.

    Parameters
    ----------
    architecture : str
        ``"embedding_svm"`` (recorded in the summary).
    hparams : mapping
        Fields of :class:`EmbeddingClassifierConfig`; unknown keys are a ConfigError.
    train_config : TrainConfig
        ``seed`` (random weights, SVM), the label budget, and for random crop networks
        ``crop_frames`` and ``eval_chunks``; the optimisation settings do not apply.
    index, stats, tags, features, out_dir
        As :func:`pipeline.training.window.train_model`.
    device : str, optional
        Where the network runs; None: CUDA when available.
    progress : bool
        Progress bars over tracks.

    Returns
    -------
    dict
        The keys of :func:`pipeline.training.window.train_model`'s summary; ``params`` counts the
        classifier and the embedding scaler, ``frozen_params`` the network (also stated in
        ``note``). Also ``network``, ``weights``, ``classifier``, ``C``, ``embedding_dim`` and
        ``embedding_time_s``.
    """
    started = time.perf_counter()
    config = parse_hparams(EmbeddingClassifierConfig, hparams, architecture=architecture)
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
    e_train = _track_embeddings(
        network, reader, train.tracks, desc="embedding_svm: train", progress=progress
    )
    e_valid = _track_embeddings(
        network, reader, valid.tracks, desc="embedding_svm: valid", progress=progress
    )
    embedding_time = time.perf_counter() - embed_started
    mean, std = fit_scaler(e_train)  # (D,) each, over every train-split track
    x_train, x_valid = (e_train - mean) / std, (e_valid - mean) / std
    kept = train.budget
    probabilistic = CLASSIFIERS[config.classifier].probabilistic

    history: list[dict[str, float]] = []
    best: dict[str, Any] | None = None
    for epoch, C in enumerate(config.grid, start=1):
        fit_started = time.perf_counter()
        weight, bias = fit_linear(
            x_train[kept],
            train.labels[kept],
            train.masks[kept],
            classifier=config.classifier,
            C=C,
            seed=cfg.seed,
        )
        metrics = song_metrics(valid.labels, x_valid @ weight.T + bias)
        train_logits = x_train[kept] @ weight.T + bias
        history.append(
            {
                "epoch": epoch,
                "train_loss": masked_log_loss(train.labels[kept], train.masks[kept], train_logits)
                if probabilistic
                else math.nan,
                **metrics,
                "valid_loss": metrics["valid_loss"] if probabilistic else math.nan,
                "lr": math.nan,
                "seconds": time.perf_counter() - fit_started,
                "C": C,
            }
        )
        value = metrics["valid_roc_auc"]
        if improves(value, None if best is None else best["value"]):
            best = {"epoch": epoch, "C": C, "value": value, "pr_auc": metrics["valid_pr_auc"]}
            best.update(weight=weight, bias=bias)
    assert best is not None  # the grid is never empty
    if len(config.grid) > 1:
        selection = (
            f"best valid macro ROC-AUC (song level, mean-pooled embedding) over C in {config.grid}"
        )
    else:
        selection = f"C fixed at {config.grid[0]:g} (no selection; valid macro ROC-AUC reported)"

    source = "random" if config.weights == "random" else str(config.weights)
    checkpoint = {
        "format_version": FORMAT_VERSION,
        "kind": "embedding_classifier",
        "tags": [str(t) for t in tags],
        "features": settings.to_dict(),
        "stats": net["stats"],
        "architecture": str(architecture),
        "hparams": config.to_dict(),
        "train_config": cfg.to_dict(),
        "network": {**net, "source": source},
        "scaler": {"mean": torch.from_numpy(mean), "std": torch.from_numpy(std)},
        "classifier": {
            "kind": config.classifier,
            "C": best["C"],
            "weight": torch.from_numpy(best["weight"]),
            "bias": torch.from_numpy(best["bias"]),
        },
        "selection": {"criterion": selection, "epoch": int(best["epoch"]), "value": best["value"]},
    }
    dim = int(mean.size)
    n_params = best["weight"].size + best["bias"].size + 2 * dim
    summary = {
        "architecture": str(architecture),
        "params": int(n_params),
        "train_time_s": time.perf_counter() - started,
        "best_epoch": int(best["epoch"]),
        "best_valid_roc_auc": json_float(best["value"]),
        "best_valid_pr_auc": json_float(best["pr_auc"]),
        "epochs_run": len(history),
        "stopped_early": False,
        "device": str(dev),
        "amp": False,
        "selection": selection,
        **budget_summary(
            train, label_fraction=cfg.label_fraction, tag_label_fraction=cfg.tag_label_fraction
        ),
        "frozen_params": int(frozen),
        "note": (
            f"params counts the {config.classifier} classifier and the embedding scaler; the "
            f"frozen {net['architecture']} network ({source} weights) has {frozen} more"
        ),
        "network": net["architecture"],
        "weights": source,
        "classifier": config.classifier,
        "C": best["C"],
        "embedding_dim": dim,
        "embedding_time_s": embedding_time,
    }
    write_outputs(
        out_dir=Path(out_dir),
        checkpoint=checkpoint,
        history=history,
        summary=summary,
        extra_columns=["C"],
    )
    log.info("embedding_svm: %s", summary)
    return summary


def frozen_network(
    config: NetworkSource,
    *,
    cfg: TrainConfig,
    tags: Sequence[str],
    features: FeatureSettings,
    stats: Mapping[str, Any],
    n_bins: int,
    architecture: str = "embedding_svm",
) -> dict[str, Any]:
    """The network as a ``kind="network"`` checkpoint dict (random or loaded).

    Random weights: ``network`` built under ``torch.manual_seed(cfg.seed)`` (the caller's
    random state is left alone), for whole windows or, with ``cfg.crop_frames``, for crops
    (``cfg.eval_chunks`` per window). A trained checkpoint: returned as loaded, after
    checking that it is a window model of the same feature set.

    Parameters
    ----------
    config : NetworkSource
        ``network``, ``network_hparams`` and ``weights`` (e.g. an
        :class:`EmbeddingClassifierConfig`).
    cfg : TrainConfig
    tags : sequence of str
    features : FeatureSettings
    stats : mapping
        Band statistics of the feature set (random weights).
    n_bins : int
        Feature rows of the stored windows.
    architecture : str
        The two-stage architecture, named in error messages (``"embedding_svm"``,
        ``"embedding_lstm"``).
    """
    if config.weights == "random":
        spec = ARCHITECTURES.get(config.network)
        if spec is None:
            raise ConfigError(
                f"{architecture}.network: {config.network!r} is not one of {sorted(ARCHITECTURES)}"
            )
        if spec.module.input_kind != "window":
            raise ConfigError(
                f"{architecture}.network: {config.network!r} takes {spec.module.input_kind!r} "
                "inputs; only window models give per-window embeddings"
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = build_model(
                config.network,
                n_tags=len(tags),
                n_bins=n_bins,
                n_frames=cfg.crop_frames or features.n_frames,
                hparams=config.network_hparams,
            )
        return network_checkpoint(
            architecture=config.network,
            hparams=config.network_hparams,
            train_config={},
            tags=tags,
            features=features.to_dict(),
            stats=stats,
            input_kind="window",
            crop_frames=cfg.crop_frames,
            pool_frames=cfg.pool_frames,
            eval_chunks=cfg.eval_chunks,
            max_windows=cfg.max_windows,
            state_dict=model.state_dict(),
            selection={"criterion": f"random weights, seed {cfg.seed}", "epoch": 0, "value": None},
        )
    checkpoint = load_checkpoint(Path(config.weights))
    where = f"{architecture}.weights {str(config.weights)!r}"
    if checkpoint["kind"] != "network" or checkpoint["input_kind"] != "window":
        raise ConfigError(
            f"{where}: a {checkpoint['kind']!r} checkpoint of input kind "
            f"{checkpoint.get('input_kind')!r}; a window network is needed"
        )
    if checkpoint["features"] != features.to_dict():
        raise PipelineError(
            f"{where} was trained on features {checkpoint['features']!r}, not "
            f"{features.to_dict()!r}"
        )
    if cfg.crop_frames is not None and cfg.crop_frames != checkpoint["crop_frames"]:
        raise ConfigError(
            f"train.crop_frames: {cfg.crop_frames!r} differs from the crops of {where} "
            f"({checkpoint['crop_frames']!r}); leave it null"
        )
    if config.network_hparams or config.network != checkpoint["architecture"]:
        log.warning(
            "%s: network %r and network_hparams %r are ignored: %s is a %r",
            architecture,
            config.network,
            dict(config.network_hparams),
            where,
            checkpoint["architecture"],
        )
    return checkpoint
