"""Checkpoints, taggers and split predictions from small models trained on synthetic stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from pipeline.errors import PipelineError
from pipeline.evaluation.predict import predict_split
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import audio_frames
from pipeline.inference.loading import load_tagger
from pipeline.inference.network import NetworkTagger
from pipeline.inference.registry import TAGGER_KINDS
from pipeline.io.checkpoint import (
    COMMON_KEYS,
    FORMAT_VERSION,
    NETWORK_KEYS,
    load_checkpoint,
    save_checkpoint,
)
from pipeline.training.config import TrainConfig
from pipeline.training.window import macro_auc, train_model
from tests.training.test_data import build_synthetic


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models: one torch thread is faster, and fairer on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A crop-trained FCN and an LSTM, three epochs each."""
    root = tmp_path_factory.mktemp("tagger")
    data = build_synthetic(root / "stores")
    common = {
        "index": data["index"],
        "stats": data["stats"],
        "tags": data["tags"],
        "features": data["features"],
        "progress": False,
    }
    train_model(
        architecture="fcn",
        hparams={"depth": 4, "width": 4, "dropout": 0.1},
        train_config=TrainConfig(epochs=3, batch_size=8, lr=3e-3, crop_frames=32, eval_chunks=4),
        out_dir=root / "fcn",
        **common,
    )
    train_model(
        architecture="lstm",
        hparams={"hidden": 8, "mlp": 8, "dropout": 0.0},
        train_config=TrainConfig(epochs=2, batch_size=8, pool_frames=8, max_windows=2),
        out_dir=root / "lstm",
        **common,
    )
    return {**data, "fcn": root / "fcn" / "checkpoint.pt", "lstm": root / "lstm" / "checkpoint.pt"}


def _track(data: dict, split: str = "test", position: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stored windows and valid frames of one track."""
    row = data["index"][data["index"]["split"] == split].iloc[position]
    group = zarr.open_group(row["store"], mode="r")
    windows = group["windows"][row["start"] : row["stop"]]
    valid = audio_frames(
        starts_s=group["window_start_s"][row["start"] : row["stop"]],
        duration_s=row["duration_s"],
        features=FeatureSettings.from_dict(data["features"]),
    )
    return windows, valid


def test_checkpoint_is_plain_and_loads_with_weights_only(trained: dict) -> None:
    raw = torch.load(trained["fcn"], weights_only=True)
    assert set(COMMON_KEYS) | set(NETWORK_KEYS) <= set(raw)
    assert raw["format_version"] == FORMAT_VERSION and raw["kind"] == "network"
    assert raw["architecture"] == "fcn" and raw["crop_frames"] == 32
    assert raw["tags"] == trained["tags"] and raw["features"] == trained["features"]
    assert raw["stats"]["mean"] == pytest.approx(trained["stats"]["mean"])
    assert raw["train_config"]["eval_chunks"] == 4 and raw["eval_chunks"] == 4
    assert raw["selection"]["criterion"].startswith("best valid macro ROC-AUC")
    assert all(isinstance(v, torch.Tensor) for v in raw["state_dict"].values())


def test_tagger_reproduces_training_validation(trained: dict) -> None:
    """Song-level valid ROC-AUC of the tagger = the value the checkpoint was selected on."""
    for name in ("fcn", "lstm"):
        checkpoint = load_checkpoint(trained[name])
        songs, _ = predict_split(checkpoint=trained[name], index=trained["index"], split="valid")
        labels = np.array([[t in row for t in trained["tags"]] for row in songs["labels"]])
        roc, _, _ = macro_auc(labels.astype(float), songs[trained["tags"]].to_numpy())
        assert roc == pytest.approx(checkpoint["selection"]["value"], abs=1e-9), name


def test_reloaded_tagger_predicts_identically(trained: dict, tmp_path: Path) -> None:
    copy = tmp_path / "copy.pt"
    save_checkpoint(load_checkpoint(trained["fcn"]), copy)
    a, b = load_tagger(trained["fcn"]), load_tagger(copy)
    windows, valid = _track(trained, position=1)
    for method in ("predict_windows", "embed_windows", "embed_track"):
        out_a = getattr(a, method)(windows, valid_frames=valid)
        out_b = getattr(b, method)(windows, valid_frames=valid)
        np.testing.assert_array_equal(out_a, out_b)
    window_probs, song = a.predict_track(windows, valid_frames=valid)
    assert window_probs is not None and window_probs.shape == (len(windows), 2)
    np.testing.assert_allclose(song, window_probs.mean(axis=0), rtol=1e-6)
    logits = a.predict_windows(windows, valid_frames=valid)
    np.testing.assert_allclose(window_probs, 1 / (1 + np.exp(-logits)), rtol=1e-5)
    assert a.embed_windows(windows, valid_frames=valid).shape == (len(windows), 32)
    assert a.embed_track(windows, valid_frames=valid).shape == (32,)
    assert a.aggregation == "mean" and a.tags == trained["tags"]
    assert a.features == FeatureSettings.from_dict(trained["features"])


def test_sequence_tagger(trained: dict) -> None:
    tagger = load_tagger(trained["lstm"])
    assert isinstance(tagger, NetworkTagger) and tagger.aggregation == "model"
    windows, valid = _track(trained, position=2)
    window_probs, song = tagger.predict_track(windows, valid_frames=valid)
    assert window_probs is None and song.shape == (2,) and ((song > 0) & (song < 1)).all()
    assert tagger.predict_windows(windows, valid_frames=valid).shape == (len(windows), 2)
    assert tagger.embed_track(windows, valid_frames=valid).shape == (8,)
    songs, window_table = predict_split(
        checkpoint=trained["lstm"], index=trained["index"], split="test"
    )
    assert window_table.empty and list(window_table.columns) == [
        "track_id",
        "window",
        "start_s",
        *trained["tags"],
    ]
    row = songs.set_index("track_id").loc[
        trained["index"].query("split == 'test'").iloc[2]["track_id"]
    ]
    np.testing.assert_allclose(row[trained["tags"]].to_numpy(float), song, rtol=1e-6)


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


def test_checkpoint_errors_name_the_file(trained: dict, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="nothing.pt.*does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(PipelineError, match="text.pt.*not a checkpoint"):
        load_checkpoint(text)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(PipelineError, match="foreign.pt.*no format_version"):
        load_checkpoint(foreign)
    newer = tmp_path / "newer.pt"
    torch.save({**load_checkpoint(trained["fcn"]), "format_version": FORMAT_VERSION + 1}, newer)
    with pytest.raises(PipelineError, match="newer.pt.*format 2, newer"):
        load_tagger(newer)
    partial = tmp_path / "partial.pt"
    torch.save({"format_version": 1, "kind": "network", "tags": []}, partial)
    with pytest.raises(PipelineError, match="partial.pt.*lacks key"):
        load_checkpoint(partial)
    with pytest.raises(PipelineError, match="Path"):
        save_checkpoint({**load_checkpoint(trained["fcn"]), "hparams": {"x": tmp_path}}, newer)
    odd = tmp_path / "odd.pt"
    torch.save({**load_checkpoint(trained["fcn"]), "kind": "no_such_kind"}, odd)
    with pytest.raises(PipelineError, match="'no_such_kind'"):
        load_tagger(odd)


def test_tagger_registry_dispatches_on_kind(
    trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = tmp_path / "odd.pt"
    save_checkpoint({**load_checkpoint(trained["fcn"]), "kind": "constant"}, odd)
    seen = []
    monkeypatch.setitem(TAGGER_KINDS, "constant", lambda ckpt, device: seen.append(device) or 42)
    assert load_tagger(odd, device="cpu") == 42 and seen == ["cpu"]


def test_tagger_refuses_wrong_inputs(trained: dict, tmp_path: Path) -> None:
    tagger = load_tagger(trained["fcn"])
    with pytest.raises(PipelineError, match=r"\(3, 16, 50\)"):
        tagger.predict_windows(np.zeros((3, 16, 50), np.float16))
    other = trained["index"].copy()
    store = tmp_path / "other.zarr"
    group = zarr.open_group(store, mode="w")
    group.attrs["features"] = {**trained["features"], "n_mels": 20}
    other["store"] = str(store)
    with pytest.raises(PipelineError, match="other.zarr"):
        predict_split(checkpoint=trained["fcn"], index=other)
    with pytest.raises(PipelineError, match="'nope'"):
        predict_split(checkpoint=trained["fcn"], index=trained["index"], split="nope")
