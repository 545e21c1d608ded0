"""The leaderboard: one row per (dataset, model) from each model's ``metrics.json`` and
``train_summary.json``, written as CSV, Markdown and HTML by
:func:`pipeline.evaluation.tables.write_leaderboard`.

Light on purpose (pandas, no torch, sklearn or matplotlib): the ``leaderboard`` job only
reads small JSON files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.evaluation.tables import describe_features, write_leaderboard
from pipeline.features.settings import FeatureSettings
from pipeline.io.files import read_json

__all__ = ["leaderboard_row", "write_leaderboard_from"]


def leaderboard_row(
    *,
    dataset: str,
    model: str,
    model_entry: Mapping[str, Any],
    metrics_path: Path,
    summary_path: Path,
) -> dict[str, Any]:
    """One leaderboard row from a model's ``metrics.json`` and ``train_summary.json``."""
    metrics = read_json(metrics_path)
    summary = read_json(summary_path)
    reported = metrics["aggregations"][metrics["aggregation"]]
    train = model_entry.get("train", {})
    return {
        "dataset": dataset,
        "model": model,
        "architecture": model_entry["architecture"],
        "features": model_entry["features"],
        "macro_roc_auc": reported["macro_roc_auc"],
        "macro_pr_auc": reported["macro_pr_auc"],
        "micro_roc_auc": reported["micro_roc_auc"],
        "micro_pr_auc": reported["micro_pr_auc"],
        "n_tags_evaluated": reported["n_tags_evaluated"],
        "params": summary.get("params"),
        "train_time_s": summary.get("train_time_s"),
        "split": metrics["split"],
        "aggregation": metrics["aggregation"],
        "checkpoint_selection": summary.get("selection", ""),
        "label_fraction": train.get("label_fraction", 1.0),
        "best_epoch": summary.get("best_epoch"),
        # the licence of pretrained weights the model depends on (MERT: non-commercial)
        "licence": summary.get("licence") or "",
    }


def write_leaderboard_from(
    *,
    pairs: Sequence[Sequence[str]],
    models: Mapping[str, Mapping[str, Any]],
    features: Mapping[str, Mapping[str, Any]],
    metrics: Sequence[str | Path],
    summaries: Sequence[str | Path],
    out_csv: str | Path,
    out_md: str | Path,
    out_html: str | Path,
) -> pd.DataFrame:
    """The leaderboard of all (dataset, model) pairs, from their metrics and summaries.

    ``pairs``, ``metrics`` and ``summaries`` are parallel; ``models`` and ``features`` are
    the config's sections (for the architecture and the feature settings in the caption).
    """
    rows = [
        leaderboard_row(
            dataset=dataset,
            model=model,
            model_entry=models[model],
            metrics_path=Path(m),
            summary_path=Path(s),
        )
        for (dataset, model), m, s in zip(pairs, metrics, summaries, strict=True)
    ]
    used = sorted({models[model]["features"] for _, model in pairs})
    described = {
        name: describe_features(FeatureSettings.from_dict(features[name], name=name).to_dict())
        for name in used
    }
    return write_leaderboard(
        rows=rows,
        out_csv=out_csv,
        out_md=out_md,
        out_html=out_html,
        feature_settings=described,
    )
