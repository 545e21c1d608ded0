"""The leaderboard files and the evaluation plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import per_tag_metrics
from pipeline.evaluation.plots import (
    plot_curves,
    plot_per_tag_auc,
    plot_taggram,
    plot_training_curves,
)
from pipeline.evaluation.tables import LEADERBOARD_COLUMNS, describe_features, write_leaderboard
from pipeline.features.settings import FeatureSettings
from pipeline.io.audio import WindowSettings

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TAGS = ["piano", "violin", "fast", "slow", "minor"]


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


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_SIGNATURE


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray]:
    """Labels (40, 5) with a tag without positives, and scores that mostly follow them."""
    rng = np.random.default_rng(0)
    y = (rng.random((40, len(TAGS))) < 0.3).astype(int)
    y[:, 4] = 0
    return y, np.clip(0.5 * y + rng.random(y.shape) * 0.7, 0, 1)


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


def test_plot_per_tag_auc(tmp_path: Path, scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scores
    per_tag = per_tag_metrics(y_true=y, y_score=s, tags=TAGS)
    out = tmp_path / "plots" / "per_tag.png"
    plot_per_tag_auc(per_tag=per_tag, out_png=out, title="demo / crnn: test split")
    assert _is_png(out)
    with pytest.raises(PipelineError, match="'pr_auc'"):
        plot_per_tag_auc(per_tag=per_tag.drop(columns="pr_auc"), out_png=out, title="x")


def test_plot_curves(tmp_path: Path, scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scores
    out = tmp_path / "curves.png"
    plot_curves(y_true=y, y_score=s, tags=TAGS, out_png=out, title="demo / crnn")
    assert _is_png(out)


def test_plot_training_curves_from_csv(tmp_path: Path) -> None:
    epochs = np.arange(1, 9)
    history = pd.DataFrame(
        {
            "epoch": epochs,
            "train_loss": 0.7 / epochs,
            "valid_loss": 0.6 / epochs + 0.02 * epochs,
            "valid_roc_auc": 0.9 - 0.3 / epochs,
            "valid_pr_auc": 0.6 - 0.3 / epochs,
            "lr": 1e-3 * 0.5 ** (epochs // 3),
            "seconds": np.full(8, 3.5),
        }
    )
    history.to_csv(tmp_path / "history.csv", index=False)
    out = tmp_path / "training.png"
    plot_training_curves(history=tmp_path / "history.csv", out_png=out, title="demo / crnn")
    assert _is_png(out)
    with pytest.raises(PipelineError, match="does not exist"):
        plot_training_curves(history=tmp_path / "missing.csv", out_png=out)


def test_plot_taggram(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    probabilities = rng.random((12, len(TAGS)))
    starts = np.arange(12) * 14.55
    out = tmp_path / "taggram.png"
    plot_taggram(
        probabilities=probabilities, window_start_s=starts, tags=TAGS, out_png=out, title="t"
    )
    assert _is_png(out)
    single = tmp_path / "taggram_single.png"
    plot_taggram(
        probabilities=probabilities[:1],
        window_start_s=starts[:1],
        tags=TAGS,
        out_png=single,
        title="one window",
    )
    assert _is_png(single)
    with pytest.raises(PipelineError, match="increasing"):
        plot_taggram(
            probabilities=probabilities[:2],
            window_start_s=starts[[1, 0]],
            tags=TAGS,
            out_png=out,
            title="t",
        )
