"""The few-shot protocol and its evaluation: support sets, episodes, tables.

Few-shot "personal tags" ask how well a trained tagger transfers to a new vocabulary: a user
labels 1, 5, 10 or 20 tracks per tag; how well are held-out tracks then tagged? This module
holds the protocol (:func:`sample_support`, :func:`run_fewshot`, :func:`summarise_fewshot`)
and the workflow's evaluation of a checkpoint (:func:`evaluate_fewshot`,
:func:`write_fewshot_table`); the methods live in :mod:`pipeline.fewshot.prototypes` and
:mod:`pipeline.fewshot.finetune`. The protocol is the episodic one of few-shot learning,
adapted to multi-label tags:

1. :func:`sample_support` draws a support set from the labelled pool: for each tag, in a
   random order, ``shots`` tracks that carry it (tracks drawn for earlier tags count toward
   it). A tag is *usable* when it had ``shots`` positives to draw from and the support set
   holds at least one track without it.
2. Each method scores the held-out query tracks for the usable tags, from the support set
   only. Two methods are provided:

   - :func:`~pipeline.fewshot.prototypes.prototype_scores` (prototypical networks, Snell et
     al. 2017, made multi-label): frozen, L2-normalised track embeddings; per tag a positive
     and a negative prototype; the tag's probability is the softmax over the negative
     squared distances to the two.
   - :func:`~pipeline.fewshot.finetune.finetune_scores`: the trained network, its head
     replaced by a new linear layer for the new tags, fine-tuned on the support windows
     (backbone and head with their own learning rates).

3. :func:`run_fewshot` repeats this for every shot count and episode and scores every method
   on the *same* support sets, with macro ROC-AUC and PR-AUC
   (:mod:`pipeline.evaluation.metrics`) over the tags that are usable and have a positive
   and a negative among the query tracks; :func:`summarise_fewshot` gives mean and spread
   over episodes.

:func:`~pipeline.fewshot.prototypes.prototype_method` and
:func:`~pipeline.fewshot.finetune.finetune_method` build the method callables of
:func:`run_fewshot` from track embeddings or from a checkpoint and the feature index, so a
rule script stays a few lines.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError, PipelineError, check_int
from pipeline.evaluation.metrics import label_matrix, summary_metrics
from pipeline.evaluation.predict import embed_tracks, embedding_matrix
from pipeline.fewshot.finetune import FinetuneConfig, finetune_method
from pipeline.fewshot.labels import Method, bool_labels, track_mask
from pipeline.fewshot.prototypes import prototype_method
from pipeline.fewshot.table import FEWSHOT_COLUMNS
from pipeline.io.checkpoint import load_checkpoint

__all__ = ["sample_support", "run_fewshot", "evaluate_fewshot"]

log = logging.getLogger(__name__)


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
    labels = bool_labels(labels, name="labels")
    check_int("shots", shots, minimum=1, error=PipelineError)
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
    labels = bool_labels(labels, name="labels")
    n_tracks, n_tags = labels.shape
    tags = [str(t) for t in tags]
    if len(tags) != n_tags:
        raise PipelineError(f"{n_tags} label columns but {len(tags)} tags: {tags!r}")
    pool = track_mask(pool, name="pool", n=n_tracks)
    query = track_mask(query, name="query", n=n_tracks)
    if (pool & query).any():
        raise PipelineError(
            f"pool and query share {int((pool & query).sum())} track(s), e.g. row "
            f"{int(np.flatnonzero(pool & query)[0])}; query tracks must be held out"
        )
    if not query.any():
        raise PipelineError("query selects no track")
    for s in shots:
        check_int("shots", s, minimum=1, error=PipelineError)
    check_int("episodes", episodes, minimum=1, error=PipelineError)
    check_int("seed", seed, minimum=0, error=PipelineError)
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
    (:func:`pipeline.evaluation.predict.embed_tracks`), and ``"finetune"`` when
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
