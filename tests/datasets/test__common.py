"""The option parsing the dataset adapters share (:mod:`pipeline.datasets._common`): the
column and tag separators of a table, one character each and distinct, TAB by its names;
checked through the table adapter that reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.datasets import table
from pipeline.errors import ConfigError
from tests.helpers.bad_inputs import write_track_table


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"tag_sep": ";;"}, "table option 'tag_sep': ';;' must be exactly one character"),
        ({"sep": ""}, "table option 'sep': '' must be exactly one character"),
        ({"tag_sep": ","}, "table option 'tag_sep': ',' is also the column separator"),
        ({"sep": "tab", "tag_sep": "\t"}, "table option 'tag_sep': '\\t' is also the column"),
    ],
)
def test_table_separators_one_character_and_distinct(
    tmp_path: Path, options: dict, says: str
) -> None:
    write_track_table(tmp_path, [{"path": "a.wav", "tags": "x;y"}])
    with pytest.raises(ConfigError) as err:
        table.load_records(root=tmp_path, options={"table": "tracks.csv", **options})
    assert says in str(err.value)


def test_table_tab_names(tmp_path: Path) -> None:
    write_track_table(tmp_path, [{"path": "a.wav", "tags": "x;y"}], sep="\t")
    for sep in ("\t", "\\t", "tab", "TAB"):
        records = table.load_records(root=tmp_path, options={"table": "tracks.csv", "sep": sep})
        assert records["tags"].tolist() == [["x", "y"]]
