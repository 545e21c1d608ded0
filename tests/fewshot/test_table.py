"""The few-shot table (:mod:`pipeline.fewshot.table`): mean and spread over episodes per
method and shots, on hand-written episode tables with known values, written as CSV, Markdown
and HTML per dataset, model and target."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.fewshot.table import (
    FEWSHOT_COLUMNS,
    SUMMARY_COLUMNS,
    summarise_fewshot,
    write_fewshot_table,
)


def test_summarise_fewshot_known_values() -> None:
    table = pd.DataFrame(
        {
            "method": ["m", "m", "m", "n"],
            "shots": [5, 5, 5, 1],
            "episode": [0, 1, 2, 0],
            "n_support": [9, 8, 7, 2],
            "n_tags": [3, 2, 0, 1],
            "roc_auc_macro": [0.6, 0.8, np.nan, 0.9],
            "pr_auc_macro": [0.2, 0.4, np.nan, 0.5],
        }
    )
    summary = summarise_fewshot(table)
    m = summary.iloc[0]
    assert (m["method"], m["shots"], m["episodes"], m["n_tags"]) == ("m", 5, 2, 2.5)
    assert m["roc_auc_mean"] == pytest.approx(0.7) and m["roc_auc_std"] == pytest.approx(0.02**0.5)
    assert m["pr_auc_mean"] == pytest.approx(0.3)
    n = summary.iloc[1]
    assert n["episodes"] == 1 and n["roc_auc_mean"] == 0.9 and np.isnan(n["roc_auc_std"])
    with pytest.raises(PipelineError, match="roc_auc_macro"):
        summarise_fewshot(table.drop(columns="roc_auc_macro"))


def test_summary_order_and_unscored_methods() -> None:
    """Methods in their first order, shots ascending; a method never scored has no mean."""
    table = pd.DataFrame(
        {
            "method": ["z", "z", "a", "z", "a"],
            "shots": [5, 1, 1, 5, 1],
            "episode": [0, 0, 0, 1, 1],
            "n_support": [9, 2, 2, 8, 2],
            "n_tags": [2, 1, 0, 2, 0],
            "roc_auc_macro": [0.9, 0.6, np.nan, 0.7, np.nan],
            "pr_auc_macro": [0.8, 0.5, np.nan, 0.6, np.nan],
        }
    )
    summary = summarise_fewshot(table)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary[["method", "shots", "episodes"]].values.tolist() == [
        ["z", 1, 1],
        ["z", 5, 2],
        ["a", 1, 0],
    ]
    assert summary["roc_auc_mean"].iloc[1] == pytest.approx(0.8)
    assert summary["pr_auc_std"].iloc[1] == pytest.approx(0.02**0.5)
    unscored = summary.iloc[2]
    assert unscored["n_tags"] == 0.0 and np.isnan(unscored["roc_auc_mean"])
    empty = summarise_fewshot(table.iloc[:0])
    assert empty.empty and list(empty.columns) == SUMMARY_COLUMNS


def _episodes(dataset: str, model: str, target: str, rocs: list[float]) -> pd.DataFrame:
    n = len(rocs)
    return pd.DataFrame(
        {
            "dataset": dataset,
            "model": model,
            "target": target,
            "method": ["prototypes"] * n,
            "shots": [1] * n,
            "episode": list(range(n)),
            "n_support": [2] * n,
            "n_tags": [2] * n,
            "roc_auc_macro": rocs,
            "pr_auc_macro": [r / 2 for r in rocs],
        }
    )


def test_write_fewshot_table_summarises_each_model(tmp_path: Path) -> None:
    first = pd.concat(
        [_episodes("mtat", "fcn", "gtzan", [0.6, 0.8]), _episodes("mtat", "fcn", "own", [0.9])]
    )
    second = _episodes("mtat", "lstm", "gtzan", [0.7, 0.7, 0.7])
    assert set(FEWSHOT_COLUMNS) < set(first.columns)
    paths = [tmp_path / "fcn.csv", tmp_path / "lstm.csv"]
    first.to_csv(paths[0], index=False)
    second.to_csv(paths[1], index=False)
    out = {ext: tmp_path / "out" / f"fewshot.{ext}" for ext in ("csv", "md", "html")}
    table = write_fewshot_table(
        episodes=paths, out_csv=out["csv"], out_md=out["md"], out_html=out["html"], split="test"
    )
    assert list(table.columns) == ["dataset", "model", "target", *SUMMARY_COLUMNS]
    assert table[["model", "target", "episodes"]].values.tolist() == [
        ["fcn", "gtzan", 2],
        ["fcn", "own", 1],
        ["lstm", "gtzan", 3],
    ]
    np.testing.assert_allclose(table["roc_auc_mean"], [0.7, 0.9, 0.7])
    np.testing.assert_allclose(table["pr_auc_mean"], [0.35, 0.45, 0.35])
    assert table["roc_auc_std"].iloc[2] == pytest.approx(0.0)
    assert pd.read_csv(out["csv"]).shape == table.shape
    markdown = out["md"].read_text()
    assert "Few-shot tags" in markdown and "held-out test tracks" in markdown
    assert "<table>" in out["html"].read_text()
    with pytest.raises(PipelineError, match="no few-shot episodes to summarise"):
        write_fewshot_table(
            episodes=[], out_csv=out["csv"], out_md=out["md"], out_html=out["html"], split="test"
        )
