"""Decoding, down-mixing, resampling and windowing of audio files, as a bounded-memory stream.

One code path serves every length: the file is read in blocks, each block is down-mixed to
mono and resampled with soxr's streaming resampler, and fixed-length windows are cut from the
stream. A 30 s clip is one block; a one-hour file never sits in memory whole.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
import soxr

from pipeline.errors import AudioError, ConfigError

__all__ = ["WindowSettings", "DecodeInfo", "iter_windows", "read_windows", "downmix"]

TailPolicy = Literal["pad", "drop"]


@dataclass(frozen=True, kw_only=True)
class WindowSettings:
    """How a track is cut into fixed-length windows.

    Parameters
    ----------
    sample_rate : int
        Rate the audio is resampled to, in Hz.
    length_s : float
        Window length in seconds (29.1 s is 465,600 samples at 16 kHz).
    hop_s : float
        Distance between window starts in seconds; equal to ``length_s`` for no overlap.
    tail : {"pad", "drop"}
        ``"pad"`` zero-pads the last partial window when it holds at least ``min_tail_s``
        seconds of audio, and pads a track shorter than one window to one window;
        ``"drop"`` drops partial windows, so a track shorter than one window fails.
    min_tail_s : float
        Shortest partial tail kept under ``tail="pad"``.
    max_duration_s : float
        Audio after this many seconds is not read (the track is kept, with a warning).
    """

    sample_rate: int = 16000
    length_s: float = 29.1
    hop_s: float = 29.1
    tail: TailPolicy = "pad"
    min_tail_s: float = 5.0
    max_duration_s: float = 900.0

    def __post_init__(self) -> None:
        if self.tail not in ("pad", "drop"):
            raise ConfigError(f"window.tail: {self.tail!r} is not one of ['pad', 'drop']")
        for key in ("sample_rate", "length_s", "hop_s", "max_duration_s"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"window.{key}: {getattr(self, key)!r} must be > 0")
        if self.hop_s > self.length_s:
            raise ConfigError(
                f"window.hop_s: {self.hop_s!r} must not exceed window.length_s={self.length_s!r}"
            )

    @property
    def length(self) -> int:
        """Window length in samples."""
        return int(round(self.length_s * self.sample_rate))

    @property
    def hop(self) -> int:
        """Window hop in samples."""
        return int(round(self.hop_s * self.sample_rate))

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for store attributes and checkpoints)."""
        return asdict(self)


@dataclass(kw_only=True)
class DecodeInfo:
    """What decoding one file found out; filled in while its windows are streamed."""

    path: str
    source_sample_rate: int = 0
    channels: int = 0
    duration_s: float = 0.0
    truncated: bool = False
    padded: bool = False
    peak: float = 0.0
    warnings: list[str] = field(default_factory=list)


def downmix(block: np.ndarray) -> np.ndarray:
    """Average the channels of a block.

    Parameters
    ----------
    block : np.ndarray, shape (n_samples, n_channels) or (n_samples,)

    Returns
    -------
    np.ndarray, shape (n_samples,), float32
    """
    block = np.asarray(block, dtype=np.float32)
    if block.ndim == 1:
        return block
    n_channels = block.shape[1]
    if n_channels == 1:
        return np.ascontiguousarray(block[:, 0], dtype=np.float32)
    if n_channels == 2:
        return (block[:, 0] + block[:, 1]) * np.float32(0.5)
    # A matrix-vector product is far faster than mean(axis=1) on interleaved data.
    return block @ np.full(n_channels, 1.0 / n_channels, dtype=np.float32)


def _open(path: Path) -> sf.SoundFile:
    if not path.exists():
        raise AudioError(f"{str(path)!r}: file not found")
    if path.is_dir():
        raise AudioError(f"{str(path)!r}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{str(path)!r}: empty file (0 bytes)")
    try:
        return sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        detail = getattr(exc, "error_string", None) or str(exc)
        if "does not exist" in detail:  # libsndfile's wording for any file it cannot parse
            detail = "format not recognised, or the file is corrupt"
        raise AudioError(
            f"{str(path)!r}: not a readable audio file (WAV, FLAC, OGG, Opus, MP3): {detail}"
        ) from exc


def iter_windows(
    *,
    path: str | Path,
    settings: WindowSettings,
    block_s: float = 60.0,
    info: DecodeInfo | None = None,
) -> Generator[tuple[float, np.ndarray], None, None]:
    """Stream the fixed-length mono windows of an audio file.

    Parameters
    ----------
    path : str or Path
        Any file libsndfile reads (WAV, FLAC, OGG Vorbis, Opus, MP3).
    settings : WindowSettings
        Target rate, window length and hop, tail policy and duration limit.
    block_s : float
        Seconds of source audio decoded at a time; bounds the memory used.
    info : DecodeInfo, optional
        Filled in with the source rate, channels, decoded duration and warnings.

    Yields
    ------
    start_s : float
        Start of the window in the track, in seconds.
    window : np.ndarray, shape (settings.length,), float32

    Raises
    ------
    AudioError
        The file is missing, empty, not decodable, holds no samples, holds non-finite
        samples, or is shorter than one window under ``tail="drop"``.
    """
    path = Path(path)
    info = info if info is not None else DecodeInfo(path=str(path))
    length, hop, sr = settings.length, settings.hop, settings.sample_rate
    with _open(path) as f:
        info.source_sample_rate, info.channels = f.samplerate, f.channels
        max_frames = int(math.ceil(settings.max_duration_s * f.samplerate))
        block = max(int(block_s * f.samplerate), 1)
        stream = (
            None
            if f.samplerate == sr
            else soxr.ResampleStream(f.samplerate, sr, 1, dtype="float32", quality="HQ")
        )
        buffer = np.zeros(0, dtype=np.float32)
        consumed = 0  # samples (at the target rate) dropped from the front of the buffer
        n_read = 0
        n_windows = 0
        while True:
            want = min(block, max_frames - n_read)
            try:
                raw = f.read(want, dtype="float32", always_2d=True) if want > 0 else None
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioError(f"{str(path)!r}: decoding failed: {exc}") from exc
            last = raw is None or len(raw) < want
            if raw is not None and len(raw):
                n_read += len(raw)
                mono = downmix(raw)
                if not np.isfinite(mono).all():
                    raise AudioError(f"{str(path)!r}: decoded samples are not finite (NaN/Inf)")
                info.peak = max(info.peak, float(np.abs(mono).max()))
            else:
                mono = np.zeros(0, dtype=np.float32)
            if n_read >= max_frames and not last:
                info.truncated = f.frames > max_frames if f.seekable() else True
                last = True
            if stream is not None:
                mono = stream.resample_chunk(mono, last=last)
            buffer = np.concatenate([buffer, mono]) if len(buffer) else mono
            while len(buffer) >= length:
                yield consumed / sr, buffer[:length]
                n_windows += 1
                buffer = buffer[hop:]
                consumed += hop
            if last:
                break
        if f.seekable() and not info.truncated and f.frames > 0 and n_read < 0.99 * f.frames:
            # libsndfile corrects WAV/OGG frame counts itself; a short MP3 shows up here.
            info.warnings.append(
                f"decoded {n_read} of the {f.frames} frames the header declares: "
                "file truncated or corrupt"
            )
    info.duration_s = n_read / info.source_sample_rate if info.source_sample_rate else 0.0
    if info.truncated:
        info.warnings.append(
            f"longer than max_duration_s={settings.max_duration_s:g}; "
            f"only the first {settings.max_duration_s:g} s were read"
        )
    if n_read == 0:
        raise AudioError(f"{str(path)!r}: no audio samples in the file")
    tail = len(buffer)
    if n_windows == 0:
        if settings.tail == "drop":
            raise AudioError(
                f"{str(path)!r}: {info.duration_s:.2f} s is shorter than one "
                f"{settings.length_s:g} s window and window.tail is 'drop'"
            )
        info.padded = True
        yield consumed / sr, np.pad(buffer, (0, length - tail))
    elif settings.tail == "pad" and tail - (length - hop) >= max(settings.min_tail_s * sr, 1):
        # Count only the audio the last full window did not already cover.
        info.padded = True
        yield consumed / sr, np.pad(buffer, (0, length - tail))
    if info.peak == 0.0:
        info.warnings.append("silent: every decoded sample is zero")


def read_windows(
    *, path: str | Path, settings: WindowSettings, info: DecodeInfo | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All windows of a file at once.

    Returns
    -------
    starts_s : np.ndarray, shape (n_windows,), float64
    windows : np.ndarray, shape (n_windows, settings.length), float32
    """
    starts, windows = [], []
    for start, window in iter_windows(path=path, settings=settings, info=info):
        starts.append(start)
        windows.append(window)
    return np.asarray(starts, dtype=np.float64), np.stack(windows)
