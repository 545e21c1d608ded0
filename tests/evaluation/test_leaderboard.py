"""The leaderboard: one row per (dataset, model) from each run's ``metrics.json`` and
``train_summary.json``, and the files of all rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.evaluation.leaderboard import leaderboard_row, write_leaderboard_from
from pipeline.evaluation.tables import LEADERBOARD_COLUMNS
from pipeline.io.files import write_json


def _run_files(folder: Path, *, roc: float, aggregation: str) -> tuple[Path, Path]:
    summary = {"macro_roc_auc": roc, "macro_pr_auc": roc - 0.3, "micro_roc_auc": roc + 0.01}
    summary |= {"micro_pr_auc": roc - 0.2, "n_tags_evaluated": 2}
    metrics = {"split": "test", "aggregation": aggregation, "aggregations": {aggregation: summary}}
    train = {"params": 1234, "train_time_s": 5.5, "selection": "best valid", "best_epoch": 3}
    write_json(metrics, folder / "metrics.json")
    write_json(train, folder / "train_summary.json")
    return folder / "metrics.json", folder / "train_summary.json"


def test_leaderboard_row_reads_the_reported_aggregation(tmp_path: Path) -> None:
    metrics, summary = _run_files(tmp_path, roc=0.8, aggregation="autopool")
    entry = {"architecture": "fcn", "features": "logmel", "train": {"label_fraction": 0.5}}
    row = leaderboard_row(
        dataset="demo",
        model="small",
        model_entry=entry,
        metrics_path=metrics,
        summary_path=summary,
    )
    assert set(LEADERBOARD_COLUMNS) <= set(row)
    assert row["macro_roc_auc"] == 0.8 and row["micro_pr_auc"] == pytest.approx(0.6)
    assert (row["dataset"], row["model"], row["architecture"]) == ("demo", "small", "fcn")
    assert (row["aggregation"], row["split"]) == ("autopool", "test")
    assert (row["params"], row["best_epoch"], row["label_fraction"]) == (1234, 3, 0.5)
    assert row["checkpoint_selection"] == "best valid"
    assert row["accuracy"] is None and row["dataset_split"] is None  # multi-label, not named


def test_leaderboard_states_accuracy_and_the_dataset_split(tmp_path: Path) -> None:
    metrics, summary = _run_files(tmp_path, roc=0.8, aggregation="mean")
    written = json.loads(metrics.read_text())
    written["aggregations"]["mean"] |= {"single_label": True, "accuracy": 0.625}
    write_json(written, metrics)
    out = {f"out_{k}": tmp_path / f"leaderboard.{k}" for k in ("csv", "md", "html")}
    table = write_leaderboard_from(
        pairs=[("gtzan", "fcn")],
        models={"fcn": {"architecture": "fcn", "features": "logmel"}},
        features={"logmel": {"kind": "logmel"}},
        metrics=[metrics],
        summaries=[summary],
        dataset_splits={
            "gtzan": "lists: train_filtered.txt, valid_filtered.txt, test_filtered.txt"
        },
        **out,
    )
    assert table["accuracy"].tolist() == [0.625]
    assert table["dataset_split"].iloc[0].startswith("lists: train_filtered.txt")
    markdown = out["out_md"].read_text()
    assert "0.6250" in markdown and "lists: train_filtered.txt" in markdown


def test_write_leaderboard_from_runs(tmp_path: Path) -> None:
    pairs = [("demo", "fcn"), ("demo", "mfcc_mlp")]
    files = [
        _run_files(tmp_path / "a", roc=0.7, aggregation="mean"),
        _run_files(tmp_path / "b", roc=0.9, aggregation="model"),
    ]
    models = {
        "fcn": {"architecture": "fcn", "features": "logmel"},
        "mfcc_mlp": {"architecture": "bag_of_frames", "features": "mfcc"},
    }
    features = {"logmel": {"kind": "logmel"}, "mfcc": {"kind": "mfcc", "n_mfcc": 13}}
    out = {f"out_{k}": tmp_path / f"leaderboard.{k}" for k in ("csv", "md", "html")}
    table = write_leaderboard_from(
        pairs=pairs,
        models=models,
        features=features,
        metrics=[m for m, _ in files],
        summaries=[s for _, s in files],
        **out,
    )
    assert list(table["model"]) == ["mfcc_mlp", "fcn"]  # best first
    assert list(table["label_fraction"]) == [1.0, 1.0]
    markdown = out["out_md"].read_text(encoding="utf-8")
    assert "logmel: 96 mel bands" in markdown and "mfcc: 13 MFCC" in markdown


def test_null_metrics_are_shown_as_missing(tmp_path: Path) -> None:
    """metrics.json writes null for an average over no tag: the leaderboard shows a dash."""
    metrics, summary = _run_files(tmp_path, roc=0.8, aggregation="mean")
    written = json.loads(metrics.read_text(encoding="utf-8"))
    written["aggregations"]["mean"] |= {"macro_roc_auc": None, "micro_pr_auc": None}
    metrics.write_text(json.dumps(written), encoding="utf-8")
    out = {f"out_{k}": tmp_path / f"leaderboard.{k}" for k in ("csv", "md", "html")}
    table = write_leaderboard_from(
        pairs=[("demo", "fcn")],
        models={"fcn": {"architecture": "fcn", "features": "logmel"}},
        features={"logmel": {"kind": "logmel"}},
        metrics=[metrics],
        summaries=[summary],
        **out,
    )
    assert table["macro_roc_auc"].isna().all()
    row = next(line for line in out["out_md"].read_text().splitlines() if "| fcn" in line)
    assert "–" in row and "nan" not in row.lower()
