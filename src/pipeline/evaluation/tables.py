"""Results tables as CSV, Markdown and self-contained HTML: the leaderboard
(:func:`write_leaderboard`, with :func:`leaderboard_caption` and :func:`describe_features`)
and other results tables such as retrieval and few-shot (:func:`write_table`); also the
column lists of a leaderboard row and of a training run's history, and :func:`require`,
which checks a table's columns. The plots are in :mod:`pipeline.evaluation.plots`.

Every table states the split, the song-level aggregation, the feature settings and the
checkpoint selection it was computed with, as a caption, and shows the best result of each
dataset (or group) in bold.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError

__all__ = [
    "HISTORY_COLUMNS",
    "LEADERBOARD_COLUMNS",
    "describe_features",
    "leaderboard_caption",
    "write_leaderboard",
    "write_table",
    "BINS",
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
_METRICS = ["macro_roc_auc", "macro_pr_auc", "micro_roc_auc", "micro_pr_auc", "accuracy"]
# ...with their spread over seeds and bootstrap intervals (extra columns of the leaderboard).
_METRIC_COLUMNS = {f"{m}{s}" for m in _METRICS for s in ("", "_std", "_ci_low", "_ci_high")}
# What the caption states, with its wording.
_CAPTION_FIELDS = {
    "split": "split",
    "aggregation": "song-level aggregation",
    "checkpoint_selection": "checkpoint selection",
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
    encoder = settings.get("encoder")
    if encoder:  # a pretrained encoder: the model, its layers and pooling
        layers = encoder.get("layers")
        return (
            f"{settings.get('name', kind)}: {encoder.get('model')} (revision "
            f"{encoder.get('revision')}, licence {encoder.get('licence') or 'see model card'}), "
            f"layers {'all' if layers is None else layers}, {encoder.get('pooling')} pooling "
            f"of {encoder.get('chunk_s')} s chunks, {window.get('sample_rate', '?')} Hz, "
            f"{window.get('length_s', '?')} s windows (hop {window.get('hop_s', '?')} s)"
        )
    bins = BINS.get(kind, lambda s: kind)(settings)
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
    notes: Sequence[str] = (),
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
    notes : sequence of str
        Sentences stated after the caption (intervals, significance tests).

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
    caption = [*leaderboard_caption(table, feature_settings=feature_settings), *notes]
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
    require(table, [best_metric, *best_within, highlight], what=f"table {title!r}")
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


def require(frame: pd.DataFrame, columns: Sequence[str], *, what: str) -> None:
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
    if column in _METRIC_COLUMNS:
        return f"{float(value):.4f}"
    if column == "params":
        return f"{int(value):,}"
    if column == "train_time_s":
        return f"{float(value):.1f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_NUMERIC = {"params", "train_time_s", "n_tags_evaluated", *_METRIC_COLUMNS}


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


# How the feature rows of each kind are described (one entry per kind, no if/elif).
BINS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "logmel": lambda s: f"{s.get('n_mels')} mel bands ({s.get('mel_scale', 'slaney')})",
    "mfcc": lambda s: (
        f"{s.get('n_mfcc')} MFCC"
        + ("".join([" + deltas", " + delta-deltas"][: int(s.get("deltas") or 0)]))
        + f" of {s.get('n_mels')} mel bands"
    ),
    "waveform": lambda s: "waveform",
}
