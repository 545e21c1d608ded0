"""The generic table adapter (:mod:`pipeline.datasets.table`): CSV and TSV tables of paths
and tags, custom columns, mixed audio formats and non-ASCII names, and its errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.datasets import load_dataset_records, table
from pipeline.errors import ConfigError
from tests.helpers.audio import write_audio
from tests.helpers.datasets import CLIP_S
from tests.helpers.records import assert_contract, assert_decodes


def test_table_csv_mixed_formats_and_non_ascii(tmp_path: Path) -> None:
    outside = write_audio(tmp_path / "outside" / "x.mp3", duration_s=CLIP_S, seed=3)
    written = {
        "songs/intro": write_audio(tmp_path / "lib" / "songs" / "intro.flac", duration_s=CLIP_S),
        "songs/café déjà vu": write_audio(
            tmp_path / "lib" / "songs" / "café déjà vu.ogg", duration_s=CLIP_S, seed=1
        ),
        "b": write_audio(tmp_path / "lib" / "b.wav", duration_s=CLIP_S, seed=2),
        "custom-id": outside,
    }
    (tmp_path / "lib" / "tracks.csv").write_text(
        "path,tags,split,artist,duration_s,track_id,comment\n"
        "songs/intro.flac,piano; calm ;piano,train,Ada,31.5,,first\n"
        'songs/café déjà vu.ogg,,validation,,,,"a, quoted, note"\n'
        "b.wav,rock,,Björk,,,\n"
        f"{outside},rock;fast,test,,2,custom-id,\n",
        encoding="utf-8",
    )
    records = load_dataset_records(
        format="table", root=tmp_path, options={"table": "lib/tracks.csv"}
    )
    assert_contract(records)
    records = records.set_index("track_id")

    assert list(records.index) == list(written)
    for track_id, path in written.items():
        assert_decodes(records.at[track_id, "path"], path)
    assert records["tags"].tolist() == [["piano", "calm"], [], ["rock"], ["rock", "fast"]]
    assert records["split"].tolist() == ["train", "valid", None, "test"]
    assert records["artist"].tolist() == ["Ada", None, "Björk", None]
    assert records.at["songs/intro", "duration_s"] == 31.5
    assert math.isnan(records.at["b", "duration_s"])


def test_table_tsv_with_custom_columns(tmp_path: Path) -> None:
    audio = write_audio(tmp_path / "audio" / "Ünïcödé.mp3", duration_s=CLIP_S)
    (tmp_path / "meta.tsv").write_text("file\tlabels\naudio/Ünïcödé.mp3\tjazz|live\n")
    options = {
        "table": str(tmp_path / "meta.tsv"),
        "sep": "\\t",  # written with single quotes in YAML: a literal backslash-t
        "tag_sep": "|",
        "path_column": "file",
        "tags_column": "labels",
    }
    records = table.load_records(root=Path("/unused"), options=options)
    assert records["track_id"].tolist() == ["audio/Ünïcödé"]
    assert records["tags"].tolist() == [["jazz", "live"]]
    assert_decodes(records["path"].iloc[0], audio)


def test_table_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'table' is required"):
        table.load_records(root=tmp_path, options={})
    with pytest.raises(ConfigError) as error:
        table.load_records(root=tmp_path, options={"table": "tracks.csv"})
    assert str(tmp_path / "tracks.csv") in str(error.value)

    csv_path = tmp_path / "tracks.csv"
    csv_path.write_text("file,tags\na.wav,rock\n")
    with pytest.raises(ConfigError, match="no column 'path'"):
        table.load_records(root=tmp_path, options={"table": "tracks.csv"})
    csv_path.write_text("path,tags\nsongs/a.wav,rock\nsongs/a.flac,pop\n")
    with pytest.raises(ConfigError, match="track id 'songs/a' appears twice"):
        table.load_records(root=tmp_path, options={"table": "tracks.csv"})
    csv_path.write_text("path,tags,split\na.wav,rock,training\n")
    with pytest.raises(ConfigError, match="split 'training' is not one of"):
        table.load_records(root=tmp_path, options={"table": "tracks.csv"})
    csv_path.write_text("path,tags\na.wav,rock,extra\nb.wav,pop\n")
    with pytest.raises(ConfigError, match="cannot read table"):
        table.load_records(root=tmp_path, options={"table": "tracks.csv"})
    with pytest.raises(ConfigError, match="option 'sep': ';;' must be exactly one character"):
        table.load_records(root=tmp_path, options={"table": "tracks.csv", "sep": ";;"})
