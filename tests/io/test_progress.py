"""Progress lines of long jobs, on a clock the tests move by hand."""

from __future__ import annotations

import doctest
import io
import logging
import math

import pytest

import pipeline.io.progress as progress_module
from pipeline.errors import ConfigError
from pipeline.io.progress import (
    BAR_ENV,
    INTERVAL_ENV,
    Progress,
    format_duration,
    progress_interval_s,
)


class Clock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _progress(caplog: pytest.LogCaptureFixture, clock: Clock, **kwargs: object) -> Progress:
    logger = logging.getLogger("tests.progress")
    caplog.set_level(logging.INFO, logger="tests.progress")
    options: dict = {"total": 100, "name": "extract shard 3", "interval_s": 30.0, "bar": False}
    options.update(kwargs)
    return Progress(logger=logger, clock=clock, **options)


def test_lines_come_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = _progress(caplog, clock)
    for _ in range(100):  # one track a second for 100 s: lines at 30, 60 and 90 s
        clock.now += 1.0
        progress.advance(audio_s=30.0)
    assert len(caplog.messages) == 3
    assert caplog.messages[0] == (
        "extract shard 3: 30/100 tracks (30.0 %), 0.25 h of audio, 1 tracks/s "
        "(30x real time), elapsed 30 s, ETA 1 min 10 s"
    )
    assert caplog.messages[2].startswith("extract shard 3: 90/100 tracks (90.0 %), 0.75 h of audio")
    assert caplog.messages[2].endswith("elapsed 1 min 30 s, ETA 10 s")
    progress.close()
    assert caplog.messages[-1] == (
        "extract shard 3: 100/100 tracks (100.0 %), 0.83 h of audio, 1 tracks/s "
        "(30x real time), elapsed 1 min 40 s, done"
    )
    progress.close()  # idempotent
    assert len(caplog.messages) == 4


def test_a_flood_of_fast_items_logs_one_line_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    progress = _progress(caplog, clock, total=1_000_000, unit="batches")
    for _ in range(1_000_000):  # a million items in 100 s
        clock.now += 1e-4
        progress.advance()
    assert len(caplog.messages) == 3  # 30, 60, 90 s
    assert (
        "ETA" in caplog.messages[0] and "h of audio" not in caplog.messages[0]
    )  # no audio: no hours


def test_a_job_shorter_than_the_interval_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    with _progress(caplog, clock) as progress:
        for _ in range(100):
            clock.now += 0.1
            progress.advance(audio_s=30.0)
    assert caplog.messages == []


def test_slow_items_log_at_each_item_after_the_interval(caplog: pytest.LogCaptureFixture) -> None:
    """One hour-long track every 10 minutes: every item is news."""
    clock = Clock()
    progress = _progress(caplog, clock, total=3)
    for _ in range(3):
        clock.now += 600.0
        progress.advance(audio_s=3600.0)
    assert [line.split(": ")[1].split(",")[0] for line in caplog.messages] == [
        "1/3 tracks (33.3 %)",
        "2/3 tracks (66.7 %)",
        "3/3 tracks (100.0 %)",
    ]
    assert "ETA 20 min 0 s" in caplog.messages[0] and "6x real time" in caplog.messages[0]
    assert caplog.messages[2].endswith("ETA 0 s")


def test_eta_is_unknown_before_the_first_item(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = _progress(caplog, clock)
    clock.now += 5
    assert math.isinf(progress.eta_s())
    assert progress.line().endswith("ETA unknown")


def test_without_a_total_the_count_has_no_percentage_nor_eta(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    progress = _progress(caplog, clock, total=0, unit="batches")
    clock.now += 40
    progress.advance(2)
    assert caplog.messages == [
        "extract shard 3: 2 batches, 0.05 batches/s, elapsed 40 s, ETA unknown"
    ]


def test_the_final_line_can_be_left_out(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = _progress(caplog, clock, total=2, final=False)
    clock.now += 40
    progress.advance()
    progress.close()
    assert len(caplog.messages) == 1


def test_non_finite_audio_durations_are_not_counted(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = _progress(caplog, clock)
    progress.advance(audio_s=math.nan)
    progress.advance(audio_s=7200.0)
    assert progress.done == 2 and progress.audio_s == 7200.0


def test_bar_is_redrawn_in_place_at_most_once_per_bar_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    stream = io.StringIO()
    progress = _progress(caplog, clock, total=10, bar=True, stream=stream)
    for _ in range(10):
        clock.now += 0.25
        progress.advance(audio_s=10.0)
    progress.close()
    text = stream.getvalue()
    draws = text.split("\r")[1:]
    assert len(draws) == 4  # at 0.25 s, 1.25 s, 2.25 s and at the end
    assert draws[0].startswith("extract shard 3 [##----------------------] 1/10 tracks")
    assert draws[-1].startswith("extract shard 3 [########################] 10/10 tracks")
    assert text.endswith("\n") and caplog.messages == []  # a bar is no log line


def test_bar_follows_the_terminal_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv(BAR_ENV, raising=False)
    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        progress = _progress(caplog, Clock(), bar=None, stream=stream)
        progress.close()
        assert (stream.getvalue() != "") is shown
    monkeypatch.setenv(BAR_ENV, "0")
    stream = Terminal()
    _progress(caplog, Clock(), bar=None, stream=stream).close()
    assert stream.getvalue() == ""


def test_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert progress_interval_s({}) == 30.0
    assert progress_interval_s({INTERVAL_ENV: "5"}) == 5.0
    for bad in ("0", "-3", "nan", "inf", "soon"):
        with pytest.raises(ConfigError, match=f"{INTERVAL_ENV}='{bad}' must be"):
            progress_interval_s({INTERVAL_ENV: bad})
    monkeypatch.setenv(INTERVAL_ENV, "2.5")
    made = Progress(total=1, name="x", logger=logging.getLogger("x"), bar=False)
    assert made.interval_s == 2.5


def test_format_duration() -> None:
    assert format_duration(0) == "0 s"
    assert format_duration(59.6) == "1 min 0 s"
    assert format_duration(7322) == "2 h 2 min"
    assert format_duration(math.inf) == "unknown"


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(progress_module).failed == 0
