"""The dataset presets in config/ build their whole DAG on fixtures in the datasets' layouts.

The manifest checkpoint runs for real (so the DAG behind it is built), then a dry run must
list every stage up to the leaderboard.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.datasets import write_jamendo, write_mtat

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.workflow


def _snakemake(workdir: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            str(config),
            "--replace-workflow-config",
            "--cores",
            "2",
            *args,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("preset", "dataset", "write"),
    [("magnatagatune.yaml", "mtat", write_mtat), ("mtg-jamendo.yaml", "jamendo", write_jamendo)],
)
def test_preset_builds_its_dag(tmp_path: Path, preset: str, dataset: str, write) -> None:
    data = tmp_path / "data"
    write(data)
    config = yaml.safe_load((REPO / "config" / preset).read_text())
    config["datasets"][dataset]["root"] = str(data)
    (tmp_path / "preset.yaml").write_text(yaml.safe_dump(config))
    manifest = f"results/{dataset}/manifest.parquet"
    proc = _snakemake(tmp_path, tmp_path / "preset.yaml", manifest)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _snakemake(tmp_path, tmp_path / "preset.yaml", "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE))
    n_shards = config["datasets"][dataset]["shards"]
    n_models = len(config["models"])
    assert int(counts["extract_features"]) == n_shards * len(config["features"])
    assert int(counts["train_model"]) == n_models
    assert int(counts["evaluate_model"]) == n_models
    assert int(counts["leaderboard"]) == 1
