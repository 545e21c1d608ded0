"""The one exception type of the pipeline."""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["PipelineError", "ConfigError", "AudioError", "check_int", "printable", "utf8_safe"]


class PipelineError(Exception):
    """Base error of the pipeline; its message always quotes the bad value or path."""


class ConfigError(PipelineError):
    """A configuration key or value is wrong; the message names the key and what is allowed."""


class AudioError(PipelineError):
    """An audio file cannot be decoded or is unusable; the message names the file."""


def check_int(
    key: str, value: Any, *, minimum: int, error: type[PipelineError] = ConfigError
) -> None:
    """Raise ``error`` naming ``key`` unless ``value`` is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise error(f"{key}: {value!r} must be an integer >= {minimum}")


def utf8_safe(text: object) -> str:
    """``str(text)`` that UTF-8 can encode: each lone surrogate becomes its ``\\udcXX`` escape.

    Use it for text written to a file format that holds UTF-8 (Parquet and Arrow strings,
    CSV, JSON for other tools): a file name that is not valid UTF-8 on disk reaches Python
    with its bad bytes as lone surrogates (``os.fsdecode``), which no UTF-8 writer accepts.
    Valid text, control characters included, is unchanged (compare :func:`printable`).

    Examples
    --------
    >>> utf8_safe(b"caf\\xe9.mp3".decode("utf-8", "surrogateescape")), utf8_safe("café")
    ('caf\\\\udce9.mp3', 'café')
    """
    text = str(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def printable(text: object) -> str:
    """``str(text)`` with every non-printable character escaped as Python's ``repr`` does.

    Use it for anything read from a file or a folder listing (paths, track ids, tags) that
    goes into a message or a log line. Control and format characters (Unicode categories Cc
    and Cf: ``\\x1b``, a newline, the right-to-left override ``\\u202e``), line and
    paragraph separators and the lone surrogates of undecodable file names become visible
    escapes, so such text can neither rewrite the terminal, reorder what is shown, nor break
    a message into several lines. Printable text, non-ASCII letters and backslashes included,
    is unchanged.

    Examples
    --------
    >>> printable("a\\u202eb.wav"), printable("café\\n")
    ('a\\\\u202eb.wav', 'café\\\\n')
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
