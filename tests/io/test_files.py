"""Small I/O helpers of the rule scripts and the command line: logging to a rule's log file
and its errors, JSON that is always valid, terminal-safe messages, files checked before
opening."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.io.files import (
    configure_logging,
    file_problem,
    json_line,
    json_safe,
    one_line,
    printable,
    read_json,
    write_json,
)


def test_json_round_trip_is_readable_utf8(tmp_path: Path) -> None:
    payload = {"tags": ["café", "Ωμέγα"], "n": 3, "nested": {"x": [1.5, None, True]}}
    path = tmp_path / "deep" / "folder" / "summary.json"
    write_json(payload, path)
    text = path.read_text(encoding="utf-8")
    assert "café" in text and "Ωμέγα" in text  # not \u-escaped
    assert text.startswith('{\n  "tags": [') and text.endswith("}\n")
    assert read_json(path) == payload
    write_json([1, 2], str(path))  # str paths, and the file is replaced
    assert read_json(str(path)) == [1, 2]


@pytest.fixture()
def _restore_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("_restore_logging")
def test_logging_goes_to_the_rules_log_file(tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "rule.log"
    log_path.parent.mkdir()
    log_path.write_text("an earlier run\n")
    configure_logging(log_path=log_path, level=logging.INFO)
    logging.getLogger("pipeline.test").info("stored %d tracks", 5)
    logging.getLogger("pipeline.test").debug("not shown")
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = log_path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1  # the earlier run is gone
    assert lines[0].endswith(" INFO pipeline.test: stored 5 tracks")


@pytest.mark.usefixtures("_restore_logging")
def test_logging_without_a_file_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level=logging.WARNING)
    logging.getLogger("pipeline.test").warning("careful")
    logging.getLogger("pipeline.test").info("quiet")
    err = capsys.readouterr().err
    assert "WARNING pipeline.test: careful" in err and "quiet" not in err


# --------------------------------------------------------------------------------------------
# rule_errors: a rule script's PipelineError is one line; a bug keeps its traceback
# --------------------------------------------------------------------------------------------


def _rule_script(tmp_path: Path, raised: str) -> tuple[subprocess.CompletedProcess, str]:
    """Run a script like ``workflow/scripts/*.py`` whose body raises ``raised``."""
    log = tmp_path / "logs" / "rule.log"
    script = tmp_path / "rule.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import logging
            from pipeline.errors import ConfigError
            from pipeline.io.files import rule_errors

            with rule_errors({str(log)!r}):
                logging.getLogger("pipeline.rule").info("working")
                raise {raised}
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    return out, log.read_text(encoding="utf-8")


def test_rule_errors_turn_a_pipeline_error_into_one_line(tmp_path: Path) -> None:
    raised = "ConfigError('datasets.demo.root: \\'/nowhere\\' does not exist\\n(see config)')"
    out, log = _rule_script(tmp_path, raised)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        "error: datasets.demo.root: '/nowhere' does not exist (see config)"
    ]
    assert "Traceback" not in out.stderr + log
    lines = log.splitlines()
    assert lines[0].endswith("INFO pipeline.rule: working")
    assert lines[1].endswith(
        "ERROR pipeline.io.files: datasets.demo.root: '/nowhere' does not exist (see config)"
    )
    assert len(lines) == 2


def test_rule_errors_keep_the_traceback_of_a_bug(tmp_path: Path) -> None:
    out, log = _rule_script(tmp_path, "RuntimeError('a bug')")
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "RuntimeError: a bug" in out.stderr
    assert log.splitlines()[-1].endswith("INFO pipeline.rule: working")


def test_every_rule_script_runs_in_rule_errors() -> None:
    """Each script's body is inside ``with rule_errors(smk.log[0]):`` (one line per error)."""
    scripts = sorted((Path(__file__).parents[2] / "workflow" / "scripts").glob("*.py"))
    assert scripts
    for script in scripts:
        text = script.read_text(encoding="utf-8")
        assert "with rule_errors(smk.log[0]):\n" in text, script.name
        assert "configure_logging" not in text, script.name


# --------------------------------------------------------------------------------------------
# JSON: valid by construction
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_write_json_refuses_non_finite_values_by_default(tmp_path: Path, bad: float) -> None:
    path = tmp_path / "stats.json"
    write_json({"old": True}, path)
    payload = {"split": "train", "mean": [0.5, bad], "nested": {"x": 1}}
    with pytest.raises(PipelineError, match=r"stats.json' not written: mean\[1\] is -?(nan|inf)"):
        write_json(payload, path)
    assert read_json(path) == {"old": True}  # the old file stays whole
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]  # no temporary left
    with pytest.raises(PipelineError, match=r"aggregations.mean.auc is nan"):
        write_json({"aggregations": {"mean": {"auc": math.nan}}}, path)


def test_write_json_writes_null_where_asked(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    payload = {"auc": math.nan, "per_tag": (0.5, math.inf, -math.inf), "n": np.int64(3)}
    payload |= {"alpha": np.array([1.0, np.nan], dtype=np.float32), "ok": np.bool_(True)}
    write_json(payload, path, non_finite="null")
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {
        "auc": None,
        "per_tag": [0.5, None, None],
        "n": 3,
        "alpha": [1.0, None],
        "ok": True,
    }


def test_json_safe_converts_numpy_and_leaves_json_values_alone() -> None:
    value = {"a": [1, "x", None, True, 2.5], "b": {"c": np.float64(0.25)}}
    assert json_safe(value) == value
    assert type(json_safe(np.float32(0.5))) is float and type(json_safe(np.int32(2))) is int
    assert json_safe([math.nan], non_finite="null") == [None]
    with pytest.raises(PipelineError, match=r"^\[0\] is nan"):
        json_safe([math.nan])


def test_json_line_is_valid_ascii_json_on_one_line() -> None:
    record = {"path": "a\u202eb\nc\x1b[31m.wav", "probabilities": [math.nan, 0.5, math.inf]}
    line = json_line(record)
    assert line.isascii() and line.isprintable() and "\n" not in line
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line) == {"path": record["path"], "probabilities": [None, 0.5, None]}


# --------------------------------------------------------------------------------------------
# Messages and files
# --------------------------------------------------------------------------------------------


def test_printable_escapes_what_a_terminal_would_act_on() -> None:
    assert printable("café/Ωμέγα song.wav") == "café/Ωμέγα song.wav"
    assert printable("evil\u202egnp.wav") == "evil\\u202egnp.wav"
    assert printable("a\x1b[2Jb\tc\x7f") == "a\\x1b[2Jb\\tc\\x7f"
    assert printable("bad\udcff.wav") == "bad\\udcff.wav"  # an undecodable file name
    assert one_line("line one\n  line two\u202e") == "line one line two\\u202e"
    assert one_line(ValueError("x\r\ny")) == "x y"


def test_file_problem_names_each_kind_of_path(tmp_path: Path) -> None:
    good = tmp_path / "model.pt"
    good.write_bytes(b"x")
    empty = tmp_path / "empty.pt"
    empty.touch()
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    assert file_problem(good, what="checkpoint") is None
    cases = {
        tmp_path / "missing.pt": "does not exist",
        good / "below.pt": "does not exist",  # a file used as a folder
        tmp_path: "is a directory, not a checkpoint file",
        empty: "is empty",
        fifo: "is a named pipe (FIFO), not a checkpoint file",
        Path("/dev/null"): "is a character device, not a checkpoint file",
    }
    for path, why in cases.items():
        assert file_problem(path, what="checkpoint") == f"checkpoint {str(path)!r} {why}"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_file_problem_of_an_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.pt"
    path.write_bytes(b"x")
    path.chmod(0)
    assert file_problem(path, what="checkpoint") == (
        f"checkpoint {str(path)!r} cannot be read: permission denied"
    )
