"""The few-shot protocol (:mod:`pipeline.fewshot.episodes`): support sets with enough
positives per tag, episodes shared by every method, the episode table, and the workflow's
evaluation on a trained checkpoint.

Synthetic labels and embeddings with known structure; the ``checkpoints`` fixture of
``tests/conftest.py`` for the workflow's path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import ConfigError, PipelineError
from pipeline.fewshot.episodes import evaluate_fewshot, run_fewshot, sample_support
from pipeline.fewshot.prototypes import prototype_method
from pipeline.fewshot.table import (
    FEWSHOT_COLUMNS,
    SUMMARY_COLUMNS,
    summarise_fewshot,
    write_fewshot_table,
)


def _random_labels(n: int, rates: list[float], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, len(rates))) < np.asarray(rates)[None, :]


def test_support_has_shots_positives_per_usable_tag() -> None:
    labels = _random_labels(300, [0.3, 0.1, 0.05, 0.5, 0.2], seed=1)
    for shots in (1, 5, 10):
        support, usable = sample_support(
            labels=labels, shots=shots, rng=np.random.default_rng(shots)
        )
        assert support.dtype == np.int64 and usable.dtype == bool and usable.shape == (5,)
        assert np.array_equal(support, np.unique(support))
        assert usable.all()
        n_positive = labels[support].sum(axis=0)
        assert (n_positive >= shots).all() and (n_positive < len(support)).all()
        # a union of per-tag draws: never more than shots x tags tracks
        assert len(support) <= shots * labels.shape[1]


def test_support_flags_unusable_tags_and_is_deterministic() -> None:
    labels = _random_labels(100, [0.3, 0.3, 0.0, 0.3], seed=2)
    labels[:3, 2] = True  # tag 2: only three positives
    labels[:, 3] = True  # tag 3: no negative anywhere
    support, usable = sample_support(labels=labels, shots=5, rng=np.random.default_rng(7))
    assert usable.tolist() == [True, True, False, False]
    again, usable_again = sample_support(labels=labels, shots=5, rng=np.random.default_rng(7))
    assert np.array_equal(support, again) and np.array_equal(usable, usable_again)
    other, _ = sample_support(labels=labels, shots=5, rng=np.random.default_rng(8))
    assert not np.array_equal(support, other)
    # three positives are enough for three shots
    _, usable3 = sample_support(labels=labels, shots=3, rng=np.random.default_rng(7))
    assert usable3[2]
    with pytest.raises(PipelineError, match="shots"):
        sample_support(labels=labels, shots=0, rng=np.random.default_rng(0))


def test_support_tag_without_negative_in_support_is_unusable() -> None:
    # every track carries tag 0, so the support (drawn for tag 0 and 1) has no negative of it
    labels = np.array([[1, 1], [1, 0], [1, 1], [1, 0]], dtype=bool)
    _, usable = sample_support(labels=labels, shots=1, rng=np.random.default_rng(0))
    assert not usable[0]


def _noisy_multilabel(n: int, *, n_tags: int, dim: int, noise: float, seed: int):
    """Independent tags; embedding = sum of the track's tag directions + noise."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n_tags, dim))
    labels = rng.random((n, n_tags)) < 0.25
    return labels @ directions + noise * rng.normal(size=(n, dim)), labels


def test_run_fewshot_table_and_more_shots_help() -> None:
    x, labels = _noisy_multilabel(500, n_tags=5, dim=32, noise=2.0, seed=4)
    tags = [f"tag{k}" for k in range(5)]
    pool = np.arange(500) < 300
    seen: list[tuple[str, int, int, tuple[int, ...]]] = []

    def recording(name: str):
        proto = prototype_method(embeddings=x, labels=labels)

        def method(support_idx, query_idx, tag_idx):
            seen.append((name, len(query_idx), len(tag_idx), tuple(support_idx)))
            assert not set(support_idx) & set(query_idx)
            assert pool[support_idx].all() and not pool[query_idx].any()
            return proto(support_idx, query_idx, tag_idx)

        return method

    kwargs = dict(labels=labels, tags=tags, pool=pool, query=~pool, shots=[1, 10], seed=0)
    table = run_fewshot(**kwargs, episodes=6, methods={"a": recording("a"), "b": recording("b")})
    assert list(table.columns) == FEWSHOT_COLUMNS and len(table) == 2 * 2 * 6
    assert table["roc_auc_macro"].notna().all()
    # one shot per tag may leave a tag without a negative in the support set: not scored
    assert table["n_tags"].between(1, 5).all() and (table["n_tags"] == 5).mean() > 0.5
    assert (table.loc[table["shots"] == 10, "n_tags"] == 5).all()
    # both methods were given identical episodes, hence identical scores here
    supports_a = [s for name, *_, s in seen if name == "a"]
    supports_b = [s for name, *_, s in seen if name == "b"]
    assert supports_a == supports_b and len(set(supports_a)) > 6
    a, b = table[table["method"] == "a"], table[table["method"] == "b"]
    np.testing.assert_array_equal(a["roc_auc_macro"].to_numpy(), b["roc_auc_macro"].to_numpy())
    # one shot per tag: at most 5 support tracks; ten shots: at least 10
    assert (a.loc[a["shots"] == 1, "n_support"] <= 5).all()
    assert (a.loc[a["shots"] == 10, "n_support"] >= 10).all()

    summary = summarise_fewshot(table)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary[["method", "shots"]].values.tolist() == [
        ["a", 1],
        ["a", 10],
        ["b", 1],
        ["b", 10],
    ]
    assert (summary["episodes"] == 6).all() and (summary["roc_auc_std"] > 0).all()
    roc = summary[summary["method"] == "a"].set_index("shots")["roc_auc_mean"]
    assert roc[10] > roc[1] + 0.05, roc.to_dict()
    assert roc[10] > 0.75

    again = run_fewshot(**kwargs, episodes=6, methods={"a": recording("a"), "b": recording("b")})
    pd.testing.assert_frame_equal(table, again)


def test_run_fewshot_checks_inputs_and_skips_rare_tags() -> None:
    rows = np.arange(60)
    # tags a and b alternate; c has a single positive, too rare for two shots
    labels = np.stack([rows % 2 == 0, (rows // 2) % 2 == 0, rows == 0], axis=1)
    pool = rows < 40
    scored: list[list[int]] = []

    def recording(support_idx, query_idx, tag_idx):
        scored.append(tag_idx.tolist())
        return np.full((len(query_idx), len(tag_idx)), 0.5)

    common = dict(labels=labels, tags=["a", "b", "c"], shots=[2], episodes=3, seed=0)
    table = run_fewshot(**common, pool=pool, query=~pool, methods={"r": recording})
    # c is never scored; a support of two tracks carrying both a and b leaves nothing to score
    assert len(table) == 3 and [0, 1] in scored and all(2 not in t for t in scored)
    n_tags = table["n_tags"].tolist()
    assert [n for n in n_tags if n] == [len(t) for t in scored] and n_tags.count(0) < 3
    assert table.loc[table["n_tags"] > 0, "roc_auc_macro"].eq(0.5).all()
    assert table.loc[table["n_tags"] == 0, "roc_auc_macro"].isna().all()

    with pytest.raises(PipelineError, match="share"):
        run_fewshot(**common, pool=pool, query=np.ones(60, bool), methods={"r": recording})
    with pytest.raises(PipelineError, match="tags"):
        run_fewshot(**{**common, "tags": ["a"]}, pool=pool, query=~pool, methods={"r": recording})

    def wrong_shape(support_idx, query_idx, tag_idx):
        return np.zeros((len(query_idx), len(tag_idx) + 1))

    with pytest.raises(PipelineError, match="'bad'"):
        run_fewshot(**common, pool=pool, query=~pool, methods={"bad": wrong_shape})


def test_evaluate_fewshot_and_table(checkpoints: dict, tmp_path: Path) -> None:
    """Both methods on the synthetic stores' own tags; the table summarises the episodes."""
    settings = {
        "shots": [1, 3],
        "episodes": 2,
        "seed": 0,
        "finetune": {"enabled": True, "steps": 3, "batch_size": 4},
    }
    table = evaluate_fewshot(
        checkpoint=checkpoints["fcn"],
        index=checkpoints["index"],
        vocabulary=checkpoints["tags"],
        split="test",
        settings=settings,
    )
    assert list(table.columns) == FEWSHOT_COLUMNS
    assert set(table["method"]) == {"prototypes", "finetune"} and len(table) == 8
    assert table["roc_auc_macro"].dropna().between(0, 1).all()
    sequence = evaluate_fewshot(
        checkpoint=checkpoints["lstm"],
        index=checkpoints["index"],
        vocabulary=checkpoints["tags"],
        split="test",
        settings=settings,
    )
    assert set(sequence["method"]) == {"prototypes"}  # no fine-tuning of a sequence model
    with pytest.raises(ConfigError, match="held out"):
        evaluate_fewshot(
            checkpoint=checkpoints["fcn"],
            index=checkpoints["index"],
            vocabulary=checkpoints["tags"],
            split="valid",
            settings=settings,
        )

    episodes = tmp_path / "episodes.csv"
    table.insert(0, "target", "synthetic")
    table.insert(0, "model", "fcn")
    table.insert(0, "dataset", "synthetic")
    table.to_csv(episodes, index=False)
    out = {ext: tmp_path / f"fewshot.{ext}" for ext in ("csv", "md", "html")}
    summary = write_fewshot_table(
        episodes=[episodes],
        out_csv=out["csv"],
        out_md=out["md"],
        out_html=out["html"],
        split="test",
    )
    assert list(summary.columns) == ["dataset", "model", "target", *SUMMARY_COLUMNS]
    assert len(summary) == 4
    assert "Few-shot tags" in out["md"].read_text() and "<table>" in out["html"].read_text()
