"""What the two-stage trainers share (:mod:`pipeline.training.two_stage`): a split's labels
and label budget, reading the stores track by track, standardisation, song-level validation
metrics, the budget keys of a summary and the files a trainer writes.

On the stores of :func:`tests.helpers.synthetic.build_synthetic` (fixture ``synthetic``) and
hand-made arrays with known answers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import zarr

from pipeline.errors import PipelineError
from pipeline.evaluation.tables import HISTORY_COLUMNS
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import audio_frames
from pipeline.io.checkpoint import load_checkpoint
from pipeline.training.loaders import WindowDataset, label_mask, select_tracks
from pipeline.training.two_stage import (
    SplitData,
    StoreReader,
    budget_summary,
    fit_scaler,
    song_metrics,
    split_data,
    write_outputs,
)
from tests.helpers.checkpoints import random_network_checkpoint
from tests.helpers.synthetic import N_BINS, N_FRAMES, SETTINGS, TAGS


def test_split_data_labels_in_vocabulary_order(synthetic: dict) -> None:
    index = synthetic["index"]
    data = split_data(index, split="valid", tags=["high", "other", "low"])
    expected = index[index["split"] == "valid"]
    assert list(data.tracks["track_id"]) == list(expected["track_id"])  # index order
    assert data.labels.dtype == np.float32 and data.labels.shape == (8, 3)
    for row, track_tags in zip(data.labels, expected["tags"], strict=True):
        assert row.tolist() == [float("high" in track_tags), 0.0, float("low" in track_tags)]
    assert data.budget.all() and (data.masks == 1.0).all()  # no budget outside training


def test_split_data_budget_is_the_network_datasets_one(synthetic: dict) -> None:
    """Same seeded hashes as :mod:`pipeline.training.loaders`: a two-stage model and a network
    trained with the same budget see the same tracks and labels; the tracks outside the
    budget are kept, with no label."""
    index = synthetic["index"]
    data = split_data(
        index, split="train", tags=TAGS, seed=2, label_fraction=0.5, tag_label_fraction=0.5
    )
    ids = [str(t) for t in data.tracks["track_id"]]
    assert len(ids) == 24 and data.budget.sum() == 12
    np.testing.assert_array_equal(data.budget, select_tracks(ids, fraction=0.5, seed=2))
    expected = label_mask(ids, TAGS, fraction=0.5, seed=2) * data.budget[:, None]
    np.testing.assert_array_equal(data.masks, expected)
    assert (data.masks[~data.budget] == 0).all()
    network = WindowDataset(
        index=index,
        stats=synthetic["stats"],
        tags=TAGS,
        split="train",
        train=True,
        seed=2,
        label_fraction=0.5,
        tag_label_fraction=0.5,
    )
    assert list(network.tracks["track_id"]) == [
        t for t, b in zip(ids, data.budget, strict=True) if b
    ]
    np.testing.assert_array_equal(network.masks, data.masks[data.budget])


def test_split_data_tracks_without_tags(synthetic: dict) -> None:
    index = synthetic["index"].reset_index(drop=True)
    train = index.index[index["split"] == "train"]
    tagged = next(i for i in train if len(index.at[i, "tags"]) == 2)  # "low" and "high"
    index["tags"] = [None if i == tagged else list(t) for i, t in enumerate(index["tags"])]
    empty = next(i for i in train if i != tagged)
    index.loc[empty, "stop"] = index.loc[empty, "start"]  # nothing stored: left out
    data = split_data(index, split="train", tags=TAGS)
    ids = list(data.tracks["track_id"])
    assert len(ids) == 23 and index.at[empty, "track_id"] not in ids
    assert data.labels[ids.index(index.at[tagged, "track_id"])].tolist() == [0.0, 0.0]
    assert data.labels.sum() > 0
    with pytest.raises(PipelineError, match="'nope'"):
        split_data(index, split="nope", tags=TAGS)


def test_store_reader_reads_tracks_as_stored(synthetic: dict) -> None:
    reader = StoreReader(features=SETTINGS)
    rows = synthetic["index"][synthetic["index"]["split"] == "test"]
    assert reader.shape(str(rows["store"].iloc[0])) == (N_BINS, N_FRAMES)
    read = list(reader.tracks(rows))
    assert len(read) == len(rows) and len(reader._stores) == 2  # each store opened once
    for (windows, valid), row in zip(read, rows.itertuples(index=False), strict=True):
        stored = zarr.open_group(str(row.store), mode="r")
        np.testing.assert_array_equal(windows, stored["windows"][row.start : row.stop])
        assert windows.dtype == np.float16 and len(windows) == row.stop - row.start
        starts = np.asarray(stored["window_start_s"][row.start : row.stop], dtype=np.float64)
        expected = audio_frames(starts_s=starts, duration_s=row.duration_s, features=SETTINGS)
        np.testing.assert_array_equal(valid, expected)
        assert (valid[:-1] == N_FRAMES).all() and 1 <= valid[-1] <= N_FRAMES


def test_store_reader_refuses_other_feature_settings(synthetic: dict) -> None:
    other = FeatureSettings.from_dict({**SETTINGS.to_dict(), "n_mels": 8})
    row = next(synthetic["index"].itertuples(index=False))
    with pytest.raises(PipelineError, match="holds features"):
        StoreReader(features=other).track(row)


def test_fit_scaler_known_values() -> None:
    x = np.array([[1.0, 5.0, 0.0], [3.0, 5.0, 4.0], [2.0, 5.0, 8.0]])
    mean, std = fit_scaler(x)
    assert mean.dtype == std.dtype == np.float32 and mean.shape == std.shape == (3,)
    np.testing.assert_allclose(mean, [2.0, 5.0, 4.0])
    # population std; a constant column is only centred (std 1)
    np.testing.assert_allclose(std, [math.sqrt(2 / 3), 1.0, math.sqrt(32 / 3)], rtol=1e-6)
    standardised = (x - mean) / std
    np.testing.assert_allclose(standardised.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(standardised[:, [0, 2]].std(axis=0), 1.0, rtol=1e-6)


def test_song_metrics_known_values() -> None:
    labels = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    zero = song_metrics(labels, np.zeros((4, 2)))
    assert zero["valid_loss"] == pytest.approx(math.log(2.0))
    assert zero["valid_roc_auc"] == pytest.approx(0.5)
    ranked = song_metrics(labels, np.where(labels > 0, 2.0, -2.0))
    assert ranked["valid_roc_auc"] == 1.0 and ranked["valid_pr_auc"] == 1.0
    assert ranked["valid_loss"] == pytest.approx(math.log1p(math.exp(-2.0)))
    reversed_ = song_metrics(labels, np.where(labels > 0, -2.0, 2.0))
    assert reversed_["valid_roc_auc"] == 0.0
    assert set(zero) == {"valid_loss", "valid_roc_auc", "valid_pr_auc"}


def test_budget_summary_counts_the_kept_tracks_and_labels() -> None:
    train = SplitData(
        tracks=pd.DataFrame({"track_id": ["a", "b", "c"]}),
        labels=np.array([[1, 0], [1, 1], [0, 1]], np.float32),
        masks=np.array([[1, 1], [0, 0], [1, 0]], np.float32),
        budget=np.array([True, False, True]),
    )
    assert budget_summary(train, label_fraction=0.7, tag_label_fraction=1) == {
        "n_train_items": 2,
        "n_train_tracks": 2,
        "n_train_labels": 3,
        "n_train_positive_labels": 1,
        "label_fraction": 0.7,
        "tag_label_fraction": 1.0,
    }


def test_write_outputs(tmp_path: Path) -> None:
    checkpoint = random_network_checkpoint()
    history = [
        {"epoch": 1, "valid_roc_auc": 0.6, "C": 0.1, "ignored": 5},
        {"epoch": 2, "valid_roc_auc": 0.8, "train_loss": 0.3, "C": 1.0},
    ]
    summary = {"architecture": "x", "best_epoch": 2}
    out = tmp_path / "new" / "model"
    write_outputs(
        out_dir=out, checkpoint=checkpoint, history=history, summary=summary, extra_columns=["C"]
    )
    table = pd.read_csv(out / "history.csv")
    assert list(table.columns) == [*HISTORY_COLUMNS, "C"]
    assert table["epoch"].tolist() == [1, 2] and table["C"].tolist() == [0.1, 1.0]
    assert math.isnan(table["train_loss"].iloc[0]) and table["train_loss"].iloc[1] == 0.3
    assert table["lr"].isna().all() and table["seconds"].isna().all()
    assert json.loads((out / "train_summary.json").read_text()) == summary
    loaded = load_checkpoint(out / "checkpoint.pt")
    assert loaded["tags"] == checkpoint["tags"]
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(loaded["state_dict"][key], value), key
