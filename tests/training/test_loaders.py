"""Torch datasets over shard stores (:mod:`pipeline.training.loaders`): windows, crops,
sequences, normalisation, the epoch shuffler and the label budget.

On the stores of :func:`tests.helpers.synthetic.build_synthetic` (fixture ``synthetic``):
tag ``low`` is a loud tone in band 3, tag ``high`` a tone in band 11, over quiet noise;
short tracks end in floor-valued padding, as the feature stage writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.errors import ConfigError, PipelineError
from pipeline.features.windows import audio_frames
from pipeline.training.loaders import (
    _RECEIVED,
    EpochShuffler,
    TrackSequenceDataset,
    WindowDataset,
    collate_sequences,
    label_budget_summary,
    label_mask,
    select_tracks,
    window_loader,
)
from tests.helpers.synthetic import (
    FLOOR,
    N_BINS,
    N_FRAMES,
    SETTINGS,
    TAGS,
    WINDOW,
    build_synthetic,
)


def _raw_windows(data: dict, split: str) -> list[tuple[str, np.ndarray, float]]:
    """(track_id, windows float32, duration) of a split, read directly."""
    import zarr

    out = []
    index = data["index"]
    for row in index[index["split"] == split].itertuples():
        arr = zarr.open_array(f"{row.store}/windows", mode="r")
        out.append((row.track_id, arr[row.start : row.stop].astype(np.float32), row.duration_s))
    return out


def test_window_dataset_items_are_normalised_windows(synthetic: dict) -> None:
    ds = WindowDataset(
        index=synthetic["index"],
        stats=synthetic["stats"],
        tags=TAGS,
        split="valid",
        train=False,
    )
    raw = _raw_windows(synthetic, "valid")
    assert len(ds) == sum(len(w) for _, w, _ in raw)
    mean = np.asarray(synthetic["stats"]["mean"], dtype=np.float32)[:, None]
    std = np.asarray(synthetic["stats"]["std"], dtype=np.float32)[:, None]
    expected = np.concatenate([w for _, w, _ in raw])
    for item in range(len(ds)):
        x, y, mask = ds[item]
        assert x.dtype == torch.float32 and x.shape == (N_BINS, N_FRAMES)
        valid = ds.valid_frames[item]
        assert (expected[item][:, valid:] == FLOOR).all()
        assert (expected[item][:, :valid] > FLOOR).all()
        normalised = (expected[item] - mean) / std
        normalised[:, valid:] = 0.0  # end padding becomes the band mean
        np.testing.assert_allclose(x.numpy(), normalised, rtol=1e-5, atol=1e-4)
        track = ds.tracks.iloc[ds.item_track[item]]
        assert y.tolist() == [float(t in list(track["tags"])) for t in TAGS]
        assert mask.tolist() == [1.0, 1.0]
    # Normalised train windows: each band about mean 0 / std 1 over the audio frames.
    train = WindowDataset(
        index=synthetic["index"], stats=synthetic["stats"], tags=TAGS, split="train", train=False
    )
    frames = np.concatenate(
        [train[i][0].numpy()[:, : train.valid_frames[i]] for i in range(len(train))], axis=1
    )
    np.testing.assert_allclose(frames.mean(axis=1), 0.0, atol=1e-2)
    np.testing.assert_allclose(frames.std(axis=1), 1.0, atol=1e-2)


def test_random_crops_stay_in_audio_and_are_seeded(synthetic: dict) -> None:
    kwargs = {
        "index": synthetic["index"],
        "stats": synthetic["stats"],
        "tags": TAGS,
        "split": "train",
        "crop_frames": 16,
        "train": True,
    }
    ds = WindowDataset(**kwargs, seed=3)
    full = WindowDataset(**{**kwargs, "train": False}, seed=3)
    hits_padding = 0
    for item in range(len(ds)):
        x = ds[item][0].numpy()
        assert x.shape == (N_BINS, 16)
        whole = full[item][0].numpy()
        starts = [s for s in range(N_FRAMES - 16 + 1) if np.array_equal(whole[:, s : s + 16], x)]
        assert starts, "a crop is a slice of its window"
        if ds.valid_frames[item] >= 16:
            assert starts[0] + 16 <= ds.valid_frames[item]
        hits_padding += int((x[:, -1] == 0).all())
    assert hits_padding == sum(int(v < 16) for v in ds.valid_frames)
    again = WindowDataset(**kwargs, seed=3)
    assert all(torch.equal(ds[i][0], again[i][0]) for i in range(len(ds)))
    again.set_epoch(1)
    assert not all(torch.equal(ds[i][0], again[i][0]) for i in range(len(ds)))


def test_loader_with_workers_matches_single_process(synthetic: dict) -> None:
    ds = WindowDataset(
        index=synthetic["index"],
        stats=synthetic["stats"],
        tags=TAGS,
        split="train",
        crop_frames=16,
        train=True,
    )
    ds.array(0)  # open a store in the parent: workers must not reuse its handle
    epochs = {}
    for workers in (0, 2):
        sampler = EpochShuffler(len(ds), seed=0)
        loader = DataLoader(
            ds,
            batch_size=8,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
        )
        for epoch in (1, 2):
            ds.set_epoch(epoch)  # persistent workers must see the new epoch's crops
            sampler.set_epoch(epoch)
            epochs[workers, epoch] = torch.cat([x for x, _, _ in loader])
        del loader
    assert torch.equal(epochs[0, 1], epochs[2, 1])
    assert torch.equal(epochs[0, 2], epochs[2, 2])
    assert not torch.equal(epochs[0, 1], epochs[0, 2])


def test_sequence_dataset_drops_padding_and_pools(synthetic: dict) -> None:
    ds = TrackSequenceDataset(
        index=synthetic["index"],
        stats=synthetic["stats"],
        tags=TAGS,
        split="valid",
        pool_frames=8,
        max_windows=10,
    )
    raw = _raw_windows(synthetic, "valid")
    assert len(ds) == len(raw)
    mean = np.asarray(synthetic["stats"]["mean"], dtype=np.float32)[:, None]
    std = np.asarray(synthetic["stats"]["std"], dtype=np.float32)[:, None]
    for item, (_, windows, duration) in enumerate(raw):
        x, y, _ = ds[item]
        starts = np.arange(len(windows)) * WINDOW.length_s
        valid = audio_frames(starts_s=starts, duration_s=duration, features=SETTINGS)
        # consecutive windows share one centred frame (hop = 63 frames): keep it once
        keep = np.minimum(valid, 63)
        keep[-1] = valid[-1]
        frames = np.concatenate([w[:, :k] for w, k in zip(windows, keep, strict=True)], axis=1)
        assert x.shape == (int(np.ceil(frames.shape[1] / 8)), N_BINS)
        normalised = (frames - mean) / std
        np.testing.assert_allclose(x[0].numpy(), normalised[:, :8].mean(axis=1), atol=1e-4)
        tail = frames.shape[1] % 8 or 8
        np.testing.assert_allclose(x[-1].numpy(), normalised[:, -tail:].mean(axis=1), atol=1e-4)
        assert x.min() > -3.0, "no floor-valued padding frame survives"

    batch = collate_sequences([ds[i] for i in range(4)])
    x, y, mask, lengths = batch
    assert lengths.tolist() == [len(ds[i][0]) for i in range(4)]
    assert x.shape == (4, int(lengths.max()), N_BINS)
    for i, n in enumerate(lengths.tolist()):
        assert torch.equal(x[i, :n], ds[i][0])
        assert bool((x[i, n:] == 0).all())
    assert y.shape == mask.shape == (4, len(TAGS))


def test_sequence_dataset_limits_windows(synthetic: dict) -> None:
    index = synthetic["index"]
    long = index[index["n_windows"] == 3]["track_id"].iloc[0]
    ds = TrackSequenceDataset(
        index=index.assign(split=np.where(index["track_id"] == long, "x", "y")),
        stats=synthetic["stats"],
        tags=TAGS,
        split="x",
        pool_frames=1,
        max_windows=1,
    )
    start = int(index.loc[index["track_id"] == long, "start"].iloc[0])
    assert ds.window_block(0) == (start + 1, start + 2)  # the middle window
    assert ds[0][0].shape == (N_FRAMES, N_BINS)


def test_label_budget_is_seeded_stable_and_nested() -> None:
    ids = [f"t{i}" for i in range(200)]
    half = select_tracks(ids, fraction=0.5, seed=0)
    assert half.sum() == 100
    assert np.array_equal(select_tracks(ids[::-1], fraction=0.5, seed=0)[::-1], half)
    quarter = select_tracks(ids, fraction=0.25, seed=0)
    assert quarter.sum() == 50 and not (quarter & ~half).any()
    assert not np.array_equal(select_tracks(ids, fraction=0.5, seed=1), half)
    assert select_tracks(ids[:3], fraction=0.01, seed=0).sum() == 1

    tags = [f"tag{k}" for k in range(50)]
    mask = label_mask(ids, tags, fraction=0.3, seed=0)
    assert mask.shape == (200, 50) and set(np.unique(mask)) == {0.0, 1.0}
    assert abs(mask.mean() - 0.3) < 0.02
    smaller = label_mask(ids, tags, fraction=0.1, seed=0)
    assert not (smaller > mask).any()
    np.testing.assert_array_equal(label_mask(ids[:10], tags, fraction=0.3, seed=0), mask[:10])
    assert label_mask(ids, tags, fraction=1.0, seed=0).min() == 1.0
    with pytest.raises(ConfigError, match="0"):
        select_tracks(ids, fraction=0.0, seed=0)
    with pytest.raises(ConfigError, match="1.5"):
        label_mask(ids, tags, fraction=1.5, seed=0)


def test_datasets_apply_the_label_budget(synthetic: dict) -> None:
    full = WindowDataset(
        index=synthetic["index"], stats=synthetic["stats"], tags=TAGS, split="train", train=True
    )
    budget = WindowDataset(
        index=synthetic["index"],
        stats=synthetic["stats"],
        tags=TAGS,
        split="train",
        train=True,
        label_fraction=0.5,
        tag_label_fraction=0.5,
    )
    assert len(budget.tracks) == len(full.tracks) // 2
    assert set(budget.tracks["track_id"]) < set(full.tracks["track_id"])
    assert 0 < budget.masks.sum() < budget.masks.size
    summary = label_budget_summary(budget)
    assert summary["n_tracks"] == 12 and summary["n_labels"] == int(budget.masks.sum())
    for item in range(len(budget)):
        _, _, mask = budget[item]
        assert torch.equal(mask, torch.from_numpy(budget.masks[budget.item_track[item]]))
    seq = TrackSequenceDataset(
        index=synthetic["index"],
        stats=synthetic["stats"],
        tags=TAGS,
        split="train",
        label_fraction=0.5,
        tag_label_fraction=0.5,
    )
    assert list(seq.tracks["track_id"]) == list(budget.tracks["track_id"])
    np.testing.assert_array_equal(seq.masks, budget.masks)


def test_dataset_errors_name_the_problem(synthetic: dict, tmp_path: Path) -> None:
    kwargs = {"index": synthetic["index"], "stats": synthetic["stats"], "tags": TAGS}
    with pytest.raises(PipelineError, match="'nope'"):
        WindowDataset(**kwargs, split="nope", train=False)
    with pytest.raises(ConfigError, match="crop_frames: 65"):
        WindowDataset(**kwargs, split="train", train=True, crop_frames=65)
    with pytest.raises(PipelineError, match="3 means"):
        WindowDataset(
            **{**kwargs, "stats": {"mean": [0, 0, 0], "std": [1, 1, 1]}}, split="train", train=False
        )
    missing = synthetic["index"].assign(store=str(tmp_path / "missing.zarr"))
    with pytest.raises(PipelineError, match="missing.zarr"):
        WindowDataset(**{**kwargs, "index": missing}, split="train", train=False)


def test_epoch_shuffler_is_a_seeded_permutation_of_each_epoch() -> None:
    sampler = EpochShuffler(10, seed=0)
    assert len(sampler) == 10
    first = list(sampler)
    assert sorted(first) == list(range(10)) and first == list(sampler)  # the same epoch again
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(second) == list(range(10)) and second != first
    other = EpochShuffler(10, seed=1)
    other.set_epoch(1)
    assert list(other) != second
    again = EpochShuffler(10, seed=0)
    again.set_epoch(1)
    assert list(again) == second  # a pure function of (seed, epoch)


def test_collate_sequences_pads_at_the_end() -> None:
    items = [
        (torch.ones(3, 2), torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])),
        (torch.full((1, 2), 2.0), torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0])),
    ]
    x, y, mask, lengths = collate_sequences(items)
    assert lengths.dtype == torch.int64 and lengths.tolist() == [3, 1]
    assert x.shape == (2, 3, 2)
    assert torch.equal(x[0], torch.ones(3, 2))
    assert torch.equal(x[1], torch.tensor([[2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]))
    assert y.tolist() == [[1.0, 0.0], [0.0, 1.0]] and mask.tolist() == [[1.0, 1.0], [0.0, 1.0]]


# ---------------------------------------------------------------------------- raw float16 items


@pytest.mark.parametrize("crop", [None, 16])
def test_raw_items_prepared_on_the_device_equal_normalised_items(
    synthetic: dict, crop: int | None
) -> None:
    """float16 across the process boundary, normalised later: the same numbers."""
    index, stats = synthetic["index"], synthetic["stats"]
    common = {"index": index, "stats": stats, "tags": TAGS, "split": "train", "seed": 3}
    common.update({"crop_frames": crop, "train": crop is not None})
    plain = WindowDataset(**common)
    raw = WindowDataset(**common, raw=True)
    items = list(range(len(plain)))
    want = plain.__getitems__(items)
    got = raw.__getitems__(items)
    assert got[0][0].dtype == torch.float16 and got[0][3].dtype == torch.int64
    x = torch.stack([g[0] for g in got])
    n_audio = torch.stack([g[3] for g in got])
    prepared = raw.prepare(x, n_audio, device="cpu")
    assert prepared.dtype == torch.float32
    torch.testing.assert_close(prepared, torch.stack([w[0] for w in want]), rtol=0, atol=0)
    for (_, y, m, _), (_, y2, m2) in zip(got, want, strict=True):
        assert torch.equal(y, y2) and torch.equal(m, m2)
    assert bool((n_audio < x.shape[-1]).any())  # end padding is exercised


@pytest.mark.parametrize("crop", [None, 16])
def test_window_loader_gives_the_batches_of_a_plain_loader_with_any_workers(
    synthetic: dict, crop: int | None
) -> None:
    """Whole batches read in the workers (shared, reused buffers): the same items, order,
    crops and numbers as PyTorch's item-by-item loader, with 0 or 2 workers, in every epoch,
    also when the consumer keeps every batch (more than a worker's buffers)."""
    common = {"index": synthetic["index"], "stats": synthetic["stats"], "tags": TAGS}
    ds = WindowDataset(
        **common, split="train", crop_frames=crop, train=crop is not None, raw=True, seed=5
    )

    def reference(epoch: int) -> list[list[torch.Tensor]]:
        ds.set_epoch(epoch)
        sampler = EpochShuffler(len(ds), seed=1)
        sampler.set_epoch(epoch)
        return list(DataLoader(ds, batch_size=2, sampler=sampler))

    want = {epoch: reference(epoch) for epoch in (1, 2)}
    assert len(want[1]) > 2 * (4 + 2)  # kept batches outnumber the buffers (prefetch 4, + 2)
    for workers in (0, 2):
        sampler = EpochShuffler(len(ds), seed=1)
        loader = window_loader(ds, batch_size=2, num_workers=workers, sampler=sampler)
        assert len(loader) == len(want[1])
        for epoch, keep in ((1, True), (2, False), (1, False)):
            ds.set_epoch(epoch)  # persistent workers must see the new epoch's crops
            sampler.set_epoch(epoch)
            kept, n = [], 0
            for batch, expected_batch in zip(loader, want[epoch], strict=True):
                assert batch[0].dtype == torch.float16 and batch[3].dtype == torch.int64
                if keep:
                    kept.append((batch, expected_batch))
                else:  # compared, then dropped: its buffer goes back to the worker
                    assert all(map(torch.equal, batch, expected_batch))
                n += 1
            assert n == len(want[epoch])
            for batch, expected_batch in kept:  # never overwritten while kept
                assert all(map(torch.equal, batch, expected_batch))
        if workers:
            pools = [
                _RECEIVED[key] for key in _RECEIVED if key.split("-")[0] in _worker_pids(loader)
            ]
            assert len(pools) == 2
            assert all(len(buffers) == 4 + 2 for _, buffers in pools)
        del loader
    prepared = ds.prepare(want[1][0][0], want[1][0][3])
    plain = WindowDataset(**common, split="train", crop_frames=crop, train=crop is not None, seed=5)
    plain.set_epoch(1)
    items = EpochShuffler(len(ds), seed=1)
    items.set_epoch(1)
    first = list(items)[:2]
    torch.testing.assert_close(prepared, torch.stack([plain[i][0] for i in first]), rtol=0, atol=0)


def test_window_loader_reuses_the_buffers_of_dropped_batches(synthetic: dict) -> None:
    ds = WindowDataset(
        index=synthetic["index"],
        stats=synthetic["stats"],
        tags=TAGS,
        split="train",
        train=False,
        raw=True,
    )
    assert len(ds) % 5 == 3  # a short last batch, written into a full batch's buffer
    want = list(DataLoader(ds, batch_size=5))
    loader = window_loader(ds, batch_size=5, num_workers=2, prefetch_factor=2)
    addresses = []
    for _ in range(3):  # 15 batches per worker, 4 buffers each
        for batch, expected in zip(loader, want, strict=True):
            assert all(torch.equal(a, b) for a, b in zip(batch, expected, strict=True))
            addresses.append(batch[0].data_ptr())
    pids = _worker_pids(loader)
    pools = [buffers for key, (_, buffers) in _RECEIVED.items() if key.split("-")[0] in pids]
    assert len(pools) == 2 and all(len(buffers) <= 4 for buffers in pools)
    # every batch came in a pool buffer (none through PyTorch's transfer): buffers are reused
    starts = {int(b.ctypes.data) for buffers in pools for b in buffers.values()}
    assert set(addresses) <= starts, "a batch was not in a reused buffer"
    del loader


def test_window_loader_reads_other_store_layouts_through_zarr(
    synthetic: dict, tmp_path: Path
) -> None:
    """Compressed stores (read through Zarr into the workers' buffers): the same batches."""
    lz4 = build_synthetic(tmp_path / "lz4", compression="lz4")
    common = {"stats": synthetic["stats"], "tags": TAGS, "split": "train", "raw": True}
    common.update({"crop_frames": 16, "train": True, "seed": 2})
    direct = WindowDataset(**common, index=synthetic["index"])
    through_zarr = WindowDataset(**common, index=lz4["index"])
    assert not through_zarr.reader(0).direct
    want = list(window_loader(direct, batch_size=5, num_workers=0))
    loader = window_loader(through_zarr, batch_size=5, num_workers=2)
    for batch, expected in zip(loader, want, strict=True):
        assert all(map(torch.equal, batch, expected))
    del loader


def test_window_loader_names_a_damaged_chunk(tmp_path: Path) -> None:
    data = build_synthetic(tmp_path / "s")
    ds = WindowDataset(
        index=data["index"], stats=data["stats"], tags=TAGS, split="train", train=False, raw=True
    )
    row, store = int(ds.rows[3]), ds.stores[int(ds.item_store[3])]
    chunk = Path(store) / "windows" / "c" / str(row) / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-2])
    # (In process: after an error in a worker, PyTorch takes 10 s to stop its workers.)
    with pytest.raises(PipelineError, match=rf"c/{row}/0/0.*not a window"):
        list(window_loader(ds, batch_size=4, num_workers=0))


def _worker_pids(loader: DataLoader) -> set[str]:
    """The process ids of a persistent-worker loader's workers, as strings."""
    iterator = loader._iterator  # noqa: SLF001  (a test looks at the running workers)
    return {str(w.pid) for w in iterator._workers}  # noqa: SLF001


def test_window_reader_reads_what_zarr_reads(synthetic: dict, tmp_path: Path) -> None:
    import zarr

    from pipeline.io.store import StoreWriter, WindowReader

    store = str(synthetic["index"]["store"].iloc[0])
    reader = WindowReader(Path(store))
    array = zarr.open_array(f"{store}/windows", mode="r")
    assert reader.direct
    for row in range(array.shape[0]):
        np.testing.assert_array_equal(reader.read(row), array[row])
        np.testing.assert_array_equal(reader.read(row, slice(3, 9)), array[row, :, 3:9])
    with pytest.raises(IndexError):
        reader.read(array.shape[0])
    # another layout (lz4, Zarr shards) is read through Zarr, with the same result
    windows = np.arange(3 * 4 * 6, dtype=np.float16).reshape(3, 4, 6)
    writer = StoreWriter(
        path=tmp_path / "s.zarr",
        window_shape=(4, 6),
        attrs={},
        compression="lz4",
        windows_per_shard=2,
    )
    writer.add(track_id="a", windows=windows, starts_s=np.zeros(3), duration_s=1.0)
    writer.close()
    other = WindowReader(tmp_path / "s.zarr")
    assert not other.direct
    np.testing.assert_array_equal(other.read(2, slice(1, 3)), windows[2, :, 1:3])
