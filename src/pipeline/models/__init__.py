"""Tagging architectures behind one registry (:mod:`pipeline.models.registry`).

Importing this package imports every architecture module, whose ``@register`` decorator fills
:data:`ARCHITECTURES`; add new architecture modules to the import below.
"""

from __future__ import annotations

from pipeline.models import crnn, fcn, lstm, musicnn, probe, sample_level, short_chunk
from pipeline.models.registry import (
    ARCHITECTURES,
    Architecture,
    build_model,
    register,
)

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "build_model",
    "register",
    "crnn",
    "fcn",
    "lstm",
    "musicnn",
    "probe",
    "sample_level",
    "short_chunk",
]
