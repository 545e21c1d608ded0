"""Small numeric helpers shared by every layer: the logistic function, L2 row normalisation,
and JSON-safe floats."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sigmoid", "l2_normalise", "json_float"]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Logistic function in float64, returned as float32 (same shape)."""
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf below -709: 1 / inf = 0
        return (1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))).astype(np.float32)


def l2_normalise(x: np.ndarray, *, eps: float | None = None) -> np.ndarray:
    """Rows scaled to unit L2 norm, computed in the dtype of ``x``.

    Parameters
    ----------
    x : np.ndarray, shape (n, dim)
        Cast it first for another dtype (e.g. ``np.asarray(x, dtype=np.float32)``): the norms
        and the division then run in that dtype.
    eps : float, optional
        None: a row of norm 0 stays as it is (all zeros). A number: every norm is raised to at
        least ``eps`` (as :func:`torch.nn.functional.normalize`), so rows shorter than ``eps``
        are scaled by ``1 / eps`` rather than made unit.

    Returns
    -------
    np.ndarray, shape (n, dim)
        ``x / norms``; the dtype of that division (``x``'s for floating ``x``).

    Examples
    --------
    >>> l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # (n, 1)
    if eps is None:
        return x / np.where(norms > 0, norms, 1.0)
    return x / np.maximum(norms, eps)


def json_float(value: float | None) -> float | None:
    """NaN, infinity and None -> None (JSON has neither NaN nor infinity), anything else ->
    float.

    Examples
    --------
    >>> json_float(float("nan")) is None, json_float(float("-inf")) is None, json_float(1)
    (True, True, 1.0)
    """
    return None if value is None or not math.isfinite(value) else float(value)
