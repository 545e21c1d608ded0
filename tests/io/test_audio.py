"""Decoding, down-mixing, resampling and windowing on real encoded files with known answers."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.errors import AudioError, ConfigError
from pipeline.io.audio import (
    MAX_ABS_SAMPLE,
    DecodeInfo,
    WindowSettings,
    downmix,
    iter_windows,
    read_windows,
)
from pipeline.io.files import stat_file
from tests.helpers.audio import FFMPEG_FORMATS, tone, write_audio, write_ffmpeg_audio
from tests.helpers.bad_inputs import (
    BAD_AUDIO,
    CORRUPT_MP3_S,
    aac_m4a,
    call_with_deadline,
    corrupt_burst_mp3,
    fifo,
    garbled_m4a,
    truncated_flac,
    write_bad_audio,
)

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


@pytest.mark.parametrize("min_tail_s", [0.5, 0.7])  # 0.7 s: exactly enough audio
def test_track_shorter_than_window_is_padded_to_one_window(
    tmp_path: Path, min_tail_s: float
) -> None:
    data = _ramp(0.7)
    path = write_audio(tmp_path / "tiny.wav", data=data)
    starts, windows, info = _windows(path, length_s=2.0, hop_s=2.0, min_tail_s=min_tail_s)
    np.testing.assert_array_equal(starts, [0.0])
    assert windows.shape == (1, 2 * SR)
    np.testing.assert_allclose(windows[0, : len(data)], data, atol=PCM16)
    assert np.all(windows[0, len(data) :] == 0.0)
    assert info.padded
    assert info.duration_s == pytest.approx(0.7)


@pytest.mark.parametrize(("seconds", "min_tail_s"), [(0.7, 5.0), (0.7, 0.71), (1 / SR, 0.3)])
def test_track_with_less_audio_than_min_tail_fails_under_pad(
    tmp_path: Path, seconds: float, min_tail_s: float
) -> None:
    """A track is kept only if it holds min_tail_s seconds of audio or one whole window: a
    1-sample file is not stored as a window of zeros."""
    path = write_audio(tmp_path / "tiny.wav", data=_ramp(seconds))
    with pytest.raises(AudioError, match="too short") as err:
        _windows(path, length_s=2.0, hop_s=2.0, min_tail_s=min_tail_s)
    message = str(err.value)
    assert str(path) in message and f"window.min_tail_s={min_tail_s:g} s" in message


def test_min_tail_zero_keeps_a_one_sample_track(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "one.wav", data=np.full(1, 0.5, np.float32))
    starts, windows, info = _windows(path, length_s=1.0, hop_s=1.0, min_tail_s=0.0)
    assert windows.shape == (1, SR) and windows[0, 0] == pytest.approx(0.5, abs=PCM16)
    assert np.all(windows[0, 1:] == 0.0) and info.padded


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


BAD_ERRORS = sorted(k for k, case in BAD_AUDIO.items() if case.outcome == "error")
BAD_WARNINGS = sorted(k for k, case in BAD_AUDIO.items() if case.outcome == "warning")


def test_the_bad_inputs_cover_both_outcomes() -> None:
    assert len(BAD_ERRORS) >= 15
    assert BAD_WARNINGS == ["aac_m4a", "corrupt_burst_mp3", "truncated_flac"]
    assert {"unknown_codec", "video_only_m4a", "garbled_m4a"} <= set(BAD_ERRORS)  # unreadable


@pytest.mark.parametrize("kind", BAD_ERRORS)
def test_bad_input_is_one_audio_error_naming_the_path_and_the_rule(
    tmp_path: Path, kind: str
) -> None:
    """Every refusal happens within seconds (a named pipe or /dev/zero never blocks)."""
    paths = write_bad_audio(tmp_path, kinds=[kind])
    if kind not in paths:
        pytest.skip(f"{kind}: not available on this platform")
    path = paths[kind]
    with pytest.raises(AudioError) as err:
        call_with_deadline(20, _windows, path, length_s=1.0, hop_s=1.0, min_tail_s=0.3)
    message = str(err.value)
    assert str(path) in message and BAD_AUDIO[kind].says in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="does not exist") as err:
        _windows(tmp_path / "missing.wav", length_s=1.0, hop_s=1.0)
    assert str(tmp_path / "missing.wav") in str(err.value)


def test_regular_file_is_checked_without_opening(tmp_path: Path) -> None:
    """stat_file only stats: a named pipe with no writer is refused at once."""
    pipe = fifo(tmp_path)
    with pytest.raises(AudioError, match="named pipe"):
        call_with_deadline(5, stat_file, pipe, what="audio", error=AudioError)
    good = write_audio(tmp_path / "a.wav", duration_s=0.5)
    assert stat_file(good, what="audio").st_size == good.stat().st_size


@pytest.mark.parametrize(
    ("rate", "ok"), [(3999, False), (4000, True), (384_000, True), (384_001, False)]
)
def test_sample_rate_limits(tmp_path: Path, rate: int, ok: bool) -> None:
    path = tmp_path / f"rate_{rate}.wav"
    sf.write(path, tone(duration_s=1.2, sample_rate=rate), rate, subtype="PCM_16")
    if ok:
        starts, windows, info = _windows(path, length_s=1.0, hop_s=1.0, min_tail_s=0.1)
        assert info.source_sample_rate == rate and len(windows) == 2
        assert info.duration_s == pytest.approx(1.2, abs=1 / rate)
    else:
        with pytest.raises(AudioError, match=rf"sample rate {rate} Hz is outside \[4000, 384000\]"):
            _windows(path, length_s=1.0, hop_s=1.0)


@pytest.mark.parametrize(("peak", "ok"), [(2.0, True), (MAX_ABS_SAMPLE, True), (1001.0, False)])
def test_float_samples_beyond_the_limit_are_refused(tmp_path: Path, peak: float, ok: bool) -> None:
    """Float files may exceed full scale a little (kept as they are), not absurdly."""
    data = np.zeros(SR, np.float32)
    data[SR // 2] = peak
    data[SR // 4] = -0.5
    path = tmp_path / "float.wav"
    sf.write(path, data, SR, subtype="FLOAT")
    if ok:
        _, windows, info = _windows(path, length_s=1.0, hop_s=1.0)
        assert windows[0, SR // 2] == peak and info.peak == peak
    else:
        with pytest.raises(AudioError, match=r"up to 1e\+03 .* outside \[-1000, 1000\]"):
            _windows(path, length_s=1.0, hop_s=1.0)


def test_absurd_channels_that_cancel_in_the_downmix_are_refused(tmp_path: Path) -> None:
    """Left = -right = 1e20 x: the mono mean is silence, the file is still refused."""
    x = np.zeros(SR, np.float32)
    x[100] = 0.5
    path = tmp_path / "opposed.wav"
    sf.write(path, np.stack([1e20 * x, -1e20 * x], axis=1).astype(np.float32), SR, subtype="FLOAT")
    assert not downmix(sf.read(path, dtype="float32")[0]).any()  # the premise
    with pytest.raises(AudioError, match=r"sample values up to 5e\+19 "):
        _windows(path, length_s=1.0, hop_s=1.0)


def test_bad_samples_after_good_blocks_fail_the_whole_track(tmp_path: Path) -> None:
    """A NaN at 2.5 s: the windows already streamed must be discarded (the error says where)."""
    data = tone(duration_s=3.0)[:, 0]
    data[int(2.5 * SR)] = np.nan
    path = tmp_path / "late_nan.wav"
    sf.write(path, data, SR, subtype="FLOAT")
    settings = WindowSettings(length_s=1.0, hop_s=1.0)
    got = []
    with pytest.raises(AudioError, match="non-finite samples .* from 2.0 s"):
        for start, _ in iter_windows(path=path, settings=settings, block_s=1.0):
            got.append(start)
    assert got == [0.0, 1.0]


def _rewrite(path: Path) -> None:
    write_audio(path, duration_s=4.0, freq_hz=880.0)  # same inode, other size


def _replace(path: Path) -> None:
    other = write_audio(path.with_name("other.wav"), duration_s=5.0)
    os.replace(other, path)  # a new inode at the same path


def _touch(path: Path) -> None:
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 5_000_000_000))  # mtime only


def _remove(path: Path) -> None:
    path.unlink()  # the open file is still read to its end


@pytest.mark.parametrize(
    "change", [_rewrite, _replace, _touch, _remove], ids=lambda f: f.__name__[1:]
)
def test_file_changed_while_read_is_refused(tmp_path: Path, change: Callable) -> None:
    path = write_audio(tmp_path / "moving.wav", duration_s=5.0)
    windows = iter_windows(path=path, settings=WindowSettings(length_s=1.0, hop_s=1.0), block_s=1.0)
    next(windows)
    change(path)
    with pytest.raises(AudioError, match="changed while it was read") as err:
        list(windows)
    assert str(path) in str(err.value)


def test_a_file_left_alone_is_not_reported_as_changed(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "still.wav", duration_s=3.0)
    settings = WindowSettings(length_s=1.0, hop_s=1.0)
    assert len(list(iter_windows(path=path, settings=settings, block_s=0.5))) == 3


# ---------------------------------------------------------------------------- fallback decoder


@pytest.fixture(scope="module")
def burst_mp3(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The corrupt MP3 and the same MP3 before the burst was written over its middle."""
    folder = tmp_path_factory.mktemp("burst")
    clean = write_audio(
        folder / "clean" / "burst.mp3", duration_s=CORRUPT_MP3_S, sample_rate=44100, channels=2
    )
    return {"clean": clean, "corrupt": corrupt_burst_mp3(folder)}


def test_libsndfile_refuses_the_corrupt_mp3(burst_mp3: dict[str, Path]) -> None:
    """The premise of the fallback: without it, the whole track would be lost."""
    with pytest.raises(sf.LibsndfileError), sf.SoundFile(burst_mp3["corrupt"]) as f:
        f.read(dtype="float32")


@pytest.mark.parametrize("block_s", [60.0, 0.5])  # FFmpeg from the start, or mid-stream
def test_corrupt_mp3_is_recovered_by_the_fallback_decoder(
    burst_mp3: dict[str, Path], block_s: float
) -> None:
    settings = WindowSettings(length_s=1.0, hop_s=1.0, min_tail_s=0.3)
    info = DecodeInfo(path=str(burst_mp3["corrupt"]))
    got = list(
        iter_windows(path=burst_mp3["corrupt"], settings=settings, block_s=block_s, info=info)
    )
    clean = list(iter_windows(path=burst_mp3["clean"], settings=settings))
    # 4 KB of a ~100 KB file: about 0.4 s of the 10 s are lost, the rest is kept
    assert 0.9 * CORRUPT_MP3_S < info.duration_s < CORRUPT_MP3_S
    assert len(got) == len(clean) == 10
    assert info.decoder == "ffmpeg"
    assert info.warnings[0].startswith(
        "decoded with the fallback decoder (FFmpeg) after libsndfile failed: decoding failed"
    )
    assert "Unspecified internal error" in info.warnings[0]
    assert any("frames the header declares" in w for w in info.warnings[1:])
    # before the burst (at about 5 s) the audio is that of the intact file
    for (start, window), (clean_start, clean_window) in zip(got[:4], clean[:4], strict=True):
        assert start == clean_start
        np.testing.assert_allclose(window, clean_window, atol=1e-4)


def test_fallback_from_the_start_or_mid_stream_gives_the_same_audio(
    burst_mp3: dict[str, Path],
) -> None:
    settings = WindowSettings(length_s=1.0, hop_s=1.0, min_tail_s=0.3)
    whole, mid = DecodeInfo(path=""), DecodeInfo(path="")
    a = list(iter_windows(path=burst_mp3["corrupt"], settings=settings, info=whole))
    b = list(iter_windows(path=burst_mp3["corrupt"], settings=settings, block_s=0.5, info=mid))
    assert whole.duration_s == mid.duration_s
    assert "after 0 frames" in whole.warnings[0]
    # libsndfile read 0.5 s blocks up to the burst in the middle; FFmpeg went on from there
    switched = int(re.search(r"after (\d+) frames", mid.warnings[0]).group(1))
    assert switched % 22050 == 0 and 0.4 * CORRUPT_MP3_S < switched / 44100 < 0.6 * CORRUPT_MP3_S
    for (_, x), (_, y) in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-4)


def test_good_files_never_use_the_fallback(burst_mp3: dict[str, Path], tmp_path: Path) -> None:
    for path in (burst_mp3["clean"], write_audio(tmp_path / "a.flac", duration_s=1.5)):
        _, _, info = _windows(path, length_s=1.0, hop_s=1.0, min_tail_s=0.3)
        assert info.decoder == "libsndfile" and info.warnings == []


def test_a_format_only_ffmpeg_reads_is_decoded_by_the_fallback(tmp_path: Path) -> None:
    path = aac_m4a(tmp_path)
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(path))
    starts, windows, info = _windows(path, length_s=1.0, hop_s=1.0, min_tail_s=0.3)
    assert info.decoder == "ffmpeg" and (info.source_sample_rate, info.channels) == (44100, 1)
    assert info.warnings == [
        "decoded with the fallback decoder (FFmpeg) after libsndfile failed: Format not "
        "recognised ('aac' audio in the 'mov,mp4,m4a,3gp,3g2,mj2' container)"
    ]
    assert len(windows) == 2 and 2.0 <= info.duration_s < 2.1  # AAC pads to whole frames
    spectrum = np.abs(np.fft.rfft(windows[0] * np.hanning(SR)))
    assert np.argmax(spectrum) == 440  # 1 Hz bins: the tone survived
    assert 0.45 < np.abs(windows[0]).max() < 0.6


def _two_tones(*, duration_s: float, sample_rate: int) -> np.ndarray:
    """Stereo: 440 Hz at 0.5 on the left, 1,000 Hz at 0.5 on the right, (n, 2) float32."""
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    left, right = np.sin(2 * np.pi * 440.0 * t), np.sin(2 * np.pi * 1000.0 * t)
    return (0.5 * np.stack([left, right], axis=1)).astype(np.float32)


#: Per format: the file suffix, FFmpeg's codec name, the container, and how many seconds the
#: decoded duration of 3 s may lie below and above 3 s (AAC pads to whole frames; FFmpeg's
#: WMA round trip loses its first 2,048-sample frame; ALAC is lossless and exact).
FFMPEG_CASES = {
    "aac_m4a": (".m4a", "aac", "mov,mp4,m4a,3gp,3g2,mj2", (0.0, 0.05)),
    "alac_m4a": (".m4a", "alac", "mov,mp4,m4a,3gp,3g2,mj2", (0.0, 0.0)),
    "wma": (".wma", "wmav2", "asf", (2048 / 44100, 0.0)),
}


def test_the_ffmpeg_cases_cover_every_ffmpeg_format() -> None:
    assert sorted(FFMPEG_CASES) == sorted(FFMPEG_FORMATS)


@pytest.mark.parametrize("kind", sorted(FFMPEG_CASES))
@pytest.mark.parametrize("sample_rate", [44100, 48000])
def test_formats_libsndfile_refuses_decode_through_the_same_path(
    tmp_path: Path, kind: str, sample_rate: int
) -> None:
    """M4A (AAC, ALAC) and WMA: down-mixed, resampled and windowed like a FLAC of the same
    audio; in small blocks the same as in one block."""
    suffix, codec, container, (below_s, above_s) = FFMPEG_CASES[kind]
    data = _two_tones(duration_s=3.0, sample_rate=sample_rate)
    path = write_ffmpeg_audio(
        tmp_path / f"two_tones{suffix}", data=data, sample_rate=sample_rate, kind=kind
    )
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(path))
    settings = WindowSettings(length_s=1.0, hop_s=1.0, min_tail_s=0.3)
    info = DecodeInfo(path=str(path))
    starts, windows = read_windows(path=path, settings=settings, info=info)
    assert info.decoder == "ffmpeg" and (info.source_sample_rate, info.channels) == (
        sample_rate,
        2,
    )
    assert info.warnings == [
        "decoded with the fallback decoder (FFmpeg) after libsndfile failed: Format not "
        f"recognised ({codec!r} audio in the {container!r} container)"
    ]
    assert 3.0 - below_s - 1e-9 <= info.duration_s <= 3.0 + above_s + 1e-9
    np.testing.assert_array_equal(starts, [0.0, 1.0, 2.0])
    # the down-mix holds both tones at half their amplitude (0.25 each)
    middle = windows[1]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(SR))) / (SR / 4)  # 1 Hz bins
    assert sorted(np.argsort(spectrum)[-2:]) == [440, 1000]
    np.testing.assert_allclose(spectrum[[440, 1000]], 0.25, atol=0.02)
    flac = write_audio(tmp_path / "two_tones.flac", data=data, sample_rate=sample_rate)
    _, reference = read_windows(path=flac, settings=settings)
    if codec == "alac":  # lossless: the same samples as the FLAC, to 16-bit quantisation
        np.testing.assert_allclose(windows, reference, atol=2 * PCM16)
    else:  # lossy (FFmpeg's WMA round trip also loses the first 2,048 samples): same power
        np.testing.assert_allclose(
            np.sqrt(np.mean(middle**2)), np.sqrt(np.mean(reference[1] ** 2)), rtol=0.03
        )
    # streamed in 0.25 s blocks, decoded by FFmpeg from the start all the same
    _, streamed = zip(*iter_windows(path=path, settings=settings, block_s=0.25), strict=True)
    np.testing.assert_allclose(np.stack(streamed), windows, atol=1e-6)


def test_a_stream_ffmpeg_decodes_nothing_of_is_one_error_without_warnings(
    tmp_path: Path,
) -> None:
    info = DecodeInfo(path="")
    settings = WindowSettings(length_s=1.0, hop_s=1.0)
    with pytest.raises(AudioError, match=r"[1-9]\d* undecodable packet\(s\)\)$"):
        read_windows(path=garbled_m4a(tmp_path), settings=settings, info=info)
    assert info.warnings == [] and info.decoder == "ffmpeg"


def test_truncated_flac_keeps_what_was_written(tmp_path: Path) -> None:
    path = truncated_flac(tmp_path)
    starts, windows, info = _windows(path, length_s=1.0, hop_s=1.0, min_tail_s=0.3)
    assert 2.0 < info.duration_s < 3.5  # half the bytes of 6 s
    assert info.decoder == "ffmpeg" and "flac decoder lost sync" in info.warnings[0]
    assert "of the 96000 frames the header declares" in info.warnings[1]


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


def test_file_names_that_are_not_utf8_decode_with_both_decoders(tmp_path: Path) -> None:
    """A name in Latin-1 (``os.fsdecode`` gives lone surrogates) reaches libsndfile as bytes
    and FFmpeg as an open file: the audio is that of the same file under a plain name."""
    settings = WindowSettings(length_s=1.0, hop_s=1.0, min_tail_s=0.3)
    plain = write_audio(tmp_path / "plain.flac", duration_s=2.0)
    latin = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.flac"))
    os.link(plain, latin)
    m4a = aac_m4a(tmp_path)
    latin_m4a = Path(os.fsdecode(os.fsencode(tmp_path) + b"/\xe9t\xe9.m4a"))
    os.link(m4a, latin_m4a)
    for original, renamed, decoder in ((plain, latin, "libsndfile"), (m4a, latin_m4a, "ffmpeg")):
        want = list(iter_windows(path=original, settings=settings))
        info = DecodeInfo(path=str(renamed))
        got = list(iter_windows(path=renamed, settings=settings, info=info))
        assert info.decoder == decoder and len(got) == len(want) >= 1
        for (s0, x), (s1, y) in zip(got, want, strict=True):
            assert s0 == s1
            np.testing.assert_array_equal(x, y)
