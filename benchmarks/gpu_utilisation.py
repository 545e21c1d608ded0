#!/usr/bin/env python
"""GPU utilisation while the pipeline trains window taggers: can its loader feed a GPU?

For each architecture (default ``fcn`` and ``short_chunk_resnet``) this runs the real
training code path, :func:`pipeline.training.window.train_model` (the window loader's worker
processes reading whole batches into shared buffers, float16 batches in pinned memory,
normalisation on the device, AMP on CUDA, validation every epoch), with the model's
hyper-parameters and training settings from a config file (default ``config/magnatagatune.yaml``:
the literature's sizes, FCN-5 width 64 and the short-chunk ResNet with 128 channels, batch 16),
on synthetic stores of that feature set's shape (``train_throughput.synthetic_source``: 96 or
128 mels x 1,819 frames, float16; real feature values do not change the speed). A thread
samples the GPU's utilisation every ``--interval`` seconds through NVML (``nvidia-ml-py``,
imported as ``pynvml``), or ``nvidia-smi`` without it. Printed per architecture: windows per
second over the whole run (training and validation), and the utilisation after start-up
(from the first busy sample to the end): mean, median and the share of samples at or above
80 % (the issue's target).

On a machine without CUDA it stops with exit status 2 unless ``--device cpu`` is given, which
runs the same path on the CPU without utilisation (a check of the script itself).

    python benchmarks/gpu_utilisation.py --json $OUT/gpu.json            # on a GPU machine
    python benchmarks/gpu_utilisation.py --device cpu --tracks 24 --epochs 1 --config config.yaml

On the lent device machine (``/work/.library/device``) PyTorch, pandas, PyArrow, SciPy and
nvidia-ml-py are installed but not Zarr or the audio libraries this package imports; carry
them as wheels, built here (Python 3.12 there)::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \\
        --platform manylinux2014_x86_64 -d .whl zarr==3.1.6 numcodecs==0.16.6 \\
        donfig==0.8.1.post1 google-crc32c==1.9.0 soundfile==0.14.0 soxr==1.1.0 cffi==2.1.1 \\
        pycparser==3.12 threadpoolctl==3.8.0

and start the device command with ``python3 -m pip install -q --no-index --no-deps
--target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from pipeline.features.settings import FeatureSettings
from pipeline.io.memory import keep_freed_memory
from pipeline.io.store import FeatureStore
from pipeline.training.config import TrainConfig
from pipeline.training.window import train_model

sys.path.insert(0, str(Path(__file__).resolve().parent))  # a sibling script, also when imported
from train_throughput import synthetic_source  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TAGS = [f"tag{i}" for i in range(20)]
BUSY = 80.0  # the target, per cent


class UtilisationSampler:
    """Samples the GPU's utilisation (per cent) in a thread: NVML, else ``nvidia-smi``."""

    def __init__(self, *, device: int, interval_s: float) -> None:
        self.samples: list[tuple[float, float]] = []
        self.source = "none"
        self._interval = interval_s
        self._stop = threading.Event()
        self._read = self._nvml(device) or self._smi(device)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _nvml(self, device: int) -> Any:
        try:
            import pynvml
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(device)
        except pynvml.NVMLError:
            return None
        self.source = "nvml"
        return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)

    def _smi(self, device: int) -> Any:
        if shutil.which("nvidia-smi") is None:
            return None
        self.source = "nvidia-smi"
        query = [
            "nvidia-smi",
            f"--id={device}",
            "--query-gpu=utilization.gpu",
            "--format=csv,noheader,nounits",
        ]
        return lambda: float(subprocess.run(query, capture_output=True, text=True).stdout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self._read()
            except (ValueError, OSError):
                value = float("nan")
            self.samples.append((time.perf_counter(), value))
            self._stop.wait(self._interval)

    def __enter__(self) -> UtilisationSampler:
        if self._read is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def summary(self) -> dict[str, float | int | None]:
        """Mean, median and share >= 80 % from the first busy sample on (start-up apart)."""
        values = [v for _, v in self.samples if v == v]
        first = next((i for i, v in enumerate(values) if v > 0), len(values))
        busy = values[first:]
        if not busy:
            return {"samples": len(values), "mean": None, "median": None, "share_ge_80": None}
        return {
            "samples": len(busy),
            "mean": statistics.fmean(busy),
            "median": statistics.median(busy),
            "share_ge_80": sum(v >= BUSY for v in busy) / len(busy),
        }


def model_entry(config: dict, name: str) -> tuple[str, dict, dict, FeatureSettings]:
    """``(architecture, hparams, train settings, feature settings)`` of a config's model."""
    entry = config["models"][name]
    feature_name = entry["features"]
    settings = FeatureSettings.from_dict(config["features"][feature_name], name=feature_name)
    return entry["architecture"], dict(entry.get("hparams") or {}), dict(entry["train"]), settings


def measure(
    *,
    name: str,
    config: dict,
    device: str,
    tracks: int,
    epochs: int,
    workers: int | None,
    interval_s: float,
    tmp: Path,
) -> dict[str, Any]:
    architecture, hparams, train, settings = model_entry(config, name)
    index, stats = synthetic_source(
        tmp / name, n_tracks=tracks, n_bins=settings.n_mels, valid_every=5, tags=tuple(TAGS)
    )
    features = FeatureStore(Path(index["store"].iloc[0])).attrs["features"]
    train.update(epochs=epochs, patience=epochs + 1)
    if workers is not None:
        train["num_workers"] = workers
    cfg = TrainConfig(**train)
    sampler = None
    if device.startswith("cuda"):
        gpu = torch.device(device).index
        sampler = UtilisationSampler(device=gpu if gpu is not None else 0, interval_s=interval_s)
    started = time.perf_counter()
    with sampler if sampler is not None else contextlib.nullcontext():
        summary = train_model(
            architecture=architecture,
            hparams=hparams,
            train_config=cfg,
            index=index,
            stats=stats,
            tags=TAGS,
            features=features,
            out_dir=tmp / f"{name}-out",
            device=device,
            progress=False,
        )
    wall = time.perf_counter() - started
    n_train = int((index["split"] == "train").sum())
    n_valid = len(index) - n_train
    windows = epochs * (n_train + n_valid)
    return {
        "model": name,
        "architecture": architecture,
        "hparams": hparams,
        "batch_size": cfg.batch_size,
        "num_workers": cfg.num_workers,
        "crop_frames": cfg.crop_frames,
        "input": [settings.n_mels, settings.n_frames],
        "device": summary["device"],
        "amp": summary["amp"],
        "epochs": epochs,
        "train_windows": n_train,
        "valid_windows": n_valid,
        "train_time_s": summary["train_time_s"],
        "wall_s": wall,
        "windows_per_s": windows / summary["train_time_s"],
        "utilisation_source": sampler.source if sampler is not None else None,
        "utilisation": sampler.summary() if sampler is not None else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="fcn,short_chunk_resnet", help="comma-separated")
    ap.add_argument("--config", type=Path, default=REPO / "config" / "magnatagatune.yaml")
    ap.add_argument("--device", default=None, help="default: cuda when available")
    ap.add_argument("--tracks", type=int, default=4000, help="synthetic tracks (one window each)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None, help="loader workers (default: config)")
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between samples")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    keep_freed_memory()
    device = args.device or ("cuda" if torch.cuda.is_available() else None)
    if device is None:
        print("no CUDA device here: nothing to measure (--device cpu checks the script)")
        return 2
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    where = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "CPU"
    print(f"gpu_utilisation: {where}, torch {torch.__version__}, config {args.config.name}")
    results = []
    with tempfile.TemporaryDirectory(prefix="gpu-util-") as tmp:
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            r = measure(
                name=name,
                config=config,
                device=device,
                tracks=args.tracks,
                epochs=args.epochs,
                workers=args.workers,
                interval_s=args.interval,
                tmp=Path(tmp),
            )
            results.append(r)
            u = r["utilisation"] or {}
            util = (
                f"GPU {u['mean']:.0f} % mean, {u['median']:.0f} % median, "
                f"{100 * u['share_ge_80']:.0f} % of {u['samples']} samples >= 80 % "
                f"({r['utilisation_source']})"
                if u.get("mean") is not None
                else "utilisation not measured"
            )
            print(
                f"{name:20s} {r['windows_per_s']:8.0f} windows/s over {r['epochs']} epochs "
                f"({r['train_windows']} train + {r['valid_windows']} valid windows, "
                f"{r['num_workers']} workers, batch {r['batch_size']}, amp {r['amp']}); {util}",
                flush=True,
            )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": where, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
