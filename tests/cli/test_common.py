"""The ``pipeline`` command line itself: the installed script and ``python -m pipeline``,
usage errors of the parser as one line on stderr, and their exit status (real
subprocesses)."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.cli import EXIT_USAGE
from tests.helpers.cli import one_line_error, run_pipeline


def test_bad_checkpoint_is_a_one_line_usage_error(
    audio: dict[str, Path],
    tmp_path: Path,
) -> None:
    """The installed ``pipeline`` script: a missing checkpoint exits 2 with one line."""
    script = Path(sys.executable).with_name("pipeline")
    command = [str(script)] if script.exists() else None
    missing = tmp_path / "nowhere" / "checkpoint.pt"
    out = run_pipeline("tag", str(audio["flac"]), "--checkpoint", str(missing), executable=command)
    assert out.returncode == EXIT_USAGE
    assert out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [
        f"pipeline tag: error: checkpoint {str(missing)!r} does not exist"
    ]


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    out = run_pipeline("tag", "x.wav", "-c", str(tmp_path / "c.pt"), "--top", "-1")
    assert out.returncode == EXIT_USAGE
    assert "'-1' must be >= 0" in one_line_error(out)
    out = run_pipeline("tag", "x.wav")
    assert out.returncode == EXIT_USAGE
    assert "required: -c/--checkpoint" in one_line_error(out)
