"""The one exception type of the pipeline."""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["PipelineError", "ConfigError", "AudioError", "check_int"]


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
