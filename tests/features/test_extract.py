"""Feature extraction of a shard: good files stored in order, bad files one error row each."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.features.extract import (
    derive_shard,
    extract_shard,
    extract_track,
    longest_first,
    read_tracks,
)
from pipeline.features.extractors import make_extractor
from pipeline.features.index import FAILURE_COLUMNS
from pipeline.features.settings import FeatureSettings
from pipeline.io.audio import WindowSettings, read_windows
from pipeline.io.progress import INTERVAL_ENV
from pipeline.io.store import FeatureStore
from tests.helpers.audio import write_audio
from tests.helpers.bad_inputs import (
    BAD_AUDIO,
    call_with_deadline,
    integer_scale_float_wav,
    write_bad_audio,
)

WINDOW = WindowSettings(length_s=1.0, hop_s=1.0, min_tail_s=0.3)
SETTINGS = FeatureSettings(name="logmel", window=WINDOW, n_mels=24, n_frames=63)

# track_id: (file name, write_audio options, expected number of windows)
GOOD = {
    "wav16k": ("a.wav", {"duration_s": 2.5}, 3),
    "flac8k": ("b.flac", {"duration_s": 1.6, "sample_rate": 8000, "freq_hz": 1200.0}, 2),
    "ogg44k_stereo": ("c.ogg", {"duration_s": 2.0, "sample_rate": 44100, "channels": 2}, 2),
    "mp3_22k": ("d.mp3", {"duration_s": 2.2, "sample_rate": 22050, "freq_hz": 660.0}, 2),
    "flac96k": ("e.flac", {"duration_s": 1.2, "sample_rate": 96000, "freq_hz": 3000.0}, 1),
    "wav6ch": ("f.wav", {"duration_s": 1.5, "sample_rate": 48000, "channels": 6}, 2),
    "mp3_8k_stereo": ("g.mp3", {"duration_s": 1.0, "sample_rate": 8000, "channels": 2}, 1),
    "silent": ("silent.wav", {"data": np.zeros(16000, dtype=np.float32)}, 1),
    "Ωμέγα café": ("Ωμέγα café ♫.flac", {"duration_s": 0.4}, 1),
}
BAD = {
    "corrupt": "corrupt.flac",
    "empty": "empty.wav",
    "missing": "missing.ogg",
    "text": "readme.mp3",
    "too_short_to_decode": "zero_frames.wav",
}
ORDER = [
    "corrupt",
    "wav16k",
    "flac8k",
    "empty",
    "ogg44k_stereo",
    "silent",
    "missing",
    "mp3_22k",
    "flac96k",
    "text",
    "wav6ch",
    "Ωμέγα café",
    "too_short_to_decode",
    "mp3_8k_stereo",
]


@pytest.fixture(scope="module")
def shard_tracks(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("audio")
    paths = {}
    for track_id, (name, options, _) in GOOD.items():
        paths[track_id] = write_audio(folder / name, **options)
    rng = np.random.default_rng(7)
    (folder / BAD["corrupt"]).write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    (folder / BAD["empty"]).write_bytes(b"")
    (folder / BAD["text"]).write_text("not audio at all\n" * 30, encoding="utf-8")
    write_audio(folder / BAD["too_short_to_decode"], data=np.zeros((0, 1), dtype=np.float32))
    for track_id, name in BAD.items():
        paths[track_id] = folder / name
    return pd.DataFrame({"track_id": ORDER, "path": [str(paths[t]) for t in ORDER]})


@pytest.fixture(scope="module")
def extracted(shard_tracks: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("out")
    summary = extract_shard(
        tracks=shard_tracks,
        settings=SETTINGS,
        store_path=out / "0000.zarr",
        failed_path=out / "failed" / "0000.parquet",
        threads=1,
        tracks_per_task=3,
        attrs={"dataset": "mix", "shard": "0000"},
    )
    return {
        "summary": summary,
        "store": FeatureStore(out / "0000.zarr"),
        "failed": pd.read_parquet(out / "failed" / "0000.parquet"),
        "store_path": out / "0000.zarr",
        "failed_path": out / "failed" / "0000.parquet",
    }


def test_good_tracks_are_stored_largest_file_first(
    extracted: dict, shard_tracks: pd.DataFrame
) -> None:
    store = extracted["store"]
    paths = zip(shard_tracks["track_id"], shard_tracks["path"], strict=True)
    size = {t: os.stat(p).st_size for t, p in paths if t in GOOD}
    stored = sorted((t for t in ORDER if t in GOOD), key=lambda t: -size[t])
    assert list(store.index()["track_id"]) == stored
    counts = np.diff(store.index()["offsets"])
    assert list(counts) == [GOOD[t][2] for t in stored]
    assert store.windows.shape == (sum(counts), 24, 63)
    assert store.windows.dtype == np.float16
    durations = dict(zip(stored, store.index()["duration_s"], strict=True))
    assert durations["wav16k"] == pytest.approx(2.5)
    assert durations["flac96k"] == pytest.approx(1.2)
    attrs = store.attrs
    assert attrs["features"] == SETTINGS.to_dict()
    assert (attrs["dataset"], attrs["shard"]) == ("mix", "0000")
    assert FeatureSettings.from_dict(attrs["features"]) == SETTINGS


def test_each_bad_track_has_exactly_one_decode_error_naming_its_path(
    extracted: dict, shard_tracks: pd.DataFrame
) -> None:
    failed = extracted["failed"]
    assert list(failed.columns) == FAILURE_COLUMNS
    errors = failed[failed["level"] == "error"]
    assert sorted(errors["track_id"]) == sorted(BAD)
    paths = dict(zip(shard_tracks["track_id"], shard_tracks["path"], strict=True))
    for row in errors.itertuples():
        assert row.stage == "decode"
        assert row.path == paths[row.track_id]
        assert paths[row.track_id] in row.error


def test_silent_track_is_stored_with_one_warning(extracted: dict) -> None:
    failed = extracted["failed"]
    warnings = failed[failed["level"] == "warning"]
    assert list(warnings["track_id"]) == ["silent"]
    assert "silent" in warnings["error"].iloc[0]
    store = extracted["store"]
    track = list(store.index()["track_id"]).index("silent")
    assert np.all(store.track_windows(track=track) == np.float16(-100.0))


def test_summary_counts(extracted: dict) -> None:
    assert extracted["summary"] == {
        "n_tracks": len(ORDER),
        "n_stored": len(GOOD),
        "n_failed": len(BAD),
        "n_warnings": 1,
        "n_windows": sum(n for _, _, n in GOOD.values()),
    }


def test_stored_windows_equal_the_features_of_the_decoded_file(
    extracted: dict, shard_tracks: pd.DataFrame
) -> None:
    store = extracted["store"]
    extractor = make_extractor(SETTINGS)
    ids = list(store.index()["track_id"])
    for track_id in ("wav16k", "ogg44k_stereo", "wav6ch"):
        path = shard_tracks.set_index("track_id").loc[track_id, "path"]
        starts, windows = read_windows(path=path, settings=WINDOW)
        want = extractor(windows).astype(np.float16)
        k = ids.index(track_id)
        np.testing.assert_array_equal(store.track_windows(track=k), want)
        a, b = store.index()["offsets"][k : k + 2]
        np.testing.assert_array_equal(store.group["window_start_s"][a:b], starts)


def test_threads_do_not_change_the_store(shard_tracks: pd.DataFrame, tmp_path: Path) -> None:
    """1 thread on a DataFrame, 2 on the shard list read without pandas: the same store."""
    shard_tracks.to_parquet(tmp_path / "shard.parquet", index=False)
    as_lists = read_tracks(tmp_path / "shard.parquet")
    assert as_lists["track_id"] == list(shard_tracks["track_id"].astype(str))
    results = []
    for threads in (1, 2):
        folder = tmp_path / f"t{threads}"
        extract_shard(
            tracks=shard_tracks if threads == 1 else as_lists,
            settings=SETTINGS,
            store_path=folder / "s.zarr",
            failed_path=folder / "failed.parquet",
            threads=threads,
            tracks_per_task=1,
            windows_per_shard=4,
            compression="lz4",
        )
        store = FeatureStore(folder / "s.zarr")
        results.append((store, pd.read_parquet(folder / "failed.parquet")))
    (one, failed_one), (two, failed_two) = results
    np.testing.assert_array_equal(one.windows[:], two.windows[:])
    for key in ("track_id", "offsets", "duration_s"):
        np.testing.assert_array_equal(one.index()[key], two.index()[key])
    np.testing.assert_array_equal(one.group["window_start_s"][:], two.group["window_start_s"][:])
    pd.testing.assert_frame_equal(failed_one, failed_two)


def test_mfcc_shard_and_empty_failure_table(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a.flac", duration_s=2.0)
    settings = FeatureSettings(
        name="mfcc", kind="mfcc", window=WINDOW, n_mels=24, n_mfcc=10, deltas=2, n_frames=63
    )
    summary = extract_shard(
        tracks=pd.DataFrame({"track_id": ["a"], "path": [str(path)]}),
        settings=settings,
        store_path=tmp_path / "m.zarr",
        failed_path=tmp_path / "failed.parquet",
    )
    assert summary["n_stored"] == 1 and summary["n_failed"] == 0
    assert FeatureStore(tmp_path / "m.zarr").windows.shape == (2, 30, 63)
    failed = pd.read_parquet(tmp_path / "failed.parquet")
    assert failed.empty and list(failed.columns) == FAILURE_COLUMNS


def test_extract_track_keeps_truncation_warning(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "long.wav", duration_s=3.0)
    settings = FeatureSettings(
        name="lm",
        window=WindowSettings(length_s=1.0, hop_s=1.0, max_duration_s=2.0),
        n_mels=16,
        n_frames=63,
    )
    result = extract_track(track_id="long", path=str(path), extractor=make_extractor(settings))
    assert result.windows.shape == (2, 16, 63)
    assert [f["level"] for f in result.failures] == ["warning"]
    assert "max_duration_s" in result.failures[0]["error"]


def test_extract_track_drop_short_is_a_decode_error(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "short.wav", duration_s=0.5)
    settings = FeatureSettings(
        name="lm", window=WindowSettings(length_s=1.0, hop_s=1.0, tail="drop"), n_frames=63
    )
    result = extract_track(track_id="s", path=str(path), extractor=make_extractor(settings))
    assert result.windows is None
    assert len(result.failures) == 1
    assert result.failures[0]["stage"] == "decode" and str(path) in result.failures[0]["error"]


def test_shard_without_tracks_writes_an_empty_store(tmp_path: Path) -> None:
    summary = extract_shard(
        tracks=pd.DataFrame({"track_id": [], "path": []}),
        settings=SETTINGS,
        store_path=tmp_path / "empty.zarr",
        failed_path=tmp_path / "failed.parquet",
        threads=2,
    )
    assert summary == {
        "n_tracks": 0,
        "n_stored": 0,
        "n_failed": 0,
        "n_warnings": 0,
        "n_windows": 0,
    }
    store = FeatureStore(tmp_path / "empty.zarr")
    assert store.windows.shape == (0, 24, 63)
    assert store.attrs["features"]["name"] == "logmel"
    assert pd.read_parquet(tmp_path / "failed.parquet").empty


# ---------------------------------------------------------------------------- hostile audio

#: Good tracks around the hostile ones: stored as ever, in order.
HOSTILE_GOOD = {
    "good_a": ("a.flac", 2.5, 3),
    "good_b": ("b.mp3", 1.0, 1),
    "good_c": ("c.wav", 1.4, 2),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One shard of every bad audio input of tests/helpers/bad_inputs.py between good tracks,
    extracted as log-mel and as waveform windows (the kind float16 overflow hit first)."""
    folder = tmp_path_factory.mktemp("hostile")
    bad = write_bad_audio(folder / "bad")
    good = {
        t: write_audio(folder / name, duration_s=seconds, seed=i)
        for i, (t, (name, seconds, _)) in enumerate(HOSTILE_GOOD.items())
    }
    ids = ["good_a", *sorted(bad)[:8], "good_b", *sorted(bad)[8:], "good_c"]
    paths = {**good, **bad}
    tracks = pd.DataFrame({"track_id": ids, "path": [str(paths[t]) for t in ids]})
    out = tmp_path_factory.mktemp("hostile_out")
    waveform = FeatureSettings(name="wave", kind="waveform", window=WINDOW)
    results = {}
    for settings in (SETTINGS, waveform):
        summary = call_with_deadline(
            120,
            extract_shard,
            tracks=tracks,
            settings=settings,
            store_path=out / f"{settings.name}.zarr",
            failed_path=out / f"{settings.name}.failed.parquet",
            threads=2,
            tracks_per_task=2,
        )
        results[settings.kind] = {
            "summary": summary,
            "store": FeatureStore(out / f"{settings.name}.zarr"),
            "failed": pd.read_parquet(out / f"{settings.name}.failed.parquet"),
        }
    return {"tracks": tracks, "bad": bad, "results": results}


@pytest.mark.parametrize("kind", ["logmel", "waveform"])
def test_hostile_shard_stores_good_and_recovered_tracks_only(hostile: dict, kind: str) -> None:
    result = hostile["results"][kind]
    store = result["store"]
    recovered = [t for t in hostile["bad"] if BAD_AUDIO[t].outcome == "warning"]
    rows = list(zip(hostile["tracks"]["track_id"], hostile["tracks"]["path"], strict=True))
    kept = [t for t, _ in longest_first(rows) if t in HOSTILE_GOOD or t in recovered]
    assert list(store.index()["track_id"]) == kept
    counts = dict(zip(kept, np.diff(store.index()["offsets"]), strict=True))
    assert [counts[t] for t in HOSTILE_GOOD] == [n for _, _, n in HOSTILE_GOOD.values()]
    assert counts["corrupt_burst_mp3"] == 10  # the 10 s MP3 minus ~0.4 s: 9 windows + a tail
    windows = store.windows[:].astype(np.float32)
    assert np.isfinite(windows).all()
    assert result["summary"]["n_stored"] == len(kept)
    assert result["summary"]["n_failed"] == len(hostile["bad"]) - len(recovered)


@pytest.mark.parametrize("kind", ["logmel", "waveform"])
def test_each_hostile_file_is_one_clear_error_row(hostile: dict, kind: str) -> None:
    failed = hostile["results"][kind]["failed"]
    errors = failed[failed["level"] == "error"].set_index("track_id")
    refused = sorted(t for t in hostile["bad"] if BAD_AUDIO[t].outcome == "error")
    assert sorted(errors.index) == refused  # one row each, nothing for the good tracks
    for track_id in refused:
        row = errors.loc[track_id]
        path = str(hostile["bad"][track_id])
        assert row["stage"] == "decode" and row["path"] == path
        assert path in row["error"] and BAD_AUDIO[track_id].says in row["error"], row["error"]
        assert "\n" not in row["error"]


def test_recovered_tracks_carry_the_fallback_warning(hostile: dict) -> None:
    failed = hostile["results"]["logmel"]["failed"]
    warnings = failed[failed["level"] == "warning"]
    recovered = {t for t in hostile["bad"] if BAD_AUDIO[t].outcome == "warning"}
    assert set(warnings["track_id"]) == recovered  # the good tracks have no warning
    for track_id in recovered:
        rows = list(warnings.loc[warnings["track_id"] == track_id, "error"])
        assert rows[0].startswith("decoded with the fallback decoder (FFmpeg) after libsndfile")
    # the cut and the damaged file say how much of the audio the header promised is missing
    for track_id in ("corrupt_burst_mp3", "truncated_flac"):
        rows = list(warnings.loc[warnings["track_id"] == track_id, "error"])
        assert len(rows) == 2 and "frames the header declares" in rows[1]


def test_store_refuses_features_beyond_float16_as_a_store_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: with the decoder's sample limit lifted, a float file in 24-bit
    integer scale overflows the float16 waveform store; the writer refuses it, the track
    becomes a ``store`` row and the shard completes without a single Inf."""
    monkeypatch.setattr("pipeline.io.audio.MAX_ABS_SAMPLE", 1e9)
    loud = integer_scale_float_wav(tmp_path)
    good = write_audio(tmp_path / "good.wav", duration_s=1.0)
    summary = extract_shard(
        tracks=pd.DataFrame({"track_id": ["loud", "good"], "path": [str(loud), str(good)]}),
        settings=FeatureSettings(name="wave", kind="waveform", window=WINDOW),
        store_path=tmp_path / "w.zarr",
        failed_path=tmp_path / "failed.parquet",
    )
    assert (summary["n_stored"], summary["n_failed"]) == (1, 1)
    failed = pd.read_parquet(tmp_path / "failed.parquet")
    assert list(failed["stage"]) == ["store"] and list(failed["level"]) == ["error"]
    assert str(loud) in failed["error"][0] and "NaN or infinity as float16" in failed["error"][0]
    store = FeatureStore(tmp_path / "w.zarr")
    assert list(store.index()["track_id"]) == ["good"]
    assert np.isfinite(store.windows[:].astype(np.float32)).all()


def test_a_shard_logs_its_progress(
    shard_tracks: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Progress lines (rate-limited to one per interval: here every track is due)."""
    monkeypatch.setenv(INTERVAL_ENV, "1e-9")
    caplog.set_level(logging.INFO, logger="pipeline.features.extract")
    store = tmp_path / "s.zarr"
    extract_shard(
        tracks=shard_tracks,
        settings=SETTINGS,
        store_path=store,
        failed_path=tmp_path / "failed.parquet",
        tracks_per_task=1,
    )
    lines = [m for m in caplog.messages if m.startswith(f"extract {store}: ")]
    n = len(shard_tracks)
    assert [line.split(": ")[1].split(" (")[0] for line in lines] == [
        *(f"{k}/{n} tracks" for k in range(1, n + 1)),
        f"{n}/{n} tracks",  # the final line
    ]
    hours = float(FeatureStore(store).index()["duration_s"].sum()) / 3600
    assert f"{hours:.2f} h of audio" in lines[-1] and lines[-1].endswith(", done")


# ---------------------------------------------------------------------------- derived sets

MFCC = FeatureSettings(
    name="mfcc", kind="mfcc", window=WINDOW, n_mels=24, n_mfcc=10, deltas=2, n_frames=63
)


def test_mfcc_derived_from_the_logmel_store_equals_decoding_again(
    extracted: dict, shard_tracks: pd.DataFrame, tmp_path: Path
) -> None:
    """Decoding once: MFCCs from the stored (float16) log-mel, against extraction from audio.

    The only difference is the float16 rounding of the log-mel they start from (at most
    half a float16 step: 0.03 dB below 128 dB), spread by the DCT and the deltas.
    """
    direct = extract_shard(
        tracks=shard_tracks,
        settings=MFCC,
        store_path=tmp_path / "direct.zarr",
        failed_path=tmp_path / "direct.parquet",
    )
    derived = derive_shard(
        source_store=extracted["store_path"],
        source_failed=extracted["failed_path"],
        settings=MFCC,
        store_path=tmp_path / "derived.zarr",
        failed_path=tmp_path / "derived.parquet",
        threads=2,
    )
    assert derived == direct
    one, two = FeatureStore(tmp_path / "direct.zarr"), FeatureStore(tmp_path / "derived.zarr")
    for key in ("track_id", "offsets", "duration_s"):
        np.testing.assert_array_equal(one.index()[key], two.index()[key])
    np.testing.assert_array_equal(one.window_starts(), two.window_starts())
    a = one.windows[:].astype(np.float32)
    b = two.windows[:].astype(np.float32)
    step = np.abs(np.spacing(a.astype(np.float16))).astype(np.float32)  # float16 step
    assert np.all(np.abs(a - b) <= step + 0.2)
    assert np.mean(np.abs(a - b)) < 0.02
    assert two.attrs["features"] == MFCC.to_dict() and two.attrs["derived_from"] == "logmel"
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "direct.parquet").sort_values(
            ["track_id", "error"], ignore_index=True
        ),
        pd.read_parquet(tmp_path / "derived.parquet").sort_values(
            ["track_id", "error"], ignore_index=True
        ),
    )


def test_derive_refuses_a_source_with_other_log_mel_settings(
    extracted: dict, tmp_path: Path
) -> None:
    other = FeatureSettings(
        name="mfcc", kind="mfcc", window=WINDOW, n_mels=32, n_mfcc=10, n_frames=63
    )
    assert not other.derives_from(SETTINGS) and MFCC.derives_from(SETTINGS)
    with pytest.raises(PipelineError, match="cannot be derived"):
        derive_shard(
            source_store=extracted["store_path"],
            source_failed=extracted["failed_path"],
            settings=other,
            store_path=tmp_path / "x.zarr",
            failed_path=tmp_path / "x.parquet",
        )


def test_longest_first_orders_by_file_size_ties_kept_missing_last(tmp_path: Path) -> None:
    sizes = {"a": 10, "b": 300, "c": 10, "d": 50}
    rows = []
    for name, n in sizes.items():
        (tmp_path / name).write_bytes(b"x" * n)
        rows.append((name, str(tmp_path / name)))
    rows.insert(1, ("gone", str(tmp_path / "missing.mp3")))
    assert [t for t, _ in longest_first(rows)] == ["b", "d", "a", "c", "gone"]
