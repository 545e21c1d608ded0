"""The numeric helpers shared by every layer: the logistic function, L2 row normalisation (with
the exact outputs its callers had before it was shared), JSON-safe floats and the float16 cast."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from pipeline.numeric import json_float, l2_normalise, sigmoid, to_float16


def test_known_values_shape_and_dtype() -> None:
    logits = np.array([[0.0, 2.0], [-2.0, np.log(3.0)]], dtype=np.float16)
    probs = sigmoid(logits)
    assert probs.shape == (2, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(
        probs, [[0.5, 1 / (1 + np.exp(-2.0))], [1 / (1 + np.exp(2.0)), 0.75]], rtol=1e-3
    )
    assert sigmoid(np.float64(0.0)) == np.float32(0.5)
    assert sigmoid([1.0, -1.0]).sum() == pytest.approx(1.0)  # sigmoid(-x) = 1 - sigmoid(x)


def test_large_logits_saturate() -> None:
    assert sigmoid(np.array([40.0, 1e4])).tolist() == [1.0, 1.0]
    assert 0.0 <= sigmoid(np.array([-40.0]))[0] < 1e-17


def test_very_negative_logits_give_zero_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sigmoid(np.array([-1000.0])).tolist() == [0.0]


def test_l2_normalise_known_values() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1e-14, 0.0]])
    np.testing.assert_allclose(l2_normalise(x), [[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]])
    # eps: zero rows stay zero and rows shorter than eps are scaled by 1 / eps
    np.testing.assert_allclose(l2_normalise(x, eps=1e-12), [[0.6, 0.8], [0.0, 0.0], [0.01, 0.0]])
    for dtype in (np.float16, np.float32, np.float64):
        assert l2_normalise(x.astype(dtype)).dtype == dtype


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_l2_normalise_reproduces_the_callers_former_code(dtype: type) -> None:
    rng = np.random.default_rng(0)
    scales = [1e-3, 1.0, 10.0] if dtype is np.float16 else [1e-13, 1e-3, 1.0, 1e3]
    x = (rng.normal(size=(50, 7)) * rng.choice(scales, size=(50, 1))).astype(dtype)
    x[3] = 0.0

    # retrieval.metrics._unit_rows: float32 first, zero rows stay zero
    x32 = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x32, axis=1, keepdims=True)
    unit_rows = x32 / np.where(norms > 0, norms, 1.0).astype(np.float32)
    np.testing.assert_array_equal(l2_normalise(np.asarray(x, dtype=np.float32)), unit_rows)
    # retrieval.similarity._normalised: in the input's dtype, then float32
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    normalised = (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    np.testing.assert_array_equal(l2_normalise(x).astype(np.float32), normalised)
    # fewshot.prototypes._l2_normalise: float64, norms at least 1e-12
    x64 = np.asarray(x, dtype=np.float64)
    clamped = x64 / np.maximum(np.linalg.norm(x64, axis=1, keepdims=True), 1e-12)
    np.testing.assert_array_equal(l2_normalise(x64, eps=1e-12), clamped)


def test_json_float() -> None:
    assert json_float(None) is None and json_float(math.nan) is None
    assert json_float(np.float32(0.5)) == 0.5 and type(json_float(np.float64(2))) is float
    assert json_float(3) == 3.0 and type(json_float(3)) is float
    assert json_float(math.inf) is None and json_float(-math.inf) is None  # not JSON either


def _astype_bits(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return x.astype(np.float16).view(np.uint16)


def test_to_float16_equals_astype_on_every_boundary_and_tie() -> None:
    """Every float16 value, every midpoint between neighbours (ties to even), the float32
    values either side of each midpoint, subnormals, the overflow edge, zeros, inf, NaN."""
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    finite = every[np.isfinite(every)].astype(np.float32)
    values = np.unique(finite)
    mids = (values[:-1].astype(np.float64) + values[1:].astype(np.float64)) / 2
    mids32 = mids.astype(np.float32)
    near = np.concatenate(
        [
            mids32,
            np.nextafter(mids32, np.float32(np.inf)),
            np.nextafter(mids32, np.float32(-np.inf)),
        ]
    )
    edges = np.array(
        [0.0, -0.0, 65504.0, 65519.996, 65520.0, 65536.0, 1e30, 2**-14, 2**-24, 2**-25, 1e-30],
        dtype=np.float32,
    )
    special = np.array([np.inf, -np.inf, np.nan], dtype=np.float32)
    x = np.concatenate([values, near, edges, -edges, special])
    got = to_float16(x).view(np.uint16)
    want = _astype_bits(x)
    nan = np.isnan(x)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    assert np.isnan(to_float16(x[nan])).all()


def test_to_float16_random_features_and_shape() -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(-40, 30, size=(3, 96, 50)) * rng.choice([1e-6, 1, 100], (3, 96, 50))).astype(
        np.float32
    )
    got = to_float16(x)
    assert got.dtype == np.float16 and got.shape == x.shape
    np.testing.assert_array_equal(got.view(np.uint16), _astype_bits(x))
    bits = rng.integers(0, 1 << 32, size=1_000_000, dtype=np.uint64).astype(np.uint32)
    y = bits.view(np.float32)
    ok = ~np.isnan(y)
    np.testing.assert_array_equal(to_float16(y[ok]).view(np.uint16), _astype_bits(y[ok]))
