"""The evaluation plots (PNG): per-tag AUC bars, ROC and PR curves, training curves, taggrams.

Plots are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas (no
``pyplot`` state, no display needed), so they are safe in parallel jobs and on headless
cluster nodes. The tables are in :mod:`pipeline.evaluation.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import PER_TAG_COLUMNS
from pipeline.evaluation.tables import HISTORY_COLUMNS, require

__all__ = [
    "plot_curves",
    "plot_layer_scores",
    "plot_leaderboard",
    "plot_per_tag_auc",
    "plot_taggram",
    "plot_training_curves",
]


def plot_per_tag_auc(*, per_tag: pd.DataFrame, out_png: str | Path, title: str) -> None:
    """Bars of ROC-AUC and PR-AUC per tag, with the chance level of each.

    Parameters
    ----------
    per_tag : pd.DataFrame
        Output of :func:`pipeline.evaluation.metrics.per_tag_metrics` (:data:`PER_TAG_COLUMNS`).
    out_png : str or Path
    title : str

    Notes
    -----
    Chance is 0.5 for ROC-AUC (a dashed line) and the tag's prevalence for PR-AUC (a black
    tick on each bar); the panel titles say so. Each tag is labelled with its number of
    positives; tags that could not be evaluated show "n/a".
    """
    require(per_tag, PER_TAG_COLUMNS, what="per_tag")
    n = len(per_tag)
    if n == 0:
        raise PipelineError("per_tag has no rows to plot")
    y = np.arange(n)
    prevalence = per_tag["n_positive"] / (per_tag["n_positive"] + per_tag["n_negative"])
    fig = _figure(width=10.0, height=1.2 + 0.28 * n)
    axes = fig.subplots(1, 2, sharey=True)
    panels = [
        ("roc_auc", "ROC-AUC", "tab:blue", "chance 0.5: dashed"),
        ("pr_auc", "PR-AUC", "tab:orange", "chance = prevalence: ticks"),
    ]
    for ax, (column, label, color, chance) in zip(axes, panels, strict=True):
        values = per_tag[column].to_numpy(dtype=float)
        ax.barh(y, np.nan_to_num(values), color=color, height=0.7)
        for k in np.flatnonzero(~np.isfinite(values)):
            ax.text(0.01, k, "n/a", va="center", fontsize=8, color="grey")
        ax.set_xlim(0, 1)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
        mean = np.nanmean(values) if np.isfinite(values).any() else float("nan")
        ax.set_title(f"{label}: macro {mean:.3f} ({chance})", fontsize=10)
    axes[0].axvline(0.5, color="k", linestyle="--", linewidth=1)
    axes[1].scatter(prevalence, y, marker="|", s=120, color="k", zorder=3)
    labels = [f"{t} ({n})" for t, n in zip(per_tag["tag"], per_tag["n_positive"], strict=True)]
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    fig.suptitle(title)
    _save(fig, out_png)


def plot_curves(
    *,
    y_true: np.ndarray,
    y_score: np.ndarray,
    tags: Sequence[str],
    out_png: str | Path,
    max_tags: int = 10,
    title: str = "",
) -> None:
    """ROC and precision-recall curves for up to ``max_tags`` tags.

    Parameters
    ----------
    y_true : np.ndarray, shape (n_tracks, n_tags)
        Binary labels.
    y_score : np.ndarray, shape (n_tracks, n_tags)
        Scores (song-level probabilities).
    tags : sequence of str, length n_tags
    out_png : str or Path
    max_tags : int
        The most frequent evaluable tags (ties: vocabulary order) are drawn.
    title : str
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape != y_score.shape or y_true.ndim != 2 or y_true.shape[1] != len(tags):
        raise PipelineError(
            f"y_true {y_true.shape}, y_score {y_score.shape} and {len(tags)} tags do not match"
        )
    positives = y_true.sum(axis=0)
    evaluable = np.flatnonzero((positives > 0) & (positives < len(y_true)))
    chosen = evaluable[np.argsort(-positives[evaluable], kind="stable")][:max_tags]
    fig = _figure(width=12.0, height=5.5)
    roc_ax, pr_ax = fig.subplots(1, 2)
    colors = [f"C{i}" for i in range(10)]
    for i, k in enumerate(chosen):
        color = colors[i % len(colors)]
        fpr, tpr, _ = roc_curve(y_true[:, k], y_score[:, k])
        precision, recall, _ = precision_recall_curve(y_true[:, k], y_score[:, k])
        roc_auc = float(np.trapezoid(tpr, fpr))
        ap = float(-np.sum(np.diff(recall) * precision[:-1]))  # as average_precision_score
        roc_ax.plot(fpr, tpr, color=color, label=f"{tags[k]} ({roc_auc:.2f})")
        pr_ax.step(recall, precision, where="post", color=color, label=f"{tags[k]} ({ap:.2f})")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (AUC)")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (AP)")
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if len(chosen):
            ax.legend(fontsize=8, loc="lower right" if ax is roc_ax else "lower left")
    if not len(chosen):
        roc_ax.text(0.5, 0.5, "no tag with positives and negatives", ha="center")
    if title:
        fig.suptitle(title)
    _save(fig, out_png)


def plot_training_curves(
    *, history: pd.DataFrame | str | Path, out_png: str | Path, title: str = ""
) -> None:
    """Losses, validation metrics and learning rate over the epochs of a training run.

    Parameters
    ----------
    history : pd.DataFrame or path of ``history.csv``
        :data:`HISTORY_COLUMNS`, one row per epoch.
    out_png : str or Path
    title : str
    """
    if not isinstance(history, pd.DataFrame):
        path = Path(history)
        if not path.is_file():
            raise PipelineError(f"training history {str(path)!r} does not exist")
        history = pd.read_csv(path)
    require(history, HISTORY_COLUMNS, what="history")
    epoch = history["epoch"].to_numpy()
    fig = _figure(width=13.0, height=4.0)
    loss_ax, metric_ax, lr_ax = fig.subplots(1, 3)
    loss_ax.plot(epoch, history["train_loss"], marker="o", markersize=3, label="train")
    loss_ax.plot(epoch, history["valid_loss"], marker="o", markersize=3, label="valid")
    loss_ax.set(xlabel="epoch", ylabel="BCE loss", title="Loss")
    metric_ax.plot(epoch, history["valid_roc_auc"], marker="o", markersize=3, label="ROC-AUC")
    metric_ax.plot(epoch, history["valid_pr_auc"], marker="o", markersize=3, label="PR-AUC")
    metric_ax.set(xlabel="epoch", ylabel="macro average", title="Validation metrics")
    valid = history["valid_roc_auc"].to_numpy(dtype=float)
    if np.isfinite(valid).any():
        best = int(np.nanargmax(valid))
        metric_ax.axvline(epoch[best], color="grey", linestyle=":", label=f"best ({epoch[best]})")
    lr = history["lr"].to_numpy(dtype=float)
    lr_ax.plot(epoch, lr, marker="o", markersize=3, color="tab:green")
    if (lr > 0).all():
        lr_ax.set_yscale("log")
    total = float(np.nansum(history["seconds"].to_numpy(dtype=float)))
    lr_ax.set(xlabel="epoch", ylabel="learning rate", title=f"Learning rate ({total:.0f} s total)")
    for ax in (loss_ax, metric_ax, lr_ax):
        ax.grid(alpha=0.3)
    loss_ax.legend(fontsize=8)
    metric_ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    _save(fig, out_png)


def plot_taggram(
    *,
    probabilities: np.ndarray,
    window_start_s: np.ndarray,
    tags: Sequence[str],
    out_png: str | Path,
    title: str,
    window_hop_s: float | None = None,
) -> None:
    """A taggram: tag probabilities of each window of one track over time.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_windows, n_tags)
        Window-level probabilities in [0, 1].
    window_start_s : np.ndarray, shape (n_windows,)
        Start of each window in the track (increasing).
    tags : sequence of str, length n_tags
    out_png : str or Path
    title : str
    window_hop_s : float, optional
        Width of a cell in seconds; default the median step between window starts (or 1 s
        for a single window). Each cell spans its window's start to the next window's start.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    starts = np.asarray(window_start_s, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape != (len(starts), len(tags)):
        raise PipelineError(
            f"probabilities {probabilities.shape} must be (n_windows, n_tags) = "
            f"({len(starts)}, {len(tags)})"
        )
    if len(starts) == 0 or (np.diff(starts) <= 0).any():
        raise PipelineError(f"window_start_s must be non-empty and increasing: {starts!r}")
    if window_hop_s is None:
        window_hop_s = float(np.median(np.diff(starts))) if len(starts) > 1 else 1.0
    edges = np.r_[starts, starts[-1] + window_hop_s]
    n_tags = len(tags)
    fig = _figure(width=min(4.0 + 0.25 * len(starts), 14.0), height=1.5 + 0.25 * n_tags)
    ax = fig.subplots()
    mesh = ax.pcolormesh(
        edges, np.arange(n_tags + 1), probabilities.T, vmin=0.0, vmax=1.0, cmap="viridis"
    )
    ax.set_yticks(np.arange(n_tags) + 0.5, [str(t) for t in tags])
    ax.invert_yaxis()
    ax.set_xlabel("time in the track (s; each cell from its start to the next)")
    ax.set_title(title)
    fig.colorbar(mesh, ax=ax, label="probability", fraction=0.05, pad=0.02)
    _save(fig, out_png)


def plot_leaderboard(*, table: pd.DataFrame, out_png: str | Path) -> None:
    """Macro ROC-AUC and PR-AUC of every leaderboard row, with their bootstrap intervals.

    Parameters
    ----------
    table : pd.DataFrame
        The leaderboard (:func:`pipeline.evaluation.tables.write_leaderboard`): ``dataset``,
        ``model``, ``macro_roc_auc``, ``macro_pr_auc`` and, when known,
        ``<metric>_ci_low`` / ``<metric>_ci_high`` (drawn as error bars) and ``<metric>_std``
        (over seeds, drawn as a thicker bar). Rows in table order, top to bottom; a missing
        value is left out.
    out_png : str or Path
    """
    require(table, ["dataset", "model", "macro_roc_auc", "macro_pr_auc"], what="leaderboard")
    if table.empty:
        raise PipelineError("the leaderboard has no rows to plot")
    n = len(table)
    y = np.arange(n)
    labels = [f"{d} / {m}" for d, m in zip(table["dataset"], table["model"], strict=True)]
    fig = _figure(width=10.0, height=1.4 + 0.35 * n)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (metric, label, color) in zip(
        axes,
        [
            ("macro_roc_auc", "macro ROC-AUC", "tab:blue"),
            ("macro_pr_auc", "macro PR-AUC", "tab:orange"),
        ],
        strict=True,
    ):
        value = pd.to_numeric(table[metric], errors="coerce").to_numpy(float)
        known = np.isfinite(value)
        if f"{metric}_ci_low" in table and f"{metric}_ci_high" in table:
            low = pd.to_numeric(table[f"{metric}_ci_low"], errors="coerce").to_numpy(float)
            high = pd.to_numeric(table[f"{metric}_ci_high"], errors="coerce").to_numpy(float)
            bars = known & np.isfinite(low) & np.isfinite(high)
            err = np.vstack([value - low, high - value])[:, bars].clip(min=0.0)
            ax.errorbar(value[bars], y[bars], xerr=err, fmt="none", ecolor="grey", capsize=3)
        if f"{metric}_std" in table:
            std = pd.to_numeric(table[f"{metric}_std"], errors="coerce").to_numpy(float)
            spread = known & np.isfinite(std)
            ax.errorbar(
                value[spread], y[spread], xerr=std[spread], fmt="none", ecolor=color, elinewidth=4
            )
        ax.plot(value[known], y[known], "o", color=color)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, labels)
    axes[0].invert_yaxis()
    axes[0].set_title("ROC-AUC (thin bars: bootstrap CI; thick: std over seeds)", fontsize=9)
    axes[1].set_title("PR-AUC", fontsize=9)
    _save(fig, out_png)


def _figure(*, width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, min(height, 40.0)), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_png: str | Path) -> None:
    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)


def plot_layer_scores(*, table: pd.DataFrame, out_png: str | Path, title: str) -> None:
    """Validation macro ROC-AUC and PR-AUC of one probe per encoder layer, the best marked.

    Parameters
    ----------
    table : pd.DataFrame
        ``layer``, ``hidden_state``, ``best_valid_roc_auc``, ``best_valid_pr_auc`` (NaN or
        None where a score is undefined).
    out_png : str or Path
    title : str
    """
    require(
        table, ["layer", "hidden_state", "best_valid_roc_auc", "best_valid_pr_auc"], what="table"
    )
    if table.empty:
        raise PipelineError("the layer table has no rows to plot")
    x = table["hidden_state"].to_numpy(dtype=int)
    fig = _figure(width=7.0, height=3.6)
    axes = fig.subplots(1, 2, sharex=True)
    for ax, (column, label) in zip(
        axes,
        [("best_valid_roc_auc", "macro ROC-AUC"), ("best_valid_pr_auc", "macro PR-AUC")],
        strict=True,
    ):
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        ax.plot(x, values, marker="o")
        if np.isfinite(values).any():
            k = int(np.nanargmax(values))
            ax.scatter([x[k]], [values[k]], s=120, facecolors="none", edgecolors="r", zorder=3)
            ax.set_title(f"{label}: best layer {x[k]} ({values[k]:.3f})", fontsize=10)
        ax.set_xlabel("hidden state (layer)")
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    _save(fig, out_png)
