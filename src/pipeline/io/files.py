"""Small I/O helpers shared by the rule scripts and the command line: a rule's log and its
errors (:func:`rule_errors`), JSON that is always valid (:func:`write_json`,
:func:`json_safe`), terminal-safe messages (:func:`one_line`, :func:`printable`) and a check
that a path is a regular, non-empty file before anything opens it (:func:`stat_file`)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import stat
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pipeline.errors import PipelineError, printable
from pipeline.io.memory import keep_freed_memory

__all__ = [
    "configure_logging",
    "rule_errors",
    "write_json",
    "read_json",
    "json_safe",
    "json_line",
    "NonFinite",
    "one_line",
    "printable",
    "file_problem",
    "stat_file",
]

log = logging.getLogger(__name__)

#: What :func:`json_safe` does with NaN and infinity, which JSON cannot hold: ``"error"``
#: refuses (a PipelineError naming the key path), ``"null"`` writes ``null`` ("no value").
NonFinite = Literal["error", "null"]


def configure_logging(*, log_path: str | Path | None = None, level: int = logging.INFO) -> None:
    """Send log records to a rule's log file (and stderr when there is none)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(log_path, mode="w", encoding="utf-8")]
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


@contextlib.contextmanager
def rule_errors(log_path: str | Path | None = None, *, level: int = logging.INFO) -> Iterator[None]:
    """The body of a rule script: logs go to the rule's log, a PipelineError is one line.

    Configures logging (:func:`configure_logging`) and the process's memory allocator
    (:func:`pipeline.io.memory.keep_freed_memory`), then runs the block. A
    :class:`~pipeline.errors.PipelineError` (a bad input, setting or file: the message says
    which) becomes one ``ERROR`` line in the log file and one ``error: ...`` line on stderr
    (which Snakemake shows), and the process exits with status 1, without a traceback. Any
    other exception is a bug and keeps its traceback.

    Examples
    --------
    In ``workflow/scripts/<rule>.py``::

        with rule_errors(smk.log[0]):
            make_manifest(...)
    """
    configure_logging(log_path=log_path, level=level)
    keep_freed_memory()
    try:
        yield
    except PipelineError as exc:
        message = one_line(exc)
        log.error("%s", message)
        if log_path:  # without a log file, the record above went to stderr already
            print(f"error: {message}", file=sys.stderr, flush=True)
        logging.shutdown()
        raise SystemExit(1) from None


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def one_line(message: object) -> str:
    """A message on one line (libsndfile and torch messages hold newlines), terminal-safe
    (:func:`printable`)."""
    return printable(" ".join(str(message).split()))


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

_FILE_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def stat_file(
    path: str | Path, *, what: str, error: type[PipelineError] = PipelineError
) -> os.stat_result:
    """``os.stat`` of a regular, non-empty, readable file; never opens it.

    Only ``stat`` is called, so a named pipe or a device is refused before anything could
    block on it or read it forever. Every entry point that reads a file a user named (audio,
    checkpoints, similarity indexes) checks it here first.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file should be (``"audio"``, ``"checkpoint"``): the message starts with it.
    error : type of PipelineError
        The exception raised (``AudioError`` for audio, so that it becomes a failure row).

    Returns
    -------
    os.stat_result

    Raises
    ------
    PipelineError
        One line naming the path: it ``does not exist`` (``(a broken symbolic link)``), ``is a
        directory, not a <what> file``, is a named pipe, a device or a socket, ``is empty``, or
        ``cannot be read``.
    """
    name = f"{what} {printable(repr(str(path)))}"
    article = "an" if what[:1] in "aeiou" else "a"
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        link = " (a broken symbolic link)" if os.path.islink(path) else ""
        raise error(f"{name} does not exist{link}") from None
    except OSError as exc:
        raise error(f"{name} cannot be read: {exc.strerror or exc}") from exc
    except ValueError as exc:  # e.g. an embedded NUL byte
        raise error(f"{name} is not a usable path: {exc}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{name} is a directory, not {article} {what} file")
    if not stat.S_ISREG(info.st_mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise error(f"{name} is {kind}, not {article} {what} file")
    if info.st_size == 0:
        raise error(f"{name} is empty")
    if not os.access(path, os.R_OK):
        raise error(f"{name} cannot be read: permission denied")
    return info


def file_problem(path: str | Path, *, what: str) -> str | None:
    """Why ``path`` cannot be read as a ``what`` file (:func:`stat_file`'s message), or None."""
    try:
        stat_file(path, what=what)
    except PipelineError as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _key_path(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


def json_safe(value: Any, *, non_finite: NonFinite = "error", where: str = "") -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` accepts.

    Tuples become lists and NumPy scalars and arrays Python values. NaN and infinity, which
    JSON cannot hold (Python's ``json`` would write the invalid tokens ``NaN`` and
    ``Infinity``), become ``None`` or an error, as ``non_finite`` says.

    Parameters
    ----------
    value : JSON-like
        Dicts, lists, tuples, str, int, float, bool, None, NumPy scalars and arrays.
    non_finite : {"error", "null"}
        ``"null"``: a non-finite float is written as ``null`` (a value that does not exist,
        e.g. the ROC-AUC of a split without positives). ``"error"``: it is refused.
    where : str
        The key path of ``value`` in the messages (``stats.mean[3]``).

    Raises
    ------
    PipelineError
        ``non_finite="error"`` and a float is NaN or infinite; the message gives its key path
        (``aggregations.mean.macro_roc_auc``, ``mean[3]``).

    Examples
    --------
    >>> json_safe({"auc": float("nan"), "n": (1, 2)}, non_finite="null")
    {'auc': None, 'n': [1, 2]}
    """
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()  # arrays and numpy scalars (numpy itself is not imported here)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        if non_finite == "null":
            return None
        raise PipelineError(f"{where or 'the value'} is {value}, which JSON cannot hold")
    if isinstance(value, Mapping):
        return {
            k: json_safe(v, non_finite=non_finite, where=_key_path(where, k))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            json_safe(v, non_finite=non_finite, where=f"{where}[{k}]") for k, v in enumerate(value)
        ]
    return value


def json_line(record: Any, *, non_finite: NonFinite = "null") -> str:
    """One line of JSON Lines: valid JSON (non-finite floats as ``null`` by default), ASCII
    only (every control character and non-ASCII letter ``\\u``-escaped: safe on a terminal)."""
    return json.dumps(json_safe(record, non_finite=non_finite), allow_nan=False)


def write_json(payload: Any, path: str | Path, *, non_finite: NonFinite = "error") -> None:
    """Write valid JSON readably (UTF-8, indented), creating the folder, atomically.

    Parameters
    ----------
    payload : JSON-like
        As :func:`json_safe` takes.
    path : str or Path
    non_finite : {"error", "null"}
        NaN or infinity anywhere in ``payload``: ``"error"`` (the default) refuses to write
        the file; ``"null"`` writes ``null`` there. Pass ``"null"`` only for files whose
        documentation says a value may be missing (metrics of a split without positives).

    Raises
    ------
    PipelineError
        ``non_finite="error"`` and ``payload`` holds NaN or infinity: the message names the
        file and the key path. Nothing is written.
    """
    path = Path(path)
    try:
        safe = json_safe(payload, non_finite=non_finite)
    except PipelineError as exc:
        raise PipelineError(f"{str(path)!r} not written: {exc}") from None
    text = json.dumps(safe, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
