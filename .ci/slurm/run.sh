#!/usr/bin/env bash
# CI: run the workflow on a real single-node SLURM cluster through the SLURM profile.
#
#   .ci/slurm/run.sh        (as root, from anywhere; needs .venv, see `make setup`)
#
# 1. start.sh starts munged, slurmctld and slurmd on this machine (installing slurm-wlm and
#    munge first if needed); a trap stops them again on any exit (stop.sh).
# 2. A tiny table dataset (a few real audio files written with soundfile, one corrupt file)
#    and a tiny config (one feature set, 2 shards: 5 SLURM jobs, the two shards at once) are
#    written to $SLURM_CI_WORK (default /tmp/slurm-ci-work).
# 3. profiles/slurm/config.yaml with .ci/slurm/profile/config.yaml merged over it (partition,
#    memory and threads that fit this node, fast polling) becomes the workflow profile, and
#    `snakemake --workflow-profile ...` runs under `timeout -s INT 600`.
# 4. Checks: the run succeeded, the outputs are complete, every job was submitted with sbatch
#    ("has been submitted with SLURM jobid N"), slurmd launched each of those batch jobs,
#    squeue reports each COMPLETED, each left its SLURM log, and a second run has nothing to do.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/.ci/slurm
export SLURM_CI_STATE=${SLURM_CI_STATE:-/tmp/slurm-ci}
WORK=${SLURM_CI_WORK:-/tmp/slurm-ci-work}
export PYTHONUNBUFFERED=1
# Jobs are submitted with `sbatch --export=ALL`: the job on the node gets this environment,
# so it finds the project's Python and Snakemake (.venv/bin). The cluster's configuration is
# found at /etc/slurm/slurm.conf (start.sh links it there).
export PATH=$REPO/.venv/bin:$PATH

step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

started=$(date +%s)
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    step "stop the cluster"
    "$HERE/stop.sh" || rc=1
    printf '\nslurm CI run: %s after %ss\n' "$( ((rc == 0)) && echo PASSED || echo FAILED)" \
        "$(($(date +%s) - started))"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ -x $REPO/.venv/bin/snakemake ]] || fail "no $REPO/.venv: run 'make setup' first"

step "start a single-node SLURM cluster"
"$HERE/start.sh"

step "tiny dataset and config in $WORK"
[[ $WORK == /?*/?* ]] || fail "SLURM_CI_WORK must be an absolute path two levels deep"
rm -rf "$WORK"
mkdir -p "$WORK/profile"
(cd "$REPO" && python - "$WORK" <<'EOF'
import csv
import sys
from pathlib import Path

import yaml

from tests.helpers.audio import write_audio

work = Path(sys.argv[1])
data = work / "data"
rows = []
for i, (name, sr, channels, seconds) in enumerate(
    [
        ("a.wav", 16000, 1, 5.0),
        ("b.flac", 44100, 2, 4.5),
        ("c.ogg", 22050, 1, 3.0),
        ("d.wav", 8000, 1, 6.0),
        ("e.flac", 16000, 1, 7.0),
    ]
):
    write_audio(data / name, duration_s=seconds, sample_rate=sr, channels=channels,
                freq_hz=220.0 * (1 + i % 3), seed=i)
    rows.append((name, "low" if i % 2 else "high;tone", f"artist{i % 3}"))
(data / "corrupt.flac").write_bytes(b"fLaC" + bytes(range(256)) * 20)
rows.append(("corrupt.flac", "low", "artist1"))
with (data / "tags.csv").open("w", newline="") as fh:
    csv.writer(fh).writerows([("path", "tags", "artist"), *rows])

window = {"length_s": 2.0, "hop_s": 2.0, "min_tail_s": 0.5, "max_duration_s": 10}
config = {
    "datasets": {
        "tiny": {
            "format": "table",
            "root": "data",
            "table": "tags.csv",
            "shards": 2,
            "split": {"valid_fraction": 0.25, "test_fraction": 0.25},
        }
    },
    "features": {
        "logmel": {"kind": "logmel", "n_mels": 24, "n_frames": 126, "window": window},
    },
    "extraction": {"threads": 1},
}
(work / "config.yaml").write_text(yaml.safe_dump(config))
EOF
)

step "profile: profiles/slurm + .ci/slurm/profile merged"
python - "$REPO/profiles/slurm/config.yaml" "$HERE/profile/config.yaml" \
    "$WORK/profile/config.yaml" <<'EOF'
import sys

import yaml

base, overlay, out = sys.argv[1:]


def merge(a, b):
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(a.get(key), dict):
            merge(a[key], value)
        else:
            a[key] = value
    return a


with open(base) as fh, open(overlay) as gh:
    merged = merge(yaml.safe_load(fh), yaml.safe_load(gh))
with open(out, "w") as fh:
    yaml.safe_dump(merged, fh, sort_keys=False)
EOF
cat "$WORK/profile/config.yaml"

step "snakemake --workflow-profile (SLURM executor)"
cd "$WORK"
run_started=$(date +%s)
set +e
timeout -s INT -k 60 600 \
    snakemake -s "$REPO/Snakefile" --directory "$WORK" --workflow-profile "$WORK/profile" \
    2>&1 | tee "$WORK/snakemake.log"
rc=${PIPESTATUS[0]}
set -e
run_seconds=$(($(date +%s) - run_started))
echo "snakemake exit status $rc after ${run_seconds}s"
((rc != 124)) || fail "snakemake did not finish within 600 s"
((rc == 0)) || fail "snakemake failed (exit status $rc)"

step "check: outputs"
python - <<'EOF'
import json
from pathlib import Path

import pandas as pd

results = Path("results/tiny")
assert len(pd.read_parquet(results / "manifest.parquet")) == 6
for features in ("logmel",):
    folder = results / "features" / features
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["n_tracks"], summary["n_stored"], summary["n_failed"]) == (6, 5, 1), summary
    assert len(pd.read_parquet(folder / "index.parquet")) == 5
    assert len(sorted(folder.glob("*.zarr"))) == 2
    stats = json.loads((folder / "stats.json").read_text())
    assert all(v > 0 for v in stats["std"]), stats
    print(features, summary)
EOF

step "check: every job ran as a SLURM job"
# Snakemake's own count of the jobs it ran (the local target rule `all` excluded) ...
n_jobs=$(grep -cE '^(rule|checkpoint) ' snakemake.log || true)
n_local=$(grep -cE '^localrule ' snakemake.log || true)
mapfile -t jobids < <(sed -n 's/.*has been submitted with SLURM jobid \([0-9][0-9]*\).*/\1/p' \
    snakemake.log | sort -un)
echo "jobs run: $n_jobs (+ $n_local local); submitted with sbatch: ${#jobids[@]} (ids ${jobids[*]})"
((n_jobs == 5)) || fail "expected 5 jobs (manifest, 2 shard extractions, index, stats), ran $n_jobs"
((${#jobids[@]} == n_jobs)) || fail "$n_jobs jobs ran but ${#jobids[@]} were submitted to SLURM"
states=$(squeue --noheader --states=all --format='%i|%T')
for id in "${jobids[@]}"; do
    grep -q "Launching batch job $id " "$SLURM_CI_STATE/log/slurmd.log" ||
        fail "slurmd's log does not show SLURM job $id launched"
    grep -qx "$id|COMPLETED" <<<"$states" || fail "squeue does not report job $id COMPLETED"
    log=$(find .snakemake/slurm_logs -name "$id.log" | head -n 1)
    [[ -n $log ]] || fail "no SLURM log .snakemake/slurm_logs/**/$id.log"
    grep -q "Finished job" "$log" || fail "$log does not show the job finished"
done
echo "all ${#jobids[@]} SLURM jobs launched by slurmd and COMPLETED: ${jobids[*]}"

step "check: a second run has nothing to do"
snakemake -s "$REPO/Snakefile" --directory "$WORK" --workflow-profile "$WORK/profile" \
    --dry-run 2>&1 | tee "$WORK/rerun.log" | tail -n 3
grep -q "Nothing to be done" "$WORK/rerun.log" || fail "the second run would do work"

echo "workflow on SLURM: ${run_seconds}s"
