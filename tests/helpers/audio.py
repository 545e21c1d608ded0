"""Real encoded audio for tests: tones and noise written with soundfile (WAV, FLAC, OGG, MP3),
and with FFmpeg (PyAV) in the formats libsndfile does not write (M4A with AAC or ALAC, WMA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

_FORMATS = {
    ".wav": ("WAV", "PCM_16"),
    ".flac": ("FLAC", "PCM_16"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}


def tone(
    *,
    duration_s: float,
    sample_rate: int = 16000,
    freq_hz: float = 440.0,
    channels: int = 1,
    amplitude: float = 0.5,
    seed: int = 0,
) -> np.ndarray:
    """A sine tone with a little seeded noise, shape ``(n_samples, channels)``."""
    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(seed)
    y = amplitude * np.sin(2 * np.pi * freq_hz * t) + 0.01 * rng.standard_normal(n)
    return np.repeat(y[:, None], channels, axis=1).astype(np.float32)


def write_audio(
    path: str | Path,
    *,
    duration_s: float = 3.0,
    sample_rate: int = 16000,
    freq_hz: float = 440.0,
    channels: int = 1,
    seed: int = 0,
    data: np.ndarray | None = None,
) -> Path:
    """Write real encoded audio; the format follows the suffix (.wav, .flac, .ogg, .mp3)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = tone(
            duration_s=duration_s,
            sample_rate=sample_rate,
            freq_hz=freq_hz,
            channels=channels,
            seed=seed,
        )
    fmt, subtype = _FORMATS[path.suffix.lower()]
    data = data if data.ndim == 2 else data[:, None]
    with sf.SoundFile(
        path, "w", samplerate=sample_rate, channels=data.shape[1], format=fmt, subtype=subtype
    ) as f:
        # libsndfile 1.2's Vorbis encoder crashes on long single writes: write in blocks.
        for i in range(0, len(data), 8192):
            f.write(data[i : i + 8192])
    return path


#: FFmpeg codec, its sample format and the container that :func:`write_ffmpeg_audio` uses per
#: format name. FFmpeg's own encoders (in PyAV's wheel): no external program is needed.
FFMPEG_FORMATS: dict[str, tuple[str, str, str]] = {
    "aac_m4a": ("aac", "fltp", "ipod"),  # AAC-LC in MPEG-4, as iTunes writes .m4a
    "alac_m4a": ("alac", "s16p", "ipod"),  # Apple Lossless in MPEG-4
    "wma": ("wmav2", "fltp", "asf"),  # Windows Media Audio 2 in ASF
}


def write_ffmpeg_audio(path: str | Path, *, data: np.ndarray, sample_rate: int, kind: str) -> Path:
    """Encode ``data`` (shape ``(n_samples, channels)``, float in [-1, 1]) with FFmpeg (PyAV).

    ``kind`` is a key of :data:`FFMPEG_FORMATS`; ``path``'s suffix is not checked (a test may
    write a ``.m4a`` file under another name).
    """
    import av  # the fallback decoder's library: a dependency of the pipeline

    codec, sample_format, container_format = FFMPEG_FORMATS[kind]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    layout = {1: "mono", 2: "stereo"}[data.shape[1]]
    planar = np.ascontiguousarray(data.T, dtype=np.float32)  # (channels, n_samples)
    if sample_format == "s16p":
        planar = np.round(np.clip(planar, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=sample_rate, layout=layout)
        stream.codec_context.format = sample_format
        stream.codec_context.bit_rate = 128_000  # WMA needs one; ALAC ignores it
        step = 1024
        for i in range(0, planar.shape[1], step):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(planar[:, i : i + step]), format=sample_format, layout=layout
            )
            frame.sample_rate = sample_rate
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def write_music_folder(root: Path) -> Path:
    """A music folder: real audio in sub-folders (``a/one.wav``, ``a/two.FLAC``,
    ``b/three.ogg`` at 22.05 kHz), a text file and a broken ``b/broken.mp3``."""
    write_audio(root / "a" / "one.wav", duration_s=2.2, freq_hz=200.0)
    write_audio(root / "a" / "two.FLAC", duration_s=1.5, freq_hz=3000.0, seed=1)
    write_audio(root / "b" / "three.ogg", duration_s=3.1, sample_rate=22050, seed=2)
    (root / "b" / "notes.txt").write_text("not audio")
    (root / "b" / "broken.mp3").write_text("not audio either\n" * 40)
    return root
