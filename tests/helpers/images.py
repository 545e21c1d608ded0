"""Checks on written image files."""

from __future__ import annotations

from pathlib import Path

__all__ = ["PNG_SIGNATURE", "is_png"]

#: The first 8 bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    """A PNG file of more than 1 kB (a plot with something drawn on it)."""
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_SIGNATURE
