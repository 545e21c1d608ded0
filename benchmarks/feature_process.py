#!/usr/bin/env python
"""One whole feature-extraction process, as the benchmark's contenders run it.

``feature_throughput.py --real`` starts this script in a fresh interpreter per timed run, so
start-up (interpreter, imports, building the extractor) is inside the measurement, as it is
for every Snakemake job:

* ``pipeline``: runs the real rule script ``workflow/scripts/extract_features.py`` with a
  stand-in for the ``snakemake`` object (input shard list, output store, params from the
  reference log-mel settings, ``threads``), so the job imports exactly what the rule does;
* ``naive``: per file ``librosa.load(path, sr=16000)`` + ``librosa.feature.melspectrogram``
  (n_fft 512, hop 256, 96 mels) + ``librosa.power_to_db`` + ``np.save``; a plain loop with one
  worker, a fork ``multiprocessing.Pool`` with more (chunksize 1).

It prints one JSON line: ``ready_wall_s`` / ``ready_cpu_s`` (wall since the parent started the
process, and this process's CPU, when the imports are done and the work starts),
``work_wall_s`` / ``work_cpu_s`` (the work itself: CPU of this process and of reaped pool
workers). The parent measures the whole process with ``os.wait4``.

    python benchmarks/feature_process.py pipeline --tracks shard.parquet --out DIR --threads 1
    python benchmarks/feature_process.py naive --tracks shard.parquet --out DIR --threads 2
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SR, N_FFT, HOP, N_MELS = 16000, 512, 256, 96


def _cpu() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class _Namespace(dict):
    """Attribute and item access, like Snakemake's ``Namedlist``."""

    def __getattr__(self, key: str):  # noqa: ANN204
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc

    def __getitem__(self, key):  # noqa: ANN001, ANN204
        if isinstance(key, int):
            return list(self.values())[key]
        return dict.__getitem__(self, key)


def run_pipeline(tracks: Path, out: Path, threads: int, started: float) -> dict:
    import runpy

    features = {
        "kind": "logmel",
        "sample_rate": SR,
        "n_fft": N_FFT,
        "hop_length": HOP,
        "n_mels": N_MELS,
        "n_frames": 1819,
    }
    smk = _Namespace(
        input=_Namespace(tracks=str(tracks), source=[]),
        output=_Namespace(store=str(out / "0000.zarr"), failed=str(out / "0000.failed.parquet")),
        log=_Namespace(log=str(out / "extract.log")),
        params=_Namespace(
            features=features,
            storage={"compression": "none", "windows_per_shard": 0},
            tracks_per_task=1,
            dask_scheduler=None,
        ),
        wildcards=_Namespace(dataset="bench", features="logmel", shard="0000"),
        threads=threads,
    )
    script = REPO / "workflow" / "scripts" / "extract_features.py"
    t0, c0 = time.time(), _cpu()
    runpy.run_path(str(script), init_globals={"snakemake": smk}, run_name="__main__")
    # The rule script's imports are part of its run; its log says when it started working.
    return {"work_wall_s": time.time() - t0, "work_cpu_s": _cpu() - c0, "ready_wall_s": None}


def _naive_one(args: tuple[str, str]) -> int:
    import librosa
    import numpy as np

    path, out_dir = args
    y, _ = librosa.load(path, sr=SR)
    S = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    db = librosa.power_to_db(S)
    np.save(Path(out_dir) / (Path(path).stem + ".npy"), db)
    return len(y)


def run_naive(tracks: Path, out: Path, threads: int, started: float) -> dict:
    import librosa  # noqa: F401  (what the loop needs, imported up front)
    import librosa.feature  # noqa: F401
    import pyarrow.parquet as pq

    table = pq.read_table(tracks).to_pydict()
    jobs = [(p, str(out)) for p in table["path"]]
    ready = {"ready_wall_s": time.time() - started, "ready_cpu_s": _cpu()}
    t0, c0 = time.time(), _cpu()
    if threads <= 1:
        for job in jobs:
            _naive_one(job)
    else:
        import multiprocessing as mp

        pool = mp.get_context("fork").Pool(threads)
        try:
            pool.map(_naive_one, jobs, chunksize=1)
        finally:
            pool.close()
            pool.join()
    return {"work_wall_s": time.time() - t0, "work_cpu_s": _cpu() - c0, **ready}


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("contender", choices=("pipeline", "naive"))
    ap.add_argument("--tracks", type=Path, required=True, help="Parquet: track_id, path")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--started", type=float, default=None, help="parent's time.time() at spawn")
    args = ap.parse_args()
    started = args.started or time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    run = run_pipeline if args.contender == "pipeline" else run_naive
    result = run(args.tracks, args.out, args.threads, started)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
