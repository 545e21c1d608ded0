"""The pipeline's exception types and the integer check that names the key."""

from __future__ import annotations

import numpy as np
import pytest

import pipeline
from pipeline.errors import AudioError, ConfigError, PipelineError, check_int


def test_one_base_type() -> None:
    assert issubclass(ConfigError, PipelineError) and issubclass(AudioError, PipelineError)
    assert issubclass(PipelineError, Exception) and not issubclass(ConfigError, AudioError)
    assert (pipeline.PipelineError, pipeline.ConfigError, pipeline.AudioError) == (
        PipelineError,
        ConfigError,
        AudioError,
    )


@pytest.mark.parametrize("value", [0, 3, np.int64(2), np.int32(0), np.uint8(7)])
def test_check_int_accepts_integers_at_least_the_minimum(value: object) -> None:
    check_int("train.epochs", value, minimum=0)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(-1, "-1"), (True, "True"), (2.0, "2.0"), ("3", "'3'"), (None, "None"), (np.int64(-2), "")],
)
def test_check_int_names_the_key_and_the_value(value: object, shown: str) -> None:
    with pytest.raises(ConfigError, match=f"train.epochs: {shown}.* must be an integer >= 0"):
        check_int("train.epochs", value, minimum=0)


def test_check_int_raises_the_given_type() -> None:
    with pytest.raises(PipelineError, match="n: 1 must be an integer >= 2") as info:
        check_int("n", 1, minimum=2, error=PipelineError)
    assert type(info.value) is PipelineError
