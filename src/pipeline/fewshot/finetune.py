"""The fine-tuning method of few-shot tagging: a trained window network gets a new linear head
for the new tags and is fine-tuned on the support windows (:func:`finetune_scores`, its steps
run by :func:`pipeline.training.loop.fit`); :func:`finetune_method` reads the windows from the
feature stores and gives the method callable of :func:`pipeline.fewshot.episodes.run_fewshot`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline.errors import ConfigError, PipelineError, check_int
from pipeline.features.settings import FeatureSettings
from pipeline.fewshot.labels import Method, bool_labels
from pipeline.inference.network import NetworkTagger
from pipeline.training.loop import fit
from pipeline.training.two_stage import StoreReader

__all__ = ["HEAD_INITS", "FinetuneConfig", "finetune_scores", "finetune_method"]

log = logging.getLogger(__name__)

#: How :func:`finetune_scores` initialises the new head.
HEAD_INITS = ("prototype", "zero")

#: Query windows scored per forward block in :func:`finetune_scores`.
_BLOCK_WINDOWS = 64


# --------------------------------------------------------------------------------------------
# Fine-tuning the trained network
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """Settings of :func:`finetune_scores`.

    Parameters
    ----------
    steps : int
        Optimizer steps.
    batch_size : int
        Support windows (or crops) per step; the support windows are cycled in shuffled
        passes, so every window is seen equally often.
    lr_backbone : float
        Adam learning rate of everything but the head (0 freezes the weights, though batch
        norm statistics still adapt in training mode).
    lr_head : float
        Adam learning rate of the new head.
    weight_decay : float
        Adam weight decay of both groups.
    seed : int
        Seeds batch order, crops and dropout.
    head_init : {"prototype", "zero"}
        ``"prototype"``: the head starts as the prototype classifier of the backbone's
        embeddings (Triantafillou et al. 2020), scaled to unit logit spread on the support;
        ``"zero"``: zero weights and bias (every score 0.5 before training).
    """

    steps: int = 60
    batch_size: int = 16
    lr_backbone: float = 1e-4
    lr_head: float = 1e-2
    weight_decay: float = 1e-4
    seed: int = 0
    head_init: str = "prototype"

    def __post_init__(self) -> None:
        check_int("finetune.steps", self.steps, minimum=1)
        check_int("finetune.batch_size", self.batch_size, minimum=1)
        check_int("finetune.seed", self.seed, minimum=0)
        for key in ("lr_backbone", "lr_head", "weight_decay"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"finetune.{key}: {value!r} must be a number >= 0")
        if not self.lr_head > 0:
            raise ConfigError(f"finetune.lr_head: {self.lr_head!r} must be > 0")
        if self.head_init not in HEAD_INITS:
            raise ConfigError(
                f"finetune.head_init: {self.head_init!r} is not one of {list(HEAD_INITS)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain settings."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> FinetuneConfig:
        """Build from a config entry; unknown keys are a ConfigError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"finetune: unknown key(s) {unknown}; allowed: {sorted(known)}")
        return cls(**settings)


def finetune_scores(
    *,
    checkpoint: Mapping[str, Any],
    support_windows: np.ndarray,
    support_window_labels: np.ndarray,
    support_valid: np.ndarray,
    query_windows: np.ndarray,
    query_valid: np.ndarray,
    query_track: np.ndarray,
    config: FinetuneConfig,
    device: str = "cpu",
) -> np.ndarray:
    """Fine-tune a trained window network on a new vocabulary; song scores of query tracks.

    The network is rebuilt and its inputs normalised exactly as :class:`NetworkTagger` does;
    its ``classifier`` is replaced by ``Linear(embedding_dim, n_tags)`` (see
    :attr:`FinetuneConfig.head_init`); backbone and head are trained with Adam at their own
    learning rates on ``BCEWithLogitsLoss``, in training mode, on random crops of the
    support windows for crop models (whole windows otherwise). Query windows are scored in
    eval mode as the tagger scores them (crop models: the mean probability of
    ``eval_chunks`` evenly spaced crops), and a track's score is the mean of its windows'
    probabilities. The caller's checkpoint is not modified.

    Parameters
    ----------
    checkpoint : mapping
        A ``kind="network"`` checkpoint of a ``"window"`` model
        (:func:`pipeline.io.checkpoint.load_checkpoint`).
    support_windows : np.ndarray, shape (n_support_windows, n_bins, n_frames)
        Stored (raw dB) features of the support tracks' windows.
    support_window_labels : np.ndarray, shape (n_support_windows, n_tags), bool
        The new tags of each window (its track's tags).
    support_valid : np.ndarray, shape (n_support_windows,), int
        Frames of each window holding audio (:func:`pipeline.features.windows.audio_frames`).
    query_windows : np.ndarray, shape (n_query_windows, n_bins, n_frames)
    query_valid : np.ndarray, shape (n_query_windows,), int
    query_track : np.ndarray, shape (n_query_windows,), int
        The query track (``0 .. n_query_tracks - 1``) of each window; every track needs a
        window.
    config : FinetuneConfig
    device : str
        Torch device.

    Returns
    -------
    np.ndarray, shape (n_query_tracks, n_tags), float64
        Song probabilities of the new tags.

    Raises
    ------
    PipelineError
        Not a window network checkpoint, or inconsistent shapes.
    """
    _check_window_checkpoint(checkpoint)
    y = bool_labels(support_window_labels, name="support_window_labels")
    n_support, n_tags = y.shape
    support_valid = np.asarray(support_valid, dtype=np.int64)
    query_valid = np.asarray(query_valid, dtype=np.int64)
    query_track = np.asarray(query_track, dtype=np.int64)
    if len(support_windows) != n_support or support_valid.shape != (n_support,):
        raise PipelineError(
            f"{len(support_windows)} support windows, {len(y)} label rows and "
            f"{support_valid.shape} valid frames must agree"
        )
    if n_support == 0:
        raise PipelineError("no support windows to fine-tune on")
    n_query = len(query_windows)
    if query_valid.shape != (n_query,) or query_track.shape != (n_query,):
        raise PipelineError(
            f"{n_query} query windows, valid frames {query_valid.shape} and query_track "
            f"{query_track.shape} must agree"
        )
    if n_query == 0 or query_track.min() < 0:
        raise PipelineError(f"query_track must hold track numbers >= 0; got {query_track[:10]}")
    n_tracks = int(query_track.max()) + 1
    counts = np.bincount(query_track, minlength=n_tracks)  # (n_tracks,)
    if (counts == 0).any():
        raise PipelineError(
            f"query track {int(np.flatnonzero(counts == 0)[0])} has no window in query_track"
        )

    tagger = NetworkTagger(checkpoint, device=device)  # a fresh model: ours to change
    model = tagger.model
    with torch.random.fork_rng(devices=[]):  # seeded dropout; the caller's CPU RNG is kept
        torch.manual_seed(config.seed)
        head = _new_head(tagger, support_windows, support_valid, y, init=config.head_init)
        model.classifier = head.to(tagger.device)
        _train(tagger, support_windows, support_valid, y, config=config)

    model.eval()
    sums = np.zeros((n_tracks, n_tags), dtype=np.float64)
    for lo in range(0, n_query, _BLOCK_WINDOWS):
        hi = min(lo + _BLOCK_WINDOWS, n_query)
        logits = tagger.predict_windows(query_windows[lo:hi], valid_frames=query_valid[lo:hi])
        probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))  # (block, n_tags)
        np.add.at(sums, query_track[lo:hi], probs)
    return sums / counts[:, None]


def _check_window_checkpoint(checkpoint: Mapping[str, Any]) -> None:
    kind = checkpoint.get("kind")
    if kind != "network":
        raise PipelineError(f"fine-tuning needs a network checkpoint; this one is {kind!r}")
    if checkpoint.get("input_kind") != "window":
        raise PipelineError(
            f"fine-tuning needs a window model; {checkpoint.get('architecture')} reads sequences"
        )


def _new_head(
    tagger: NetworkTagger,
    windows: np.ndarray,
    valid: np.ndarray,
    labels: np.ndarray,
    *,
    init: str,
) -> nn.Linear:
    """The new ``Linear(embedding_dim, n_tags)`` head.

    ``"prototype"``: with ``p+``/``p-`` the mean support embeddings with/without tag ``k``,
    ``logit_k(z) = s_k (|z - p-|^2 - |z - p+|^2) = s_k (2 (p+ - p-) . z + |p-|^2 - |p+|^2)``,
    where ``s_k`` makes the logits' standard deviation over the support windows 1. Tags
    without a positive or a negative window get zero weights.
    """
    n_tags = labels.shape[1]
    head = nn.Linear(int(tagger.model.embedding_dim), n_tags)
    weight = np.zeros((n_tags, head.in_features), dtype=np.float64)
    bias = np.zeros(n_tags, dtype=np.float64)
    if init == "prototype":
        tagger.model.eval()
        z = np.concatenate(
            [
                tagger.embed_windows(
                    windows[i : i + _BLOCK_WINDOWS], valid_frames=valid[i : i + _BLOCK_WINDOWS]
                )
                for i in range(0, len(windows), _BLOCK_WINDOWS)
            ]
        ).astype(np.float64)  # (n_windows, D)
        for k in range(n_tags):
            pos = labels[:, k]
            if pos.all() or not pos.any():
                continue
            p_pos, p_neg = z[pos].mean(axis=0), z[~pos].mean(axis=0)
            w = 2.0 * (p_pos - p_neg)
            b = float(p_neg @ p_neg - p_pos @ p_pos)
            spread = float(np.std(z @ w + b))
            if spread > 1e-8:
                weight[k], bias[k] = w / spread, b / spread
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight))
        head.bias.copy_(torch.from_numpy(bias))
    return head


def _train(
    tagger: NetworkTagger,
    windows: np.ndarray,
    valid: np.ndarray,
    labels: np.ndarray,
    *,
    config: FinetuneConfig,
) -> None:
    """``config.steps`` Adam steps on (crops of) the support windows, in training mode."""
    model = tagger.model
    head_params = list(model.classifier.parameters())
    head_ids = {id(p) for p in head_params}
    backbone_params = [p for p in model.parameters() if id(p) not in head_ids]
    optimizer = torch.optim.Adam(
        [
            {"params": backbone_params, "lr": config.lr_backbone},
            {"params": head_params, "lr": config.lr_head},
        ],
        weight_decay=config.weight_decay,
    )
    loss_fn = nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(config.seed)
    crop = tagger.crop_frames
    if crop is not None and crop >= tagger.n_frames:
        crop = None
    targets = torch.from_numpy(labels.astype(np.float32))

    def batch_loss(idx: np.ndarray) -> tuple[torch.Tensor, float]:
        x, v = tagger._prepare(windows[idx], valid[idx])  # (B, n_bins, n_frames), (B,)
        if crop is not None:
            starts = rng.integers(0, np.maximum(v - crop, 0) + 1)  # (B,)
            frames = starts[:, None] + np.arange(crop)[None, :]  # (B, crop)
            x = np.take_along_axis(x, frames[:, None, :], axis=2)  # (B, n_bins, crop)
        logits = model(torch.from_numpy(np.ascontiguousarray(x)).to(tagger.device))
        return loss_fn(logits, targets[idx].to(tagger.device)), float(len(idx))

    # One "epoch" of config.steps batches, no validation: the last weights are the result.
    batches = _batches(len(windows), batch_size=config.batch_size, rng=rng)
    state = fit(
        model=model,
        optimizer=optimizer,
        epochs=1,
        batches=lambda epoch: itertools.islice(batches, config.steps),
        batch_loss=batch_loss,
        name="fine-tuning",
    )
    log.debug(
        "fine-tuned %d steps on %d windows; mean loss %.4f",
        config.steps,
        len(windows),
        state.history[-1]["train_loss"],
    )
    model.eval()


def _batches(n: int, *, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless batches of ``batch_size`` indices from shuffled passes over ``range(n)``."""
    queue = np.zeros(0, dtype=np.int64)
    while True:
        while len(queue) < batch_size:
            queue = np.concatenate([queue, rng.permutation(n)])
        yield queue[:batch_size]
        queue = queue[batch_size:]


def finetune_method(
    *,
    checkpoint: Mapping[str, Any],
    index: pd.DataFrame,
    labels: np.ndarray,
    config: FinetuneConfig,
    device: str = "cpu",
) -> Method:
    """The fine-tuning method, reading windows from the feature stores, for :func:`run_fewshot`.

    Parameters
    ----------
    checkpoint : mapping
        A ``kind="network"`` checkpoint of a ``"window"`` model.
    index : pd.DataFrame
        Rows of the feature index (``track_id, store, start, stop, duration_s``), row ``i``
        being track ``i`` of ``labels``; the stores must hold the checkpoint's features.
    labels : np.ndarray, shape (n_tracks, n_tags), bool
    config : FinetuneConfig
    device : str

    Returns
    -------
    callable
        ``(support_idx, query_idx, tag_idx) -> (n_query, len(tag_idx))`` probabilities.
        Stores are opened once; the last query set's windows are kept in memory, since
        every episode scores the same query tracks.
    """
    _check_window_checkpoint(checkpoint)
    labels = bool_labels(labels, name="labels")
    reader = _TrackWindows(index=index, features=FeatureSettings.from_dict(checkpoint["features"]))
    if len(reader.index) != len(labels):
        raise PipelineError(f"the index has {len(reader.index)} rows but labels {len(labels)}")
    cache: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def method(support_idx: np.ndarray, query_idx: np.ndarray, tag_idx: np.ndarray) -> np.ndarray:
        key = np.asarray(query_idx, dtype=np.int64).tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = reader.read(query_idx)
        q_windows, q_valid, q_track = cache[key]
        s_windows, s_valid, s_track = reader.read(support_idx)
        s_labels = labels[np.ix_(np.asarray(support_idx), np.asarray(tag_idx))][s_track]
        return finetune_scores(
            checkpoint=checkpoint,
            support_windows=s_windows,
            support_window_labels=s_labels,
            support_valid=s_valid,
            query_windows=q_windows,
            query_valid=q_valid,
            query_track=q_track,
            config=config,
            device=device,
        )

    return method


class _TrackWindows:
    """Stored windows of feature-index rows (a :class:`pipeline.training.two_stage.StoreReader`,
    each store opened once), several tracks at a time."""

    def __init__(self, *, index: pd.DataFrame, features: FeatureSettings) -> None:

        missing = sorted({"track_id", "store", "start", "stop", "duration_s"} - set(index))
        if missing:
            raise PipelineError(f"the feature index lacks column(s) {missing}")
        self.index = index.reset_index(drop=True)
        self.reader = StoreReader(features=features)

    def read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Windows of index rows, in order.

        Returns
        -------
        windows : np.ndarray, shape (n_windows, n_bins, n_frames), float16
        valid : np.ndarray, shape (n_windows,), int64
            Frames holding audio.
        track : np.ndarray, shape (n_windows,), int64
            Position in ``rows`` of each window's track.
        """
        windows, valid, track = [], [], []
        selected = self.index.iloc[np.asarray(rows, dtype=np.int64)]
        for k, row in enumerate(selected.itertuples(index=False)):
            if row.stop <= row.start:
                raise PipelineError(f"track {row.track_id!r} has no stored window")
            w, v = self.reader.track(row)
            windows.append(np.asarray(w))
            valid.append(v)
            track.append(np.full(len(v), k, dtype=np.int64))
        return np.concatenate(windows), np.concatenate(valid), np.concatenate(track)
