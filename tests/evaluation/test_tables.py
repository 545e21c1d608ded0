"""The leaderboard files (CSV, Markdown, HTML) and their captions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.tables import (
    LEADERBOARD_COLUMNS,
    describe_features,
    leaderboard_caption,
    require,
    write_leaderboard,
    write_table,
)
from pipeline.features.settings import FeatureSettings
from pipeline.io.audio import WindowSettings


def _row(dataset: str, model: str, roc: float, **extra: object) -> dict:
    return {
        "dataset": dataset,
        "model": model,
        "architecture": "fcn",
        "features": "logmel",
        "macro_roc_auc": roc,
        "macro_pr_auc": roc - 0.3,
        "micro_roc_auc": roc + 0.01,
        "micro_pr_auc": roc - 0.2,
        "n_tags_evaluated": 21,
        "params": 123456,
        "train_time_s": 12.34,
        "split": "test",
        "aggregation": "mean",
        "checkpoint_selection": "best valid macro ROC-AUC",
    } | extra


def test_leaderboard_order_and_files(tmp_path: Path) -> None:
    rows = [
        _row("mtat", "fcn_small", 0.80),
        _row("demo", "crnn", 0.70, aggregation="autopool", notes="extra"),
        _row("demo", "musicnn", 0.90, params=float("nan")),
        _row("mtat", "bag_of_frames", 0.85, features="mfcc"),
        _row("demo", "broken", float("nan")),
    ]
    out = {k: tmp_path / "lb" / f"leaderboard.{k}" for k in ("csv", "md", "html")}
    settings = FeatureSettings(name="logmel", window=WindowSettings(length_s=29.1, hop_s=29.1))
    table = write_leaderboard(
        rows=rows,
        out_csv=out["csv"],
        out_md=out["md"],
        out_html=out["html"],
        feature_settings={"logmel": describe_features(settings.to_dict())},
    )
    assert list(table.columns) == [*LEADERBOARD_COLUMNS, "notes"]
    assert list(zip(table["dataset"], table["model"], strict=True)) == [
        ("demo", "musicnn"),
        ("demo", "crnn"),
        ("demo", "broken"),
        ("mtat", "bag_of_frames"),
        ("mtat", "fcn_small"),
    ]
    pd.testing.assert_frame_equal(pd.read_csv(out["csv"]), table, check_dtype=False)
    csv_lines = out["csv"].read_text().splitlines()
    assert ",21,,12.34," in csv_lines[1] and ",21,123456,12.34," in csv_lines[5]  # integers

    markdown = out["md"].read_text(encoding="utf-8")
    page = out["html"].read_text(encoding="utf-8")
    for row in rows:
        assert row["model"] in markdown and f"<td>{row['model']}</td>" in page
    assert "| **musicnn** |" in markdown and "| **bag_of_frames** |" in markdown
    assert "| demo | broken | fcn | logmel | – |" in markdown
    assert "| 0.9000 |" in markdown and "| 123,456 |" in markdown
    lines = markdown.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("| dataset | model |")))
    assert lines[0] == "# Leaderboard" and lines[2].startswith("- Split: test.")
    assert len({line.count("|") for line in lines[start:] if line}) == 1  # a rectangular table
    for text in (markdown, page):
        assert "Split: test." in text
        assert "Checkpoint selection: best valid macro ROC-AUC." in text
        assert "per row (autopool, mean" in text  # mixed aggregations are named
        assert "logmel: 96 mel bands (slaney), 16000 Hz, n_fft 512, hop 256" in text
        assert "Features: " in text and "mfcc" in text  # a set without a description: named
    assert "<caption>" in page and "<style>" in page
    for external in ("<link", "<script", "src=", "http"):
        assert external not in page


def test_leaderboard_rejects_missing_columns_and_duplicates(tmp_path: Path) -> None:
    paths = {f"out_{k}": tmp_path / f"lb.{k}" for k in ("csv", "md", "html")}
    row = _row("demo", "crnn", 0.7)
    del row["checkpoint_selection"]
    with pytest.raises(PipelineError, match="'checkpoint_selection'"):
        write_leaderboard(rows=[row], **paths)
    with pytest.raises(PipelineError, match="no rows"):
        write_leaderboard(rows=[], **paths)
    with pytest.raises(PipelineError, match=r"\('demo', 'crnn'\)"):
        write_leaderboard(rows=[_row("demo", "crnn", 0.7), _row("demo", "crnn", 0.8)], **paths)


def test_describe_mfcc_features() -> None:
    settings = FeatureSettings(name="mfcc", kind="mfcc", deltas=2).to_dict()
    assert describe_features(settings).startswith(
        "mfcc: 20 MFCC + deltas + delta-deltas of 96 mel bands, 16000 Hz"
    )


def test_write_table_marks_the_best_row_of_each_group(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "dataset": ["a", "a", "b", "b"],
            "model": ["m1", "m2", "m1", "m2"],
            "map": [0.51234, 0.7, 0.2, float("nan")],
            "n": [10, 20, 30, 40],
        }
    )
    out = {k: tmp_path / k / f"table.{k}" for k in ("csv", "md", "html")}
    write_table(
        table=table,
        out_csv=out["csv"],
        out_md=out["md"],
        out_html=out["html"],
        title="Retrieval",
        caption=["Split: test.", "k: 10."],
        best_metric="map",
        best_within=["dataset"],
        highlight="model",
    )
    pd.testing.assert_frame_equal(pd.read_csv(out["csv"]), table)
    markdown = out["md"].read_text(encoding="utf-8").splitlines()
    assert markdown[:5] == ["# Retrieval", "", "- Split: test.", "- k: 10.", ""]
    assert markdown[5:11] == [
        "| dataset | model | map | n |",
        "|---|---|---:|---:|",
        "| a | m1 | 0.5123 | 10 |",
        "| a | **m2** | 0.7 | 20 |",
        "| b | **m1** | 0.2 | 30 |",
        "| b | m2 | – | 40 |",
    ]
    page = out["html"].read_text(encoding="utf-8")
    assert "<caption>Split: test.<br>k: 10.</caption>" in page
    assert page.count("<tr class=best>") == 2
    assert "<tr class=best><td>a</td><td>m2</td>" in page


def test_write_table_without_groups_and_its_errors(tmp_path: Path) -> None:
    paths = {f"out_{k}": tmp_path / f"t.{k}" for k in ("csv", "md", "html")}
    table = pd.DataFrame({"model": ["x", "y"], "score": [0.3, 0.9]})
    common = {"title": "T", "caption": [], "best_metric": "score", "highlight": "model"}
    write_table(table=table, **paths, **common, best_within=[])
    assert "| **y** | 0.9 |" in paths["out_md"].read_text(encoding="utf-8")
    with pytest.raises(PipelineError, match="table 'T' has no rows"):
        write_table(table=table.iloc[:0], **paths, **common, best_within=[])
    with pytest.raises(PipelineError, match=r"table 'T' lacks column\(s\) \['dataset'\]"):
        write_table(table=table, **paths, **common, best_within=["dataset"])


def test_require_lists_missing_and_present_columns() -> None:
    frame = pd.DataFrame({"a": [1], "b": [2]})
    require(frame, ["a", "b"], what="x")
    with pytest.raises(PipelineError, match=r"x lacks column\(s\) \['c'\]; it has \['a', 'b'\]"):
        require(frame, ["c", "a"], what="x")


def test_caption_states_one_value_or_each_rows_own() -> None:
    table = pd.DataFrame(
        [
            _row("demo", "crnn", 0.7),
            _row("demo", "fcn", 0.8, aggregation="autopool", features="mfcc"),
        ]
    )
    caption = leaderboard_caption(table, feature_settings={"logmel": "logmel: 96 bands"})
    text = "\n".join(caption)
    assert "Split: test." in caption
    assert "Checkpoint selection: best valid macro ROC-AUC." in caption
    assert "per row (autopool, mean" in text
    assert "logmel: 96 bands" in text and "mfcc" in text
