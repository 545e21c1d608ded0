"""Splits from list files (:mod:`pipeline.datasets.split_lists`) for any adapter: GTZAN's
fault-filtered text lists, Won et al.'s MTAT ``.npy`` lists, plain relative paths; entries
not in the dataset reported, tracks in no list left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.datasets import gtzan, load_dataset_records
from pipeline.datasets.manifest import make_manifest
from pipeline.datasets.split_lists import apply_split_lists, read_split_list, split_list_paths
from pipeline.errors import ConfigError
from tests.helpers.datasets import MTAT_CLIPS, write_mtat

GENRES = ["blues", "classical", "rock"]


def _gtzan(root: Path, *, extension: str = "wav") -> None:
    """genres/<genre>/<genre>.000NN.<ext>: 4 clips per genre (non-empty files; only stat-ed)."""
    for genre in GENRES:
        folder = root / "genres" / genre
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(4):
            (folder / f"{genre}.{index:05d}.{extension}").write_bytes(b"RIFF")


def _lists(root: Path) -> dict[str, str]:
    """Lists in the layout of sota-music-tagging-models' split/gtzan/*_filtered.txt."""
    folder = root / "split" / "gtzan"
    folder.mkdir(parents=True)
    lines = {
        "train": [f"{g}/{g}.0000{i}.wav" for g in GENRES for i in (0, 1)],
        "valid": [f"{g}/{g}.00002.wav" for g in GENRES],
        # a fault-filtered list names clips this copy lacks; index 3 of blues and classical
        # is in no list
        "test": ["blues/blues.00099.wav", "jazz/jazz.00054.wav", "rock/rock.00003.wav"],
    }
    for split, entries in lines.items():
        (folder / f"{split}_filtered.txt").write_text("\n".join(entries) + "\n")
    return {split: f"split/gtzan/{split}_filtered.txt" for split in lines}


def test_gtzan_filtered_lists_match_paths_below_root(tmp_path: Path) -> None:
    _gtzan(tmp_path)
    records = gtzan.load_records(root=tmp_path, options={})
    lists = split_list_paths(root=tmp_path, value=_lists(tmp_path))
    out, report, warnings = apply_split_lists(records, lists=lists, root=tmp_path)
    split = dict(zip(out["track_id"], out["split"], strict=True))
    assert split["blues.00000"] == "train" and split["rock.00001"] == "train"
    assert split["classical.00002"] == "valid"
    assert split["rock.00003"] == "test"
    assert "blues.00003" not in split and len(out) == 10
    assert report["entries"] == {"train": 6, "valid": 3, "test": 3}
    assert report["matched"] == {"train": 6, "valid": 3, "test": 1}
    assert report["not_in_dataset"] == 2
    assert report["not_in_dataset_examples"] == ["blues/blues.00099.wav", "jazz/jazz.00054.wav"]
    assert report["tracks_in_no_list"] == 2
    assert "2 list entries name no track" in warnings[0] and "'jazz/jazz.00054.wav'" in warnings[0]
    assert "2 tracks of the dataset are in no list" in warnings[1]


def test_wav_lists_match_the_original_au_files(tmp_path: Path) -> None:
    _gtzan(tmp_path, extension="au")
    records = gtzan.load_records(root=tmp_path, options={})
    lists = split_list_paths(root=tmp_path, value=_lists(tmp_path))
    out, report, _ = apply_split_lists(records, lists=lists, root=tmp_path)
    assert report["matched"]["train"] == 6 and out["path"].str.endswith(".au").all()


def test_won_npy_lists_of_mtat(tmp_path: Path) -> None:
    write_mtat(tmp_path, audio=False)
    records = load_dataset_records(format="magnatagatune", root=tmp_path, options={})
    # np.save of Won's lists: an array of str "<row>\t<folder>/<clip>.mp3"
    rows = {clip: row for row, clip in enumerate(MTAT_CLIPS)}
    folder = tmp_path / "split" / "mtat"
    folder.mkdir(parents=True)
    chosen = {"train": ["2", "6", "10"], "valid": ["12"], "test": ["13", "14"]}
    for split, clips in chosen.items():
        entries = [f"{rows[c]}\t{MTAT_CLIPS[c][0]}" for c in clips]
        if split == "test":
            entries.append("99\t0/not_in_this_copy-01-x-0-29.mp3")
        np.save(folder / f"{split}.npy", np.array(entries))
    lists = {s: f"split/mtat/{s}.npy" for s in chosen}
    assert read_split_list(folder / "valid.npy") == [MTAT_CLIPS["12"][0]]
    out, report, _ = apply_split_lists(
        records, lists=split_list_paths(root=tmp_path, value=lists), root=tmp_path
    )
    assert dict(zip(out["track_id"], out["split"], strict=True)) == {
        clip: split for split, clips in chosen.items() for clip in clips
    }
    assert report["not_in_dataset"] == 1 and report["tracks_in_no_list"] == 1  # clip 11

    np.save(folder / "bad.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ConfigError, match="not a NumPy array of strings"):
        read_split_list(folder / "bad.npy")


def test_plain_lists_comments_and_errors(tmp_path: Path) -> None:
    records = pd.DataFrame(
        {
            "track_id": ["a", "b", "c"],
            "path": [str(tmp_path / "x" / "a.mp3"), str(tmp_path / "y" / "a.mp3"), "/o/c.mp3"],
            "split": [None, None, None],
        }
    )
    (tmp_path / "train.txt").write_text("# train\n./x/a.mp3\n\n")
    (tmp_path / "valid.txt").write_text("y/a.mp3\r\n")
    (tmp_path / "test.txt").write_text("/o/c.mp3\n")
    lists = split_list_paths(
        root=tmp_path, value={"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}
    )
    out, report, warnings = apply_split_lists(records, lists=lists, root=tmp_path)
    assert out["split"].tolist() == ["train", "valid", "test"] and warnings == []

    (tmp_path / "test.txt").write_text("a.mp3\n")  # names both x/a.mp3 and y/a.mp3
    with pytest.raises(ConfigError, match="'a.mp3' matches 2 tracks"):
        apply_split_lists(records, lists=lists, root=tmp_path)
    (tmp_path / "test.txt").write_text("x/a.mp3\n")
    with pytest.raises(ConfigError, match="is in two split lists"):
        apply_split_lists(records, lists=lists, root=tmp_path)
    for name in ("train", "valid", "test"):
        (tmp_path / f"{name}.txt").write_text("elsewhere/z.mp3\n")
    with pytest.raises(ConfigError, match="none of the 3 entries names a track"):
        apply_split_lists(records, lists=lists, root=tmp_path)
    (tmp_path / "train.txt").write_text("x/a.mp3\n")
    (tmp_path / "valid.txt").write_text("y/a.mp3\n")  # test.txt still names no track
    empty = r"split_lists\.test: none of the 1 entries of .*test\.txt' names a track"
    with pytest.raises(ConfigError, match=empty + " of the dataset, so the test split would be"):
        apply_split_lists(records, lists=lists, root=tmp_path)
    with pytest.raises(ConfigError, match="must map exactly"):
        split_list_paths(root=tmp_path, value={"train": "t.txt"})
    with pytest.raises(ConfigError, match="'.*nowhere.txt' not found"):
        read_split_list(tmp_path / "nowhere.txt")


def test_make_manifest_uses_split_lists_and_reports_them(tmp_path: Path) -> None:
    _gtzan(tmp_path)
    entry = {
        "format": "gtzan",
        "split_lists": _lists(tmp_path),
        "shards": 2,
        "vocabulary": {"top_n": 10, "min_count": 1, "drop_untagged": False},
        "split": {"seed": 0, "valid_fraction": 0.1, "test_fraction": 0.2},
    }
    out = tmp_path / "results"
    summary = make_manifest(
        entry=entry,
        root=tmp_path,
        dataset="gtzan",
        manifest_path=out / "manifest.parquet",
        vocabulary_path=out / "vocabulary.json",
        shard_dir=out / "shards",
        summary_path=out / "manifest_summary.json",
    )
    assert (summary["n_train"], summary["n_valid"], summary["n_test"]) == (6, 3, 1)
    written = json.loads((out / "manifest_summary.json").read_text())
    assert (
        written["split_name"] == "lists: train_filtered.txt, valid_filtered.txt, test_filtered.txt"
    )
    assert written["split_lists"]["not_in_dataset"] == 2
    assert any("name no track" in w for w in written["warnings"])
