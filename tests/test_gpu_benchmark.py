"""``benchmarks/gpu_utilisation.py``, the measurement kept ready for a machine with a GPU:
its summary of utilisation samples, and the whole script on the CPU (the same training path)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_utilisation.py"


def _module():  # noqa: ANN202 - the script, imported by path (benchmarks is not a package)
    spec = importlib.util.spec_from_file_location("gpu_utilisation", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_starts_at_the_first_busy_sample() -> None:
    sampler = _module().UtilisationSampler(device=0, interval_s=0.1)
    values = [0.0, 0.0, float("nan"), 50.0, 90.0, 100.0, 80.0, 0.0]
    sampler.samples = [(float(i), v) for i, v in enumerate(values)]
    summary = sampler.summary()
    # start-up (the idle samples before the first busy one) and unreadable samples left out
    assert summary == {"samples": 5, "mean": 64.0, "median": 80.0, "share_ge_80": 0.6}
    sampler.samples = [(0.0, 0.0), (1.0, 0.0)]
    assert sampler.summary()["mean"] is None


def test_the_script_runs_the_training_path_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    args = ["--device", "cpu", "--tracks", "20", "--epochs", "1", "--models", "fcn"]
    args += ["--config", str(REPO / "config.yaml"), "--json", str(out)]
    run = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())["results"][0]
    assert (result["model"], result["train_windows"], result["valid_windows"]) == ("fcn", 16, 4)
    assert result["windows_per_s"] > 0 and result["utilisation"] is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_without_cuda_it_says_so_and_exits_2() -> None:
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert run.returncode == 2 and "no CUDA device" in run.stdout
