#!/usr/bin/env python
"""Training-side throughput on the CPU: the Zarr window loader and each architecture's steps.

Prints (and with ``--json PATH`` writes) three tables:

* **loader**: windows per second and CPU milliseconds per window (this process and its
  workers; a shared machine's load inflates it less than the wall rate) of the training
  loader, built as training builds it (:func:`pipeline.training.loaders.window_loader`:
  whole batches read in the workers into reused shared buffers, :class:`EpochShuffler`
  order, persistent workers): batch 16 of 96 x 1,819 float16 windows or 232-frame crops,
  ``num_workers`` 0 and 2; as delivered (``batches``: what a GPU trainer's main process
  handles), and normalised here with ``WindowDataset.prepare`` (``+prep``: on the device in
  training, on this CPU here), next to PyTorch's item-by-item batching of the same items
  (``items``: the previous loader, PyTorch's collation and tensor transfer). Worker
  start-up (to the first batch) is reported apart from the steady state (after the first
  epoch). Source: the demo's logmel stores (``results/demo/features/logmel``, read only)
  or, without them, synthetic stores of the same shape in a temporary folder.
* **model**: training examples per second of each architecture at demo sizes (default
  hyper-parameters; batch 16; forward, ``BCEWithLogitsLoss``, backward, Adam step) on random
  inputs: whole windows (96 x 1,819) for fcn, crnn and musicnn; crops of 232 frames
  (3.7 s) for the short-chunk models; sequences of 114 steps (one window pooled by 16
  frames) for the LSTM. ``sample_level`` takes waveforms, which the feature stage does not
  store; it is left out.
* **end to end** (``--end-to-end``): one epoch of :func:`pipeline.training.window.train_model`
  on the demo's logmel (train + song-level validation).

The machine is shared, so every measurement is repeated and the best is reported.

Usage::

    .venv/bin/python benchmarks/train_throughput.py               # ~2 min on 2 cores
    .venv/bin/python benchmarks/train_throughput.py --quick       # fewer repeats
    .venv/bin/python benchmarks/train_throughput.py --end-to-end --json out.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from pipeline.features.settings import FeatureSettings
from pipeline.io.files import read_json
from pipeline.io.memory import keep_freed_memory
from pipeline.io.store import StoreWriter
from pipeline.models import build_model
from pipeline.models.layers import count_parameters
from pipeline.training.loaders import EpochShuffler, WindowDataset, seed_worker, window_loader

DEMO = Path("results/demo/features/logmel")
N_BINS, N_FRAMES = 96, 1819

#: Architecture -> input shape of one training example at demo sizes, and whether it is a
#: sequence (batch, time, n_bins) with lengths.
MODELS: dict[str, tuple[tuple[int, int], bool]] = {
    "fcn": ((N_BINS, N_FRAMES), False),
    "crnn": ((N_BINS, N_FRAMES), False),
    "musicnn": ((N_BINS, N_FRAMES), False),
    "short_chunk_cnn": ((N_BINS, 232), False),
    "short_chunk_resnet": ((N_BINS, 232), False),
    "lstm": ((-(-N_FRAMES // 16), N_BINS), True),
}


def synthetic_source(
    folder: Path,
    *,
    n_tracks: int = 160,
    n_bins: int = N_BINS,
    valid_every: int = 0,
    tags: tuple[str, ...] = ("a",),
) -> tuple[pd.DataFrame, dict]:
    """Stores of demo-shaped windows (one per track, 4 shards), their index and stats.

    Every ``valid_every``-th track is ``valid`` (0: all ``train``); each track has up to 3
    of ``tags``, drawn with a fixed seed. The stores' settings are the reference log-mel's
    with ``n_bins`` mels; ``stats`` are the windows' mean and std per band.
    """
    rng = np.random.default_rng(0)
    features = FeatureSettings(name="logmel", n_mels=n_bins).to_dict()
    rows = []
    for shard in range(4):
        path = folder / f"{shard:04d}.zarr"
        writer = StoreWriter(
            path=path, window_shape=(n_bins, N_FRAMES), attrs={"features": features}
        )
        for track, k in enumerate(range(shard, n_tracks, 4)):
            windows = rng.normal(-40, 10, size=(1, n_bins, N_FRAMES)).astype(np.float16)
            writer.add(
                track_id=f"{shard}-{k}", windows=windows, starts_s=np.zeros(1), duration_s=29.1
            )
            chosen = list(rng.choice(tags, size=min(3, len(tags)), replace=False))
            split = "valid" if valid_every and k % valid_every == valid_every - 1 else "train"
            rows.append(
                (f"{shard}-{k}", str(path), track, track, track + 1, 1, 29.1, split, chosen)
            )
        writer.close()
    columns = ["track_id", "store", "track", "start", "stop", "n_windows", "duration_s"]
    index = pd.DataFrame(rows, columns=[*columns, "split", "tags"])
    return index, {"mean": [-40.0] * n_bins, "std": [10.0] * n_bins}


def _loader_source(tmp: Path) -> tuple[pd.DataFrame, dict, str]:
    if (DEMO / "index.parquet").is_file():
        return pd.read_parquet(DEMO / "index.parquet"), read_json(DEMO / "stats.json"), str(DEMO)
    index, stats = synthetic_source(tmp)
    return index, stats, "synthetic stores (demo not built)"


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its reaped children (loader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _live_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of running processes (``/proc/{pid}/stat``; 0 where unreadable)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _worker_pids(loader: DataLoader) -> list[int]:
    iterator = getattr(loader, "_iterator", None)
    return [int(w.pid) for w in getattr(iterator, "_workers", [])]


def loader_throughput(
    index: pd.DataFrame,
    stats: dict,
    *,
    workers: int,
    min_windows: int,
    crop: int | None = None,
    batches: bool = True,
    prepare: bool = True,
) -> dict[str, float]:
    """Windows/s and CPU ms per window of the training loader over whole epochs.

    The loader is built as training builds it (:func:`pipeline.training.loaders.window_loader`
    over a ``raw`` :class:`WindowDataset`, :class:`EpochShuffler` order, ``set_epoch`` before
    each epoch, persistent workers, 4 batches in flight each); with ``prepare``, every batch
    is normalised in this process with ``WindowDataset.prepare`` (what training does on the
    device; without, the batches are only counted, as a GPU trainer's main process sees them
    before its device work). With
    ``batches=False``, the previous loader: PyTorch's own batching (``__getitems__`` then
    ``default_collate`` into a new shared-memory tensor per batch), same order and items.

    Returns start-up (DataLoader built and its first batch out: ``startup_s`` wall,
    ``startup_cpu_s`` of this process and its workers), the steady state after the first
    epoch (``steady_windows_per_s``, ``cpu_ms_per_window``: this process and its workers),
    and ``windows_per_s`` over the whole run, start-up included.
    """
    tags = sorted({t for ts in index["tags"] for t in ts})
    dataset = WindowDataset(
        index=index,
        stats=stats,
        tags=tags,
        split="train",
        train=crop is not None,
        crop_frames=crop,
        raw=True,
    )
    sampler = EpochShuffler(len(dataset), seed=0)
    started, cpu = time.perf_counter(), _cpu_seconds()
    if batches:
        loader = window_loader(dataset, batch_size=16, num_workers=workers, sampler=sampler)
    else:
        loader = DataLoader(
            dataset,
            batch_size=16,
            sampler=sampler,
            num_workers=workers,
            worker_init_fn=seed_worker,
            prefetch_factor=4 if workers else None,
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(0),
        )
    seen, epoch = 0, 0
    startup_s = startup_cpu = steady_at = steady_cpu = 0.0
    steady_seen = 0
    pids: list[int] = []
    while seen < min_windows or epoch < 2:
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        for x, _, _, n_audio in loader:
            if prepare:
                x = dataset.prepare(x, n_audio)  # (16, 96, frames) float32, normalised
            seen += len(x)
            if not startup_s:
                pids = _worker_pids(loader)
                startup_s = time.perf_counter() - started
                startup_cpu = _cpu_seconds() - cpu + _live_cpu_seconds(pids)
        if epoch == 0:  # steady state: from the end of the first epoch on
            steady_at, steady_seen = time.perf_counter(), seen
            steady_cpu = _cpu_seconds() + _live_cpu_seconds(pids)
        epoch += 1
    ended = time.perf_counter()
    ended_cpu = _cpu_seconds() + _live_cpu_seconds(pids)
    del loader  # stops and reaps persistent workers
    gc.collect()
    steady = seen - steady_seen
    return {
        "windows_per_s": seen / (ended - started),
        "startup_s": startup_s,
        "startup_cpu_s": startup_cpu,
        "steady_windows_per_s": steady / (ended - steady_at),
        "cpu_ms_per_window": 1000 * (ended_cpu - steady_cpu) / steady,
        "total_cpu_ms_per_window": 1000 * (_cpu_seconds() - cpu) / seen,
    }


def model_throughput(name: str, *, batch: int, steps: int, repeats: int) -> dict:
    """Best training examples/s of one architecture on random inputs."""
    shape, sequence = MODELS[name]
    torch.manual_seed(0)
    n_bins = shape[1] if sequence else shape[0]
    n_frames = shape[0] if sequence else shape[1]
    model = build_model(name, n_tags=50, n_bins=n_bins, n_frames=n_frames, hparams={})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = torch.randn(batch, *shape)
    y = (torch.rand(batch, 50) < 0.1).float()
    lengths = torch.full((batch,), shape[0], dtype=torch.int64) if sequence else None

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x, lengths), y)
        loss.backward()
        optimizer.step()

    model.train()
    step()  # warm-up
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(steps):
            step()
        best = max(best, steps * batch / (time.perf_counter() - started))
    return {"examples_per_s": best, "params": count_parameters(model), "input": list(shape)}


def end_to_end(tmp: Path) -> dict:
    """One epoch of train_model (fcn, whole windows) on the demo's logmel."""
    from pipeline.io.store import FeatureStore
    from pipeline.training.config import TrainConfig
    from pipeline.training.window import train_model

    index = pd.read_parquet(DEMO / "index.parquet")
    features = FeatureStore(Path(index["store"].iloc[0])).attrs["features"]
    summary = train_model(
        architecture="fcn",
        hparams={},
        train_config=TrainConfig(epochs=1, batch_size=16, num_workers=2),
        index=index,
        stats=read_json(DEMO / "stats.json"),
        tags=read_json(DEMO.parent.parent / "vocabulary.json")["tags"],
        features=features,
        out_dir=tmp / "fcn",
        progress=False,
    )
    n_train = int(index.loc[index["split"] == "train", "n_windows"].sum())
    n_valid = int(index.loc[index["split"] == "valid", "n_windows"].sum())
    return {
        "architecture": "fcn",
        "epoch_s": summary["train_time_s"],
        "train_windows": n_train,
        "valid_windows": n_valid,
        "windows_per_s": (n_train + n_valid) / summary["train_time_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps")
    parser.add_argument("--end-to-end", action="store_true", help="also one demo epoch")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--loader-only", action="store_true", help="skip the model steps")
    parser.add_argument(
        "--loader-windows", type=int, default=4800, help="windows per loader run (default 4800)"
    )
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="keep glibc's default malloc thresholds (training jobs raise them: io.memory)",
    )
    args = parser.parse_args()
    if not args.default_malloc:
        keep_freed_memory()  # as every rule script does (io.files.rule_errors)
    repeats = 2 if args.quick else 3
    result: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "load_average": os.getloadavg(),
    }
    print(result["machine"], "| load average", " ".join(f"{v:.1f}" for v in os.getloadavg()))

    with tempfile.TemporaryDirectory() as tmp:
        index, stats, source = _loader_source(Path(tmp))
        print(f"\nloader: {source}, batch 16, 96 x {N_FRAMES} windows or 232-frame crops")
        result["loader"] = {"source": source}
        threads = torch.get_num_threads()
        # One torch thread in the main process too (as the workers have): an idle intra-op
        # pool spinning on a busy machine would dominate the CPU time of small copies.
        torch.set_num_threads(1)
        # Interleaved: the training loader (whole batches read in the workers) with and
        # without normalisation here, next to PyTorch's item-by-item batching; whole windows
        # and crops, 0 and 2 workers.
        kinds = {
            "batches": (True, False),
            "batches+prep": (True, True),
            "items+prep": (False, True),
        }
        for _rep in range(repeats):
            for crop in (None, 232):
                for kind, (batches, prepare) in kinds.items():
                    for workers in (0, 2):
                        numbers = loader_throughput(
                            index,
                            stats,
                            workers=workers,
                            min_windows=args.loader_windows,
                            crop=crop,
                            batches=batches,
                            prepare=prepare,
                        )
                        key = f"{'crop' if crop else 'whole'}_{kind}_{workers}"
                        old = result["loader"].get(key)
                        if old is None or (
                            numbers["steady_windows_per_s"] > old["steady_windows_per_s"]
                        ):
                            result["loader"][key] = numbers
        print(
            "  (steady: after the first epoch, CPU of this process and its workers; "
            "start-up: to the first batch)"
        )
        for key, numbers in result["loader"].items():
            if key == "source":
                continue
            print(
                f"  {key:20s}: steady {numbers['steady_windows_per_s']:6.0f} windows/s, "
                f"{numbers['cpu_ms_per_window']:.3f} CPU ms per window; "
                f"start-up {numbers['startup_s']:.2f} s ({numbers['startup_cpu_s']:.2f} CPU s); "
                f"whole run {numbers['windows_per_s']:6.0f} windows/s"
            )

        torch.set_num_threads(threads)
        if args.loader_only:
            MODELS.clear()
        print(
            f"\nmodel: training examples/s (batch 16, forward + backward + Adam), {threads} threads"
        )
        result["model"] = {}
        for name in MODELS:
            steps = 2 if args.quick else 3
            numbers = model_throughput(name, batch=16, steps=steps, repeats=repeats)
            result["model"][name] = numbers
            print(
                f"  {name:<19} {numbers['examples_per_s']:8.1f} /s  "
                f"input {tuple(numbers['input'])}, {numbers['params']:,} parameters"
            )

        if args.end_to_end and (DEMO / "index.parquet").is_file():
            numbers = end_to_end(Path(tmp))
            result["end_to_end"] = numbers
            print(
                f"\nend to end: one fcn epoch on the demo ({numbers['train_windows']} train + "
                f"{numbers['valid_windows']} valid windows): {numbers['epoch_s']:.1f} s, "
                f"{numbers['windows_per_s']:.1f} windows/s"
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
