"""The leaderboard (CSV, Markdown, self-contained HTML) and the evaluation plots (PNG).

Every table states the split, the song-level aggregation, the feature settings and the
checkpoint selection it was computed with, as a caption. Plots are drawn on
:class:`matplotlib.figure.Figure` objects with the Agg canvas (no ``pyplot`` state, no
display needed), so they are safe in parallel jobs and on headless cluster nodes.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from pipeline.errors import PipelineError
from pipeline.metrics import PER_TAG_COLUMNS

__all__ = [
    "HISTORY_COLUMNS",
    "LEADERBOARD_COLUMNS",
    "describe_features",
    "leaderboard_caption",
    "plot_curves",
    "plot_per_tag_auc",
    "plot_taggram",
    "plot_training_curves",
    "write_leaderboard",
    "write_table",
]

#: Columns every leaderboard row must have, in table order (extra columns follow them).
LEADERBOARD_COLUMNS = [
    "dataset",
    "model",
    "architecture",
    "features",
    "macro_roc_auc",
    "macro_pr_auc",
    "micro_roc_auc",
    "micro_pr_auc",
    "n_tags_evaluated",
    "params",
    "train_time_s",
    "split",
    "aggregation",
    "checkpoint_selection",
]

#: Columns of a training run's ``history.csv``.
HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "valid_loss",
    "valid_roc_auc",
    "valid_pr_auc",
    "lr",
    "seconds",
]

# Columns shown in Markdown/HTML as metrics (4 decimals); the best per dataset is bold.
_METRICS = ["macro_roc_auc", "macro_pr_auc", "micro_roc_auc", "micro_pr_auc"]
# What the caption states, with its wording.
_CAPTION_FIELDS = {
    "split": "split",
    "aggregation": "song-level aggregation",
    "checkpoint_selection": "checkpoint selection",
}

# How the feature rows of each kind are described (one entry per kind, no if/elif).
_BINS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "logmel": lambda s: f"{s.get('n_mels')} mel bands ({s.get('mel_scale', 'slaney')})",
    "mfcc": lambda s: (
        f"{s.get('n_mfcc')} MFCC"
        + ("".join([" + deltas", " + delta-deltas"][: int(s.get("deltas") or 0)]))
        + f" of {s.get('n_mels')} mel bands"
    ),
    "waveform": lambda s: "waveform",
}


def describe_features(settings: Mapping[str, Any]) -> str:
    """One readable line of a feature set's settings.

    Parameters
    ----------
    settings : mapping
        ``FeatureSettings.to_dict()`` (as in a store's attributes or a checkpoint).

    Returns
    -------
    str
        E.g. ``"logmel: 96 mel bands (slaney), 16000 Hz, n_fft 512, hop 256, 1819 frames per
        29.1 s window (hop 29.1 s)"``.
    """
    kind = str(settings.get("kind", "?"))
    window = dict(settings.get("window") or {})
    bins = _BINS.get(kind, lambda s: kind)(settings)
    parts = [bins, f"{window.get('sample_rate', '?')} Hz"]
    if kind != "waveform":
        parts.append(f"n_fft {settings.get('n_fft')}, hop {settings.get('hop_length')}")
    parts.append(
        f"{settings.get('n_frames')} frames per {window.get('length_s', '?')} s window "
        f"(hop {window.get('hop_s', '?')} s)"
    )
    return f"{settings.get('name', kind)}: " + ", ".join(parts)


def leaderboard_caption(
    table: pd.DataFrame, *, feature_settings: Mapping[str, str] | None = None
) -> list[str]:
    """The caption of a leaderboard: split, aggregation, features, checkpoint selection.

    Parameters
    ----------
    table : pd.DataFrame
        Leaderboard rows with :data:`LEADERBOARD_COLUMNS`.
    feature_settings : mapping of str to str, optional
        Feature set name -> description (see :func:`describe_features`); sets not given are
        named only.

    Returns
    -------
    list of str
        One plain-text sentence per item (split, aggregation, checkpoint selection, features,
        metrics); Markdown shows them as a list, HTML as lines of the table caption.
    """
    sentences = []
    for column, words in _CAPTION_FIELDS.items():
        values = sorted({str(v) for v in table[column]})
        if len(values) == 1:
            sentences.append(f"{words.capitalize()}: {values[0]}.")
        else:
            sentences.append(
                f"{words.capitalize()}: per row ({', '.join(values)}; see column '{column}')."
            )
    described = dict(feature_settings or {})
    features = [described.get(name, str(name)) for name in sorted({*map(str, table["features"])})]
    sentences.append("Features: " + "; ".join(features) + ".")
    sentences.append(
        "ROC-AUC and PR-AUC (average precision) per tag, averaged over the tags with at least "
        "one positive and one negative (macro), or over all their (track, tag) pairs (micro)."
    )
    return sentences


def write_leaderboard(
    *,
    rows: Sequence[Mapping[str, Any]] | pd.DataFrame,
    out_csv: str | Path,
    out_md: str | Path,
    out_html: str | Path,
    feature_settings: Mapping[str, str] | None = None,
    title: str = "Leaderboard",
) -> pd.DataFrame:
    """Write the leaderboard of all models and datasets as CSV, Markdown and HTML.

    Parameters
    ----------
    rows : sequence of mappings or pd.DataFrame
        One per (dataset, model), each with every column of :data:`LEADERBOARD_COLUMNS`
        (NaN allowed for unknown values such as ``params``); extra columns are kept after them.
    out_csv, out_md, out_html : str or Path
        Files to write (folders are created). The CSV holds full-precision values; Markdown
        and HTML round metrics to 4 decimals, mark the best macro ROC-AUC of each dataset in
        bold, and carry :func:`leaderboard_caption`. The HTML has inline CSS and no external
        assets.
    feature_settings : mapping of str to str, optional
        Feature set name -> description for the caption (see :func:`describe_features`).
    title : str
        Heading of the Markdown and HTML pages.

    Returns
    -------
    pd.DataFrame
        The table as written: sorted by dataset, then macro ROC-AUC descending (NaN last),
        then model.
    """
    table = pd.DataFrame(list(rows) if not isinstance(rows, pd.DataFrame) else rows)
    if table.empty:
        raise PipelineError("the leaderboard has no rows")
    missing = [c for c in LEADERBOARD_COLUMNS if c not in table.columns]
    if missing:
        raise PipelineError(
            f"leaderboard rows lack column(s) {missing}; every row needs {LEADERBOARD_COLUMNS}"
        )
    duplicated = table.duplicated(["dataset", "model"], keep=False)
    if duplicated.any():
        pairs = table.loc[duplicated, ["dataset", "model"]].drop_duplicates()
        raise PipelineError(
            f"leaderboard has several rows for (dataset, model) {list(map(tuple, pairs.values))}"
        )
    extra = [c for c in table.columns if c not in LEADERBOARD_COLUMNS]
    table = table[LEADERBOARD_COLUMNS + extra].copy()
    table["_order"] = -pd.to_numeric(table["macro_roc_auc"], errors="coerce")
    table = (
        table.sort_values(["dataset", "_order", "model"], na_position="last", kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    for column in ("params", "n_tags_evaluated"):
        table[column] = _integers(table[column])
    caption = leaderboard_caption(table, feature_settings=feature_settings)
    shown, best = _formatted(table)

    for path in (out_csv, out_md, out_html):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    Path(out_md).write_text(
        _markdown(shown, best=best, title=title, caption=caption), encoding="utf-8"
    )
    Path(out_html).write_text(
        _html(shown, best=best, title=title, caption=caption), encoding="utf-8"
    )
    return table


def write_table(
    *,
    table: pd.DataFrame,
    out_csv: str | Path,
    out_md: str | Path,
    out_html: str | Path,
    title: str,
    caption: Sequence[str],
    best_metric: str,
    best_within: Sequence[str],
    highlight: str,
) -> None:
    """Write a results table (retrieval, few-shot) as CSV, Markdown and HTML, like the
    leaderboard: float columns to 4 significant digits, the best ``best_metric`` of each
    ``best_within`` group in bold (its ``highlight`` cell in Markdown, the row in HTML).

    Parameters
    ----------
    table : pd.DataFrame
        Rows in the order to show.
    out_csv, out_md, out_html : str or Path
    title : str
    caption : sequence of str
        Sentences stated above the table.
    best_metric : str
        A numeric column; higher is better.
    best_within : sequence of str
        Columns whose groups each get a best row.
    highlight : str
        The column emphasised in Markdown.
    """
    if table.empty:
        raise PipelineError(f"table {title!r} has no rows")
    _require(table, [best_metric, *best_within, highlight], what=f"table {title!r}")
    shown = pd.DataFrame(
        {column: [_cell(column, v) for v in table[column]] for column in table.columns}
    )
    scores = pd.to_numeric(table[best_metric], errors="coerce")
    if best_within:
        top = scores.groupby([table[c] for c in best_within]).transform("max")
    else:
        top = pd.Series(scores.max(), index=scores.index)
    best = (scores.eq(top) & scores.notna()).to_numpy()
    numeric = {c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])}
    for path in (out_csv, out_md, out_html):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    where = list(table.columns).index(highlight)
    Path(out_md).write_text(
        _markdown(
            shown, best=best, title=title, caption=list(caption), numeric=numeric, highlight=where
        ),
        encoding="utf-8",
    )
    Path(out_html).write_text(
        _html(shown, best=best, title=title, caption=list(caption), numeric=numeric),
        encoding="utf-8",
    )


def plot_per_tag_auc(*, per_tag: pd.DataFrame, out_png: str | Path, title: str) -> None:
    """Bars of ROC-AUC and PR-AUC per tag, with the chance level of each.

    Parameters
    ----------
    per_tag : pd.DataFrame
        Output of :func:`pipeline.metrics.per_tag_metrics` (:data:`PER_TAG_COLUMNS`).
    out_png : str or Path
    title : str

    Notes
    -----
    Chance is 0.5 for ROC-AUC (a dashed line) and the tag's prevalence for PR-AUC (a black
    tick on each bar); the panel titles say so. Each tag is labelled with its number of
    positives; tags that could not be evaluated show "n/a".
    """
    _require(per_tag, PER_TAG_COLUMNS, what="per_tag")
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
    _require(history, HISTORY_COLUMNS, what="history")
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
    ax.set_xlabel("time (s, window start)")
    ax.set_title(title)
    fig.colorbar(mesh, ax=ax, label="probability", fraction=0.05, pad=0.02)
    _save(fig, out_png)


def _figure(*, width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, min(height, 40.0)), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_png: str | Path) -> None:
    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)


def _require(frame: pd.DataFrame, columns: Sequence[str], *, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PipelineError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def _integers(values: pd.Series) -> pd.Series:
    """Whole numbers as nullable integers (so the CSV says ``1234``, not ``1234.0``)."""
    numbers = pd.to_numeric(values, errors="coerce")
    known = numbers.dropna()
    if numbers.isna().sum() > values.isna().sum() or not np.all(np.mod(known, 1) == 0):
        return values  # not all whole numbers: leave as given
    return numbers.astype("Int64")


def _formatted(table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Strings for Markdown/HTML (4-decimal metrics), and which rows are best of their dataset.

    Returns
    -------
    shown : pd.DataFrame of str, same shape as ``table``
    best : np.ndarray, shape (n_rows,), bool
        The highest macro ROC-AUC of each dataset (all rows that tie for it).
    """
    shown = pd.DataFrame(
        {column: [_cell(column, v) for v in table[column]] for column in table.columns}
    )
    scores = pd.to_numeric(table["macro_roc_auc"], errors="coerce")
    best = scores.eq(scores.groupby(table["dataset"]).transform("max")) & scores.notna()
    return shown, best.to_numpy()


def _cell(column: str, value: Any) -> str:
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return "–"
    if column in _METRICS:
        return f"{float(value):.4f}"
    if column == "params":
        return f"{int(value):,}"
    if column == "train_time_s":
        return f"{float(value):.1f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_NUMERIC = {"params", "train_time_s", "n_tags_evaluated", *_METRICS}


def _markdown(
    shown: pd.DataFrame,
    *,
    best: np.ndarray,
    title: str,
    caption: list[str],
    numeric: set[str] = _NUMERIC,
    highlight: int = 1,
) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---:" if c in numeric else "---" for c in shown.columns) + "|"
    body = []
    for row, is_best in zip(shown.itertuples(index=False), best, strict=True):
        cells = [escape(v) for v in row]
        if is_best:
            cells[highlight] = f"**{cells[highlight]}**"  # the model column
        body.append("| " + " | ".join(cells) + " |")
    notes = [f"- {sentence}" for sentence in caption]
    return "\n".join([f"# {title}", "", *notes, "", header, rule, *body, ""])


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
caption { caption-side: top; text-align: left; max-width: 70em; padding-bottom: 0.8em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.35em 0.7em; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { font-weight: bold; }
tbody tr:hover { background: #fafafa; }
"""


def _html(
    shown: pd.DataFrame,
    *,
    best: np.ndarray,
    title: str,
    caption: list[str],
    numeric: set[str] = _NUMERIC,
) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for row, is_best in zip(shown.itertuples(index=False), best, strict=True):
        cells = "".join(
            f"<td{' class=num' if column in numeric else ''}>{html.escape(value)}</td>"
            for column, value in zip(shown.columns, row, strict=True)
        )
        rows.append(f"<tr{' class=best' if is_best else ''}>{cells}</tr>")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            f"<h1>{html.escape(title)}</h1>",
            "<table>",
            "<caption>" + "<br>".join(html.escape(line) for line in caption) + "</caption>",
            f"<thead><tr>{head}</tr></thead>",
            "<tbody>",
            *rows,
            "</tbody>",
            "</table>",
            "</body>",
            "</html>",
            "",
        ]
    )
