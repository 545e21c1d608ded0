"""Window geometry on stored features: frames holding audio, crops, middle blocks, pooling,
normalisation, the hop in frames, reading rows of a store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import (
    audio_frames,
    chunk_grid,
    crop_starts,
    hop_frames,
    middle_block,
    normaliser,
    pool_sequence,
    store_windows,
)
from pipeline.io.audio import WindowSettings
from pipeline.io.store import StoreWriter

#: 1 s windows at 16 kHz, hop 256: 63 centred frames, stored as 70 (7 frames of floor padding).
SETTINGS = FeatureSettings(
    name="lm", window=WindowSettings(length_s=1.0, hop_s=0.5), n_mels=8, n_frames=70
)


@pytest.mark.parametrize(
    ("n_windows", "max_windows", "block"),
    [(3, 10, (0, 3)), (10, 10, (0, 10)), (15, 10, (2, 12)), (5, 2, (1, 3)), (6, 2, (2, 4))],
)
def test_middle_block(n_windows: int, max_windows: int, block: tuple[int, int]) -> None:
    assert middle_block(n_windows, max_windows=max_windows) == block


def test_audio_frames_count_centred_frames_of_audio() -> None:
    """ceil(audio samples left / 256) + 1, at most the 63 centred frames, at least 1."""
    assert SETTINGS.natural_n_frames == 63
    starts = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    valid = audio_frames(starts_s=starts, duration_s=1.6, features=SETTINGS)
    # audio left: 1.6 s, 1.1 s, 0.6 s (9,600 samples), 0.1 s (1,600), none
    assert valid.dtype == np.int64
    assert valid.tolist() == [63, 63, 9600 // 256 + 1 + 1, 1600 // 256 + 1 + 1, 1]
    per_window = audio_frames(
        starts_s=starts[:2], duration_s=np.array([0.25, 5.0]), features=SETTINGS
    )
    assert per_window.tolist() == [4000 // 256 + 1 + 1, 63]
    short = FeatureSettings(name="s", window=SETTINGS.window, n_mels=8, n_frames=40)
    assert audio_frames(starts_s=starts[:1], duration_s=9.0, features=short).tolist() == [40]


def test_crop_starts_are_evenly_spaced_and_end_inside_the_audio() -> None:
    starts = crop_starts(valid_frames=np.array([70, 33, 20]), crop_frames=20, n_chunks=3)
    assert starts.dtype == np.int64
    assert starts.tolist() == [[0, 25, 50], [0, 6, 13], [0, 0, 0]]
    assert (starts + 20 <= np.array([70, 33, 20])[:, None]).all()
    one = crop_starts(valid_frames=np.array([70]), crop_frames=20, n_chunks=1)
    assert one.tolist() == [[0]]


def test_normaliser_centres_and_scales_each_band() -> None:
    mean, inv_std = normaliser({"mean": [1.0, -2.0, 3.0], "std": [2.0, 0.5, 0.0]}, n_bins=3)
    assert mean.shape == inv_std.shape == (3, 1)
    assert mean.dtype == inv_std.dtype == np.float32
    assert mean[:, 0].tolist() == [1.0, -2.0, 3.0]
    assert inv_std[:, 0].tolist() == [0.5, 2.0, 1.0]  # a constant band is only centred
    with pytest.raises(PipelineError, match=r"lack 'std': \['mean'\]"):
        normaliser({"mean": [0.0]}, n_bins=1)
    with pytest.raises(PipelineError, match="2 means and 2 stds, but the windows have 3 bands"):
        normaliser({"mean": [0.0, 0.0], "std": [1.0, 1.0]}, n_bins=3)


def test_pool_sequence_keeps_each_frame_once_and_averages_groups() -> None:
    # two windows of 1 band x 5 frames, hop 3: frames 3, 4 of window 0 are frames 0, 1 of window 1
    windows = np.array([[[0.0, 1, 2, 3, 4]], [[3.0, 4, 5, 6, 7]]], dtype=np.float32)
    x = pool_sequence(windows, valid_frames=np.array([5, 5]), hop_frames=3, pool_frames=1)
    assert x.shape == (8, 1) and x[:, 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    pooled = pool_sequence(windows, valid_frames=np.array([5, 4]), hop_frames=3, pool_frames=3)
    assert pooled[:, 0].tolist() == [1.0, 4.0, 6.0]  # the last group is frame 6 alone
    short = pool_sequence(windows, valid_frames=np.array([2, 4]), hop_frames=3, pool_frames=2)
    assert short[:, 0].tolist() == [0.5, 3.5, 5.5]  # window 0 holds 2 frames of audio
    with pytest.raises(PipelineError, match="at least one window"):
        pool_sequence(windows[:0], valid_frames=np.array([]), hop_frames=3, pool_frames=2)


def test_hop_frames() -> None:
    assert hop_frames(SETTINGS) == round(8000 / 256) == 31
    whole = FeatureSettings(name="w", window=WindowSettings(length_s=1.0, hop_s=1.0), n_frames=40)
    assert hop_frames(whole) == 40  # never more than the stored frames
    reference = FeatureSettings(name="ref")
    assert hop_frames(reference) == round(465_600 / 256) == 1819


def test_store_windows_reads_rows(tmp_path: Path) -> None:
    windows = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3)
    writer = StoreWriter(path=tmp_path / "s.zarr", window_shape=(2, 3), attrs={})
    writer.add(track_id="a", windows=windows[:1], starts_s=np.zeros(1), duration_s=1.0)
    writer.add(track_id="b", windows=windows[1:], starts_s=np.arange(3.0), duration_s=3.0)
    writer.close()
    rows = store_windows(store=tmp_path / "s.zarr", start=1, stop=3)
    assert isinstance(rows, np.ndarray) and rows.dtype == np.float16
    np.testing.assert_array_equal(rows, windows[1:3])
    with pytest.raises(PipelineError, match="nothing.zarr.*no windows array"):
        store_windows(store=tmp_path / "nothing.zarr", start=0, stop=1)


def test_crop_starts_are_even_inside_the_audio() -> None:
    starts = crop_starts(valid_frames=np.array([64, 40, 10]), crop_frames=16, n_chunks=4)
    assert starts.tolist() == [[0, 16, 32, 48], [0, 8, 16, 24], [0, 0, 0, 0]]


def test_pool_sequence_skips_window_overlap() -> None:
    windows = np.arange(2 * 1 * 6, dtype=np.float32).reshape(2, 1, 6)
    x = pool_sequence(windows, valid_frames=np.array([6, 4]), hop_frames=3, pool_frames=2)
    # window 0 keeps frames 0..2 (hop), window 1 keeps its 4 valid frames: 7 frames
    np.testing.assert_allclose(x[:, 0], [0.5, (2 + 6) / 2, (7 + 8) / 2, 9.0])


def test_middle_block_of_long_tracks() -> None:
    assert middle_block(3, max_windows=10) == (0, 3)
    assert middle_block(15, max_windows=10) == (2, 12)
    assert middle_block(16, max_windows=10) == (3, 13)


def test_chunk_grid_covers_the_audio_with_ceil_chunks() -> None:
    window, start = chunk_grid(valid_frames=np.array([64, 64, 44, 10]), chunk_frames=32)
    assert window.tolist() == [0, 0, 1, 1, 2, 2, 3]
    assert start.tolist() == [0, 32, 0, 32, 0, 12, 0]  # the last chunk ends with the audio
    for valid in range(1, 200):  # ceil(valid / chunk) chunks, all inside the audio
        window, start = chunk_grid(valid_frames=np.array([valid]), chunk_frames=32)
        assert len(start) == -(-valid // 32)
        assert (start >= 0).all() and (start + 32 <= max(valid, 32)).all()
        assert (np.diff(start) > 0).all()
    with pytest.raises(PipelineError, match="chunk_frames"):
        chunk_grid(valid_frames=np.array([10]), chunk_frames=0)
