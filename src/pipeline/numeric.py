"""Small numeric helpers shared by every layer."""

from __future__ import annotations

import numpy as np

__all__ = ["sigmoid"]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Logistic function in float64, returned as float32 (same shape)."""
    return (1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))).astype(np.float32)
