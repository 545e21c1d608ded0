#!/usr/bin/env python
"""Feature-extraction throughput: ``pipeline.features.extract.extract_shard`` against a naive
librosa loop.

Prints a table (and writes the same numbers as JSON to ``benchmarks/out/feature_throughput.json``)
of seconds of audio processed per CPU-second and per wall-second, for

* the pipeline: ``extract_shard(threads=1|2)`` with the reference log-mel settings
  (``FeatureSettings(name="logmel")``: 96 mels, 16 kHz, n_fft 512, hop 256, 29.1 s windows),
  decoding, resampling, windowing, log-mel and the float16 Zarr v3 write included
  (``compression="none"``, ``windows_per_shard=0``: the defaults of ``config.yaml``);
* the naive loop: per file ``librosa.load(path, sr=16000)`` + ``librosa.feature.melspectrogram``
  (same FFT/hop/mel settings) + ``librosa.power_to_db`` + ``np.save``; 1 worker is a plain loop
  in this process, 2 workers a ``multiprocessing`` fork Pool(2) over the files (pool start-up and
  shut-down inside the timed region);

on generated, seeded, music-like MP3 files (written once, outside the timed region):

* MTAT-style: 29.1 s, 16 kHz mono, 32 kbps CBR MP3;
* stereo: 30 s, 44.1 kHz stereo, 320 kbps CBR MP3.

CPU time is ``getrusage(RUSAGE_SELF) + getrusage(RUSAGE_CHILDREN)`` (user + system, all threads;
the pool's workers are reaped inside the timed region, so their CPU lands in RUSAGE_CHILDREN);
``time.process_time()`` is recorded as well. Every configuration is repeated (round-robin, so
background load hits all alike) and the best (minimum) wall and CPU time are reported.
BLAS/OpenMP pools are pinned to one thread (``OMP_NUM_THREADS`` etc., unless already set) so
that "1 worker" means one core for both contenders.

A per-stage profile of the pipeline (decode, down-mix, resample, windowing, log-mel, float16
cast, Zarr write) is taken by timing the pipeline's own functions (``iter_windows``,
``Extractor.__call__``, ``StoreWriter.add/close``) with thin timing wrappers around
``soundfile`` / ``soxr`` / ``downmix`` inside ``pipeline.io.audio``; a cProfile listing goes to
``benchmarks/out/feature_profile_<content>.txt``.

Usage::

    .venv/bin/python benchmarks/feature_throughput.py            # ~2-3 min on 2 cores
    .venv/bin/python benchmarks/feature_throughput.py --quick    # ~30 s, smaller and noisier
    .venv/bin/python benchmarks/feature_throughput.py --n-files 120 --n-stereo 40 --repeats 5
    .venv/bin/python benchmarks/feature_throughput.py --workdir /tmp/ftbench  # keep/reuse files
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import datetime as _dt  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import soundfile as sf  # noqa: E402
import soxr  # noqa: E402
import torch  # noqa: E402

import pipeline.io.audio as paudio  # noqa: E402
from pipeline.features.extract import extract_shard  # noqa: E402
from pipeline.features.extractors import make_extractor  # noqa: E402
from pipeline.features.settings import FeatureSettings  # noqa: E402
from pipeline.io.audio import DecodeInfo, iter_windows  # noqa: E402
from pipeline.io.store import StoreWriter  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "out" / "feature_throughput.json"

# Reference settings of the naive loop (the same as FeatureSettings(name="logmel")).
SR, N_FFT, HOP, N_MELS = 16000, 512, 256, 96
BLOCK = 8192  # frames per SoundFile.write call; long single writes crash libsndfile's encoders


@dataclass(frozen=True)
class Content:
    """One kind of generated test file."""

    key: str
    label: str
    sample_rate: int
    channels: int
    duration_s: float
    compression_level: float  # libsndfile CBR: 0 = highest bitrate, 1 = lowest
    nominal_kbps: int


MTAT = Content("mtat", "MTAT-style 16k mono 32kbps", 16000, 1, 29.1, 0.85, 32)
STEREO = Content("stereo", "44.1k stereo 320kbps", 44100, 2, 30.0, 0.0, 320)
# Per-file CPU ms that /work/shared/DATA.md reports for the same primitives (one core):
# MTAT MP3 decode ~5,400x, 320 kbps stereo decode ~1,100x, soxr HQ 44.1->16 kHz ~8,000x,
# torch log-mel 2.6-2.9 ms per window, whole chain ~3,000x (MTAT) and ~880x (stereo).
DATA_MD_REF_MS = {
    "mtat": {"decode": 29.1 / 5400 * 1000, "logmel": 2.75, "total": 29.1 / 3000 * 1000},
    "stereo": {
        "decode": 30.0 / 1100 * 1000,
        "resample": 30.0 / 8000 * 1000,
        "logmel": 2.75,
        "total": 30.0 / 880 * 1000,
    },
}
TARGETS = {
    "mtat_x_rt_per_core": 2000.0,  # pipeline, 1 worker, audio s per CPU s, incl. Zarr write
    "stereo_vs_naive": 1.4,  # pipeline / naive throughput, 44.1 kHz stereo
    "mtat_vs_naive": 1.0,  # never slower than naive on MTAT-style
    "speedup_2_cores": 1.8,  # wall(1 worker) / wall(2 workers), pipeline
}


# --------------------------------------------------------------------------------------------
# Test material
# --------------------------------------------------------------------------------------------


def synth(*, seed: int, sample_rate: int, channels: int, duration_s: float) -> np.ndarray:
    """Seeded music-like audio: melody, chords and bass of harmonic tones, drums and noise.

    Returns
    -------
    np.ndarray, shape (n_samples, channels), float32, peak 0.8
    """
    rng = np.random.default_rng(seed)
    sr = sample_rate
    n = int(round(duration_s * sr))
    out = np.zeros((n, 2), dtype=np.float64)
    nyq = 0.45 * sr

    def add_tone(start_s, dur_s, midi, amp, pan, n_harm, bright, decay):
        f0 = 440.0 * 2.0 ** ((midi - 69) / 12.0)
        s = int(start_s * sr)
        if s >= n:
            return
        m = min(int((dur_s + 0.08) * sr), n - s)
        t = np.arange(m) / sr
        env = np.minimum(1.0, t / 0.008) * np.exp(-decay * t)
        env *= np.clip((dur_s + 0.08 - t) / 0.08, 0.0, 1.0)  # release
        # Harmonics by the recurrence z**k (one complex exp per note instead of one sin each).
        z = np.exp(2j * np.pi * f0 * t)
        zk = np.ones(m, dtype=np.complex128)
        acc = np.zeros(m, dtype=np.complex128)
        for k in range(1, n_harm + 1):
            if k * f0 >= nyq:
                break
            zk *= z
            acc += (bright**k / k * np.exp(1j * rng.uniform(0, 2 * np.pi))) * zk
        sig = acc.imag * (amp * env)
        out[s : s + m, 0] += sig * (1.0 - pan)
        out[s : s + m, 1] += sig * pan

    tempo = rng.uniform(80, 160)
    beat = 60.0 / tempo
    bar = 4 * beat
    root = int(rng.integers(43, 55))
    scale = [0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.6 else [0, 2, 3, 5, 7, 8, 10]
    progression = rng.choice([0, 3, 4, 5], size=int(duration_s / bar) + 2)
    melody_pan, bass_pan = rng.uniform(0.3, 0.7), rng.uniform(0.4, 0.6)
    timbre = (int(rng.integers(4, 10)), rng.uniform(0.5, 0.9))
    # Chords and bass, one chord per bar.
    for b, degree in enumerate(progression):
        start = b * bar
        if start >= duration_s:
            break
        for step in (0, 2, 4):
            d = degree + step
            midi = root + 12 + scale[d % 7] + 12 * (d // 7)
            add_tone(start, bar, midi, 0.08, rng.uniform(0.2, 0.8), 5, 0.6, 1.0)
        add_tone(start, bar * 0.9, root - 12 + scale[degree % 7], 0.25, bass_pan, 6, 0.7, 1.5)
    # Melody: random walk on the scale.
    t, d = 0.0, int(rng.integers(7, 14))
    while t < duration_s:
        dur = beat * float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
        d = int(np.clip(d + rng.integers(-2, 3), 0, 20))
        if rng.random() > 0.1:  # some rests
            midi = root + 12 + scale[d % 7] + 12 * (d // 7)
            add_tone(t, dur, midi, rng.uniform(0.15, 0.3), melody_pan, *timbre, 2.0)
        t += dur
    # Drums: kick on beats 1 and 3, hi-hat on every half beat.
    for i in range(int(duration_s / beat * 2) + 1):
        s = int(i * beat / 2 * sr)
        if s >= n:
            break
        if i % 4 == 0:
            m = min(int(0.15 * sr), n - s)
            tt = np.arange(m) / sr
            kick = np.sin(2 * np.pi * (50 * tt + 60 * (1 - np.exp(-30 * tt)) / 30)) * np.exp(
                -25 * tt
            )
            out[s : s + m] += 0.4 * kick[:, None]
        m = min(int(0.05 * sr), n - s)
        hat = np.diff(rng.standard_normal(m + 1)) * np.exp(-np.arange(m) / sr * 80)
        out[s : s + m] += 0.03 * hat[:, None]
    out += 0.003 * rng.standard_normal(out.shape)
    out *= 0.8 / max(np.abs(out).max(), 1e-9)
    if channels == 1:
        return out.mean(axis=1, keepdims=True).astype(np.float32)
    return out.astype(np.float32)


def write_mp3(path: Path, audio: np.ndarray, content: Content) -> None:
    """Write CBR MP3 in blocks of BLOCK frames."""
    with sf.SoundFile(
        path,
        "w",
        samplerate=content.sample_rate,
        channels=content.channels,
        format="MP3",
        subtype="MPEG_LAYER_III",
        compression_level=content.compression_level,
        bitrate_mode="CONSTANT",
    ) as f:
        for i in range(0, len(audio), BLOCK):
            f.write(audio[i : i + BLOCK])


def _make_one(job: tuple[Content, int, str]) -> int:
    content, seed, path = job
    audio = synth(
        seed=seed,
        sample_rate=content.sample_rate,
        channels=content.channels,
        duration_s=content.duration_s,
    )
    write_mp3(Path(path), audio, content)
    return Path(path).stat().st_size


def make_files(workdir: Path, content: Content, n_files: int, seed: int) -> list[Path]:
    """Generate (or reuse) the test files of one content kind."""
    folder = workdir / content.key
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{content.key}_{seed}_{i:04d}.mp3" for i in range(n_files)]
    spec_path = folder / "spec.json"
    spec = {"content": content.__dict__, "seed": seed, "version": 1}
    old = json.loads(spec_path.read_text()) if spec_path.exists() else None
    todo = [p for p in paths if old != spec or not p.exists() or p.stat().st_size == 0]
    if todo:
        t0 = time.perf_counter()
        jobs = [(content, seed * 100_000 + paths.index(p), str(p)) for p in todo]
        with mp.get_context("fork").Pool(min(2, os.cpu_count() or 1)) as pool:
            pool.map(_make_one, jobs, chunksize=1)
        spec_path.write_text(json.dumps(spec))
        print(
            f"  generated {len(todo)} {content.label} files in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    return paths


def describe_files(paths: list[Path], content: Content) -> dict:
    sizes = np.array([p.stat().st_size for p in paths], dtype=np.float64)
    info = sf.info(str(paths[0]))
    return {
        "n_files": len(paths),
        "duration_s": content.duration_s,
        "sample_rate": content.sample_rate,
        "channels": content.channels,
        "format": f"{info.format} {info.subtype} CBR (libsndfile compression_level="
        f"{content.compression_level})",
        "mean_bytes": float(sizes.mean()),
        "kbps": float(sizes.mean() * 8 / content.duration_s / 1000),
        "decoded_frames": int(info.frames),
        "audio_s_total": content.duration_s * len(paths),
    }


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def _rusage_cpu() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _system_busy_s() -> float:
    """CPU-seconds all processes on the machine have used (from /proc/stat), or NaN."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return float("nan")


class Meter:
    """Wall, rusage (self + children) and process_time deltas, and other processes' CPU."""

    def __init__(self) -> None:
        gc.collect()
        self.busy0 = _system_busy_s()
        self.wall0 = time.perf_counter()
        self.cpu0 = _rusage_cpu()
        self.pt0 = time.process_time()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall0
        cpu = _rusage_cpu() - self.cpu0
        r = {"wall_s": wall, "cpu_s": cpu, "process_time_s": time.process_time() - self.pt0}
        # CPU that other processes took meanwhile, in cores (jiffy resolution: 10 ms).
        r["others_cores"] = max(_system_busy_s() - self.busy0 - cpu, 0.0) / wall
        return r


def wait_quiet(max_wait_s: float, *, threshold_cores: float = 0.1, sample_s: float = 0.5) -> float:
    """Wait (at most ``max_wait_s``) until other processes use < ``threshold_cores`` cores.

    Returns the seconds waited.
    """
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait_s:
        b0, c0 = _system_busy_s(), _rusage_cpu()
        time.sleep(sample_s)
        others = (_system_busy_s() - b0 - (_rusage_cpu() - c0)) / sample_s
        if not others >= threshold_cores:  # NaN (no /proc/stat) counts as quiet
            break
    return time.perf_counter() - t0


def run_pipeline(paths: list[Path], *, workers: int, scratch: Path) -> dict[str, float]:
    tracks = pd.DataFrame({"track_id": [p.stem for p in paths], "path": [str(p) for p in paths]})
    store = scratch / f"pipeline_{workers}.zarr"
    failed = scratch / f"pipeline_{workers}_failed.parquet"
    shutil.rmtree(store, ignore_errors=True)
    m = Meter()
    summary = extract_shard(
        tracks=tracks,
        settings=FeatureSettings(name="logmel"),
        store_path=store,
        failed_path=failed,
        threads=workers,
        compression="none",
        windows_per_shard=0,
    )
    r = m.stop()
    if summary["n_stored"] != len(paths) or summary["n_failed"]:
        raise RuntimeError(f"pipeline failed on some files: {summary}")
    r["n_windows"] = summary["n_windows"]
    return r


def naive_one(path: str, out_dir: str) -> int:
    """The naive per-file loop body."""
    y, _ = librosa.load(path, sr=SR)
    S = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    db = librosa.power_to_db(S)
    np.save(Path(out_dir) / (Path(path).stem + ".npy"), db)
    return len(y)


def run_naive(paths: list[Path], *, workers: int, scratch: Path) -> dict[str, float]:
    out_dir = scratch / f"naive_{workers}"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    files = [str(p) for p in paths]
    m = Meter()
    if workers == 1:
        for p in files:
            naive_one(p, str(out_dir))
    else:
        # Fork: the workers inherit the imported (and warmed-up) librosa; they are joined, so
        # their CPU time is in RUSAGE_CHILDREN when the meter stops.
        pool = mp.get_context("fork").Pool(workers)
        try:
            pool.map_async(
                functools.partial(naive_one, out_dir=str(out_dir)), files, chunksize=1
            ).get(timeout=600)
        finally:
            pool.close()
            pool.join()
    r = m.stop()
    if len(list(out_dir.iterdir())) != len(paths):
        raise RuntimeError("naive loop did not write every file")
    return r


def run_compute_only(paths: list[Path], *, workers: int, scratch: Path) -> dict[str, float]:
    """Diagnostic: extract_track over a plain thread pool, no Dask rounds, no store."""
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.features.extract import extract_track

    extractor = make_extractor(FeatureSettings(name="logmel"))
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m = Meter()
        with ThreadPoolExecutor(workers) as pool:
            results = list(
                pool.map(
                    lambda p: extract_track(track_id=p.stem, path=str(p), extractor=extractor),
                    paths,
                )
            )
        r = m.stop()
    finally:
        torch.set_num_threads(n_threads)
    if any(res.windows is None for res in results):
        raise RuntimeError("extract_track failed on some files")
    return r


def check_agreement(path: Path, scratch: Path) -> dict[str, float]:
    """Max |pipeline - naive| in dB on one file (naive clamped at top_db=80, as its default)."""
    run_pipeline([path], workers=1, scratch=scratch)
    import zarr

    pipe = zarr.open_group(scratch / "pipeline_1.zarr", mode="r")["windows"][0].astype(np.float32)
    naive_one(str(path), str(scratch))
    ref = np.load(scratch / (path.stem + ".npy"))
    n = min(pipe.shape[1], ref.shape[1]) - 4  # the naive spectrogram runs past the window end
    pipe_c = np.maximum(pipe, pipe.max() - 80.0)  # power_to_db's default top_db=80
    diff = np.abs(pipe_c[:, :n] - ref[:, :n])
    return {"max_abs_db": float(diff.max()), "mean_abs_db": float(diff.mean()), "frames": n}


# --------------------------------------------------------------------------------------------
# Per-stage profile of the pipeline's functions
# --------------------------------------------------------------------------------------------


class _Acc:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    def add(self, key: str, dt: float) -> None:
        self.t[key] = self.t.get(key, 0.0) + dt


def _instrument(acc: _Acc):
    """Timing wrappers around what iter_windows calls; returns a function that undoes them."""
    clock = time.process_time  # CPU of all threads (Zarr's I/O thread too)
    dec = paudio._Decoder
    orig_init, orig_read = dec.__init__, dec.read
    orig_downmix, orig_soxr = paudio.downmix, paudio.soxr

    def timed_init(self, *a, **k):
        t = clock()
        try:
            orig_init(self, *a, **k)
        finally:
            acc.add("decode_open_close", clock() - t)

    def timed_read(self, *a, **k):
        t = clock()
        try:
            return orig_read(self, *a, **k)
        finally:
            acc.add("decode_read", clock() - t)

    def timed_downmix(block):
        t = clock()
        try:
            return orig_downmix(block)
        finally:
            acc.add("downmix", clock() - t)

    class _TimedStream:
        def __init__(self, *a, **k):
            t = clock()
            self._s = orig_soxr.ResampleStream(*a, **k)
            acc.add("resample", clock() - t)

        def resample_chunk(self, *a, **k):
            t = clock()
            try:
                return self._s.resample_chunk(*a, **k)
            finally:
                acc.add("resample", clock() - t)

    class _Soxr:
        ResampleStream = _TimedStream

    dec.__init__, dec.read = timed_init, timed_read
    paudio.downmix, paudio.soxr = timed_downmix, _Soxr

    def undo():
        dec.__init__, dec.read = orig_init, orig_read
        paudio.downmix, paudio.soxr = orig_downmix, orig_soxr

    return undo


def _profile_once(paths: list[Path], scratch: Path, settings: FeatureSettings) -> dict[str, float]:
    """extract_track's steps, inlined, each timed; StoreWriter as extract_shard uses it."""
    clock = time.process_time  # CPU of all threads (Zarr's I/O thread too)
    acc = _Acc()
    extractor = make_extractor(settings)
    store = scratch / "profile.zarr"
    shutil.rmtree(store, ignore_errors=True)
    gc.collect()
    t_all = clock()
    t = clock()
    writer = StoreWriter(
        path=store,
        window_shape=extractor.shape,
        attrs={"features": settings.to_dict()},
        compression="none",
        windows_per_shard=0,
    )
    acc.add("zarr_create", clock() - t)
    flush = writer._flush

    def timed_flush(*, final: bool) -> None:
        t = clock()
        try:
            flush(final=final)
        finally:
            acc.add("zarr_windows", clock() - t)

    writer._flush = timed_flush  # the window chunks; the rest of add/close is index and attrs
    undo = _instrument(acc)
    try:
        for p in paths:
            info = DecodeInfo(path=str(p))
            t = clock()
            windows = []
            starts = []
            for start, w in iter_windows(path=p, settings=settings.window, info=info):
                starts.append(start)
                windows.append(w)
            acc.add("iter_windows", clock() - t)
            feats = []
            for i in range(0, len(windows), 4):  # extract_track's batches of 4
                t = clock()
                batch = np.stack(windows[i : i + 4])
                acc.add("stack_concat", clock() - t)
                t = clock()
                f = extractor(batch)
                acc.add("logmel", clock() - t)
                t = clock()
                feats.append(f.astype(np.float16))
                acc.add("float16_cast", clock() - t)
            t = clock()
            feats_all = np.concatenate(feats)
            acc.add("stack_concat", clock() - t)
            t = clock()
            writer.add(
                track_id=p.stem,
                windows=feats_all,
                starts_s=np.asarray(starts, dtype=np.float32),
                duration_s=info.duration_s,
            )
            acc.add("zarr_add", clock() - t)
        t = clock()
        writer.close()
        acc.add("zarr_close", clock() - t)
    finally:
        undo()
    acc.add("total", clock() - t_all)
    tt = acc.t
    decode_parts = tt.get("decode_read", 0) + tt.get("decode_open_close", 0)
    tt["windowing_checks"] = (
        tt["iter_windows"] - decode_parts - tt.get("downmix", 0) - tt.get("resample", 0)
    )
    tt["zarr_fixed"] = tt["zarr_create"] + tt["zarr_add"] + tt["zarr_close"] - tt["zarr_windows"]
    return tt


def profile_pipeline(
    paths: list[Path],
    scratch: Path,
    repeats: int,
    cprofile_path: Path | None,
    wait_s: float = 0.0,
) -> dict[str, float]:
    """Per-file CPU milliseconds of each stage, best of ``repeats``, single thread."""
    settings = FeatureSettings(name="logmel")
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as extract_shard does
    try:
        runs = []
        for _ in range(repeats):
            if wait_s > 0:
                wait_quiet(wait_s)
            runs.append(_profile_once(paths, scratch, settings))
        if cprofile_path is not None:
            prof = cProfile.Profile()
            prof.enable()
            _profile_once(paths, scratch, settings)
            prof.disable()
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(40)
            cprofile_path.write_text(buf.getvalue())
    finally:
        torch.set_num_threads(n_threads)
    keys = sorted({k for r in runs for k in r})
    return {k: 1000.0 * min(r.get(k, 0.0) for r in runs) / len(paths) for k in keys}


def profile_naive(
    paths: list[Path], scratch: Path, repeats: int, wait_s: float = 0.0
) -> dict[str, float]:
    """Per-file CPU milliseconds of the naive loop's steps, best of ``repeats``."""
    clock = time.process_time  # CPU of all threads (Zarr's I/O thread too)
    out_dir = scratch / "naive_profile"
    out_dir.mkdir(exist_ok=True)
    runs = []
    for _ in range(repeats):
        if wait_s > 0:
            wait_quiet(wait_s)
        acc = _Acc()
        for p in paths:
            t = clock()
            y, _ = librosa.load(str(p), sr=SR)
            acc.add("librosa.load", clock() - t)
            t = clock()
            S = librosa.feature.melspectrogram(
                y=y, sr=SR, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS
            )
            acc.add("melspectrogram", clock() - t)
            t = clock()
            db = librosa.power_to_db(S)
            acc.add("power_to_db", clock() - t)
            t = clock()
            np.save(out_dir / (p.stem + ".npy"), db)
            acc.add("np.save", clock() - t)
        runs.append(acc.t)
    return {k: 1000.0 * min(r[k] for r in runs) / len(paths) for k in runs[0]}


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def _cpu_pressure() -> str:
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return ""


def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "load_avg_at_start": list(os.getloadavg()),
        "cpu_pressure_at_start": _cpu_pressure(),
        "versions": {
            "numpy": np.__version__,
            "librosa": librosa.__version__,
            "soundfile": sf.__version__,
            "libsndfile": sf.__libsndfile_version__,
            "soxr": soxr.__version__,
            "torch": torch.__version__,
            "zarr": __import__("zarr").__version__,
            "dask": __import__("dask").__version__,
        },
        "thread_env": {
            k: os.environ.get(k)
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-files", type=int, default=60, help="MTAT-style files (default 60)")
    ap.add_argument(
        "--n-stereo", type=int, default=None, help="44.1 kHz stereo files (default n-files / 2)"
    )
    ap.add_argument("--repeats", type=int, default=4, help="timed repeats per config (default 4)")
    ap.add_argument("--quick", action="store_true", help="16 + 8 files, 2 repeats")
    ap.add_argument("--workdir", type=Path, default=None, help="keep generated files here")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    ap.add_argument("--no-profile", action="store_true", help="skip the per-stage profile")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each timed run, wait up to SECONDS for other processes to go quiet "
        "(< 0.1 cores); for shared machines (default 0: no waiting)",
    )
    ap.add_argument(
        "--profile-files",
        type=int,
        default=24,
        help="MTAT-style files in the per-stage profile (half as many stereo; default 24)",
    )
    ap.add_argument(
        "--real",
        action="store_true",
        help="real music (benchmarks/real_music.py), whole processes, against the naive loop",
    )
    ap.add_argument(
        "--music-cache",
        type=Path,
        default=Path(os.environ.get("PIPELINE_MUSIC_CACHE", "/work/cache/music")),
        help="folder of the unpacked game-music package (see benchmarks/real_music.py)",
    )
    args = ap.parse_args(argv)
    if args.real:
        return run_real(args)
    if args.quick:
        args.n_files, args.repeats = min(args.n_files, 16), min(args.repeats, 2)
        args.n_stereo = args.n_stereo or 8
    n_stereo = args.n_stereo if args.n_stereo is not None else max(args.n_files // 2, 1)
    warnings.filterwarnings("ignore", category=FutureWarning)

    t_start = time.perf_counter()
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="feature_throughput_")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    scratch = workdir / "scratch"
    scratch.mkdir(exist_ok=True)
    machine = machine_info()
    print(
        f"feature_throughput: {machine['cpu_count']} cores ({machine['cpu_model']}), "
        f"load avg {machine['load_avg_at_start'][0]:.2f}; workdir {workdir}",
        flush=True,
    )

    try:
        # ---- files (untimed) ------------------------------------------------------------
        sets = {
            MTAT.key: (MTAT, make_files(workdir, MTAT, args.n_files, args.seed)),
            STEREO.key: (STEREO, make_files(workdir, STEREO, n_stereo, args.seed + 1)),
        }
        files_info = {k: describe_files(paths, c) for k, (c, paths) in sets.items()}
        for k, fi in files_info.items():
            print(
                f"  {sets[k][0].label}: {fi['n_files']} files x {fi['duration_s']} s, "
                f"{fi['mean_bytes'] / 1000:.1f} KB each = {fi['kbps']:.1f} kbps",
                flush=True,
            )

        # ---- warm-up (untimed): imports, lazy modules, page cache ------------------------
        for _, paths in sets.values():
            run_pipeline(paths[:4], workers=1, scratch=scratch)
            run_naive(paths[:2], workers=1, scratch=scratch)
        agreement = {k: check_agreement(paths[0], scratch) for k, (_, paths) in sets.items()}

        # ---- timed runs, round-robin -----------------------------------------------------
        configs = [
            (k, method, workers)
            for k in sets
            for method in ("pipeline", "naive", "compute-only")
            for workers in (1, 2)
        ]
        runners = {"pipeline": run_pipeline, "naive": run_naive, "compute-only": run_compute_only}
        raw: dict[tuple, list[dict]] = {cfg: [] for cfg in configs}
        waited = 0.0
        for rep in range(args.repeats):
            for cfg in configs:
                k, method, workers = cfg
                # With --wait-quiet, a run that other processes disturbed (> 0.15 cores) is
                # retried up to twice; every run is kept, the minimum is reported.
                for _attempt in range(3 if args.wait_quiet > 0 else 1):
                    if args.wait_quiet > 0:
                        waited += wait_quiet(args.wait_quiet)
                    r = runners[method](sets[k][1], workers=workers, scratch=scratch)
                    raw[cfg].append(r)
                    if not r["others_cores"] > 0.15:
                        break
            print(
                f"  repeat {rep + 1}/{args.repeats} done"
                + (f" (waited {waited:.0f} s for quiet so far)" if args.wait_quiet > 0 else ""),
                flush=True,
            )

        results = []
        best: dict[tuple, dict] = {}
        for cfg in configs:
            k, method, workers = cfg
            audio_s = files_info[k]["audio_s_total"]
            wall = min(r["wall_s"] for r in raw[cfg])
            cpu = min(r["cpu_s"] for r in raw[cfg])
            fastest = min(raw[cfg], key=lambda r: r["wall_s"])
            row = {
                "content": k,
                "method": method,
                "workers": workers,
                "n_files": files_info[k]["n_files"],
                "audio_s": audio_s,
                "wall_s": wall,
                "cpu_s": cpu,
                "x_rt_per_cpu_s": audio_s / cpu,
                "x_rt_per_wall_s": audio_s / wall,
                "ms_cpu_per_file": 1000 * cpu / files_info[k]["n_files"],
                "others_cores_in_fastest": fastest["others_cores"],
                "repeats": raw[cfg],
            }
            best[cfg] = row
            results.append(row)

        derived = {}
        for k in sets:
            for method in ("pipeline", "naive", "compute-only"):
                derived[f"{k}_{method}_speedup_2"] = (
                    best[(k, method, 1)]["wall_s"] / best[(k, method, 2)]["wall_s"]
                )
            for w in (1, 2):
                p, n = best[(k, "pipeline", w)], best[(k, "naive", w)]
                derived[f"{k}_vs_naive_cpu_w{w}"] = p["x_rt_per_cpu_s"] / n["x_rt_per_cpu_s"]
                derived[f"{k}_vs_naive_wall_w{w}"] = p["x_rt_per_wall_s"] / n["x_rt_per_wall_s"]

        targets = [
            {
                "target": "MTAT-style: pipeline >= 2,000x real time per core (1 worker, CPU, "
                "incl. Zarr write)",
                "value": best[("mtat", "pipeline", 1)]["x_rt_per_cpu_s"],
                "threshold": TARGETS["mtat_x_rt_per_core"],
            },
            {
                "target": "44.1k stereo: pipeline >= 1.4x naive (1 worker, per CPU-s)",
                "value": derived["stereo_vs_naive_cpu_w1"],
                "threshold": TARGETS["stereo_vs_naive"],
            },
            {
                "target": "44.1k stereo: pipeline >= 1.4x naive (2 workers, per wall-s)",
                "value": derived["stereo_vs_naive_wall_w2"],
                "threshold": TARGETS["stereo_vs_naive"],
            },
            {
                "target": "MTAT-style: pipeline never slower than naive (min over 1/2 workers, "
                "CPU and wall)",
                "value": min(
                    derived[f"mtat_vs_naive_{m}_w{w}"] for m in ("cpu", "wall") for w in (1, 2)
                ),
                "threshold": TARGETS["mtat_vs_naive"],
            },
            {
                "target": "MTAT-style: pipeline speed-up on 2 cores >= 1.8x (wall 1 / wall 2)",
                "value": derived["mtat_pipeline_speedup_2"],
                "threshold": TARGETS["speedup_2_cores"],
            },
            {
                "target": "44.1k stereo: pipeline speed-up on 2 cores >= 1.8x (wall 1 / wall 2)",
                "value": derived["stereo_pipeline_speedup_2"],
                "threshold": TARGETS["speedup_2_cores"],
            },
        ]
        for t in targets:
            t["pass"] = bool(t["value"] >= t["threshold"])

        # ---- per-stage profile (untimed above) -----------------------------------------
        profile = {}
        naive_profile = {}
        if not args.no_profile:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            for k, (_, all_paths) in sets.items():
                n_prof = args.profile_files if k == MTAT.key else max(args.profile_files // 2, 1)
                paths = all_paths[:n_prof]
                profile[k] = profile_pipeline(
                    paths,
                    scratch,
                    repeats=max(args.repeats, 3),
                    cprofile_path=args.out.parent / f"feature_profile_{k}.txt",
                    wait_s=args.wait_quiet,
                )
                profile[k]["n_files"] = len(paths)
                profile[k]["extract_shard_threads1_cpu"] = (
                    1000 * best[(k, "pipeline", 1)]["cpu_s"] / len(all_paths)
                )
                naive_profile[k] = profile_naive(
                    paths, scratch, repeats=max(args.repeats, 3), wait_s=args.wait_quiet
                )

        # ---- print -----------------------------------------------------------------------
        print()
        print(
            f"Feature-extraction throughput (x real time = seconds of audio per second), best of "
            f"{args.repeats}; {machine['cpu_count']} cores, {_dt.date.today().isoformat()}"
        )
        hdr = (
            f"{'content':<28} {'method':<9} {'wkr':>3} {'files':>5} {'audio s':>8} "
            f"{'wall s':>7} {'CPU s':>7} {'xRT/CPU-s':>10} {'xRT/wall-s':>11} {'ms CPU/file':>11}"
            f" {'others':>6}"
        )
        print(hdr)
        print("-" * len(hdr))
        for row in results:
            label = sets[row["content"]][0].label
            if row["method"] == "compute-only" and row["workers"] == 1:
                print(f"{'  diagnostic, not a contender:':<28}")
            print(
                f"{label:<28} {row['method']:<9} {row['workers']:>3} {row['n_files']:>5} "
                f"{row['audio_s']:>8.0f} {row['wall_s']:>7.3f} {row['cpu_s']:>7.3f} "
                f"{row['x_rt_per_cpu_s']:>10.0f} {row['x_rt_per_wall_s']:>11.0f} "
                f"{row['ms_cpu_per_file']:>11.2f} {row['others_cores_in_fastest']:>6.2f}"
            )
        print(
            "xRT = seconds of audio per second; 'others' = cores used by other processes during "
            "the fastest repeat;\ncompute-only = extract_track over a 2-thread pool, no Dask "
            "rounds, no store (shows what the hardware allows)"
        )
        print()
        for k in sets:
            d = {key.removeprefix(f"{k}_"): v for key, v in derived.items() if key.startswith(k)}
            print(
                f"{sets[k][0].label:<28} pipeline/naive per CPU-s: "
                f"1 wkr {d['vs_naive_cpu_w1']:.2f}x, 2 wkr {d['vs_naive_cpu_w2']:.2f}x; "
                f"per wall-s: 1 wkr {d['vs_naive_wall_w1']:.2f}x, "
                f"2 wkr {d['vs_naive_wall_w2']:.2f}x"
            )
            print(
                f"{'':<28} speed-up on 2 cores (wall 1 / wall 2): pipeline "
                f"{d['pipeline_speedup_2']:.2f}x, naive {d['naive_speedup_2']:.2f}x, "
                f"compute-only {d['compute-only_speedup_2']:.2f}x"
            )
        busiest = max(row["others_cores_in_fastest"] for row in results)
        if busiest > 0.1:
            print(
                f"NOTE: other processes used up to {busiest:.2f} cores during the fastest repeats: "
                "wall times (and 2-worker speed-ups) are pessimistic; rerun on a quiet machine."
            )
        print()
        print("Targets")
        for t in targets:
            print(
                f"  [{'PASS' if t['pass'] else 'MISS'}] {t['target']}: {t['value']:.2f} "
                f"(target >= {t['threshold']:g})"
            )
        print()
        print("Agreement pipeline vs naive on one file (dB, naive clamped at top_db=80):")
        for k, a in agreement.items():
            print(f"  {sets[k][0].label}: max {a['max_abs_db']:.3f}, mean {a['mean_abs_db']:.4f}")
        if profile:
            stages = [
                ("decode_open_close", "decode: open+close (SoundFile)"),
                ("decode_read", "decode: SoundFile.read"),
                ("downmix", "down-mix"),
                ("resample", "resample (soxr HQ stream)"),
                ("windowing_checks", "windowing + isfinite/peak checks"),
                ("stack_concat", "np.stack/concatenate"),
                ("logmel", "log-mel (Extractor.__call__)"),
                ("float16_cast", "float16 cast"),
                ("zarr_windows", "Zarr: window chunks (StoreWriter._flush)"),
                ("zarr_fixed", "Zarr: create+index+attrs (per shard)/n"),
                ("total", "total (1 thread, no Dask)"),
                ("extract_shard_threads1_cpu", "extract_shard(threads=1), timed run"),
            ]
            print()
            print(
                "Pipeline profile, CPU ms per file (best of repeats, single thread, process_time; "
                + ", ".join(f"{profile[k]['n_files']} {k} files" for k in profile)
                + ")"
            )
            keys = list(profile)
            print(f"  {'stage':<40}" + "".join(f"{k:>17} {'DATA.md':>8}" for k in keys))
            ref_key = {"decode_read": "decode", "resample": "resample", "logmel": "logmel"}
            ref_key["total"] = "total"
            for key, name in stages:
                cells = []
                for k in keys:
                    ref = DATA_MD_REF_MS[k].get(ref_key.get(key, ""), None)
                    cells.append(
                        f"{profile[k].get(key, 0.0):>17.2f} "
                        + (f"{ref:>8.2f}" if ref is not None else f"{'':>8}")
                    )
                print(f"  {name:<40}" + "".join(cells))
            print(
                "  (Zarr create+index+attrs is a per-shard cost: "
                + ", ".join(
                    f"{k} {profile[k]['zarr_fixed'] * profile[k]['n_files']:.0f} ms "
                    f"over {profile[k]['n_files']} files"
                    for k in keys
                )
                + ")"
            )
            ratios = [
                (profile[k].get("decode_read", 0) + profile[k].get("decode_open_close", 0))
                / DATA_MD_REF_MS[k]["decode"]
                for k in keys
            ] + [profile[k]["logmel"] / DATA_MD_REF_MS[k]["logmel"] for k in keys]
            if "stereo" in profile:
                ratios.append(profile["stereo"]["resample"] / DATA_MD_REF_MS["stereo"]["resample"])
            slowdown = float(np.exp(np.mean(np.log(ratios))))
            profile["slowdown_vs_data_md"] = slowdown
            print(
                f"  (DATA.md: per-file ms implied by its one-core figures; decode, resample and "
                f"log-mel here ran {slowdown:.2f}x slower on geometric mean:\n   absolute x-real-"
                "time numbers depend on the machine's state, pipeline/naive ratios much less)"
            )
            print()
            print("Naive loop profile, CPU ms per file (1 process)")
            for key in naive_profile[keys[0]]:
                print(
                    f"  {key:<40}"
                    + "".join(f"{naive_profile[k][key]:>17.2f} {'':>8}" for k in keys)
                )
        elapsed = time.perf_counter() - t_start
        print(f"\n(total benchmark time {elapsed:.0f} s)")

        # ---- JSON ------------------------------------------------------------------------
        payload = {
            "benchmark": "feature_throughput",
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "machine": machine,
            "load_avg_at_end": list(os.getloadavg()),
            "cpu_pressure_at_end": _cpu_pressure(),
            "args": {
                "n_files": args.n_files,
                "n_stereo": n_stereo,
                "repeats": args.repeats,
                "quick": args.quick,
                "wait_quiet": args.wait_quiet,
                "seed": args.seed,
            },
            "settings": {
                "pipeline": FeatureSettings(name="logmel").to_dict(),
                "pipeline_storage": {"compression": "none", "windows_per_shard": 0},
                "naive": {
                    "sr": SR,
                    "n_fft": N_FFT,
                    "hop_length": HOP,
                    "n_mels": N_MELS,
                    "power_to_db": "defaults (ref=1, amin=1e-10, top_db=80)",
                    "save": "np.save float32 per file",
                },
                "workers": "pipeline: extract_shard(threads=N) (Dask threads); naive: 1 = loop "
                "in-process, 2 = multiprocessing fork Pool(2), map chunksize=1, pool start/join "
                "timed",
                "cpu_time": "getrusage SELF+CHILDREN user+sys; best (min) of repeats",
            },
            "files": files_info,
            "results": results,
            "derived": derived,
            "targets": targets,
            "agreement_db": agreement,
            "profile_ms_per_file": profile,
            "naive_profile_ms_per_file": naive_profile,
            "elapsed_s": elapsed,
            "waited_for_quiet_s": waited,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2))
        print(f"wrote {args.out}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


# --------------------------------------------------------------------------------------------
# Real music, whole processes (--real)
# --------------------------------------------------------------------------------------------

#: Set -> (material key, times each file is used).
REAL_SETS = {
    "mtat": ("mtat", 10),
    "jamendo": ("jamendo", 3),
    "mixed_mtat": ("mixed_mtat", 1),
    "mixed_jamendo": ("mixed_jamendo", 1),
}


def _audio_seconds(paths: list[Path]) -> float:
    return float(sum(sf.info(str(p)).duration for p in paths))


def _decode_ceiling(sets: dict) -> dict[str, float]:
    """Seconds of audio per CPU-second of libsndfile decoding alone (in this process, one
    thread, best of 3) for the distinct files of each clip set: the ceiling of any contender
    that decodes with it."""
    import soundfile as sf

    out: dict[str, float] = {}
    for name in ("mtat", "jamendo"):
        if name not in sets:
            continue
        paths = sorted({str(p) for p in pd.read_parquet(sets[name]["tracks"])["path"]})
        audio_s = sum(sf.info(p).duration for p in paths)
        best = math.inf
        for _ in range(3):
            start = time.process_time()
            for path in paths:
                sf.read(path, dtype="float32")
            best = min(best, time.process_time() - start)
        out[name] = audio_s / best
        print(f"decode alone (libsndfile, 1 thread), {name}: {out[name]:,.0f}x real time per CPU-s")
    return out


def _run_process(contender: str, tracks: Path, *, threads: int, out: Path) -> dict[str, float]:
    """One whole child process (``feature_process.py``): wall and CPU from ``os.wait4``."""
    import subprocess

    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent / "src"), *filter(None, [env.get("PYTHONPATH")])]
    )
    busy0 = _system_busy_s()
    t0 = time.time()
    cmd = [sys.executable, str(HERE / "feature_process.py"), contender, "--tracks", str(tracks)]
    cmd += ["--out", str(out), "--threads", str(threads), "--started", repr(t0)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0 or "RESULT " not in stdout:
        raise RuntimeError(f"{contender} on {tracks} failed ({proc.returncode}): {stderr[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    inner = json.loads(stdout.split("RESULT ", 1)[1].splitlines()[0])
    others = max(_system_busy_s() - busy0 - cpu, 0.0) / wall
    return {"wall_s": wall, "cpu_s": cpu, "others_cores": others, **inner}


def _write_tracks(path: Path, files: list[Path], uses: int) -> Path:
    rows = [(f"{p.stem}-{u}", str(p)) for u in range(uses) for p in files]
    pd.DataFrame(rows, columns=["track_id", "path"]).to_parquet(path, index=False)
    return path


def run_real(args: argparse.Namespace) -> int:
    """Whole processes on real music: the pipeline's rule script against the naive loop."""
    import statistics

    sys.path.insert(0, str(HERE))
    import real_music

    try:
        material = real_music.material(args.music_cache)
    except real_music.MaterialMissing as exc:
        print(f"feature_throughput --real: {exc}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="feature_real_"))
    repeats = 1 if args.quick else args.repeats
    sets = {}
    for name, (key, uses) in REAL_SETS.items():
        files = material[key][: 8 if args.quick else None]
        sets[name] = {
            "tracks": _write_tracks(work / f"{name}.parquet", files, 1 if args.quick else uses),
            "n_files": len(files) * (1 if args.quick else uses),
            "audio_s": _audio_seconds(files) * (1 if args.quick else uses),
        }
    one = {
        k: _write_tracks(work / f"one_{k}.parquet", material[k][:1], 1) for k in ("mtat", "jamendo")
    }
    machine = machine_info()
    print(
        f"feature_throughput --real: {machine['cpu_count']} cores, load avg "
        f"{machine['load_avg_at_start'][0]:.2f}; material {args.music_cache}; {repeats} repeats",
        flush=True,
    )
    for name, s in sets.items():
        print(f"  {name}: {s['n_files']} files, {s['audio_s'] / 60:.1f} min of audio", flush=True)
    configs = [("fixed", k, c, 1) for k in one for c in ("pipeline", "naive")]
    configs += [("set", name, c, t) for name in sets for t in (1, 2) for c in ("pipeline", "naive")]
    raw: dict[tuple, list[dict]] = {cfg: [] for cfg in configs}
    # Warm-up (untimed): page cache, Python's bytecode caches.
    for c in ("pipeline", "naive"):
        _run_process(c, one["mtat"], threads=1, out=work / "warm")
    for rep in range(repeats):
        for cfg in configs:  # interleaved: each contender next to the other, every repeat
            kind, name, contender, threads = cfg
            tracks = one[name] if kind == "fixed" else sets[name]["tracks"]
            raw[cfg].append(_run_process(contender, tracks, threads=threads, out=work / "out"))
        print(f"  repeat {rep + 1}/{repeats} done", flush=True)

    def med(cfg: tuple, key: str) -> float:
        return statistics.median(r[key] for r in raw[cfg])

    report: dict = {"machine": machine, "repeats": repeats, "sets": {}, "fixed": {}}
    print("\nfixed cost (one 29-30 s clip, whole process, median):")
    for k in one:
        row = {}
        for c in ("pipeline", "naive"):
            cfg = ("fixed", k, c, 1)
            row[c] = {"wall_s": med(cfg, "wall_s"), "cpu_s": med(cfg, "cpu_s")}
            print(f"  {k:8s} {c:9s} wall {row[c]['wall_s']:.2f} s, CPU {row[c]['cpu_s']:.2f} s")
        report["fixed"][k] = row
    header = (
        f"\n{'set':14s} {'thr':>3s} {'contender':9s} {'wall s':>7s} {'CPU s':>7s} "
        f"{'x rt/CPU-s':>10s} {'others':>6s}  naive/pipeline wall, CPU (median of ratios)"
    )
    print(header)
    for name, s in sets.items():
        report["sets"][name] = {"n_files": s["n_files"], "audio_s": s["audio_s"], "runs": {}}
        for t in (1, 2):
            p, n = ("set", name, "pipeline", t), ("set", name, "naive", t)
            ratios = {
                key: statistics.median(b[key] / a[key] for a, b in zip(raw[p], raw[n], strict=True))
                for key in ("wall_s", "cpu_s")
            }
            for cfg in (p, n):
                contender = cfg[2]
                wall, cpu = med(cfg, "wall_s"), med(cfg, "cpu_s")
                others = med(cfg, "others_cores")
                entry = {"wall_s": wall, "cpu_s": cpu, "others_cores": others, "raw": raw[cfg]}
                fixed_key = "mtat" if "mtat" in name else "jamendo"
                fixed_cpu = report["fixed"][fixed_key][contender]["cpu_s"]
                # Steady state: CPU beyond the fixed cost, per second of audio.
                entry["steady_x_per_cpu_s"] = s["audio_s"] / max(cpu - fixed_cpu, 1e-9)
                report["sets"][name]["runs"][f"{contender}_{t}"] = entry
                tail = (
                    f"  {ratios['wall_s']:.2f}x, {ratios['cpu_s']:.2f}x"
                    if contender == "naive"
                    else ""
                )
                print(
                    f"{name:14s} {t:3d} {contender:9s} {wall:7.2f} {cpu:7.2f} "
                    f"{entry['steady_x_per_cpu_s']:10.0f} {others:6.2f}{tail}"
                )
            report["sets"][name][f"naive_over_pipeline_{t}"] = ratios
        for c in ("pipeline", "naive"):
            r = report["sets"][name]["runs"]
            speedup = r[f"{c}_1"]["wall_s"] / r[f"{c}_2"]["wall_s"]
            # Steady state: the wall time beyond the fixed cost of a one-clip process.
            fixed_wall = report["fixed"]["mtat" if "mtat" in name else "jamendo"][c]["wall_s"]
            steady = (r[f"{c}_1"]["wall_s"] - fixed_wall) / max(
                r[f"{c}_2"]["wall_s"] - fixed_wall, 1e-9
            )
            report["sets"][name][f"speedup_2_{c}"] = speedup
            report["sets"][name][f"steady_speedup_2_{c}"] = steady
            print(
                f"{name:14s}     {c:9s} 2-worker speed-up (wall 1 / wall 2): {speedup:.2f}x "
                f"whole process, {steady:.2f}x beyond the fixed cost"
            )
    report["decode_only"] = _decode_ceiling(sets)
    out = args.out.with_name("feature_throughput_real.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"\nwritten {out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
