"""Evaluation of one model from its prediction tables: song scores per aggregation, metrics,
plots.

Hand-made prediction tables with known answers: for tag ``a``, the mean of the window
probabilities ranks the songs perfectly while the max does not (song ``t2`` has one loud
window); tag ``b`` has no positive and is skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.evaluate import (
    evaluate_model,
    song_scores,
    taggram_columns,
    write_evaluation,
)
from pipeline.numeric import sigmoid
from tests.helpers.images import is_png

TAGS = ["a", "b"]
#: Window logits of tag ``a`` per song (tag ``b``: the negated values).
LOGITS = {"t0": [2.0, 2.0], "t1": [1.0, 1.0], "t2": [-3.0, 3.0], "t3": [-2.0, -2.0]}
LABELS = {"t0": ["a"], "t1": ["a"], "t2": [], "t3": []}


def _tables(order: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Song and window tables as :func:`pipeline.evaluation.predict.predict_split` writes them;
    the window rows in ``order`` of songs (default: reversed)."""
    songs = pd.DataFrame(
        {
            "track_id": list(LOGITS),
            "a": [float(sigmoid(np.array(v)).mean()) for v in LOGITS.values()],
            "b": [float(sigmoid(-np.array(v)).mean()) for v in LOGITS.values()],
            "labels": list(LABELS.values()),
        }
    )
    rows = [
        {"track_id": t, "window": i, "start_s": 10.0 * i, "a": v, "b": -v}
        for t in order or list(LOGITS)[::-1]
        for i, v in enumerate(LOGITS[t])
    ]
    return songs, pd.DataFrame(rows)


def test_song_scores_of_each_aggregation() -> None:
    songs, windows = _tables()
    mean = song_scores(songs=songs, windows=windows, tags=TAGS, method="mean")
    top = song_scores(songs=songs, windows=windows, tags=TAGS, method="max")
    model = song_scores(songs=songs, windows=windows, tags=TAGS, method="model")
    assert mean.shape == top.shape == model.shape == (4, 2)
    np.testing.assert_allclose(mean, songs[TAGS].to_numpy(), atol=1e-12)  # songs in song order
    np.testing.assert_allclose(model, songs[TAGS].to_numpy())
    np.testing.assert_allclose(top[:, 0], sigmoid(np.array([2.0, 1.0, 3.0, -2.0])), atol=1e-6)
    zero = song_scores(songs=songs, windows=windows, tags=TAGS, method="autopool", alpha=[0, 0])
    np.testing.assert_allclose(zero, mean, atol=1e-12)  # alpha 0: the mean


def test_song_scores_need_every_songs_windows() -> None:
    songs, windows = _tables()
    with pytest.raises(PipelineError, match="missing from the song table"):
        song_scores(songs=songs.iloc[1:], windows=windows, tags=TAGS, method="mean")
    with pytest.raises(PipelineError, match="some songs have no window predictions"):
        song_scores(
            songs=songs, windows=windows[windows["track_id"] != "t3"], tags=TAGS, method="max"
        )


def test_window_models_report_the_chosen_aggregation() -> None:
    songs, windows = _tables()
    metrics, per_tag, scores = evaluate_model(
        test_songs=songs,
        test_windows=windows,
        valid_songs=songs,
        valid_windows=windows,
        tags=TAGS,
        aggregations=["mean", "max", "autopool"],
        leaderboard_aggregation="max",
    )
    assert metrics["split"] == "test" and metrics["n_tracks"] == 4
    assert metrics["aggregation"] == "max"
    results = metrics["aggregations"]
    assert sorted(results) == ["autopool", "max", "mean"]
    assert results["mean"]["macro_roc_auc"] == pytest.approx(1.0)
    assert results["max"]["macro_roc_auc"] == pytest.approx(0.5)  # t2's loud window
    for summary in results.values():
        assert summary["n_tags_evaluated"] == 1 and summary["skipped_tags"] == ["b"]
    assert sorted(metrics["autopool_alpha"]) == TAGS
    assert list(per_tag["tag"]) == TAGS and per_tag["evaluated"].tolist() == [True, False]
    assert per_tag.loc[0, "roc_auc"] == pytest.approx(0.5)
    np.testing.assert_allclose(scores[:, 0], sigmoid(np.array([2.0, 1.0, 3.0, -2.0])), atol=1e-6)
    json.dumps(metrics)  # written as metrics.json


def test_song_level_models_are_reported_as_model() -> None:
    songs, windows = _tables()
    metrics, _, scores = evaluate_model(
        test_songs=songs,
        test_windows=windows.iloc[:0],
        valid_songs=songs,
        valid_windows=windows.iloc[:0],
        tags=TAGS,
        aggregations=["mean", "autopool"],
        leaderboard_aggregation="mean",
        split="valid",
    )
    assert metrics["aggregation"] == "model" and list(metrics["aggregations"]) == ["model"]
    assert metrics["autopool_alpha"] is None and metrics["split"] == "valid"
    assert metrics["aggregations"]["model"]["macro_roc_auc"] == pytest.approx(1.0)
    np.testing.assert_allclose(scores, songs[TAGS].to_numpy())
    # an aggregation that was not computed falls back to the first one
    fallback, _, _ = evaluate_model(
        test_songs=songs,
        test_windows=windows,
        valid_songs=songs,
        valid_windows=windows,
        tags=TAGS,
        aggregations=["max", "mean"],
        leaderboard_aggregation="autopool",
    )
    assert fallback["aggregation"] == "max" and fallback["autopool_alpha"] is None


def _history(path: Path) -> Path:
    epochs = np.arange(1, 4)
    pd.DataFrame(
        {
            "epoch": epochs,
            "train_loss": 0.7 / epochs,
            "valid_loss": 0.6 / epochs,
            "valid_roc_auc": 0.5 + 0.1 * epochs,
            "valid_pr_auc": 0.4 + 0.1 * epochs,
            "lr": np.full(3, 1e-3),
            "seconds": np.full(3, 2.0),
        }
    ).to_csv(path, index=False)
    return path


def test_write_evaluation(tmp_path: Path) -> None:
    songs, windows = _tables()
    predictions = {}
    for key, table in {
        "eval_songs": songs,
        "eval_windows": windows,
        "valid_songs": songs,
        "valid_windows": windows,
    }.items():
        predictions[key] = tmp_path / f"{key}.parquet"
        table.to_parquet(predictions[key], index=False)
    out = tmp_path / "evaluation"
    (out / "taggrams").mkdir(parents=True)
    (out / "taggrams" / "taggram_7.png").write_bytes(b"old")
    metrics = write_evaluation(
        predictions=predictions,
        history=_history(tmp_path / "history.csv"),
        out_dir=out,
        tags=TAGS,
        aggregations=["mean", "max"],
        leaderboard_aggregation="mean",
        split="test",
        title="demo / fcn",
        taggram_tracks=2,
    )
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert metrics["aggregations"]["mean"]["macro_roc_auc"] == pytest.approx(1.0)
    assert list(pd.read_csv(out / "per_tag.csv")["tag"]) == TAGS
    # the reported song scores, which the leaderboard resamples for its intervals
    scores = pd.read_parquet(out / "scores.parquet")
    assert list(scores.columns) == ["track_id", *TAGS, "labels"]
    assert list(scores["track_id"]) == list(songs["track_id"])
    expected = song_scores(songs=songs, windows=windows, tags=TAGS, method="mean")
    np.testing.assert_allclose(scores[TAGS].to_numpy(), expected)
    for name in ("per_tag_auc.png", "curves.png", "training.png"):
        assert is_png(out / name), name
    taggrams = sorted(p.name for p in (out / "taggrams").iterdir())
    assert taggrams == ["taggram_0.png", "taggram_1.png"]  # old ones removed
    assert all(is_png(out / "taggrams" / name) for name in taggrams)


def test_metrics_json_writes_null_for_averages_that_do_not_exist(tmp_path: Path) -> None:
    """No tag has a positive: the averages are NaN in memory, null in the file."""
    songs, windows = _tables()
    songs["labels"] = [[] for _ in range(len(songs))]
    predictions = {}
    for key in ("eval", "valid"):
        predictions[f"{key}_songs"] = tmp_path / f"{key}_songs.parquet"
        predictions[f"{key}_windows"] = tmp_path / f"{key}_windows.parquet"
        songs.to_parquet(predictions[f"{key}_songs"], index=False)
        windows.to_parquet(predictions[f"{key}_windows"], index=False)
    out = tmp_path / "evaluation"
    metrics = write_evaluation(
        predictions=predictions,
        history=_history(tmp_path / "history.csv"),
        out_dir=out,
        tags=TAGS,
        aggregations=["mean"],
        leaderboard_aggregation="mean",
        split="test",
        title="demo / fcn",
        taggram_tracks=0,
    )
    assert np.isnan(metrics["aggregations"]["mean"]["macro_roc_auc"])
    text = (out / "metrics.json").read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    written = json.loads(text)["aggregations"]["mean"]
    assert written["macro_roc_auc"] is None and written["micro_pr_auc"] is None
    assert written["n_tags_evaluated"] == 0 and written["skipped_tags"] == TAGS


def test_taggram_columns_are_chunks_where_the_model_has_them() -> None:
    songs, windows = _tables()
    first, second = songs["track_id"].iloc[:2]
    chunks = pd.DataFrame(
        {
            "track_id": [first] * 3,
            "window": [0, 0, 1],
            "chunk": [0, 1, 2],
            "start_s": [0.0, 3.5, 7.0],
            "end_s": [3.5, 7.0, 9.0],  # the last chunk is cut at the end of the track
            **{tag: [0.1, 0.5, 0.9] for tag in TAGS},
        }
    )
    probs, starts, length = taggram_columns(
        track_id=first, windows=windows, chunks=chunks, tags=TAGS
    )
    assert starts.tolist() == [0.0, 3.5, 7.0] and length == 3.5
    assert probs[:, 0].tolist() == [0.1, 0.5, 0.9]
    probs, starts, length = taggram_columns(
        track_id=second, windows=windows, chunks=chunks, tags=TAGS
    )
    part = windows[windows["track_id"] == second]
    assert length is None and len(starts) == len(part)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-part[TAGS].to_numpy(float))))
