"""Decoding, down-mixing, resampling and windowing of audio files, as a bounded-memory stream.

One code path serves every length: the file is read in blocks, each block is down-mixed to
mono and resampled with soxr's streaming resampler, and fixed-length windows are cut from the
stream. A 30 s clip is one block; a one-hour file never sits in memory whole.

What is refused (an :class:`~pipeline.errors.AudioError` naming the file and the rule)
----------------------------------------------------------------------------------------
- Anything but a regular, non-empty file: the path is checked with ``os.stat`` before any
  decoder sees it, so a named pipe or a device can never block the reader.
- A header sample rate outside [:data:`MIN_SAMPLE_RATE`, :data:`MAX_SAMPLE_RATE`] Hz.
- Decoded samples that are NaN or infinite, or whose magnitude exceeds
  :data:`MAX_ABS_SAMPLE` (PCM decodes to [-1, 1]; such a float file is corrupt or was written
  in integer scale, and its features would overflow).
- A file whose size, modification time or inode differ after decoding from before: it
  changed while it was read.
- Under ``tail="pad"``, a track with less than ``min_tail_s`` seconds of audio (and less than
  one whole window); under ``tail="drop"``, a track shorter than one window.

The fallback decoder
--------------------
libsndfile (soundfile) decodes every file it can. Only when it refuses a file, at opening or
in the middle of decoding, does FFmpeg (PyAV) take over: from the start of the file, or from
the sample where libsndfile stopped, into the same down-mix, resampling and windowing path,
in blocks of the same size. FFmpeg's MP3 decoder resynchronises after a corrupt burst
(undecodable packets are skipped). A track decoded this way carries a warning that says so
and names the codec and container FFmpeg found (AAC or ALAC in MPEG-4 ``.m4a``, WMA in ASF,
...). A file neither reads fails with one line naming its suffix, and the container (and
codec) when FFmpeg recognised one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import numpy as np
import soundfile as sf
import soxr

from pipeline.errors import AudioError, ConfigError, utf8_safe
from pipeline.io.files import stat_file

if TYPE_CHECKING:
    import av.container

__all__ = [
    "WindowSettings",
    "DecodeInfo",
    "iter_windows",
    "read_windows",
    "downmix",
    "MIN_SAMPLE_RATE",
    "MAX_SAMPLE_RATE",
    "MAX_ABS_SAMPLE",
]

TailPolicy = Literal["pad", "drop"]

#: Lowest and highest sample rate (Hz) a file header may declare: below 4 kHz is no music
#: recording (telephony is 8 kHz), above 384 kHz no audio format in use; a rate outside is a
#: corrupt header (a 1 Hz header would turn 100 samples into 100 s of "audio").
MIN_SAMPLE_RATE = 4_000
MAX_SAMPLE_RATE = 384_000
#: Largest magnitude accepted for a decoded sample. PCM decodes to [-1, 1] and lossy decoders
#: overshoot by a few dB at most; 1,000 is 60 dB above full scale. Larger values come from a
#: corrupt float file or one written in integer scale (16-bit: up to 32,768; 24-bit: up to
#: 8.4e6): they would shift every feature by tens of dB, and beyond 65,504 overflow the
#: float16 stores (waveform features), beyond about 1e16 the float32 power spectrum.
MAX_ABS_SAMPLE = 1_000.0

#: libsndfile subtypes that store samples as floats.
_FLOATS = ("FLOAT", "DOUBLE")


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
        seconds of audio, and pads a track shorter than one window to one window when it
        holds at least ``min_tail_s`` seconds of audio (a shorter track fails: a 1-sample
        file is not a window); ``"drop"`` drops partial windows, so a track shorter than one
        window fails.
    min_tail_s : float
        Shortest partial tail kept under ``tail="pad"``, and the shortest track kept when it
        is shorter than one window (at least one sample, also when 0).
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
    """What decoding one file found out; filled in while its windows are streamed.

    ``decoder`` is ``"libsndfile"``, or ``"ffmpeg"`` when the fallback decoder read (part of)
    the file; ``peak`` is the largest magnitude of the down-mixed samples.
    """

    path: str
    source_sample_rate: int = 0
    channels: int = 0
    duration_s: float = 0.0
    truncated: bool = False
    padded: bool = False
    peak: float = 0.0
    decoder: str = "libsndfile"
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


def _os_name(path: Path) -> str | bytes:
    """The file name to hand to a C decoder: the string, or, for a name that is not valid
    UTF-8 on disk (``os.fsdecode`` turned its bytes into lone surrogates, which cannot be
    encoded), the bytes themselves."""
    name = str(path)
    return name if utf8_safe(name) == name else os.fsencode(name)


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is rewritten or replaced: device, inode, size, mtime."""
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _check_rate(path: Path, rate: int) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{str(path)!r}: the header's sample rate {rate} Hz is outside "
            f"[{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz: the header is corrupt"
        )


def _check_samples(
    path: Path, raw: np.ndarray, mono_peak: float, *, at_s: float, per_channel: bool
) -> None:
    """Refuse a block with NaN, infinite or absurdly large samples.

    ``mono_peak`` (the down-mix's largest magnitude, computed anyway) catches NaN and
    infinity in any channel and absurd values unless the channels cancel in the mean; with
    ``per_channel`` the channels are checked one by one too (float files and the fallback
    decoder: integer PCM and lossy decoders cannot produce absurd values that cancel).
    """
    peak = mono_peak
    if per_channel and raw.shape[1] > 1 and peak <= MAX_ABS_SAMPLE:
        peak = max(float(raw.max()), -float(raw.min()))
    if peak <= MAX_ABS_SAMPLE:  # False for NaN too
        return
    where = f"in the block from {at_s:.1f} s"
    if not math.isfinite(peak):
        raise AudioError(f"{str(path)!r}: non-finite samples (NaN or Inf) {where}")
    raise AudioError(
        f"{str(path)!r}: sample values up to {peak:.3g} {where} are outside "
        f"[-{MAX_ABS_SAMPLE:g}, {MAX_ABS_SAMPLE:g}] (decoded audio lies in [-1, 1]): a corrupt "
        "float file, or one written in integer scale"
    )


def _detail(exc: BaseException) -> str:
    """A decoder's message, without libsndfile's misleading wording."""
    detail = str(getattr(exc, "error_string", None) or getattr(exc, "strerror", None) or exc)
    if "does not exist" in detail:  # libsndfile's wording for any file it cannot parse
        detail = "format not recognised, or the file is corrupt"
    return detail.strip().rstrip(".")


class _Fallback:
    """FFmpeg (PyAV) decoding of one file's first audio stream, read like a SoundFile.

    Undecodable packets are skipped (FFmpeg's decoders resynchronise on the next frame);
    ``skip`` samples at the start are dropped, to continue where libsndfile stopped.

    Raises
    ------
    AudioError
        FFmpeg cannot open the file or finds no audio stream in it.
    """

    def __init__(self, path: Path, *, skip: int) -> None:
        import av  # lazy: only files libsndfile refuses need FFmpeg

        self._av = av
        name = _os_name(path)
        self._file: BinaryIO | None = None
        try:
            if isinstance(name, bytes):  # PyAV takes no bytes name: read through a file object
                self._file = open(name, "rb")  # noqa: SIM115 - closed by close()
            self._container: av.container.InputContainer = av.open(
                self._file if self._file is not None else name, mode="r"
            )
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._close_file()
            raise AudioError(f"{_detail(exc)}") from exc
        container = f"the {self._container.format.name!r} container"
        streams = self._container.streams.audio
        problem = ""
        if not streams:
            kinds = sorted({s.type for s in self._container.streams})
            problem = f"{container} holds no audio stream (streams: {', '.join(kinds) or 'none'})"
        elif streams[0].codec_context is None:  # FFmpeg knows no decoder for the codec
            problem = f"{container} holds an audio stream in a codec FFmpeg cannot decode"
        elif streams[0].sample_rate <= 0 or streams[0].channels <= 0:
            problem = f"{container}'s audio stream declares no sample rate or channels"
        if problem:
            self.close()
            raise AudioError(problem)
        stream = streams[0]
        #: What FFmpeg found, e.g. ``"'aac' audio in the 'mov,mp4,m4a,3gp,3g2,mj2' container"``.
        self.format = f"{stream.codec_context.name!r} audio in {container}"
        self.samplerate = int(stream.sample_rate)
        self.channels = int(stream.channels)
        self.skipped_packets = 0
        self._skip = skip
        self._packets = self._container.demux(stream)
        self._pending: list[np.ndarray] = []
        self._n_pending = 0
        self._done = False

    def _frames(self, frame: Any) -> np.ndarray:
        """One decoded frame as (n, channels) float32 in [-1, 1]."""
        data = frame.to_ndarray()
        channels = frame.layout.nb_channels
        if channels != self.channels or frame.sample_rate != self.samplerate:
            raise AudioError(
                f"the stream changes from {self.samplerate} Hz x {self.channels} channels to "
                f"{frame.sample_rate} Hz x {channels}"
            )
        data = data.T if frame.format.is_planar else data.reshape(-1, channels)
        if data.dtype.kind == "f":
            return np.asarray(data, dtype=np.float32)
        if data.dtype.kind == "u":  # unsigned 8-bit
            return ((data.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
        scale = float(2 ** (8 * data.dtype.itemsize - 1))
        return (data.astype(np.float32) / np.float32(scale)).astype(np.float32)

    def _decode_more(self) -> bool:
        """Decode the next packet into the pending blocks; False at the end of the stream."""
        if self._done:
            return False
        av = self._av
        try:
            packet = next(self._packets)
        except StopIteration:
            self._done = True
            return False
        except av.FFmpegError:  # the container itself is cut or corrupt: end of stream
            self._done = True
            return False
        try:
            frames = packet.decode()
        except av.FFmpegError:
            self.skipped_packets += 1
            return True
        for frame in frames:
            block = self._frames(frame)
            if self._skip:
                drop = min(self._skip, len(block))
                block, self._skip = block[drop:], self._skip - drop
            if len(block):
                self._pending.append(block)
                self._n_pending += len(block)
        return True

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` samples, shape (n, channels), float32; fewer only at the end."""
        while self._n_pending < frames and self._decode_more():
            pass
        if not self._pending:
            return np.zeros((0, self.channels), dtype=np.float32)
        data = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        out, rest = data[:frames], data[frames:]
        self._pending = [rest] if len(rest) else []
        self._n_pending = len(rest)
        return out

    def more(self) -> bool:
        """Whether any sample is left to read."""
        while not self._n_pending and self._decode_more():
            pass
        return self._n_pending > 0

    def close(self) -> None:
        self._container.close()
        self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class _Decoder:
    """libsndfile, with FFmpeg taking over (:class:`_Fallback`) when libsndfile refuses."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.n_read = 0
        self.fallback: _Fallback | None = None
        self.fallback_reason = ""
        self._sf: sf.SoundFile | None = None
        try:
            self._sf = sf.SoundFile(_os_name(path))
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            reason = _detail(exc)
            try:
                self._switch(reason=reason)
            except AudioError as fallback_exc:
                suffix = f"a {path.suffix!r} file" if path.suffix else "a file without suffix"
                raise AudioError(
                    f"{str(path)!r}: not a readable audio file ({suffix}; libsndfile reads WAV, "
                    f"FLAC, OGG, Opus, MP3): {reason}; the fallback decoder (FFmpeg) cannot read "
                    f"it either: {fallback_exc}"
                ) from exc
        self.samplerate = self._sf.samplerate if self._sf is not None else self._fb.samplerate
        self.channels = self._sf.channels if self._sf is not None else self._fb.channels

    @property
    def _fb(self) -> _Fallback:
        assert self.fallback is not None
        return self.fallback

    def _switch(self, *, reason: str) -> None:
        self.fallback = _Fallback(self.path, skip=self.n_read)
        self.fallback_reason = reason
        if self._sf is not None and (self.fallback.samplerate, self.fallback.channels) != (
            self._sf.samplerate,
            self._sf.channels,
        ):
            raise AudioError(
                f"it sees {self.fallback.samplerate} Hz x {self.fallback.channels} channels, "
                f"libsndfile {self._sf.samplerate} Hz x {self._sf.channels}"
            )

    @property
    def float_samples(self) -> bool:
        """Whether the samples are stored as floats (or decoded by FFmpeg): any value, any
        channel, may be absurd."""
        return self._sf is None or self.fallback is not None or self._sf.subtype in _FLOATS

    @property
    def header_frames(self) -> int | None:
        """Frames the header declares, when libsndfile read a seekable file; else None."""
        if self._sf is None or not self._sf.seekable():
            return None
        return int(self._sf.frames)

    def read(self, frames: int) -> np.ndarray:
        """Up to ``frames`` samples, shape (n, channels), float32; fewer only at the end."""
        if self.fallback is None and self._sf is not None:
            try:
                raw = self._sf.read(frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                reason = f"decoding failed after {self.n_read} frames: {_detail(exc)}"
                try:
                    self._switch(reason=reason)
                except AudioError as fallback_exc:
                    raise AudioError(
                        f"{str(self.path)!r}: {reason}; the fallback decoder (FFmpeg) cannot "
                        f"read it either: {fallback_exc}"
                    ) from exc
            else:
                self.n_read += len(raw)
                return raw
        try:
            raw = self._fb.read(frames)
        except AudioError as exc:
            raise AudioError(f"{str(self.path)!r}: fallback decoder (FFmpeg): {exc}") from exc
        self.n_read += len(raw)
        return raw

    def more(self) -> bool:
        """Whether samples are left after :meth:`read` stopped at a limit."""
        if self.fallback is not None:
            return self._fb.more()
        assert self._sf is not None
        return self._sf.frames > self.n_read if self._sf.seekable() else True

    def warnings(self) -> list[str]:
        """What the reader must know about how the file was decoded."""
        if self.fallback is None:
            return []
        skipped = self.fallback.skipped_packets
        return [
            f"decoded with the fallback decoder (FFmpeg) after libsndfile failed: "
            f"{self.fallback_reason}"
            + (f"; {skipped} undecodable packet(s) skipped" if skipped else "")
            + f" ({self.fallback.format})"
        ]

    def __enter__(self) -> _Decoder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._sf is not None:
            self._sf.close()
        if self.fallback is not None:
            self.fallback.close()


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
        A regular file libsndfile reads (WAV, FLAC, OGG Vorbis, Opus, MP3), or, when
        libsndfile refuses it, FFmpeg does (see the module docstring).
    settings : WindowSettings
        Target rate, window length and hop, tail policy and duration limit.
    block_s : float
        Seconds of source audio decoded at a time; bounds the memory used.
    info : DecodeInfo, optional
        Filled in with the source rate, channels, decoded duration, decoder and warnings.

    Yields
    ------
    start_s : float
        Start of the window in the track, in seconds.
    window : np.ndarray, shape (settings.length,), float32

    Raises
    ------
    AudioError
        The path is not a regular non-empty file; no decoder reads it; its header's sample
        rate is outside [4,000, 384,000] Hz; it holds no samples, non-finite samples or
        samples beyond +-:data:`MAX_ABS_SAMPLE`; it changed while it was read; or it is
        shorter than one window under ``tail="drop"``, or holds less than ``min_tail_s``
        seconds of audio (and less than one window) under ``tail="pad"``. Raised while
        streaming: windows yielded before the error must be discarded.
    """
    path = Path(path)
    info = info if info is not None else DecodeInfo(path=str(path))
    before = stat_file(path, what="audio", error=AudioError)
    length, hop, sr = settings.length, settings.hop, settings.sample_rate
    with _Decoder(path) as f:
        _check_rate(path, f.samplerate)
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
            raw = f.read(want) if want > 0 else None
            last = raw is None or len(raw) < want
            if raw is not None and len(raw):
                mono = downmix(raw)
                peak = float(np.maximum(mono.max(), -mono.min()))  # NaN stays NaN
                _check_samples(
                    path, raw, peak, at_s=n_read / f.samplerate, per_channel=f.float_samples
                )
                n_read += len(raw)
                info.peak = max(info.peak, peak)
            else:
                mono = np.zeros(0, dtype=np.float32)
            if n_read >= max_frames and not last:
                info.truncated = f.more()
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
        frames = f.header_frames
        if frames is not None and not info.truncated and frames > 0 and n_read < 0.99 * frames:
            # libsndfile corrects WAV/OGG frame counts itself; a short MP3 shows up here.
            info.warnings.append(
                f"decoded {n_read} of the {frames} frames the header declares: "
                "file truncated or corrupt"
            )
        if f.fallback is not None:
            info.decoder = "ffmpeg"
            info.warnings[:0] = f.warnings()
    try:
        after = os.stat(path)
    except OSError as exc:
        raise AudioError(
            f"{str(path)!r}: the file changed while it was read: it is gone "
            f"({exc.strerror or exc}); its windows are not kept"
        ) from exc
    if _identity(after) != _identity(before):
        raise AudioError(
            f"{str(path)!r}: the file changed while it was read (size {before.st_size} -> "
            f"{after.st_size} bytes, modified {before.st_mtime_ns} -> {after.st_mtime_ns} ns, "
            f"inode {before.st_ino} -> {after.st_ino}); its windows are not kept"
        )
    info.duration_s = n_read / info.source_sample_rate if info.source_sample_rate else 0.0
    if info.truncated:
        info.warnings.append(
            f"longer than max_duration_s={settings.max_duration_s:g}; "
            f"only the first {settings.max_duration_s:g} s were read"
        )
    if n_read == 0:
        how = ""
        if f.fallback is not None:  # the error says it all: no "decoded with" warning
            del info.warnings[: len(f.warnings())]
            how = (
                f" (FFmpeg decoded none of its {f.fallback.format}: "
                f"{f.fallback.skipped_packets} undecodable packet(s))"
            )
        raise AudioError(f"{str(path)!r}: no audio samples in the file{how}")
    tail = len(buffer)
    min_tail = max(settings.min_tail_s * sr, 1)
    if n_windows == 0:
        if settings.tail == "drop":
            raise AudioError(
                f"{str(path)!r}: {info.duration_s:.2f} s is shorter than one "
                f"{settings.length_s:g} s window and window.tail is 'drop'"
            )
        if tail < min_tail:
            raise AudioError(
                f"{str(path)!r}: {info.duration_s:.4g} s of audio is too short: under "
                f"window.tail 'pad' a track is kept only if it holds at least "
                f"window.min_tail_s={settings.min_tail_s:g} s of audio or one whole "
                f"{settings.length_s:g} s window"
            )
        info.padded = True
        yield consumed / sr, np.pad(buffer, (0, length - tail))
    elif settings.tail == "pad" and tail - (length - hop) >= min_tail:
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
