"""The dry run (``snakemake -n``) stops on an impossible config setting with one line, no
traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers.bad_inputs import bad_setting_config

REPO = Path(__file__).resolve().parents[2]


def test_dry_run_stops_on_fmin_above_fmax_with_one_line(tmp_path: Path) -> None:
    config = bad_setting_config("fmin_above_fmax")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tracks.csv").write_text("path,tags\na.wav,x\n")
    (tmp_path / "music").mkdir()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n", "--cores", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    [line] = [line for line in out.splitlines() if "features.logmel.fmin" in line]
    assert line.startswith("error: config: features.logmel.fmin: 9000 Hz must be below fmax")
    assert "0 <= fmin < fmax <= sample_rate / 2 = 8000 Hz" in line
    assert "Traceback" not in out and 'File "' not in out and "ConfigError" not in out
