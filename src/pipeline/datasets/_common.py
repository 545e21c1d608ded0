"""Option and cell parsing shared by the dataset adapters."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

__all__ = ["option_path", "parse_duration", "separator", "separators", "TAB_NAMES"]

#: How a TAB separator may be written besides the TAB character itself (``"\\t"`` is what
#: a single-quoted ``'\t'`` gives in YAML).
TAB_NAMES = ("\\t", "tab", "TAB")


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


def separator(value: Any, *, key: str) -> str:
    """A one-character column or tag separator; ``"\\t"``, ``"tab"`` and ``"TAB"`` are TAB.

    Parameters
    ----------
    value : Any
        The option's value.
    key : str
        The full config key (``datasets.mine.tag_sep``), named in the message.

    Raises
    ------
    ConfigError
        ``value`` is not exactly one character (nor a name of TAB).
    """
    if isinstance(value, str) and value in TAB_NAMES:
        return "\t"
    if not isinstance(value, str) or len(value) != 1:
        raise ConfigError(
            f"{key}: {value!r} must be exactly one character such as ',' ';' '|' or '\\t' (TAB)"
        )
    return value


def separators(
    *, options: Mapping[str, Any], key: str, default_sep: str, default_tag_sep: str
) -> tuple[str, str]:
    """The ``sep`` and ``tag_sep`` options of a table: one character each, and different.

    Parameters
    ----------
    options : Mapping[str, Any]
        The dataset's config entry.
    key : str
        How messages name an option: a format string with ``{}`` for the option's name
        (``"datasets.mine.{}"`` gives ``datasets.mine.tag_sep``).
    default_sep, default_tag_sep : str
        The defaults when the options are absent.

    Raises
    ------
    ConfigError
        One is not exactly one character, or both are the same: the tags cell would then be
        split into columns.
    """
    sep = separator(options.get("sep", default_sep), key=key.format("sep"))
    tag_sep = separator(options.get("tag_sep", default_tag_sep), key=key.format("tag_sep"))
    if sep == tag_sep:
        raise ConfigError(
            f"{key.format('tag_sep')}: {tag_sep!r} is also the column separator "
            f"({key.format('sep')}); the two must be different characters"
        )
    return sep, tag_sep
