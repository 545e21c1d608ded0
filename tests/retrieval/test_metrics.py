"""Retrieval metrics with tag overlap as ground truth (:mod:`pipeline.retrieval.metrics`), on
hand-computed cases, a brute-force reference and synthetic tracks with known structure."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.retrieval import metrics
from pipeline.retrieval.metrics import (
    chance_metrics,
    cosine_similarity,
    nearest,
    retrieval_metrics,
    tag_relevance,
)
from tests.helpers.retrieval import clustered_tracks


def _angles(*degrees: float) -> np.ndarray:
    radians = np.deg2rad(np.array(degrees))
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


# Four tracks: Jaccard(0,1)=1, (0,2)=(1,2)=0.5, track 3 overlaps nobody.
TINY_TAGS = [["rock", "guitar"], ["guitar", "rock"], ["rock"], ["jazz"]]
# Angles 0, 90, 60, 40 degrees: rankings q0: 3,2,1  q1: 2,3,0  q2: 3,1,0  q3: 2,0,1.
TINY_EMBEDDINGS = _angles(0, 90, 60, 40)


def _brute_force(
    embeddings: np.ndarray, tags: list[list[str]], k: int, threshold: float
) -> dict[str, float]:
    """Straightforward per-query loops (full stable sort, python sets)."""
    x = embeddings.astype(np.float32)  # float32 as the module: the same exact ties
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms > 0, norms, 1)
    sims = unit @ unit.T
    sets = [set(t) for t in tags]
    aps, recalls, rrs, ndcgs = [], [], [], []
    for q in range(len(tags)):
        others = [c for c in range(len(tags)) if c != q]
        ranking = sorted(others, key=lambda c: (-sims[q, c], c))

        def jac(c: int, q: int = q) -> float:
            union = len(sets[q] | sets[c])
            return len(sets[q] & sets[c]) / union if union else 0.0

        gains = [jac(c) for c in ranking]
        rel = [g >= threshold and g > 0 for g in gains]
        n_rel = sum(rel)
        if n_rel:
            hits, ap = 0, 0.0
            for i, r in enumerate(rel[:k], start=1):
                hits += r
                ap += hits / i * r
            aps.append(ap / min(k, n_rel))
            recalls.append(sum(rel[:k]) / n_rel)
            rrs.append(1 / (rel.index(True) + 1))
        ideal = sorted(gains, reverse=True)
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal[:k]))
        if idcg > 0:
            ndcgs.append(sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k])) / idcg)
    return {
        "map_at_k": float(np.mean(aps)),
        "recall_at_k": float(np.mean(recalls)),
        "mrr": float(np.mean(rrs)),
        "ndcg_at_k": float(np.mean(ndcgs)),
        "n_queries": len(aps),
        "n_queries_ndcg": len(ndcgs),
    }


# --- relevance, similarity, nearest ----------------------------------------------------------


def test_tag_relevance_is_jaccard() -> None:
    out = tag_relevance(
        query_tags=[["a", "b"], [], ["a", "a"]],
        candidate_tags=[["a", "b", "c"], [], ["c"]],
    )
    expected = np.array([[2 / 3, 0, 0], [0, 0, 0], [1 / 3, 0, 0]])
    assert out.shape == (3, 3)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_cosine_similarity_zero_rows_give_zero() -> None:
    queries = np.array([[3.0, 4.0], [0.0, 0.0]])
    candidates = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    out = cosine_similarity(queries=queries, candidates=candidates)
    np.testing.assert_allclose(out, [[0.6, 0.8, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)
    assert np.isfinite(out).all()


def test_nearest_order_exclude_self_and_large_k() -> None:
    index = _angles(0, 90, 60, 40)
    idx, sims = nearest(index=index, queries=_angles(10), k=3)
    assert idx.dtype == np.int64 and sims.dtype == np.float32
    assert idx.tolist() == [[0, 3, 2]]
    np.testing.assert_allclose(sims[0], np.cos(np.deg2rad([10, 30, 50])), atol=1e-6)

    idx, _ = nearest(index=index, queries=index, k=10, exclude_self=True)
    assert idx.shape == (4, 3)  # k' = n - 1
    assert idx.tolist() == [[3, 2, 1], [2, 3, 0], [3, 1, 0], [2, 0, 1]]

    idx, _ = nearest(index=index, queries=index, k=10)
    assert idx.shape == (4, 4) and idx[:, 0].tolist() == [0, 1, 2, 3]


def test_nearest_ties_go_to_the_lower_index_across_the_cut() -> None:
    # Rows 1, 2, 4 are identical: with k=2 the cut falls inside the tie.
    index = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    idx, _ = nearest(index=index, queries=np.array([[1.0, 0.0]]), k=2)
    assert idx.tolist() == [[1, 2]]
    idx, _ = nearest(index=index, queries=index[[2]], k=5)
    assert idx.tolist() == [[1, 2, 4, 3, 0]]
    idx, _ = nearest(index=index, queries=index, k=2, exclude_self=True)
    assert idx[2].tolist() == [1, 4] and idx[4].tolist() == [1, 2]


def test_nearest_blocks_match_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(size=(23, 3)), 1)  # rounded: ties
    whole = nearest(index=x, queries=x, k=5, exclude_self=True)
    monkeypatch.setattr(metrics, "_QUERY_BLOCK", 4)
    blocked = nearest(index=x, queries=x, k=5, exclude_self=True)
    np.testing.assert_array_equal(whole[0], blocked[0])
    np.testing.assert_array_equal(whole[1], blocked[1])


# --- retrieval metrics -----------------------------------------------------------------------


def test_hand_computed_metrics() -> None:
    out = retrieval_metrics(embeddings=TINY_EMBEDDINGS, tags=TINY_TAGS, k=2)
    # Relevant (Jaccard >= 0.5): q0 {1, 2}, q1 {0, 2}, q2 {0, 1}; q3 none.
    # Top 2 hits: q0 [0, 1], q1 [1, 0], q2 [0, 1].
    assert out["n_tracks"] == 4 and out["n_queries"] == 3 and out["n_queries_ndcg"] == 3
    assert out["map_at_k"] == pytest.approx((0.25 + 0.5 + 0.25) / 3)
    assert out["recall_at_k"] == pytest.approx(0.5)
    assert out["mrr"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    d = 1 / math.log2(3)
    # Gains along the rankings: q0 [0, .5, 1], q1 [.5, 0, 1], q2 [0, .5, .5].
    ndcg = [(0.5 * d) / (1 + 0.5 * d), 0.5 / (1 + 0.5 * d), (0.5 * d) / (0.5 + 0.5 * d)]
    assert out["ndcg_at_k"] == pytest.approx(np.mean(ndcg))


def test_mrr_is_not_cut_at_k_and_ap_divides_by_min_k_relevant() -> None:
    out = retrieval_metrics(embeddings=TINY_EMBEDDINGS, tags=TINY_TAGS, k=1)
    assert out["mrr"] == pytest.approx(2 / 3)  # ranks 2, 1, 2: beyond k=1 still counted
    assert out["map_at_k"] == pytest.approx(1 / 3)  # only q1 hits at rank 1, min(1, 2) = 1
    assert out["recall_at_k"] == pytest.approx(1 / 6)
    out = retrieval_metrics(embeddings=TINY_EMBEDDINGS, tags=TINY_TAGS, k=3)
    # All candidates retrieved: recall 1; AP q0 (1/2 + 2/3)/2, q1 (1 + 2/3)/2, q2 (1/2 + 2/3)/2.
    assert out["recall_at_k"] == pytest.approx(1.0)
    assert out["map_at_k"] == pytest.approx(np.mean([7 / 12, 5 / 6, 7 / 12]))


def test_threshold_changes_the_relevant_set() -> None:
    out = retrieval_metrics(
        embeddings=TINY_EMBEDDINGS, tags=TINY_TAGS, k=2, relevance_threshold=1.0
    )
    # Only 0 <-> 1 are relevant: q0 finds 1 at rank 3, q1 finds 0 at rank 3.
    assert out["n_queries"] == 2
    assert out["mrr"] == pytest.approx(1 / 3)
    assert out["map_at_k"] == 0.0 and out["recall_at_k"] == 0.0


def test_multi_hot_embeddings_are_perfect() -> None:
    groups = [["a", "b"], ["c"], ["d", "e", "f"], ["g", "h"]]
    sizes = [3, 4, 5, 1]  # the single "g h" track has no relevant partner
    tags = [groups[g] for g, size in enumerate(sizes) for _ in range(size)] + [[]]
    order = np.random.default_rng(3).permutation(len(tags))
    tags = [tags[i] for i in order]
    vocabulary = sorted({t for track in tags for t in track})
    embeddings = np.array([[t in track for t in vocabulary] for track in tags], dtype=float)
    out = retrieval_metrics(embeddings=embeddings, tags=tags, k=10)
    for key in ("map_at_k", "recall_at_k", "mrr", "ndcg_at_k"):
        assert out[key] == pytest.approx(1.0), key
    assert out["n_tracks"] == 14 and out["n_queries"] == 12 and out["n_queries_ndcg"] == 12
    # Shuffling the embeddings breaks it.
    shuffled = retrieval_metrics(embeddings=embeddings[::-1], tags=tags, k=10)
    assert shuffled["map_at_k"] < 0.6


def test_matches_brute_force_with_ties_and_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    vocabulary = list("abcdef")
    tags = [list(rng.choice(vocabulary, size=rng.integers(0, 4), replace=False)) for _ in range(41)]
    embeddings = np.round(rng.normal(size=(41, 3)), 0)  # coarse: many exact ties, zero rows
    embeddings[5] = 0.0
    for k, threshold in [(1, 0.5), (5, 0.5), (7, 0.3), (100, 1.0)]:
        expected = _brute_force(embeddings, tags, k, threshold)
        got = retrieval_metrics(
            embeddings=embeddings, tags=tags, k=k, relevance_threshold=threshold
        )
        monkeypatch.setattr(metrics, "_QUERY_BLOCK", 6)
        blocked = retrieval_metrics(
            embeddings=embeddings, tags=tags, k=k, relevance_threshold=threshold
        )
        monkeypatch.undo()
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-12), (k, threshold, key)
            assert blocked[key] == pytest.approx(value, abs=1e-12), (k, threshold, key)


def test_random_embeddings_score_near_chance() -> None:
    _, tags = clustered_tracks(400, seed=1)
    rng = np.random.default_rng(2)
    k = 10
    chance = chance_metrics(tags=tags, k=k, seed=0, repeats=5)
    assert chance["repeats"] == 5 and chance["n_tracks"] == 400
    # Expected recall@k of a random ranking is k / (n - 1) for every query.
    assert chance["recall_at_k"] == pytest.approx(k / 399, abs=0.005)
    scores = [
        retrieval_metrics(embeddings=rng.normal(size=(400, 16)), tags=tags, k=k) for _ in range(3)
    ]
    for key in ("map_at_k", "recall_at_k", "mrr", "ndcg_at_k"):
        mean = np.mean([s[key] for s in scores])
        assert mean == pytest.approx(chance[key], abs=0.03), key
        assert mean < 0.5, key
    assert chance["n_queries"] == scores[0]["n_queries"]
    assert chance == chance_metrics(tags=tags, k=k, seed=0, repeats=5)  # seeded


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"embeddings": np.zeros((3, 2)), "tags": [["a"]] * 4}, "3 rows but tags has 4"),
        ({"embeddings": np.zeros((3, 2)), "tags": [["a"]] * 3, "k": 0}, "k: 0"),
        ({"embeddings": np.zeros(3), "tags": [["a"]] * 3}, "2-D"),
        ({"embeddings": np.zeros((1, 2)), "tags": [["a"]]}, "at least 2 tracks"),
        (
            {"embeddings": np.zeros((2, 2)), "tags": [["a"]] * 2, "relevance_threshold": 0},
            "relevance_threshold: 0",
        ),
        ({"embeddings": np.full((2, 2), np.nan), "tags": [["a"]] * 2}, "not finite"),
        ({"embeddings": np.zeros((2, 2)), "tags": ["rock", "pop"]}, "tags[0]"),
    ],
)
def test_validation_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(PipelineError) as excinfo:
        retrieval_metrics(**kwargs)
    assert message in str(excinfo.value)


def test_nearest_validation_errors() -> None:
    with pytest.raises(PipelineError, match="k: 0"):
        nearest(index=np.zeros((3, 2)), queries=np.zeros((1, 2)), k=0)
    with pytest.raises(PipelineError, match="2 queries and 3 index rows"):
        nearest(index=np.zeros((3, 2)), queries=np.zeros((2, 2)), k=1, exclude_self=True)
    with pytest.raises(PipelineError, match="3 dimensions"):
        nearest(index=np.zeros((3, 2)), queries=np.zeros((2, 3)), k=1)
