"""Import every architecture module so that its ``@register`` decorator fills the registry.

:func:`pipeline.models.build_model` imports this module; add new architecture modules here.
"""

from __future__ import annotations

from pipeline.models import crnn, fcn, lstm, musicnn, sample_level, short_chunk

__all__ = ["crnn", "fcn", "lstm", "musicnn", "sample_level", "short_chunk"]
