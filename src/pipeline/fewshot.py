"""Few-shot "personal tags": how well a trained tagger transfers to a new vocabulary.

A user labels 1, 5, 10 or 20 tracks per tag; how well are held-out tracks then tagged? The
protocol is the episodic one of few-shot learning, adapted to multi-label tags:

1. :func:`sample_support` draws a support set from the labelled pool: for each tag, in a
   random order, ``shots`` tracks that carry it (tracks drawn for earlier tags count toward
   it). A tag is *usable* when it had ``shots`` positives to draw from and the support set
   holds at least one track without it.
2. Each method scores the held-out query tracks for the usable tags, from the support set
   only. Two methods are provided:

   - :func:`prototype_scores` (prototypical networks, Snell et al. 2017, made multi-label):
     frozen, L2-normalised track embeddings; per tag a positive and a negative prototype;
     the tag's probability is the softmax over the negative squared distances to the two.
   - :func:`finetune_scores`: the trained network, its head replaced by a new linear layer
     for the new tags, fine-tuned on the support windows (backbone and head with their own
     learning rates).

3. :func:`run_fewshot` repeats this for every shot count and episode and scores every method
   on the *same* support sets, with macro ROC-AUC and PR-AUC (:mod:`pipeline.metrics`) over
   the tags that are usable and have a positive and a negative among the query tracks;
   :func:`summarise_fewshot` gives mean and spread over episodes.

:func:`prototype_method` and :func:`finetune_method` build the method callables of
:func:`run_fewshot` from track embeddings or from a checkpoint and the feature index, so a
rule script stays a few lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline.errors import ConfigError, PipelineError
from pipeline.features import FeatureSettings
from pipeline.metrics import summary_metrics
from pipeline.tagger import NetworkTagger

__all__ = [
    "FEWSHOT_COLUMNS",
    "SUMMARY_COLUMNS",
    "HEAD_INITS",
    "FinetuneConfig",
    "Method",
    "sample_support",
    "prototype_scores",
    "finetune_scores",
    "run_fewshot",
    "summarise_fewshot",
    "prototype_method",
    "finetune_method",
    "evaluate_fewshot",
    "write_fewshot_table",
]

log = logging.getLogger(__name__)

#: Columns of :func:`run_fewshot`'s table: one row per (method, shots, episode).
FEWSHOT_COLUMNS = [
    "method",
    "shots",
    "episode",
    "n_support",
    "n_tags",
    "roc_auc_macro",
    "pr_auc_macro",
]

#: Columns of :func:`summarise_fewshot`'s table: one row per (method, shots).
SUMMARY_COLUMNS = [
    "method",
    "shots",
    "episodes",
    "n_tags",
    "roc_auc_mean",
    "roc_auc_std",
    "pr_auc_mean",
    "pr_auc_std",
]

#: How :func:`finetune_scores` initialises the new head.
HEAD_INITS = ("prototype", "zero")

#: A few-shot method: ``(support_idx (n_support,), query_idx (n_query,), tags (n_used,))``
#: -> scores, shape (n_query, n_used); indices are rows and columns of the labels.
Method = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

#: Query windows scored per forward block in :func:`finetune_scores`.
_BLOCK_WINDOWS = 64


# --------------------------------------------------------------------------------------------
# Episodes
# --------------------------------------------------------------------------------------------


def sample_support(
    *, labels: np.ndarray, shots: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one multi-label support set.

    Tags are visited in a random order; for each, ``shots`` positives are drawn among the
    tracks that carry it, counting those already drawn for earlier tags (so a tag may end up
    with more than ``shots`` positives, never fewer). The support set is the union.

    Parameters
    ----------
    labels : np.ndarray, shape (n_tracks, n_tags), bool
        Labels of the tracks the support may come from.
    shots : int
        Positives per tag (>= 1).
    rng : np.random.Generator

    Returns
    -------
    support : np.ndarray, shape (n_support,), int64
        Sorted rows of ``labels``.
    usable : np.ndarray, shape (n_tags,), bool
        Tags with at least ``shots`` positives in the support set and at least one negative;
        a tag with fewer than ``shots`` positives in ``labels`` is not drawn and not usable.
    """
    labels = _bool_labels(labels, name="labels")
    _check_int("shots", shots, minimum=1)
    n_tracks, n_tags = labels.shape
    enough = labels.sum(axis=0) >= shots  # (n_tags,)
    chosen = np.zeros(n_tracks, dtype=bool)
    for k in rng.permutation(n_tags):
        if not enough[k]:
            continue
        positives = labels[:, k]
        need = shots - int((chosen & positives).sum())
        if need > 0:
            candidates = np.flatnonzero(positives & ~chosen)
            chosen[rng.choice(candidates, size=need, replace=False)] = True
    support = np.flatnonzero(chosen).astype(np.int64)
    n_positive = labels[support].sum(axis=0)  # (n_tags,)
    usable = enough & (n_positive >= shots) & (n_positive < len(support))
    return support, usable


# --------------------------------------------------------------------------------------------
# Prototypes on frozen embeddings
# --------------------------------------------------------------------------------------------


def prototype_scores(
    *, support: np.ndarray, support_labels: np.ndarray, queries: np.ndarray
) -> np.ndarray:
    """Multi-label prototypical network scores (Snell et al. 2017).

    Embeddings are L2-normalised; tag ``k`` has a positive prototype ``p+`` (mean of the
    support embeddings with the tag) and a negative one ``p-`` (mean of those without); a
    query ``q`` gets ``softmax(-|q - p+|^2, -|q - p-|^2)[0] = sigmoid(|q - p-|^2 - |q - p+|^2)``.

    Parameters
    ----------
    support : np.ndarray, shape (n_support, D)
        Support embeddings.
    support_labels : np.ndarray, shape (n_support, n_tags), bool
    queries : np.ndarray, shape (n_query, D)

    Returns
    -------
    np.ndarray, shape (n_query, n_tags), float64
        Probability of each tag; a column is NaN for a tag without a positive or without a
        negative in the support set.
    """
    support = np.asarray(support, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.float64)
    support_labels = _bool_labels(support_labels, name="support_labels")
    if support.ndim != 2 or queries.ndim != 2 or support.shape[1] != queries.shape[1]:
        raise PipelineError(
            f"support {support.shape} and queries {queries.shape} must be (n, D) embeddings "
            "of the same D"
        )
    if len(support_labels) != len(support):
        raise PipelineError(
            f"support_labels has {len(support_labels)} rows but support has {len(support)}"
        )
    s, q = _l2_normalise(support), _l2_normalise(queries)
    n_pos = support_labels.sum(axis=0)  # (n_tags,)
    n_neg = len(s) - n_pos
    ok = (n_pos > 0) & (n_neg > 0)
    pos = support_labels.T.astype(np.float64)  # (n_tags, n_support)
    proto_pos = (pos @ s) / np.maximum(n_pos, 1)[:, None]  # (n_tags, D)
    proto_neg = ((1.0 - pos) @ s) / np.maximum(n_neg, 1)[:, None]  # (n_tags, D)
    d_pos = _squared_distances(q, proto_pos)  # (n_query, n_tags)
    d_neg = _squared_distances(q, proto_neg)
    scores = 1.0 / (1.0 + np.exp(-(d_neg - d_pos)))
    scores[:, ~ok] = np.nan
    return scores


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a_i - b_j|^2, shape (len(a), len(b)), never negative."""
    d = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.maximum(d, 0.0)


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
        _check_int("finetune.steps", self.steps, minimum=1)
        _check_int("finetune.batch_size", self.batch_size, minimum=1)
        _check_int("finetune.seed", self.seed, minimum=0)
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
        (:func:`pipeline.checkpoint.load_checkpoint`).
    support_windows : np.ndarray, shape (n_support_windows, n_bins, n_frames)
        Stored (raw dB) features of the support tracks' windows.
    support_window_labels : np.ndarray, shape (n_support_windows, n_tags), bool
        The new tags of each window (its track's tags).
    support_valid : np.ndarray, shape (n_support_windows,), int
        Frames of each window holding audio (:func:`pipeline.data.audio_frames`).
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
    y = _bool_labels(support_window_labels, name="support_window_labels")
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
    batches = _batches(len(windows), batch_size=config.batch_size, rng=rng)
    model.train()
    loss = torch.zeros(())
    for _ in range(config.steps):
        idx = next(batches)
        x, v = tagger._prepare(windows[idx], valid[idx])  # (B, n_bins, n_frames), (B,)
        if crop is not None:
            starts = rng.integers(0, np.maximum(v - crop, 0) + 1)  # (B,)
            frames = starts[:, None] + np.arange(crop)[None, :]  # (B, crop)
            x = np.take_along_axis(x, frames[:, None, :], axis=2)  # (B, n_bins, crop)
        logits = model(torch.from_numpy(np.ascontiguousarray(x)).to(tagger.device))
        loss = loss_fn(logits, targets[idx].to(tagger.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    log.debug(
        "fine-tuned %d steps on %d windows; last loss %.4f",
        config.steps,
        len(windows),
        float(loss.detach()),
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


# --------------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------------


def run_fewshot(
    *,
    labels: np.ndarray,
    tags: Sequence[str],
    pool: np.ndarray,
    query: np.ndarray,
    shots: Sequence[int],
    episodes: int,
    seed: int,
    methods: Mapping[str, Method],
) -> pd.DataFrame:
    """Score few-shot methods on the same episodes, for each number of shots.

    Episode ``e`` of ``s`` shots draws its support set from the ``pool`` tracks with
    ``np.random.default_rng([seed, s, e])`` (:func:`sample_support`) and gives every method
    the same support set. A method is called with the tags that are usable in that support
    set *and* have a positive and a negative among the query tracks (an episode without any
    is recorded with ``n_tags`` 0 and NaN metrics, no method is called).

    Parameters
    ----------
    labels : np.ndarray, shape (n_tracks, n_tags), bool
        Labels of all tracks, in the new vocabulary.
    tags : sequence of str, length n_tags
    pool : np.ndarray, shape (n_tracks,), bool
        Tracks the support sets may come from.
    query : np.ndarray, shape (n_tracks,), bool
        Held-out tracks that are scored; disjoint from ``pool``.
    shots : sequence of int
        Positives per tag, e.g. ``[1, 5, 10, 20]``.
    episodes : int
        Support sets drawn per number of shots.
    seed : int
    methods : mapping of str to callable
        ``name -> method(support_idx, query_idx, tag_idx)``: rows of ``labels`` of the
        support and query tracks (int64, sorted) and the columns to score; it returns
        scores of shape (n_query, len(tag_idx)) (probabilities, finite).

    Returns
    -------
    pd.DataFrame
        :data:`FEWSHOT_COLUMNS`, one row per (shots, episode, method): ``n_support``
        (support tracks), ``n_tags`` (tags scored), macro ROC-AUC and PR-AUC over them.
    """
    labels = _bool_labels(labels, name="labels")
    n_tracks, n_tags = labels.shape
    tags = [str(t) for t in tags]
    if len(tags) != n_tags:
        raise PipelineError(f"{n_tags} label columns but {len(tags)} tags: {tags!r}")
    pool = _track_mask(pool, name="pool", n=n_tracks)
    query = _track_mask(query, name="query", n=n_tracks)
    if (pool & query).any():
        raise PipelineError(
            f"pool and query share {int((pool & query).sum())} track(s), e.g. row "
            f"{int(np.flatnonzero(pool & query)[0])}; query tracks must be held out"
        )
    if not query.any():
        raise PipelineError("query selects no track")
    for s in shots:
        _check_int("shots", s, minimum=1)
    _check_int("episodes", episodes, minimum=1)
    _check_int("seed", seed, minimum=0)
    if not methods:
        raise PipelineError("no few-shot method given")

    pool_idx = np.flatnonzero(pool).astype(np.int64)
    query_idx = np.flatnonzero(query).astype(np.int64)
    query_labels = labels[query_idx]  # (n_query, n_tags)
    n_query_pos = query_labels.sum(axis=0)
    evaluable = (n_query_pos > 0) & (n_query_pos < len(query_idx))  # (n_tags,)
    rows = []
    for s in shots:
        for episode in range(episodes):
            rng = np.random.default_rng([seed, int(s), episode])
            local, usable = sample_support(labels=labels[pool_idx], shots=int(s), rng=rng)
            support_idx = pool_idx[local]
            tag_idx = np.flatnonzero(usable & evaluable).astype(np.int64)
            for name, method in methods.items():
                roc = pr = float("nan")
                if len(tag_idx):
                    scores = np.asarray(method(support_idx, query_idx, tag_idx), dtype=np.float64)
                    if scores.shape != (len(query_idx), len(tag_idx)):
                        raise PipelineError(
                            f"method {name!r} returned scores of shape {scores.shape}, not "
                            f"({len(query_idx)}, {len(tag_idx)}) (query tracks, tags)"
                        )
                    summary = summary_metrics(
                        y_true=query_labels[:, tag_idx],
                        y_score=scores,
                        tags=[tags[k] for k in tag_idx],
                    )
                    roc, pr = summary["macro_roc_auc"], summary["macro_pr_auc"]
                rows.append(
                    {
                        "method": str(name),
                        "shots": int(s),
                        "episode": episode,
                        "n_support": len(support_idx),
                        "n_tags": len(tag_idx),
                        "roc_auc_macro": roc,
                        "pr_auc_macro": pr,
                    }
                )
                log.info(
                    "%s, %d shots, episode %d: %d support tracks, %d tags, ROC-AUC %.4f",
                    name,
                    s,
                    episode,
                    len(support_idx),
                    len(tag_idx),
                    roc,
                )
    table = pd.DataFrame(rows, columns=FEWSHOT_COLUMNS)
    return table.astype(
        {"shots": np.int64, "episode": np.int64, "n_support": np.int64, "n_tags": np.int64}
    )


def summarise_fewshot(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over episodes of :func:`run_fewshot`'s table.

    Parameters
    ----------
    table : pd.DataFrame
        With :data:`FEWSHOT_COLUMNS`.

    Returns
    -------
    pd.DataFrame
        :data:`SUMMARY_COLUMNS`, one row per (method, shots), methods in their first order,
        shots ascending: ``episodes`` (episodes with a score), ``n_tags`` (mean tags scored
        in them), means and sample standard deviations (ddof 1, NaN for one episode) of the
        macro ROC-AUC and PR-AUC.
    """
    missing = [c for c in FEWSHOT_COLUMNS if c not in table]
    if missing:
        raise PipelineError(f"the few-shot table lacks column(s) {missing}")
    order = {m: k for k, m in enumerate(pd.unique(table["method"]))}
    rows = []
    for (method, shots), part in table.groupby(["method", "shots"], sort=False):
        scored = part[part["roc_auc_macro"].notna()]
        rows.append(
            {
                "method": method,
                "shots": int(shots),
                "episodes": len(scored),
                "n_tags": float(scored["n_tags"].mean()) if len(scored) else 0.0,
                "roc_auc_mean": float(scored["roc_auc_macro"].mean()),
                "roc_auc_std": float(scored["roc_auc_macro"].std(ddof=1)),
                "pr_auc_mean": float(scored["pr_auc_macro"].mean()),
                "pr_auc_std": float(scored["pr_auc_macro"].std(ddof=1)),
            }
        )
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    if out.empty:
        return out
    rank = out["method"].map(order)
    out = out.assign(_rank=rank).sort_values(["_rank", "shots"], kind="stable")
    return out.drop(columns="_rank").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Method builders
# --------------------------------------------------------------------------------------------


def prototype_method(*, embeddings: np.ndarray, labels: np.ndarray) -> Method:
    """The prototype method on frozen track embeddings, for :func:`run_fewshot`.

    Parameters
    ----------
    embeddings : np.ndarray, shape (n_tracks, D)
        One embedding per track (e.g. a tagger's ``embed_track``), rows aligned with
        ``labels``.
    labels : np.ndarray, shape (n_tracks, n_tags), bool

    Returns
    -------
    callable
        ``(support_idx, query_idx, tag_idx) -> (n_query, len(tag_idx))`` probabilities.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = _bool_labels(labels, name="labels")
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise PipelineError(
            f"embeddings of shape {embeddings.shape} are not (n, D) for {len(labels)} tracks"
        )
    if not np.isfinite(embeddings).all():
        row = int(np.flatnonzero(~np.isfinite(embeddings).all(axis=1))[0])
        raise PipelineError(f"embeddings of track row {row} are not finite")

    def method(support_idx: np.ndarray, query_idx: np.ndarray, tag_idx: np.ndarray) -> np.ndarray:
        return prototype_scores(
            support=embeddings[support_idx],
            support_labels=labels[np.ix_(support_idx, tag_idx)],
            queries=embeddings[query_idx],
        )

    return method


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
    labels = _bool_labels(labels, name="labels")
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
    """Stored windows of feature-index rows (a :class:`pipeline.twostage.common.StoreReader`,
    each store opened once), several tracks at a time."""

    def __init__(self, *, index: pd.DataFrame, features: FeatureSettings) -> None:
        from pipeline.twostage.common import StoreReader

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


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _check_int(key: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        error = ConfigError if key.startswith("finetune.") else PipelineError
        raise error(f"{key}: {value!r} must be an integer >= {minimum}")


def _bool_labels(labels: np.ndarray, *, name: str) -> np.ndarray:
    """A 2-D 0/1 (or bool) array as bool."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise PipelineError(f"{name} of shape {labels.shape} is not (n_tracks, n_tags)")
    if labels.dtype != bool:
        values = np.unique(labels)
        if not np.isin(values, [0, 1]).all():
            raise PipelineError(f"{name} must be 0/1 or bool; it holds {values[:10].tolist()!r}")
        labels = labels.astype(bool)
    return labels


def _track_mask(mask: np.ndarray, *, name: str, n: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (n,) or mask.dtype != bool:
        raise PipelineError(
            f"{name} must be a bool array of shape ({n},); got {mask.dtype} {mask.shape}"
        )
    return mask


# --------------------------------------------------------------------------------------------
# The workflow's few-shot evaluation (rules fewshot_model, fewshot_table)
# --------------------------------------------------------------------------------------------


def evaluate_fewshot(
    *,
    checkpoint: Path,
    index: pd.DataFrame,
    vocabulary: Sequence[str],
    split: str,
    settings: Mapping[str, Any],
    device: str = "cpu",
) -> pd.DataFrame:
    """Few-shot tagging of a dataset's vocabulary with one checkpoint, every method.

    Support tracks come from the train and valid splits of ``index``, queries are its
    ``split`` tracks. Methods: ``"prototypes"`` on the checkpoint's frozen track embeddings
    (:func:`pipeline.predict.embed_tracks`), and ``"finetune"`` when
    ``settings["finetune"]["enabled"]`` and the checkpoint is a window network.

    Parameters
    ----------
    checkpoint : Path
    index : pd.DataFrame
        The target dataset's feature index (of the checkpoint's feature set).
    vocabulary : sequence of str
        The target dataset's tags (the new vocabulary).
    split : str
        The held-out split scored.
    settings : mapping
        The ``fewshot:`` config (``shots``, ``episodes``, ``seed``, ``finetune``).
    device : str

    Returns
    -------
    pd.DataFrame
        :data:`FEWSHOT_COLUMNS`, one row per (method, shots, episode).
    """
    from pipeline.checkpoint import load_checkpoint
    from pipeline.metrics import label_matrix
    from pipeline.predict import embed_tracks, embedding_matrix

    if split in ("train", "valid"):
        raise ConfigError(f"evaluation split {split!r}: few-shot queries must be held out (test)")
    tracks = index[index["stop"] > index["start"]].reset_index(drop=True)
    pool = tracks["split"].isin(["train", "valid"]).to_numpy()
    query = (tracks["split"] == split).to_numpy()
    if not pool.any() or not query.any():
        raise PipelineError(
            f"few-shot needs train/valid tracks and {split!r} tracks; the index has "
            f"{int(pool.sum())} and {int(query.sum())}"
        )
    labels = label_matrix(track_tags=list(tracks["tags"]), vocabulary=list(vocabulary)) > 0
    table = embed_tracks(checkpoint=checkpoint, index=tracks, device=device)
    row_of = {track: i for i, track in enumerate(table["track_id"])}
    embeddings = embedding_matrix(table)[[row_of[str(t)] for t in tracks["track_id"]]]
    methods: dict[str, Method] = {
        "prototypes": prototype_method(embeddings=embeddings, labels=labels)
    }
    finetune = dict(settings.get("finetune", {}))
    if finetune.pop("enabled", True):
        loaded = load_checkpoint(Path(checkpoint))
        if loaded["kind"] == "network" and loaded.get("input_kind") == "window":
            methods["finetune"] = finetune_method(
                checkpoint=loaded,
                index=tracks,
                labels=labels,
                config=FinetuneConfig.from_dict(finetune),
                device=device,
            )
        else:
            log.info("no fine-tuning: %s is not a window network", checkpoint)
    return run_fewshot(
        labels=labels,
        tags=list(vocabulary),
        pool=pool,
        query=query,
        shots=list(settings["shots"]),
        episodes=int(settings["episodes"]),
        seed=int(settings["seed"]),
        methods=methods,
    )


def write_fewshot_table(
    *,
    episodes: Sequence[str | Path],
    out_csv: str | Path,
    out_md: str | Path,
    out_html: str | Path,
    split: str,
) -> pd.DataFrame:
    """Summaries of every model's episode tables (``dataset, model, target`` + columns of
    :func:`run_fewshot`), written as CSV, Markdown and HTML."""
    from pipeline.report import write_table

    keys = ["dataset", "model", "target"]
    parts = []
    for path in episodes:
        table = pd.read_csv(path)
        for values, part in table.groupby(keys, sort=False):
            summary = summarise_fewshot(part.drop(columns=keys))
            for key, value in zip(keys, values, strict=True):
                summary.insert(keys.index(key), key, value)
            parts.append(summary)
    if not parts:
        raise PipelineError("no few-shot episodes to summarise")
    table = pd.concat(parts, ignore_index=True)
    caption = [
        f"Macro ROC-AUC and PR-AUC on the held-out {split} tracks of the target dataset, "
        "against labelled examples per tag (shots); support sets drawn from its train and "
        "valid splits; mean and standard deviation over episodes (random support sets, the "
        "same for every method).",
        "prototypes: a positive and a negative prototype per tag on the model's frozen, "
        "L2-normalised track embeddings; finetune: the checkpoint with a new head, fine-tuned "
        "on the support windows.",
        "n_tags: tags scored per episode (enough support positives, and a positive and a "
        "negative among the queries).",
    ]
    write_table(
        table=table,
        out_csv=out_csv,
        out_md=out_md,
        out_html=out_html,
        title="Few-shot tags",
        caption=caption,
        best_metric="roc_auc_mean",
        best_within=["dataset", "model", "target", "shots"],
        highlight="method",
    )
    return table
