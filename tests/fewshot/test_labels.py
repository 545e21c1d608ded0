"""What every few-shot method shares (:mod:`pipeline.fewshot.labels`): label matrices as
bool and the checks of track masks, with messages that quote the bad value."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.fewshot.labels import bool_labels, track_mask


def test_bool_labels_accepts_bool_and_zero_one() -> None:
    given = np.array([[True, False], [False, True]])
    assert bool_labels(given, name="labels") is given  # bool is taken as it is
    for values in ([[1, 0], [0, 1]], np.array([[1.0, 0.0], [0.0, 1.0]]), np.eye(2, dtype=np.uint8)):
        out = bool_labels(values, name="labels")
        assert out.dtype == bool and out.tolist() == [[True, False], [False, True]]
    assert bool_labels(np.zeros((3, 2)), name="labels").sum() == 0  # one value only is fine


def test_bool_labels_errors_quote_the_value() -> None:
    with pytest.raises(PipelineError, match=r"support of shape \(3,\) is not \(n_tracks, n_tags\)"):
        bool_labels(np.array([1, 0, 1]), name="support")
    with pytest.raises(PipelineError, match=r"labels must be 0/1 or bool; it holds \[0, 1, 2\]"):
        bool_labels(np.array([[0, 1], [2, 1]]), name="labels")
    with pytest.raises(PipelineError, match=r"holds \[0.0, 0.5\]"):
        bool_labels(np.array([[0.5, 0.0]]), name="labels")


def test_track_mask_checks_dtype_and_shape() -> None:
    mask = np.array([True, False, True])
    assert track_mask(mask, name="pool", n=3) is mask
    with pytest.raises(PipelineError, match=r"pool must be a bool array of shape \(4,\); got bool"):
        track_mask(mask, name="pool", n=4)
    with pytest.raises(PipelineError, match=r"query must be a bool array .* got int64 \(3,\)"):
        track_mask(np.array([1, 0, 1]), name="query", n=3)
    with pytest.raises(PipelineError, match=r"got bool \(1, 3\)"):
        track_mask(mask[None], name="pool", n=3)
