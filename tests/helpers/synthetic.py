"""Small shard stores with known content, for the training, tagger and prediction tests.

:func:`build_synthetic` writes two stores: tag ``low`` is a loud tone in band 3, tag ``high``
a tone in band 11, over quiet noise; short tracks end in floor-valued padding, as the feature
stage writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.features.index import build_index
from pipeline.features.settings import FeatureSettings
from pipeline.features.stats import band_statistics
from pipeline.features.windows import audio_frames
from pipeline.io.audio import WindowSettings
from pipeline.io.store import StoreWriter

__all__ = ["BANDS", "FLOOR", "N_BINS", "N_FRAMES", "SETTINGS", "TAGS", "WINDOW", "build_synthetic"]

N_BINS, N_FRAMES = 16, 64
TAGS = ["low", "high"]
BANDS = {"low": 3, "high": 11}
FLOOR = -100.0
# 63 hops of 256 samples: 64 centred frames per window, 1.008 s
WINDOW = WindowSettings(length_s=63 * 256 / 16000, hop_s=63 * 256 / 16000, min_tail_s=0.1)
SETTINGS = FeatureSettings(
    name="lm", window=WINDOW, n_fft=512, hop_length=256, n_mels=N_BINS, n_frames=N_FRAMES
)


def _track_windows(
    rng: np.random.Generator, *, tags: list[str], duration_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Windows (n, N_BINS, N_FRAMES) and start times of one synthetic track."""
    length = WINDOW.length_s
    n = max(1, int(np.ceil(duration_s / length - 1e-9)))
    starts = np.arange(n) * length
    windows = rng.normal(-60.0, 4.0, size=(n, N_BINS, N_FRAMES))
    for tag in tags:
        windows[:, BANDS[tag], :] += 35.0
    valid = audio_frames(starts_s=starts, duration_s=duration_s, features=SETTINGS)
    for w, v in zip(windows, valid, strict=True):
        w[:, v:] = FLOOR
    return windows.astype(np.float16), starts


def build_synthetic(
    folder: Path, *, n_tracks: int = 40, seed: int = 0, compression: str = "none"
) -> dict:
    """Two shard stores, their index and train-split stats.

    Track ``i`` has ``low`` when ``i % 2`` and ``high`` when ``(i // 2) % 2``; splits cycle
    train x3, valid, test (24 train / 8 valid / 8 test for 40 tracks); durations give 1 to 3
    windows, the last often partly padding. ``compression``: the stores' (``"none"`` is the
    default layout, read straight from the chunk files; others are read through Zarr).

    Returns
    -------
    dict
        ``index`` (DataFrame), ``stats``, ``tags``, ``features`` (settings dict),
        ``stores``, ``manifest``.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    splits = ["train", "train", "train", "valid", "test"]
    rows = []
    writers = [
        StoreWriter(
            path=folder / f"{k:04d}.zarr",
            window_shape=(N_BINS, N_FRAMES),
            attrs={"features": SETTINGS.to_dict(), "dataset": "synthetic", "shard": f"{k:04d}"},
            compression=compression,
        )
        for k in range(2)
    ]
    for i in range(n_tracks):
        tags = [t for t, on in (("low", i % 2), ("high", (i // 2) % 2)) if on]
        duration = float(rng.choice([0.6, 1.0, 1.5, 2.2, 3.0]))
        windows, starts = _track_windows(rng, tags=tags, duration_s=duration)
        track_id = f"track-{i:03d}"
        writers[i % 2].add(track_id=track_id, windows=windows, starts_s=starts, duration_s=duration)
        rows.append({"track_id": track_id, "split": splits[i % len(splits)], "tags": tags})
    for writer in writers:
        writer.close()
    stores = [folder / f"{k:04d}.zarr" for k in range(2)]
    manifest = pd.DataFrame(rows)
    index = build_index(stores=stores, manifest=manifest)
    stats = band_statistics(index=index, split="train", threads=1)
    return {
        "index": index,
        "stats": stats,
        "tags": TAGS,
        "features": SETTINGS.to_dict(),
        "stores": stores,
        "manifest": manifest,
    }
