"""Small numeric helpers shared by every layer: the logistic function, L2 row normalisation,
JSON-safe floats and a fast float32 -> float16 cast."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["sigmoid", "l2_normalise", "json_float", "to_float16"]


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


#: float32 bit patterns (sign cleared) that round to a normal float16: [2**-14, 65520).
_F16_NORMAL_LO, _F16_NORMAL_HI = 0x38800000, 0x477FF000
#: Rebias the exponent (127 -> 15, in float16 mantissa units) and add half a float16 ulp
#: minus one, so that the shift below rounds to nearest, ties to even.
_F16_REBIAS = np.uint32((0xFFF - (112 << 23)) % (1 << 32))


def to_float16(x: np.ndarray) -> np.ndarray:
    """``x.astype(np.float16)``, bit for bit, about 2.5x faster for feature arrays.

    NumPy converts float32 to float16 element by element; this rounds with integer
    operations on the bit patterns (round to nearest, ties to even, as NumPy and IEEE 754
    do) for values whose float16 is normal, and lets NumPy convert the rest (zeros,
    subnormals, overflow to infinity, NaN). Tested equal to ``astype`` on every float16
    boundary and tie.

    Parameters
    ----------
    x : np.ndarray, any shape
        float32; float16 is returned as it is, other dtypes are cast to float32 first.

    Returns
    -------
    np.ndarray, same shape, float16
    """
    if isinstance(x, np.ndarray) and x.dtype == np.float16:
        return x
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32)
    magnitude = bits & np.uint32(0x7FFFFFFF)
    normal = (magnitude - np.uint32(_F16_NORMAL_LO)) < np.uint32(_F16_NORMAL_HI - _F16_NORMAL_LO)
    half = (magnitude >> np.uint32(13)) & np.uint32(1)  # the kept lowest bit: ties to even
    half += _F16_REBIAS
    half += magnitude
    half >>= np.uint32(13)
    half |= (bits >> np.uint32(16)) & np.uint32(0x8000)  # the sign
    out = half.astype(np.uint16).view(np.float16)
    if not normal.all():
        rest = ~normal
        with np.errstate(over="ignore"):  # beyond float16 is infinity, as astype gives
            out[rest] = x[rest].astype(np.float16)
    return out
