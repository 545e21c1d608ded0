"""The leaderboard: one row per (dataset, model) from each run's ``metrics.json`` and
``train_summary.json``, and the files of all rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.evaluation.evaluate import song_table
from pipeline.evaluation.leaderboard import leaderboard_row, merge_seeds, write_leaderboard_from
from pipeline.evaluation.metrics import label_matrix, summary_metrics
from pipeline.evaluation.tables import LEADERBOARD_COLUMNS
from pipeline.io.files import read_json, write_json


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


# -- uncertainty: bootstrap intervals, the paired test, seeds ----------------------------------

TAGS = ["a", "b", "c"]


def _labels(n: int) -> list[list[str]]:
    rng = np.random.default_rng(0)
    labels = [[t for t in TAGS if rng.random() < 0.4] for _ in range(n)]
    labels[0], labels[1] = list(TAGS), []  # every tag has a positive and a negative
    return labels


def _scored_run(
    folder: Path, *, labels: list[list[str]], scores: np.ndarray, order: np.ndarray | None = None
) -> tuple[Path, Path, Path]:
    """metrics.json (from the scores), train_summary.json and scores.parquet of one run."""
    folder.mkdir(parents=True, exist_ok=True)
    y_true = label_matrix(track_tags=labels, vocabulary=TAGS)
    summary = summary_metrics(y_true=y_true, y_score=scores, tags=TAGS)
    metrics = {"split": "test", "aggregation": "mean", "aggregations": {"mean": summary}}
    write_json(metrics, folder / "metrics.json")
    write_json({"params": 10, "train_time_s": 2.0, "selection": "best"}, folder / "summary.json")
    songs = pd.DataFrame({"track_id": [f"t{i:03d}" for i in range(len(labels))]})
    songs["labels"] = labels
    table = song_table(songs=songs, scores=scores, tags=TAGS)
    if order is not None:  # another row order: runs are matched by track id
        table = table.iloc[order]
    table.to_parquet(folder / "scores.parquet")
    return folder / "metrics.json", folder / "summary.json", folder / "scores.parquet"


def _board(tmp_path: Path, runs: dict[str, tuple[Path, Path, Path]], models: dict, **kw):
    out = {f"out_{k}": tmp_path / f"leaderboard.{k}" for k in ("csv", "md", "html", "png")}
    table = write_leaderboard_from(
        pairs=[("demo", name) for name in runs],
        models=models,
        features={"logmel": {"kind": "logmel"}},
        metrics=[m for m, _, _ in runs.values()],
        summaries=[s for _, s, _ in runs.values()],
        scores=[p for _, _, p in runs.values()],
        bootstrap={"resamples": 300, "seed": 0},
        **out,
        **kw,
    )
    return table, out


def _entry(**extra) -> dict:
    return {"architecture": "fcn", "features": "logmel", **extra}


def test_perfect_beats_random_significantly_with_intervals(tmp_path: Path) -> None:
    labels = _labels(60)
    y = label_matrix(track_tags=labels, vocabulary=TAGS)
    rng = np.random.default_rng(1)
    runs = {
        "perfect": _scored_run(tmp_path / "p", labels=labels, scores=y * 0.8 + 0.1),
        "random": _scored_run(
            tmp_path / "r", labels=labels, scores=rng.random(y.shape), order=rng.permutation(60)
        ),
    }
    models = {"perfect": _entry(), "random": _entry()}
    table, out = _board(tmp_path, runs, models)
    assert list(table["model"]) == ["perfect", "random"]
    for metric in ("macro_roc_auc", "macro_pr_auc"):
        low, high = table[f"{metric}_ci_low"], table[f"{metric}_ci_high"]
        assert (low <= table[metric]).all() and (table[metric] <= high).all()
        assert np.isfinite(low).all() and np.isfinite(high).all()
    assert table.loc[0, "macro_roc_auc_ci_low"] == table.loc[0, "macro_roc_auc_ci_high"] == 1.0
    assert (table["ci_tracks"] == 60).all()
    assert table.loc[0, "p_value_vs_second"] < 0.05
    markdown = out["out_md"].read_text(encoding="utf-8")
    assert "between perfect and random" in markdown and " is significant at 95 %" in markdown
    assert "paired bootstrap over 60 tracks, 300 resamples" in markdown
    assert out["out_png"].stat().st_size > 0
    again, _ = _board(tmp_path / "again", runs, models)  # the seed fixes every number
    pd.testing.assert_frame_equal(table, again)


def test_identical_models_are_not_significantly_different(tmp_path: Path) -> None:
    labels = _labels(40)
    scores = np.random.default_rng(2).random((40, 3))
    runs = {
        "one": _scored_run(tmp_path / "a", labels=labels, scores=scores),
        "two": _scored_run(tmp_path / "b", labels=labels, scores=scores),
    }
    table, out = _board(tmp_path, runs, {"one": _entry(), "two": _entry()})
    markdown = out["out_md"].read_text(encoding="utf-8")
    assert "is not significant at 95 % (p = 1;" in markdown
    assert table.loc[0, "p_value_vs_second"] == 1.0


def test_seeds_are_one_row_with_mean_and_std(tmp_path: Path) -> None:
    labels = _labels(50)
    rng = np.random.default_rng(3)
    y = label_matrix(track_tags=labels, vocabulary=TAGS)
    runs = {
        name: _scored_run(tmp_path / name, labels=labels, scores=y + rng.normal(size=y.shape))
        for name in ("fcn", "fcn_seed1", "fcn_seed2", "other")
    }
    models = {
        "fcn": _entry(seeds=[0, 1, 2]),
        "fcn_seed1": _entry(seed_of="fcn"),
        "fcn_seed2": _entry(seed_of="fcn"),
        "other": _entry(),
    }
    table, out = _board(tmp_path, runs, models)
    assert sorted(table["model"]) == ["fcn", "other"]
    fcn = table.set_index("model").loc["fcn"]
    aucs = [read_json(runs[n][0])["aggregations"]["mean"]["macro_roc_auc"] for n in runs]
    assert fcn["macro_roc_auc"] == pytest.approx(np.mean(aucs[:3]))
    assert fcn["macro_roc_auc_std"] == pytest.approx(np.std(aucs[:3], ddof=1))
    assert fcn["n_seeds"] == 3 and fcn["train_time_s"] == pytest.approx(6.0)
    assert fcn["macro_roc_auc_ci_low"] <= fcn["macro_roc_auc"] <= fcn["macro_roc_auc_ci_high"]
    assert table.set_index("model").loc["other", "n_seeds"] == 1
    assert "mean over the seeds" in out["out_md"].read_text(encoding="utf-8")


def test_merge_seeds_leaves_single_runs_alone() -> None:
    rows = [{"dataset": "d", "model": "m", "macro_roc_auc": 0.7}]
    assert merge_seeds(rows, seeds_of={}) == rows
