"""The one exception type of the pipeline."""

from __future__ import annotations

__all__ = ["PipelineError", "ConfigError", "AudioError"]


class PipelineError(Exception):
    """Base error of the pipeline; its message always quotes the bad value or path."""


class ConfigError(PipelineError):
    """A configuration key or value is wrong; the message names the key and what is allowed."""


class AudioError(PipelineError):
    """An audio file cannot be decoded or is unusable; the message names the file."""
