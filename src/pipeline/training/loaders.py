"""What feeds the DataLoader: PyTorch datasets that read feature windows straight from the
shard stores, the epoch-seeded sampler, and the label budget.

- :class:`WindowDataset`: one item per stored window, ``(x, y, mask)``; whole windows, or
  seeded random crops inside the frames that hold audio (training of short-chunk models);
  :func:`window_loader` batches it for training.
- :class:`TrackSequenceDataset`: one item per track, its windows in order as a sequence of
  time-pooled frame vectors ``(x, y, mask)``; batch with :func:`collate_sequences`.

Both normalise with the train split's per-band statistics (``stats.json``):
``(x - mean[:, None]) / std[:, None]``, and open each Zarr array lazily, once per process (a
DataLoader worker opens its own). Windows of the default store layout are read straight
from their chunk files (:class:`pipeline.io.store.WindowReader`).

Feeding a GPU: with ``raw=True`` a :class:`WindowDataset` returns the stored float16 windows
and the number of frames that hold audio, so half as many bytes cross from the DataLoader
workers (and to the device); :meth:`WindowDataset.prepare` then normalises and zeroes the
padding on the training device, with the same float32 arithmetic (the same numbers) as the
workers would have used. :func:`window_loader` (what training uses) reads whole batches:
one call per batch in a worker (:meth:`WindowDataset.batch`), each window read from its
chunk file straight into the batch array, which lives in one of the worker's shared-memory
buffers that are reused once the main process has let go of the batch; only the buffer's
place crosses the process boundary. PyTorch's own path (an item list collated into a new
shared-memory tensor per batch, each tensor's file descriptor sent over a socket) cost
about 1 ms of CPU per whole window with 2 workers, this one under 0.1 ms, read included (see
``benchmarks/README.md``).

End padding is neutralised: the frames of a short track's last window that hold no audio
(stored at the floor value, e.g. -100 dB) are set to 0 after normalisation, the band mean.
Left at the floor, they would become a band-dependent pattern far stronger than any music
(a band with a large mean sits much higher above the floor than its neighbours), which a
convolutional tagger with max pooling picks up as a feature of every padded window. The
sequence dataset drops those frames instead. The tagger does the same given ``valid_frames``.

Label budget
------------
To chart performance against the number of labels, both datasets take

- ``label_fraction``: keep only this fraction of the split's tracks. The kept tracks are the
  ``round(fraction * n)`` with the smallest seeded hash of their ``track_id``: the choice does
  not depend on the order of the index, and smaller fractions are subsets of larger ones.
- ``tag_label_fraction``: each (track, tag) label is observed with this probability (a seeded
  hash of ``track_id`` and tag, so also stable and nested). Unobserved labels get mask 0 and
  are left out of the loss; ``y`` still holds the true label (never use it where mask is 0).

The number of labels a model was trained on is ``mask.sum()`` over the training items of
distinct tracks: ``label_budget_summary`` reports it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
import zarr
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    Sampler,
    SequentialSampler,
    get_worker_info,
)

from pipeline.errors import ConfigError, PipelineError
from pipeline.features.index import split_tracks
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import (
    audio_frames,
    hop_frames,
    middle_block,
    normaliser,
    pool_sequence,
)
from pipeline.io.store import WindowReader

try:  # zarr's own runner of coroutines on its I/O loop (what zarr.Array uses)
    from zarr.core.sync import sync as _zarr_sync
except ImportError:  # pragma: no cover - another zarr layout: read one window at a time
    _zarr_sync = None  # type: ignore[assignment]


__all__ = [
    "WindowDataset",
    "WindowBatches",
    "window_loader",
    "TrackSequenceDataset",
    "EpochShuffler",
    "collate_sequences",
    "select_tracks",
    "label_mask",
    "label_budget_summary",
    "seed_worker",
]


def _unit_hash(keys: Sequence[str], *, seed: int, salt: str) -> np.ndarray:
    """A seeded 64-bit hash of each key, as uint64, shape (n,)."""
    out = np.empty(len(keys), dtype=np.uint64)
    for i, key in enumerate(keys):
        digest = hashlib.blake2b(f"{seed}\x1f{salt}\x1f{key}".encode(), digest_size=8).digest()
        out[i] = np.frombuffer(digest, dtype="<u8")[0]
    return out


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a well-mixed uint64 from a uint64 (wrapping arithmetic)."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _to_unit(x: np.ndarray) -> np.ndarray:
    """uint64 -> float64 in [0, 1)."""
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _check_fraction(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ConfigError(f"{name}: {value!r} must be a number in (0, 1]")


def select_tracks(track_ids: Sequence[str], *, fraction: float, seed: int) -> np.ndarray:
    """Which tracks a label budget keeps (see the module docstring).

    Parameters
    ----------
    track_ids : sequence of str, length n
    fraction : float
        In (0, 1]; ``round(fraction * n)`` tracks are kept (at least 1 when n > 0).
    seed : int

    Returns
    -------
    np.ndarray of bool, shape (n,)
    """
    _check_fraction("label_fraction", fraction)
    n = len(track_ids)
    keep = np.zeros(n, dtype=bool)
    if n == 0 or fraction >= 1:
        keep[:] = True
        return keep
    n_keep = max(1, int(round(fraction * n)))
    keys = _unit_hash([str(t) for t in track_ids], seed=seed, salt="tracks")
    order = np.lexsort((np.asarray(track_ids, dtype=object).astype(str), keys))
    keep[order[:n_keep]] = True
    return keep


def label_mask(
    track_ids: Sequence[str], tags: Sequence[str], *, fraction: float, seed: int
) -> np.ndarray:
    """Which (track, tag) labels a label budget observes (see the module docstring).

    Parameters
    ----------
    track_ids : sequence of str, length n
    tags : sequence of str, length n_tags
    fraction : float
        In (0, 1]: the probability that a label is observed.
    seed : int

    Returns
    -------
    np.ndarray, shape (n, n_tags), float32
        1 for observed labels, 0 for hidden ones.
    """
    _check_fraction("tag_label_fraction", fraction)
    if fraction >= 1:
        return np.ones((len(track_ids), len(tags)), dtype=np.float32)
    track_keys = _unit_hash([str(t) for t in track_ids], seed=seed, salt="labels")
    tag_keys = _unit_hash([str(t) for t in tags], seed=seed, salt="tags")
    u = _to_unit(_mix64(track_keys[:, None] ^ _mix64(tag_keys)[None, :]))  # (n, n_tags)
    return (u < fraction).astype(np.float32)


def label_budget_summary(dataset: WindowDataset | TrackSequenceDataset) -> dict[str, Any]:
    """Tracks and observed labels (positives and negatives) a dataset trains on.

    Returns
    -------
    dict
        ``n_tracks``, ``n_labels`` (observed (track, tag) pairs), ``n_positive_labels``,
        ``label_fraction``, ``tag_label_fraction``.
    """
    return {
        "n_tracks": int(len(dataset.tracks)),
        "n_labels": int(dataset.masks.sum()),
        "n_positive_labels": int((dataset.masks * dataset.labels).sum()),
        "label_fraction": dataset.label_fraction,
        "tag_label_fraction": dataset.tag_label_fraction,
    }


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed.

    PyTorch seeds each worker's torch generator with ``base_seed + worker_id``, where
    ``base_seed`` comes from the DataLoader's ``generator``; this extends that seed to the
    other generators a transform might use. (The datasets here draw their crops from a
    per-item seeded generator, so they do not depend on it.)
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002  (the legacy global generator is what it seeds)
    random.seed(seed)


class EpochShuffler(Sampler[int]):
    """A shuffling sampler whose order is a pure function of ``(seed, epoch)``.

    Unlike ``shuffle=True`` with a DataLoader ``generator``, the order does not depend on
    how many numbers the loader drew before (persistent workers draw fewer), so an epoch's
    batches are the same with any ``num_workers`` and after a resumption.

    Parameters
    ----------
    n : int
        Items of the dataset.
    seed : int
    """

    def __init__(self, n: int, *, seed: int) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` from the next iteration on."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        seed = np.random.SeedSequence([self.seed, self.epoch]).generate_state(1, np.uint64)[0]
        generator = torch.Generator().manual_seed(int(seed) & (2**63 - 1))
        return iter(torch.randperm(self.n, generator=generator).tolist())


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


class _StoreDataset(Dataset):
    """What both datasets share: the split's tracks, labels, masks, stats and lazy arrays."""

    def __init__(
        self,
        *,
        index: pd.DataFrame,
        stats: Mapping[str, Any],
        tags: Sequence[str],
        split: str,
        seed: int,
        label_fraction: float,
        tag_label_fraction: float,
    ) -> None:
        tracks = split_tracks(index, split=split)
        keep = select_tracks(list(tracks["track_id"]), fraction=label_fraction, seed=seed)
        self.tracks = tracks[keep].reset_index(drop=True)
        self.tags = [str(t) for t in tags]
        self.split = split
        self.seed = int(seed)
        # In shared memory, so that persistent DataLoader workers see set_epoch().
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.label_fraction = float(label_fraction)
        self.tag_label_fraction = float(tag_label_fraction)

        position = {tag: k for k, tag in enumerate(self.tags)}
        labels = np.zeros((len(self.tracks), len(self.tags)), dtype=np.float32)
        for i, track_tags in enumerate(self.tracks["tags"]):
            for tag in track_tags if track_tags is not None else ():
                if tag in position:  # tags outside ``tags`` (a smaller vocabulary) are ignored
                    labels[i, position[tag]] = 1.0
        self.labels = labels  # (n_tracks, n_tags)
        self.masks = label_mask(
            list(self.tracks["track_id"]), self.tags, fraction=tag_label_fraction, seed=seed
        )  # (n_tracks, n_tags)

        self.stores = sorted(set(self.tracks["store"].astype(str)))
        self.features = self._common_features()
        self.n_bins, self.n_frames = self._window_shape()
        self.mean, self.inv_std = normaliser(stats, n_bins=self.n_bins)  # (n_bins, 1) each
        self._mean_t, self._inv_std_t = torch.from_numpy(self.mean), torch.from_numpy(self.inv_std)
        self._arrays: dict[int, zarr.Array] = {}
        self._readers: dict[int, WindowReader] = {}
        self._device_stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._pid = os.getpid()

    def _common_features(self) -> FeatureSettings:
        """The feature settings every store of the split shares (else an error)."""
        settings: dict[str, Any] | None = None
        for store in self.stores:
            try:
                attrs = dict(zarr.open_group(store, mode="r").attrs)
            except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
                raise PipelineError(f"{store!r}: not a feature store ({exc})") from exc
            if "features" not in attrs:
                raise PipelineError(f"{store!r}: no 'features' attribute (not a feature store)")
            if settings is None:
                settings = cast(dict[str, Any], attrs["features"])
            elif attrs["features"] != settings:
                raise PipelineError(
                    f"{store!r} has feature settings {attrs['features']!r}, unlike "
                    f"{self.stores[0]!r} ({settings!r})"
                )
        assert settings is not None
        return FeatureSettings.from_dict(settings)

    def _window_shape(self) -> tuple[int, int]:
        shape = zarr.open_array(f"{self.stores[0]}/windows", mode="r").shape
        return int(shape[1]), int(shape[2])

    def _window_starts(self, store: str) -> np.ndarray:
        starts = cast(np.ndarray, zarr.open_array(f"{store}/window_start_s", mode="r")[:])
        return starts.astype(np.float64)

    def reader(self, store_id: int) -> WindowReader:
        """The window reader of ``self.stores[store_id]``, built once per process."""
        if self._pid != os.getpid():  # a forked worker: do not share the parent's handles
            self._arrays, self._readers, self._pid = {}, {}, os.getpid()
        reader = self._readers.get(store_id)
        if reader is None:
            reader = WindowReader(Path(self.stores[store_id]))
            self._readers[store_id] = reader
        return reader

    def array(self, store_id: int) -> zarr.Array:
        """The ``windows`` array of ``self.stores[store_id]``, opened once per process."""
        if self._pid != os.getpid():  # a forked worker: do not share the parent's handles
            self._arrays, self._readers, self._pid = {}, {}, os.getpid()
        arr = self._arrays.get(store_id)
        if arr is None:
            arr = zarr.open_array(f"{self.stores[store_id]}/windows", mode="r")
            self._arrays[store_id] = arr
        return arr

    def normalise(self, windows: np.ndarray) -> torch.Tensor:
        """(..., n_bins, frames) stored dB -> float32 normalised features (a new tensor).

        Single-threaded torch (DataLoader workers) converts float16 about 8x faster than
        numpy (0.07 vs 0.6 ms per 96 x 1,819 window); with an intra-op thread pool (the main
        process) torch is slower than numpy on small arrays, so numpy does it there.
        """
        if torch.get_num_threads() == 1:
            x = torch.from_numpy(np.ascontiguousarray(windows)).to(torch.float32)
            return x.sub_(self._mean_t).mul_(self._inv_std_t)
        y = windows.astype(np.float32)
        y -= self.mean
        y *= self.inv_std
        return torch.from_numpy(y)

    @property
    def epoch(self) -> int:
        """The epoch that seeds the random crops (or sequence blocks)."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops (or sequence blocks) drawn for each item.

        Call it before iterating a DataLoader over the dataset; the value lives in shared
        memory, so persistent workers see it too.
        """
        self._epoch.fill_(int(epoch))

    def _rng(self, item: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(item)])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_arrays"], state["_readers"], state["_device_stats"] = {}, {}, {}
        state.pop("_pool", None)
        return state


class WindowDataset(_StoreDataset):
    """One item per stored window of a split's tracks.

    Parameters
    ----------
    index : pd.DataFrame
        The feature set's ``index.parquet`` (``track_id, store, start, stop, split, tags``).
    stats : mapping
        ``{"mean": [...], "std": [...]}``, one value per band (train split).
    tags : sequence of str
        The vocabulary, in output order.
    split : str
        ``"train"``, ``"valid"`` or ``"test"``.
    crop_frames : int, optional
        With ``train``, return a random crop of this many frames per window, inside the
        frames that hold audio when the window has at least that many (else from frame 0).
        Without ``train``, whole windows are returned (evaluate crops with
        :func:`crop_starts`).
    seed : int
        Seeds the crops (per item and epoch: :meth:`set_epoch`) and the label budget.
    train : bool
    label_fraction, tag_label_fraction : float
        The label budget (see the module docstring); 1 keeps every label.
    raw : bool
        Items hold the stored float16 windows, not normalised, and the frames holding audio;
        normalise batches on the training device with :meth:`prepare`.

    Notes
    -----
    Items are ``(x, y, mask)``: ``x`` float32 of shape (n_bins, crop_frames or n_frames),
    ``y`` and ``mask`` float32 of shape (n_tags,). With ``raw``, ``(x, y, mask, n_audio)``:
    ``x`` float16 as stored, ``n_audio`` an int64 scalar, the leading frames of ``x`` that
    hold audio (the rest is end padding). The same item in the same epoch always
    gives the same crop, whatever the worker, so training is reproducible and resumable.
    Arrays per item (``item_track``, ``rows``, ``starts_s``, ``valid_frames``) map items back
    to tracks.
    """

    def __init__(
        self,
        *,
        index: pd.DataFrame,
        stats: Mapping[str, Any],
        tags: Sequence[str],
        split: str,
        crop_frames: int | None = None,
        seed: int = 0,
        train: bool,
        label_fraction: float = 1.0,
        tag_label_fraction: float = 1.0,
        raw: bool = False,
    ) -> None:
        super().__init__(
            index=index,
            stats=stats,
            tags=tags,
            split=split,
            seed=seed,
            label_fraction=label_fraction,
            tag_label_fraction=tag_label_fraction,
        )
        self.raw = bool(raw)
        if crop_frames is not None and not 1 <= crop_frames <= self.n_frames:
            raise ConfigError(
                f"crop_frames: {crop_frames!r} must be in 1..{self.n_frames} (frames per window)"
            )
        self.crop_frames = crop_frames
        self.train = bool(train)
        store_id = {store: k for k, store in enumerate(self.stores)}
        counts = (self.tracks["stop"] - self.tracks["start"]).to_numpy(np.int64)
        self.item_track = np.repeat(np.arange(len(self.tracks)), counts)  # (n_items,)
        self.item_store = np.repeat(self.tracks["store"].map(store_id).to_numpy(), counts)
        self.rows = np.concatenate(
            [
                np.arange(a, b)
                for a, b in zip(self.tracks["start"], self.tracks["stop"], strict=True)
            ]
        ).astype(np.int64)
        starts = np.zeros(len(self.rows), dtype=np.float64)
        for store, k in store_id.items():
            here = self.item_store == k
            starts[here] = self._window_starts(store)[self.rows[here]]
        self.starts_s = starts  # (n_items,)
        durations = self.tracks["duration_s"].to_numpy(np.float64)[self.item_track]
        self.valid_frames = audio_frames(
            starts_s=starts, duration_s=durations, features=self.features
        )  # (n_items,)

    def __len__(self) -> int:
        return len(self.rows)

    def _crop_start(self, item: int) -> int:
        """First frame of the item's crop (0 without cropping)."""
        if not (self.train and self.crop_frames is not None):
            return 0
        valid = int(self.valid_frames[item])
        return int(self._rng(item).integers(0, max(valid - self.crop_frames, 0) + 1))

    def __getitem__(self, item: int) -> tuple[torch.Tensor, ...]:
        return self.__getitems__([item])[0]

    def __getitems__(self, items: Sequence[int]) -> list[tuple[torch.Tensor, ...]]:
        """A batch as a list of items (what a DataLoader with ``batch_size`` calls).

        :func:`window_loader` reads whole batches instead (:meth:`batch`).
        """
        batch = self.batch(items)
        return [tuple(part[k] for part in batch) for k in range(len(items))]

    def _read(self, items: Sequence[int], out: np.ndarray) -> np.ndarray:
        """Read the windows (or crops) of ``items`` into ``out``; the audio frames of each.

        Parameters
        ----------
        items : sequence of int, length n
        out : np.ndarray, shape (>= n, n_bins, frames), float16

        Returns
        -------
        np.ndarray of int64, shape (n,): leading frames of each that hold audio.
        """
        starts = [self._crop_start(i) for i in items]
        width = out.shape[-1]
        readers = [self.reader(int(self.item_store[i])) for i in items]
        if all(r.direct for r in readers):
            for b, (reader, i, a) in enumerate(zip(readers, items, starts, strict=True)):
                reader.read_into(int(self.rows[i]), out[b], frames=slice(a, a + width))
        else:  # one batched request to Zarr (concurrent chunk reads)
            selections = [
                (int(self.rows[i]), slice(None), slice(a, a + width))
                for i, a in zip(items, starts, strict=True)
            ]
            arrays = [self.array(int(self.item_store[i])) for i in items]
            for b, window in enumerate(_read_many(arrays, selections)):
                out[b] = window
        n_audio = self.valid_frames[np.asarray(items, dtype=np.int64)] - np.asarray(starts)
        return np.maximum(n_audio, 0).astype(np.int64)

    def batch(self, items: Sequence[int], *, buffers: int = 0) -> tuple[torch.Tensor, ...]:
        """Items ``items`` as one batch, read straight into its array (no collation).

        Returns
        -------
        tuple of Tensor
            ``(x, y, mask)`` with ``x`` float32 (n, n_bins, frames), or with ``raw``
            ``(x, y, mask, n_audio)``: ``x`` float16 as stored, ``n_audio`` int64 (n,).
            ``y``, ``mask``: float32 (n, n_tags).

        Parameters
        ----------
        items : sequence of int, length n
        buffers : int
            In a DataLoader worker (what :func:`window_loader` asks for): write a raw ``x``
            into one of at most ``buffers`` reused shared-memory buffers of the worker
            (:class:`_BatchPool`); only its place crosses to the main process, which
            unpickles it as the tensors above. 0: a new array per batch.
        """
        items = [int(i) for i in items]
        width = self.crop_frames if self.train and self.crop_frames is not None else self.n_frames
        shape = (len(items), self.n_bins, width)
        tracks = self.item_track[np.asarray(items, dtype=np.int64)]
        y, mask = self.labels[tracks], self.masks[tracks]  # (n, n_tags) each, new arrays
        pool = self._batch_pool(buffers) if self.raw and buffers > 0 else None
        slot = pool.take(shape) if pool is not None else None
        if slot is not None:
            assert pool is not None
            try:
                n_audio = self._read(items, pool.buffer(slot))
            except BaseException:
                pool.release(slot)
                raise
            batch = _PooledBatch(pool, slot, len(items), y, mask, n_audio)
            return cast(tuple[torch.Tensor, ...], batch)
        x = np.empty(shape, dtype=np.float16)
        n_audio = self._read(items, x)
        y_t, mask_t = torch.from_numpy(y), torch.from_numpy(mask)
        if self.raw:
            return torch.from_numpy(x), y_t, mask_t, torch.from_numpy(n_audio)
        out = self.normalise(x)  # (n, n_bins, frames) float32
        for b in np.flatnonzero(n_audio < shape[-1]).tolist():
            out[b, :, int(n_audio[b]) :] = 0.0  # padding -> band mean
        return out, y_t, mask_t

    def _batch_pool(self, size: int) -> _BatchPool | None:
        """This worker process's pool of shared batch buffers (None outside a worker)."""
        if get_worker_info() is None:
            return None
        pool = self.__dict__.get("_pool")
        if pool is None or pool.pid != os.getpid():
            pool = _BatchPool(size=size)
            self._pool = pool
        return cast(_BatchPool, pool)

    def prepare(
        self, x: torch.Tensor, n_audio: torch.Tensor, *, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """A ``raw`` batch, normalised on ``device``, padding set to 0 (the band mean).

        Parameters
        ----------
        x : Tensor, shape (batch, n_bins, frames), float16 (stored dB)
        n_audio : Tensor, shape (batch,), int64
            Leading frames of each window that hold audio.
        device : torch.device or str

        Returns
        -------
        Tensor, shape (batch, n_bins, frames), float32 on ``device``; equal to the items
        of the same dataset without ``raw``.
        """
        device = torch.device(device)
        stats = self._device_stats.get(str(device))
        if stats is None:
            stats = (self._mean_t.to(device), self._inv_std_t.to(device))
            self._device_stats[str(device)] = stats
        mean, inv_std = stats
        out = x.to(device, non_blocking=True).to(torch.float32)
        out.sub_(mean).mul_(inv_std)
        if device.type == "cpu":  # a slice per padded window: 4x cheaper than a mask here
            for b in torch.nonzero(n_audio < out.shape[-1]).flatten().tolist():
                out[b, :, int(n_audio[b]) :] = 0.0
            return out
        frames = torch.arange(out.shape[-1], device=device)  # one kernel, no host sync
        padding = frames[None, None, :] >= n_audio.to(device, non_blocking=True)[:, None, None]
        return out.masked_fill_(padding, 0.0)


def _read_many(arrays: Sequence[zarr.Array], selections: Sequence[tuple]) -> list[np.ndarray]:
    """``arrays[k][selections[k]]`` for every k, as concurrent reads in one Zarr request."""
    if _zarr_sync is None or len(arrays) == 1:
        return [cast(np.ndarray, arr[sel]) for arr, sel in zip(arrays, selections, strict=True)]

    async def gather() -> list[np.ndarray]:
        reads = (arr.async_array.getitem(sel) for arr, sel in zip(arrays, selections, strict=True))
        return cast(list[np.ndarray], list(await asyncio.gather(*reads)))

    return _zarr_sync(gather())


# --------------------------------------------------------------------------------------------
# Whole batches from worker processes
# --------------------------------------------------------------------------------------------


class _BatchPool:
    """A DataLoader worker's shared-memory batch buffers, reused once they are released.

    PyTorch sends each tensor a worker returns as a new shared-memory file: the worker
    allocates and faults in a fresh 5.6 MB segment per batch of 16 whole windows, and the
    main process receives a file descriptor over a socket per tensor and maps it again. Here
    a worker writes each batch into one of its own buffers instead; a buffer crosses to the
    main process once (with the first batch written into it), later batches send only
    ``(pool key, slot)``. The main process marks a slot free (``flags[slot] = 0``) when the
    last tensor viewing that batch is freed (:func:`_receive_batch`), so a batch the consumer
    keeps is never overwritten; with no free slot and ``size`` buffers in use the worker
    falls back to PyTorch's own transfer. Buffers are created when needed: as many as the
    batches in flight plus those the consumer holds (``prefetch_factor + 2`` by default).

    Parameters
    ----------
    size : int
        Most buffers.
    """

    def __init__(self, *, size: int) -> None:
        self.pid = os.getpid()
        self.key = f"{self.pid}-{uuid.uuid4().hex}"
        self.size = int(size)
        self.flags = torch.zeros(self.size, dtype=torch.int32).share_memory_()
        self._flags = self.flags.numpy()  # 1: written, not yet released by the main process
        self.buffers: list[torch.Tensor] = []  # (batch, n_bins, frames) float16, shared
        self.sent: list[bool] = []  # slot k has crossed to the main process
        self.flags_sent = False

    def take(self, shape: tuple[int, int, int]) -> int | None:
        """A free slot holding at least ``shape`` (a new one if none), marked in use."""
        for slot, buf in enumerate(self.buffers):
            if self._flags[slot] == 0 and buf.shape[0] >= shape[0] and buf.shape[1:] == shape[1:]:
                self._flags[slot] = 1
                return slot
        if len(self.buffers) >= self.size:
            return None
        self.buffers.append(torch.empty(shape, dtype=torch.float16).share_memory_())
        self.sent.append(False)
        self._flags[len(self.buffers) - 1] = 1
        return len(self.buffers) - 1

    def release(self, slot: int) -> None:
        """Slot ``slot`` is free again (its batch was never sent)."""
        self._flags[slot] = 0

    def buffer(self, slot: int) -> np.ndarray:
        """Slot ``slot`` as an array, shape (batch, n_bins, frames), float16."""
        return self.buffers[slot].numpy()


class _PooledBatch:
    """A worker's batch in a pool slot; unpickled in the main process as tensors."""

    def __init__(
        self,
        pool: _BatchPool,
        slot: int,
        n: int,
        y: np.ndarray,
        mask: np.ndarray,
        n_audio: np.ndarray,
    ) -> None:
        self.pool, self.slot, self.n = pool, slot, n
        self.y, self.mask, self.n_audio = y, mask, n_audio

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        pool = self.pool
        flags = None if pool.flags_sent else pool.flags
        buffer = None if pool.sent[self.slot] else pool.buffers[self.slot]
        pool.flags_sent = True
        pool.sent[self.slot] = True
        args = (pool.key, self.slot, flags, buffer, self.n, self.y, self.mask, self.n_audio)
        return _receive_batch, args


#: Main process: pool key -> (release flags, {slot: buffer array}).
_RECEIVED: dict[str, tuple[np.ndarray, dict[int, np.ndarray]]] = {}


def _release(flags: np.ndarray, slot: int) -> None:
    flags[slot] = 0


def _forget_dead_pools() -> None:
    """Drop the buffers of pools whose worker process has exited."""
    for key in list(_RECEIVED):
        try:
            os.kill(int(key.split("-")[0]), 0)
        except ProcessLookupError:
            del _RECEIVED[key]
        except (PermissionError, ValueError):
            pass


def _receive_batch(
    key: str,
    slot: int,
    flags: torch.Tensor | None,
    buffer: torch.Tensor | None,
    n: int,
    y: np.ndarray,
    mask: np.ndarray,
    n_audio: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Main process: a pooled batch as ``(x, y, mask, n_audio)`` tensors.

    ``x`` views the worker's shared buffer through a new numpy view that only this tensor's
    storage holds: when the last tensor (or view) of ``x`` is freed, the view dies and the
    slot is released for the worker to reuse.
    """
    pool = _RECEIVED.get(key)
    if pool is None:
        if flags is None:
            raise PipelineError(f"batch pool {key!r}: a batch arrived before its pool")
        _forget_dead_pools()
        pool = _RECEIVED[key] = (flags.numpy(), {})
    release_flags, buffers = pool
    if buffer is not None:
        buffers[slot] = buffer.numpy()
    view = buffers[slot][:n]  # a new array object, owned by the tensor below only
    finalizer = weakref.finalize(view, _release, release_flags, slot)
    finalizer.atexit = False
    x = torch.from_numpy(view)
    return x, torch.from_numpy(y), torch.from_numpy(mask), torch.from_numpy(n_audio)


class WindowBatches(Dataset):
    """The batches of a :class:`WindowDataset`: item ``[i, j, ...]`` is the batch of those
    items (:meth:`WindowDataset.batch`), read by one call in one worker.

    Use with ``DataLoader(batch_size=None, sampler=BatchSampler(...))``: :func:`window_loader`.

    Parameters
    ----------
    dataset : WindowDataset
    buffers : int
        Shared batch buffers per worker process (:meth:`WindowDataset.batch`).
    """

    def __init__(self, dataset: WindowDataset, *, buffers: int) -> None:
        self.dataset = dataset
        self.buffers = int(buffers)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, items: Sequence[int]) -> tuple[torch.Tensor, ...]:
        return self.dataset.batch(items, buffers=self.buffers)


def _as_is(batch: Any) -> Any:
    """The collate function of :func:`window_loader`: batches are built by the dataset."""
    return batch


def window_loader(
    dataset: WindowDataset,
    *,
    batch_size: int,
    num_workers: int,
    sampler: Sampler[int] | None = None,
    drop_last: bool = False,
    pin_memory: bool = False,
    prefetch_factor: int = 4,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader of whole batches of ``dataset``, as training uses it.

    Each batch is read by one call (:meth:`WindowDataset.batch`) straight into its array; with
    workers (persistent, ``prefetch_factor`` batches each in flight), raw batches stay in
    the workers' shared buffers (:class:`_BatchPool`). The batches are those of
    ``DataLoader(dataset, batch_size=..., sampler=..., drop_last=...)``: the same items in
    the same order, the same crops, whatever ``num_workers``.

    Parameters
    ----------
    dataset : WindowDataset
    batch_size : int
    num_workers : int
        Worker processes; 0 reads in the calling process.
    sampler : Sampler of int, optional
        The order of the items (e.g. :class:`EpochShuffler`); default: in order.
    drop_last : bool
        Drop a last, shorter batch.
    pin_memory : bool
        Copy batches into page-locked memory (for a CUDA device).
    prefetch_factor : int
        Batches in flight per worker.
    seed : int
        Seeds the workers' generators (:func:`seed_worker`); results do not depend on it.

    Returns
    -------
    DataLoader
        Yields ``dataset.batch`` tuples: with ``raw``, ``(x, y, mask, n_audio)``.
    """
    batches = BatchSampler(
        sampler if sampler is not None else SequentialSampler(dataset),
        batch_size=batch_size,
        drop_last=drop_last,
    )
    workers: dict[str, Any] = {}
    if num_workers > 0:
        # Persistent workers: starting them costs more than a small epoch takes to load.
        workers = {"prefetch_factor": prefetch_factor, "persistent_workers": True}
    return DataLoader(
        # Buffers per worker: its batches in flight, plus one being consumed and one more
        # (the pin-memory thread's, or a batch a consumer keeps a step longer).
        WindowBatches(dataset, buffers=prefetch_factor + 2),
        batch_size=None,
        sampler=batches,
        num_workers=num_workers,
        collate_fn=_as_is,
        pin_memory=pin_memory,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
        **workers,
    )


class TrackSequenceDataset(_StoreDataset):
    """One item per track: its windows in order, padding dropped, frames pooled in time.

    Parameters
    ----------
    index, stats, tags, split, seed, label_fraction, tag_label_fraction
        As :class:`WindowDataset`.
    pool_frames : int
        Consecutive frames averaged into one sequence step (16 frames of hop 256 at 16 kHz
        is 0.256 s; a 29.1 s window becomes 114 steps).
    max_windows : int
        Longest sequence in windows. A longer track contributes ``max_windows`` consecutive
        windows: the middle ones, or (``train``) a block at a seeded random position.
    train : bool

    Notes
    -----
    Items are ``(x, y, mask)``: ``x`` float32 of shape (time, n_bins), time varying per
    track; batch them with :func:`collate_sequences`.
    """

    def __init__(
        self,
        *,
        index: pd.DataFrame,
        stats: Mapping[str, Any],
        tags: Sequence[str],
        split: str,
        pool_frames: int = 16,
        max_windows: int = 10,
        seed: int = 0,
        train: bool = False,
        label_fraction: float = 1.0,
        tag_label_fraction: float = 1.0,
    ) -> None:
        super().__init__(
            index=index,
            stats=stats,
            tags=tags,
            split=split,
            seed=seed,
            label_fraction=label_fraction,
            tag_label_fraction=tag_label_fraction,
        )
        for name, value in (("pool_frames", pool_frames), ("max_windows", max_windows)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: {value!r} must be an integer >= 1")
        self.pool_frames = pool_frames
        self.max_windows = max_windows
        self.train = bool(train)
        self.hop_frames = hop_frames(self.features)
        store_id = {store: k for k, store in enumerate(self.stores)}
        self.track_store = self.tracks["store"].map(store_id).to_numpy()
        self._starts = {k: self._window_starts(store) for store, k in store_id.items()}

    def __len__(self) -> int:
        return len(self.tracks)

    def window_block(self, item: int) -> tuple[int, int]:
        """Rows ``start:stop`` of the store's windows that item ``item`` reads."""
        start = int(self.tracks["start"].iat[item])
        stop = int(self.tracks["stop"].iat[item])
        extra = stop - start - self.max_windows
        if extra > 0 and self.train:
            offset = int(self._rng(item).integers(0, extra + 1))
            return start + offset, start + offset + self.max_windows
        lo, hi = middle_block(stop - start, max_windows=self.max_windows)
        return start + lo, start + hi

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        store = int(self.track_store[item])
        start, stop = self.window_block(item)
        windows = cast(np.ndarray, self.array(store)[start:stop])  # (n_windows, n_bins, n_frames)
        valid = audio_frames(
            starts_s=self._starts[store][start:stop],
            duration_s=float(self.tracks["duration_s"].iat[item]),
            features=self.features,
        )
        x = pool_sequence(
            self.normalise(windows).numpy(),
            valid_frames=valid,
            hop_frames=self.hop_frames,
            pool_frames=self.pool_frames,
        )  # (time, n_bins)
        return (
            torch.from_numpy(x),
            torch.from_numpy(self.labels[item]),
            torch.from_numpy(self.masks[item]),
        )


def collate_sequences(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a batch of sequences with zeros at the end.

    Parameters
    ----------
    batch : sequence of (x (time_i, n_bins), y (n_tags,), mask (n_tags,))

    Returns
    -------
    x : Tensor, shape (batch, max time, n_bins)
    y : Tensor, shape (batch, n_tags)
    mask : Tensor, shape (batch, n_tags)
    lengths : Tensor of int64, shape (batch,)
        Steps of each sequence before padding.
    """
    lengths = torch.tensor([len(item[0]) for item in batch], dtype=torch.int64)
    x = torch.nn.utils.rnn.pad_sequence([item[0] for item in batch], batch_first=True)
    y = torch.stack([item[1] for item in batch])
    mask = torch.stack([item[2] for item in batch])
    return x, y, mask, lengths
