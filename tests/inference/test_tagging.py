"""Tagging audio files: the stream agrees with the stored features, outputs, bad input, memory.

Checkpoints of every tagger kind are trained in seconds on the synthetic stores of
:func:`tests.training.test_data.build_synthetic` (16 mel bands, 1.008 s windows of 64 frames); the
audio is real encoded audio written by :func:`tests.helpers.audio.write_audio`. The fixture
:func:`checkpoints` is shared with ``tests/test_cli.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.errors import AudioError, ConfigError
from pipeline.evaluation.taggram import write_taggram
from pipeline.features.extract import extract_shard, extract_track
from pipeline.features.extractors import make_extractor
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import audio_frames
from pipeline.inference.aggregators import SONG_AGGREGATORS, aggregator_key
from pipeline.inference.file_tagger import FileTagger
from pipeline.inference.loading import load_tagger
from pipeline.inference.outputs import write_embeddings
from pipeline.inference.streaming import TagResult, WindowBatch, expected_windows
from pipeline.io.audio import WindowSettings, iter_windows
from pipeline.io.store import FeatureStore
from pipeline.training.config import TrainConfig
from pipeline.training.run import TWO_STAGE_TRAINERS
from pipeline.training.window import train_model
from tests.helpers.audio import tone, write_audio
from tests.training.test_data import build_synthetic

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KINDS = ("fcn", "lstm", "bag_of_frames", "embedding_svm", "embedding_lstm")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models: one torch thread is faster, and fairer on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A checkpoint of each tagger kind, trained briefly on the synthetic stores.

    ``fcn``: a crop-trained window model (aggregation "mean"); ``lstm``: a sequence model
    reading at most 2 windows; ``bag_of_frames``, ``embedding_svm`` and ``embedding_lstm``
    (an LSTM on the embeddings of at most 2 windows): two-stage models.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tagging")
    data = build_synthetic(root / "stores", n_tracks=24)
    common = {
        "index": data["index"],
        "stats": data["stats"],
        "tags": data["tags"],
        "features": data["features"],
        "progress": False,
    }
    try:
        train_model(
            architecture="fcn",
            hparams={"depth": 4, "width": 4},
            train_config=TrainConfig(
                epochs=2, batch_size=8, lr=3e-3, crop_frames=32, eval_chunks=2
            ),
            out_dir=root / "fcn",
            **common,
        )
        train_model(
            architecture="lstm",
            hparams={"hidden": 8, "mlp": 8, "dropout": 0.0},
            train_config=TrainConfig(epochs=1, batch_size=8, pool_frames=8, max_windows=2),
            out_dir=root / "lstm",
            **common,
        )
        TWO_STAGE_TRAINERS["bag_of_frames"](
            architecture="bag_of_frames",
            hparams={"codebook_size": 8, "hidden": 8, "max_frames": 500},
            train_config=TrainConfig(epochs=2, batch_size=8, lr=1e-2),
            out_dir=root / "bag_of_frames",
            **common,
        )
        TWO_STAGE_TRAINERS["embedding_svm"](
            architecture="embedding_svm",
            hparams={"network": "fcn", "network_hparams": {"depth": 4, "width": 4}, "C": 1.0},
            train_config=TrainConfig(),
            out_dir=root / "embedding_svm",
            **common,
        )
        TWO_STAGE_TRAINERS["embedding_lstm"](
            architecture="embedding_lstm",
            hparams={
                "network": "fcn",
                "network_hparams": {"depth": 4, "width": 4},
                "lstm": {"hidden": 8, "mlp": 8, "dropout": 0.0},
            },
            train_config=TrainConfig(epochs=2, batch_size=8, lr=1e-2, max_windows=2),
            out_dir=root / "embedding_lstm",
            **common,
        )
    finally:
        torch.set_num_threads(threads)
    return {**data, "root": root, **{k: root / k / "checkpoint.pt" for k in KINDS}}


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real encoded files: rates, channels and lengths the synthetic model never saw."""
    folder = tmp_path_factory.mktemp("audio")
    low = tone(duration_s=5.3, sample_rate=44100, freq_hz=180.0, channels=2, seed=1)
    return {
        "wav": write_audio(folder / "stereo.wav", data=low, sample_rate=44100),
        "flac": write_audio(folder / "mono.flac", duration_s=3.4, freq_hz=3000.0),
        "ogg": write_audio(folder / "rate.ogg", duration_s=2.5, sample_rate=22050, seed=2),
        "mp3": write_audio(folder / "clip.mp3", duration_s=2.2, sample_rate=44100, seed=3),
        "short": write_audio(folder / "short.wav", duration_s=0.4, freq_hz=200.0),
    }


@pytest.fixture(scope="module")
def stored(checkpoints: dict, audio: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """The same audio through the feature stage (extract_shard): one store, one track each."""
    store = tmp_path_factory.mktemp("store") / "0000.zarr"
    tracks = pd.DataFrame({"track_id": list(audio), "path": [str(p) for p in audio.values()]})
    features = FeatureSettings.from_dict(checkpoints["features"])
    summary = extract_shard(
        tracks=tracks,
        settings=features,
        store_path=store,
        failed_path=store.with_suffix(".failed.parquet"),
    )
    assert summary["n_stored"] == len(audio)
    return FeatureStore(store)


def _stored_track(store: FeatureStore, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stored windows, valid frames and window starts of one track, as evaluation reads them."""
    index = store.index()
    track = list(index["track_id"]).index(name)
    start, stop = (int(v) for v in index["offsets"][track : track + 2])
    starts = store.group["window_start_s"][start:stop]
    features = FeatureSettings.from_dict(store.attrs["features"])
    valid = audio_frames(
        starts_s=starts, duration_s=float(index["duration_s"][track]), features=features
    )
    return store.track_windows(track=track), valid, starts


@pytest.mark.parametrize("kind", KINDS)
def test_file_tags_equal_predictions_on_stored_features(
    checkpoints: dict, audio: dict[str, Path], stored: FeatureStore, kind: str
) -> None:
    """Training/inference consistency: tagging a file = predict_track on its stored windows."""
    tagger = load_tagger(checkpoints[kind])
    file_tagger = FileTagger(tagger, embed=True, batch_windows=2)  # several batches per file
    for name, path in audio.items():
        windows, valid, starts = _stored_track(stored, name)
        result = file_tagger.tag(path)
        assert result.n_windows == len(windows), name
        np.testing.assert_allclose(result.window_start_s, starts, atol=1e-6)
        _, song = tagger.predict_track(windows, valid_frames=valid)
        np.testing.assert_allclose(result.song_probs, song, atol=2e-6, err_msg=f"{kind} {name}")
        logits = tagger.predict_windows(windows, valid_frames=valid)
        np.testing.assert_allclose(result.window_probs, 1 / (1 + np.exp(-logits)), atol=1e-6)
        embedding = tagger.embed_track(windows, valid_frames=valid)
        np.testing.assert_allclose(result.embedding, embedding, rtol=1e-5, atol=1e-6)
        assert result.window_embeddings.shape == (len(windows), len(embedding))


def test_aggregators_are_chosen_by_registry(checkpoints: dict) -> None:
    keys = {kind: aggregator_key(load_tagger(checkpoints[kind])) for kind in KINDS}
    assert keys == {
        "fcn": "mean",
        "lstm": "network",
        "bag_of_frames": "bag_of_frames",
        "embedding_svm": "embedding_classifier",
        "embedding_lstm": "embedding_sequence",
    }
    assert {
        "mean",
        "network",
        "bag_of_frames",
        "embedding_classifier",
        "embedding_sequence",
        "buffer",
    } <= set(SONG_AGGREGATORS)


@pytest.mark.parametrize("estimate", [None, 0, 40])
def test_sequence_block_is_decoded_again_when_the_header_is_wrong(
    checkpoints: dict, audio: dict[str, Path], monkeypatch: pytest.MonkeyPatch, estimate
) -> None:
    """The LSTM reads the middle 2 of 5-6 windows; a wrong or missing length estimate
    (MP3 headers) costs a second decoding pass, not a different answer."""
    tagger = load_tagger(checkpoints["lstm"])
    right = FileTagger(tagger, embed=True).tag(audio["wav"])
    monkeypatch.setattr("pipeline.inference.file_tagger.expected_windows", lambda **_: estimate)
    rereads: list[tuple[int, int]] = []
    reread = FileTagger._reread

    def spy(self: FileTagger, path: Path, *, start: int, stop: int, duration_s: float):
        rereads.append((start, stop))
        return reread(self, path, start=start, stop=stop, duration_s=duration_s)

    monkeypatch.setattr(FileTagger, "_reread", spy)
    wrong = FileTagger(tagger, embed=True).tag(audio["wav"])
    assert right.n_windows == 6 and rereads == [(2, 4)]
    np.testing.assert_array_equal(wrong.song_probs, right.song_probs)
    np.testing.assert_array_equal(wrong.embedding, right.embedding)


def test_unknown_song_models_fall_back_to_the_first_windows(
    checkpoints: dict, audio: dict[str, Path]
) -> None:
    tagger = load_tagger(checkpoints["lstm"])
    aggregator = SONG_AGGREGATORS["buffer"](tagger, expected_windows=None, embed=False)
    assert aggregator.limit == int(np.ceil(900 / tagger.features.window.hop_s))
    windows, valid, _ = _stored_track_from_file(tagger, audio["wav"])
    aggregator.update(
        WindowBatch(
            first=0,
            starts_s=np.zeros(len(windows)),
            windows=windows,
            valid=valid,
            logits=tagger.predict_windows(windows, valid_frames=valid),
            embeddings=None,
            last=True,
        )
    )
    song, embedding = aggregator.finish(n_windows=len(windows), reread=None)
    np.testing.assert_array_equal(song, tagger.predict_track(windows, valid_frames=valid)[1])
    assert embedding is None
    # a long track: only the first `limit` windows are kept, however many batches follow
    capped = SONG_AGGREGATORS["buffer"](tagger, expected_windows=None, embed=True)
    capped.limit = 4
    for first in (0, 3):
        capped.update(
            WindowBatch(
                first=first,
                starts_s=np.zeros(3),
                windows=windows[first : first + 3],
                valid=valid[first : first + 3],
                logits=np.zeros((3, 2)),
                embeddings=None,
                last=first == 3,
            )
        )
    assert len(capped.windows) == 4
    song, embedding = capped.finish(n_windows=6, reread=None)
    _, expected = tagger.predict_track(windows[:4], valid_frames=valid[:4])
    np.testing.assert_array_equal(song, expected)
    assert embedding.shape == (8,)


def _stored_track_from_file(tagger, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the feature stage computes for one file (extract_track), with valid frames."""
    result = extract_track(track_id="t", path=str(path), extractor=make_extractor(tagger.features))
    valid = audio_frames(
        starts_s=result.starts_s, duration_s=result.duration_s, features=tagger.features
    )
    return result.windows, valid, result.starts_s


def test_expected_windows_match_the_stream(checkpoints: dict, audio: dict[str, Path]) -> None:
    window = FeatureSettings.from_dict(checkpoints["features"]).window
    for name, path in audio.items():
        actual = sum(1 for _ in iter_windows(path=path, settings=window))
        assert expected_windows(path=path, settings=window) == actual, name
    drop = WindowSettings(length_s=1.0, hop_s=0.5, tail="drop")
    assert expected_windows(path=audio["flac"], settings=drop) == sum(
        1 for _ in iter_windows(path=audio["flac"], settings=drop)
    )
    assert expected_windows(path=audio["wav"].with_name("missing.wav"), settings=window) is None


def test_top_tags_are_ordered() -> None:
    result = TagResult(
        path="x.wav",
        tags=["a", "b", "c", "d"],
        song_probs=np.array([0.2, 0.9, 0.5, 0.9], np.float32),
        window_probs=np.zeros((1, 4), np.float32),
        window_start_s=np.zeros(1),
        duration_s=1.0,
        source_sample_rate=16000,
        channels=1,
    )
    assert [t for t, _ in result.top(3)] == ["b", "d", "c"]  # ties in vocabulary order
    assert [t for t, _ in result.top(0)] == ["b", "d", "c", "a"]
    assert len(result.top(10)) == 4
    record = result.to_record(top=2)
    assert record["tags"] == ["b", "d"] and record["probabilities"] == pytest.approx([0.9, 0.9])
    assert json.loads(json.dumps(record)) == record


def test_short_stereo_and_resampled_files(checkpoints: dict, audio: dict[str, Path]) -> None:
    file_tagger = FileTagger(load_tagger(checkpoints["fcn"]))
    short = file_tagger.tag(audio["short"])
    assert short.n_windows == 1 and short.duration_s == pytest.approx(0.4)
    wav = file_tagger.tag(audio["wav"])
    assert (wav.source_sample_rate, wav.channels) == (44100, 2)
    assert wav.n_windows == 6 and wav.window_probs.shape == (6, 2)  # 5 full + a 0.26 s tail
    limited = FileTagger(load_tagger(checkpoints["fcn"]), max_duration_s=2.0).tag(audio["wav"])
    assert limited.n_windows == 2 and limited.duration_s == pytest.approx(2.0)
    assert any("max_duration_s" in w for w in limited.warnings)
    with pytest.raises(ConfigError, match="-1"):
        FileTagger(load_tagger(checkpoints["fcn"]), max_duration_s=-1)


def test_bad_files_raise_audio_errors_naming_the_file(checkpoints: dict, tmp_path: Path) -> None:
    file_tagger = FileTagger(load_tagger(checkpoints["fcn"]))
    text = tmp_path / "notes.mp3"
    text.write_text("these are not the samples you are looking for\n" * 20)
    empty = tmp_path / "empty.wav"
    empty.touch()
    for path, why in (
        (tmp_path / "missing.flac", "not found"),
        (text, "not a readable audio file"),
        (empty, "empty file"),
    ):
        with pytest.raises(AudioError, match=why) as info:
            file_tagger.tag(path)
        assert str(path) in str(info.value)


def test_taggram_and_embedding_files(
    checkpoints: dict, audio: dict[str, Path], tmp_path: Path
) -> None:
    file_tagger = FileTagger(load_tagger(checkpoints["fcn"]), embed=True)
    results = [file_tagger.tag(audio["wav"]), file_tagger.tag(audio["short"])]
    result = results[0]
    write_taggram(result, csv_path=tmp_path / "t.csv", png_path=tmp_path / "t.png", title="t")
    table = pd.read_csv(tmp_path / "t.csv")
    assert list(table.columns) == ["window", "start_s", *result.tags]
    assert table[result.tags].shape == (result.n_windows, len(result.tags))
    np.testing.assert_allclose(table[result.tags].to_numpy(), result.window_probs, atol=1e-5)
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG_SIGNATURE

    dim = result.embedding.shape[0]
    write_embeddings(results, path=tmp_path / "e.npz")
    npz = np.load(tmp_path / "e.npz")
    assert npz["embedding"].shape == (2, dim) and list(npz["offsets"]) == [0, 6, 7]
    assert npz["window_embedding"].shape == (7, dim) and npz["window_start_s"].shape == (7,)
    assert list(npz["path"]) == [r.path for r in results]
    np.testing.assert_array_equal(npz["window_embedding"][:6], result.window_embeddings)

    write_embeddings(results, path=tmp_path / "e.parquet")
    frame = pq.read_table(tmp_path / "e.parquet").to_pandas()
    assert list(frame.columns) == ["path", "level", "window", "start_s", "embedding"]
    assert (frame["level"] == "track").sum() == 2 and (frame["level"] == "window").sum() == 7
    vectors = np.stack(frame["embedding"].to_numpy())
    assert vectors.shape == (9, dim)
    np.testing.assert_array_equal(vectors[0], result.embedding)
    with pytest.raises(ConfigError, match=r"'\.h5'"):
        write_embeddings(results, path=tmp_path / "e.h5")


#: Run in a fresh interpreter: peak RSS (ru_maxrss, kB on Linux) after tagging a short file,
#: then after tagging a long one; prints the growth in MB as JSON.
_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np, soundfile as sf, torch
    from pipeline.inference.loading import load_tagger
    from pipeline.inference.file_tagger import FileTagger

    torch.set_num_threads(1)
    checkpoint, short, long, minutes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    rate = 16000
    t = np.arange(60 * rate) / rate
    minute = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    minute += 0.01 * np.random.default_rng(0).standard_normal(len(t)).astype(np.float32)
    with sf.SoundFile(long, "w", samplerate=rate, channels=1, format="FLAC") as f:
        for _ in range(minutes):
            for i in range(0, len(minute), 8192):  # blocks: long writes crash encoders
                f.write(minute[i : i + 8192])
    del t, minute
    tagger = FileTagger(load_tagger(checkpoint))
    tagger.tag(short)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = tagger.tag(long)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_mb": (after - before) / 1024, "peak_mb": after / 1024,
                      "n_windows": result.n_windows, "duration_s": result.duration_s,
                      "seconds": seconds}))
    """
)


def test_one_hour_file_in_bounded_memory(
    checkpoints: dict, audio: dict[str, Path], tmp_path: Path
) -> None:
    """A one-hour 16 kHz FLAC (3,571 windows) is tagged with a small, flat peak RSS.

    The whole decoded hour would be 230 MB of float32 samples, its features 880 MB; the
    stream holds one 60 s block and a few windows at a time.
    """
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEMORY_SCRIPT,
            str(checkpoints["fcn"]),
            str(audio["flac"]),
            str(tmp_path / "hour.flac"),
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["duration_s"] == pytest.approx(3600.0)
    assert stats["n_windows"] == 3572  # 3,571 windows of 1.008 s and a padded 0.43 s tail
    assert stats["growth_mb"] < 150, stats
