"""Real encoded audio for tests: tones and noise written with soundfile (WAV, FLAC, OGG, MP3)."""

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


def write_music_folder(root: Path) -> Path:
    """A music folder: real audio in sub-folders (``a/one.wav``, ``a/two.FLAC``,
    ``b/three.ogg`` at 22.05 kHz), a text file and a broken ``b/broken.mp3``."""
    write_audio(root / "a" / "one.wav", duration_s=2.2, freq_hz=200.0)
    write_audio(root / "a" / "two.FLAC", duration_s=1.5, freq_hz=3000.0, seed=1)
    write_audio(root / "b" / "three.ogg", duration_s=3.1, sample_rate=22050, seed=2)
    (root / "b" / "notes.txt").write_text("not audio")
    (root / "b" / "broken.mp3").write_text("not audio either\n" * 40)
    return root
