"""The index over a feature set's shard stores, its failures, and the tracks of a split.

On the stores of :func:`tests.helpers.feature_stores.build_stores` (fixture ``built``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.features.index import (
    FAILURE_COLUMNS,
    INDEX_COLUMNS,
    build_index,
    collect_failures,
    split_tracks,
    write_feature_index,
)
from pipeline.io.store import FeatureStore
from tests.helpers.feature_stores import TRACKS


def test_build_index(built: tuple[list[Path], pd.DataFrame]) -> None:
    stores, manifest = built
    index = build_index(stores=stores, manifest=manifest)
    assert list(index.columns) == INDEX_COLUMNS
    assert list(index["track_id"]) == sorted(TRACKS)
    assert list(index["store"]) == [str(stores[TRACKS[t][0]]) for t in sorted(TRACKS)]
    assert list(index["split"]) == [TRACKS[t][2] for t in sorted(TRACKS)]
    assert [list(t) for t in index["tags"]] == [TRACKS[t][3] for t in sorted(TRACKS)]
    assert list(index["n_windows"]) == [3, 1, 2, 2, 3, 1]
    np.testing.assert_allclose(index["duration_s"], [TRACKS[t][1] for t in sorted(TRACKS)])
    for row in index.itertuples():
        store = FeatureStore(Path(row.store))
        assert store.index()["track_id"][row.track] == row.track_id
        np.testing.assert_array_equal(
            store.windows[row.start : row.stop], store.track_windows(track=row.track)
        )
        assert row.stop - row.start == row.n_windows


def test_store_track_missing_from_manifest_raises(built) -> None:
    stores, manifest = built
    with pytest.raises(PipelineError, match="'s1/e'"):
        build_index(stores=stores, manifest=manifest[manifest["track_id"] != "s1/e"])


def test_manifest_tracks_without_features_are_not_indexed(built) -> None:
    stores, manifest = built
    extra = pd.DataFrame({"track_id": ["failed/x"], "split": ["train"], "tags": [["rock"]]})
    index = build_index(stores=stores[:1], manifest=pd.concat([manifest, extra]))
    assert list(index["track_id"]) == ["s0/a", "s0/b", "s0/c"]


def test_write_feature_index(built, tmp_path: Path) -> None:
    stores, manifest = built
    manifest_path = tmp_path / "manifest.parquet"
    with_failed = pd.concat(
        [manifest, pd.DataFrame({"track_id": ["bad"], "split": ["train"], "tags": [[]]})]
    )
    with_failed.to_parquet(manifest_path, index=False)
    failed = tmp_path / "0000.failed.parquet"
    pd.DataFrame(
        [
            {
                "track_id": "bad",
                "path": "/x/bad.mp3",
                "stage": "decode",
                "level": "error",
                "error": "'/x/bad.mp3': empty file (0 bytes)",
            },
            {
                "track_id": "s0/a",
                "path": "/x/a.wav",
                "stage": "decode",
                "level": "warning",
                "error": "silent",
            },
        ]
    ).to_parquet(failed, index=False)
    summary = write_feature_index(
        manifest_path=manifest_path,
        stores=stores,
        failed=[failed],
        index_path=tmp_path / "index.parquet",
        failed_path=tmp_path / "failed.csv",
        summary_path=tmp_path / "summary.json",
    )
    assert summary == {
        "n_tracks": 7,
        "n_stored": 6,
        "n_failed": 1,
        "n_warnings": 1,
        "n_windows": 12,
        "failed_by_stage": {"decode": 1},
        "stored_by_split": {"train": 4, "test": 1, "valid": 1},
    }
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert list(pd.read_parquet(tmp_path / "index.parquet")["track_id"]) == sorted(TRACKS)
    failures = pd.read_csv(tmp_path / "failed.csv", dtype=str)
    assert list(failures["shard"]) == ["0000", "0000"]


def test_collect_failures_names_the_shard(tmp_path: Path) -> None:
    empty = collect_failures([])
    assert list(empty.columns) == [*FAILURE_COLUMNS, "shard"] and empty.empty
    paths = []
    for shard, ids in (("0003", ["x", "y"]), ("0011", ["z"])):
        paths.append(tmp_path / f"{shard}.failed.parquet")
        pd.DataFrame(
            {
                "track_id": ids,
                "path": [f"/a/{t}.mp3" for t in ids],
                "stage": "decode",
                "level": "error",
                "error": "empty file",
            }
        ).to_parquet(paths[-1], index=False)
    failures = collect_failures(paths)
    assert list(failures["track_id"]) == ["x", "y", "z"]
    assert list(failures["shard"]) == ["0003", "0003", "0011"]


def test_split_tracks_keeps_stored_tracks_of_one_split(built) -> None:
    stores, manifest = built
    index = build_index(stores=stores, manifest=manifest)
    train = split_tracks(index, split="train")
    assert list(train["track_id"]) == ["s0/a", "s0/b", "s1/d", "s1/f"]
    assert list(train.index) == [0, 1, 2, 3]
    emptied = index.assign(
        stop=np.where(index["track_id"] == "s0/b", index["start"], index["stop"])
    )
    assert list(split_tracks(emptied, split="train")["track_id"]) == ["s0/a", "s1/d", "s1/f"]
    with pytest.raises(PipelineError, match="no stored windows in split 'holdout'"):
        split_tracks(index, split="holdout")
    with pytest.raises(PipelineError, match=r"lacks column\(s\) \['split', 'tags'\]"):
        split_tracks(index.drop(columns=["split", "tags"]), split="train")
