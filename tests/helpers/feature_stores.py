"""Two shard stores of six tracks of real 16 kHz audio, with sample-exact durations.

:func:`build_stores` runs the feature stage (:func:`pipeline.features.extract.extract_shard`)
on :data:`TRACKS`; the index and band-statistics tests check their answers against it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.features.extract import extract_shard
from pipeline.features.settings import FeatureSettings
from pipeline.io.audio import WindowSettings
from tests.helpers.audio import write_audio

__all__ = ["HOP", "N_FFT", "NATURAL", "SR", "TRACKS", "WINDOW", "build_stores", "store_settings"]

SR = 16000
WINDOW = WindowSettings(length_s=1.0, hop_s=1.0, min_tail_s=0.2)
N_FFT, HOP = 512, 256
NATURAL = 1 + WINDOW.length // HOP  # 63 centred frames

# track_id: (store, duration_s, split, tags); 16 kHz WAVs, so durations are sample-exact
TRACKS = {
    "s0/a": (0, 2.5, "train", ["rock"]),  # windows at 0, 1, 2 (0.5 s of audio in the last)
    "s0/b": (0, 0.3, "train", ["calm"]),  # one window, 0.3 s of audio
    "s0/c": (0, 2.0, "test", ["rock", "calm"]),  # test: must not count
    "s1/d": (1, 1.75, "train", []),  # windows at 0 and 1 (0.75 s)
    "s1/e": (1, 3.0, "valid", ["loud"]),
    "s1/f": (1, 1.0, "train", ["loud", "rock"]),  # exactly one window
}


def store_settings(n_frames: int = NATURAL) -> FeatureSettings:
    """12-band log-mel settings of 1 s windows; ``n_frames`` beyond NATURAL pads with the floor."""
    return FeatureSettings(
        name="lm", window=WINDOW, n_fft=N_FFT, hop_length=HOP, n_mels=12, n_frames=n_frames
    )


def build_stores(folder: Path, settings: FeatureSettings) -> tuple[list[Path], pd.DataFrame]:
    """The two stores of :data:`TRACKS` (``0000.zarr``, ``0001.zarr``) and the manifest
    (``track_id, split, tags, path``, in reverse order: its order must not matter)."""
    audio = folder / "audio"
    rows = {0: [], 1: []}
    for k, (track_id, (store, duration, _, _)) in enumerate(TRACKS.items()):
        path = write_audio(
            audio / f"{track_id}.wav", duration_s=duration, freq_hz=300.0 + 200 * k, seed=k
        )
        rows[store].append((track_id, str(path)))
    stores = []
    for store, tracks in rows.items():
        stores.append(folder / f"{store:04d}.zarr")
        extract_shard(
            tracks=pd.DataFrame(tracks, columns=["track_id", "path"]),
            settings=settings,
            store_path=stores[-1],
            failed_path=folder / f"{store:04d}.failed.parquet",
        )
    manifest = pd.DataFrame(
        {
            "track_id": list(TRACKS),
            "split": [v[2] for v in TRACKS.values()],
            "tags": [v[3] for v in TRACKS.values()],
            "path": [str(audio / f"{t}.wav") for t in TRACKS],
        }
    ).iloc[::-1]  # manifest order must not matter
    return stores, manifest
