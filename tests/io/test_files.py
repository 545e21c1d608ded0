"""Small I/O helpers of the rule scripts: logging to a rule's log file, JSON."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.io.files import configure_logging, read_json, write_json


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
