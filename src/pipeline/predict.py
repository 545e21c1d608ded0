"""Predictions of a checkpoint for one split of a feature set, at the window and song level.

The song table is what evaluation reads: ``track_id``, one probability column per tag (in
vocabulary order), and ``labels`` (the track's true tags). The window table is the taggram
of each track: ``track_id``, ``window`` (its position in the track), ``start_s``, and one
logit column per tag; it is empty for taggers whose song prediction is not an aggregate of
window predictions (sequence models, ``aggregation="model"``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from pipeline.data import audio_frames, split_tracks
from pipeline.errors import PipelineError
from pipeline.store import FeatureStore
from pipeline.tagger import Tagger, load_tagger

__all__ = ["predict_split", "SONG_KEYS", "WINDOW_KEYS"]

log = logging.getLogger(__name__)

#: Non-tag columns of the song table (tag columns follow ``track_id``, ``labels`` is last).
SONG_KEYS = ("track_id", "labels")
#: Non-tag columns of the window table (before the tag columns).
WINDOW_KEYS = ("track_id", "window", "start_s")

#: Windows scored per call for window-level taggers.
_BLOCK_WINDOWS = 64


def predict_split(
    *,
    checkpoint: Path,
    index: pd.DataFrame,
    split: str = "test",
    device: str = "cpu",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every stored track of a split with a checkpoint.

    Parameters
    ----------
    checkpoint : Path
        A checkpoint (any kind in :data:`pipeline.tagger.TAGGER_KINDS`).
    index : pd.DataFrame
        The feature set's ``index.parquet`` (``track_id, store, start, stop, duration_s,
        split, tags``); its stores must hold the checkpoint's feature set.
    split : str
        Which tracks to score.
    device : str
        Torch device.

    Returns
    -------
    songs : pd.DataFrame
        One row per track: ``track_id``, a probability column per tag, ``labels``.
    windows : pd.DataFrame
        One row per window: ``track_id, window, start_s``, a logit column per tag; no rows
        for ``aggregation="model"`` taggers.
    """
    tagger = load_tagger(Path(checkpoint), device=device)
    clash = sorted(set(tagger.tags) & {*SONG_KEYS, *WINDOW_KEYS})
    if clash:
        raise PipelineError(f"tag name(s) {clash} clash with the prediction tables' columns")
    tracks = split_tracks(index, split=split)

    song_probs = np.zeros((len(tracks), len(tagger.tags)), dtype=np.float32)
    window_parts: list[pd.DataFrame] = []
    for store, part in tracks.groupby("store", sort=True):
        windows, starts = _open_store(str(store), tagger=tagger)
        if tagger.aggregation == "mean":
            window_parts.append(
                _score_windows(tagger, part, windows=windows, starts=starts, out=song_probs)
            )
        else:
            for i, row in part.iterrows():
                valid = audio_frames(
                    starts_s=starts[row["start"] : row["stop"]],
                    duration_s=float(row["duration_s"]),
                    features=tagger.features,
                )
                _, song_probs[i] = tagger.predict_track(
                    windows[row["start"] : row["stop"]], valid_frames=valid
                )
        log.info("%s: %d tracks scored", store, len(part))

    songs = pd.DataFrame(song_probs, columns=tagger.tags)
    songs.insert(0, "track_id", tracks["track_id"].astype(str).to_numpy())
    labels = [[t for t in tagger.tags if t in set(tags)] for tags in tracks["tags"]]
    songs["labels"] = pd.Series(labels, dtype=object)
    if window_parts:
        window_table = pd.concat(window_parts, ignore_index=True)
    else:
        columns = [*WINDOW_KEYS, *tagger.tags]
        window_table = pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
        window_table["track_id"] = window_table["track_id"].astype(object)
        window_table["window"] = window_table["window"].astype(np.int64)
    return songs, window_table


def _open_store(store: str, *, tagger: Tagger) -> tuple[zarr.Array, np.ndarray]:
    """The store's windows array and window start times, after checking its features."""
    return FeatureStore(Path(store)).checked_windows(features=tagger.features.to_dict())


def _score_windows(
    tagger: Tagger,
    part: pd.DataFrame,
    *,
    windows: zarr.Array,
    starts: np.ndarray,
    out: np.ndarray,
) -> pd.DataFrame:
    """Window logits of one store's tracks, in blocks of whole tracks; song means to ``out``."""
    rows = list(part.itertuples())
    tables = []
    i = 0
    while i < len(rows):
        block = [rows[i]]
        n = rows[i].stop - rows[i].start
        while i + len(block) < len(rows) and n < _BLOCK_WINDOWS:
            nxt = rows[i + len(block)]
            block.append(nxt)
            n += nxt.stop - nxt.start
        i += len(block)
        data = np.concatenate([windows[r.start : r.stop] for r in block])  # (n, bins, frames)
        block_starts = np.concatenate([starts[r.start : r.stop] for r in block])
        durations = np.concatenate([np.full(r.stop - r.start, r.duration_s) for r in block])
        valid = audio_frames(starts_s=block_starts, duration_s=durations, features=tagger.features)
        logits = tagger.predict_windows(data, valid_frames=valid)  # (n, n_tags)
        probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        offset = 0
        for r in block:
            count = r.stop - r.start
            out[r.Index] = probs[offset : offset + count].mean(axis=0)
            offset += count
        table = pd.DataFrame(logits, columns=tagger.tags)
        table.insert(0, "start_s", block_starts)
        table.insert(0, "window", np.concatenate([np.arange(r.stop - r.start) for r in block]))
        table.insert(
            0, "track_id", np.concatenate([[str(r.track_id)] * (r.stop - r.start) for r in block])
        )
        tables.append(table)
    return pd.concat(tables, ignore_index=True)
