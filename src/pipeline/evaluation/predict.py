"""Predictions of a checkpoint for one split of a feature set, at the window and song level.

Also the track embeddings of a checkpoint (:func:`embed_tracks`), what similarity search,
retrieval evaluation and few-shot learning read.

The song table is what evaluation reads: ``track_id``, one probability column per tag (in
vocabulary order), and ``labels`` (the track's true tags). The window table is the taggram
of each track: ``track_id``, ``window`` (its position in the track), ``start_s``, and one
logit column per tag; it is empty for taggers whose song prediction is not an aggregate of
window predictions (sequence models, ``aggregation="model"``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr

from pipeline.errors import PipelineError
from pipeline.features.index import split_tracks
from pipeline.features.windows import audio_frames
from pipeline.inference.chunks import chunk_resolution, chunk_taggram, merge_chunks
from pipeline.inference.loading import load_tagger
from pipeline.inference.registry import Tagger
from pipeline.io.progress import Progress
from pipeline.io.store import FeatureStore

__all__ = [
    "predict_split",
    "predict_chunks",
    "embed_tracks",
    "embedding_matrix",
    "SONG_KEYS",
    "WINDOW_KEYS",
    "CHUNK_KEYS",
]

log = logging.getLogger(__name__)

#: Non-tag columns of the song table (tag columns follow ``track_id``, ``labels`` is last).
SONG_KEYS = ("track_id", "labels")
#: Non-tag columns of the window table (before the tag columns).
WINDOW_KEYS = ("track_id", "window", "start_s")
#: Non-tag columns of the chunk table (before the tag columns).
CHUNK_KEYS = ("track_id", "window", "chunk", "start_s", "end_s")

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
        A checkpoint (any kind in :data:`pipeline.inference.registry.TAGGER_KINDS`).
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
                    np.asarray(windows[row["start"] : row["stop"]]), valid_frames=valid
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


def predict_chunks(
    *,
    checkpoint: Path,
    index: pd.DataFrame,
    split: str = "test",
    n_tracks: int = 3,
    device: str = "cpu",
) -> pd.DataFrame:
    """The taggrams at the model's own resolution of the first tracks of a split.

    Parameters
    ----------
    checkpoint : Path
    index : pd.DataFrame
        The feature set's ``index.parquet``.
    split : str
    n_tracks : int
        The first ``n_tracks`` tracks of the split, in the order of :func:`predict_split`'s
        song table (the tracks the evaluation draws as taggrams).
    device : str

    Returns
    -------
    pd.DataFrame
        One row per chunk: :data:`CHUNK_KEYS` (``start_s`` and ``end_s`` in seconds of the
        track) and one probability column per tag; no rows when the model scores whole windows
        only (:func:`pipeline.inference.chunks.chunk_resolution` is None).
    """
    tagger = load_tagger(Path(checkpoint), device=device)
    tables = []
    if chunk_resolution(tagger) is not None and n_tracks > 0:
        tracks = split_tracks(index, split=split).iloc[:n_tracks]
        for row in tracks.itertuples():
            windows, starts = _open_store(str(row.store), tagger=tagger)
            track_starts = np.asarray(starts[row.start : row.stop], dtype=np.float64)
            valid = audio_frames(
                starts_s=track_starts, duration_s=float(row.duration_s), features=tagger.features
            )
            taggram = merge_chunks(
                [
                    chunk_taggram(
                        tagger,
                        np.asarray(windows[row.start : row.stop]),
                        valid_frames=valid,
                        window_start_s=track_starts,
                    )
                ]
            )
            table = pd.DataFrame(taggram.probs, columns=tagger.tags)
            end = np.minimum(taggram.start_s + taggram.chunk_s, float(row.duration_s))
            keys = {
                "track_id": str(row.track_id),
                "window": taggram.window,
                "chunk": np.arange(len(table)),
                "start_s": taggram.start_s,
                "end_s": np.maximum(end, taggram.start_s),
            }
            tables.append(pd.concat([pd.DataFrame(keys), table], axis=1))
    if tables:
        return pd.concat(tables, ignore_index=True)
    empty = pd.DataFrame({c: pd.Series(dtype=float) for c in [*CHUNK_KEYS, *tagger.tags]})
    empty["track_id"] = empty["track_id"].astype(object)
    for column in ("window", "chunk"):
        empty[column] = empty[column].astype(np.int64)
    return empty


def _open_store(store: str, *, tagger: Tagger) -> tuple[zarr.Array, np.ndarray]:
    """The store's windows array and window start times, after checking its features."""
    return FeatureStore(Path(store)).checked_windows(features=tagger.features.to_dict())


def _blocks(part: pd.DataFrame) -> Iterator[list[Any]]:
    """Consecutive whole tracks of ``part`` (rows with ``start, stop``), about
    :data:`_BLOCK_WINDOWS` windows per block."""
    rows = list(part.itertuples())
    i = 0
    while i < len(rows):
        block = [rows[i]]
        n = rows[i].stop - rows[i].start
        while i + len(block) < len(rows) and n < _BLOCK_WINDOWS:
            nxt = rows[i + len(block)]
            block.append(nxt)
            n += nxt.stop - nxt.start
        i += len(block)
        yield block


def _block_inputs(
    block: list[Any], *, windows: zarr.Array, starts: np.ndarray, tagger: Tagger
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows (n, bins, frames), their start times (n,) and valid frames (n,) of a block."""
    data = np.concatenate([windows[r.start : r.stop] for r in block])
    block_starts = np.concatenate([starts[r.start : r.stop] for r in block])
    durations = np.concatenate([np.full(r.stop - r.start, r.duration_s) for r in block])
    valid = audio_frames(starts_s=block_starts, duration_s=durations, features=tagger.features)
    return data, block_starts, valid


def _score_windows(
    tagger: Tagger,
    part: pd.DataFrame,
    *,
    windows: zarr.Array,
    starts: np.ndarray,
    out: np.ndarray,
) -> pd.DataFrame:
    """Window logits of one store's tracks, in blocks of whole tracks; song means to ``out``."""
    tables = []
    for block in _blocks(part):
        data, block_starts, valid = _block_inputs(
            block, windows=windows, starts=starts, tagger=tagger
        )
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


def embed_tracks(
    *,
    checkpoint: Path,
    index: pd.DataFrame,
    splits: Sequence[str] | None = None,
    device: str = "cpu",
) -> pd.DataFrame:
    """The track embedding (``Tagger.embed_track``) of every stored track of some splits.

    Parameters
    ----------
    checkpoint : Path
        Any checkpoint :func:`pipeline.inference.loading.load_tagger` reads.
    index : pd.DataFrame
        The feature set's ``index.parquet``.
    splits : sequence of str, optional
        Splits to embed (default: every split in the index).
    device : str

    Returns
    -------
    pd.DataFrame
        One row per track with stored windows, in index order: ``track_id``, ``split``,
        ``tags`` (the track's tags in the checkpoint's vocabulary, vocabulary order) and
        ``embedding`` (a float32 array of length D; :func:`embedding_matrix` stacks them).
        Window taggers embed a track as the mean of its window embeddings, sequence and
        two-stage taggers with their own summary.
    """
    tagger = load_tagger(Path(checkpoint), device=device)
    wanted = sorted(set(index["split"])) if splits is None else list(splits)
    parts = [split_tracks(index, split=split) for split in wanted]
    tracks = pd.concat(parts, ignore_index=True)
    rows: list[np.ndarray | None] = [None] * len(tracks)
    progress = Progress(total=len(tracks), name=f"embed {checkpoint}", logger=log)
    for store, part in tracks.groupby("store", sort=True):
        windows, starts = _open_store(str(store), tagger=tagger)
        if tagger.aggregation == "mean":
            for block in _blocks(part):
                data, _, valid = _block_inputs(block, windows=windows, starts=starts, tagger=tagger)
                emb = tagger.embed_windows(data, valid_frames=valid)  # (n, D)
                offset = 0
                for r in block:
                    count = r.stop - r.start
                    rows[r.Index] = emb[offset : offset + count].mean(axis=0)
                    offset += count
                progress.advance(len(block), audio_s=sum(float(r.duration_s) for r in block))
        else:
            for r in part.itertuples():
                valid = audio_frames(
                    starts_s=starts[r.start : r.stop],
                    duration_s=float(r.duration_s),
                    features=tagger.features,
                )
                track = np.asarray(windows[r.start : r.stop])
                rows[r.Index] = tagger.embed_track(track, valid_frames=valid)
                progress.advance(audio_s=float(r.duration_s))
        log.info("%s: %d tracks embedded", store, len(part))
    progress.close()
    vocabulary = list(tagger.tags)
    return pd.DataFrame(
        {
            "track_id": tracks["track_id"].astype(str).to_numpy(),
            "split": tracks["split"].astype(str).to_numpy(),
            "tags": [[t for t in vocabulary if t in set(tags)] for tags in tracks["tags"]],
            "embedding": [np.asarray(e, dtype=np.float32) for e in rows],
        }
    )


def embedding_matrix(table: pd.DataFrame) -> np.ndarray:
    """The ``embedding`` column of a table as one array, shape (n_tracks, D), float32.

    Raises
    ------
    PipelineError
        No ``embedding`` column, no rows, or rows of different lengths.
    """
    if "embedding" not in table:
        raise PipelineError(f"the table has no 'embedding' column (columns: {list(table)})")
    if table.empty:
        raise PipelineError("the embedding table has no rows")
    lengths = {len(e) for e in table["embedding"]}
    if len(lengths) != 1:
        raise PipelineError(f"embeddings of different lengths {sorted(lengths)} in one table")
    return np.stack([np.asarray(e, dtype=np.float32) for e in table["embedding"]])
