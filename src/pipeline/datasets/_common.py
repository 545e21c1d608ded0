"""Option and cell parsing shared by the dataset adapters."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

__all__ = ["option_path", "parse_duration"]


def option_path(
    *, root: Path, options: Mapping[str, Any], key: str, default: str, format: str
) -> Path:
    """A path option of an adapter; relative paths are relative to ``root``."""
    value = options.get(key, default)
    if not isinstance(value, str | os.PathLike) or str(value) == "":
        raise ConfigError(f"{format} option {key!r} must be a non-empty path string, got {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def parse_duration(*, text: str, where: str, column: str) -> float:
    """A duration cell as float seconds; an empty cell gives NaN.

    Raises
    ------
    ConfigError
        The cell is not a non-negative number; the message names ``where`` and ``column``.
    """
    if text == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(
            f"{where}: {column} {text!r} is not a non-negative number of seconds "
            "(leave the cell empty when unknown)"
        )
    return value
