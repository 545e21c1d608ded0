"""Running the ``pipeline`` command line as a real subprocess, and checking its one-line
error messages on stderr."""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["ENV", "one_line_error", "run_pipeline"]

#: The environment of the subprocesses: one OpenMP thread, Python warnings shown.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}


def run_pipeline(
    *args: str | bytes, executable: list[str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS...`` (or ``executable ARGS...``), its output captured."""
    command = executable or [sys.executable, "-m", "pipeline"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=ENV, timeout=120, check=False
    )


def one_line_error(out: subprocess.CompletedProcess, *, command: str = "tag") -> str:
    """The only line on stderr, an error of ``pipeline <command>`` without a traceback."""
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"pipeline {command}: error: "), lines[0]
    return lines[0]
