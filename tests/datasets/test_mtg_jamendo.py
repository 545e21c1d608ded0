"""The MTG-Jamendo adapter (:mod:`pipeline.datasets.mtg_jamendo`) on a tiny fixture in the
dataset's exact layout, with real encoded audio (:func:`tests.helpers.datasets.write_jamendo`,
which the workflow's preset tests write too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.datasets import load_dataset_records, mtg_jamendo
from pipeline.datasets.manifest import make_manifest
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


@pytest.mark.parametrize("variant", ["full", "low"])
def test_mtg_jamendo_audio_variant_is_detected_from_disk(tmp_path: Path, variant: str) -> None:
    write_jamendo(tmp_path, variant=variant)
    records = mtg_jamendo.load_records(root=tmp_path, options={})
    chosen = records.attrs["report"]["audio_variant"]
    assert chosen["chosen"] == variant
    assert chosen["detected_from"][variant] == chosen["detected_from"]["checked"] == 5
    suffix = ".low.mp3" if variant == "low" else ".mp3"
    by_id = records.set_index("track_id")["path"]
    assert by_id["track_0000214"] == str(tmp_path / "audio" / "14" / f"214{suffix}")
    for row in JAMENDO_ROWS[:4]:
        assert_decodes(by_id[row[0]], tmp_path / "audio" / row[3].replace(".mp3", suffix))

    # forcing the other variant gives paths that do not exist: the manifest step's check says so
    other = "full" if variant == "low" else "low"
    forced = mtg_jamendo.load_records(root=tmp_path, options={"audio_variant": other})
    assert forced.attrs["report"]["audio_variant"] == {"chosen": other, "forced": True}
    assert not any(Path(p).exists() for p in forced["path"])
    with pytest.raises(ConfigError, match="audio_variant' is 'medium'"):
        mtg_jamendo.load_records(root=tmp_path, options={"audio_variant": "medium"})


def test_low_variant_with_forced_full_stops_the_manifest_step_naming_the_cause(
    tmp_path: Path,
) -> None:
    write_jamendo(tmp_path, variant="low")
    entry = {
        "format": "mtg_jamendo",
        "audio_variant": "full",
        "shards": 2,
        "vocabulary": {"top_n": 50, "min_count": 1, "drop_untagged": False},
        "split": {"seed": 0, "valid_fraction": 0.1, "test_fraction": 0.2},
    }
    out = tmp_path / "results"
    with pytest.raises(ConfigError) as error:
        make_manifest(
            entry=entry,
            root=tmp_path,
            dataset="jamendo",
            manifest_path=out / "manifest.parquet",
            vocabulary_path=out / "vocabulary.json",
            shard_dir=out / "shards",
        )
    message = str(error.value)
    assert message.startswith("dataset 'jamendo' (format 'mtg_jamendo'")
    assert "none of the 4 audio files is usable" in message
    assert str(tmp_path / "audio" / "14" / "214.mp3") in message
    assert "NN/ID.low.mp3" in message and "audio_variant" in message


@pytest.mark.parametrize(
    "stem",
    [
        "autotagging",
        "autotagging_top50tags",
        "autotagging_genre",
        "autotagging_instrument",
        "autotagging_moodtheme",
    ],
)
def test_every_subset_tsv_with_any_split_folder(tmp_path: Path, stem: str) -> None:
    write_jamendo(tmp_path, stem=stem, split=3, audio=False)
    options = {"tsv": f"{stem}.tsv", "splits_dir": "splits/split-3"}
    records = mtg_jamendo.load_records(root=tmp_path, options=options)
    assert records["split"].value_counts().to_dict() == {"train": 2, "valid": 1, "test": 1}
    assert records.attrs["report"]["split_dir"] == "split-3"
    assert mtg_jamendo.split_name(entry=options) == "split-3"
    with pytest.raises(ConfigError, match="split-0' not found"):
        mtg_jamendo.load_records(root=tmp_path, options={"tsv": f"{stem}.tsv"})
