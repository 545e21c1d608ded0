"""What each rule reads and what the default target builds, from a validated config; the
roots and tables a config names exist when the DAG is built, or the config key is named."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest

from pipeline.config import check_sources, load_yaml, validate_config
from pipeline.config import workflow_inputs as inputs
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = load_yaml(REPO / "workflow" / "schemas" / "config.schema.yaml")
CONFIG = validate_config(load_yaml(REPO / "config.yaml"), schema=SCHEMA)


def _config(**sections) -> dict:
    config = {
        "results": "out",
        "resources": "res",
        "datasets": {
            "a": {"format": "table", "root": "/data/a", "table": "t.csv", "shards": 2},
            "b": {"format": "demo", "shards": 1, "features": ["lm"]},
        },
        "features": {"lm": {"kind": "logmel"}, "mf": {"kind": "mfcc"}},
        "models": {
            "fcn": {"architecture": "fcn", "features": "lm"},
            "svm": {
                "architecture": "embedding_svm",
                "features": "lm",
                "datasets": ["a"],
                "hparams": {"from_model": "fcn"},
            },
            "lstm": {"architecture": "lstm", "features": "mf"},
        },
    }
    config.update(sections)
    return validate_config(config, schema=SCHEMA)


def test_targets_of_the_repo_config() -> None:
    targets = inputs.all_targets(CONFIG)
    assert targets[:5] == [
        "results/demo/manifest.parquet",
        "results/demo/features/logmel/index.parquet",
        "results/demo/features/logmel/stats.json",
        "results/demo/features/mfcc/index.parquet",
        "results/demo/features/mfcc/stats.json",
    ]
    for name in ("leaderboard", "retrieval", "fewshot"):
        assert all(f"results/{name}.{ext}" in targets for ext in ("csv", "md", "html"))
    assert "results/collections/demo_audio/tags.parquet" in targets
    indexes = [t for t in targets if t.endswith("similarity/index.parquet")]
    assert indexes == [
        f"results/demo/models/{m}/similarity/index.parquet" for m in ("fcn", "musicnn", "lstm_mfcc")
    ]
    assert len(targets) == len(set(targets))


def test_targets_follow_the_sections_in_use() -> None:
    config = _config()
    targets = inputs.all_targets(config)
    assert "out/a/features/mf/index.parquet" in targets
    assert "out/b/features/mf/index.parquet" not in targets  # b extracts lm only
    assert "out/leaderboard.csv" in targets
    assert not any("retrieval" in t or "fewshot" in t or "collections" in t for t in targets)
    assert inputs.all_targets(_config(models={})) == [
        "out/a/manifest.parquet",
        "out/a/features/lm/index.parquet",
        "out/a/features/lm/stats.json",
        "out/a/features/mf/index.parquet",
        "out/a/features/mf/stats.json",
        "out/b/manifest.parquet",
        "out/b/features/lm/index.parquet",
        "out/b/features/lm/stats.json",
    ]


def test_pairs() -> None:
    config = _config(retrieval={"models": ["lstm"]}, fewshot={"models": ["fcn"]})
    assert inputs.evaluated_models(config) == [
        ("a", "fcn"),
        ("b", "fcn"),
        ("a", "svm"),
        ("a", "lstm"),
    ]
    assert inputs.retrieval_pairs(config) == [("a", "lstm")]
    assert inputs.fewshot_pairs(config) == [("a", "fcn"), ("b", "fcn")]
    assert inputs.retrieval_table_inputs(config) == ["out/a/models/lstm/retrieval/metrics.json"]
    assert inputs.fewshot_table_inputs(config) == [
        "out/a/models/fcn/fewshot/episodes.csv",
        "out/b/models/fcn/fewshot/episodes.csv",
    ]
    board = inputs.leaderboard_inputs(config)
    assert board["metrics"][0] == "out/a/models/fcn/evaluation/metrics.json"
    assert board["summaries"][-1] == "out/a/models/lstm/train_summary.json"
    params = inputs.leaderboard_params(config)
    assert params["pairs"] == inputs.evaluated_models(config)
    assert params["models"] is config["models"]


def test_manifest_and_generator_inputs() -> None:
    config = _config(
        datasets={
            "demo": {"format": "demo", "n_clips": 12},
            "sc": {"format": "scores", "root": "/scores", "table": "tags.csv", "program": 40},
        },
        models={},
    )
    assert inputs.manifest_params(config, dataset="demo") == {
        "format": "table",
        "root": "res/demo",
        "options": {
            **config["datasets"]["demo"],
            "table": "tracks.csv",
            "sep": ",",
            "tag_sep": ";",
        },
    }
    assert inputs.manifest_source(config, dataset="sc").files == ["res/sc/rendered/tracks.csv"]
    assert inputs.generator_params(config, dataset="demo") == {
        "n_clips": 12,
        "clip_s": 20.0,
        "seed": 0,
    }
    assert list(inputs.generator_params(config, dataset="demo")) == ["n_clips", "clip_s", "seed"]
    assert inputs.generator_inputs(config, dataset="demo") == {}
    assert inputs.generator_params(config, dataset="sc") == {
        "root": "/scores",
        "sep": ",",
        "tag_sep": ";",
        "clip_s": 30.0,
        "tempo_qpm": None,
        "program": 40,
    }
    assert inputs.generator_inputs(config, dataset="sc") == {"table": "/scores/tags.csv"}


def test_feature_and_model_inputs() -> None:
    config = _config()
    assert inputs.shard_stores(config, dataset="a", features="lm") == [
        "out/a/features/lm/0000.zarr",
        "out/a/features/lm/0001.zarr",
    ]
    assert inputs.shard_failures(config, dataset="b", features="lm") == [
        "out/b/features/lm/0000.failed.parquet"
    ]
    assert inputs.train_inputs(config, dataset="a", model="lstm") == {
        "index": "out/a/features/mf/index.parquet",
        "stats": "out/a/features/mf/stats.json",
        "vocabulary": "out/a/vocabulary.json",
    }
    borrowed = inputs.train_inputs(config, dataset="a", model="svm")
    assert borrowed["network"] == "out/a/models/fcn/checkpoint.pt"
    assert inputs.model_index(config, dataset="a", model="lstm") == (
        "out/a/features/mf/index.parquet"
    )
    assert inputs.prediction_tables(config, dataset="a", model="fcn")["valid_windows"] == (
        "out/a/models/fcn/predictions/valid_windows.parquet"
    )


def test_retrieval_inputs_follow_metric_learning_and_index_space() -> None:
    config = _config(retrieval={"models": ["fcn"]})
    assert inputs.retrieval_inputs(config, dataset="a", model="fcn") == {
        "embeddings": "out/a/models/fcn/embeddings.parquet",
        "projection": "out/a/models/fcn/retrieval/projection.pt",
    }
    assert "projection" not in inputs.index_inputs(config, dataset="a", model="fcn")
    off = _config(retrieval={"models": ["fcn"], "metric_learning": {"enabled": False}})
    assert "projection" not in inputs.retrieval_inputs(off, dataset="a", model="fcn")
    triplet = _config(retrieval={"models": ["fcn"], "index_space": "triplet"})
    index = inputs.index_inputs(triplet, dataset="a", model="fcn")
    assert index["projection"] == "out/a/models/fcn/retrieval/projection.pt"
    assert index["manifest"] == "out/a/manifest.parquet"


def test_fewshot_target_dataset() -> None:
    own = _config(fewshot={"models": ["fcn"]})
    assert inputs.fewshot_params(own, dataset="b")["target"] == "b"
    other = _config(fewshot={"models": ["fcn"], "dataset": "a", "shots": [2]})
    assert inputs.fewshot_params(other, dataset="b") == {**other["fewshot"], "target": "a"}
    assert inputs.fewshot_inputs(other, dataset="b", model="fcn") == {
        "checkpoint": "out/b/models/fcn/checkpoint.pt",
        "index": "out/a/features/lm/index.parquet",
        "vocabulary": "out/a/vocabulary.json",
    }


def test_collection_inputs(tmp_path: Path) -> None:
    config = _config(
        collections={
            "mine": {"root": str(tmp_path / "music"), "model": "lstm", "shards": 2},
            "tracks": {"dataset": "b", "model": "fcn", "trained_on": "b"},
        }
    )
    assert inputs.collection_checkpoint(config, collection="mine") == (
        "out/a/models/lstm/checkpoint.pt"
    )
    assert inputs.collection_checkpoint(config, collection="tracks") == (
        "out/b/models/fcn/checkpoint.pt"
    )
    assert inputs.collection_list_inputs(config, collection="mine") == {}
    assert inputs.collection_list_inputs(config, collection="tracks") == {
        "manifest": "out/b/manifest.parquet"
    }
    assert inputs.collection_shard_tables(config, collection="mine") == {
        "tables": [f"out/collections/mine/shards/000{k}.parquet" for k in (0, 1)],
        "failed": [f"out/collections/mine/shards/000{k}.failed.parquet" for k in (0, 1)],
    }
    assert "out/collections/tracks/tags.parquet" in inputs.all_targets(config)


def test_collection_listing_changes_with_the_folder(tmp_path: Path) -> None:
    entry = {"root": str(tmp_path / "music"), "patterns": ["*.wav"], "model": "m"}
    assert inputs.collection_listing(entry) == {"root": entry["root"], "missing": True}
    (tmp_path / "music" / "a").mkdir(parents=True)
    song = tmp_path / "music" / "a" / "one.wav"
    song.write_bytes(b"12")
    first = inputs.collection_listing(entry)
    assert set(first) == {"root", "patterns", "files"} and first["patterns"] == ["*.wav"]
    assert inputs.collection_listing(copy.deepcopy(entry)) == first  # stable
    stat = song.stat()
    os.utime(song, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = inputs.collection_listing(entry)
    assert touched["files"] != first["files"]
    (tmp_path / "music" / "two.wav").write_bytes(b"")
    assert inputs.collection_listing(entry)["files"] != touched["files"]
    assert inputs.collection_listing({"dataset": "demo", "model": "m"}) == {"dataset": "demo"}


# ---------------------------------------------------------------------------- missing sources


def _layout(root: Path, fmt: str) -> dict:
    """A config entry of format ``fmt`` whose folders and files exist under ``root`` (empty:
    only their existence is checked when the DAG is built)."""
    files = {
        "table": ["tracks.csv"],
        "scores": ["tags.csv"],
        "magnatagatune": ["annotations_final.csv", "mp3/"],
        "mtg_jamendo": [
            "autotagging_top50tags.tsv",
            *(f"splits/split-0/autotagging_top50tags-{s}.tsv" for s in SPLIT_NAMES),
            "audio/",
        ],
        "gtzan": ["genres/rock/"],
    }[fmt]
    for name in files:
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
    entry = {"format": fmt, "root": str(root)}
    if fmt in ("table", "scores"):
        entry["table"] = files[0]
    return entry


SPLIT_NAMES = ("train", "validation", "test")
FORMAT_KEYS = [
    ("table", "root", "datasets/x"),
    ("table", "table", "tracks.csv"),
    ("scores", "root", "datasets/x"),
    ("scores", "table", "tags.csv"),
    ("magnatagatune", "root", "datasets/x"),
    ("magnatagatune", "annotations", "annotations_final.csv"),
    ("magnatagatune", "audio_dir", "mp3"),
    ("mtg_jamendo", "tsv", "autotagging_top50tags.tsv"),
    ("mtg_jamendo", "splits_dir", "splits/split-0"),
    ("mtg_jamendo", "audio_dir", "audio"),
    ("gtzan", "root", "datasets/x"),
    ("gtzan", "genres_dir", "genres"),
]


def _with_dataset(entry: dict) -> dict:
    config = {"datasets": {"x": entry}, "features": {"lm": {"kind": "logmel"}}}
    return validate_config(config, schema=SCHEMA)


@pytest.mark.parametrize("fmt", ["table", "scores", "magnatagatune", "mtg_jamendo", "gtzan"])
def test_complete_layouts_pass_and_every_manifest_input_exists(tmp_path: Path, fmt: str) -> None:
    config = _with_dataset(_layout(tmp_path / "datasets" / "x", fmt))
    check_sources(config)
    # so the manifest rule's inputs from the user are there: no MissingInputException
    files = inputs.manifest_source(config, dataset="x").files
    if fmt == "scores":
        files = list(inputs.generator_inputs(config, dataset="x").values())
    assert files and all(Path(f).exists() for f in files), files


@pytest.mark.parametrize(("fmt", "key", "removed"), FORMAT_KEYS)
def test_a_missing_root_or_table_is_named_by_its_key(
    tmp_path: Path, fmt: str, key: str, removed: str
) -> None:
    root = tmp_path / "datasets" / "x"
    config = _with_dataset(_layout(root, fmt))
    target = tmp_path / removed if removed.startswith("datasets/") else root / removed
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(ConfigError) as err:
        check_sources(config, source="cfg")
    message = str(err.value)
    assert message.startswith(f"cfg: datasets.x.{key}: '") and message.endswith("does not exist")
    if key != "root":
        assert f"(under root '{root}')" in message


def test_generated_tables_are_not_required(tmp_path: Path) -> None:
    check_sources(_with_dataset({"format": "demo"}))
    config = _with_dataset(_layout(tmp_path, "scores"))
    assert not Path(inputs.manifest_source(config, dataset="x").files[0]).exists()
    check_sources(config)  # the rendered tracks.csv is written by render_scores


def test_null_splits_dir_is_not_required(tmp_path: Path) -> None:
    entry = _layout(tmp_path, "mtg_jamendo")
    shutil.rmtree(tmp_path / "splits")
    check_sources(_with_dataset({**entry, "splits_dir": None}))


def test_wrong_kinds_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"datasets\.x\.root: '.*file' is not a folder"):
        check_sources(_with_dataset({"format": "gtzan", "root": str(tmp_path / "file")}))
    entry = _layout(tmp_path / "t", "table")
    (tmp_path / "t" / "tracks.csv").unlink()
    (tmp_path / "t" / "tracks.csv").mkdir()
    with pytest.raises(ConfigError, match="datasets.x.table: .* is a folder, not a file"):
        check_sources(_with_dataset(entry))
    monkeypatch.chdir(tmp_path)  # relative roots are relative to the working directory
    relative = _with_dataset({"format": "table", "root": "nowhere", "table": "t.csv"})
    with pytest.raises(ConfigError) as err:
        check_sources(relative)
    assert str(err.value) == (
        f"config: datasets.x.root: 'nowhere' does not exist (working directory '{tmp_path}')"
    )


def test_a_missing_collection_folder_is_named(tmp_path: Path) -> None:
    music = {"root": str(tmp_path / "music"), "model": "fcn", "trained_on": "a"}
    config = _config(collections={"mine": music})
    config["datasets"]["a"]["root"] = str(tmp_path)
    (tmp_path / "t.csv").write_text("")
    with pytest.raises(ConfigError, match=r"collections\.mine\.root: '.*music' does not exist"):
        check_sources(config)
    (tmp_path / "music").mkdir()
    check_sources(config)
