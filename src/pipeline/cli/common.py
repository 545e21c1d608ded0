"""What the commands of :mod:`pipeline.cli` share: exit codes, the command record, one-line
messages, argument types and stream options, and capturing what C libraries print.

Light on purpose (no numpy, no torch): ``pipeline --help`` imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pipeline.errors import PipelineError
from pipeline.io.files import one_line

__all__ = ["EXIT_OK", "EXIT_FAILED_FILES", "EXIT_USAGE", "Command"]


EXIT_OK = 0


#: Some files could not be tagged; the others were.
EXIT_FAILED_FILES = 1


#: Usage error, or the checkpoint, device or an output path is unusable; nothing was tagged.
EXIT_USAGE = 2


@dataclass(frozen=True)
class Command:
    """A subcommand: its one-line help, its arguments and its handler (returns the exit code)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str | None = None


class Messages:
    """One-line errors and warnings on stderr, prefixed with the command."""

    def __init__(self, *, command: str, stream: TextIO) -> None:
        self.prefix = f"pipeline {command}"
        self.stream = stream

    def error(self, message: object) -> None:
        print(f"{self.prefix}: error: {one_line(message)}", file=self.stream, flush=True)

    def warning(self, message: object) -> None:
        print(f"{self.prefix}: warning: {one_line(message)}", file=self.stream, flush=True)


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def stream_options(parser: argparse.ArgumentParser, *, json_help: str) -> None:
    """Options of every command that streams audio files through a checkpoint."""
    parser.add_argument(
        "--json",
        action="store_true",
        help=f"JSON Lines on stdout: one object per file ({json_help})",
    )
    parser.add_argument(
        "--max-duration",
        type=_positive_float,
        metavar="SECONDS",
        help="read at most this much of each file (default: all of it; training read at "
        "most the checkpoint's window.max_duration_s)",
    )
    parser.add_argument(
        "--device",
        default=None,
        metavar="DEVICE",
        help="torch device: cpu, cuda, cuda:1 (default: cuda when available, else cpu)",
    )


def device_name(name: str | None) -> str:
    """The torch device to use; default CUDA when available (as training).

    Raises
    ------
    PipelineError
        ``name`` is not a torch device, or names CUDA where there is none.
    """
    import torch

    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PipelineError(
            f"--device {name!r} is not a torch device (cpu, cuda, cuda:1, ...)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PipelineError(f"--device {name!r}: CUDA is not available on this machine")
    return name


def output_names(paths: Sequence[str]) -> list[str]:
    """A distinct taggram file stem per input (``a.flac``, ``a.wav`` -> ``a``, ``a-2``)."""
    used: set[str] = set()
    names = []
    for path in paths:
        stem = Path(path).stem or "audio"
        name, k = stem, 1
        while name in used:
            k += 1
            name = f"{stem}-{k}"
        used.add(name)
        names.append(name)
    return names


def failure_record(path: str, error: str) -> dict[str, Any]:
    return {
        "path": path,
        "ok": False,
        "error": error,
        "warnings": [],
        "duration_s": None,
        "n_windows": 0,
        "sample_rate": None,
        "channels": None,
        "tags": [],
        "probabilities": [],
    }


@contextlib.contextmanager
def c_stderr_captured() -> Iterator[list[str]]:
    """Collect what C libraries write to file descriptor 2 while the block runs.

    libsndfile's MP3 decoder (mpg123) prints notes such as ``Note: Illegal Audio-MPEG-Header``
    straight to the process's stderr; the caller turns them into one line, or drops them when
    the file failed anyway. Python's own messages during the block come back in the list too.
    """
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr: nothing to capture
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", errors="replace").splitlines())


def replay(lines: list[str], *, stream: TextIO) -> list[str]:
    """Print the pipeline's own captured lines again; return the C libraries' lines."""
    ours = [line for line in lines if line.startswith("pipeline ")]
    for line in ours:
        print(line, file=stream, flush=True)
    return [one_line(line) for line in lines if line.strip() and line not in ours]


def file_error(path: str, exc: BaseException) -> str:
    """An error message that names the file (AudioError messages already do)."""
    message = one_line(exc)
    if not isinstance(exc, PipelineError):  # unexpected: say what kind of error
        message = f"{type(exc).__name__}: {message}"
    return message if path in message else f"{path!r}: {message}"
