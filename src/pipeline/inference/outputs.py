"""Writing tagging results: embeddings as NPZ or Parquet."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline.errors import ConfigError, PipelineError, utf8_safe
from pipeline.inference.streaming import TagResult

__all__ = ["EMBEDDING_WRITERS", "write_embeddings"]


def _embedding_parts(results: Sequence[TagResult]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Track embeddings (n_files, D), window embeddings (n_windows, D), offsets (n_files+1)."""
    track_rows: list[np.ndarray] = []
    window_rows: list[np.ndarray] = []
    missing: list[str] = []
    for r in results:
        if r.embedding is None or r.window_embeddings is None:
            missing.append(r.path)
        else:
            track_rows.append(r.embedding)
            window_rows.append(r.window_embeddings)
    if missing:
        raise PipelineError(f"no embeddings were computed for {missing[:3]!r}")
    tracks = np.stack(track_rows).astype(np.float32)
    windows = np.concatenate(window_rows).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum([r.n_windows for r in results])]).astype(np.int64)
    return tracks, windows, offsets


def _write_npz(results: Sequence[TagResult], path: Path) -> None:
    tracks, windows, offsets = _embedding_parts(results)
    # An open file, not a name: np.savez appends ".npz" to any name not ending in it
    # (lower case), and the suffix is matched in any case ("emb.NPZ").
    with open(path, "wb") as handle:
        np.savez(
            handle,
            path=np.array([r.path for r in results], dtype=str),
            embedding=tracks,
            window_embedding=windows,
            offsets=offsets,
            window_start_s=np.concatenate([r.window_start_s for r in results]),
        )


def _write_parquet(results: Sequence[TagResult], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tracks, windows, offsets = _embedding_parts(results)
    dim = tracks.shape[1]
    paths: list[str] = []
    levels: list[str] = []
    positions: list[int | None] = []
    starts: list[float | None] = []
    rows: list[np.ndarray] = []
    for k, result in enumerate(results):
        paths.append(result.path)
        levels.append("track")
        positions.append(None)
        starts.append(None)
        rows.append(tracks[k])
        for i in range(result.n_windows):
            paths.append(result.path)
            levels.append("window")
            positions.append(i)
            starts.append(float(result.window_start_s[i]))
            rows.append(windows[offsets[k] + i])
    values = np.stack(rows).reshape(-1) if rows else np.zeros(0, np.float32)
    table = pa.table(
        {
            "path": pa.array([utf8_safe(p) for p in paths], pa.string()),  # UTF-8 only
            "level": pa.array(levels, pa.string()),
            "window": pa.array(positions, pa.int32()),
            "start_s": pa.array(starts, pa.float64()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(values, pa.float32()), dim),
        }
    )
    pq.write_table(table, path)


#: Suffix of ``--embeddings`` -> writer ``(results, path)``.
#:
#: ``.npz``: ``path`` (n_files,), ``embedding`` (n_files, D), ``window_embedding``
#: (n_windows, D) with file ``k``'s windows at ``offsets[k]:offsets[k+1]``, ``offsets``
#: (n_files + 1,), ``window_start_s`` (n_windows,).
#: ``.parquet``: one row per track (``level="track"``, ``window`` and ``start_s`` null) and one
#: per window (``level="window"``), columns ``path, level, window, start_s, embedding``
#: (fixed-size list of D float32).
EMBEDDING_WRITERS: dict[str, Callable[[Sequence[TagResult], Path], None]] = {
    ".npz": _write_npz,
    ".parquet": _write_parquet,
}


def write_embeddings(results: Sequence[TagResult], *, path: str | Path) -> None:
    """Window and track embeddings of tagged files, in the format of ``path``'s suffix.

    Parameters
    ----------
    results : sequence of TagResult
        Tagged with ``embed=True``.
    path : str or Path
        Ends in a suffix of :data:`EMBEDDING_WRITERS` (``.npz`` or ``.parquet``).

    Raises
    ------
    ConfigError
        Unknown suffix.
    """
    path = Path(path)
    writer = EMBEDDING_WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ConfigError(
            f"embeddings file {str(path)!r}: suffix {path.suffix!r} is not one of "
            f"{sorted(EMBEDDING_WRITERS)}"
        )
    if not results:
        raise PipelineError(f"embeddings file {str(path)!r}: no file was tagged")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer(results, path)
