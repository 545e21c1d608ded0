#!/usr/bin/env python
"""Training-side throughput on the CPU: the Zarr window loader and each architecture's steps.

Prints (and with ``--json PATH`` writes) three tables:

* **loader**: windows per second (wall clock, and CPU milliseconds per window, which a
  shared machine's load inflates less) that :class:`pipeline.training.loaders.WindowDataset`
  delivers
  through a ``DataLoader`` (batch 16, shuffled): 96 x 1,819 float16 windows read from the
  shard stores, normalised to float32 and batched, with ``num_workers`` 0 and 2 (persistent
  workers, as in training; their start-up is included). Source: the demo's logmel stores
  (``results/demo/features/logmel``, read only) or, without them, synthetic stores of the
  same shape in a temporary folder.
* **model**: training examples per second of each architecture at demo sizes (default
  hyper-parameters; batch 16; forward, ``BCEWithLogitsLoss``, backward, Adam step) on random
  inputs: whole windows (96 x 1,819) for fcn, crnn and musicnn; crops of 232 frames
  (3.7 s) for the short-chunk models; sequences of 114 steps (one window pooled by 16
  frames) for the LSTM. ``sample_level`` takes waveforms, which the feature stage does not
  store; it is left out.
* **end to end** (``--end-to-end``): one epoch of :func:`pipeline.training.window.train_model` on
the
  demo's logmel (train + song-level validation).

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
from pipeline.io.store import StoreWriter
from pipeline.models import build_model
from pipeline.models.layers import count_parameters
from pipeline.training.loaders import WindowDataset, seed_worker

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


def _synthetic_source(folder: Path, *, n_tracks: int = 160) -> tuple[pd.DataFrame, dict]:
    """Stores of demo-shaped windows (one per track), their index and unit stats."""
    rng = np.random.default_rng(0)
    rows = []
    for shard in range(4):
        path = folder / f"{shard:04d}.zarr"
        features = FeatureSettings(name="logmel").to_dict()
        writer = StoreWriter(
            path=path, window_shape=(N_BINS, N_FRAMES), attrs={"features": features}
        )
        for k in range(n_tracks // 4):
            windows = rng.normal(-40, 10, size=(1, N_BINS, N_FRAMES)).astype(np.float16)
            writer.add(
                track_id=f"{shard}-{k}", windows=windows, starts_s=np.zeros(1), duration_s=29.1
            )
            rows.append((f"{shard}-{k}", str(path), k, k, k + 1, 1, 29.1, "train", ["a"]))
        writer.close()
    columns = ["track_id", "store", "track", "start", "stop", "n_windows", "duration_s"]
    index = pd.DataFrame(rows, columns=[*columns, "split", "tags"])
    return index, {"mean": [-40.0] * N_BINS, "std": [10.0] * N_BINS}


def _loader_source(tmp: Path) -> tuple[pd.DataFrame, dict, str]:
    if (DEMO / "index.parquet").is_file():
        return pd.read_parquet(DEMO / "index.parquet"), read_json(DEMO / "stats.json"), str(DEMO)
    index, stats = _synthetic_source(tmp)
    return index, stats, "synthetic stores (demo not built)"


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its reaped children (loader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def loader_throughput(
    index: pd.DataFrame,
    stats: dict,
    *,
    workers: int,
    min_windows: int,
    repeats: int,
    raw: bool = False,
    crop: int | None = None,
) -> dict[str, float]:
    """Best windows/s (wall) and CPU ms per window over ``repeats`` runs of whole epochs.

    Workers are persistent (as in training); the loader is shut down at the end of each
    run, so its workers are reaped and their CPU time (start-up included) is counted. With
    ``raw`` the items are float16 and each batch is normalised in the main process
    (``WindowDataset.prepare``, what training does on the device); ``crop`` draws random
    crops of that many frames (short-chunk training).
    """
    tags = sorted({t for ts in index["tags"] for t in ts})
    dataset = WindowDataset(
        index=index,
        stats=stats,
        tags=tags,
        split="train",
        train=crop is not None,
        crop_frames=crop,
        raw=raw,
    )
    best, best_cpu, steady = 0.0, float("inf"), 0.0
    for _ in range(repeats):
        loader = DataLoader(
            dataset,
            batch_size=16,
            shuffle=True,
            num_workers=workers,
            worker_init_fn=seed_worker,
            prefetch_factor=4 if workers else None,
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(0),
        )
        seen, started, cpu = 0, time.perf_counter(), _cpu_seconds()
        first_at, first_seen = 0.0, 0
        while seen < min_windows:
            for batch in loader:
                x = dataset.prepare(batch[0], batch[3]) if raw else batch[0]
                seen += len(x)
                if not first_at:  # steady state: from the first batch on (workers started)
                    first_at, first_seen = time.perf_counter(), seen
        del loader  # stops and reaps persistent workers
        gc.collect()
        best = max(best, seen / (time.perf_counter() - started))
        steady = max(steady, (seen - first_seen) / (time.perf_counter() - first_at))
        best_cpu = min(best_cpu, 1000 * (_cpu_seconds() - cpu) / seen)
    return {"windows_per_s": best, "cpu_ms_per_window": best_cpu, "steady_windows_per_s": steady}


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
    args = parser.parse_args()
    repeats = 2 if args.quick else 3
    result: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "load_average": os.getloadavg(),
    }
    print(result["machine"], "| load average", " ".join(f"{v:.1f}" for v in os.getloadavg()))

    with tempfile.TemporaryDirectory() as tmp:
        index, stats, source = _loader_source(Path(tmp))
        print(f"\nloader: {source}, batch 16, whole 96 x 1819 windows, 1 torch thread")
        result["loader"] = {"source": source}
        threads = torch.get_num_threads()
        # One torch thread in the main process too (as the workers have): an idle intra-op
        # pool spinning on a busy machine would dominate the CPU time of small copies.
        torch.set_num_threads(1)
        # Interleaved: the float32 items (normalised in the workers) next to float16 items
        # normalised by the consumer, for whole windows and short-chunk crops (232 frames).
        for _rep in range(repeats):
            for crop in (None, 232):
                for raw in (False, True):
                    for workers in (0, 2):
                        numbers = loader_throughput(
                            index,
                            stats,
                            workers=workers,
                            min_windows=2400,
                            repeats=1,
                            raw=raw,
                            crop=crop,
                        )
                        key = f"{'crop' if crop else 'whole'}_{'f16' if raw else 'f32'}_{workers}"
                        old = result["loader"].get(key)
                        if old is None or numbers["windows_per_s"] > old["windows_per_s"]:
                            result["loader"][key] = numbers
        for key, numbers in result["loader"].items():
            if key == "source":
                continue
            print(
                f"  {key:15s}: {numbers['windows_per_s']:6.0f} windows/s "
                f"({numbers['steady_windows_per_s']:6.0f} after the first batch), "
                f"{numbers['cpu_ms_per_window']:.2f} CPU ms per window "
                f"(= {1000 / numbers['cpu_ms_per_window']:.0f} windows/s per free core)"
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
