"""The MTG-Jamendo adapter (:mod:`pipeline.datasets.mtg_jamendo`) on a tiny fixture in the
dataset's exact layout, with real encoded audio (:func:`tests.helpers.datasets.write_jamendo`,
which the workflow's preset tests write too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.datasets import load_dataset_records, mtg_jamendo
from pipeline.errors import ConfigError
from tests.helpers.datasets import JAMENDO_ROWS, jamendo_tsv, write_jamendo
from tests.helpers.records import assert_contract, assert_decodes


def test_mtg_jamendo_tags_splits_paths(tmp_path: Path) -> None:
    write_jamendo(tmp_path)
    loaded = mtg_jamendo.load_records(root=tmp_path, options={})
    records = loaded.set_index("track_id")

    # track_0002000 is in no split file: counted, reported and left out by default
    assert records["split"].to_dict() == {
        "track_0000214": "train",
        "track_0000215": "train",
        "track_0001008": "valid",
        "track_0001009": "test",
    }
    report = loaded.attrs["report"]
    assert report["tracks_in_no_split_file"] == 1
    assert report["tracks_in_no_split_file_examples"] == ["track_0002000"]
    assert report["audio_variant"]["chosen"] == "full"
    assert "1 tracks of 'autotagging_top50tags.tsv' are in none" in loaded.attrs["warnings"][0]
    kept = mtg_jamendo.load_records(root=tmp_path, options={"unsplit_tracks": "assign"})
    assert kept.set_index("track_id").at["track_0002000", "split"] is None
    assert records.at["track_0000215", "tags"] == [
        "genre---rock",
        "instrument---guitar",
        "mood/theme---energetic",
    ]
    assert records.at["track_0000215", "artist"] == "artist_000014"
    assert records.at["track_0000215", "duration_s"] == pytest.approx(98.3)
    for row in JAMENDO_ROWS[:4]:
        assert_decodes(records.at[row[0], "path"], tmp_path / "audio" / row[3])


def test_mtg_jamendo_options(tmp_path: Path) -> None:
    write_jamendo(tmp_path, stem="autotagging_genre")
    options = {"tsv": "autotagging_genre.tsv", "tag_prefixes": ["genre---", "mood/theme---"]}
    records = load_dataset_records(format="mtg_jamendo", root=tmp_path, options=options)
    assert_contract(records)
    tags = dict(zip(records["track_id"], records["tags"], strict=True))
    assert tags["track_0000215"] == ["genre---rock", "mood/theme---energetic"]
    assert tags["track_0001009"] == []  # only an instrument tag: kept, without tags
    assert records["split"].tolist().count("train") == 2

    no_splits = {**options, "splits_dir": None, "audio_dir": "/mnt/jamendo"}
    records = mtg_jamendo.load_records(root=tmp_path, options=no_splits)
    assert records["split"].isna().all()
    assert records["path"].iloc[0] == str(Path("/mnt/jamendo/14/214.mp3"))


def test_mtg_jamendo_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="autotagging_top50tags.tsv' not found"):
        mtg_jamendo.load_records(root=tmp_path, options={"splits_dir": None})
    write_jamendo(tmp_path)

    missing = tmp_path / "splits" / "split-0" / "autotagging_top50tags-validation.tsv"
    missing.unlink()
    with pytest.raises(ConfigError) as error:
        mtg_jamendo.load_records(root=tmp_path, options={})
    assert str(missing) in str(error.value)
    with pytest.raises(ConfigError, match="splits_dir: null"):
        mtg_jamendo.load_records(root=tmp_path, options={"splits_dir": "nowhere"})
    with pytest.raises(ConfigError, match="tag_prefixes"):
        mtg_jamendo.load_records(root=tmp_path, options={"tag_prefixes": "genre---"})

    jamendo_tsv(tmp_path / "dup.tsv", [*JAMENDO_ROWS, JAMENDO_ROWS[2]])
    with pytest.raises(ConfigError, match="'track_0001008' twice"):
        mtg_jamendo.load_records(root=tmp_path, options={"tsv": "dup.tsv", "splits_dir": None})

    (tmp_path / "bad.tsv").write_text("TRACK_ID\tARTIST_ID\tPATH\tDURATION\tTAGS\n")
    with pytest.raises(ConfigError, match="no column 'ALBUM_ID'"):
        mtg_jamendo.load_records(root=tmp_path, options={"tsv": "bad.tsv", "splits_dir": None})
