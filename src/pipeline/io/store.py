"""The Zarr v3 feature store of one (dataset, feature set, shard).

Layout of ``{shard}.zarr``::

    windows        float16 [n_windows, n_bins, n_frames]  one window per chunk
    offsets        int64   [n_tracks + 1]   windows of track i are offsets[i]:offsets[i+1]
    track_id       string  [n_tracks]
    window_start_s float32 [n_windows]      start of each window in its track
    duration_s     float32 [n_tracks]       decoded duration of each track
    attrs          {"features": FeatureSettings.to_dict(), "n_tracks", "n_windows", ...}

One process writes a store (the shard's ``extract_features`` job); windows are appended in
blocks that fill whole Zarr shards, so no chunk is ever rewritten. In the default layout
(uncompressed, one window per chunk, no Zarr sharding) a window's chunk is its raw
little-endian float16 bytes in the file ``windows/c/{i}/0/0``: the writer writes those files
itself and the training reader reads them itself (:func:`raw_chunk_layout`), each about 2-5x
cheaper than a request through Zarr's async machinery; the array's metadata is Zarr's own,
so any Zarr v3 reader reads the store. The writer refuses windows
that hold NaN or infinity after the cast to float16 (values beyond +-65,504 become
infinite), so no store ever holds a non-finite feature.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from pipeline.errors import ConfigError, PipelineError
from pipeline.numeric import to_float16

__all__ = [
    "StoreWriter",
    "FeatureStore",
    "WindowReader",
    "COMPRESSORS",
    "nonfinite_windows",
    "raw_chunk_layout",
    "chunk_file",
]

#: Compression choices for the windows array (log-mel barely compresses; see DATA.md).
COMPRESSORS = ("none", "lz4", "zstd")


def _codecs(compression: str) -> list[Any] | None:
    if compression == "none":
        return None
    if compression == "lz4":
        return [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]
    if compression == "zstd":
        return [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")]
    raise ConfigError(f"storage.compression: {compression!r} is not one of {list(COMPRESSORS)}")


def nonfinite_windows(windows: np.ndarray) -> np.ndarray:
    """Which windows hold a NaN or an infinite value.

    Parameters
    ----------
    windows : np.ndarray, shape (n_windows, ...)
        float16 is checked by its exponent bits (all set: NaN or infinity), ten times faster
        than ``np.isfinite`` on float16; other dtypes with ``np.isfinite``.

    Returns
    -------
    np.ndarray, shape (n_windows,), bool
    """
    windows = np.asarray(windows)
    if windows.ndim == 0 or len(windows) == 0:
        return np.zeros(len(windows) if windows.ndim else 0, dtype=bool)
    flat = windows.reshape(len(windows), -1)
    if flat.dtype == np.float16:
        bad = (flat.view(np.uint16) & 0x7C00) == 0x7C00
    else:
        bad = ~np.isfinite(flat)
    return np.asarray(bad.any(axis=1))


def _array(group: zarr.Group, name: str) -> zarr.Array:
    """The array ``name`` of ``group`` (a sub-group there is a malformed store)."""
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise PipelineError(f"{group.store_path}: {name!r} is a group, not an array")
    return node


def raw_chunk_layout(array: zarr.Array) -> bool:
    """Whether each window of ``array`` is the raw bytes of its own chunk file.

    True for the default layout: float16, one window per chunk, no sharding, the single
    little-endian ``bytes`` codec (no compression) and the default ``/``-separated chunk
    keys, so that window ``i`` is the file :func:`chunk_file` names.
    """
    meta = array.metadata
    codecs: tuple[Any, ...] = tuple(getattr(meta, "codecs", ()))
    encoding = getattr(meta, "chunk_key_encoding", None)
    first: Any = codecs[0] if len(codecs) == 1 else None
    return (
        type(first).__name__ == "BytesCodec"
        and str(getattr(first.endian, "value", first.endian)) == "little"
        and type(encoding).__name__ == "DefaultChunkKeyEncoding"
        and getattr(encoding, "separator", None) == "/"
        and tuple(array.chunks) == (1, *array.shape[1:])
        and array.dtype == np.float16
    )


def chunk_file(windows_dir: str | os.PathLike[str], row: int) -> str:
    """The chunk file of window ``row`` in a :func:`raw_chunk_layout` ``windows`` array.

    A string joined with ``os.path.join``: the training reader asks for one per window read.
    """
    return os.path.join(windows_dir, "c", str(row), "0", "0")


def _read(array: zarr.Array) -> np.ndarray:
    """All of ``array`` as a NumPy array."""
    return np.asarray(array[:])


class StoreWriter:
    """Append tracks' feature windows to a new store, in order; :meth:`close` writes the index.

    Parameters
    ----------
    path : Path
        The ``.zarr`` directory to create (an existing one is replaced).
    window_shape : tuple of int
        ``(n_bins, n_frames)`` of one window.
    attrs : mapping
        JSON-serialisable attributes (feature settings, dataset, shard).
    compression : {"none", "lz4", "zstd"}
    windows_per_shard : int
        Windows per Zarr shard file; 0 stores one file per window (no sharding). Writes are
        buffered to whole shards.
    """

    def __init__(
        self,
        *,
        path: Path,
        window_shape: tuple[int, int],
        attrs: Mapping[str, Any],
        compression: str = "none",
        windows_per_shard: int = 0,
    ) -> None:
        self.path = Path(path)
        self._group = zarr.open_group(self.path, mode="w", zarr_format=3)
        n_bins, n_frames = window_shape
        self._block = windows_per_shard if windows_per_shard > 0 else 32
        self._windows = self._group.create_array(
            "windows",
            shape=(0, n_bins, n_frames),
            chunks=(1, n_bins, n_frames),
            shards=(windows_per_shard, n_bins, n_frames) if windows_per_shard > 0 else None,
            dtype="float16",
            compressors=_codecs(compression),
            fill_value=0,
        )
        self._direct = raw_chunk_layout(self._windows)
        self._n_written = 0
        self._attrs = dict(attrs)
        self._pending: list[np.ndarray] = []
        self._n_pending = 0
        self._track_ids: list[str] = []
        self._counts: list[int] = []
        self._starts: list[np.ndarray] = []
        self._durations: list[float] = []

    def add(
        self, *, track_id: str, windows: np.ndarray, starts_s: np.ndarray, duration_s: float
    ) -> None:
        """Append one track.

        Parameters
        ----------
        track_id : str
        windows : np.ndarray, shape (n_windows, n_bins, n_frames)
        starts_s : np.ndarray, shape (n_windows,)
        duration_s : float

        Raises
        ------
        PipelineError
            The counts differ, or a window holds NaN or infinity as float16 (the track is
            not added; the store stays valid).
        """
        if len(windows) != len(starts_s):
            raise PipelineError(
                f"track {track_id!r}: {len(windows)} windows but {len(starts_s)} start times"
            )
        data = to_float16(windows)  # values beyond float16 become inf: refused below
        bad = np.flatnonzero(nonfinite_windows(data))
        if len(bad):
            raise PipelineError(
                f"track {track_id!r}: {len(bad)} of {len(data)} feature windows hold NaN or "
                f"infinity as float16 (first: window {int(bad[0])}); the track is not stored"
            )
        self._track_ids.append(str(track_id))
        self._counts.append(len(windows))
        self._starts.append(np.asarray(starts_s, dtype=np.float32))
        self._durations.append(float(duration_s))
        if self._direct:  # each window its own chunk file: nothing to buffer
            self._write_chunks(data)
            return
        self._pending.append(data)
        self._n_pending += len(windows)
        if self._n_pending >= self._block:
            self._flush(final=False)

    def _write_chunks(self, data: np.ndarray) -> None:
        """Write windows as the raw chunk files of the default layout (see the module)."""
        root = self.path / "windows"
        little = np.asarray(data, dtype="<f2")
        for window in little:
            path = chunk_file(root, self._n_written)
            os.makedirs(os.path.dirname(path))  # a new store: c/{i}/0 never exists yet
            with open(path, "wb") as f:  # noqa: PTH123 - tofile wants a file object
                window.tofile(f)
            self._n_written += 1

    def _flush(self, *, final: bool) -> None:
        if not self._pending:
            return
        data = np.concatenate(self._pending)
        n_full = len(data) if final else (len(data) // self._block) * self._block
        if n_full:
            self._windows.append(data[:n_full], axis=0)
        rest = data[n_full:]
        self._pending = [rest] if len(rest) else []
        self._n_pending = len(rest)

    def close(self) -> dict[str, int]:
        """Write the remaining windows, the per-track index and the attributes.

        Returns
        -------
        dict
            ``{"n_tracks": ..., "n_windows": ...}``
        """
        self._flush(final=True)
        offsets = np.zeros(len(self._counts) + 1, dtype=np.int64)
        np.cumsum(self._counts, out=offsets[1:])
        n_tracks, n_windows = len(self._track_ids), int(offsets[-1])
        if self._direct and n_windows:  # the chunks are on disk: the shape makes them visible
            self._windows.resize((n_windows, *self._windows.shape[1:]))
        g = self._group
        g.create_array("offsets", data=offsets, chunks=(max(len(offsets), 1),))
        ids = np.array(self._track_ids, dtype=np.dtypes.StringDType())
        g.create_array("track_id", shape=(n_tracks,), dtype=str, chunks=(max(n_tracks, 1),))
        if n_tracks:
            _array(g, "track_id")[:] = ids
        starts = np.concatenate(self._starts) if self._starts else np.zeros(0, np.float32)
        g.create_array("window_start_s", data=starts, chunks=(max(n_windows, 1),))
        g.create_array(
            "duration_s",
            data=np.asarray(self._durations, dtype=np.float32),
            chunks=(max(n_tracks, 1),),
        )
        g.attrs.update({**self._attrs, "n_tracks": n_tracks, "n_windows": n_windows})
        return {"n_tracks": n_tracks, "n_windows": n_windows}


@dataclass(frozen=True)
class FeatureStore:
    """Read access to one shard store.

    Parameters
    ----------
    path : Path
        A ``.zarr`` directory written by :class:`StoreWriter`.
    """

    path: Path

    @property
    def group(self) -> zarr.Group:
        """The open Zarr group (read-only)."""
        try:
            return zarr.open_group(self.path, mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
            raise PipelineError(f"{str(self.path)!r}: not a feature store ({exc})") from exc

    @property
    def attrs(self) -> dict[str, Any]:
        """Attributes: feature settings, counts, dataset and shard."""
        return dict(self.group.attrs)

    @property
    def windows(self) -> zarr.Array:
        """All windows, shape (n_windows, n_bins, n_frames), float16."""
        return _array(self.group, "windows")

    def index(self) -> dict[str, np.ndarray]:
        """The per-track index arrays: ``track_id``, ``offsets``, ``duration_s``."""
        g = self.group
        return {
            "track_id": np.asarray(_read(_array(g, "track_id")), dtype=object),
            "offsets": _read(_array(g, "offsets")),
            "duration_s": _read(_array(g, "duration_s")),
        }

    def window_starts(self) -> np.ndarray:
        """Start time of every window in its track, shape (n_windows,), float32 as stored."""
        return _read(_array(self.group, "window_start_s"))

    def checked_windows(self, *, features: Mapping[str, Any]) -> tuple[zarr.Array, np.ndarray]:
        """The windows array and window start times, after checking the feature settings.

        Parameters
        ----------
        features : mapping
            ``FeatureSettings.to_dict()`` the caller expects (a checkpoint's settings).

        Returns
        -------
        windows : zarr.Array, shape (n_windows, n_bins, n_frames), float16
        starts_s : np.ndarray, shape (n_windows,), float64

        Raises
        ------
        PipelineError
            The store is missing, or holds other feature settings.
        """
        group = self.group
        stored = group.attrs.get("features")
        if stored != dict(features):
            raise PipelineError(
                f"{str(self.path)!r} holds features {stored!r}, but {dict(features)!r} are expected"
            )
        starts = _read(_array(group, "window_start_s")).astype(np.float64)
        return _array(group, "windows"), starts

    def track_windows(self, *, track: int) -> np.ndarray:
        """Windows of the ``track``-th track, shape (n_windows, n_bins, n_frames), float16."""
        offsets = _array(self.group, "offsets")
        start, stop = (int(v) for v in np.asarray(offsets[track : track + 2]))
        return np.asarray(self.windows[start:stop])


class WindowReader:
    """Single windows of a store, fast: the random access of a training loader.

    A store in the default layout (uncompressed, one window per chunk, no Zarr sharding:
    ``storage.compression: none``, ``windows_per_shard: 0``) keeps window ``i`` as the raw
    little-endian float16 bytes of the Zarr v3 chunk file ``windows/c/{i}/0/0``; it is read
    with one ``np.fromfile`` (a missing chunk is the fill value), about 5x less CPU than a
    request through Zarr's async machinery. Any other layout is read through Zarr. Holds no
    open handle, so it survives a fork into DataLoader workers.

    Parameters
    ----------
    path : Path
        A ``.zarr`` store written by :class:`StoreWriter`.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        array = zarr.open_array(self.path / "windows", mode="r")
        self.shape: tuple[int, ...] = tuple(int(n) for n in array.shape)
        self._array = array
        self._fill = float(array.fill_value or 0)
        self.direct = raw_chunk_layout(array)
        self._windows_dir = os.path.join(self.path, "windows")

    def read(self, row: int, frames: slice = slice(None)) -> np.ndarray:
        """Window ``row``, frames ``frames``: shape (n_bins, n_selected_frames), float16."""
        if not self.direct:
            return np.asarray(self._array[row, :, frames])
        if not 0 <= row < self.shape[0]:
            raise IndexError(f"{str(self.path)!r}: window {row} of {self.shape[0]}")
        chunk = chunk_file(self._windows_dir, row)
        try:
            data = np.fromfile(chunk, dtype="<f2")
        except FileNotFoundError:  # never written: Zarr's fill value
            return np.full(self.shape[1:], self._fill, dtype=np.float16)[:, frames]
        if data.size != int(np.prod(self.shape[1:])):
            raise PipelineError(
                f"{str(chunk)!r}: {data.size} values, not a window of {self.shape[1:]}"
            )
        return data.reshape(self.shape[1:])[:, frames]

    def read_into(self, row: int, out: np.ndarray, *, frames: slice = slice(None)) -> None:
        """Window ``row``, frames ``frames``, written into ``out`` without a new array.

        The read of a batch loader: in the default layout a whole window goes from the chunk
        file straight into ``out`` (one ``readv``); a crop goes through a buffer this reader
        keeps, then its frames are copied.

        Parameters
        ----------
        row : int
        out : np.ndarray, shape (n_bins, n_selected_frames), float16, C-contiguous
        frames : slice
        """
        if not self.direct:
            out[...] = self._array[row, :, frames]
            return
        if not 0 <= row < self.shape[0]:
            raise IndexError(f"{str(self.path)!r}: window {row} of {self.shape[0]}")
        whole = out.shape == self.shape[1:] and frames.indices(self.shape[2]) == (
            0,
            self.shape[2],
            1,
        )
        target = out if whole and out.flags.c_contiguous else self._scratch()
        chunk = chunk_file(self._windows_dir, row)
        try:
            fd = os.open(chunk, os.O_RDONLY)
        except FileNotFoundError:  # never written: Zarr's fill value
            out[...] = self._fill
            return
        view = memoryview(cast(Any, target)).cast("B")
        try:  # one byte more than a window: a longer file is caught without a stat
            if hasattr(os, "readv"):
                n = os.readv(fd, [view, bytearray(1)])
            else:  # pragma: no cover - Windows
                with open(fd, "rb", buffering=0, closefd=False) as file:
                    n = (file.readinto(view) or 0) + len(file.read(1))
        finally:
            os.close(fd)
        if n != target.nbytes:
            raise PipelineError(
                f"{chunk!r}: {n // 2}{'+' if n > target.nbytes else ''} values, "
                f"not a window of {self.shape[1:]}"
            )
        if target is not out:
            out[...] = target[:, frames]

    def _scratch(self) -> np.ndarray:
        """A window-sized float16 buffer of this reader (per process, reused)."""
        scratch = self.__dict__.get("_scratch_buffer")
        if scratch is None:
            scratch = np.empty(self.shape[1:], dtype="<f2")
            self._scratch_buffer = scratch
        return scratch

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_array"] = None
        state.pop("_scratch_buffer", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._array = zarr.open_array(self.path / "windows", mode="r")
