"""Batch tagging of a collection: every audio file of a folder or a dataset, into Parquet.

A collection (``collections:`` in ``config.yaml``) is a list of audio files, tagged with one
checkpoint. The workflow lists it (:func:`list_folder` or a dataset's manifest), cuts it into
shards with the feature stage's stable hash (:func:`pipeline.datasets.manifest.assign_shards`), tags
each shard in one job (:func:`tag_files`, the ``tag`` command's streaming
:class:`pipeline.inference.file_tagger.FileTagger`) and joins the shards (:func:`merge_shards`).

The table (one row per tagged file):

=================  ===========================================================================
``track_id``       the file's path relative to the folder, or the dataset's track id
``path``           the file (a name that is not UTF-8 on disk: its bad bytes as ``\\udcXX``
                   escapes, :func:`pipeline.errors.utf8_safe`)
``duration_s``     decoded seconds
``n_windows``      windows it was cut into
``top_tags``       the ``top`` most probable tags, most probable first
``<tag>``          one float32 probability column per tag of the checkpoint, vocabulary order
``embedding``      the track embedding, fixed-size list of D float32
=================  ===========================================================================

Files that cannot be tagged (missing, empty, not audio, too short) go to a failure table
(``track_id, path, error``) and the others are still tagged. A folder's listing also keeps
each file's name as the operating system's bytes (``path_os``, binary), so a file whose name
is not valid UTF-8 (Parquet strings are) is still opened and tagged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.datasets.manifest import assign_shards
from pipeline.errors import ConfigError, PipelineError, utf8_safe
from pipeline.inference.file_tagger import FileTagger
from pipeline.io.progress import Progress
from pipeline.retrieval.similarity import index_metadata, write_with_metadata

__all__ = [
    "AUDIO_PATTERNS",
    "TABLE_KEYS",
    "FAILURE_COLUMNS",
    "list_folder",
    "shard_tracks",
    "tag_files",
    "merge_shards",
]

log = logging.getLogger(__name__)

#: File name patterns a folder collection lists by default.
#: ``.m4a`` (AAC, ALAC), ``.wma`` and ``.aac`` are decoded by the fallback decoder (FFmpeg).
AUDIO_PATTERNS = (
    *("*.mp3", "*.wav", "*.flac", "*.ogg", "*.opus", "*.m4a", "*.aiff", "*.aif"),
    *("*.wma", "*.aac"),
)
#: Columns of the table before the tag columns (``embedding`` comes last).
TABLE_KEYS = ("track_id", "path", "duration_s", "n_windows", "top_tags")
FAILURE_COLUMNS = ["track_id", "path", "error"]


def list_folder(*, root: str | Path, patterns: Sequence[str] = AUDIO_PATTERNS) -> pd.DataFrame:
    """Audio files under a folder (recursively), sorted: every entry whose name matches, but
    folders (a broken link or a named pipe is listed, and fails when tagged).

    Parameters
    ----------
    root : str or Path
    patterns : sequence of str
        Glob patterns matched against file names, case-insensitively (``*.mp3``).

    Returns
    -------
    pd.DataFrame
        ``track_id`` (path relative to ``root``, with ``/``) and ``path``, both UTF-8
        (:func:`pipeline.errors.utf8_safe`), and ``path_os``, the path as bytes (what
        :func:`tag_files` opens: a name that is not UTF-8 is kept as it is on disk).

    Raises
    ------
    ConfigError
        ``root`` is not a folder, or no file matches.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise ConfigError(f"collection root {str(folder)!r} is not a folder")
    lowered = [p.lower() for p in patterns]
    files = sorted(
        p
        for p in folder.rglob("*")
        # every matching entry but folders: a broken link or a named pipe named x.mp3 is
        # listed, so that tagging reports it as a failure row instead of leaving it out
        if not p.is_dir() and any(Path(p.name.lower()).match(pat) for pat in lowered)
    )
    if not files:
        raise ConfigError(f"collection root {str(folder)!r}: no file matches {list(patterns)}")
    return pd.DataFrame(
        {
            "track_id": [utf8_safe(p.relative_to(folder).as_posix()) for p in files],
            "path": [utf8_safe(p) for p in files],
            "path_os": [os.fsencode(p) for p in files],
        }
    )


def shard_tracks(tracks: pd.DataFrame, *, shard: int, n_shards: int) -> pd.DataFrame:
    """The tracks of one shard (stable hash of ``track_id``, as the feature stage).

    Parameters
    ----------
    tracks : pd.DataFrame
        With ``track_id`` and ``path`` (and ``path_os`` from :func:`list_folder`).
    shard, n_shards : int

    Returns
    -------
    pd.DataFrame
        The shard's rows (``track_id``, ``path``, ``path_os`` when given), in input order.
    """
    missing = sorted({"track_id", "path"} - set(tracks))
    if missing:
        raise PipelineError(f"the track list lacks column(s) {missing}")
    if not 0 <= shard < n_shards:
        raise ConfigError(f"shard {shard} is not in 0..{n_shards - 1}")
    ids = tracks["track_id"].astype(str)
    keep = assign_shards(ids, n_shards=n_shards) == shard
    columns = ["track_id", "path", *(["path_os"] if "path_os" in tracks else [])]
    return tracks.loc[keep, columns].reset_index(drop=True)


def _table(
    *,
    rows: list[dict],
    tags: list[str],
    probs: list[np.ndarray],
    embeddings: list[np.ndarray],
    dim: int | None,
) -> pa.Table:
    columns: dict[str, pa.Array] = {
        "track_id": pa.array([r["track_id"] for r in rows], pa.string()),
        "path": pa.array([r["path"] for r in rows], pa.string()),
        "duration_s": pa.array([r["duration_s"] for r in rows], pa.float64()),
        "n_windows": pa.array([r["n_windows"] for r in rows], pa.int32()),
        "top_tags": pa.array([r["top_tags"] for r in rows], pa.list_(pa.string())),
    }
    matrix = np.stack(probs).astype(np.float32) if probs else np.zeros((0, len(tags)), np.float32)
    for j, tag in enumerate(tags):
        columns[tag] = pa.array(matrix[:, j], pa.float32())
    if dim is not None:
        values = (
            np.stack(embeddings).astype(np.float32).reshape(-1)
            if embeddings
            else np.zeros(0, np.float32)
        )
        columns["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(values), dim)
    return pa.table(columns)


def tag_files(
    *, tracks: pd.DataFrame, file_tagger: FileTagger, top: int
) -> tuple[pa.Table, pd.DataFrame]:
    """Tag a list of files into the collection table.

    Parameters
    ----------
    tracks : pd.DataFrame
        ``track_id`` and ``path``; with ``path_os`` (bytes), that is the file opened.
    file_tagger : FileTagger
        Built with ``embed=True`` for an ``embedding`` column.
    top : int
        Tags in ``top_tags``.

    Returns
    -------
    table : pyarrow.Table
        See the module docstring; no rows when no file could be tagged.
    failures : pd.DataFrame
        ``track_id, path, error`` of the files that could not be tagged.

    Raises
    ------
    PipelineError
        A tag name clashes with a fixed column.
    """
    tags = list(file_tagger.tagger.tags)
    clash = sorted(set(tags) & {*TABLE_KEYS, "embedding"})
    if clash:
        raise PipelineError(f"tag name(s) {clash} clash with the collection table's columns")
    rows: list[dict] = []
    probs: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []
    failures: list[dict] = []
    progress = Progress(total=len(tracks), name="tag", unit="files", logger=log)
    names = tracks["path_os"] if "path_os" in tracks else tracks["path"]
    for track_id, path, name in zip(tracks["track_id"], tracks["path"], names, strict=True):
        try:
            result = file_tagger.tag(os.fsdecode(name))
        except PipelineError as exc:  # AudioError included: record it, go on
            log.warning("%s: %s", path, exc)
            failures.append({"track_id": str(track_id), "path": str(path), "error": utf8_safe(exc)})
            progress.advance()
            continue
        progress.advance(audio_s=float(result.duration_s))
        rows.append(
            {
                "track_id": str(track_id),
                "path": str(path),
                "duration_s": float(result.duration_s),
                "n_windows": result.n_windows,
                "top_tags": [tag for tag, _ in result.top(top)],
            }
        )
        probs.append(result.song_probs)
        if file_tagger.embed:
            embeddings.append(result.track_embedding())
    dim = None
    if file_tagger.embed:
        dim = len(embeddings[0]) if embeddings else _embedding_dim(file_tagger)
    progress.close()
    log.info("tagged %d files, %d failed", len(rows), len(failures))
    table = _table(rows=rows, tags=tags, probs=probs, embeddings=embeddings, dim=dim)
    return table, pd.DataFrame(failures, columns=FAILURE_COLUMNS)


def _embedding_dim(file_tagger: FileTagger) -> int:
    """Embedding size without a tagged file: one silent window through the tagger."""
    zeros = np.zeros((1, *file_tagger.extractor.shape), dtype=np.float16)
    return int(file_tagger.tagger.embed_windows(zeros).shape[1])


def merge_shards(*, tables: Sequence[str | Path], out: str | Path, checkpoint: str | Path) -> int:
    """Join shard tables into one collection table, sorted by ``track_id``.

    The table is described as a similarity index (:mod:`pipeline.retrieval.similarity`) of the
    tagger's embedding space, so ``pipeline similar --index`` can search it.

    Returns
    -------
    int
        Rows written.
    """
    parts = [pq.read_table(path) for path in tables]
    if not parts:
        raise PipelineError("no shard table to merge")
    table = pa.concat_tables(parts)
    order = pc.sort_indices(table, sort_keys=[("track_id", "ascending")])
    table = table.take(order)
    if "embedding" in table.column_names:
        meta = index_metadata(checkpoint=checkpoint, projection=None)
        write_with_metadata(table, out=out, metadata=meta)
    else:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out)
    return table.num_rows
