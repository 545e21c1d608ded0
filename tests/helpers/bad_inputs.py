"""Hostile inputs, written for real into a folder, for the tests of "nothing silently wrong".

Each builder writes one bad input and returns its path; :data:`BAD_AUDIO` lists them with
what the pipeline must do about each (refuse the file with a message that contains
``says``, or keep it with a warning that does). ``docs/bad_inputs.md`` is the same list for
readers. :func:`call_with_deadline` runs a call that could block forever (a named pipe)
so that a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import copy
import math
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import soundfile as sf

from tests.helpers.audio import tone, write_audio

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Audio files
# --------------------------------------------------------------------------------------------

SR = 16000


def _float_wav(path: Path, data: np.ndarray, *, sample_rate: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data.astype(np.float32), sample_rate, subtype="FLOAT")
    return path


def loud_float_wav(folder: Path) -> Path:
    """A 2 s float WAV at amplitude 1e20 (finite in float32; its power spectrum is not)."""
    return _float_wav(folder / "loud_1e20.wav", 1e20 * tone(duration_s=2.0, amplitude=1.0))


def integer_scale_float_wav(folder: Path) -> Path:
    """A 2 s float WAV in 24-bit integer scale (peaks near 8e6: overflows float16)."""
    return _float_wav(folder / "int24_scale.wav", 8e6 * tone(duration_s=2.0, amplitude=1.0))


def nan_wav(folder: Path) -> Path:
    """A 2 s float WAV of a good tone with one NaN sample at 1.5 s."""
    data = tone(duration_s=2.0)
    data[int(1.5 * SR)] = np.nan
    return _float_wav(folder / "nan.wav", data)


def inf_wav(folder: Path) -> Path:
    """A 2 s stereo float WAV with an infinite sample in the right channel only."""
    data = tone(duration_s=2.0, channels=2)
    data[100, 1] = np.inf
    return _float_wav(folder / "inf.wav", data)


def one_hertz_wav(folder: Path) -> Path:
    """100 samples whose header says 1 Hz: 100 s of "audio" if the header were believed."""
    path = folder / "rate_1hz.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(duration_s=100 / SR), 1, subtype="PCM_16")
    return path


def megahertz_wav(folder: Path) -> Path:
    """A WAV whose header says 1,000,000 Hz (above any audio format's rate)."""
    path = folder / "rate_1mhz.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(duration_s=0.5), 1_000_000, subtype="PCM_16")
    return path


def one_sample_wav(folder: Path) -> Path:
    """A WAV that holds a single sample."""
    return write_audio(folder / "one_sample.wav", data=np.full((1, 1), 0.5, np.float32))


def zero_frames_wav(folder: Path) -> Path:
    """A valid WAV header and no samples."""
    return write_audio(folder / "zero_frames.wav", data=np.zeros((0, 1), np.float32))


def fifo(folder: Path) -> Path:
    """A named pipe called ``pipe.wav``: opening it for reading blocks until a writer comes."""
    path = folder / "pipe.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def device_link(folder: Path) -> Path:
    """``zero.wav``, a symbolic link to the character device ``/dev/zero`` (endless)."""
    path = folder / "zero.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to("/dev/zero")
    return path


def broken_link(folder: Path) -> Path:
    """``gone.flac``, a symbolic link to a file that does not exist."""
    path = folder / "gone.flac"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(folder / "nowhere" / "gone.flac")
    return path


def directory_named_wav(folder: Path) -> Path:
    """A directory called ``folder.wav``."""
    path = folder / "folder.wav"
    path.mkdir(parents=True)
    return path


def empty_file(folder: Path) -> Path:
    """``empty.wav``, 0 bytes."""
    path = folder / "empty.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def text_named_mp3(folder: Path) -> Path:
    """A text file called ``notes.mp3``."""
    path = folder / "notes.mp3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is a text file, not audio\n" * 40, encoding="utf-8")
    return path


def random_bytes_wav(folder: Path) -> Path:
    """4 KB of seeded random bytes called ``noise.wav``."""
    path = folder / "noise.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def unknown_codec_wav(folder: Path) -> Path:
    """A WAV whose ``fmt `` chunk declares codec tag 0x1234, which no decoder knows
    (``odd_codec.wav``): libsndfile refuses the chunk, FFmpeg reads the container only."""
    path = folder / "odd_codec.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(4).integers(0, 256, 2 * SR, dtype=np.uint8).tobytes()
    fmt = struct.pack("<HHIIHH", 0x1234, 1, SR, 2 * SR, 2, 16)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
    chunks += struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    return path


def garbled_m4a(folder: Path) -> Path:
    """:func:`aac_m4a` with seeded random bytes over its audio data (the ``mdat`` box), the
    container intact (``garbled.m4a``): FFmpeg opens it and decodes none of its packets."""
    clean = aac_m4a(folder / "for_garbling")
    data = bytearray(clean.read_bytes())
    clean.unlink()
    clean.parent.rmdir()
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")  # the box's size includes its header
    noise = np.random.default_rng(5).integers(0, 256, size - 8, dtype=np.uint8)
    data[at + 4 : at - 4 + size] = noise.tobytes()
    path = folder / "garbled.m4a"
    path.write_bytes(bytes(data))
    return path


def video_only_m4a(folder: Path) -> Path:
    """An MPEG-4 file holding one short video stream and no audio (``clip.m4a``)."""
    import av  # the fallback decoder's library: a dependency of the pipeline

    path = folder / "clip.m4a"
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="ipod") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def truncated_flac(folder: Path) -> Path:
    """The first half of the bytes of a 6 s FLAC (libsndfile: "flac decoder lost sync")."""
    full = write_audio(folder / "full_for_truncation.flac", duration_s=6.0)
    path = folder / "truncated.flac"
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    full.unlink()
    return path


#: Duration and size of the burst of :func:`corrupt_burst_mp3`.
CORRUPT_MP3_S = 10.0
BURST_BYTES = 4096


def corrupt_burst_mp3(folder: Path, *, seed: int = 0) -> Path:
    """A 10 s 44.1 kHz stereo MP3 with 4 KB of random bytes written over its middle.

    libsndfile stops at the burst ("Unspecified internal error"); a decoder that
    resynchronises loses about 0.4 s (4 KB of a ~100 KB file).
    """
    path = write_audio(
        folder / "burst.mp3", duration_s=CORRUPT_MP3_S, sample_rate=44100, channels=2
    )
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    burst = np.random.default_rng(seed).integers(0, 256, BURST_BYTES, dtype=np.uint8)
    data[middle : middle + BURST_BYTES] = burst.tobytes()
    path.write_bytes(bytes(data))
    return path


def aac_m4a(folder: Path) -> Path:
    """A 2 s 44.1 kHz AAC tone in an MP4 container (``tone.m4a``), a format libsndfile does
    not read; encoded with FFmpeg's own AAC encoder (PyAV)."""
    import av  # the fallback decoder's library: a dependency of the pipeline

    path = folder / "tone.m4a"
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 44100
    samples = tone(duration_s=2.0, sample_rate=rate)[:, 0]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate, layout="mono")
        for i in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(
                samples[None, i : i + 1024], format="fltp", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@dataclass(frozen=True)
class BadAudio:
    """One kind of bad audio input and what the pipeline must do with it.

    ``outcome`` ``"error"``: the file is refused with a message containing ``says`` (and the
    path); ``"warning"``: it is decoded, and one of its warnings contains ``says``.
    """

    write: Callable[[Path], Path]
    outcome: Literal["error", "warning"]
    says: str


#: Every kind of bad audio file, by name. The messages are those of
#: :func:`pipeline.io.audio.iter_windows` for windows of 1 s with ``min_tail_s`` 0.3 s or less.
BAD_AUDIO: dict[str, BadAudio] = {
    "loud_float": BadAudio(loud_float_wav, "error", "e+20 in the block from 0.0 s are outside"),
    "integer_scale_float": BadAudio(integer_scale_float_wav, "error", "outside [-1000, 1000]"),
    "nan": BadAudio(nan_wav, "error", "non-finite samples"),
    "inf_one_channel": BadAudio(inf_wav, "error", "non-finite samples"),
    "rate_1hz": BadAudio(one_hertz_wav, "error", "sample rate 1 Hz is outside"),
    "rate_1mhz": BadAudio(megahertz_wav, "error", "sample rate 1000000 Hz is outside"),
    "one_sample": BadAudio(one_sample_wav, "error", "too short"),
    "zero_frames": BadAudio(zero_frames_wav, "error", "no audio samples"),
    "fifo": BadAudio(fifo, "error", "is a named pipe (FIFO), not an audio file"),
    "device": BadAudio(device_link, "error", "is a character device, not an audio file"),
    "broken_link": BadAudio(broken_link, "error", "broken symbolic link"),
    "directory": BadAudio(directory_named_wav, "error", "is a directory"),
    "empty": BadAudio(empty_file, "error", "is empty"),
    "text_as_mp3": BadAudio(text_named_mp3, "error", "not a readable audio file (a '.mp3' file"),
    "random_bytes": BadAudio(random_bytes_wav, "error", "not a readable audio file (a '.wav' file"),
    "unknown_codec": BadAudio(
        unknown_codec_wav, "error", "the 'wav' container holds an audio stream in a codec FFmpeg"
    ),
    "garbled_m4a": BadAudio(
        garbled_m4a, "error", "no audio samples in the file (FFmpeg decoded none of its 'aac'"
    ),
    "video_only_m4a": BadAudio(
        video_only_m4a, "error", "container holds no audio stream (streams: video)"
    ),
    "truncated_flac": BadAudio(truncated_flac, "warning", "fallback decoder"),
    "corrupt_burst_mp3": BadAudio(corrupt_burst_mp3, "warning", "fallback decoder"),
    "aac_m4a": BadAudio(aac_m4a, "warning", "fallback decoder"),
}


def write_bad_audio(folder: Path, *, kinds: list[str] | None = None) -> dict[str, Path]:
    """Write the bad audio inputs ``kinds`` (default all of :data:`BAD_AUDIO`) into ``folder``.

    ``device`` is left out where ``/dev/zero`` does not exist, ``fifo`` where the platform
    has no named pipes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in kinds if kinds is not None else list(BAD_AUDIO):
        if kind == "device" and not Path("/dev/zero").exists():
            continue
        if kind == "fifo" and not hasattr(os, "mkfifo"):
            continue
        paths[kind] = BAD_AUDIO[kind].write(folder)
    return paths


def call_with_deadline(
    seconds: float, function: Callable[..., T], /, *args: Any, **kwargs: Any
) -> T:
    """``function(*args, **kwargs)`` in a daemon thread; AssertionError if it runs past
    ``seconds``.

    A call blocked on a named pipe would otherwise hang the test run; the thread is left
    behind (a daemon: it does not keep the interpreter alive).
    """
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = function(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"{getattr(function, '__name__', function)} blocked for {seconds} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


# --------------------------------------------------------------------------------------------
# Settings and tables
# --------------------------------------------------------------------------------------------


def good_config() -> dict[str, Any]:
    """A small valid config: a table dataset under ``data/``, a log-mel feature set, an FCN
    and a folder collection under ``music/`` (the folders need not exist for
    :func:`pipeline.config.validate_config`; :func:`pipeline.config.check_sources` wants
    them)."""
    return {
        "datasets": {"mine": {"format": "table", "root": "data", "table": "tracks.csv"}},
        "features": {"logmel": {"kind": "logmel"}},
        "models": {"fcn": {"architecture": "fcn", "features": "logmel"}},
        "collections": {"folder": {"root": "music", "model": "fcn"}},
    }


def with_setting(config: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``config`` with the dotted ``key`` (``features.logmel.fmin``) set."""
    out = copy.deepcopy(config)
    node = out
    *parents, last = key.split(".")
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value
    return out


@dataclass(frozen=True)
class BadSetting:
    """An impossible or useless setting of :func:`good_config`: ``settings`` (dotted key ->
    value) are applied in order, and validation must stop with a message that names ``key``
    (the full key path) and contains every text of ``says`` (the allowed range, or a value
    that works)."""

    settings: dict[str, Any]
    key: str
    says: tuple[str, ...]


#: Every impossible or useless setting, by name; each is refused when the DAG is built.
BAD_SETTINGS: dict[str, BadSetting] = {
    "fmin_above_fmax": BadSetting(
        {"features.logmel.fmin": 9000.0, "features.logmel.fmax": 8000.0},
        "features.logmel.fmin",
        ("9000", "8000", "0 <= fmin < fmax <= sample_rate / 2"),
    ),
    "fmin_equals_fmax": BadSetting(
        {"features.logmel.fmin": 4000.0, "features.logmel.fmax": 4000.0},
        "features.logmel.fmin",
        ("0 <= fmin < fmax",),
    ),
    "fmax_above_nyquist": BadSetting(
        {"features.logmel.fmax": 11025.0},
        "features.logmel.fmax",
        ("11025", "sample_rate / 2 = 8000"),
    ),
    "fmax_above_nyquist_of_its_rate": BadSetting(
        {"features.logmel.sample_rate": 8000, "features.logmel.fmax": 8000.0},
        "features.logmel.fmax",
        ("sample_rate / 2 = 4000",),
    ),
    "n_fft_too_small": BadSetting(
        {"features.logmel.n_fft": 16, "features.logmel.hop_length": 8},
        "features.logmel.n_fft",
        ("82 of the 96 mel filters", "smallest n_fft that works is", "largest n_mels"),
    ),
    "n_mels_too_many": BadSetting(
        {"features.logmel.n_mels": 512},
        "features.logmel.n_fft",
        ("of the 512 mel filters", "the largest n_mels that works with n_fft 512 is"),
    ),
    "narrow_mel_range": BadSetting(
        {"features.logmel.fmin": 7990.0},
        "features.logmel.n_fft",
        ("96 of the 96 mel filters", "no n_mels works with n_fft 512"),
    ),
    "hop_longer_than_n_fft": BadSetting(
        {"features.logmel.hop_length": 1024},
        "features.logmel.hop_length",
        ("1024", "<= n_fft (512)"),
    ),
    "infinite_max_duration": BadSetting(
        {"features.logmel.window.max_duration_s": math.inf},
        "features.logmel.window.max_duration_s",
        ("inf", "86400"),
    ),
    "nan_max_duration": BadSetting(
        {"features.logmel.window.max_duration_s": math.nan},
        "features.logmel.window.max_duration_s",
        ("nan",),
    ),
    "infinite_length": BadSetting(
        {"features.logmel.window.length_s": math.inf},
        "features.logmel.window.length_s",
        ("inf", "600"),
    ),
    "nan_hop": BadSetting(
        {"features.logmel.window.hop_s": math.nan}, "features.logmel.window.hop_s", ("nan",)
    ),
    "infinite_min_tail": BadSetting(
        {"features.logmel.window.min_tail_s": math.inf},
        "features.logmel.window.min_tail_s",
        ("inf",),
    ),
    "min_tail_longer_than_window": BadSetting(
        {"features.logmel.window.length_s": 2.0, "features.logmel.window.hop_s": 2.0},
        "features.logmel.window.min_tail_s",
        ("5.0", "<= length_s (2.0)"),
    ),
    "infinite_fmax": BadSetting(
        {"features.logmel.fmax": math.inf}, "features.logmel.fmax", ("inf", "96000")
    ),
    "nan_fmin": BadSetting({"features.logmel.fmin": math.nan}, "features.logmel.fmin", ("nan",)),
    "nan_fmax": BadSetting(
        {"features.logmel.fmax": math.nan}, "features.logmel.fmax", ("nan", "or null")
    ),
    "infinite_amin": BadSetting({"features.logmel.amin": math.inf}, "features.logmel.amin", ()),
    "split_fractions_sum_above_one": BadSetting(
        {"datasets.mine.split.valid_fraction": 0.5, "datasets.mine.split.test_fraction": 0.7},
        "datasets.mine.split",
        ("valid_fraction + test_fraction", "1.2", "must be < 1"),
    ),
    "split_fractions_sum_to_one": BadSetting(
        {"datasets.mine.split.valid_fraction": 0.5, "datasets.mine.split.test_fraction": 0.5},
        "datasets.mine.split",
        ("must be < 1",),
    ),
    "nan_split_fraction": BadSetting(
        {"datasets.mine.split.test_fraction": math.nan},
        "datasets.mine.split.test_fraction",
        ("nan", "[0, 1)"),
    ),
    "two_character_tag_sep": BadSetting(
        {"datasets.mine.tag_sep": ";;"}, "datasets.mine.tag_sep", ("';;'", "one character")
    ),
    "empty_sep": BadSetting({"datasets.mine.sep": ""}, "datasets.mine.sep", ("one character",)),
    "tag_sep_equals_sep": BadSetting(
        {"datasets.mine.sep": "\t", "datasets.mine.tag_sep": "tab"},
        "datasets.mine.tag_sep",
        ("datasets.mine.sep", "different"),
    ),
    "infinite_collection_duration": BadSetting(
        {"collections.folder.max_duration_s": math.inf},
        "collections.folder.max_duration_s",
        ("inf",),
    ),
    "nan_collection_duration": BadSetting(
        {"collections.folder.max_duration_s": math.nan},
        "collections.folder.max_duration_s",
        ("nan",),
    ),
    "infinite_clip_length": BadSetting(
        {"datasets.mine.format": "scores", "datasets.mine.clip_s": math.inf},
        "datasets.mine.clip_s",
        ("inf",),
    ),
}


def bad_setting_config(name: str) -> dict[str, Any]:
    """:func:`good_config` with the settings of ``BAD_SETTINGS[name]``."""
    config = good_config()
    for key, value in BAD_SETTINGS[name].settings.items():
        config = with_setting(config, key, value)
    return config


def duplicate_dataset_yaml(folder: Path) -> Path:
    """A config whose dataset ``mine`` is written twice under ``datasets:`` (lines 2 and 4);
    ``yaml.safe_load`` would keep only the second."""
    return _text(
        folder / "duplicate_dataset.yaml",
        "datasets:\n"
        "  mine: {format: table, root: data, table: tracks.csv}\n"
        "  other: {format: demo}\n"
        "  mine: {format: demo}\n"
        "features:\n"
        "  logmel: {kind: logmel}\n",
    )


def duplicate_nested_key_yaml(folder: Path) -> Path:
    """A config whose ``fmax`` is given twice in one feature set (lines 4 and 6)."""
    return _text(
        folder / "duplicate_fmax.yaml",
        "datasets:\n"
        "  demo: {format: demo}\n"
        "features:\n"
        "  logmel:\n"
        "    kind: logmel\n"
        "    fmax: 8000\n"
        "    n_mels: 96\n"
        "    fmax: 4000\n",
    )


def syntax_error_yaml(folder: Path) -> Path:
    """A config with an unclosed flow mapping on line 2 (the parser stops on line 3)."""
    return _text(
        folder / "syntax_error.yaml",
        "datasets:\n  demo: {format: demo\nfeatures:\n  logmel: {kind: logmel}\n",
    )


def _text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_track_table(
    root: Path, rows: list[dict[str, str]], *, name: str = "tracks.csv", sep: str = ","
) -> Path:
    """A CSV/TSV track table for the ``table`` adapter under ``root``, columns from the rows'
    keys (first row's order); each row's ``path`` is left as written."""
    columns = list(rows[0])
    lines = [sep.join(columns)] + [sep.join(row.get(c, "") for c in columns) for row in rows]
    return _text(root / name, "\n".join(lines) + "\n")


def same_audio_tables(root: Path) -> Path:
    """A table dataset under ``root`` that lists ``audio/a.wav`` under five track ids: by the
    same path (``a`` and ``a_copy``), through ``..`` (``a_dotdot``), a symbolic link
    (``a_link``) and a hard link (``a_hard``); ``b.wav`` once. Official splits put ``a`` in
    train and ``a_copy`` in test: a leak if both were kept."""
    write_audio(root / "audio" / "a.wav", duration_s=1.0, freq_hz=330.0)
    write_audio(root / "audio" / "b.wav", duration_s=1.0, freq_hz=660.0, seed=1)
    (root / "audio" / "link.wav").symlink_to("a.wav")
    os.link(root / "audio" / "a.wav", root / "audio" / "hard.wav")
    rows = [
        {"track_id": "a", "path": "audio/a.wav", "tags": "x", "split": "train"},
        {"track_id": "b", "path": "audio/b.wav", "tags": "y", "split": ""},
        {"track_id": "a_copy", "path": "audio/a.wav", "tags": "x", "split": "test"},
        {"track_id": "a_dotdot", "path": "audio/../audio/a.wav", "tags": "x", "split": ""},
        {"track_id": "a_link", "path": "audio/link.wav", "tags": "x", "split": "valid"},
        {"track_id": "a_hard", "path": "audio/hard.wav", "tags": "x", "split": ""},
    ]
    return write_track_table(root, rows)


def outside_root_table(root: Path, *, outside: Path) -> Path:
    """A table dataset under ``root`` with one track inside, one through ``../`` and one by
    absolute path into the folder ``outside`` (which is not under ``root``)."""
    write_audio(root / "in.wav", duration_s=1.0)
    write_audio(outside / "out.wav", duration_s=1.0, seed=1)
    write_audio(outside / "far.wav", duration_s=1.0, seed=2)
    relative = os.path.relpath(outside / "out.wav", root)
    rows = [
        {"track_id": "in", "path": "in.wav", "tags": "x"},
        {"track_id": "up", "path": relative, "tags": "x"},
        {"track_id": "abs", "path": str(outside / "far.wav"), "tags": "y"},
    ]
    return write_track_table(root, rows)


#: Track ids with characters that do not print: the right-to-left override (Cf), an escape
#: and a bell (Cc).
CONTROL_IDS = ("evil\u202egnp.wav", "esc\x1b[31mred", "bell\x07")


def control_id_table(root: Path) -> Path:
    """A TAB-separated table whose track ids are :data:`CONTROL_IDS` (plus a plain ``ok``),
    one audio file each."""
    rows = []
    for number, track_id in enumerate(("ok", *CONTROL_IDS)):
        write_audio(root / f"t{number}.wav", duration_s=1.0, seed=number)
        rows.append({"track_id": track_id, "path": f"t{number}.wav", "tags": "x"})
    return write_track_table(root, rows, sep="\t")
