"""The shard failure table: written with PyArrow, read back by pandas as strings."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.features.failures import FAILURE_COLUMNS, write_failures


def test_rows_round_trip_as_strings(tmp_path: Path) -> None:
    rows = [
        {"track_id": "t1", "path": "/a.mp3", "stage": "decode", "level": "error", "error": "x"},
        {"track_id": 7, "path": "/b.mp3", "stage": "features", "level": "warning", "error": 1.5},
    ]
    write_failures(tmp_path / "sub" / "f.parquet", rows)
    table = pd.read_parquet(tmp_path / "sub" / "f.parquet")
    assert list(table.columns) == FAILURE_COLUMNS
    assert table.to_dict("records")[1] == {
        "track_id": "7",
        "path": "/b.mp3",
        "stage": "features",
        "level": "warning",
        "error": "1.5",
    }


def test_empty_table_has_the_columns(tmp_path: Path) -> None:
    write_failures(tmp_path / "f.parquet", [])
    table = pd.read_parquet(tmp_path / "f.parquet")
    assert list(table.columns) == FAILURE_COLUMNS and len(table) == 0


def test_non_ascii_and_undecodable_names_are_valid_utf8(tmp_path: Path) -> None:
    """A path that is not UTF-8 (a lone surrogate from ``os.fsdecode``) is written escaped."""
    rows: list[dict[str, str]] = [
        {"track_id": "é", "path": "/m/caf\udce9.mp3", "stage": "decode", "level": "error"},
        {"track_id": "", "path": "/m/日本.mp3", "stage": "store", "level": "error", "error": ""},
    ]
    rows[0]["error"] = "ü"
    write_failures(tmp_path / "f.parquet", rows)
    table = pd.read_parquet(tmp_path / "f.parquet").to_dict("records")
    assert [r["path"] for r in table] == ["/m/caf\\udce9.mp3", "/m/日本.mp3"]
    assert [r["track_id"] for r in table] == ["é", ""]
    assert [r["error"] for r in table] == ["ü", ""]
