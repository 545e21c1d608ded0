"""The evaluation plots: per-tag AUC bars, ROC/PR curves, training curves, taggrams."""

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
from tests.helpers.images import is_png

TAGS = ["piano", "violin", "fast", "slow", "minor"]


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray]:
    """Labels (40, 5) with a tag without positives, and scores that mostly follow them."""
    rng = np.random.default_rng(0)
    y = (rng.random((40, len(TAGS))) < 0.3).astype(int)
    y[:, 4] = 0
    return y, np.clip(0.5 * y + rng.random(y.shape) * 0.7, 0, 1)


def test_plot_per_tag_auc(tmp_path: Path, scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scores
    per_tag = per_tag_metrics(y_true=y, y_score=s, tags=TAGS)
    out = tmp_path / "plots" / "per_tag.png"
    plot_per_tag_auc(per_tag=per_tag, out_png=out, title="demo / crnn: test split")
    assert is_png(out)
    with pytest.raises(PipelineError, match="'pr_auc'"):
        plot_per_tag_auc(per_tag=per_tag.drop(columns="pr_auc"), out_png=out, title="x")


def test_plot_curves(tmp_path: Path, scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scores
    out = tmp_path / "curves.png"
    plot_curves(y_true=y, y_score=s, tags=TAGS, out_png=out, title="demo / crnn")
    assert is_png(out)


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
    assert is_png(out)
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
    assert is_png(out)
    single = tmp_path / "taggram_single.png"
    plot_taggram(
        probabilities=probabilities[:1],
        window_start_s=starts[:1],
        tags=TAGS,
        out_png=single,
        title="one window",
    )
    assert is_png(single)
    with pytest.raises(PipelineError, match="increasing"):
        plot_taggram(
            probabilities=probabilities[:2],
            window_start_s=starts[[1, 0]],
            tags=TAGS,
            out_png=out,
            title="t",
        )
