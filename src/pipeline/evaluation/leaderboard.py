"""The leaderboard: one row per (dataset, model) from each model's ``metrics.json`` and
``train_summary.json``, written as CSV, Markdown and HTML by
:func:`pipeline.evaluation.tables.write_leaderboard`.

Uncertainty (:mod:`pipeline.evaluation.bootstrap`): with each model's song scores
(``evaluation/scores.parquet``) every row gets a bootstrap confidence interval of its macro
ROC-AUC and PR-AUC over the evaluated tracks, and the top two rows of each dataset are
compared by a paired bootstrap test (the same resampled tracks for both), stated in words
in the Markdown and HTML. A model trained with several ``seeds`` is one row: the mean of
its runs' metrics, their standard deviation (``*_std``), and intervals of that mean (each
resample scores every run on the same tracks).

No torch: the ``leaderboard`` job reads small JSON files and one score table per run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError
from pipeline.evaluation.bootstrap import (
    BootstrapSettings,
    bootstrap_macro_auc,
    interval,
    paired_test,
    resample_counts,
)
from pipeline.evaluation.plots import plot_leaderboard
from pipeline.evaluation.tables import describe_features, write_leaderboard
from pipeline.features.settings import FeatureSettings
from pipeline.io.files import read_json

__all__ = [
    "RunScores",
    "leaderboard_row",
    "merge_seeds",
    "row_uncertainty",
    "compare_top_two",
    "write_leaderboard_from",
]

#: Metrics averaged over a model's seeds (and given a standard deviation).
SEED_METRICS = ("macro_roc_auc", "macro_pr_auc", "micro_roc_auc", "micro_pr_auc", "accuracy")
#: Metrics given a bootstrap interval (``<metric>_ci_low``, ``<metric>_ci_high``).
CI_METRICS = ("macro_roc_auc", "macro_pr_auc")


def leaderboard_row(
    *,
    dataset: str,
    model: str,
    model_entry: Mapping[str, Any],
    metrics_path: Path,
    summary_path: Path,
    dataset_split: str | None = None,
) -> dict[str, Any]:
    """One leaderboard row from a model's ``metrics.json`` and ``train_summary.json``.

    ``accuracy`` is the argmax accuracy of single-label datasets (None for multi-label
    ones); ``dataset_split`` names the dataset's split (``clean (Won et al. 2020...)``,
    ``split-0``, ``lists: ...``; :func:`pipeline.datasets.split_description`).
    """
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
        "accuracy": reported.get("accuracy"),
        "params": summary.get("params"),
        "train_time_s": summary.get("train_time_s"),
        "split": metrics["split"],
        "dataset_split": dataset_split,
        "aggregation": metrics["aggregation"],
        "checkpoint_selection": summary.get("selection", ""),
        "label_fraction": train.get("label_fraction", 1.0),
        "best_epoch": summary.get("best_epoch"),
        # the licence of pretrained weights the model depends on (MERT: non-commercial)
        "licence": summary.get("licence") or "",
    }


@dataclass(frozen=True)
class RunScores:
    """One run's song scores on the evaluated split (``evaluation/scores.parquet``)."""

    track_ids: np.ndarray  # (n,) str
    y_true: np.ndarray  # (n, n_tags) 0/1
    y_score: np.ndarray  # (n, n_tags)

    @classmethod
    def read(cls, path: str | Path) -> RunScores:
        table = pd.read_parquet(path)
        if "track_id" not in table or "labels" not in table:
            raise PipelineError(f"{str(path)!r}: a scores table needs track_id and labels columns")
        tags = [c for c in table.columns if c not in ("track_id", "labels")]
        column = {tag: k for k, tag in enumerate(tags)}
        y_true = np.zeros((len(table), len(tags)), dtype=np.int8)
        for i, labels in enumerate(table["labels"]):
            for tag in labels:
                if tag in column:
                    y_true[i, column[tag]] = 1
        y_score = table[tags].to_numpy(np.float64)
        if not np.isfinite(y_score).all():
            raise PipelineError(f"{str(path)!r}: scores are not finite")
        return cls(table["track_id"].astype(str).to_numpy(), y_true, y_score)

    def rows(self, tracks: np.ndarray) -> np.ndarray:
        """Row of each of ``tracks`` (all present) in this table."""
        where = pd.Index(self.track_ids).get_indexer(tracks)
        return np.asarray(where)


def _common_tracks(runs: Sequence[RunScores]) -> np.ndarray:
    """Track ids scored by every run, sorted (the resampling is over this list)."""
    common = set(runs[0].track_ids)
    for run in runs[1:]:
        common &= set(run.track_ids)
    return np.array(sorted(common), dtype=object)


def _resampled(
    runs: Sequence[RunScores], *, tracks: np.ndarray, settings: BootstrapSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Macro ROC-AUC and PR-AUC of each resample of ``tracks``, averaged over the runs
    (seeds) of one model, every run scored on the same resampled tracks.

    Returns
    -------
    roc_auc, pr_auc : np.ndarray, shape (resamples,)
    """
    weights = resample_counts(len(tracks), resamples=settings.resamples, seed=settings.seed)
    rocs, prs = [], []
    for run in runs:
        rows = run.rows(tracks)
        roc, pr = bootstrap_macro_auc(run.y_true[rows], run.y_score[rows], weights)
        rocs.append(roc)
        prs.append(pr)
    return np.mean(rocs, axis=0), np.mean(prs, axis=0)


def row_uncertainty(
    runs: Sequence[RunScores], *, settings: BootstrapSettings
) -> dict[str, float | int]:
    """Bootstrap intervals of one leaderboard row (all its seeds' runs).

    Returns
    -------
    dict
        ``macro_roc_auc_ci_low``, ``macro_roc_auc_ci_high``, ``macro_pr_auc_ci_low``,
        ``macro_pr_auc_ci_high`` (NaN where no resample can be scored) and ``ci_tracks``
        (the tracks resampled: those every run scored).
    """
    tracks = _common_tracks(runs)
    if len(tracks) == 0:
        raise PipelineError("the runs of a leaderboard row share no evaluated track")
    roc, pr = _resampled(runs, tracks=tracks, settings=settings)
    out: dict[str, float | int] = {}
    for name, values in zip(CI_METRICS, (roc, pr), strict=True):
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = interval(
            values, confidence=settings.confidence
        )
    out["ci_tracks"] = len(tracks)
    return out


def compare_top_two(
    *,
    names: tuple[str, str],
    runs: tuple[Sequence[RunScores], Sequence[RunScores]],
    points: tuple[float, float],
    settings: BootstrapSettings,
) -> dict[str, Any]:
    """Paired bootstrap test of the macro ROC-AUC of two rows on their common tracks.

    Returns
    -------
    dict
        ``first``, ``second``, ``difference`` (of the point estimates), the keys of
        :func:`pipeline.evaluation.bootstrap.paired_test`, ``n_tracks``, ``resamples``
        and ``sentence`` (the result in words).
    """
    tracks = _common_tracks([*runs[0], *runs[1]])
    if len(tracks) == 0:
        raise PipelineError(f"models {names[0]!r} and {names[1]!r} share no evaluated track")
    first, _ = _resampled(runs[0], tracks=tracks, settings=settings)
    second, _ = _resampled(runs[1], tracks=tracks, settings=settings)
    test = paired_test(first, second, confidence=settings.confidence)
    level = f"{100 * settings.confidence:g} %"
    difference = points[0] - points[1]
    verdict = "is" if test["significant"] else "is not"
    sentence = (
        f"The difference in macro ROC-AUC between {names[0]} and {names[1]} "
        f"({_signed(difference)}, {level} CI [{_signed(test['difference_ci_low'])}, "
        f"{_signed(test['difference_ci_high'])}]) {verdict} significant at {level} "
        f"(p = {test['p_value']:.3g}; paired bootstrap over {len(tracks)} tracks, "
        f"{settings.resamples} resamples)."
    )
    return {
        "first": names[0],
        "second": names[1],
        "difference": difference,
        **test,
        "n_tracks": len(tracks),
        "resamples": settings.resamples,
        "sentence": sentence,
    }


def _signed(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:+.4f}"


def merge_seeds(
    rows: Sequence[Mapping[str, Any]], *, seeds_of: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One row per (dataset, model) from the rows of each of its seeds' runs.

    Parameters
    ----------
    rows : sequence of dicts
        :func:`leaderboard_row` of every run; a run of an extra seed is named after its model
        in ``seeds_of``.
    seeds_of : mapping of str to str
        Run name -> the model it is a seed of (runs not in it are models of their own).

    Returns
    -------
    list of dict
        Rows in first-seen order. When any model has several seeds, every row gets
        ``n_seeds`` and, per metric of :data:`SEED_METRICS`, the mean over its seeds in the
        metric's column and the (sample, ``ddof=1``) standard deviation in ``<metric>_std``
        (NaN for a single seed); ``train_time_s`` is summed over the seeds; the other
        columns (parameters, best epoch, ...) are those of the model's first seed.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        model = seeds_of.get(row["model"], row["model"])
        groups.setdefault((row["dataset"], model), []).append(row)
    if all(len(group) == 1 for group in groups.values()):
        return [dict(group[0]) for group in groups.values()]
    merged = []
    for (_, model), group in groups.items():
        base = next((r for r in group if r["model"] == model), group[0])
        row = dict(base)
        for metric in SEED_METRICS:
            values = pd.to_numeric(pd.Series([r[metric] for r in group]), errors="coerce")
            row[metric] = float(values.mean()) if values.notna().any() else np.nan
            row[f"{metric}_std"] = float(values.std(ddof=1)) if values.notna().sum() > 1 else np.nan
        times = pd.to_numeric(pd.Series([r["train_time_s"] for r in group]), errors="coerce")
        row["train_time_s"] = float(times.sum()) if times.notna().all() else np.nan
        row["n_seeds"] = len(group)
        merged.append(row)
    return merged


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
    scores: Sequence[str | Path] | None = None,
    bootstrap: Mapping[str, Any] | None = None,
    out_png: str | Path | None = None,
    dataset_splits: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The leaderboard of all (dataset, model) pairs, from their metrics and summaries.

    ``pairs``, ``metrics``, ``summaries`` (and ``scores``) are parallel; ``models`` and
    ``features`` are the config's sections (for the architecture and the feature settings in
    the caption; a model entry with ``seed_of`` is an extra seed of that model, merged into
    its row by :func:`merge_seeds`). With ``scores`` (each run's ``evaluation/scores.parquet``)
    the rows get bootstrap intervals and the top two rows of each dataset a paired test
    (``bootstrap``: the config's ``evaluation.bootstrap``); ``out_png`` receives
    :func:`pipeline.evaluation.plots.plot_leaderboard`; ``dataset_splits`` names each
    dataset's split (``dataset_split`` column).
    """
    rows = [
        leaderboard_row(
            dataset=dataset,
            model=model,
            model_entry=models[model],
            metrics_path=Path(m),
            summary_path=Path(s),
            dataset_split=(dataset_splits or {}).get(dataset),
        )
        for (dataset, model), m, s in zip(pairs, metrics, summaries, strict=True)
    ]
    seeds_of = {name: str(e["seed_of"]) for name, e in models.items() if e.get("seed_of")}
    merged = merge_seeds(rows, seeds_of=seeds_of)
    notes: list[str] = []
    if scores is not None:
        settings = BootstrapSettings.from_dict(dict(bootstrap or {}))
        runs: dict[tuple[str, str], list[RunScores]] = {}
        for (dataset, model), path in zip(pairs, scores, strict=True):
            key = (dataset, seeds_of.get(model, model))
            runs.setdefault(key, []).append(RunScores.read(path))
        for row in merged:
            row.update(row_uncertainty(runs[(row["dataset"], row["model"])], settings=settings))
        notes = _comparisons(merged, runs=runs, settings=settings)
        notes.insert(
            0,
            f"Intervals (*_ci_low, *_ci_high): {100 * settings.confidence:g} % percentile "
            f"bootstrap over the evaluated tracks ({settings.resamples} resamples, seed "
            f"{settings.seed}); a tag without a positive or a negative in a resample is "
            "skipped in it.",
        )
    if any("n_seeds" in row for row in merged):
        notes.append(
            "Models with several seeds: metrics are the mean over the seeds, *_std their "
            "standard deviation, and the intervals those of the mean."
        )
    used = sorted({models[model]["features"] for _, model in pairs})
    described = {
        name: describe_features(FeatureSettings.from_dict(features[name], name=name).to_dict())
        for name in used
    }
    table = write_leaderboard(
        rows=merged,
        out_csv=out_csv,
        out_md=out_md,
        out_html=out_html,
        feature_settings=described,
        notes=notes,
    )
    if out_png is not None:
        plot_leaderboard(table=table, out_png=out_png)
    return table


def _comparisons(
    rows: Sequence[dict[str, Any]],
    *,
    runs: Mapping[tuple[str, str], Sequence[RunScores]],
    settings: BootstrapSettings,
) -> list[str]:
    """The paired test of the top two rows (by macro ROC-AUC) of each dataset, in words; the
    best row gets ``p_value_vs_second``."""
    sentences = []
    for dataset in sorted({row["dataset"] for row in rows}):
        ranked = sorted(
            (r for r in rows if r["dataset"] == dataset and np.isfinite(_number(r))),
            key=lambda r: (-_number(r), r["model"]),
        )
        if len(ranked) < 2:
            continue
        top, second = ranked[0], ranked[1]
        result = compare_top_two(
            names=(top["model"], second["model"]),
            runs=(runs[(dataset, top["model"])], runs[(dataset, second["model"])]),
            points=(_number(top), _number(second)),
            settings=settings,
        )
        top["p_value_vs_second"] = result["p_value"]
        sentences.append(f"{dataset}: {result['sentence']}")
    return sentences


def _number(row: Mapping[str, Any]) -> float:
    value = pd.to_numeric(pd.Series([row["macro_roc_auc"]]), errors="coerce").iloc[0]
    return float(value)
