"""Evaluation of one trained model on one dataset.

Window models are scored at the song level with every configured aggregation (mean, max, and
McFee et al.'s auto-pool, whose per-tag alpha is fitted on the validation split only);
sequence and two-stage models give their own song-level prediction (``"model"``). The
leaderboard reports one aggregation per model, stated in its table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import label_matrix, per_tag_metrics, summary_metrics
from pipeline.evaluation.plots import (
    plot_curves,
    plot_per_tag_auc,
    plot_taggram,
    plot_training_curves,
)
from pipeline.inference.aggregate import aggregate, fit_autopool_alpha
from pipeline.io.files import write_json

__all__ = ["song_scores", "song_table", "taggram_columns", "evaluate_model", "write_evaluation"]

log = logging.getLogger(__name__)

#: The aggregation name of models whose song prediction is their own summary.
MODEL_AGGREGATION = "model"


def _offsets(songs: pd.DataFrame, windows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Window logits in song order and the offsets of each song's windows."""
    order = {t: i for i, t in enumerate(songs["track_id"])}
    windows = windows.assign(_song=windows["track_id"].map(order))
    if windows["_song"].isna().any():
        raise PipelineError("window predictions name tracks missing from the song table")
    windows = windows.sort_values(["_song", "window"], kind="stable")
    counts = np.bincount(windows["_song"].astype(int), minlength=len(songs))
    if (counts == 0).any():
        raise PipelineError("some songs have no window predictions")
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return windows, offsets


def song_scores(
    *,
    songs: pd.DataFrame,
    windows: pd.DataFrame,
    tags: Sequence[str],
    method: str,
    alpha: np.ndarray | None = None,
) -> np.ndarray:
    """Song-level probabilities of one split for one aggregation.

    Parameters
    ----------
    songs, windows : pd.DataFrame
        Tables of :func:`pipeline.evaluation.predict.predict_split`.
    tags : sequence of str
    method : str
        ``"model"`` (the tagger's own song prediction) or a key of
        :data:`pipeline.inference.aggregate.AGGREGATIONS`.
    alpha : np.ndarray, shape (n_tags,), optional
        Auto-pool's per-tag alpha.

    Returns
    -------
    np.ndarray, shape (n_songs, n_tags)
    """
    if method == MODEL_AGGREGATION:
        return songs[list(tags)].to_numpy(np.float64)
    ordered, offsets = _offsets(songs, windows)
    return aggregate(
        window_logits=ordered[list(tags)].to_numpy(np.float64),
        offsets=offsets,
        method=method,
        alpha=alpha,
    )


def evaluate_model(
    *,
    test_songs: pd.DataFrame,
    test_windows: pd.DataFrame,
    valid_songs: pd.DataFrame,
    valid_windows: pd.DataFrame,
    tags: Sequence[str],
    aggregations: Sequence[str],
    leaderboard_aggregation: str,
    split: str = "test",
) -> tuple[dict[str, Any], pd.DataFrame, np.ndarray]:
    """Metrics of every aggregation on the evaluated split.

    Returns
    -------
    metrics : dict
        ``{"split", "aggregation" (the one reported), "aggregations": {name: summary}}``,
        and the fitted auto-pool alphas.
    per_tag : pd.DataFrame
        Per-tag ROC-AUC and PR-AUC of the reported aggregation.
    scores : np.ndarray, shape (n_songs, n_tags)
        Song probabilities of the reported aggregation.
    """
    tags = list(tags)
    y_true = label_matrix(track_tags=test_songs["labels"], vocabulary=tags)
    window_model = len(test_windows) > 0
    methods = list(aggregations) if window_model else [MODEL_AGGREGATION]
    alpha = None
    if window_model and "autopool" in methods:
        ordered, offsets = _offsets(valid_songs, valid_windows)
        alpha = fit_autopool_alpha(
            window_logits=ordered[tags].to_numpy(np.float64),
            offsets=offsets,
            y_true=label_matrix(track_tags=valid_songs["labels"], vocabulary=tags),
        )
    results: dict[str, Any] = {}
    scores: dict[str, np.ndarray] = {}
    for method in methods:
        scores[method] = song_scores(
            songs=test_songs,
            windows=test_windows,
            tags=tags,
            method=method,
            alpha=alpha if method == "autopool" else None,
        )
        results[method] = summary_metrics(y_true=y_true, y_score=scores[method], tags=tags)
    reported = leaderboard_aggregation if window_model else MODEL_AGGREGATION
    if reported not in scores:
        reported = methods[0]
    per_tag = per_tag_metrics(y_true=y_true, y_score=scores[reported], tags=tags)
    metrics = {
        "split": split,
        "aggregation": reported,
        "aggregations": results,
        "autopool_alpha": None
        if alpha is None
        else dict(zip(tags, map(float, alpha), strict=True)),
        "n_tracks": len(test_songs),
    }
    return metrics, per_tag, scores[reported]


def song_table(*, songs: pd.DataFrame, scores: np.ndarray, tags: Sequence[str]) -> pd.DataFrame:
    """The reported song scores of the evaluated split, what the leaderboard resamples.

    Parameters
    ----------
    songs : pd.DataFrame
        The evaluated split's song table (``track_id``, ``labels``), in the order of ``scores``.
    scores : np.ndarray, shape (n_songs, n_tags)
        Song probabilities of the reported aggregation.
    tags : sequence of str

    Returns
    -------
    pd.DataFrame
        ``track_id``, one probability column per tag (float64), ``labels``.
    """
    table = pd.DataFrame(np.asarray(scores, dtype=np.float64), columns=list(tags))
    table.insert(0, "track_id", songs["track_id"].astype(str).to_numpy())
    table["labels"] = [list(labels) for labels in songs["labels"]]
    return table


def write_evaluation(
    *,
    predictions: Mapping[str, Path],
    history: Path,
    out_dir: Path,
    tags: Sequence[str],
    aggregations: Sequence[str],
    leaderboard_aggregation: str,
    split: str,
    title: str,
    taggram_dir: Path | None = None,
    taggram_tracks: int = 3,
) -> dict[str, Any]:
    """Evaluate one model from its prediction tables and write metrics and plots.

    Parameters
    ----------
    predictions : mapping
        Paths of the prediction tables of :func:`pipeline.evaluation.predict.predict_split`: keys
        ``eval_songs``, ``eval_windows`` (the evaluated split) and ``valid_songs``,
        ``valid_windows`` (the validation split, which fits auto-pool); optionally
        ``eval_chunks`` (:func:`pipeline.evaluation.predict.predict_chunks`): the taggrams
        of models that score chunks shorter than a window are drawn from it.
    history : Path
        The model's ``history.csv``.
    out_dir : Path
        Receives ``metrics.json``, ``per_tag.csv``, ``scores.parquet`` (:func:`song_table`)
        and the PNG plots.

    Returns
    -------
    dict
        The metrics written to ``metrics.json`` (where an average that does not exist, NaN
        here, e.g. when no tag has both a positive and a negative track, is ``null``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {key: pd.read_parquet(path) for key, path in predictions.items()}
    metrics, per_tag, scores = evaluate_model(
        test_songs=tables["eval_songs"],
        test_windows=tables["eval_windows"],
        valid_songs=tables["valid_songs"],
        valid_windows=tables["valid_windows"],
        tags=tags,
        aggregations=aggregations,
        leaderboard_aggregation=leaderboard_aggregation,
        split=split,
    )
    # An average over no evaluable tag is NaN: written as null ("no value"), never as NaN.
    write_json(metrics, out_dir / "metrics.json", non_finite="null")
    per_tag.to_csv(out_dir / "per_tag.csv", index=False)
    song_table(songs=tables["eval_songs"], scores=scores, tags=tags).to_parquet(
        out_dir / "scores.parquet", index=False
    )
    reported = metrics["aggregation"]
    plot_per_tag_auc(
        per_tag=per_tag,
        out_png=out_dir / "per_tag_auc.png",
        title=f"{title}: per-tag AUC ({split}, {reported})",
    )
    y_true = label_matrix(track_tags=tables["eval_songs"]["labels"], vocabulary=list(tags))
    plot_curves(
        y_true=y_true,
        y_score=scores,
        tags=list(tags),
        out_png=out_dir / "curves.png",
        title=f"{title} ({split})",
    )
    plot_training_curves(
        history=pd.read_csv(history), out_png=out_dir / "training.png", title=title
    )
    _plot_taggrams(
        songs=tables["eval_songs"],
        windows=tables["eval_windows"],
        chunks=tables.get("eval_chunks"),
        tags=list(tags),
        out_dir=Path(taggram_dir) if taggram_dir else out_dir / "taggrams",
        n_tracks=taggram_tracks,
        title=title,
    )
    summary = metrics["aggregations"][reported]
    log.info(
        "%s: macro ROC-AUC %.4f, PR-AUC %.4f (%s, %s)",
        title,
        summary["macro_roc_auc"],
        summary["macro_pr_auc"],
        split,
        reported,
    )
    return metrics


def taggram_columns(
    *, track_id: str, windows: pd.DataFrame, chunks: pd.DataFrame | None, tags: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """The columns of a track's taggram, at the model's own resolution.

    Parameters
    ----------
    track_id : str
    windows : pd.DataFrame
        Window logits (:func:`pipeline.evaluation.predict.predict_split`).
    chunks : pd.DataFrame or None
        Chunk probabilities (:func:`pipeline.evaluation.predict.predict_chunks`); used when
        it has rows for the track.

    Returns
    -------
    probabilities : np.ndarray, shape (n_columns, n_tags)
    start_s : np.ndarray, shape (n_columns,)
        Start of each column in the track, seconds.
    column_s : float or None
        The chunk length; None for windows (each spans to the next window's start).
    """
    tags = list(tags)
    own = None if chunks is None else chunks[chunks["track_id"] == track_id]
    if own is not None and len(own):
        own = own.sort_values("chunk")
        length = float((own["end_s"] - own["start_s"]).max())
        return own[tags].to_numpy(np.float64), own["start_s"].to_numpy(np.float64), length
    part = windows[windows["track_id"] == track_id].sort_values("window")
    probabilities = 1.0 / (1.0 + np.exp(-part[tags].to_numpy(np.float64)))
    return probabilities, part["start_s"].to_numpy(np.float64), None


def _plot_taggrams(
    *,
    songs: pd.DataFrame,
    windows: pd.DataFrame,
    chunks: pd.DataFrame | None,
    tags: list[str],
    out_dir: Path,
    n_tracks: int,
    title: str,
) -> None:
    """Taggrams of the first few songs, in song order: chunk probabilities over time for
    models that score chunks shorter than a window (``chunks``), window probabilities for
    the others."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("taggram_*.png"):
        old.unlink()
    if windows.empty or n_tracks == 0:
        return
    for i, track_id in enumerate(songs["track_id"].iloc[:n_tracks]):
        probabilities, starts, cell_s = taggram_columns(
            track_id=str(track_id), windows=windows, chunks=chunks, tags=tags
        )
        plot_taggram(
            probabilities=probabilities,
            window_start_s=starts,
            tags=tags,
            out_png=out_dir / f"taggram_{i}.png",
            title=f"{title}: {track_id}",
            window_hop_s=cell_s,
        )
