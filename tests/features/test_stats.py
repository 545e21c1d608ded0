"""Dataset-wide views over shard stores: the track index and per-band statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.features.extract import extract_shard
from pipeline.features.index import INDEX_COLUMNS, build_index, write_feature_index
from pipeline.features.settings import FeatureSettings
from pipeline.features.stats import band_statistics
from pipeline.io.audio import WindowSettings
from pipeline.io.store import FeatureStore
from tests.helpers.audio import write_audio

SR = 16000
WINDOW = WindowSettings(length_s=1.0, hop_s=1.0, min_tail_s=0.2)
N_FFT, HOP = 512, 256
NATURAL = 1 + WINDOW.length // HOP  # 63 centred frames

# track_id: (store, duration_s, split, tags); 16 kHz WAVs, so durations are sample-exact
TRACKS = {
    "s0/a": (0, 2.5, "train", ["rock"]),  # windows at 0, 1, 2 (0.5 s of audio in the last)
    "s0/b": (0, 0.3, "train", ["calm"]),  # one window, 0.3 s of audio
    "s0/c": (0, 2.0, "test", ["rock", "calm"]),  # test: must not count
    "s1/d": (1, 1.75, "train", []),  # windows at 0 and 1 (0.75 s)
    "s1/e": (1, 3.0, "valid", ["loud"]),
    "s1/f": (1, 1.0, "train", ["loud", "rock"]),  # exactly one window
}


@pytest.fixture(autouse=True)
def _local_dask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)


def _settings(n_frames: int = NATURAL) -> FeatureSettings:
    return FeatureSettings(
        name="lm", window=WINDOW, n_fft=N_FFT, hop_length=HOP, n_mels=12, n_frames=n_frames
    )


def _build(folder: Path, settings: FeatureSettings) -> tuple[list[Path], pd.DataFrame]:
    audio = folder / "audio"
    rows = {0: [], 1: []}
    for k, (track_id, (store, duration, _, _)) in enumerate(TRACKS.items()):
        path = write_audio(
            audio / f"{track_id}.wav", duration_s=duration, freq_hz=300.0 + 200 * k, seed=k
        )
        rows[store].append((track_id, str(path)))
    stores = []
    for store, tracks in rows.items():
        stores.append(folder / f"{store:04d}.zarr")
        extract_shard(
            tracks=pd.DataFrame(tracks, columns=["track_id", "path"]),
            settings=settings,
            store_path=stores[-1],
            failed_path=folder / f"{store:04d}.failed.parquet",
        )
    manifest = pd.DataFrame(
        {
            "track_id": list(TRACKS),
            "split": [v[2] for v in TRACKS.values()],
            "tags": [v[3] for v in TRACKS.values()],
            "path": [str(audio / f"{t}.wav") for t in TRACKS],
        }
    ).iloc[::-1]  # manifest order must not matter
    return stores, manifest


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], pd.DataFrame]:
    return _build(tmp_path_factory.mktemp("stores"), _settings())


def _direct_statistics(stores: list[Path], manifest: pd.DataFrame, *, split: str) -> dict:
    """Mean/std by hand: every frame whose analysis window overlaps audio, of ``split`` windows.

    A centred frame ``t`` covers samples ``[t*hop - n_fft/2, t*hop + n_fft/2)``; it holds audio
    when that span starts before the window's last audio sample and ``t`` is one of the
    window's natural frames (later frames are the floor padding of ``n_frames``).
    """
    wanted = set(manifest.loc[manifest["split"] == split, "track_id"])
    frames = []
    for path in stores:
        store = FeatureStore(path)
        index = store.index()
        starts = store.group["window_start_s"][:]
        settings = store.attrs["features"]
        natural = 1 + int(round(settings["window"]["length_s"] * SR)) // HOP
        for k, track_id in enumerate(index["track_id"]):
            if track_id not in wanted:
                continue
            duration = TRACKS[track_id][1]
            a, b = index["offsets"][k : k + 2]
            for row in range(a, b):
                audio = min(WINDOW.length, int(round((duration - starts[row]) * SR)))
                t = np.arange(settings["n_frames"])
                valid = (t * HOP - N_FFT // 2 < audio) & (t < natural)
                frames.append(store.windows[row][:, valid].astype(np.float64))
    data = np.concatenate(frames, axis=1)  # (bins, frames)
    return {"mean": data.mean(axis=1), "std": data.std(axis=1), "n_frames": data.shape[1]}


# ---------------------------------------------------------------------------- index


def test_build_index(built: tuple[list[Path], pd.DataFrame]) -> None:
    stores, manifest = built
    index = build_index(stores=stores, manifest=manifest)
    assert list(index.columns) == INDEX_COLUMNS
    assert list(index["track_id"]) == sorted(TRACKS)
    assert list(index["store"]) == [str(stores[TRACKS[t][0]]) for t in sorted(TRACKS)]
    assert list(index["split"]) == [TRACKS[t][2] for t in sorted(TRACKS)]
    assert [list(t) for t in index["tags"]] == [TRACKS[t][3] for t in sorted(TRACKS)]
    assert list(index["n_windows"]) == [3, 1, 2, 2, 3, 1]
    np.testing.assert_allclose(index["duration_s"], [TRACKS[t][1] for t in sorted(TRACKS)])
    for row in index.itertuples():
        store = FeatureStore(Path(row.store))
        assert store.index()["track_id"][row.track] == row.track_id
        np.testing.assert_array_equal(
            store.windows[row.start : row.stop], store.track_windows(track=row.track)
        )
        assert row.stop - row.start == row.n_windows


def test_store_track_missing_from_manifest_raises(built) -> None:
    stores, manifest = built
    with pytest.raises(PipelineError, match="'s1/e'"):
        build_index(stores=stores, manifest=manifest[manifest["track_id"] != "s1/e"])


def test_manifest_tracks_without_features_are_not_indexed(built) -> None:
    stores, manifest = built
    extra = pd.DataFrame({"track_id": ["failed/x"], "split": ["train"], "tags": [["rock"]]})
    index = build_index(stores=stores[:1], manifest=pd.concat([manifest, extra]))
    assert list(index["track_id"]) == ["s0/a", "s0/b", "s0/c"]


# ---------------------------------------------------------------------------- band statistics


@pytest.mark.parametrize("split", ["train", "test", "valid"])
def test_band_statistics_equal_direct_computation(built, split: str) -> None:
    stores, manifest = built
    index = build_index(stores=stores, manifest=manifest)
    stats = band_statistics(index=index, split=split)
    want = _direct_statistics(stores, manifest, split=split)
    assert stats["split"] == split
    assert stats["n_frames"] == want["n_frames"]
    assert stats["n_windows"] == int(index.loc[index["split"] == split, "n_windows"].sum())
    np.testing.assert_allclose(stats["mean"], want["mean"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(stats["std"], want["std"], rtol=0, atol=1e-5)


def test_padding_is_excluded_from_band_statistics(built) -> None:
    """The train windows hold floor-valued padding; counting it would change the mean a lot."""
    stores, manifest = built
    index = build_index(stores=stores, manifest=manifest)
    stats = band_statistics(index=index)
    train = index[index["split"] == "train"]
    everything = np.concatenate(
        [
            FeatureStore(Path(r.store)).windows[r.start : r.stop].astype(np.float64)
            for r in train.itertuples()
        ]
    )
    assert (everything == -100.0).mean() > 0.15
    assert stats["n_frames"] < everything.shape[0] * everything.shape[2]
    assert np.min(stats["mean"]) > everything.mean(axis=(0, 2)).min() + 10


def test_band_statistics_do_not_depend_on_threads_or_blocks(built) -> None:
    stores, manifest = built
    index = build_index(stores=stores, manifest=manifest)
    one = band_statistics(index=index, threads=1, block_windows=64)
    many = band_statistics(index=index, threads=2, block_windows=2)
    for key in ("n_frames", "n_windows"):
        assert one[key] == many[key]
    np.testing.assert_allclose(one["mean"], many["mean"], atol=1e-9)
    np.testing.assert_allclose(one["std"], many["std"], atol=1e-9)


def test_band_statistics_of_an_empty_split(built) -> None:
    stores, manifest = built
    index = build_index(stores=stores, manifest=manifest)
    with pytest.raises(PipelineError, match="'holdout'"):
        band_statistics(index=index, split="holdout")


def test_band_statistics_exclude_n_frames_padding(tmp_path: Path) -> None:
    stores, manifest = _build(tmp_path, _settings(n_frames=NATURAL + 40))
    index = build_index(stores=stores, manifest=manifest)
    stats = band_statistics(index=index)
    want = _direct_statistics(stores, manifest, split="train")
    assert stats["n_frames"] == want["n_frames"]
    np.testing.assert_allclose(stats["mean"], want["mean"], atol=1e-6)


# ---------------------------------------------------------------------------- feature index


def test_write_feature_index(built, tmp_path: Path) -> None:
    stores, manifest = built
    manifest_path = tmp_path / "manifest.parquet"
    with_failed = pd.concat(
        [manifest, pd.DataFrame({"track_id": ["bad"], "split": ["train"], "tags": [[]]})]
    )
    with_failed.to_parquet(manifest_path, index=False)
    failed = tmp_path / "0000.failed.parquet"
    pd.DataFrame(
        [
            {
                "track_id": "bad",
                "path": "/x/bad.mp3",
                "stage": "decode",
                "level": "error",
                "error": "'/x/bad.mp3': empty file (0 bytes)",
            },
            {
                "track_id": "s0/a",
                "path": "/x/a.wav",
                "stage": "decode",
                "level": "warning",
                "error": "silent",
            },
        ]
    ).to_parquet(failed, index=False)
    summary = write_feature_index(
        manifest_path=manifest_path,
        stores=stores,
        failed=[failed],
        index_path=tmp_path / "index.parquet",
        failed_path=tmp_path / "failed.csv",
        summary_path=tmp_path / "summary.json",
    )
    assert summary == {
        "n_tracks": 7,
        "n_stored": 6,
        "n_failed": 1,
        "n_warnings": 1,
        "n_windows": 12,
        "failed_by_stage": {"decode": 1},
        "stored_by_split": {"train": 4, "test": 1, "valid": 1},
    }
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert list(pd.read_parquet(tmp_path / "index.parquet")["track_id"]) == sorted(TRACKS)
    failures = pd.read_csv(tmp_path / "failed.csv", dtype=str)
    assert list(failures["shard"]) == ["0000", "0000"]
