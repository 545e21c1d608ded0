"""The Zarr v3 shard store: written with StoreWriter, read back with FeatureStore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ConfigError, PipelineError
from pipeline.io.store import (
    COMPRESSORS,
    FeatureStore,
    StoreWriter,
    chunk_file,
    nonfinite_windows,
    raw_chunk_layout,
)

SHAPE = (8, 12)  # (n_bins, n_frames): small windows


def _tracks(counts: list[int], *, seed: int = 0) -> list[dict]:
    """Tracks with known windows (float16-exact), start times and durations."""
    rng = np.random.default_rng(seed)
    ids = ["b/one", "Ωμέγα–日本語 café", "a/three", "zz", "t5", "t6"]
    out = []
    for i, n in enumerate(counts):
        windows = rng.uniform(-100, 40, size=(n, *SHAPE)).astype(np.float16)
        out.append(
            {
                "track_id": ids[i % len(ids)] + ("" if i < len(ids) else f"-{i}"),
                "windows": windows.astype(np.float32),
                "starts_s": np.arange(n, dtype=np.float64) * 1.5,
                "duration_s": 1.5 * n - 0.25,
            }
        )
    return out


def _write(path: Path, tracks: list[dict], **kwargs) -> dict[str, int]:
    writer = StoreWriter(
        path=path, window_shape=SHAPE, attrs={"dataset": "demo", "shard": "0003"}, **kwargs
    )
    for track in tracks:
        writer.add(**track)
    return writer.close()


@pytest.mark.parametrize(
    ("compression", "windows_per_shard"),
    [("none", 0), ("none", 4), ("lz4", 0), ("lz4", 5), ("zstd", 0)],
)
def test_round_trip(tmp_path: Path, compression: str, windows_per_shard: int) -> None:
    counts = [3, 1, 17, 20, 2, 4]  # 47 windows: crosses the 32-window buffer and shard edges
    tracks = _tracks(counts)
    path = tmp_path / "0003.zarr"
    summary = _write(path, tracks, compression=compression, windows_per_shard=windows_per_shard)
    assert summary == {"n_tracks": 6, "n_windows": 47}

    store = FeatureStore(path)
    windows = store.windows
    assert windows.shape == (47, *SHAPE)
    assert windows.dtype == np.float16
    assert windows.chunks == (1, *SHAPE)  # one window per chunk: random access
    if windows_per_shard:
        assert windows.shards == (windows_per_shard, *SHAPE)
    else:
        assert windows.shards is None

    index = store.index()
    np.testing.assert_array_equal(index["offsets"], np.cumsum([0, *counts]))
    assert index["offsets"].dtype == np.int64
    assert list(index["track_id"]) == [t["track_id"] for t in tracks]
    np.testing.assert_allclose(index["duration_s"], [t["duration_s"] for t in tracks])
    starts = store.group["window_start_s"][:]
    np.testing.assert_array_equal(starts, np.concatenate([t["starts_s"] for t in tracks]))
    for i, track in enumerate(tracks):
        got = store.track_windows(track=i)
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, track["windows"].astype(np.float16))
    np.testing.assert_array_equal(
        windows[:], np.concatenate([t["windows"] for t in tracks]).astype(np.float16)
    )

    attrs = store.attrs
    assert attrs["dataset"] == "demo" and attrs["shard"] == "0003"
    assert attrs["n_tracks"] == 6 and attrs["n_windows"] == 47


@pytest.mark.parametrize(("windows_per_shard", "n_files"), [(0, 23), (5, 5)])
def test_file_count_on_disk(tmp_path: Path, windows_per_shard: int, n_files: int) -> None:
    """Without sharding, one chunk file per window; with it, one file per shard of windows."""
    path = tmp_path / "s.zarr"
    _write(path, _tracks([10, 13]), windows_per_shard=windows_per_shard)
    chunk_files = [
        p for p in (path / "windows").rglob("*") if p.is_file() and p.name != "zarr.json"
    ]
    assert len(chunk_files) == n_files


def test_non_ascii_track_ids_and_attributes(tmp_path: Path) -> None:
    path = tmp_path / "ü.zarr"
    writer = StoreWriter(
        path=path, window_shape=SHAPE, attrs={"features": {"name": "logmel", "fmax": None}}
    )
    ids = ["ambient/Sigur Rós – Hoppípolla", "日本/曲", "emoji 🎵"]
    for i, track_id in enumerate(ids):
        writer.add(
            track_id=track_id,
            windows=np.full((1, *SHAPE), i, dtype=np.float32),
            starts_s=np.zeros(1),
            duration_s=1.0,
        )
    writer.close()
    store = FeatureStore(path)
    assert list(store.index()["track_id"]) == ids
    assert store.attrs["features"] == {"name": "logmel", "fmax": None}
    assert store.track_windows(track=2)[0, 0, 0] == 2


def test_zero_track_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.zarr"
    assert _write(path, [], windows_per_shard=4) == {"n_tracks": 0, "n_windows": 0}
    store = FeatureStore(path)
    assert store.windows.shape == (0, *SHAPE)
    index = store.index()
    np.testing.assert_array_equal(index["offsets"], [0])
    assert len(index["track_id"]) == 0 and len(index["duration_s"]) == 0
    assert store.group["window_start_s"].shape == (0,)
    assert store.attrs["n_tracks"] == 0


def test_existing_store_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    _write(path, _tracks([5, 5]))
    _write(path, _tracks([2], seed=9))
    store = FeatureStore(path)
    assert store.windows.shape == (2, *SHAPE)
    assert list(store.index()["track_id"]) == ["b/one"]


def test_window_and_start_count_must_match(tmp_path: Path) -> None:
    writer = StoreWriter(path=tmp_path / "s.zarr", window_shape=SHAPE, attrs={})
    with pytest.raises(PipelineError, match="'bad'"):
        writer.add(
            track_id="bad",
            windows=np.zeros((3, *SHAPE), np.float32),
            starts_s=np.zeros(2),
            duration_s=1.0,
        )


def test_unknown_compression_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="storage.compression: 'gzip'") as err:
        StoreWriter(path=tmp_path / "s.zarr", window_shape=SHAPE, attrs={}, compression="gzip")
    for name in COMPRESSORS:
        assert name in str(err.value)


def test_missing_store_raises_pipeline_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nothing.zarr"
    with pytest.raises(PipelineError, match="nothing.zarr"):
        FeatureStore(path).index()


def test_float16_storage_error_is_below_0_06_db(tmp_path: Path) -> None:
    values = np.random.default_rng(4).uniform(-100.0, 40.0, size=(6, 96, 40)).astype(np.float32)
    values[0, 0, :2] = [-100.0, 40.0]
    writer = StoreWriter(path=tmp_path / "f16.zarr", window_shape=(96, 40), attrs={})
    writer.add(track_id="t", windows=values, starts_s=np.zeros(6), duration_s=1.0)
    writer.close()
    stored = FeatureStore(tmp_path / "f16.zarr").windows[:]
    assert stored.dtype == np.float16
    assert np.abs(stored.astype(np.float32) - values).max() <= 0.06


@pytest.mark.parametrize(
    ("value", "dtype"),
    [(np.nan, np.float32), (np.inf, np.float32), (-np.inf, np.float16), (7e4, np.float32)],
)
def test_non_finite_windows_are_refused_and_the_store_stays_valid(
    tmp_path: Path, value: float, dtype: type
) -> None:
    """NaN, infinity, or a value beyond float16's +-65,504 (infinite once cast) is never
    stored; the refused track leaves no trace, the others are written."""
    good, bad, after = _tracks([2, 3, 1])
    bad["windows"] = bad["windows"].astype(dtype)
    bad["windows"][1, 4, 7] = value
    writer = StoreWriter(path=tmp_path / "s.zarr", window_shape=SHAPE, attrs={})
    writer.add(**good)
    with pytest.raises(PipelineError, match=r"track 'Ωμέγα–日本語 café': 1 of 3 .* window 1"):
        writer.add(**bad)
    writer.add(**after)
    assert writer.close() == {"n_tracks": 2, "n_windows": 3}
    store = FeatureStore(tmp_path / "s.zarr")
    assert list(store.index()["track_id"]) == ["b/one", "a/three"]
    assert np.isfinite(store.windows[:].astype(np.float32)).all()
    np.testing.assert_array_equal(store.track_windows(track=1), after["windows"])


def test_nonfinite_windows_flags_each_window() -> None:
    windows = np.zeros((4, 3, 5), np.float16)
    windows[1, 0, 0] = np.nan
    windows[3, 2, 4] = -np.inf
    windows[2] = np.float16(65504)  # the largest float16: finite
    np.testing.assert_array_equal(nonfinite_windows(windows), [False, True, False, True])
    np.testing.assert_array_equal(
        nonfinite_windows(windows.astype(np.float32)), [False, True, False, True]
    )
    assert nonfinite_windows(np.zeros((0, 3, 5), np.float16)).shape == (0,)


@pytest.mark.parametrize(("compression", "windows_per_shard"), [("none", 0), ("lz4", 2)])
def test_window_reader_reads_into_a_given_array(
    tmp_path: Path, compression: str, windows_per_shard: int
) -> None:
    """read_into writes what read returns, whole windows and crops, in either layout."""
    from pipeline.io.store import WindowReader

    rng = np.random.default_rng(0)
    windows = rng.normal(-40, 10, size=(3, 4, 6)).astype(np.float16)
    path = tmp_path / "s.zarr"
    writer = StoreWriter(
        path=path,
        window_shape=(4, 6),
        attrs={},
        compression=compression,
        windows_per_shard=windows_per_shard,
    )
    writer.add(track_id="a", windows=windows, starts_s=np.zeros(3), duration_s=1.0)
    writer.close()
    reader = WindowReader(path)
    assert reader.direct == (compression == "none")
    batch = np.full((2, 4, 6), np.nan, dtype=np.float16)
    reader.read_into(2, batch[1])
    np.testing.assert_array_equal(batch[1], windows[2])
    assert np.isnan(batch[0]).all()  # only the given row is written
    crop = np.empty((4, 3), dtype=np.float16)
    reader.read_into(1, crop, frames=slice(2, 5))
    np.testing.assert_array_equal(crop, windows[1, :, 2:5])
    with pytest.raises(IndexError):
        reader.read_into(3, batch[0])


def test_window_reader_read_into_names_a_chunk_of_the_wrong_size(tmp_path: Path) -> None:
    from pipeline.io.store import WindowReader

    windows = np.ones((2, 4, 6), dtype=np.float16)
    path = tmp_path / "s.zarr"
    writer = StoreWriter(path=path, window_shape=(4, 6), attrs={})
    writer.add(track_id="a", windows=windows, starts_s=np.zeros(2), duration_s=1.0)
    writer.close()
    reader = WindowReader(path)
    out = np.empty((4, 6), dtype=np.float16)
    chunk = path / "windows" / "c" / "1" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes() + b"\0\0")  # one value too many
    with pytest.raises(PipelineError, match=r"windows/c/1/0/0.*not a window"):
        reader.read_into(1, out)
    chunk.write_bytes(chunk.read_bytes()[:10])  # truncated
    with pytest.raises(PipelineError, match=r"windows/c/1/0/0.*5 values"):
        reader.read_into(1, out)
    chunk.unlink()  # never written: the fill value
    reader.read_into(1, out)
    np.testing.assert_array_equal(out, np.zeros((4, 6), dtype=np.float16))


def test_default_layout_writes_every_window_as_its_raw_chunk_file(tmp_path: Path) -> None:
    """Default layout: each window is written as its own chunk file of raw little-endian
    float16 (an all-zero window too, which Zarr itself would leave unwritten), and Zarr reads
    the store back."""
    tracks = _tracks([2, 3])
    tracks[1]["windows"][1] = 0.0
    path = tmp_path / "s.zarr"
    _write(path, tracks)
    windows = np.concatenate([t["windows"] for t in tracks]).astype(np.float16)
    store = FeatureStore(path)
    assert raw_chunk_layout(store.windows)
    for row, window in enumerate(windows):
        raw = Path(chunk_file(path / "windows", row)).read_bytes()
        assert raw == window.astype("<f2").tobytes()
    np.testing.assert_array_equal(store.windows[:], windows)
    assert not raw_chunk_layout(FeatureStore(_compressed(tmp_path, tracks)).windows)


def _compressed(tmp_path: Path, tracks: list[dict]) -> Path:
    path = tmp_path / "lz4.zarr"
    _write(path, tracks, compression="lz4")
    return path
