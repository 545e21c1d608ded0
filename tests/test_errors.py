"""The pipeline's exception types, the integer check that names the key, and the escaping of
text that does not print."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pipeline
from pipeline.errors import AudioError, ConfigError, PipelineError, check_int, printable


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


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain/path.wav", "plain/path.wav"),
        ("café ñ 日本語 C:\\music", "café ñ 日本語 C:\\music"),  # printable: unchanged
        ("evil\u202egnp.wav", "evil\\u202egnp.wav"),  # Cf: right-to-left override
        ("a\u200bb", "a\\u200bb"),  # Cf: zero-width space
        ("esc\x1b[2J", "esc\\x1b[2J"),  # Cc
        ("two\nlines\r\tx", "two\\nlines\\r\\tx"),  # Cc
        ("del\x7f", "del\\x7f"),
        ("line\u2028sep", "line\\u2028sep"),  # Zl
        ("surrogate\udce9", "surrogate\\udce9"),  # an undecodable file name byte
    ],
)
def test_printable_escapes_what_does_not_print(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable(text).isprintable()


def test_printable_takes_any_object() -> None:
    assert printable(Path("a\nb")) == "a\\nb" and printable(3) == "3"
