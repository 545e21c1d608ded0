"""Similar-track retrieval: evaluation with tag overlap as ground truth, and metric learning.

**Evaluation.** Two tracks are as similar as their tag sets overlap: the graded relevance of
a candidate to a query is the Jaccard index ``|A & B| / |A | B|`` of their tags (0 when both
are empty), and a candidate is *relevant* when that index reaches ``relevance_threshold``.
:func:`retrieval_metrics` runs leave-one-out retrieval inside one set of tracks (each track
queries all the others, ranked by cosine similarity of their embeddings; ties go to the lower
track index) and reports MAP@k, recall@k, MRR and nDCG@k. :func:`chance_metrics` gives the
same numbers for random rankings, the baseline row of a table.

**Metric learning.** :func:`train_projection` learns a small projection (an MLP or a linear
map, L2-normalised outputs) of fixed embeddings with a triplet loss on the tag-similarity
ranking, as in tag-based metric learning for music similarity (Lee et al. 2020, Won et al.
2020): for an anchor ``a``, a positive ``p`` and a negative ``n`` with
``Jaccard(a, p) > Jaccard(a, n)``, the loss is ``max(0, margin + d(a, p) - d(a, n))`` with
the cosine distance ``d = 1 - cos``. The epoch is chosen on the valid split's MAP@k.
A projection is a plain dict (tensors, lists, dicts and scalars) that
``torch.load(weights_only=True)`` reads: :func:`save_projection`, :func:`load_projection`,
:func:`project`.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline.checkpoint import check_plain, save_torch
from pipeline.errors import ConfigError, PipelineError

__all__ = [
    "METRIC_KEYS",
    "HISTORY_COLUMNS",
    "PROJECTION_KIND",
    "PROJECTION_KEYS",
    "tag_relevance",
    "cosine_similarity",
    "nearest",
    "retrieval_metrics",
    "chance_metrics",
    "TripletConfig",
    "train_projection",
    "project",
    "save_projection",
    "load_projection",
]

log = logging.getLogger(__name__)

#: The retrieval metrics of :func:`retrieval_metrics` and :func:`chance_metrics`.
METRIC_KEYS = ("map_at_k", "recall_at_k", "mrr", "ndcg_at_k")

#: Columns of the history of :func:`train_projection`.
HISTORY_COLUMNS = ["epoch", "loss", "valid_map_at_k", "n_triplets"]

#: ``kind`` of a projection dict.
PROJECTION_KIND = "triplet_projection"

#: Keys of a projection dict.
PROJECTION_KEYS = ("kind", "config", "input_dim", "mean", "std", "state_dict", "selection")

#: Queries per block: one block holds a few (block, n_tracks) arrays (scores, overlaps, masks),
#: about 1 GB at 30k tracks.
_QUERY_BLOCK = 1024

#: Candidate (positive, negative) pairs drawn per triplet kept when mining.
_OVERSAMPLE = 4


# ---------------------------------------------------------------------------------------------
# Relevance and similarity
# ---------------------------------------------------------------------------------------------


def tag_relevance(
    *, query_tags: Sequence[Sequence[str]], candidate_tags: Sequence[Sequence[str]]
) -> np.ndarray:
    """Jaccard overlap of the tag sets of queries and candidates.

    Parameters
    ----------
    query_tags : sequence of sequences of str, length n_q
        Each query track's tags (duplicates count once).
    candidate_tags : sequence of sequences of str, length n_c

    Returns
    -------
    np.ndarray, shape (n_q, n_c), float64
        ``|A & B| / |A | B|``; 0 where both tag sets are empty.
    """
    query_sets = _tag_sets(query_tags, name="query_tags")
    candidate_sets = _tag_sets(candidate_tags, name="candidate_tags")
    vocabulary = sorted(set().union(*query_sets, *candidate_sets))
    queries = _multi_hot(query_sets, vocabulary=vocabulary)
    candidates = _multi_hot(candidate_sets, vocabulary=vocabulary)
    return _jaccard(queries, candidates)


def cosine_similarity(*, queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Cosine similarity of every query to every candidate.

    Parameters
    ----------
    queries : np.ndarray, shape (m, D)
    candidates : np.ndarray, shape (n, D)
        Finite values. A zero row has similarity 0 to everything (never NaN).

    Returns
    -------
    np.ndarray, shape (m, n), float32
    """
    queries = _check_matrix(queries, name="queries")
    candidates = _check_matrix(candidates, name="candidates")
    if queries.shape[1] != candidates.shape[1]:
        raise PipelineError(
            f"queries have {queries.shape[1]} dimensions but candidates {candidates.shape[1]}"
        )
    return _unit_rows(queries) @ _unit_rows(candidates).T


def nearest(
    *, index: np.ndarray, queries: np.ndarray, k: int, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest index rows of each query by cosine similarity, best first.

    Ties go to the lower index row. Queries are processed in blocks of 1024, so memory stays
    bounded for large sets.

    Parameters
    ----------
    index : np.ndarray, shape (n, D)
    queries : np.ndarray, shape (m, D)
    k : int
        Neighbours wanted (>= 1); fewer come back when the index is smaller.
    exclude_self : bool
        The queries are the index itself, in the same order (m == n): a row is never its own
        neighbour.

    Returns
    -------
    indices : np.ndarray, shape (m, k'), int64
        Index rows, ``k' = min(k, n - exclude_self)``.
    similarities : np.ndarray, shape (m, k'), float32
        Their cosine similarities, non-increasing along each row.
    """
    index = _check_matrix(index, name="index")
    queries = _check_matrix(queries, name="queries")
    _check_k(k)
    n, m = len(index), len(queries)
    if queries.shape[1] != index.shape[1]:
        raise PipelineError(
            f"queries have {queries.shape[1]} dimensions but the index {index.shape[1]}"
        )
    if exclude_self and m != n:
        raise PipelineError(
            f"exclude_self=True needs the queries to be the index itself, but there are {m} "
            f"queries and {n} index rows"
        )
    kk = min(k, n - int(exclude_self))
    indices = np.zeros((m, max(kk, 0)), dtype=np.int64)
    similarities = np.zeros((m, max(kk, 0)), dtype=np.float32)
    if kk <= 0 or m == 0:
        return indices, similarities
    unit_index = _unit_rows(index)
    for start in range(0, m, _QUERY_BLOCK):
        stop = min(start + _QUERY_BLOCK, m)
        scores = _unit_rows(queries[start:stop]) @ unit_index.T  # (b, n)
        if exclude_self:
            _mask_self(scores, start=start, value=-np.inf)
        top = _top_k(scores, kk)
        indices[start:stop] = top
        similarities[start:stop] = np.take_along_axis(scores, top, axis=1)
    return indices, similarities


# ---------------------------------------------------------------------------------------------
# Retrieval metrics
# ---------------------------------------------------------------------------------------------


def retrieval_metrics(
    *,
    embeddings: np.ndarray,
    tags: Sequence[Sequence[str]],
    k: int = 20,
    relevance_threshold: float = 0.5,
) -> dict[str, float]:
    """Leave-one-out retrieval quality of embeddings, with tag overlap as ground truth.

    Every track is a query; the other ``n - 1`` tracks are ranked by cosine similarity
    (ties: lower track index first). Graded relevance is the Jaccard overlap of tag sets;
    a candidate is relevant when it is ``>= relevance_threshold``. With ``rel_i`` (0/1) and
    ``gain_i`` (Jaccard) of the candidate at rank ``i`` and ``R`` relevant candidates:

    - ``map_at_k``: mean of ``AP@k = sum_{i<=k} P@i * rel_i / min(k, R)``;
    - ``recall_at_k``: mean of (relevant in the top k) / R;
    - ``mrr``: mean of 1 / (rank of the first relevant candidate), over the full ranking;
    - ``ndcg_at_k``: mean of ``DCG@k / IDCG@k`` with ``DCG@k = sum_{i<=k} gain_i / log2(i+1)``
      and IDCG@k the DCG of the best possible ordering of all candidates' gains.

    The first three average over the queries with at least one relevant candidate
    (``n_queries``), nDCG over the queries with any positive gain (``n_queries_ndcg``).
    Queries are processed in blocks of 1024, so memory grows with ``1024 * n``, not
    ``n ** 2``: 30k tracks peak at about 1.3 GB (process included) and take ~40 s on one core;
    time grows with ``n ** 2``.

    Parameters
    ----------
    embeddings : np.ndarray, shape (n, D)
        Finite; a zero row has similarity 0 to everything.
    tags : sequence of sequences of str, length n
        Each track's tags.
    k : int
        Cut-off of MAP, recall and nDCG (>= 1; larger than ``n - 1`` means all).
    relevance_threshold : float
        In (0, 1].

    Returns
    -------
    dict
        ``map_at_k``, ``recall_at_k``, ``mrr``, ``ndcg_at_k`` (float; NaN when no query
        qualifies), ``n_queries``, ``n_queries_ndcg``, ``n_tracks`` (int), ``k`` (int) and
        ``relevance_threshold`` (float).

    Raises
    ------
    PipelineError
        ``embeddings`` is not 2-D and finite, its length differs from ``tags``, there are
        fewer than 2 tracks, ``k < 1`` or the threshold is outside (0, 1].
    """
    embeddings, multi_hot = _check_retrieval(
        embeddings=embeddings, tags=tags, k=k, relevance_threshold=relevance_threshold
    )
    unit = _unit_rows(embeddings)
    total = _Totals()
    for start, stop, gains, relevant in _relevance_blocks(multi_hot, relevance_threshold):
        scores = unit[start:stop] @ unit.T  # (b, n)
        _mask_self(scores, start=start, value=-np.inf)
        total.add(_query_metrics(scores=scores, gains=gains, relevant=relevant, k=k))
    return total.result(n_tracks=len(unit), k=k, relevance_threshold=relevance_threshold)


def chance_metrics(
    *,
    tags: Sequence[Sequence[str]],
    k: int = 20,
    relevance_threshold: float = 0.5,
    seed: int = 0,
    repeats: int = 10,
) -> dict[str, float]:
    """The metrics of :func:`retrieval_metrics` for random rankings (a baseline row).

    Each query ranks the other tracks in a uniformly random order (what random embeddings
    give); the metrics are averaged over ``repeats`` such draws. The tag overlaps of a block
    of queries are computed once for all repeats (blocks of 1024 queries, as in
    :func:`retrieval_metrics`).

    Parameters
    ----------
    tags : sequence of sequences of str, length n
    k : int
    relevance_threshold : float
        As in :func:`retrieval_metrics`.
    seed : int
        Seeds the random rankings (same seed, same result).
    repeats : int
        Random rankings per query (>= 1).

    Returns
    -------
    dict
        The keys of :func:`retrieval_metrics` (metrics are means over the repeats), plus
        ``repeats``.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise PipelineError(f"repeats: {repeats!r} must be an integer >= 1")
    n = len(tags) if hasattr(tags, "__len__") else 0
    _, multi_hot = _check_retrieval(
        embeddings=np.zeros((n, 1), dtype=np.float32),
        tags=tags,
        k=k,
        relevance_threshold=relevance_threshold,
    )
    rng = np.random.default_rng(seed)
    totals = [_Totals() for _ in range(repeats)]
    for start, _stop, gains, relevant in _relevance_blocks(multi_hot, relevance_threshold):
        for total in totals:
            scores = rng.random(gains.shape, dtype=np.float32)  # (b, n)
            _mask_self(scores, start=start, value=-np.inf)
            total.add(_query_metrics(scores=scores, gains=gains, relevant=relevant, k=k))
    results = [t.result(n_tracks=n, k=k, relevance_threshold=relevance_threshold) for t in totals]
    out = dict(results[0])
    for key in METRIC_KEYS:
        out[key] = float(np.mean([r[key] for r in results]))
    out["repeats"] = repeats
    return out


class _Totals:
    """Sums of per-query metrics over blocks."""

    def __init__(self) -> None:
        self.sums = dict.fromkeys(METRIC_KEYS, 0.0)
        self.n_queries = 0
        self.n_queries_ndcg = 0

    def add(self, block: dict[str, np.ndarray]) -> None:
        used, graded = block["used"], block["graded"]
        for key in ("map_at_k", "recall_at_k", "mrr"):
            self.sums[key] += float(block[key][used].sum())
        self.sums["ndcg_at_k"] += float(block["ndcg_at_k"][graded].sum())
        self.n_queries += int(used.sum())
        self.n_queries_ndcg += int(graded.sum())

    def result(self, *, n_tracks: int, k: int, relevance_threshold: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for key in ("map_at_k", "recall_at_k", "mrr"):
            out[key] = self.sums[key] / self.n_queries if self.n_queries else float("nan")
        out["ndcg_at_k"] = (
            self.sums["ndcg_at_k"] / self.n_queries_ndcg if self.n_queries_ndcg else float("nan")
        )
        out["n_queries"] = self.n_queries
        out["n_queries_ndcg"] = self.n_queries_ndcg
        out["n_tracks"] = n_tracks
        out["k"] = k
        out["relevance_threshold"] = float(relevance_threshold)
        return out


def _relevance_blocks(
    multi_hot: np.ndarray, threshold: float
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Blocks of queries: ``(start, stop, gains (b, n) float64, relevant (b, n) bool)``.

    A query's own column has gain 0 and is never relevant.
    """
    n = len(multi_hot)
    for start in range(0, n, _QUERY_BLOCK):
        stop = min(start + _QUERY_BLOCK, n)
        gains = _jaccard(multi_hot[start:stop], multi_hot)
        _mask_self(gains, start=start, value=0.0)
        relevant = (gains >= threshold) & (gains > 0)
        yield start, stop, gains, relevant


def _query_metrics(
    *, scores: np.ndarray, gains: np.ndarray, relevant: np.ndarray, k: int
) -> dict[str, np.ndarray]:
    """Per-query metrics of one block.

    Parameters
    ----------
    scores : np.ndarray, shape (b, n)
        Similarities; the query's own column is -inf (ranked last, never in the top k).
    gains : np.ndarray, shape (b, n)
        Jaccard overlaps (own column 0).
    relevant : np.ndarray, shape (b, n), bool
    k : int

    Returns
    -------
    dict of np.ndarray, shape (b,)
        ``map_at_k``, ``recall_at_k``, ``mrr``, ``ndcg_at_k``, and the masks ``used`` (has a
        relevant candidate) and ``graded`` (has a positive gain).
    """
    n = scores.shape[1]
    kk = min(k, n - 1)
    top = _top_k(scores, kk)  # (b, kk)
    n_relevant = relevant.sum(axis=1)
    used = n_relevant > 0
    hits_top = np.take_along_axis(relevant, top, axis=1)  # (b, kk)
    hits = np.cumsum(hits_top, axis=1)
    precision = hits / np.arange(1, kk + 1)
    average_precision = (precision * hits_top).sum(axis=1) / np.maximum(
        np.minimum(k, n_relevant), 1
    )
    recall = hits[:, -1] / np.maximum(n_relevant, 1)

    # Rank of the first relevant candidate in the full ranking, without sorting: the best
    # relevant score, the lowest relevant column holding it, then count who comes first.
    best = np.where(relevant, scores, -np.inf).max(axis=1, initial=-np.inf)[:, None]
    at_best = relevant & (scores == best)
    first = np.argmax(at_best, axis=1)[:, None]
    ahead = (scores > best).sum(axis=1) + ((scores == best) & (np.arange(n)[None, :] < first)).sum(
        axis=1
    )
    reciprocal_rank = 1.0 / (ahead + 1)

    discount = 1.0 / np.log2(np.arange(2, kk + 2))  # (kk,)
    dcg = (np.take_along_axis(gains, top, axis=1) * discount).sum(axis=1)
    ideal = -np.sort(-np.partition(gains, n - kk, axis=1)[:, n - kk :], axis=1)  # (b, kk)
    idcg = (ideal * discount).sum(axis=1)
    graded = idcg > 0
    ndcg = np.divide(dcg, idcg, out=np.zeros_like(dcg), where=graded)
    return {
        "map_at_k": average_precision,
        "recall_at_k": recall,
        "mrr": reciprocal_rank,
        "ndcg_at_k": ndcg,
        "used": used,
        "graded": graded,
    }


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Columns of the k largest scores of each row, best first, ties to the lower column.

    Linear time per row (a partition, then a sort of k values only).

    Parameters
    ----------
    scores : np.ndarray, shape (b, n)
        No NaN.
    k : int
        1 <= k <= n.

    Returns
    -------
    np.ndarray, shape (b, k), int64
    """
    b, n = scores.shape
    if k >= n:
        return np.argsort(-scores, axis=1, kind="stable").astype(np.int64)
    kth = np.partition(scores, n - k, axis=1)[:, n - k][:, None]  # k-th largest, (b, 1)
    take = scores > kth
    tied = scores == kth
    need = k - take.sum(axis=1)  # >= 1: the k-th value itself is tied
    ambiguous = np.flatnonzero(tied.sum(axis=1) > need)
    if len(ambiguous):
        keep = np.cumsum(tied[ambiguous], axis=1, dtype=np.int32) <= need[ambiguous, None]
        tied[ambiguous] &= keep
    take |= tied
    columns = np.nonzero(take)[1].reshape(b, k)  # ascending column order in each row
    order = np.argsort(-np.take_along_axis(scores, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1).astype(np.int64)


def _mask_self(block: np.ndarray, *, start: int, value: float) -> None:
    """Set the own column of queries ``start .. start + b - 1`` (the diagonal) to ``value``."""
    rows = np.arange(block.shape[0])
    block[rows, start + rows] = value


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0).astype(np.float32)


def _jaccard(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Jaccard index of multi-hot rows: (b, V) x (n, V) -> (b, n) float64."""
    queries = queries.astype(np.float32, copy=False)
    candidates = candidates.astype(np.float32, copy=False)
    intersection = queries @ candidates.T  # (b, n), exact: counts < 2**24
    union = queries.sum(axis=1)[:, None] + candidates.sum(axis=1)[None, :] - intersection
    out = np.zeros(intersection.shape, dtype=np.float64)
    np.divide(intersection, union, out=out, where=union > 0, dtype=np.float64)
    return out


def _tag_sets(tags: Sequence[Sequence[str]], *, name: str) -> list[set[str]]:
    """Each track's tags as a set; a bare string or a non-sequence is an error."""
    if isinstance(tags, str | bytes) or not hasattr(tags, "__len__"):
        raise PipelineError(f"{name} must be a sequence of tag lists, got {tags!r:.80}")
    out = []
    for i, track in enumerate(tags):
        if isinstance(track, str | bytes) or not hasattr(track, "__iter__"):
            raise PipelineError(
                f"{name}[{i}] must be a list of tags, got {type(track).__name__} {track!r:.80}"
            )
        out.append({str(tag) for tag in track})
    return out


def _multi_hot(tag_sets: Sequence[set[str]], *, vocabulary: Sequence[str]) -> np.ndarray:
    """(n_tracks, n_tags) bool matrix of tag sets over a vocabulary that holds them all."""
    column = {tag: j for j, tag in enumerate(vocabulary)}
    out = np.zeros((len(tag_sets), len(column)), dtype=bool)
    for i, tags in enumerate(tag_sets):
        out[i, [column[tag] for tag in tags]] = True
    return out


def _tags_multi_hot(tags: Sequence[Sequence[str]], *, name: str) -> np.ndarray:
    sets = _tag_sets(tags, name=name)
    return _multi_hot(sets, vocabulary=sorted(set().union(*sets)))


def _check_matrix(x: Any, *, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise PipelineError(f"{name} must be a 2-D (n, D) array, got shape {x.shape}")
    if x.dtype == bool:
        x = x.astype(np.float32)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise PipelineError(f"{name} must hold real numbers, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        raise PipelineError(f"{name} is not finite: {x[row, col]!r} at row {row}, column {col}")
    return x


def _check_k(k: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise PipelineError(f"k: {k!r} must be an integer >= 1")


def _check_retrieval(
    *, embeddings: Any, tags: Sequence[Sequence[str]], k: Any, relevance_threshold: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Validate the arguments of the metrics; return float32 embeddings and multi-hot tags."""
    embeddings = _check_matrix(embeddings, name="embeddings")
    _check_k(k)
    if (
        isinstance(relevance_threshold, bool)
        or not isinstance(relevance_threshold, int | float)
        or not 0 < relevance_threshold <= 1
    ):
        raise PipelineError(
            f"relevance_threshold: {relevance_threshold!r} must be a number in (0, 1]"
        )
    multi_hot = _tags_multi_hot(tags, name="tags")
    if len(embeddings) != len(multi_hot):
        raise PipelineError(
            f"embeddings has {len(embeddings)} rows but tags has {len(multi_hot)} tracks; "
            "they must match one to one"
        )
    if len(embeddings) < 2:
        raise PipelineError(
            f"retrieval needs at least 2 tracks (a query and a candidate), got {len(embeddings)}"
        )
    return embeddings, multi_hot


# ---------------------------------------------------------------------------------------------
# Metric learning
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TripletConfig:
    """How a triplet projection is trained.

    Parameters
    ----------
    dim : int
        Output dimensions.
    hidden : int
        Width of the hidden layer (ReLU); 0 is a linear projection.
    margin : float
        Triplet margin, in cosine distance (> 0).
    epochs : int
        Most epochs (each mines new triplets).
    batch_size : int
        Triplets per optimizer step.
    lr : float
        Adam's learning rate (> 0).
    weight_decay : float
        Adam's L2 penalty (>= 0).
    triplets_per_anchor : int
        Triplets mined per anchor track and epoch.
    patience : int
        Stop after this many epochs without a better valid MAP@k.
    seed : int
        Seeds the weights, the mining and the batch order.
    """

    dim: int = 64
    hidden: int = 128
    margin: float = 0.2
    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    triplets_per_anchor: int = 4
    patience: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("dim", "epochs", "batch_size", "triplets_per_anchor", "patience"):
            _config_int(key, getattr(self, key), minimum=1)
        _config_int("hidden", self.hidden, minimum=0)
        _config_int("seed", self.seed, minimum=0)
        for key in ("margin", "lr"):
            _config_number(key, getattr(self, key), positive=True)
        _config_number("weight_decay", self.weight_decay, positive=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain settings (projection dicts, summaries)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> TripletConfig:
        """Build from a config entry; unknown keys are a ConfigError naming them."""
        if not isinstance(settings, Mapping):
            raise ConfigError(f"triplet: expected a mapping of settings, got {settings!r:.80}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in set(settings) - known)
        if unknown:
            raise ConfigError(f"triplet: unknown key(s) {unknown}; allowed: {sorted(known)}")
        return cls(**settings)


def _config_int(key: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"triplet.{key}: {value!r} must be an integer >= {minimum}")


def _config_number(key: str, value: Any, *, positive: bool) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise ConfigError(
            f"triplet.{key}: {value!r} must be a number {'>' if positive else '>='} 0"
        )


class _Projector(nn.Module):
    """Standardised input -> MLP (or linear map) -> unit-norm output."""

    def __init__(self, *, input_dim: int, hidden: int, dim: int) -> None:
        super().__init__()
        if hidden > 0:
            self.net = nn.Sequential(
                nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim)
            )
        else:
            self.net = nn.Sequential(nn.Linear(input_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> (B, dim), rows of unit L2 norm."""
        return nn.functional.normalize(self.net(x), dim=1)


def train_projection(
    *,
    train_embeddings: np.ndarray,
    train_tags: Sequence[Sequence[str]],
    valid_embeddings: np.ndarray,
    valid_tags: Sequence[Sequence[str]],
    config: TripletConfig,
    k: int = 20,
    relevance_threshold: float = 0.5,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Learn a projection of embeddings in which cosine similarity follows tag overlap.

    Inputs are standardised with the train split's per-dimension mean and std (kept in the
    projection). Each epoch mines ``triplets_per_anchor`` triplets per train track with at
    least one tag: candidate positives share a random tag of the anchor, candidate negatives
    are random tracks, a pair is ordered so that ``Jaccard(a, p) > Jaccard(a, n)`` (ties are
    dropped), and among ``4 * triplets_per_anchor`` candidates the semi-hard ones
    (``d(a, p) < d(a, n) < d(a, p) + margin`` under the current projection) come first, then
    the hard ones, then the rest. The loss is ``mean(max(0, margin + d(a, p) - d(a, n)))``
    with cosine distance, optimised with Adam. After each epoch the valid split's MAP@k
    (:func:`retrieval_metrics`) is computed; the best epoch's weights are kept and training
    stops after ``patience`` epochs without improvement. The run is a function of
    ``config.seed`` (torch's global random state is restored afterwards).

    Parameters
    ----------
    train_embeddings : np.ndarray, shape (n, D)
    train_tags : sequence of sequences of str, length n
    valid_embeddings : np.ndarray, shape (m, D)
    valid_tags : sequence of sequences of str, length m
    config : TripletConfig
    k : int
        Cut-off of the valid MAP@k.
    relevance_threshold : float
        Relevance threshold of the valid MAP@k.

    Returns
    -------
    projection : dict
        ``kind`` (``"triplet_projection"``), ``config`` (``config.to_dict()``),
        ``input_dim``, ``mean`` and ``std`` (lists of D floats), ``state_dict`` (CPU tensors)
        and ``selection`` (``{"criterion", "epoch", "valid_map_at_k"}``). Only tensors, lists,
        dicts and scalars: :func:`save_projection` writes it.
    history : pd.DataFrame
        One row per epoch with :data:`HISTORY_COLUMNS` (``loss`` is the mean triplet loss).

    Raises
    ------
    PipelineError
        Inputs are malformed, the train tags give no triplet, or no valid track has a
        relevant neighbour (MAP@k could not select an epoch).
    """
    if not isinstance(config, TripletConfig):
        raise PipelineError(f"config must be a TripletConfig, got {type(config).__name__}")
    train_x, train_hot = _check_retrieval(
        embeddings=train_embeddings, tags=train_tags, k=k, relevance_threshold=relevance_threshold
    )
    valid_x, _ = _check_retrieval(
        embeddings=valid_embeddings, tags=valid_tags, k=k, relevance_threshold=relevance_threshold
    )
    if valid_x.shape[1] != train_x.shape[1]:
        raise PipelineError(
            f"valid_embeddings have {valid_x.shape[1]} dimensions but train_embeddings "
            f"{train_x.shape[1]}"
        )
    mean = train_x.astype(np.float64).mean(axis=0)
    std = train_x.astype(np.float64).std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)

    def valid_map(model: _Projector) -> float:
        out = _embed(model, valid_x, mean=mean, std=std)
        return float(
            retrieval_metrics(
                embeddings=out, tags=valid_tags, k=k, relevance_threshold=relevance_threshold
            )["map_at_k"]
        )

    baseline = retrieval_metrics(
        embeddings=(valid_x - mean) / std,
        tags=valid_tags,
        k=k,
        relevance_threshold=relevance_threshold,
    )
    if baseline["n_queries"] == 0:
        raise PipelineError(
            f"no valid track has a neighbour with tag overlap >= {relevance_threshold}: "
            "MAP@k cannot choose an epoch (lower relevance_threshold or use more tracks)"
        )
    log.info(
        "triplet projection: %d train, %d valid tracks; valid MAP@%d of the standardised "
        "input %.4f",
        len(train_x),
        len(valid_x),
        k,
        baseline["map_at_k"],
    )

    rng = np.random.default_rng(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = _Projector(input_dim=train_x.shape[1], hidden=config.hidden, dim=config.dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    x = torch.from_numpy(((train_x - mean) / std).astype(np.float32))
    miner = _TripletMiner(train_hot)

    rows: list[dict[str, Any]] = []
    best_value, best_epoch, best_state = -math.inf, 0, None
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        current = _embed(model, train_x, mean=mean, std=std)
        triplets = miner.mine(
            rng=rng,
            embeddings=current,
            per_anchor=config.triplets_per_anchor,
            margin=config.margin,
        )
        if len(triplets) == 0:
            raise PipelineError(
                "train_tags give no triplet: no track has two others with different tag "
                "overlaps to it"
            )
        triplets = triplets[rng.permutation(len(triplets))]
        model.train()
        total_loss = 0.0
        for start in range(0, len(triplets), config.batch_size):
            batch = torch.from_numpy(triplets[start : start + config.batch_size])  # (B, 3)
            anchor, positive, negative = (model(x[batch[:, j]]) for j in range(3))  # (B, dim)
            d_ap = 1.0 - (anchor * positive).sum(dim=1)
            d_an = 1.0 - (anchor * negative).sum(dim=1)
            loss = torch.relu(config.margin + d_ap - d_an).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(batch)
        value = valid_map(model)
        rows.append(
            {
                "epoch": epoch,
                "loss": total_loss / len(triplets),
                "valid_map_at_k": value,
                "n_triplets": len(triplets),
            }
        )
        log.info(
            "epoch %d: loss %.4f, valid MAP@%d %.4f, %d triplets (%.1f s)",
            epoch,
            rows[-1]["loss"],
            k,
            value,
            len(triplets),
            time.perf_counter() - started,
        )
        if value > best_value:
            best_value, best_epoch = value, epoch
            best_state = {name: t.detach().clone() for name, t in model.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            break

    assert best_state is not None  # at least one epoch ran and MAP is a number
    projection = {
        "kind": PROJECTION_KIND,
        "config": config.to_dict(),
        "input_dim": int(train_x.shape[1]),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "state_dict": best_state,
        "selection": {
            "criterion": f"best valid MAP@{k} (tag Jaccard >= {relevance_threshold})",
            "epoch": int(best_epoch),
            "valid_map_at_k": float(best_value),
        },
    }
    return projection, pd.DataFrame(rows, columns=HISTORY_COLUMNS)


class _TripletMiner:
    """Draws (anchor, positive, negative) train indices ordered by tag overlap."""

    def __init__(self, multi_hot: np.ndarray) -> None:
        self.multi_hot = multi_hot  # (n, V) bool
        self.sizes = multi_hot.sum(axis=1)
        tracks, tag_ids = np.nonzero(multi_hot)  # sorted by track
        self.track_ptr = np.concatenate([[0], np.cumsum(self.sizes)])
        self.track_tag_ids = tag_ids
        by_tag = np.argsort(tag_ids, kind="stable")
        self.tag_members = tracks[by_tag]
        self.tag_ptr = np.concatenate([[0], np.cumsum(multi_hot.sum(axis=0))])
        self.anchors = np.flatnonzero(self.sizes > 0)

    def mine(
        self, *, rng: np.random.Generator, embeddings: np.ndarray, per_anchor: int, margin: float
    ) -> np.ndarray:
        """Triplets of one epoch.

        Parameters
        ----------
        rng : np.random.Generator
        embeddings : np.ndarray, shape (n, dim)
            Current unit-norm outputs of the train tracks (to prefer semi-hard negatives).
        per_anchor : int
        margin : float

        Returns
        -------
        np.ndarray, shape (n_triplets, 3), int64
            Columns anchor, positive, negative with ``Jaccard(a, p) > Jaccard(a, n)``.
        """
        n = len(self.multi_hot)
        n_candidates = per_anchor * _OVERSAMPLE
        anchor = np.repeat(self.anchors, n_candidates).reshape(-1, n_candidates)  # (A, C)
        # Positive candidates: a track holding a random tag of the anchor.
        which = (rng.random(anchor.shape) * self.sizes[anchor]).astype(np.int64)
        tag = self.track_tag_ids[self.track_ptr[anchor] + which]
        count = self.tag_ptr[tag + 1] - self.tag_ptr[tag]
        positive = self.tag_members[
            self.tag_ptr[tag] + (rng.random(anchor.shape) * count).astype(np.int64)
        ]
        negative = rng.integers(0, n, size=anchor.shape)
        j_pos = self._pair_jaccard(anchor, positive)
        j_neg = self._pair_jaccard(anchor, negative)
        swap = j_neg > j_pos
        positive, negative = np.where(swap, negative, positive), np.where(swap, positive, negative)
        valid = (j_pos != j_neg) & (positive != anchor) & (negative != anchor)

        anchor_out = embeddings[self.anchors]  # (A, dim)
        d_ap = 1.0 - np.einsum("ad,acd->ac", anchor_out, embeddings[positive])
        d_an = 1.0 - np.einsum("ad,acd->ac", anchor_out, embeddings[negative])
        violation = margin + d_ap - d_an
        # 0: semi-hard, 1: hard (negative closer than positive), 2: easy (no loss), 9: invalid.
        category = np.where(violation <= 0, 2, np.where(d_an > d_ap, 0, 1))
        key = np.where(valid, category, 9) + 0.5 * rng.random(anchor.shape)
        chosen = np.argsort(key, axis=1)[:, :per_anchor]  # (A, per_anchor)
        keep = np.take_along_axis(valid, chosen, axis=1).ravel()
        out = np.stack(
            [
                np.take_along_axis(anchor, chosen, axis=1).ravel(),
                np.take_along_axis(positive, chosen, axis=1).ravel(),
                np.take_along_axis(negative, chosen, axis=1).ravel(),
            ],
            axis=1,
        )
        return out[keep].astype(np.int64)

    def _pair_jaccard(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Jaccard of the tag sets of tracks ``i`` and ``j`` (same shapes), in chunks."""
        flat_i, flat_j = i.ravel(), j.ravel()
        out = np.zeros(len(flat_i), dtype=np.float64)
        step = max(1, 2**24 // max(self.multi_hot.shape[1], 1))
        for start in range(0, len(flat_i), step):
            a, b = flat_i[start : start + step], flat_j[start : start + step]
            inter = (self.multi_hot[a] & self.multi_hot[b]).sum(axis=1)
            union = self.sizes[a] + self.sizes[b] - inter
            out[start : start + step] = np.divide(
                inter, union, out=np.zeros(len(a)), where=union > 0
            )
        return out.reshape(i.shape)


def _embed(model: _Projector, x: np.ndarray, *, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(n, D) raw embeddings -> (n, dim) float32 unit-norm outputs, in blocks, no grad."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), 8192):
            block = ((x[start : start + 8192] - mean) / std).astype(np.float32)
            out.append(model(torch.from_numpy(block)).numpy())
    if not out:
        return np.zeros((0, model.net[-1].out_features), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def project(*, projection: Mapping[str, Any], embeddings: np.ndarray) -> np.ndarray:
    """Apply a trained projection.

    Parameters
    ----------
    projection : mapping
        From :func:`train_projection` or :func:`load_projection`.
    embeddings : np.ndarray, shape (n, D)
        ``D`` must be the projection's ``input_dim``.

    Returns
    -------
    np.ndarray, shape (n, dim), float32
        Unit-norm rows.

    Raises
    ------
    PipelineError
        ``projection`` is not a triplet projection, or ``D`` differs from its ``input_dim``.
    """
    _check_projection(projection, where="projection")
    embeddings = _check_matrix(embeddings, name="embeddings")
    input_dim = int(projection["input_dim"])
    if embeddings.shape[1] != input_dim:
        raise PipelineError(
            f"embeddings have {embeddings.shape[1]} dimensions but the projection expects "
            f"input_dim={input_dim}"
        )
    config = TripletConfig.from_dict(projection["config"])
    model = _Projector(input_dim=input_dim, hidden=config.hidden, dim=config.dim)
    try:
        model.load_state_dict(projection["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise PipelineError(f"projection state_dict does not fit its config: {exc}") from exc
    mean = np.asarray(projection["mean"], dtype=np.float64)
    std = np.asarray(projection["std"], dtype=np.float64)
    if mean.shape != (input_dim,) or std.shape != (input_dim,):
        raise PipelineError(
            f"projection mean {mean.shape} and std {std.shape} must both have shape ({input_dim},)"
        )
    return _embed(model, embeddings, mean=mean, std=std)


def save_projection(projection: Mapping[str, Any], path: Path | str) -> None:
    """Check a projection dict and write it atomically with ``torch.save``.

    Raises
    ------
    PipelineError
        A key is missing, ``kind`` is wrong, or a value is not a tensor, list, dict or scalar.
    """
    path = Path(path)
    _check_projection(projection, where=f"projection for {str(path)!r}")
    check_plain(dict(projection), where=f"projection {str(path)!r}")
    save_torch(projection, path)


def load_projection(path: Path | str) -> dict[str, Any]:
    """Read a projection with ``torch.load(weights_only=True)`` (tensors on the CPU).

    Raises
    ------
    PipelineError
        The file is missing, cannot be read, or is not a triplet projection; the message
        names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"projection {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise PipelineError(
            f"{str(path)!r} is not a projection (torch.load failed: {exc})"
        ) from exc
    _check_projection(payload, where=repr(str(path)))
    return payload


def _check_projection(projection: Any, *, where: str) -> None:
    if not isinstance(projection, Mapping) or projection.get("kind") != PROJECTION_KIND:
        kind = projection.get("kind") if isinstance(projection, Mapping) else None
        raise PipelineError(
            f"{where} is not a {PROJECTION_KIND!r} (kind is {kind!r}, "
            f"type {type(projection).__name__})"
        )
    missing = [key for key in PROJECTION_KEYS if key not in projection]
    if missing:
        raise PipelineError(f"{where} lacks key(s) {missing}")
