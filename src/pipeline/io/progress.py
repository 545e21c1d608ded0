"""Progress of a long job in its log: items done of the total, audio hours, rate and ETA.

A shard of feature extraction or collection tagging can run for hours on a cluster; its log
says how far it is at most every ``interval_s`` seconds (30 by default), so a cluster log never
floods however fast items go, and a job shorter than that writes no progress line at all::

    extract results/demo/features/logmel/3.zarr: 120/480 tracks (25.0 %), 1.02 h of audio,
    1.33 tracks/s (31x real time), elapsed 1 min 30 s, ETA 4 min 30 s

On a terminal (stderr is a TTY) a one-line bar is redrawn in place too, at most once per
``bar_interval_s``. The interval of the log lines is :data:`INTERVAL_ENV` in the environment
(seconds), else :data:`DEFAULT_INTERVAL_S`: a logging setting, deliberately not a config key,
so that changing it never re-runs a job. :data:`BAR_ENV` ``0`` or ``1`` turns the bar off or
on whatever stderr is.

The clock is a parameter (``time.monotonic`` by default), so the timing is testable.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from pipeline.errors import ConfigError

__all__ = [
    "Progress",
    "format_duration",
    "progress_interval_s",
    "DEFAULT_INTERVAL_S",
    "INTERVAL_ENV",
    "BAR_ENV",
]

#: Seconds between two progress lines in a job's log.
DEFAULT_INTERVAL_S = 30.0
#: Environment variable overriding :data:`DEFAULT_INTERVAL_S` (seconds, > 0).
INTERVAL_ENV = "PIPELINE_PROGRESS_INTERVAL_S"
#: Environment variable forcing the terminal bar off (``0``) or on (``1``).
BAR_ENV = "PIPELINE_PROGRESS_BAR"


def progress_interval_s(environ: dict[str, str] | None = None) -> float:
    """The interval of progress lines: :data:`INTERVAL_ENV` when set, else 30 s.

    Raises
    ------
    ConfigError
        The variable is not a finite number > 0 (the message quotes it).
    """
    env = os.environ if environ is None else environ
    text = env.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{INTERVAL_ENV}={text!r} must be a number of seconds > 0")
    return value


def format_duration(seconds: float) -> str:
    """``3725`` -> ``'1 h 2 min'``, ``90`` -> ``'1 min 30 s'``, ``4.2`` -> ``'4 s'``.

    Examples
    --------
    >>> format_duration(3725), format_duration(90), format_duration(4.2), format_duration(-1)
    ('1 h 2 min', '1 min 30 s', '4 s', '0 s')
    """
    if not math.isfinite(seconds):
        return "unknown"
    total = max(int(round(seconds)), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


class Progress:
    """Counts finished items of a job and reports how far it is, without flooding the log.

    Parameters
    ----------
    total : int
        Items the job will process (tracks, files, batches); 0 when unknown (the lines then
        give the count without a total and no ETA).
    name : str
        What the job is, at the start of every line (``extract results/.../3.zarr``).
    logger : logging.Logger
        Where the lines go (the job's log).
    unit : str
        Plural name of the items (``tracks``, ``files``, ``batches``).
    interval_s : float, optional
        Least seconds between two log lines; None: :func:`progress_interval_s`.
    bar : bool, optional
        Redraw a one-line bar on ``stream``; None: when :data:`BAR_ENV` says so, else when
        ``stream`` is a terminal.
    bar_interval_s : float
        Least seconds between two redraws of the bar.
    final : bool
        Log a last line at :meth:`close` when at least one line was logged before (a job
        that said how far it was also says that it ended).
    clock : callable
        Seconds of a monotonic clock; ``time.monotonic`` by default.
    stream : text stream, optional
        Where the bar is drawn; ``sys.stderr`` by default.

    Examples
    --------
    >>> import logging
    >>> now = [0.0]
    >>> p = Progress(total=4, name="demo", logger=logging.getLogger("demo"), interval_s=30,
    ...              bar=False, clock=lambda: now[0])
    >>> now[0] = 10.0; p.advance(audio_s=60.0)
    >>> p.eta_s()
    30.0
    >>> p.line().split(", ")[:3]
    ['demo: 1/4 tracks (25.0 %)', '0.02 h of audio', '0.1 tracks/s (6x real time)']
    """

    def __init__(
        self,
        *,
        total: int,
        name: str,
        logger: logging.Logger,
        unit: str = "tracks",
        interval_s: float | None = None,
        bar: bool | None = None,
        bar_interval_s: float = 1.0,
        final: bool = True,
        clock: Callable[[], float] = time.monotonic,
        stream: TextIO | None = None,
    ) -> None:
        self.total = max(int(total), 0)
        self.name = name
        self.unit = unit
        self.interval_s = progress_interval_s() if interval_s is None else float(interval_s)
        if not self.interval_s > 0:
            raise ConfigError(f"progress interval_s: {interval_s!r} must be > 0")
        self.done = 0
        self.audio_s = 0.0
        self.lines_logged = 0
        self._logger = logger
        self._clock = clock
        self._stream = sys.stderr if stream is None else stream
        self._bar = _want_bar(self._stream) if bar is None else bar
        self._bar_interval_s = bar_interval_s
        self._final = final
        self._started = clock()
        self._last_line = self._started
        self._last_bar = -math.inf
        self._closed = False

    # --------------------------------------------------------------------------- counting

    def advance(self, n: int = 1, *, audio_s: float = 0.0) -> None:
        """``n`` more items are done, holding ``audio_s`` seconds of audio; reports when due."""
        self.done += n
        if math.isfinite(audio_s) and audio_s > 0:
            self.audio_s += audio_s
        now = self._clock()
        if now - self._last_line >= self.interval_s:
            self._last_line = now
            self.lines_logged += 1
            self._logger.info("%s", self.line(now=now))
        if self._bar and now - self._last_bar >= self._bar_interval_s:
            self._last_bar = now
            self._draw(now)

    def close(self) -> None:
        """End the bar's line; log the final line (see ``final``). Idempotent."""
        if self._closed:
            return
        self._closed = True
        now = self._clock()
        if self._bar:
            self._draw(now)
            self._stream.write("\n")
            self._stream.flush()
        if self._final and self.lines_logged:
            self.lines_logged += 1
            self._logger.info("%s", self.line(now=now, done=True))

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --------------------------------------------------------------------------- text

    def line(self, *, now: float | None = None, done: bool = False) -> str:
        """The progress line: done/total, audio hours, rate, real-time factor, elapsed, ETA."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._started, 0.0)
        if self.total:
            parts = [
                f"{self.done}/{self.total} {self.unit} ({100.0 * self.done / self.total:.1f} %)"
            ]
        else:
            parts = [f"{self.done} {self.unit}"]
        if self.audio_s > 0:
            parts.append(f"{self.audio_s / 3600:.2f} h of audio")
        if elapsed > 0:
            rate = self.done / elapsed
            speed = f"{rate:.3g} {self.unit}/s"
            if self.audio_s > 0:
                speed += f" ({self.audio_s / elapsed:.0f}x real time)"
            parts.append(speed)
        parts.append(f"elapsed {format_duration(elapsed)}")
        if done:
            parts.append("done")
        else:
            parts.append(f"ETA {format_duration(self.eta_s(now=now))}")
        return f"{self.name}: " + ", ".join(parts)

    def eta_s(self, *, now: float | None = None) -> float:
        """Seconds left at the mean rate so far; ``inf`` before the first item or without a
        total, 0 at the end."""
        now = self._clock() if now is None else now
        if not self.total:
            return math.inf
        left = max(self.total - self.done, 0)
        if not left:
            return 0.0
        elapsed = now - self._started
        if self.done <= 0 or elapsed <= 0:
            return math.inf
        return left * elapsed / self.done

    def _draw(self, now: float) -> None:
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * min(filled, width) + "-" * (width - min(filled, width))
        text = self.line(now=now).removeprefix(f"{self.name}: ")
        self._stream.write(f"\r{self.name} [{bar}] {text}\x1b[K")
        self._stream.flush()


def _want_bar(stream: TextIO) -> bool:
    setting = os.environ.get(BAR_ENV, "").strip()
    if setting in ("0", "1"):
        return setting == "1"
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
