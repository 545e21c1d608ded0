"""The retrieval table (:mod:`pipeline.retrieval.table`): every model's spaces joined from
their ``metrics.json`` files, one chance row per dataset, best MAP first; on hand-written rows
with known order and on the synthetic checkpoints of the ``checkpoints`` fixture."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.predict import embed_tracks
from pipeline.io.files import write_json
from pipeline.retrieval.evaluate import evaluate_retrieval
from pipeline.retrieval.table import RETRIEVAL_COLUMNS, shown, write_retrieval_table


def _row(dataset: str, model: str, space: str, map_at_k: float, **extra) -> dict:
    return {
        "dataset": dataset,
        "model": model,
        "space": space,
        "dim": 0 if space == "random" else 8,
        "map_at_k": map_at_k,
        "recall_at_k": map_at_k / 2,
        "mrr": map_at_k,
        "ndcg_at_k": map_at_k,
        "n_queries": 10,
        "n_tracks": 12,
        **extra,
    }


def test_shown_keeps_the_metrics_and_counts() -> None:
    metrics = {
        "map_at_k": 0.5,
        "recall_at_k": 0.4,
        "mrr": 0.6,
        "ndcg_at_k": 0.7,
        "n_queries": 9,
        "n_tracks": 11,
        "n_queries_ndcg": 10,
        "k": 5,
        "relevance_threshold": 0.5,
    }
    assert shown(metrics) == {
        "map_at_k": 0.5,
        "recall_at_k": 0.4,
        "mrr": 0.6,
        "ndcg_at_k": 0.7,
        "n_queries": 9,
        "n_tracks": 11,
    }


def test_one_chance_row_per_dataset_and_best_map_first(tmp_path: Path) -> None:
    files = {
        "a.json": [
            _row("gtzan", "fcn", "tagger", 0.4),
            _row("gtzan", "fcn", "triplet", 0.7, epoch=3),
            _row("gtzan", "fcn", "random", 0.1),
        ],
        "b.json": [
            _row("gtzan", "lstm", "tagger", 0.5),
            _row("gtzan", "lstm", "random", 0.1),
        ],
        "c.json": [_row("mtat", "fcn", "tagger", 0.3), _row("mtat", "fcn", "random", 0.05)],
    }
    paths = []
    for name, rows in files.items():
        paths.append(tmp_path / name)
        write_json(rows, paths[-1])
    out = {ext: tmp_path / "out" / f"retrieval.{ext}" for ext in ("csv", "md", "html")}
    table = write_retrieval_table(
        metrics=paths,
        out_csv=out["csv"],
        out_md=out["md"],
        out_html=out["html"],
        split="test",
        k=10,
        relevance_threshold=0.5,
    )
    renamed = [c.replace("_at_k", "@10") for c in RETRIEVAL_COLUMNS]
    assert list(table.columns) == [*renamed, "epoch"]  # unknown columns go last
    assert table[["dataset", "model", "space"]].values.tolist() == [
        ["gtzan", "fcn", "triplet"],
        ["gtzan", "lstm", "tagger"],
        ["gtzan", "fcn", "tagger"],
        ["gtzan", "(any)", "random"],
        ["mtat", "fcn", "tagger"],
        ["mtat", "(any)", "random"],
    ]
    assert table["map@10"].tolist() == [0.7, 0.5, 0.4, 0.1, 0.3, 0.05]
    assert table["recall@10"].tolist() == [0.35, 0.25, 0.2, 0.05, 0.15, 0.025]
    written = pd.read_csv(out["csv"])
    assert list(written.columns) == list(table.columns) and len(written) == 6
    markdown = out["md"].read_text()
    assert "Split: test" in markdown
    assert "Jaccard overlap of the two tracks' tags >= 0.5" in markdown
    assert "MAP@10" in markdown and "Retrieval" in markdown
    assert out["html"].read_text().count("<tr") >= 7  # a header and six rows


def test_retrieval_table(checkpoints: dict, tmp_path: Path) -> None:
    """Rows of every model's spaces, best MAP first; one chance row per dataset."""
    paths = []
    for kind in ("fcn", "lstm"):
        table = embed_tracks(checkpoint=checkpoints[kind], index=checkpoints["index"])
        rows = evaluate_retrieval(
            embeddings=table, projection=None, split="train", k=5, relevance_threshold=1.0
        )
        paths.append(tmp_path / f"{kind}.json")
        rows = [{"dataset": "synthetic", "model": kind, **r} for r in rows]
        write_json(rows, paths[-1], non_finite="null")  # as the rule: no interval is null
    out = {ext: tmp_path / f"retrieval.{ext}" for ext in ("csv", "md", "html")}
    shown = write_retrieval_table(
        metrics=paths,
        out_csv=out["csv"],
        out_md=out["md"],
        out_html=out["html"],
        split="train",
        k=5,
        relevance_threshold=1.0,
    )
    assert list(shown.columns[:10]) == [
        "dataset",
        "model",
        "space",
        "dim",
        "map@5",
        "recall@5",
        "mrr",
        "ndcg@5",
        "n_queries",
        "n_tracks",
    ]
    assert list(shown["space"]).count("random") == 1
    assert shown["map@5"].is_monotonic_decreasing
    assert shown.loc[shown["space"] == "random", "model"].item() == "(any)"
    assert pd.read_csv(out["csv"]).shape == shown.shape
    assert ">= 1.0" in out["md"].read_text()
    model_rows = shown[shown["space"] != "random"]
    for name in ("map@5", "ndcg@5"):  # intervals hold the means; the random row has none
        assert (model_rows[f"{name}_ci_low"] <= model_rows[name]).all()
        assert (model_rows[name] <= model_rows[f"{name}_ci_high"]).all()
    assert shown.loc[shown["space"] == "random", "map@5_ci_low"].isna().all()


def test_no_rows_is_a_pipeline_error(tmp_path: Path) -> None:
    out = {ext: tmp_path / f"retrieval.{ext}" for ext in ("csv", "md", "html")}
    with pytest.raises(PipelineError):
        write_retrieval_table(
            metrics=[],
            out_csv=out["csv"],
            out_md=out["md"],
            out_html=out["html"],
            split="test",
            k=5,
            relevance_threshold=0.5,
        )
