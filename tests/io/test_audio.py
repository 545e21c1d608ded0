"""Decoding, down-mixing, resampling and windowing on real encoded files with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import AudioError, ConfigError
from pipeline.io.audio import DecodeInfo, WindowSettings, downmix, iter_windows, read_windows
from tests.helpers.audio import tone, write_audio

SR = 16000
PCM16 = 1.0 / 32768  # quantisation step of the PCM_16 test files


def _ramp(duration_s: float, *, sample_rate: int = SR) -> np.ndarray:
    """A slow ramp in [-0.9, 0.9]: every window's content tells where it starts."""
    n = int(round(duration_s * sample_rate))
    return np.linspace(-0.9, 0.9, n, dtype=np.float32)


def _windows(path: Path, **settings: float | str) -> tuple[np.ndarray, np.ndarray, DecodeInfo]:
    info = DecodeInfo(path=str(path))
    starts, windows = read_windows(path=path, settings=WindowSettings(**settings), info=info)
    return starts, windows, info


# ---------------------------------------------------------------------------- windowing


def test_exact_multiple_gives_whole_windows_only(tmp_path: Path) -> None:
    data = _ramp(6.0)
    path = write_audio(tmp_path / "six.wav", data=data)
    starts, windows, info = _windows(path, length_s=2.0, hop_s=2.0)
    np.testing.assert_array_equal(starts, [0.0, 2.0, 4.0])
    assert windows.shape == (3, 2 * SR) and windows.dtype == np.float32
    for k in range(3):
        np.testing.assert_allclose(windows[k], data[k * 2 * SR : (k + 1) * 2 * SR], atol=PCM16)
    assert not info.padded and not info.truncated
    assert info.warnings == []
    assert info.duration_s == pytest.approx(6.0)
    assert (info.source_sample_rate, info.channels) == (SR, 1)


def test_partial_tail_longer_than_min_tail_is_zero_padded(tmp_path: Path) -> None:
    data = _ramp(7.0)
    path = write_audio(tmp_path / "seven.wav", data=data)
    starts, windows, info = _windows(path, length_s=2.0, hop_s=2.0, min_tail_s=0.5)
    np.testing.assert_array_equal(starts, [0.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(windows[3, :SR], data[6 * SR :], atol=PCM16)
    assert np.all(windows[3, SR:] == 0.0)
    assert info.padded


def test_partial_tail_shorter_than_min_tail_is_dropped(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "short_tail.wav", data=_ramp(6.3))
    starts, windows, info = _windows(path, length_s=2.0, hop_s=2.0, min_tail_s=0.5)
    np.testing.assert_array_equal(starts, [0.0, 2.0, 4.0])
    assert len(windows) == 3
    assert not info.padded


def test_tail_drop_drops_partial_window(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "seven.wav", data=_ramp(7.0))
    starts, _, info = _windows(path, length_s=2.0, hop_s=2.0, tail="drop", min_tail_s=0.0)
    np.testing.assert_array_equal(starts, [0.0, 2.0, 4.0])
    assert not info.padded


def test_track_shorter_than_window_is_padded_to_one_window(tmp_path: Path) -> None:
    data = _ramp(0.7)
    path = write_audio(tmp_path / "tiny.wav", data=data)
    # min_tail_s does not apply to a track shorter than one window: it is always kept
    starts, windows, info = _windows(path, length_s=2.0, hop_s=2.0, min_tail_s=5.0)
    np.testing.assert_array_equal(starts, [0.0])
    assert windows.shape == (1, 2 * SR)
    np.testing.assert_allclose(windows[0, : len(data)], data, atol=PCM16)
    assert np.all(windows[0, len(data) :] == 0.0)
    assert info.padded
    assert info.duration_s == pytest.approx(0.7)


def test_track_shorter_than_window_fails_under_drop(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "tiny.wav", data=_ramp(0.7))
    with pytest.raises(AudioError, match="shorter than one") as err:
        _windows(path, length_s=2.0, hop_s=2.0, tail="drop")
    assert str(path) in str(err.value)


def test_overlapping_hop(tmp_path: Path) -> None:
    data = _ramp(5.0)
    path = write_audio(tmp_path / "five.wav", data=data)
    starts, windows, info = _windows(path, length_s=2.0, hop_s=1.0, min_tail_s=0.25)
    # the window at 3 s ends exactly at 5 s: no tail window holds new audio
    np.testing.assert_array_equal(starts, [0.0, 1.0, 2.0, 3.0])
    for k, start in enumerate(starts):
        a = int(start * SR)
        np.testing.assert_allclose(windows[k], data[a : a + 2 * SR], atol=PCM16)
    assert not info.padded


def test_overlapping_hop_with_partial_tail(tmp_path: Path) -> None:
    data = _ramp(5.5)
    path = write_audio(tmp_path / "five_half.wav", data=data)
    starts, windows, info = _windows(path, length_s=2.0, hop_s=1.0, min_tail_s=0.25)
    np.testing.assert_array_equal(starts, [0.0, 1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(windows[4, : int(1.5 * SR)], data[4 * SR :], atol=PCM16)
    assert np.all(windows[4, int(1.5 * SR) :] == 0.0)
    assert info.padded
    # the 0.5 s of new audio in the tail is below a 1 s min_tail: no tail window
    starts, _, _ = _windows(path, length_s=2.0, hop_s=1.0, min_tail_s=1.0)
    np.testing.assert_array_equal(starts, [0.0, 1.0, 2.0, 3.0])


@pytest.mark.parametrize("sample_rate", [SR, 44100])
@pytest.mark.parametrize("block_s", [60.0, 0.3])
def test_max_duration_truncates_with_warning(
    tmp_path: Path, sample_rate: int, block_s: float
) -> None:
    path = write_audio(tmp_path / "long.wav", duration_s=5.0, sample_rate=sample_rate)
    info = DecodeInfo(path=str(path))
    settings = WindowSettings(length_s=1.0, hop_s=1.0, max_duration_s=3.0, min_tail_s=0.1)
    got = list(iter_windows(path=path, settings=settings, block_s=block_s, info=info))
    assert [s for s, _ in got] == [0.0, 1.0, 2.0]
    assert info.truncated
    assert info.duration_s == pytest.approx(3.0)
    assert len(info.warnings) == 1 and "max_duration_s=3" in info.warnings[0]


def test_track_exactly_max_duration_is_not_truncated(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "three.wav", duration_s=3.0)
    starts, _, info = _windows(path, length_s=1.0, hop_s=1.0, max_duration_s=3.0)
    assert len(starts) == 3
    assert not info.truncated and info.warnings == []


# ---------------------------------------------------------------------------- down-mix


def test_downmix_stereo_and_multichannel_equal_mean() -> None:
    rng = np.random.default_rng(1)
    for channels in (1, 2, 3, 6):
        block = rng.standard_normal((1000, channels)).astype(np.float32)
        mono = downmix(block)
        assert mono.shape == (1000,) and mono.dtype == np.float32
        np.testing.assert_allclose(mono, block.mean(axis=1), atol=1e-6)
    flat = rng.standard_normal(50).astype(np.float32)
    np.testing.assert_array_equal(downmix(flat), flat)


def test_downmix_returns_float32_for_any_input_dtype() -> None:
    block = np.random.default_rng(2).standard_normal((100, 2))  # float64
    assert downmix(block).dtype == np.float32
    assert downmix(np.ones((100, 6))).dtype == np.float32


@pytest.mark.parametrize(("suffix", "channels"), [(".wav", 2), (".flac", 6)])
def test_multichannel_file_is_downmixed_to_channel_mean(
    tmp_path: Path, suffix: str, channels: int
) -> None:
    n = 2 * SR
    t = np.arange(n) / SR
    data = np.stack(
        [0.1 * (c + 1) * np.sin(2 * np.pi * (200 + 100 * c) * t) for c in range(channels)], axis=1
    ).astype(np.float32)
    path = write_audio(tmp_path / f"multi{suffix}", data=data)
    starts, windows, info = _windows(path, length_s=2.0, hop_s=2.0)
    assert info.channels == channels
    np.testing.assert_allclose(windows[0], data.mean(axis=1), atol=2 * PCM16)


# ---------------------------------------------------------------------------- resampling


@pytest.mark.parametrize(
    ("sample_rate", "freq_hz"), [(44100, 1000.0), (44100, 5000.0), (8000, 1000.0), (96000, 3000.0)]
)
def test_resampling_preserves_tone_frequency(
    tmp_path: Path, sample_rate: int, freq_hz: float
) -> None:
    path = write_audio(
        tmp_path / f"tone_{sample_rate}.flac",
        duration_s=4.0,
        sample_rate=sample_rate,
        freq_hz=freq_hz,
    )
    starts, windows, info = _windows(path, length_s=2.0, hop_s=2.0, min_tail_s=0.5)
    assert info.source_sample_rate == sample_rate
    # 4 s at any source rate is exactly 64,000 samples at 16 kHz: two whole windows
    np.testing.assert_array_equal(starts, [0.0, 2.0])
    for window in windows:
        spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
        freqs = np.fft.rfftfreq(len(window), 1 / SR)
        assert abs(freqs[spectrum.argmax()] - freq_hz) <= 0.5  # one bin at 2 s
        # amplitude survives too (0.5 sine, plus a little noise)
        assert 0.45 < np.abs(window[SR // 2 : -SR // 2]).max() < 0.6


@pytest.mark.parametrize(
    ("suffix", "sample_rate", "channels"), [(".wav", 44100, 2), (".ogg", 22050, 1)]
)
def test_small_blocks_give_the_same_windows_as_one_block(
    tmp_path: Path, suffix: str, sample_rate: int, channels: int
) -> None:
    path = write_audio(
        tmp_path / f"stream{suffix}", duration_s=5.3, sample_rate=sample_rate, channels=channels
    )
    settings = WindowSettings(length_s=1.0, hop_s=0.75, min_tail_s=0.1)
    whole = list(iter_windows(path=path, settings=settings, block_s=600.0))
    small = list(iter_windows(path=path, settings=settings, block_s=0.05))
    assert [s for s, _ in whole] == [s for s, _ in small]
    assert len(whole) == 7
    for (_, a), (_, b) in zip(whole, small, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


# ---------------------------------------------------------------------------- bad input


def _bad_file(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "missing.wav"
    if kind == "empty":
        path = tmp_path / "empty.flac"
        path.write_bytes(b"")
        return path
    if kind == "text_as_mp3":
        path = tmp_path / "notes.mp3"
        path.write_text("this is a text file, not audio\n" * 40, encoding="utf-8")
        return path
    if kind == "random_bytes":
        path = tmp_path / "corrupt.wav"
        path.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        return path
    if kind == "directory":
        path = tmp_path / "folder.wav"
        path.mkdir()
        return path
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing", "empty", "text_as_mp3", "random_bytes", "directory"])
def test_unreadable_input_raises_audio_error_naming_the_path(tmp_path: Path, kind: str) -> None:
    path = _bad_file(tmp_path, kind)
    with pytest.raises(AudioError) as err:
        _windows(path, length_s=1.0, hop_s=1.0)
    assert str(path) in str(err.value)


def test_silent_file_is_kept_with_a_warning(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "silent.wav", data=np.zeros(3 * SR, dtype=np.float32))
    starts, windows, info = _windows(path, length_s=1.0, hop_s=1.0)
    assert len(starts) == 3
    assert np.all(windows == 0.0)
    assert info.peak == 0.0
    assert any("silent" in w for w in info.warnings)


def test_audible_file_has_no_silence_warning(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "tone.wav", duration_s=2.0)
    _, _, info = _windows(path, length_s=1.0, hop_s=1.0)
    assert info.warnings == []
    assert info.peak == pytest.approx(0.5, abs=0.06)


def test_non_ascii_file_name(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "Café – Ωμέγα 日本語 ♫.flac", data=tone(duration_s=2.0))
    starts, windows, info = _windows(path, length_s=1.0, hop_s=1.0)
    np.testing.assert_array_equal(starts, [0.0, 1.0])
    assert info.path == str(path)


def test_read_windows_accepts_str_path(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a.wav", duration_s=2.0)
    starts, windows = read_windows(path=str(path), settings=WindowSettings(length_s=1.0, hop_s=1.0))
    assert starts.dtype == np.float64 and windows.shape == (2, SR)


# ---------------------------------------------------------------------------- settings


def test_window_settings_lengths_and_dict() -> None:
    settings = WindowSettings()
    assert settings.length == 465_600 and settings.hop == 465_600
    assert WindowSettings(length_s=2.0, hop_s=0.5, sample_rate=8000).hop == 4000
    assert WindowSettings(**settings.to_dict()) == settings


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"tail": "wrap"}, "window.tail"),
        ({"length_s": 0.0}, "window.length_s"),
        ({"sample_rate": -1}, "window.sample_rate"),
        ({"max_duration_s": 0}, "window.max_duration_s"),
        ({"length_s": 1.0, "hop_s": 2.0}, "window.hop_s"),
    ],
)
def test_window_settings_reject_bad_values(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        WindowSettings(**kwargs)


def test_truncated_mp3_is_not_silently_shortened(tmp_path: Path) -> None:
    full = write_audio(tmp_path / "full.mp3", duration_s=4.0)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2])
    info = DecodeInfo(path=str(cut))
    try:
        read_windows(path=cut, settings=WindowSettings(length_s=1.0, hop_s=1.0), info=info)
    except AudioError as exc:
        assert str(cut) in str(exc)
        return
    assert info.duration_s < 3.0  # the loss is real ...
    assert info.warnings, "... and must be reported"
