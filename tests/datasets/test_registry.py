"""The registry of dataset adapters (:mod:`pipeline.datasets`): every format listed, unknown
formats refused, and the record contract each adapter's output is checked against, with
one-line printable errors."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from pipeline.datasets import ADAPTERS, RECORD_COLUMNS, gtzan, load_dataset_records
from pipeline.errors import ConfigError
from tests.helpers.bad_inputs import CONTROL_IDS, control_id_table
from tests.helpers.records import assert_contract


def test_registry_lists_every_format() -> None:
    assert set(ADAPTERS) == {"magnatagatune", "mtg_jamendo", "gtzan", "fma", "table"}
    assert ADAPTERS["gtzan"] is gtzan.load_records


def test_unknown_format_lists_allowed_formats(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_dataset_records(format="fma_small", root=tmp_path, options={})
    message = str(error.value)
    assert "'fma_small'" in message
    assert all(repr(name) in message for name in ADAPTERS)
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_dataset_records(format="gtzan", root=tmp_path, options=["genres"])  # type: ignore[arg-type]


def _fake_records(**changes: list) -> pd.DataFrame:
    columns = {
        "track_id": ["a", "b"],
        "path": ["/x/a.wav", "/x/b.wav"],
        "tags": [["rock"], []],
        "split": ["train", None],
        "artist": [None, "Ada"],
        "duration_s": [1.0, math.nan],
    }
    return pd.DataFrame({**columns, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"track_id": ["a", "a"]}, "track_id 'a' appears more than once"),
        ({"split": ["train", "validation"]}, "split of track 'b' is 'validation'"),
        ({"tags": ["rock", []]}, "tags of track 'a' are 'rock'"),
        ({"duration_s": [1.0, -2.0]}, "duration_s of track 'b'"),
        ({"path": ["/x/a.wav", None]}, "path of track 'b' is nan"),
    ],
)
def test_contract_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict, message: str
) -> None:
    monkeypatch.setitem(ADAPTERS, "fake", lambda *, root, options: _fake_records(**changes))
    with pytest.raises(ConfigError, match=message) as error:
        load_dataset_records(format="fake", root=tmp_path, options={})
    assert "'fake'" in str(error.value)


def test_contract_normalises_order_and_missing_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shuffled = _fake_records(split=["test", math.nan])[list(reversed(RECORD_COLUMNS))]
    monkeypatch.setitem(ADAPTERS, "fake", lambda *, root, options: shuffled)
    records = load_dataset_records(format="fake", root=tmp_path)
    assert_contract(records)
    assert records["split"].tolist() == ["test", None]

    monkeypatch.setitem(ADAPTERS, "fake", lambda *, root, options: shuffled.drop(columns="artist"))
    with pytest.raises(ConfigError, match="expected exactly"):
        load_dataset_records(format="fake", root=tmp_path)
    monkeypatch.setitem(ADAPTERS, "fake", lambda *, root, options: shuffled.iloc[:0])
    with pytest.raises(ConfigError, match="has no tracks"):
        load_dataset_records(format="fake", root=tmp_path)


def test_adapter_errors_are_one_printable_line(tmp_path: Path) -> None:
    folder = tmp_path / "evil\u202e\x1b[2Jdir"
    with pytest.raises(ConfigError) as err:
        load_dataset_records(format="table", root=folder, options={"table": "t.csv"})
    message = str(err.value)
    assert message.isprintable() and "\\u202e\\x1b[2J" in message and "not found" in message


def test_control_characters_in_ids_pass_the_contract_as_they_are(tmp_path: Path) -> None:
    control_id_table(tmp_path)
    records = load_dataset_records(
        format="table", root=tmp_path, options={"table": "tracks.csv", "sep": "\t"}
    )
    assert records["track_id"].tolist() == ["ok", *CONTROL_IDS]  # escaped in the manifest
