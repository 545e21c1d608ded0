"""Per-tag ROC-AUC / PR-AUC and their averages, against hand-computed and brute-force values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import (
    PER_TAG_COLUMNS,
    argmax_accuracy,
    label_matrix,
    macro_auc,
    per_tag_metrics,
    single_label,
    summary_metrics,
    tag_aucs,
)


def _pairs_auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC-AUC by counting (positive, negative) pairs; ties count one half."""
    pos, neg = s[y == 1], s[y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def _brute_ap(y: np.ndarray, s: np.ndarray) -> float:
    """Average precision: sum over distinct thresholds of precision x recall gained."""
    ap, previous_recall = 0.0, 0.0
    for threshold in np.unique(s)[::-1]:
        chosen = s >= threshold
        recall = (y[chosen] == 1).sum() / (y == 1).sum()
        precision = (y[chosen] == 1).sum() / chosen.sum()
        ap += (recall - previous_recall) * precision
        previous_recall = recall
    return ap


def _one(y: list[int], s: list[float]) -> tuple[float, float]:
    row = per_tag_metrics(y_true=np.array([y]).T, y_score=np.array([s]).T, tags=["t"]).iloc[0]
    return row["roc_auc"], row["pr_auc"]


def test_hand_computed_case() -> None:
    # positives score 0.9, 0.4; negatives 0.8, 0.1: 3 of 4 pairs are ordered -> 0.75.
    # Ranked: + - + -: precision 1 at recall 1/2, 2/3 at recall 1 -> AP = 1/2 + 1/3 = 5/6.
    roc, pr = _one([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1])
    assert roc == pytest.approx(0.75)
    assert pr == pytest.approx(5 / 6)


def test_perfect_and_reversed_rankings() -> None:
    assert _one([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1]) == pytest.approx((1.0, 1.0))
    # Reversed: - - + +: precision 1/3 at recall 1/2, 2/4 at recall 1 -> AP = 1/6 + 1/4.
    assert _one([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == pytest.approx((0.0, 5 / 12))


def test_ties() -> None:
    # One tied (positive, negative) pair counts 1/2: (1 + 1 + 0.5 + 1) / 4 = 0.875.
    # Thresholds 0.7 (P=1, R=1/2) and 0.5 (P=2/3, R=1): AP = 1/2 + 1/3.
    assert _one([1, 1, 0, 0], [0.7, 0.5, 0.5, 0.2]) == pytest.approx((0.875, 5 / 6))
    # All scores tied: chance ROC-AUC, AP = prevalence.
    assert _one([1, 0, 0, 0], [0.3, 0.3, 0.3, 0.3]) == pytest.approx((0.5, 0.25))


def test_matches_brute_force_on_random_scores_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((40, 5)) < 0.3).astype(int)
    s = rng.integers(0, 6, size=(40, 5)).astype(float)  # coarse scores: many ties
    table = per_tag_metrics(y_true=y, y_score=s, tags=list("abcde"))
    for k in range(5):
        assert table.loc[k, "roc_auc"] == pytest.approx(_pairs_auc(y[:, k], s[:, k]))
        assert table.loc[k, "pr_auc"] == pytest.approx(_brute_ap(y[:, k], s[:, k]))


def test_tags_without_positives_or_negatives_are_skipped_not_fatal() -> None:
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]])
    s = np.array([[0.9, 0.1, 0.5], [0.8, 0.2, 0.5], [0.4, 0.3, 0.5], [0.1, 0.4, 0.5]])
    table = per_tag_metrics(y_true=y, y_score=s, tags=["good", "never", "always"])
    assert list(table.columns) == PER_TAG_COLUMNS
    assert table["evaluated"].tolist() == [True, False, False]
    assert table["n_positive"].tolist() == [2, 0, 4]
    assert table["n_negative"].tolist() == [2, 4, 0]
    assert table.loc[1:, ["roc_auc", "pr_auc"]].isna().all().all()

    summary = summary_metrics(y_true=y, y_score=s, tags=["good", "never", "always"])
    assert summary["skipped_tags"] == ["never", "always"]
    assert summary["n_tags_evaluated"] == 1
    assert summary["macro_roc_auc"] == pytest.approx(0.75)
    assert summary["micro_roc_auc"] == pytest.approx(0.75)  # only the evaluated column
    assert summary["macro_pr_auc"] == pytest.approx(5 / 6)


def test_no_tag_evaluable_gives_nan() -> None:
    summary = summary_metrics(y_true=np.zeros((3, 2)), y_score=np.ones((3, 2)), tags=["a", "b"])
    assert summary["n_tags_evaluated"] == 0
    assert summary["skipped_tags"] == ["a", "b"]
    assert math.isnan(summary["macro_roc_auc"]) and math.isnan(summary["micro_pr_auc"])


def test_macro_and_micro_averages() -> None:
    y = np.array([[1, 1], [0, 1], [1, 0], [0, 0]])
    s = np.array([[0.9, 0.6], [0.8, 0.7], [0.4, 0.2], [0.1, 0.3]])
    summary = summary_metrics(y_true=y, y_score=s, tags=["a", "b"])
    # a: 0.75 (above); b: positives 0.6, 0.7 vs negatives 0.2, 0.3 -> 1.0.
    assert summary["macro_roc_auc"] == pytest.approx((0.75 + 1.0) / 2)
    assert summary["macro_pr_auc"] == pytest.approx((5 / 6 + 1.0) / 2)
    # Micro: the 8 (track, tag) pairs pooled; positives 0.9 0.4 0.6 0.7, negatives 0.8 0.1
    # 0.2 0.3: of 16 pairs only 0.4<0.8, 0.6<0.8, 0.7<0.8 are out of order -> 13/16.
    assert summary["micro_roc_auc"] == pytest.approx(13 / 16)
    assert summary["micro_pr_auc"] == pytest.approx(_brute_ap(y.ravel(), s.ravel()))
    assert summary["n_tracks"] == 4 and summary["n_tags"] == 2


def test_bool_labels_and_logits_give_the_same_result() -> None:
    rng = np.random.default_rng(1)
    y = rng.random((30, 3)) < 0.4
    logits = rng.normal(size=(30, 3))
    a = per_tag_metrics(y_true=y, y_score=logits, tags=["a", "b", "c"])
    b = per_tag_metrics(y_true=y.astype(int), y_score=1 / (1 + np.exp(-logits)), tags="abc")
    np.testing.assert_allclose(a[["roc_auc", "pr_auc"]], b[["roc_auc", "pr_auc"]])


@pytest.mark.parametrize(
    ("y_true", "y_score", "tags", "match"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "ab", "same"),
        (np.zeros((3, 2)), np.zeros((3, 2)), "abc", "3 tags"),
        (np.full((3, 2), 2), np.zeros((3, 2)), "ab", "0/1"),
        (np.zeros((3, 2)), np.array([[0, 0], [0, np.nan], [0, 0]]), "ab", "track 1, tag 'b'"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "ab", "no tracks"),
    ],
)
def test_bad_input_is_a_clear_error(
    y_true: np.ndarray, y_score: np.ndarray, tags: str, match: str
) -> None:
    with pytest.raises(PipelineError, match=match):
        per_tag_metrics(y_true=y_true, y_score=y_score, tags=list(tags))


def test_label_matrix() -> None:
    labels = label_matrix(track_tags=[["b"], [], ["a", "c"]], vocabulary=["a", "b", "c"])
    np.testing.assert_array_equal(labels, [[0, 1, 0], [0, 0, 0], [1, 0, 1]])
    with pytest.raises(PipelineError, match="'z' is not in the vocabulary"):
        label_matrix(track_tags=[["z"]], vocabulary=["a"])


# --- macro_auc: the trainers' validation score ------------------------------------------------


def test_fast_macro_auc_equals_sklearn() -> None:
    rng = np.random.default_rng(0)
    for trial in range(40):
        n, k = int(rng.integers(2, 40)), int(rng.integers(1, 5))
        y = (rng.random((n, k)) < rng.random()).astype(float)
        scores = rng.random((n, k))
        if trial % 2:
            scores = np.round(scores * 3) / 3  # many ties
        expected = macro_auc(y, scores)
        got = macro_auc(y, scores, method="fast")
        assert got[2] == expected[2]
        np.testing.assert_allclose(got[:2], expected[:2], atol=1e-12)


def test_macro_auc_known_values_and_skipped_tags() -> None:
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]], dtype=float)
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.2, 0.5], [0.4, 0.3, 0.5], [0.6, 0.4, 0.5]])
    for method in ("sklearn", "fast"):
        roc, pr, n_scored = macro_auc(y, scores, method=method)
        assert n_scored == 1  # tags 2 and 3 have one class only
        assert roc == pytest.approx(0.75) and pr == pytest.approx((1 + 2 / 3) / 2)
        assert tag_aucs(y[:, 0], scores[:, 0], method=method) == pytest.approx((roc, pr))
    roc, pr, n_scored = macro_auc(y[:, 1:], scores[:, 1:])
    assert math.isnan(roc) and math.isnan(pr) and n_scored == 0
    with pytest.raises(PipelineError, match="'slow'"):
        tag_aucs(y[:, 0], scores[:, 0], method="slow")


def test_macro_auc_matches_summary_metrics() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random((30, 4)) < 0.4).astype(int)
    scores = rng.random((30, 4))
    summary = summary_metrics(y_true=y, y_score=scores, tags=list("abcd"))
    roc, pr, n_scored = macro_auc(y, scores)
    assert n_scored == summary["n_tags_evaluated"] == 4
    assert roc == pytest.approx(summary["macro_roc_auc"], abs=1e-15)
    assert pr == pytest.approx(summary["macro_pr_auc"], abs=1e-15)


def test_accuracy_only_for_single_label_tracks() -> None:
    # 4 tracks, one genre each: argmax right on tracks 0, 1, 3
    y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    s = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.6, 0.3, 0.2]])
    summary = summary_metrics(y_true=y, y_score=s, tags=["blues", "jazz", "rock"])
    assert summary["single_label"] is True
    assert summary["accuracy"] == pytest.approx(0.75)
    # a track with two labels (or none): multi-label, no accuracy
    multi = y.copy()
    multi[0, 1] = 1
    summary = summary_metrics(y_true=multi, y_score=s, tags=["blues", "jazz", "rock"])
    assert summary["single_label"] is False and summary["accuracy"] is None
    assert not single_label(np.zeros((0, 3)))
    assert np.isnan(argmax_accuracy(y_true=np.zeros((0, 3)), y_score=np.zeros((0, 3))))
