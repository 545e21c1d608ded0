"""The SLURM profile (profiles/slurm) and its CI overlay (.ci/slurm/profile), without a cluster.

The real cluster run is .ci/slurm/run.sh. Here: the profile is YAML that Snakemake accepts,
names the slurm executor and the squeue status check, gives every rule of the workflow
threads, memory, wall time and a partition (and the training rule a GPU), and a dry run of the
workflow with it is accepted. A dry run needs no sbatch/sinfo: Snakemake plans with the
dry-run executor, and the plugin is only loaded for its settings.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.audio import write_audio

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
CI_OVERLAY = REPO / ".ci" / "slurm" / "profile" / "config.yaml"
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
# Rules whose threads come from config.yaml (models.<name>.threads), not from the profile.
THREADS_FROM_CONFIG = {"train_model", "probe_layers"}
# Resources the slurm executor plugin 2.x turns into sbatch options, plus Snakemake's own.
KNOWN_RESOURCES = {
    "slurm_partition",
    "slurm_account",
    "mem_mb",
    "mem_mb_per_cpu",
    "runtime",
    "gpu",
    "gpu_model",
    "gres",
    "cpus_per_task",
    "cpus_per_gpu",
    "tasks",
    "nodes",
    "constraint",
    "qos",
    "slurm_extra",
    "disk_mb",
    "tmpdir",
}


def workflow_rules() -> set[str]:
    """Names of the rules and checkpoints in workflow/rules/*.smk."""
    pattern = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
    return {name for path in RULE_FILES for name in pattern.findall(path.read_text())}


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def profile() -> dict:
    return load(PROFILE)


@pytest.fixture(scope="module")
def cli_options() -> set[str]:
    """Every option Snakemake's command line knows, executor plugins' included."""
    from snakemake.cli import get_argument_parser

    return set(get_argument_parser()._option_string_actions)


def test_rule_files_are_found() -> None:
    rules = workflow_rules()
    assert {"build_manifest", "extract_features", "feature_stats", "train_model"} <= rules


def test_profile_names_the_slurm_executor(profile: dict) -> None:
    assert profile["executor"] == "slurm"
    # Without an accounting database, the default `sacct` never reports jobs finished.
    assert profile["slurm-status-command"] == "squeue"
    assert isinstance(profile["jobs"], int) and profile["jobs"] > 0
    assert isinstance(profile["latency-wait"], int) and profile["latency-wait"] > 0
    assert isinstance(profile["retries"], int) and profile["retries"] >= 0


@pytest.mark.parametrize("path", [PROFILE, CI_OVERLAY], ids=["profile", "ci-overlay"])
def test_keys_are_snakemake_options(path: Path, cli_options: set[str]) -> None:
    unknown = [key for key in load(path) if f"--{key}" not in cli_options]
    assert not unknown, f"{path.name}: not Snakemake (or slurm plugin) options: {unknown}"


def test_cores_is_set_for_workflow_cores(profile: dict) -> None:
    # Rules with `threads: workflow.cores` stop a non-local run unless --cores is given.
    uses_cores = any("workflow.cores" in path.read_text() for path in RULE_FILES)
    if uses_cores:
        assert isinstance(profile.get("cores"), int)
    if "cores" in profile:
        assert profile["cores"] >= max(profile["set-threads"].values())


@pytest.mark.parametrize("rule", sorted(workflow_rules()))
def test_every_rule_has_threads_and_resources(profile: dict, rule: str) -> None:
    threads = profile["set-threads"].get(rule)
    if rule in THREADS_FROM_CONFIG:
        assert threads is None, f"set-threads would override config threads of {rule}"
    else:
        assert isinstance(threads, int) and threads >= 1, f"set-threads has no {rule}"
    resources = profile["set-resources"].get(rule)
    assert isinstance(resources, dict), f"set-resources has no {rule}"
    assert set(resources) <= KNOWN_RESOURCES, set(resources) - KNOWN_RESOURCES
    assert isinstance(resources["mem_mb"], int) and resources["mem_mb"] > 0
    assert isinstance(resources["runtime"], int) and resources["runtime"] > 0  # minutes
    assert isinstance(resources["slurm_partition"], str) and resources["slurm_partition"]


def test_no_resources_for_unknown_rules(profile: dict) -> None:
    known = workflow_rules()
    assert set(profile["set-threads"]) <= known
    assert set(profile["set-resources"]) <= known


def test_default_resources(profile: dict) -> None:
    defaults = profile["default-resources"]
    assert set(defaults) <= KNOWN_RESOURCES
    assert defaults["slurm_partition"] and defaults["mem_mb"] > 0 and defaults["runtime"] > 0


def test_training_asks_for_a_gpu(profile: dict) -> None:
    train = profile["set-resources"]["train_model"]
    # the plugin turns `gpu: N` into --gpus=N and `gres: gpu:N` into --gres=gpu:N; not both
    assert (train.get("gpu", 0) >= 1) != ("gpu" in str(train.get("gres", "")))
    cpu_partition = profile["set-resources"]["extract_features"]["slurm_partition"]
    assert train["slurm_partition"] != cpu_partition
    for rule in workflow_rules() - {"train_model"}:
        assert not profile["set-resources"][rule].get("gpu"), f"{rule} asks for a GPU"


def test_ci_overlay_covers_every_rule(profile: dict) -> None:
    overlay = load(CI_OVERLAY)
    assert "executor" not in overlay and "slurm-status-command" not in overlay
    assert set(overlay["set-threads"]) == set(profile["set-threads"]) | THREADS_FROM_CONFIG
    assert set(overlay["set-resources"]) == set(profile["set-resources"])
    cores = overlay.get("cores", profile.get("cores"))
    for rule, resources in overlay["set-resources"].items():
        assert overlay["set-threads"][rule] <= cores
        assert resources["mem_mb"] <= 2000  # two jobs fit a small CI machine
        merged = {**profile["set-resources"][rule], **resources}
        assert not merged.get("gpu") and "gpu" not in str(merged.get("gres", ""))
        assert merged["slurm_partition"] in {"cpu", "gpu"}  # the partitions of start.sh


def _tiny_workdir(root: Path) -> Path:
    data = root / "data"
    rows = [("path", "tags", "artist")]
    for i, name in enumerate(["a.wav", "b.flac", "c.wav", "d.flac"]):
        write_audio(data / name, duration_s=2.0, freq_hz=220.0 * (1 + i), seed=i)
        rows.append((name, "low" if i % 2 else "high", f"artist{i}"))
    with (data / "tags.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    config = {
        "datasets": {"tiny": {"format": "table", "root": "data", "table": "tags.csv", "shards": 2}},
        "features": {
            "logmel": {
                "kind": "logmel",
                "n_mels": 24,
                "n_frames": 126,
                "window": {"length_s": 2.0, "hop_s": 2.0, "min_tail_s": 0.5},
            }
        },
        "extraction": {"threads": 1},
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def test_dry_run_with_the_profile(tmp_path: Path) -> None:
    workdir = _tiny_workdir(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            "--workflow-profile",
            str(PROFILE.parent),
            "--dry-run",
        ],
        cwd=workdir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"workflow specific profile {PROFILE.parent}" in out
    # per-rule resources of the profile reach the jobs
    extract = re.search(r"rule extract_features:.*?resources: ([^\n]*)", out, re.DOTALL)
    assert extract, out
    expected = load(PROFILE)["set-resources"]["extract_features"]
    assert f"mem_mb={expected['mem_mb']}," in extract.group(1)
    assert f"runtime={expected['runtime']}" in extract.group(1)
    assert f"slurm_partition={expected['slurm_partition']}" in extract.group(1)
    assert re.search(r"extract_features\s+2\b", out)  # one job per shard
