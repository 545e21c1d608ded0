"""``embedding_lstm``: a frozen network's window embeddings as a sequence, an LSTM on top.

The stores of :func:`tests.helpers.synthetic.build_synthetic`: tag ``low`` is a tone in band 3, tag
``high`` a tone in band 11; 24 train / 8 valid / 8 test tracks of 1 to 3 windows. The model
reads at most 2 windows, so a 3-window track is cut to its middle block.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.cli import EXIT_OK, main
from pipeline.errors import ConfigError, PipelineError
from pipeline.evaluation.metrics import macro_auc
from pipeline.evaluation.predict import predict_split
from pipeline.evaluation.tables import HISTORY_COLUMNS
from pipeline.features.extract import extract_track
from pipeline.features.extractors import make_extractor
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import audio_frames, middle_block
from pipeline.inference.aggregators import aggregator_key
from pipeline.inference.embedding import EmbeddingClassifierConfig
from pipeline.inference.file_tagger import FileTagger
from pipeline.inference.loading import load_tagger
from pipeline.inference.network import NetworkTagger
from pipeline.inference.sequence import EmbeddingSequenceTagger
from pipeline.io.checkpoint import check_plain, load_checkpoint, save_checkpoint
from pipeline.io.files import write_json
from pipeline.models import build_model
from pipeline.training.config import TrainConfig
from pipeline.training.embedding import frozen_network
from pipeline.training.loaders import TrackSequenceDataset
from pipeline.training.run import TWO_STAGE_TRAINERS, get_trainer, run_training
from pipeline.training.sequence import train_embedding_sequence
from pipeline.training.two_stage import StoreReader
from tests.helpers.audio import write_audio
from tests.helpers.synthetic import build_synthetic
from tests.training.test_twostage import SUMMARY_KEYS

# musicnn's timbral filters spanning every band keep where a tone is (see test_twostage).
MUSICNN = {"timbral_heights": [1.0], "temporal_lengths": [8]}
LSTM = {"hidden": 16, "mlp": 16, "dropout": 0.0}
HPARAMS = {"network": "musicnn", "network_hparams": MUSICNN, "lstm": LSTM}
TRAIN = {"epochs": 12, "batch_size": 8, "lr": 1e-2, "patience": 12, "max_windows": 2}


def _fit(data: dict, out: Path, hparams: dict, **cfg) -> dict:
    return TWO_STAGE_TRAINERS["embedding_lstm"](
        architecture="embedding_lstm",
        hparams=hparams,
        train_config=TrainConfig(**cfg),
        index=data["index"],
        stats=data["stats"],
        tags=data["tags"],
        features=data["features"],
        out_dir=out,
        progress=False,
    )


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("embedding_lstm")
    data = build_synthetic(root / "stores")
    summary = _fit(data, root / "model", HPARAMS, **TRAIN)
    return {**data, "root": root, "summary": summary, "path": root / "model" / "checkpoint.pt"}


def _tracks(data: dict, split: str) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
    """(windows, valid frames, tags) of every track of a split."""
    reader = StoreReader(features=FeatureSettings.from_dict(data["features"]))
    rows = data["index"][data["index"]["split"] == split]
    return [(*reader.track(row), list(row.tags)) for row in rows.itertuples(index=False)]


def test_dispatch_and_registration() -> None:
    assert get_trainer("embedding_lstm") is train_embedding_sequence
    assert middle_block(3, max_windows=10) == (0, 3)
    assert middle_block(15, max_windows=10) == (2, 12)
    assert middle_block(16, max_windows=10) == (3, 13)


def test_tags_are_learned(fitted: dict) -> None:
    tagger = load_tagger(fitted["path"])
    assert isinstance(tagger, EmbeddingSequenceTagger) and tagger.aggregation == "model"
    songs, labels = [], []
    for windows, valid, tags in _tracks(fitted, "test"):
        window_probs, song = tagger.predict_track(windows, valid_frames=valid)
        assert window_probs is None and song.shape == (2,)
        songs.append(song)
        labels.append([t in tags for t in fitted["tags"]])
    roc, _, n_scored = macro_auc(np.array(labels, float), np.array(songs))
    assert n_scored == 2 and roc > 0.85, roc


def test_outputs_match_the_network_trainer(fitted: dict) -> None:
    out, summary = fitted["path"].parent, fitted["summary"]
    assert SUMMARY_KEYS <= set(summary) and summary["architecture"] == "embedding_lstm"
    assert json.loads((out / "train_summary.json").read_text()) == summary
    assert summary["n_train_tracks"] == 24 and summary["max_windows"] == 2
    assert summary["embedding_dim"] == 64 and summary["frozen_params"] > 0
    # LSTM(64 -> 16) + MLP(16 -> 16) + output(16 -> 2), plus the scaler's mean and std
    lstm_params = 4 * 16 * (64 + 16) + 2 * 4 * 16 + (16 * 16 + 16) + (16 * 2 + 2)
    assert summary["params"] == lstm_params + 2 * 64
    # every train window counts, except the first of each 3-window track (middle block)
    lengths = fitted["index"].query("split == 'train'").eval("stop - start")
    assert summary["n_train_windows"] == int(np.minimum(lengths, 2).sum())
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == HISTORY_COLUMNS
    assert len(history) == summary["epochs_run"] == 12
    assert summary["best_valid_roc_auc"] == pytest.approx(history["valid_roc_auc"].max())
    assert summary["best_epoch"] == int(history["valid_roc_auc"].idxmax()) + 1

    raw = torch.load(fitted["path"], weights_only=True)  # plain values only
    check_plain(raw)
    assert raw["kind"] == "embedding_sequence" and raw["max_windows"] == 2
    assert raw["network"]["architecture"] == "musicnn" and raw["network"]["source"] == "random"
    assert raw["scaler"]["mean"].shape == raw["scaler"]["std"].shape == (64,)
    assert raw["sequence_model"]["architecture"] == "lstm"
    assert raw["sequence_model"]["hparams"] == LSTM
    assert raw["selection"]["epoch"] == summary["best_epoch"]
    # The tagger reproduces the validation score the checkpoint was selected on.
    songs, windows = predict_split(checkpoint=fitted["path"], index=fitted["index"], split="valid")
    assert windows.empty
    labels = np.array([[t in row for t in fitted["tags"]] for row in songs["labels"]], float)
    roc, _, _ = macro_auc(labels, songs[fitted["tags"]].to_numpy())
    assert roc == pytest.approx(raw["selection"]["value"], abs=1e-6)


def test_checkpoint_round_trip_gives_identical_predictions(fitted: dict, tmp_path: Path) -> None:
    copy = tmp_path / "copy.pt"
    save_checkpoint(load_checkpoint(fitted["path"]), copy)
    a, b = load_tagger(fitted["path"]), load_tagger(copy)
    for windows, valid, _ in _tracks(fitted, "valid"):
        for method in ("predict_windows", "embed_windows", "embed_track", "network_embeddings"):
            np.testing.assert_array_equal(
                getattr(a, method)(windows, valid_frames=valid),
                getattr(b, method)(windows, valid_frames=valid),
            )
        np.testing.assert_array_equal(
            a.predict_track(windows, valid_frames=valid)[1],
            b.predict_track(windows, valid_frames=valid)[1],
        )


def test_predictions_are_the_lstm_on_standardised_embeddings(fitted: dict) -> None:
    raw = load_checkpoint(fitted["path"])
    tagger = load_tagger(fitted["path"])
    network = NetworkTagger(raw["network"])
    mean, std = raw["scaler"]["mean"].numpy(), raw["scaler"]["std"].numpy()
    lstm = build_model("lstm", n_tags=2, n_bins=64, n_frames=2, hparams=LSTM)
    lstm.load_state_dict(raw["sequence_model"]["state_dict"])
    lstm.eval()
    windows, valid, _ = next(t for t in _tracks(fitted, "test") if len(t[0]) == 2)
    x = (network.embed_windows(windows, valid_frames=valid) - mean) / std  # (2, 64)
    with torch.no_grad():
        logits = lstm(torch.from_numpy(x)[None]).numpy()[0]
        embedding = lstm.embed(torch.from_numpy(x)[None]).numpy()[0]  # (16,)
        one_step = lstm(torch.from_numpy(x)[:, None]).numpy()  # each window alone
        one_step_embedding = lstm.embed(torch.from_numpy(x)[:, None]).numpy()  # (2, 16)
    _, song = tagger.predict_track(windows, valid_frames=valid)
    np.testing.assert_allclose(song, 1 / (1 + np.exp(-logits)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tagger.embed_track(windows, valid_frames=valid), embedding, 1e-5)
    np.testing.assert_allclose(
        tagger.predict_windows(windows, valid_frames=valid), one_step, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        tagger.embed_windows(windows, valid_frames=valid), one_step_embedding, 1e-5, 1e-6
    )
    np.testing.assert_array_equal(
        tagger.network_embeddings(windows, valid_frames=valid),
        network.embed_windows(windows, valid_frames=valid),
    )
    # a different order of the same windows is a different song (the LSTM reads in order)
    _, reversed_song = tagger.predict_track(windows[::-1], valid_frames=valid[::-1])
    assert not np.allclose(reversed_song, song)


def test_long_tracks_are_read_as_their_middle_block(fitted: dict) -> None:
    tagger = load_tagger(fitted["path"])
    windows, valid, _ = next(t for t in _tracks(fitted, "valid") if len(t[0]) == 3)
    long_windows = np.concatenate([windows, windows[::-1], windows])  # 9 windows
    long_valid = np.concatenate([valid, valid[::-1], valid])
    _, song = tagger.predict_track(long_windows, valid_frames=long_valid)
    start, stop = middle_block(9, max_windows=2)
    assert (start, stop) == (3, 5)
    _, block = tagger.predict_track(long_windows[3:5], valid_frames=long_valid[3:5])
    _, first = tagger.predict_track(long_windows[:2], valid_frames=long_valid[:2])
    np.testing.assert_array_equal(song, block)
    assert not np.allclose(song, first)
    # the block of the network trainers' sequence dataset in validation
    dataset = TrackSequenceDataset(
        index=fitted["index"],
        stats=fitted["stats"],
        tags=fitted["tags"],
        split="valid",
        max_windows=1,
    )
    for item, row in enumerate(dataset.tracks.itertuples(index=False)):
        lo, hi = middle_block(int(row.stop - row.start), max_windows=1)
        assert dataset.window_block(item) == (row.start + lo, row.start + hi)


def test_from_model_through_run_training(fitted: dict, tmp_path: Path) -> None:
    """The workflow's path: ``hparams.from_model`` becomes the network checkpoint's path."""
    features = FeatureSettings.from_dict(fitted["features"])
    network = tmp_path / "fcn.pt"
    save_checkpoint(
        frozen_network(
            EmbeddingClassifierConfig(network="fcn", network_hparams={"depth": 4, "width": 4}),
            cfg=TrainConfig(),
            tags=fitted["tags"],
            features=features,
            stats=fitted["stats"],
            n_bins=16,
        ),
        network,
    )
    fitted["index"].to_parquet(tmp_path / "index.parquet")
    write_json(fitted["stats"], tmp_path / "stats.json")
    write_json({"tags": fitted["tags"]}, tmp_path / "vocabulary.json")
    model = {
        "architecture": "embedding_lstm",
        "features": "logmel",
        "hparams": {"from_model": "fcn", "lstm": {"hidden": 8, "mlp": 0}},
        "train": {"epochs": 2, "max_windows": 1, "label_fraction": 0.5},
    }
    summary = run_training(
        model=model,
        index_path=tmp_path / "index.parquet",
        stats_path=tmp_path / "stats.json",
        vocabulary_path=tmp_path / "vocabulary.json",
        out_dir=tmp_path / "out",
        network_checkpoint=network,
        progress=False,
    )
    assert summary["network"] == "fcn" and summary["weights"] == str(network)
    assert summary["n_train_tracks"] == 12 and summary["max_windows"] == 1
    assert summary["n_train_windows"] == 24  # one window per train track
    tagger = load_tagger(tmp_path / "out" / "checkpoint.pt")
    assert tagger.max_windows == 1 and tagger.model.embedding_dim == 8


def test_bad_settings_are_errors(fitted: dict, tmp_path: Path) -> None:
    cases = [
        ({"netwrk": "fcn"}, r"\['netwrk'\]"),
        ({"lstm": {"hiden": 8}}, r"\['hiden'\]"),
        ({"lstm": {"hidden": 0}}, "hidden: 0"),
        ({"lstm": [8]}, r"embedding_lstm.lstm: \[8\]"),
        ({"weights": "/no/such.pt"}, r"embedding_lstm.weights: '/no/such.pt'"),
        ({"network": "lstm"}, r"embedding_lstm.network: 'lstm'"),
    ]
    for hparams, match in cases:
        with pytest.raises(ConfigError, match=match):
            _fit(fitted, tmp_path / "x", hparams, epochs=1)
    raw = load_checkpoint(fitted["path"])
    del raw["scaler"]
    save_checkpoint(raw, tmp_path / "partial.pt")
    with pytest.raises(PipelineError, match=r"'embedding_sequence' lacks key\(s\) \['scaler'\]"):
        load_tagger(tmp_path / "partial.pt")


def test_tag_command_equals_predict_track(
    fitted: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``pipeline tag`` on a real file = predict_track on the file's stored-style features."""
    path = write_audio(tmp_path / "song.wav", duration_s=4.6, sample_rate=22050, freq_hz=180.0)
    features = FeatureSettings.from_dict(fitted["features"])
    track = extract_track(track_id="song", path=str(path), extractor=make_extractor(features))
    assert track.windows is not None and len(track.windows) > 2  # the middle block is read
    valid = audio_frames(starts_s=track.starts_s, duration_s=track.duration_s, features=features)
    tagger = load_tagger(fitted["path"])
    assert aggregator_key(tagger) == "embedding_sequence"
    _, song = tagger.predict_track(track.windows, valid_frames=valid)

    table = tmp_path / "embeddings.parquet"
    args = ["tag", str(path), "-c", str(fitted["path"]), "--json", "--top", "0"]
    assert main([*args, "--embeddings", str(table)]) == EXIT_OK
    record = json.loads(capsys.readouterr().out)
    rows = pd.read_parquet(table)  # track and window embeddings share one size (the LSTM's)
    assert list(rows["level"]) == ["track"] + ["window"] * len(track.windows)
    assert {len(e) for e in rows["embedding"]} == {16}
    got = dict(zip(record["tags"], record["probabilities"], strict=True))
    assert record["n_windows"] == len(track.windows)
    np.testing.assert_allclose([got[t] for t in fitted["tags"]], song, atol=2e-6)
    result = FileTagger(tagger, embed=True, batch_windows=1).tag(path)
    np.testing.assert_allclose(result.song_probs, song, atol=2e-6)
    np.testing.assert_allclose(
        result.embedding, tagger.embed_track(track.windows, valid_frames=valid), atol=1e-5
    )
    logits = tagger.predict_windows(track.windows, valid_frames=valid)
    np.testing.assert_allclose(result.window_probs, 1 / (1 + np.exp(-logits)), atol=1e-6)
