"""Predictions of a checkpoint for a split of the stores (window and song tables) and track
embeddings, on the synthetic stores of the ``trained`` fixture; the track embeddings of every
tagger kind also on the ``checkpoints`` fixture (both in ``tests/conftest.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import macro_auc
from pipeline.evaluation.predict import (
    CHUNK_KEYS,
    SONG_KEYS,
    WINDOW_KEYS,
    embed_tracks,
    embedding_matrix,
    predict_chunks,
    predict_split,
)
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import audio_frames
from pipeline.inference.loading import load_tagger
from pipeline.io.checkpoint import load_checkpoint, save_checkpoint
from pipeline.io.progress import INTERVAL_ENV
from pipeline.io.store import FeatureStore
from tests.helpers.checkpoints import (
    KINDS,
    random_bag_of_frames_checkpoint,
    random_network_checkpoint,
)


def _stored(data: dict, row: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Stored windows and valid frames of one index row."""
    group = zarr.open_group(row["store"], mode="r")
    valid = audio_frames(
        starts_s=group["window_start_s"][row["start"] : row["stop"]],
        duration_s=row["duration_s"],
        features=FeatureSettings.from_dict(data["features"]),
    )
    return group["windows"][row["start"] : row["stop"]], valid


def test_tagger_reproduces_training_validation(trained: dict) -> None:
    """Song-level valid ROC-AUC of the tagger = the value the checkpoint was selected on."""
    for name in ("fcn", "lstm"):
        checkpoint = load_checkpoint(trained[name])
        songs, _ = predict_split(checkpoint=trained[name], index=trained["index"], split="valid")
        labels = np.array([[t in row for t in trained["tags"]] for row in songs["labels"]])
        roc, _, _ = macro_auc(labels.astype(float), songs[trained["tags"]].to_numpy())
        assert roc == pytest.approx(checkpoint["selection"]["value"], abs=1e-9), name


def test_predict_split_tables(trained: dict) -> None:
    songs, windows = predict_split(checkpoint=trained["fcn"], index=trained["index"])
    test = trained["index"][trained["index"]["split"] == "test"]
    assert list(songs.columns) == ["track_id", *trained["tags"], "labels"]
    assert sorted(songs["track_id"]) == sorted(test["track_id"])
    assert len(windows) == int(test["n_windows"].sum())
    assert list(windows.columns) == ["track_id", "window", "start_s", *trained["tags"]]
    for track_id, part in windows.groupby("track_id"):
        probs = 1 / (1 + np.exp(-part[trained["tags"]].to_numpy(float)))
        expected = songs.set_index("track_id").loc[track_id, trained["tags"]].to_numpy(float)
        np.testing.assert_allclose(probs.mean(axis=0), expected, rtol=1e-5)
        assert part["window"].tolist() == list(range(len(part)))
    tags_of = dict(zip(test["track_id"], test["tags"], strict=True))
    assert all(list(r.labels) == list(tags_of[r.track_id]) for r in songs.itertuples())


def test_predict_split_refuses_other_features_and_unknown_splits(
    trained: dict, tmp_path: Path
) -> None:
    other = trained["index"].copy()
    store = tmp_path / "other.zarr"
    group = zarr.open_group(store, mode="w")
    group.attrs["features"] = {**trained["features"], "n_mels": 20}
    other["store"] = str(store)
    with pytest.raises(PipelineError, match="other.zarr"):
        predict_split(checkpoint=trained["fcn"], index=other)
    with pytest.raises(PipelineError, match="'nope'"):
        predict_split(checkpoint=trained["fcn"], index=trained["index"], split="nope")


def test_blocks_of_tracks_do_not_change_the_tables(
    trained: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Window taggers score whole tracks in blocks of about 64 windows; one window per block
    gives the same tables."""
    songs, windows = predict_split(checkpoint=trained["fcn"], index=trained["index"])
    monkeypatch.setattr("pipeline.evaluation.predict._BLOCK_WINDOWS", 1)
    one_songs, one_windows = predict_split(checkpoint=trained["fcn"], index=trained["index"])
    pd.testing.assert_frame_equal(one_songs, songs, atol=1e-6)
    pd.testing.assert_frame_equal(one_windows, windows, atol=1e-5)


def test_model_aggregation_songs_are_the_taggers_own(trained: dict, tmp_path: Path) -> None:
    """A bag-of-frames tagger: each song is ``predict_track`` of its stored windows, and the
    window table is empty."""
    path = tmp_path / "bag.pt"
    save_checkpoint(random_bag_of_frames_checkpoint(), path)
    songs, windows = predict_split(checkpoint=path, index=trained["index"], split="valid")
    assert windows.empty and list(windows.columns) == [*WINDOW_KEYS, *trained["tags"]]
    tagger = load_tagger(path)
    valid = trained["index"][trained["index"]["split"] == "valid"].reset_index(drop=True)
    assert list(songs["track_id"]) == list(valid["track_id"])
    for i, row in valid.iterrows():
        stored, frames = _stored(trained, row)
        _, song = tagger.predict_track(stored, valid_frames=frames)
        np.testing.assert_allclose(songs.loc[i, trained["tags"]].to_numpy(float), song, atol=1e-6)


def test_tag_names_must_not_clash_with_columns(trained: dict, tmp_path: Path) -> None:
    assert SONG_KEYS == ("track_id", "labels")
    path = tmp_path / "clash.pt"
    save_checkpoint(random_network_checkpoint(tags=["labels", "window", "ok"]), path)
    with pytest.raises(PipelineError, match=r"\['labels', 'window'\] clash"):
        predict_split(checkpoint=path, index=trained["index"])


def test_embed_tracks_of_a_window_tagger(trained: dict) -> None:
    """Track embedding = mean of the window embeddings; tags keep vocabulary order."""
    table = embed_tracks(
        checkpoint=trained["fcn"], index=trained["index"], splits=["test", "valid"]
    )
    index = trained["index"]
    chosen = pd.concat([index[index["split"] == s] for s in ("test", "valid")])
    assert list(table.columns) == ["track_id", "split", "tags", "embedding"]
    assert list(table["track_id"]) == list(chosen["track_id"])
    assert list(table["split"]) == list(chosen["split"])
    assert [list(t) for t in table["tags"]] == [
        [t for t in trained["tags"] if t in set(tags)] for tags in chosen["tags"]
    ]
    tagger = load_tagger(trained["fcn"])
    for k in (0, len(table) - 1):
        windows, valid = _stored(trained, chosen.iloc[k])
        expected = tagger.embed_windows(windows, valid_frames=valid).mean(axis=0)
        np.testing.assert_allclose(table["embedding"].iloc[k], expected, atol=1e-5)
    assert embedding_matrix(table).shape == (len(table), 32)


def test_embed_tracks_of_a_sequence_tagger(trained: dict) -> None:
    table = embed_tracks(checkpoint=trained["lstm"], index=trained["index"])
    assert sorted(set(table["split"])) == ["test", "train", "valid"]
    assert len(table) == len(trained["index"])
    tagger = load_tagger(trained["lstm"])
    row = trained["index"].set_index("track_id").loc[table["track_id"].iloc[5]]
    windows, valid = _stored(trained, row)
    expected = tagger.embed_track(windows, valid_frames=valid)
    np.testing.assert_allclose(table["embedding"].iloc[5], expected, atol=1e-6)


def test_embedding_matrix_checks_the_table() -> None:
    table = pd.DataFrame({"embedding": [np.array([1.0, 2.0]), [3, 4]]})
    matrix = embedding_matrix(table)
    assert matrix.dtype == np.float32 and matrix.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(PipelineError, match=r"no 'embedding' column \(columns: \['x'\]\)"):
        embedding_matrix(pd.DataFrame({"x": [1]}))
    with pytest.raises(PipelineError, match="no rows"):
        embedding_matrix(table.iloc[:0])
    with pytest.raises(PipelineError, match=r"different lengths \[1, 2\]"):
        embedding_matrix(pd.DataFrame({"embedding": [[1.0], [1.0, 2.0]]}))


@pytest.mark.parametrize("kind", KINDS)
def test_embed_tracks_equals_the_taggers_track_embedding(checkpoints: dict, kind: str) -> None:
    """Every split, one row per stored track; batched window means = embed_track per track."""
    index = checkpoints["index"]
    table = embed_tracks(checkpoint=checkpoints[kind], index=index)
    stored = index[index["stop"] > index["start"]]
    assert sorted(table["track_id"]) == sorted(stored["track_id"])
    assert set(table["split"]) == {"train", "valid", "test"}
    matrix = embedding_matrix(table)
    assert matrix.shape[0] == len(table) and np.isfinite(matrix).all()

    tagger = load_tagger(checkpoints[kind])
    row = stored.iloc[3]
    windows, starts = FeatureStore(Path(row["store"])).checked_windows(
        features=tagger.features.to_dict()
    )
    valid = audio_frames(
        starts_s=starts[row["start"] : row["stop"]],
        duration_s=float(row["duration_s"]),
        features=tagger.features,
    )
    expected = tagger.embed_track(windows[row["start"] : row["stop"]], valid_frames=valid)
    got = matrix[list(table["track_id"]).index(row["track_id"])]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    test_only = embed_tracks(checkpoint=checkpoints[kind], index=index, splits=["test"])
    assert set(test_only["split"]) == {"test"}


def test_embedding_matrix_errors() -> None:
    with pytest.raises(PipelineError, match="no 'embedding' column"):
        embedding_matrix(pd.DataFrame({"x": [1]}))
    ragged = pd.DataFrame({"embedding": [np.zeros(3), np.zeros(4)]})
    with pytest.raises(PipelineError, match="different lengths"):
        embedding_matrix(ragged)


def test_predict_chunks_of_the_first_tracks(trained: dict) -> None:
    """The crop-trained fcn's chunk taggrams of the first test tracks: ``ceil(audio frames /
    crop)`` chunks per window, in time order, with probabilities; none for the LSTM."""
    index = trained["index"]
    chunks = predict_chunks(checkpoint=trained["fcn"], index=index, n_tracks=2)
    songs, _ = predict_split(checkpoint=trained["fcn"], index=index)
    assert list(chunks.columns) == [*CHUNK_KEYS, *trained["tags"]]
    assert list(dict.fromkeys(chunks["track_id"])) == list(songs["track_id"].iloc[:2])
    test = index[index["split"] == "test"].set_index("track_id")
    crop = load_checkpoint(trained["fcn"])["crop_frames"]
    for track_id, part in chunks.groupby("track_id", sort=False):
        _, valid = _stored(load_checkpoint(trained["fcn"]), test.loc[track_id].copy())
        assert len(part) == int(np.sum(-(-valid // crop)))
        assert part["chunk"].tolist() == list(range(len(part)))
        assert (np.diff(part["start_s"]) > 0).all() and (part["end_s"] > part["start_s"]).all()
        assert part["end_s"].max() <= test.loc[track_id, "duration_s"] + 1e-6
    probs = chunks[trained["tags"]].to_numpy()
    assert ((probs >= 0) & (probs <= 1)).all()
    empty = predict_chunks(checkpoint=trained["lstm"], index=index)
    assert empty.empty and list(empty.columns) == [*CHUNK_KEYS, *trained["tags"]]


@pytest.mark.parametrize("kind", ["fcn", "lstm"])  # window blocks, or one track at a time
def test_embed_tracks_logs_its_progress(
    trained: dict, kind: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "1e-9")  # every step is due a line
    caplog.set_level(logging.INFO, logger="pipeline.evaluation.predict")
    index = trained["index"]
    embed_tracks(checkpoint=trained[kind], index=index)
    lines = [m for m in caplog.messages if m.startswith(f"embed {trained[kind]}: ")]
    n = len(index)
    assert lines[-1].startswith(f"embed {trained[kind]}: {n}/{n} tracks (100.0 %)")
    assert lines[-1].endswith(", done") and len(lines) >= 2
    done = [int(line.split(": ")[1].split("/")[0]) for line in lines]
    assert done == sorted(done)
