"""The FMA adapter (:mod:`pipeline.datasets.fma`) on a fixture in the real layout
(:func:`tests.helpers.datasets.write_fma`): tracks.csv with its two header rows and the
``track_id`` row, multi-line quoted cells, nested subsets, ``AAA/AAABBB.mp3`` audio."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.datasets import fma, load_dataset_records
from pipeline.datasets.manifest import make_manifest
from pipeline.errors import ConfigError
from tests.helpers.datasets import FMA_TRACKS, fma_audio_path, write_fma
from tests.helpers.records import assert_contract, assert_decodes


def test_fma_header_rows_parse_as_pandas_reads_them(tmp_path: Path) -> None:
    write_fma(tmp_path, audio_subsets=())
    lines = (tmp_path / "fma_metadata" / "tracks.csv").read_text().splitlines()
    assert lines[0].startswith(",album,album,") and ",set,set,track," in lines[0]
    assert lines[1].startswith(",comments,date_created,") and ",split,subset,bit_rate," in lines[1]
    assert lines[2] == "track_id" + "," * 52
    tracks = fma.read_tracks(tmp_path / "fma_metadata" / "tracks.csv")
    assert tracks.index.tolist() == list(FMA_TRACKS)  # multi-line cells did not split rows
    assert tracks.loc[141, "genres_all"] == "[25, 12]" and tracks.loc[1234, "genre_top"] == ""


def test_fma_small_top_genre_official_split(tmp_path: Path) -> None:
    write_fma(tmp_path)
    records = load_dataset_records(format="fma", root=tmp_path, options={})
    assert_contract(records)
    assert records["track_id"].tolist() == ["000002", "000005", "000010"]
    assert records["tags"].tolist() == [["Hip-Hop"], ["Hip-Hop"], ["Pop"]]
    assert records["split"].tolist() == ["train", "valid", "test"]
    assert records["artist"].tolist() == ["1", "1", "6"]
    assert records["duration_s"].isna().all()  # 30 s clips: the track's duration does not apply
    for track_id, path in zip(records["track_id"], records["path"], strict=True):
        written = tmp_path / "fma_small" / fma_audio_path(int(track_id))
        assert_decodes(path, written)


@pytest.mark.parametrize(
    ("subset", "expected"),
    [
        ("small", [2, 5, 10]),
        ("medium", [2, 5, 10, 140, 141]),
        ("large", list(FMA_TRACKS)),
        ("full", list(FMA_TRACKS)),
    ],
)
def test_fma_subsets_are_nested(tmp_path: Path, subset: str, expected: list[int]) -> None:
    write_fma(tmp_path, audio_subsets=())
    records = fma.load_records(root=tmp_path, options={"subset": subset})
    assert records["track_id"].tolist() == [f"{t:06d}" for t in expected]
    assert records["path"].iloc[-1] == str(
        tmp_path / f"fma_{subset}" / fma_audio_path(expected[-1])
    )
    report = records.attrs["report"]
    assert report["tracks_in_subset"] == len(expected) and report["tracks_in_metadata"] == 7
    durations = dict(zip(records["track_id"], records["duration_s"], strict=True))
    assert (durations["000002"] == 168.0) if subset == "full" else math.isnan(durations["000002"])


def test_fma_all_genres_by_title_and_tracks_without_top_genre(tmp_path: Path) -> None:
    write_fma(tmp_path, audio_subsets=())
    large = fma.load_records(root=tmp_path, options={"subset": "large"}).set_index("track_id")
    assert large.at["001234", "tags"] == []  # no genre_top: no tag
    assert large.at["155066", "path"].endswith("fma_large/155/155066.mp3")
    every = fma.load_records(root=tmp_path, options={"subset": "large", "genre_tags": "all"})
    tags = dict(zip(every["track_id"], every["tags"], strict=True))
    assert tags["000141"] == ["Punk", "Rock"]
    assert tags["001234"] == ["Avant-Garde", "Pop", "Experimental"]
    assert every.attrs["report"]["tracks_without_genre"] == 0


def test_fma_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tracks.csv' not found"):
        fma.load_records(root=tmp_path, options={})
    write_fma(tmp_path, audio_subsets=())
    with pytest.raises(ConfigError, match="subset' is 'tiny'"):
        fma.load_records(root=tmp_path, options={"subset": "tiny"})
    with pytest.raises(ConfigError, match="genre_tags' is 'sub'"):
        fma.load_records(root=tmp_path, options={"genre_tags": "sub"})
    genres = tmp_path / "fma_metadata" / "genres.csv"
    genres.write_text("genre_id,#tracks,parent,title,top_level\n21,1,0,Hip-Hop,21\n")
    with pytest.raises(ConfigError, match="genre id 10 in track/genres_all"):
        fma.load_records(root=tmp_path, options={"genre_tags": "all"})
    tracks = tmp_path / "fma_metadata" / "tracks.csv"
    # a one-row header (e.g. the file re-saved by a spreadsheet) is named
    tracks.write_text("track_id,subset,split\n2,small,training\n")
    with pytest.raises(ConfigError, match="two header rows|no column set/subset"):
        fma.load_records(root=tmp_path, options={})


def test_fma_missing_audio_names_the_subset_folder(tmp_path: Path) -> None:
    write_fma(tmp_path, audio_subsets=("small",))
    entry = {
        "format": "fma",
        "subset": "medium",
        "shards": 2,
        "vocabulary": {"top_n": 50, "min_count": 1, "drop_untagged": False},
        "split": {"seed": 0, "valid_fraction": 0.1, "test_fraction": 0.2},
    }
    out = tmp_path / "results"
    with pytest.raises(ConfigError, match=r"none of the 5 audio files .*fma_<subset>/AAA/AAABBB"):
        make_manifest(
            entry=entry,
            root=tmp_path,
            dataset="fma",
            manifest_path=out / "manifest.parquet",
            vocabulary_path=out / "vocabulary.json",
            shard_dir=out / "shards",
        )
