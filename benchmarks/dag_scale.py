"""How long Snakemake takes to build the DAG for large manifests (prints numbers).

For each size, a synthetic table dataset of N tracks is written (the audio files need not
exist: the DAG never lists them), the manifest checkpoint is run once, and then the full dry
run (``snakemake -n``) is timed with its peak memory and job count. Target: a 26,000-track
manifest (MagnaTagATune's size) builds its DAG in under 15 s.

Usage: python benchmarks/dag_scale.py [--tracks 26000 55000] [--tracks-per-shard 500]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TARGETS_S = {26_000: 15.0, 55_000: 30.0, 1_000_000: 120.0}


def _write_dataset(workdir: Path, *, n_tracks: int, n_shards: int) -> None:
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    tags = [f"tag{i}" for i in range(50)]
    with (data / "tags.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "tags", "artist"])
        for i in range(n_tracks):
            row_tags = ";".join(tags[(i * k) % 50] for k in (1, 7, 13))
            writer.writerow([f"audio/{i % 16:x}/track{i:07d}.mp3", row_tags, f"artist{i % 997}"])
    config = {
        "datasets": {
            "big": {"format": "table", "root": "data", "table": "tags.csv", "shards": n_shards}
        },
        "features": {"logmel": {"kind": "logmel"}, "mfcc": {"kind": "mfcc", "deltas": 2}},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def _snakemake(workdir: Path, *args: str) -> tuple[float, float, str]:
    """Run snakemake; return wall seconds, peak RSS in MiB of the child, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    # ru_maxrss of children is the max over all children so far (KiB on Linux).
    return wall, max(peak, before) / 1024, proc.stdout + proc.stderr


def measure(*, n_tracks: int, tracks_per_shard: int) -> dict[str, float]:
    """Time the manifest step and the dry run of the full DAG for ``n_tracks`` tracks."""
    n_shards = max(1, n_tracks // tracks_per_shard)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _write_dataset(workdir, n_tracks=n_tracks, n_shards=n_shards)
        manifest_s, _, _ = _snakemake(workdir, "--cores", "1", "results/big/manifest.parquet")
        dry_s, peak_mib, out = _snakemake(workdir, "--cores", "32", "--dry-run")
        total = re.search(r"^total\s+(\d+)", out, flags=re.MULTILINE)
        return {
            "tracks": n_tracks,
            "shards": n_shards,
            "jobs": int(total.group(1)) if total else -1,
            "manifest_s": round(manifest_s, 2),
            "dry_run_s": round(dry_s, 2),
            "dry_run_peak_mib": round(peak_mib, 1),
            "target_s": TARGETS_S.get(n_tracks, float("nan")),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, nargs="+", default=[26_000])
    parser.add_argument("--tracks-per-shard", type=int, default=500)
    args = parser.parse_args()
    rows = [measure(n_tracks=n, tracks_per_shard=args.tracks_per_shard) for n in args.tracks]
    header = f"{'tracks':>9} {'shards':>7} {'jobs':>6} {'manifest s':>11} {'dry-run s':>10}"
    print(header + f" {'peak MiB*':>9} {'target s':>9}")
    for r in rows:
        print(
            f"{r['tracks']:>9} {r['shards']:>7} {r['jobs']:>6} {r['manifest_s']:>11.2f} "
            f"{r['dry_run_s']:>10.2f} {r['dry_run_peak_mib']:>9.1f} {r['target_s']:>9.0f}"
        )
    print("* peak resident memory of the snakemake processes (manifest run and dry run)")
    out = REPO / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "dag_scale.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
