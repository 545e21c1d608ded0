"""Per-band statistics of the train split: a Dask reduction over the shard stores that
counts only frames holding audio, checked against a direct computation."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from pipeline.errors import PipelineError
from pipeline.features.index import build_index
from pipeline.features.stats import band_statistics
from pipeline.io.store import FeatureStore
from tests.helpers.feature_stores import (
    HOP,
    N_FFT,
    NATURAL,
    SR,
    TRACKS,
    WINDOW,
    build_stores,
    store_settings,
)


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
    stores, manifest = build_stores(tmp_path, store_settings(n_frames=NATURAL + 40))
    index = build_index(stores=stores, manifest=manifest)
    stats = band_statistics(index=index)
    want = _direct_statistics(stores, manifest, split="train")
    assert stats["n_frames"] == want["n_frames"]
    np.testing.assert_allclose(stats["mean"], want["mean"], atol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_stored_values_are_refused(built, tmp_path: Path, bad: float) -> None:
    """A store holding NaN or infinity (a store should never: this one is edited by hand)
    gives an error naming the feature set, the bands and the track, never NaN statistics."""
    stores, manifest = built
    copies = [Path(shutil.copytree(p, tmp_path / p.name)) for p in stores]
    index = build_index(stores=copies, manifest=manifest)
    track = index[(index["split"] == "train") & (index["store"] == str(copies[1]))].iloc[0]
    windows = zarr.open_group(copies[1], mode="r+")["windows"]
    window = np.asarray(windows[track["start"]])
    window[[3, 7], 5] = bad  # bands 3 and 7 of the track's first window, an audio frame
    windows[track["start"]] = window
    with pytest.raises(PipelineError) as info:
        band_statistics(index=index)
    message = str(info.value)
    assert message.startswith("feature set 'lm', split 'train': band statistics are not finite")
    assert "in 2 of 12 band(s) (3, 7)" in message
    assert f"in 1 track(s) ({track['track_id']!r})" in message
    # the test split holds no such value: its statistics are finite
    assert np.isfinite(band_statistics(index=index, split="test")["mean"]).all()
