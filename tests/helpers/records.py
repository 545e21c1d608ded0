"""Checks on the track records of a dataset adapter (:data:`pipeline.datasets.RECORD_COLUMNS`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import soundfile as sf

from pipeline.datasets import RECORD_COLUMNS

__all__ = ["assert_contract", "assert_decodes"]


def assert_contract(records: pd.DataFrame) -> None:
    """The records have the columns, types and values every adapter must give."""
    assert tuple(records.columns) == RECORD_COLUMNS
    assert records["track_id"].is_unique
    assert all(isinstance(v, str) for v in records["track_id"])
    assert all(isinstance(v, str) for v in records["path"])
    assert all(isinstance(t, list) and all(isinstance(x, str) for x in t) for t in records["tags"])
    assert set(records["split"]) <= {"train", "valid", "test", None}
    assert all(v is None or isinstance(v, str) for v in records["artist"])
    assert records["duration_s"].dtype == "float64"


def assert_decodes(path: str, written: Path) -> None:
    """``path`` is the file written at ``written``, and decodes to some audio."""
    assert Path(path) == written
    assert sf.info(path).frames > 0
