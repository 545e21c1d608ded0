"""The tagger registry: registering kinds, required checkpoint keys, the input check."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.inference.registry import TAGGER_KINDS, check_windows, register_tagger, require_keys
from tests.helpers.synthetic import N_BINS, N_FRAMES, SETTINGS


def test_register_tagger_adds_the_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TAGGER_KINDS, "test_kind", None)  # removed again after the test

    def factory(checkpoint: dict, device: str) -> str:
        return f"{checkpoint['tags']} on {device}"

    assert register_tagger("test_kind")(factory) is factory
    assert TAGGER_KINDS["test_kind"]({"tags": ["a"]}, "cpu") == "['a'] on cpu"


def test_require_keys_names_the_kind_and_the_missing_keys() -> None:
    require_keys({"a": 1, "b": 2}, ["a", "b"], kind="mine")
    with pytest.raises(PipelineError, match=r"kind 'mine' lacks key\(s\) \['b', 'c'\]"):
        require_keys({"a": 1}, ["a", "b", "c"], kind="mine")


def test_check_windows_defaults_and_clips_valid_frames() -> None:
    windows = np.zeros((3, N_BINS, N_FRAMES), np.float16)
    kwargs = {"n_bins": N_BINS, "n_frames": N_FRAMES, "features": SETTINGS}
    same, valid = check_windows(windows, None, **kwargs)
    assert same is windows
    assert valid.dtype == np.int64 and valid.tolist() == [N_FRAMES] * 3
    _, clipped = check_windows(windows, [0, 10, 500], **kwargs)
    assert clipped.dtype == np.int64 and clipped.tolist() == [1, 10, N_FRAMES]


@pytest.mark.parametrize(
    ("shape", "valid", "message"),
    [
        ((2, N_BINS, 50), None, r"\(2, 16, 50\) are not \(n, 16, 64\) of feature set 'lm'"),
        ((N_BINS, N_FRAMES), None, r"\(16, 64\) are not"),
        ((0, N_BINS, N_FRAMES), None, r"no windows to tag"),
        ((2, N_BINS, N_FRAMES), [5], r"valid_frames of shape \(1,\) does not match 2 windows"),
    ],
)
def test_check_windows_errors(shape: tuple, valid: list | None, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        check_windows(
            np.zeros(shape, np.float16), valid, n_bins=N_BINS, n_frames=N_FRAMES, features=SETTINGS
        )
