"""The manifest: stable hashing, shards, artist-aware splits, vocabulary, shard lists; the
same audio file under several ids, paths outside the root, ids that do not print."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.datasets.manifest import (
    assign_shards,
    assign_splits,
    audio_file_keys,
    build_manifest,
    make_manifest,
    shard_name,
    stable_unit,
    tag_vocabulary,
    write_shard_lists,
)
from pipeline.errors import ConfigError
from tests.helpers.bad_inputs import control_id_table, outside_root_table, same_audio_tables

OLD = 1_000_000_000  # an mtime far in the past (2001)


def _records(n: int, *, artists: int = 0, split: str | None = None, offset: int = 0):
    ids = [f"track-{i:05d}" for i in range(offset, offset + n)]
    return pd.DataFrame(
        {
            "track_id": ids,
            "path": [f"/audio/{t}.mp3" for t in ids],
            "tags": [["rock"] if i % 2 else ["jazz", "calm"] for i in range(n)],
            "split": [split] * n,
            "artist": [f"artist-{i % artists}" if artists else None for i in range(n)],
            "duration_s": [30.0] * n,
        }
    )


# ---------------------------------------------------------------------------- hashing


def test_stable_unit_is_deterministic_in_range_and_salted() -> None:
    keys = [f"k{i}" for i in range(1000)]
    u = stable_unit(keys)
    assert u.shape == (1000,) and u.dtype == np.float64
    assert np.all((u >= 0) & (u < 1))
    np.testing.assert_array_equal(u, stable_unit(iter(keys)))
    # independent of the other keys and of their order
    assert stable_unit(["k7"])[0] == u[7]
    np.testing.assert_array_equal(stable_unit(keys[::-1]), u[::-1])
    salted = stable_unit(keys, salt="seed-1")
    assert abs(np.corrcoef(u, salted)[0, 1]) < 0.1
    assert stable_unit([]).shape == (0,)


def test_stable_unit_is_the_same_on_every_machine() -> None:
    """Golden values: a change of hash would silently re-shard and re-split every dataset."""
    got = stable_unit(["track-00001", "", "日本語"], salt="shard")
    np.testing.assert_array_equal(got, [0.6141782698497741, 0.9982108707377629, 0.8093193008649608])
    assert stable_unit(["track-00001"], salt="split-0")[0] == 0.5074652458015078


def test_assign_shards_stable_and_uniform() -> None:
    ids = [f"track-{i:05d}" for i in range(10_000)]
    shards = assign_shards(ids, n_shards=8)
    assert shards.dtype == np.int64
    assert shards.min() == 0 and shards.max() == 7
    counts = np.bincount(shards, minlength=8)
    assert np.all(np.abs(counts - 1250) < 125)  # within 10 % of uniform
    np.testing.assert_array_equal(assign_shards(ids, n_shards=8), shards)
    # adding tracks moves no existing track
    more = assign_shards([*ids, "new-1", "new-2"], n_shards=8)
    np.testing.assert_array_equal(more[:10_000], shards)
    assert np.all(assign_shards(ids[:50], n_shards=1) == 0)


def test_assign_shards_rejects_zero_shards() -> None:
    with pytest.raises(ConfigError, match="shards: 0"):
        assign_shards(["a"], n_shards=0)


# ---------------------------------------------------------------------------- splits


def test_official_splits_are_kept() -> None:
    records = _records(300, split="valid")
    records.loc[::3, "split"] = "test"
    records.loc[1::3, "split"] = None
    split = assign_splits(records, seed=0, valid_fraction=0.1, test_fraction=0.2)
    official = records["split"].notna()
    assert (split[official] == records.loc[official, "split"]).all()
    assert set(split[~official]) <= {"train", "valid", "test"}
    assert split.index.equals(records.index)


def test_splits_group_by_artist_and_are_stable() -> None:
    records = _records(2000, artists=150)
    records.loc[::7, "artist"] = None  # some tracks have no artist
    records.loc[3::11, "artist"] = ""  # ... or an empty one
    split = assign_splits(records, seed=3, valid_fraction=0.15, test_fraction=0.25)
    by_artist = pd.DataFrame({"artist": records["artist"], "split": split})
    named = by_artist[by_artist["artist"].fillna("") != ""]
    assert (named.groupby("artist")["split"].nunique() == 1).all()
    # adding tracks (new artists and known ones) moves no existing track
    extra = _records(300, artists=200, offset=5000)
    both = pd.concat([records, extra], ignore_index=True)
    again = assign_splits(both, seed=3, valid_fraction=0.15, test_fraction=0.25)
    pd.testing.assert_series_equal(again.iloc[:2000], split)
    # the seed matters
    other = assign_splits(records, seed=4, valid_fraction=0.15, test_fraction=0.25)
    assert (other != split).mean() > 0.2


def test_split_fractions_are_roughly_right() -> None:
    split = assign_splits(_records(10_000), seed=0, valid_fraction=0.1, test_fraction=0.2)
    fractions = split.value_counts(normalize=True)
    assert fractions["test"] == pytest.approx(0.2, abs=0.015)
    assert fractions["valid"] == pytest.approx(0.1, abs=0.015)
    assert fractions["train"] == pytest.approx(0.7, abs=0.015)
    none = assign_splits(_records(500), seed=0, valid_fraction=0.0, test_fraction=0.0)
    assert set(none) == {"train"}


@pytest.mark.parametrize(("valid", "test"), [(-0.1, 0.2), (0.1, 1.0), (0.5, 0.5)])
def test_bad_split_fractions(valid: float, test: float) -> None:
    with pytest.raises(ConfigError, match="split fractions"):
        assign_splits(_records(10), valid_fraction=valid, test_fraction=test)


# ---------------------------------------------------------------------------- vocabulary


def test_tag_vocabulary_order_ties_and_min_count() -> None:
    tags = pd.Series(
        [
            ["rock", "loud", "rock"],  # a duplicate counts once
            ["rock", "calm"],
            ["jazz", "calm"],
            ["rock", "jazz", "bass"],
            ["alto"],
            [],
        ]
    )
    # rock 3; calm 2, jazz 2 (tie: by name); alto, bass, loud 1
    assert tag_vocabulary(tags) == ["rock", "calm", "jazz", "alto", "bass", "loud"]
    assert tag_vocabulary(tags, top_n=2) == ["rock", "calm"]
    assert tag_vocabulary(tags, min_count=2) == ["rock", "calm", "jazz"]
    assert tag_vocabulary(tags, min_count=4) == []
    assert tag_vocabulary(pd.Series([], dtype=object)) == []


# ---------------------------------------------------------------------------- build


def _small_records() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "track_id": ["c", "a", "d", "b", "e"],
            "path": ["/x/c.wav", "/x/a.wav", "/x/d.wav", "/x/b.wav", "/x/e.wav"],
            "tags": [["pop", "rare"], ["rock", "pop"], [], ["rock"], ["rare2"]],
            "split": [None, "test", None, None, "train"],
            "artist": ["Z", None, "Z", None, "Y"],
            "duration_s": [30.0, float("nan"), 12.5, 3.0, 1.0],
        }
    )


def test_build_manifest_columns_order_and_tags() -> None:
    manifest, vocabulary, _ = build_manifest(_small_records(), n_shards=3, top_n=2)
    assert vocabulary == ["pop", "rock"]
    assert list(manifest.columns) == [
        "track_id",
        "path",
        "duration_s",
        "tags",
        "split",
        "artist",
        "shard",
    ]
    assert list(manifest["track_id"]) == ["a", "b", "c", "d", "e"]
    rows = manifest.set_index("track_id")
    assert rows.loc["a", "tags"] == ["pop", "rock"]  # vocabulary order, not input order
    assert rows.loc["c", "tags"] == ["pop"]  # non-vocabulary tags dropped
    assert rows.loc["d", "tags"] == [] and rows.loc["e", "tags"] == []
    assert rows.loc["a", "split"] == "test" and rows.loc["e", "split"] == "train"
    assert rows.loc["c", "split"] == rows.loc["d", "split"]  # same artist
    assert rows.loc["c", "path"] == "/x/c.wav"
    assert rows.loc["a", "artist"] is None and rows.loc["c", "artist"] == "Z"
    assert np.isnan(rows.loc["a", "duration_s"]) and rows.loc["d", "duration_s"] == 12.5
    np.testing.assert_array_equal(
        manifest["shard"], assign_shards(manifest["track_id"], n_shards=3)
    )


def test_build_manifest_drop_untagged() -> None:
    manifest, vocabulary, _ = build_manifest(
        _small_records(), n_shards=2, top_n=2, drop_untagged=True
    )
    assert list(manifest["track_id"]) == ["a", "b", "c"]
    assert manifest.index.tolist() == [0, 1, 2]


def test_build_manifest_min_count() -> None:
    _, vocabulary, _ = build_manifest(_small_records(), n_shards=2, min_count=2)
    assert vocabulary == ["pop", "rock"]


# ---------------------------------------------------------------------------- shard lists


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("*.parquet"))}


def _age(folder: Path) -> None:
    for path in folder.glob("*.parquet"):
        os.utime(path, (OLD, OLD))


def test_write_shard_lists_rewrites_only_changed_shards(tmp_path: Path) -> None:
    records = _records(40, artists=5)
    manifest, _, _ = build_manifest(records, n_shards=6)
    shard_dir = tmp_path / "shards"
    assert write_shard_lists(manifest, shard_dir=shard_dir, n_shards=6) == list(range(6))
    assert sorted(p.name for p in shard_dir.iterdir()) == [
        f"{shard_name(k)}.parquet" for k in range(6)
    ]
    table = pd.read_parquet(shard_dir / "0002.parquet")
    want = manifest[manifest["shard"] == 2][["track_id", "path"]]
    assert list(table.columns) == ["track_id", "path"]
    assert list(table["track_id"]) == sorted(want["track_id"])

    # the same manifest again: nothing is rewritten
    _age(shard_dir)
    assert write_shard_lists(manifest, shard_dir=shard_dir, n_shards=6) == []
    assert set(_mtimes(shard_dir).values()) == {OLD * 10**9}

    # one more track: only its shard is rewritten
    bigger, _, _ = build_manifest(pd.concat([records, _records(1, offset=900)]), n_shards=6)
    new_shard = int(bigger.loc[bigger["track_id"] == "track-00900", "shard"].iloc[0])
    assert write_shard_lists(bigger, shard_dir=shard_dir, n_shards=6) == [new_shard]
    mtimes = _mtimes(shard_dir)
    for name, mtime in mtimes.items():
        assert (mtime == OLD * 10**9) == (name != f"{shard_name(new_shard)}.parquet")
    assert "track-00900" in set(
        pd.read_parquet(shard_dir / f"{shard_name(new_shard)}.parquet")["track_id"]
    )


def test_empty_shards_are_written_and_stay_unchanged(tmp_path: Path) -> None:
    manifest, _, _ = build_manifest(_records(2), n_shards=16)
    assert write_shard_lists(manifest, shard_dir=tmp_path, n_shards=16) == list(range(16))
    empty = [k for k in range(16) if k not in set(manifest["shard"])]
    assert pd.read_parquet(tmp_path / f"{shard_name(empty[0])}.parquet").empty
    _age(tmp_path)
    assert write_shard_lists(manifest, shard_dir=tmp_path, n_shards=16) == []


def test_stale_and_unreadable_shard_files(tmp_path: Path) -> None:
    manifest8, _, _ = build_manifest(_records(60), n_shards=8)
    write_shard_lists(manifest8, shard_dir=tmp_path, n_shards=8)
    (tmp_path / "notes.parquet").write_text("stray")
    manifest4, _, _ = build_manifest(_records(60), n_shards=4)
    (tmp_path / "0001.parquet").write_bytes(b"not parquet")
    changed = write_shard_lists(manifest4, shard_dir=tmp_path, n_shards=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"000{k}.parquet" for k in range(4)]
    assert 1 in changed
    total = sum(len(pd.read_parquet(tmp_path / f"000{k}.parquet")) for k in range(4))
    assert total == 60


# ---------------------------------------------------------------------------- end to end


def _write_table(folder: Path, rows: list[str]) -> None:
    """tracks.csv and a non-empty file per relative path (the manifest step only stats)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "path,tags,split,artist,duration_s\n" + "\n".join(rows) + "\n"
    (folder / "tracks.csv").write_text(text, encoding="utf-8")
    for row in rows:
        written = Path(row.split(",")[0])
        audio = folder / written
        if not written.is_absolute() and not audio.exists():
            audio.parent.mkdir(parents=True, exist_ok=True)
            audio.write_bytes(b"not decoded here")


ROWS = [
    "audio/a.wav,rock;loud,train,Ada,31.5",
    "audio/b.wav,rock,,Ada,",
    "audio/café.ogg,calm,test,,12",
    "audio/d.flac,calm;rock;rare,,Bo,",
    "audio/e.mp3,,valid,,",
    "audio/f.wav,loud,,,4.0",
]


def test_make_manifest_with_table_adapter(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _write_table(root, ROWS)
    entry = {
        "format": "table",
        "root": str(root),
        "table": "tracks.csv",
        "shards": 3,
        "vocabulary": {"top_n": 3, "min_count": 2, "drop_untagged": True},
        "split": {"seed": 1, "valid_fraction": 0.2, "test_fraction": 0.2},
    }
    out = tmp_path / "results"
    paths = {
        "manifest_path": out / "manifest.parquet",
        "vocabulary_path": out / "vocabulary.json",
        "shard_dir": out / "shards",
    }
    summary = make_manifest(entry=entry, root=root, **paths)
    manifest = pd.read_parquet(paths["manifest_path"])
    # rock 3, calm 2, loud 2; rare 1 is below min_count; e has no tag and is dropped
    assert list(manifest["track_id"]) == ["audio/a", "audio/b", "audio/café", "audio/d", "audio/f"]
    assert [list(t) for t in manifest["tags"]] == [
        ["rock", "loud"],
        ["rock"],
        ["calm"],
        ["rock", "calm"],
        ["loud"],
    ]
    rows = manifest.set_index("track_id")
    assert rows.loc["audio/a", "split"] == "train" and rows.loc["audio/café", "split"] == "test"
    assert rows.loc["audio/a", "path"] == str(root / "audio/a.wav")
    assert rows.loc["audio/a", "duration_s"] == 31.5
    assert summary["n_tracks"] == 5 and summary["n_tags"] == 3
    assert sum(summary[f"n_{s}"] for s in ("train", "valid", "test")) == 5
    assert summary["changed_shards"] == [0, 1, 2]

    vocabulary = json.loads(paths["vocabulary_path"].read_text(encoding="utf-8"))
    assert vocabulary["tags"] == ["rock", "calm", "loud"]
    assert vocabulary["counts"]["rock"]["train"] == int(
        sum(
            "rock" in t
            for t, s in zip(manifest["tags"], manifest["split"], strict=True)
            if s == "train"
        )
    )
    assert sum(vocabulary["n_tracks"].values()) == 5

    # running again changes nothing; one added row changes one shard
    _age(paths["shard_dir"])
    assert make_manifest(entry=entry, root=root, **paths)["changed_shards"] == []
    _write_table(root, [*ROWS, "audio/g.wav,rock,train,,"])
    changed = make_manifest(entry=entry, root=root, **paths)["changed_shards"]
    assert changed == [int(assign_shards(["audio/g"], n_shards=3)[0])]
    untouched = [k for k in range(3) if k not in changed]
    mtimes = _mtimes(paths["shard_dir"])
    assert all(mtimes[f"{shard_name(k)}.parquet"] == OLD * 10**9 for k in untouched)


# ---------------------------------------------------------------------------- checks of records


def _entry(root: Path, **extra) -> dict:
    return {
        "format": "table",
        "root": str(root),
        "table": "tracks.csv",
        "shards": 2,
        "vocabulary": {"top_n": 10, "min_count": 1, "drop_untagged": False},
        "split": {"seed": 0, "valid_fraction": 0.2, "test_fraction": 0.2},
        **extra,
    }


def _make(tmp_path: Path, root: Path, **extra) -> tuple[dict, pd.DataFrame, dict]:
    out = tmp_path / "results"
    summary = make_manifest(
        entry=_entry(root, **extra),
        root=root,
        manifest_path=out / "manifest.parquet",
        vocabulary_path=out / "vocabulary.json",
        shard_dir=out / "shards",
    )
    manifest = pd.read_parquet(out / "manifest.parquet")
    vocabulary = json.loads((out / "vocabulary.json").read_text(encoding="utf-8"))
    return summary, manifest, vocabulary


def _files_in_one_split(manifest: pd.DataFrame) -> bool:
    keys = audio_file_keys(manifest["path"])
    return bool(
        (
            pd.DataFrame({"key": keys, "split": manifest["split"]})
            .groupby("key")["split"]
            .nunique()
            == 1
        ).all()
    )


def test_audio_file_keys_resolve_links_and_dotdot(tmp_path: Path) -> None:
    same_audio_tables(tmp_path)
    audio = tmp_path / "audio"
    keys = audio_file_keys(
        [
            str(audio / "a.wav"),
            f"{audio}/../audio/a.wav",
            str(audio / "link.wav"),
            str(audio / "hard.wav"),
            str(audio / "b.wav"),
            str(audio / "gone.wav"),
            f"{audio}/x/../gone.wav",
        ]
    )
    assert len(set(keys[:4])) == 1 and keys[4] != keys[0]
    assert keys[5] == keys[6] == f"path:{audio / 'gone.wav'}"  # missing: by resolved path


def test_same_audio_under_several_ids_keeps_the_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    same_audio_tables(root)
    with caplog.at_level("WARNING", logger="pipeline.datasets.manifest"):
        summary, manifest, vocabulary = _make(tmp_path, root)
    assert sorted(manifest["track_id"]) == ["a", "b"]  # a_copy (official test) left out
    assert manifest.set_index("track_id").loc["a", "split"] == "train"
    checks = vocabulary["checks"]["duplicate_audio"]
    assert checks["policy"] == "keep_first" and checks["files"] == 1
    assert checks["tracks_left_out"] == 4 and summary["checks"]["duplicate_audio"] == checks
    assert checks["examples"] == [
        {
            "path": str(root / "audio/a.wav"),
            "track_ids": ["a", "a_copy", "a_dotdot", "a_link", "a_hard"],
        }
    ]
    [line] = [r.getMessage() for r in caplog.records if "more than one track id" in r.getMessage()]
    assert line.startswith(
        "1 audio files are listed under more than one track id; kept the "
        "first of each (table order), left out 4 tracks"
    )
    assert "'a', 'a_copy'" in line


def test_same_audio_keep_all_puts_one_file_in_one_split(tmp_path: Path) -> None:
    root = tmp_path / "data"
    same_audio_tables(root)
    summary, manifest, vocabulary = _make(tmp_path, root, duplicate_audio="keep_all")
    assert len(manifest) == 6
    rows = manifest.set_index("track_id")
    assert set(rows.loc[["a", "a_copy", "a_dotdot", "a_link", "a_hard"], "split"]) == {"train"}
    assert _files_in_one_split(manifest)
    checks = vocabulary["checks"]["duplicate_audio"]
    assert checks["policy"] == "keep_all" and checks["tracks_left_out"] == 0
    assert checks["splits_overridden"] == 2  # a_copy (test) and a_link (valid)


def test_assign_splits_never_puts_one_file_in_two_splits() -> None:
    records = _records(400, artists=0)
    records["path"] = [f"/audio/{i // 2}.mp3" for i in range(400)]  # pairs share a file
    records["artist"] = [f"artist-{i}" for i in range(400)]  # ...but not an artist
    split = assign_splits(records, seed=1, valid_fraction=0.3, test_fraction=0.3)
    assert (split.iloc[0::2].to_numpy() == split.iloc[1::2].to_numpy()).all()
    assert split.nunique() == 3


def test_build_manifest_applies_the_duplicate_policy() -> None:
    records = _small_records()
    records.loc[4, "path"] = "/x/a.wav"  # e (official train) is a's file (official test)
    manifest, _, checks = build_manifest(records, n_shards=2)
    assert "e" not in set(manifest["track_id"]) and checks.left_out == ["e"]
    manifest, _, checks = build_manifest(records, n_shards=2, duplicate_audio="keep_all")
    rows = manifest.set_index("track_id")
    assert rows.loc["e", "split"] == rows.loc["a", "split"] == "test"
    assert checks.split_overridden == ["e"]
    with pytest.raises(ConfigError, match="duplicate_audio: 'drop' is not one of"):
        build_manifest(records, n_shards=2, duplicate_audio="drop")


def test_paths_outside_the_root_are_kept_and_listed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, outside = tmp_path / "data", tmp_path / "elsewhere"
    outside_root_table(root, outside=outside)
    with caplog.at_level("WARNING", logger="pipeline.datasets.manifest"):
        _, manifest, vocabulary = _make(tmp_path, root)
    assert sorted(manifest["track_id"]) == ["abs", "in", "up"]
    listed = vocabulary["checks"]["outside_root"]
    assert listed["tracks"] == 2 and listed["root"] == str(root)
    assert [e["track_id"] for e in listed["examples"]] == ["up", "abs"]
    assert listed["examples"][1]["path"] == str(outside / "far.wav")
    assert any(
        "2 tracks have their audio outside the dataset root" in r.getMessage()
        for r in caplog.records
    )
    # every check reports nothing for a clean dataset
    assert vocabulary["checks"]["duplicate_audio"]["files"] == 0
    assert vocabulary["checks"]["escaped_track_ids"]["tracks"] == 0


def test_track_ids_with_control_characters_are_escaped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    control_id_table(root)
    with caplog.at_level("WARNING", logger="pipeline.datasets.manifest"):
        _, manifest, vocabulary = _make(tmp_path, root, sep="\t")
    escaped = ["bell\\x07", "esc\\x1b[31mred", "evil\\u202egnp.wav", "ok"]
    assert sorted(manifest["track_id"]) == escaped
    assert all(t.isprintable() for t in manifest["track_id"])
    assert sorted(manifest["path"]) == [str(root / f"t{k}.wav") for k in range(4)]  # raw paths
    checks = vocabulary["checks"]["escaped_track_ids"]
    assert checks["tracks"] == 3 and "evil\\u202egnp.wav" in checks["examples"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("3 track ids hold characters that do not print" in m for m in messages)
    assert all(m.isprintable() for m in messages)
    shards = pd.concat(pd.read_parquet(p) for p in (tmp_path / "results/shards").iterdir())
    assert sorted(shards["track_id"]) == escaped


def test_an_escaped_id_equal_to_another_is_an_error() -> None:
    records = _small_records()
    records.loc[0, "track_id"] = "a\x07"
    records.loc[1, "track_id"] = "a\\x07"
    with pytest.raises(ConfigError, match=r"track id 'a\\\\x07': two tracks have this id"):
        build_manifest(records, n_shards=2)


@pytest.mark.parametrize(("valid", "test"), [(0.5, 0.7), (float("nan"), 0.1)])
def test_split_fractions_summing_above_one_or_nan(valid: float, test: float) -> None:
    with pytest.raises(ConfigError, match="split fractions"):
        assign_splits(_records(10), valid_fraction=valid, test_fraction=test)


# ---------------------------------------------------------------------------- every file checked


def test_make_manifest_checks_every_file_first(tmp_path: Path) -> None:
    root = tmp_path / "data"
    rows = [f"audio/{i:02d}.wav,{'rock' if i % 2 else 'jazz'},,," for i in range(20)]
    _write_table(root, rows)
    (root / "audio" / "03.wav").unlink()  # missing
    (root / "audio" / "04.wav").write_bytes(b"")  # empty: unreadable
    out = tmp_path / "results"
    paths = {
        "manifest_path": out / "manifest.parquet",
        "vocabulary_path": out / "vocabulary.json",
        "shard_dir": out / "shards",
        "summary_path": out / "manifest_summary.json",
        "failed_path": out / "manifest.failed.parquet",
    }
    summary = make_manifest(entry=_entry(root), root=root, dataset="mine", **paths)
    manifest = pd.read_parquet(paths["manifest_path"])
    assert len(manifest) == 18 and not {"audio/03", "audio/04"} & set(manifest["track_id"])
    written = json.loads(paths["summary_path"].read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(summary))
    files = written["files"]
    assert (files["checked"], files["found"], files["missing"], files["unreadable"]) == (
        20,
        18,
        1,
        1,
    )
    assert files["missing_examples"] == [str(root / "audio" / "03.wav")]
    assert written["dataset"] == "mine" and written["split_name"] == "drawn (seed 0)"
    assert "1 of 20 audio files are missing and 1 unreadable" in written["warnings"][0]
    failed = pd.read_parquet(paths["failed_path"])
    assert failed["track_id"].tolist() == ["audio/03", "audio/04"]
    assert set(failed["stage"]) == {"check"} and "is empty" in failed["error"].iloc[1]

    # above the limit, and all missing: stop with one line naming the dataset
    with pytest.raises(ConfigError, match=r"dataset 'mine' .*more than max_missing_fraction 0.05"):
        make_manifest(
            entry=_entry(root, max_missing_fraction=0.05), root=root, dataset="mine", **paths
        )
    (root / "audio").rename(root / "elsewhere")
    with pytest.raises(ConfigError, match=r"dataset 'mine' .*none of the 20 audio files"):
        make_manifest(entry=_entry(root), root=root, dataset="mine", **paths)
