"""``python -m pipeline`` and the installed ``pipeline`` command (see :mod:`pipeline.cli`)."""

from __future__ import annotations

from pipeline.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
