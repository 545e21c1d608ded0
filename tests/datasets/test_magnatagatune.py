"""The MagnaTagATune adapter (:mod:`pipeline.datasets.magnatagatune`) on a tiny fixture in
the dataset's exact layout, with real encoded audio (:func:`tests.helpers.datasets.write_mtat`,
which the workflow's preset tests write too)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pipeline.datasets import load_dataset_records, magnatagatune
from pipeline.errors import ConfigError
from tests.helpers.datasets import MTAT_CLIPS, MTAT_TAGS, write_mtat
from tests.helpers.records import assert_contract, assert_decodes


def test_magnatagatune_header_shape_tags_splits_artists(tmp_path: Path) -> None:
    write_mtat(tmp_path)
    header = (tmp_path / "annotations_final.csv").read_text().splitlines()[0].split("\t")
    assert len(header) == 190 and header[0] == '"clip_id"' and header[-1] == '"mp3_path"'

    records = magnatagatune.load_records(root=tmp_path, options={}).set_index("track_id")

    assert list(records.index) == list(MTAT_CLIPS)
    for clip_id, (mp3_path, tags) in MTAT_CLIPS.items():
        assert records.at[clip_id, "tags"] == [t for t in MTAT_TAGS if t in tags]
        assert_decodes(records.at[clip_id, "path"], tmp_path / "mp3" / mp3_path)
    assert records["split"].to_dict() == {
        "2": "test",
        "6": "train",
        "10": "train",
        "11": "train",
        "12": "valid",
        "13": "test",
        "14": "test",
    }
    assert records.at["2", "artist"] == "american_bach_soloists"
    assert records.at["13", "artist"] == "strojovna_07"
    assert records["duration_s"].isna().all()


def test_magnatagatune_skips_rows_without_path_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clips = {**MTAT_CLIPS, "99": ("", ["rock"]), "100": ("", [])}
    write_mtat(tmp_path, clips=clips)
    with caplog.at_level(logging.WARNING, logger="pipeline.datasets.magnatagatune"):
        records = load_dataset_records(format="magnatagatune", root=tmp_path, options={})
    assert_contract(records)
    assert set(records["track_id"]) == set(MTAT_CLIPS)
    assert "skipped 2 of 9 rows" in caplog.text


def test_magnatagatune_options_and_errors(tmp_path: Path) -> None:
    annotations = write_mtat(tmp_path / "meta")
    options = {"annotations": str(annotations), "audio_dir": str(tmp_path / "elsewhere")}
    records = magnatagatune.load_records(root=tmp_path / "root", options=options)
    assert records["path"].iloc[0] == str(tmp_path / "elsewhere" / MTAT_CLIPS["2"][0])

    with pytest.raises(ConfigError, match="annotations_final.csv' not found") as error:
        magnatagatune.load_records(root=tmp_path, options={})
    assert str(tmp_path / "annotations_final.csv") in str(error.value)

    text = annotations.read_text()
    annotations.write_text(text.replace('"mp3_path"', '"path"'))
    with pytest.raises(ConfigError, match="no column 'mp3_path'"):
        magnatagatune.load_records(root=tmp_path / "meta", options={})

    lines = text.splitlines()
    annotations.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(ConfigError, match="clip_id '2' more than once"):
        magnatagatune.load_records(root=tmp_path / "meta", options={})


def test_magnatagatune_split_of_folder() -> None:
    assert magnatagatune.split_of_folder(mp3_path="9/x-y.mp3") == "train"
    assert magnatagatune.split_of_folder(mp3_path="c/x-y.mp3") == "valid"
    assert magnatagatune.split_of_folder(mp3_path="e/x-y.mp3") == "test"
    assert magnatagatune.split_of_folder(mp3_path="g/x-y.mp3") is None
    assert magnatagatune.split_of_folder(mp3_path="x-y.mp3") is None


def _many_clips() -> dict[str, tuple[str, list[str]]]:
    """60 clips in the 16 folders: tag k of the first 50 on 60 - k clips (so the top 50 are
    MTAT_TAGS[:50], by frequency), 10 rarer tags on one clip each; clips 0-5 hold only a rare
    tag or none, so the clean split leaves them out."""
    common, rare = MTAT_TAGS[:50], MTAT_TAGS[50:60]
    clips = {}
    for clip in range(60):
        folder = "0123456789abcdef"[clip % 16]
        if clip < 6:
            tags = [rare[clip]] if clip < 5 else []
        else:
            tags = [tag for k, tag in enumerate(common) if clip < 60 - k]
            tags += [rare[clip - 50]] if clip >= 55 else []
        clips[str(clip * 3 + 2)] = (
            f"{folder}/artist_{clip % 7}-album-01-title-{clip}-29.mp3",
            tags,
        )
    return clips


def test_magnatagatune_clean_split_keeps_clips_with_a_top50_tag(tmp_path: Path) -> None:
    clips = _many_clips()
    write_mtat(tmp_path, clips=clips, audio=False)
    full = magnatagatune.load_records(root=tmp_path, options={})
    assert len(full) == 60 and full.attrs["report"]["split_scheme"] == "folders"

    clean = magnatagatune.load_records(root=tmp_path, options={"split_scheme": "clean"})
    report = clean.attrs["report"]
    assert report["top_tags"] == MTAT_TAGS[:50]  # by frequency, not by column order
    assert report["clips_without_top_tag"] == 6 and len(clean) == 54
    assert set(clean["track_id"]) == {str(c * 3 + 2) for c in range(6, 60)}
    assert all(tags and set(tags) <= set(MTAT_TAGS[:50]) for tags in clean["tags"])
    # the same folders as the full split: 0-b train, c valid, d-f test
    expected = {s: 0 for s in ("train", "valid", "test")}
    for clip in range(6, 60):
        folder = "0123456789abcdef"[clip % 16]
        expected[magnatagatune.split_of_folder(mp3_path=f"{folder}/x.mp3") or ""] += 1
    assert report["clips"] == expected
    assert clean["split"].value_counts().to_dict() == {k: v for k, v in expected.items() if v}

    with pytest.raises(ConfigError, match="split_scheme' is 'won'"):
        magnatagatune.load_records(root=tmp_path, options={"split_scheme": "won"})
