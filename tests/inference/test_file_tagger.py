"""Tagging audio files (:class:`FileTagger`): the stream agrees with the stored features,
short, stereo and resampled files, bad input, bounded memory.

Checkpoints of every tagger kind come from the ``checkpoints`` fixture (trained in seconds on
the synthetic stores of :func:`tests.helpers.synthetic.build_synthetic`: 16 mel bands,
1.008 s windows of 64 frames); the audio is the ``audio`` fixture's real encoded files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import EXIT_FAILED_FILES, main
from pipeline.errors import AudioError, ConfigError
from pipeline.features.extract import extract_shard
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import audio_frames
from pipeline.inference.file_tagger import FileTagger
from pipeline.inference.loading import load_tagger
from pipeline.inference.network import NetworkTagger
from pipeline.inference.streaming import BATCH_SAMPLES, MAX_BATCH
from pipeline.io.store import FeatureStore
from tests.helpers.bad_inputs import BAD_AUDIO, call_with_deadline, write_bad_audio
from tests.helpers.checkpoints import KINDS, random_network_checkpoint


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
        (tmp_path / "missing.flac", "does not exist"),
        (text, "not a readable audio file"),
        (empty, "is empty"),
    ):
        with pytest.raises(AudioError, match=why) as info:
            file_tagger.tag(path)
        assert str(path) in str(info.value)


def test_batch_size_follows_the_window_length_and_must_be_positive() -> None:
    tagger = NetworkTagger(random_network_checkpoint())
    window = tagger.features.window.length  # 16,128 samples
    assert FileTagger(tagger).batch_windows == min(MAX_BATCH, BATCH_SAMPLES // window) == 64
    assert FileTagger(tagger, batch_windows=3).batch_windows == 3
    with pytest.raises(ConfigError, match="batch_windows: 0"):
        FileTagger(tagger, batch_windows=0)
    with pytest.raises(ConfigError, match="max_duration_s: 0"):
        FileTagger(tagger, max_duration_s=0)


def test_batches_do_not_change_the_result(audio: dict[str, Path]) -> None:
    """One window per batch or all in one: the same taggram, song and embeddings."""
    tagger = NetworkTagger(random_network_checkpoint())
    one = FileTagger(tagger, embed=True, batch_windows=1).tag(audio["wav"])
    many = FileTagger(tagger, embed=True).tag(audio["wav"])
    assert one.n_windows == many.n_windows == 6
    np.testing.assert_array_equal(one.window_start_s, many.window_start_s)
    np.testing.assert_allclose(one.window_probs, many.window_probs, atol=1e-6)
    np.testing.assert_allclose(one.song_probs, many.song_probs, atol=1e-6)
    np.testing.assert_allclose(one.embedding, many.embedding, atol=1e-5)
    np.testing.assert_allclose(one.window_embeddings, many.window_embeddings, atol=1e-5)
    assert FileTagger(tagger).tag(audio["wav"]).embedding is None


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


# ---------------------------------------------------------------------------- hostile audio


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every bad audio input of tests/helpers/bad_inputs.py."""
    return write_bad_audio(tmp_path_factory.mktemp("hostile"))


def test_each_hostile_file_is_refused_or_recovered(
    checkpoints: dict, hostile_files: dict[str, Path]
) -> None:
    """Refused: one AudioError naming the file and the rule, within seconds (a named pipe
    never blocks). Recovered: tagged with finite probabilities and the fallback warning."""
    file_tagger = FileTagger(load_tagger(checkpoints["fcn"]), embed=True)
    for kind, path in hostile_files.items():
        case = BAD_AUDIO[kind]
        if case.outcome == "error":
            with pytest.raises(AudioError) as err:
                call_with_deadline(20, file_tagger.tag, path)
            assert str(path) in str(err.value) and case.says in str(err.value), kind
            continue
        result = call_with_deadline(20, file_tagger.tag, path)
        assert np.isfinite(result.window_probs).all() and np.isfinite(result.embedding).all()
        assert result.n_windows >= 2 and any(case.says in w for w in result.warnings), kind


def _strict_json(line: str) -> dict:
    """json.loads that refuses NaN and Infinity, which are not JSON."""

    def refuse(token: str) -> None:
        raise ValueError(f"{token} in {line!r}")

    return json.loads(line, parse_constant=refuse)


def test_tag_command_on_hostile_files(
    checkpoints: dict,
    audio: dict[str, Path],
    hostile_files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``pipeline tag`` on every bad input and a good file: exit status 1 (some files failed),
    one ``error:`` line per refused file, a valid JSON record for every file, in order."""
    files = [str(audio["flac"]), *map(str, hostile_files.values())]
    args = ["tag", *files, "--checkpoint", str(checkpoints["fcn"]), "--json", "--top", "2"]
    assert call_with_deadline(120, main, args) == EXIT_FAILED_FILES
    out, err = capsys.readouterr()
    refused = [k for k in hostile_files if BAD_AUDIO[k].outcome == "error"]
    errors = [line for line in err.splitlines() if line.startswith("pipeline tag: error: ")]
    assert len(errors) == len(refused), err
    for kind, line in zip(refused, errors, strict=True):
        assert str(hostile_files[kind]) in line and BAD_AUDIO[kind].says in line, line
    records = [_strict_json(line) for line in out.splitlines()]
    assert [r["path"] for r in records] == files
    for kind, record in zip(["good", *hostile_files], records, strict=True):
        refused_here = kind in refused
        assert record["ok"] is not refused_here, (kind, record)
        if refused_here:
            assert BAD_AUDIO[kind].says in record["error"] and record["tags"] == []
        else:
            assert len(record["probabilities"]) == 2
            assert all(0.0 <= p <= 1.0 for p in record["probabilities"])
