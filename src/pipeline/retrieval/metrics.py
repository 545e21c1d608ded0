"""Similar-track retrieval metrics with tag overlap as ground truth.

**Evaluation.** Two tracks are as similar as their tag sets overlap: the graded relevance of
a candidate to a query is the Jaccard index ``|A & B| / |A | B|`` of their tags (0 when both
are empty), and a candidate is *relevant* when that index reaches ``relevance_threshold``.
:func:`retrieval_metrics` runs leave-one-out retrieval inside one set of tracks (each track
queries all the others, ranked by cosine similarity of their embeddings; ties go to the lower
track index) and reports MAP@k, recall@k, MRR and nDCG@k. :func:`chance_metrics` gives the
same numbers for random rankings, the baseline row of a table.

Metric learning (a projection in which these metrics improve) is in
:mod:`pipeline.retrieval.metric_learning`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pipeline.errors import PipelineError
from pipeline.numeric import l2_normalise

__all__ = [
    "METRIC_KEYS",
    "tag_relevance",
    "cosine_similarity",
    "nearest",
    "retrieval_metrics",
    "query_metrics",
    "chance_metrics",
]

#: The retrieval metrics of :func:`retrieval_metrics` and :func:`chance_metrics`.
METRIC_KEYS = ("map_at_k", "recall_at_k", "mrr", "ndcg_at_k")

#: Queries per block: one block holds a few (block, n_tracks) arrays (scores, overlaps, masks),
#: about 1 GB at 30k tracks.
_QUERY_BLOCK = 1024

#: Candidate (positive, negative) pairs drawn per triplet kept when mining.
OVERSAMPLE = 4


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
    queries = check_matrix(queries, name="queries")
    candidates = check_matrix(candidates, name="candidates")
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
    index = check_matrix(index, name="index")
    queries = check_matrix(queries, name="queries")
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
    summary, _ = query_metrics(
        embeddings=embeddings, tags=tags, k=k, relevance_threshold=relevance_threshold
    )
    return summary


def query_metrics(
    *,
    embeddings: np.ndarray,
    tags: Sequence[Sequence[str]],
    k: int = 20,
    relevance_threshold: float = 0.5,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """:func:`retrieval_metrics` and the per-query values it averages (to resample them).

    Returns
    -------
    summary : dict
        As :func:`retrieval_metrics`.
    per_query : dict of np.ndarray
        Each metric of :data:`METRIC_KEYS` for each query it averages over, in query order:
        shape (n_queries,) for MAP, recall and MRR, (n_queries_ndcg,) for nDCG.
    """
    embeddings, multi_hot = check_retrieval(
        embeddings=embeddings, tags=tags, k=k, relevance_threshold=relevance_threshold
    )
    unit = _unit_rows(embeddings)
    total = _Totals(keep=True)
    for start, stop, gains, relevant in _relevance_blocks(multi_hot, relevance_threshold):
        scores = unit[start:stop] @ unit.T  # (b, n)
        _mask_self(scores, start=start, value=-np.inf)
        total.add(_query_metrics(scores=scores, gains=gains, relevant=relevant, k=k))
    summary = total.result(n_tracks=len(unit), k=k, relevance_threshold=relevance_threshold)
    return summary, total.per_query()


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
    _, multi_hot = check_retrieval(
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

    def __init__(self, *, keep: bool = False) -> None:
        self.sums = dict.fromkeys(METRIC_KEYS, 0.0)
        self.n_queries = 0
        self.n_queries_ndcg = 0
        self.keep = keep  # also keep each query's values
        self.values: dict[str, list[np.ndarray]] = {key: [] for key in METRIC_KEYS}

    def per_query(self) -> dict[str, np.ndarray]:
        return {
            key: np.concatenate(parts) if parts else np.zeros(0)
            for key, parts in self.values.items()
        }

    def add(self, block: dict[str, np.ndarray]) -> None:
        used, graded = block["used"], block["graded"]
        if self.keep:
            for key in METRIC_KEYS:
                mask = graded if key == "ndcg_at_k" else used
                self.values[key].append(np.asarray(block[key][mask], dtype=np.float64))
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
    """Rows scaled to unit L2 norm in float32, (n, D) -> (n, D); zero rows stay zero."""
    return l2_normalise(np.asarray(x, dtype=np.float32))


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


def check_matrix(x: Any, *, name: str) -> np.ndarray:
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


def check_retrieval(
    *, embeddings: Any, tags: Sequence[Sequence[str]], k: Any, relevance_threshold: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Validate the arguments of the metrics; return float32 embeddings and multi-hot tags."""
    embeddings = check_matrix(embeddings, name="embeddings")
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
