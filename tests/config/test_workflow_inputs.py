"""What each rule reads and what the default target builds, from a validated config
(:func:`tests.helpers.config.workflow_config`, and the repository's ``config.yaml``); what the
manifest step of each dataset format reads."""

from __future__ import annotations

import copy
import os
from pathlib import Path

from pipeline.config import load_yaml, manifest_source, validate_config
from pipeline.config import workflow_inputs as inputs
from tests.helpers.config import REPO, SCHEMA, workflow_config

CONFIG = validate_config(load_yaml(REPO / "config.yaml"), schema=SCHEMA)


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
    assert "results/leaderboard_summary.rst" in targets  # the report's landing page
    indexes = [t for t in targets if t.endswith("similarity/index.parquet")]
    assert indexes == [
        f"results/demo/models/{m}/similarity/index.parquet" for m in ("fcn", "musicnn", "lstm_mfcc")
    ]
    assert len(targets) == len(set(targets))


def test_targets_follow_the_sections_in_use() -> None:
    config = workflow_config()
    targets = inputs.all_targets(config)
    assert "out/a/features/mf/index.parquet" in targets
    assert "out/b/features/mf/index.parquet" not in targets  # b extracts lm only
    assert "out/leaderboard.csv" in targets
    assert not any("retrieval" in t or "fewshot" in t or "collections" in t for t in targets)
    assert inputs.all_targets(workflow_config(models={})) == [
        "out/a/manifest.parquet",
        "out/a/features/lm/index.parquet",
        "out/a/features/lm/stats.json",
        "out/a/features/mf/index.parquet",
        "out/a/features/mf/stats.json",
        "out/b/manifest.parquet",
        "out/b/features/lm/index.parquet",
        "out/b/features/lm/stats.json",
    ]


def test_landing_page_is_the_summary_once_written(tmp_path: Path) -> None:
    config = {**CONFIG, "results": str(tmp_path / "out")}
    default = "workflow/report/workflow.rst"
    assert inputs.landing_page(config, default=default) == default
    summary = tmp_path / "out" / "leaderboard_summary.rst"
    summary.parent.mkdir()
    summary.write_text("Summary\n")
    assert inputs.landing_page(config, default=default) == str(summary.resolve())


def test_pairs() -> None:
    config = workflow_config(
        retrieval={"models": ["lstm"]}, fewshot={"models": ["fcn"], "shots": [5, 1, 5]}
    )
    assert inputs.evaluated_models(config) == [
        ("a", "fcn"),
        ("b", "fcn"),
        ("a", "svm"),
        ("a", "lstm"),
    ]
    assert inputs.retrieval_pairs(config) == [("a", "lstm")]
    assert inputs.fewshot_pairs(config) == [("a", "fcn"), ("b", "fcn")]
    assert inputs.retrieval_table_inputs(config) == ["out/a/models/lstm/retrieval/metrics.json"]
    assert inputs.fewshot_shots(config) == [1, 5]
    assert inputs.fewshot_table_inputs(config) == [
        "out/a/models/fcn/fewshot/shots-1.csv",
        "out/a/models/fcn/fewshot/shots-5.csv",
        "out/b/models/fcn/fewshot/shots-1.csv",
        "out/b/models/fcn/fewshot/shots-5.csv",
    ]
    board = inputs.leaderboard_inputs(config)
    assert board["metrics"][0] == "out/a/models/fcn/evaluation/metrics.json"
    assert board["summaries"][-1] == "out/a/models/lstm/train_summary.json"
    assert board["scores"][-1] == "out/a/models/lstm/evaluation/scores.parquet"
    params = inputs.leaderboard_params(config)
    assert params["pairs"] == inputs.evaluated_models(config)
    assert params["models"] is config["models"]
    assert params["bootstrap"] == {"resamples": 1000, "seed": 0, "confidence": 0.95}


def test_manifest_and_generator_inputs() -> None:
    config = workflow_config(
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
    config = workflow_config()
    assert inputs.shard_stores(config, dataset="a", features="lm") == [
        "out/a/features/lm/0000.zarr",
        "out/a/features/lm/0001.zarr",
    ]
    assert inputs.shard_failures(config, dataset="b", features="lm") == [
        "out/b/manifest.failed.parquet",  # tracks whose audio the manifest step did not find
        "out/b/features/lm/0000.failed.parquet",
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
    config = workflow_config(retrieval={"models": ["fcn"]})
    assert inputs.retrieval_inputs(config, dataset="a", model="fcn") == {
        "embeddings": "out/a/models/fcn/embeddings.parquet",
        "projection": "out/a/models/fcn/retrieval/projection.pt",
    }
    assert "projection" not in inputs.index_inputs(config, dataset="a", model="fcn")
    off = workflow_config(retrieval={"models": ["fcn"], "metric_learning": {"enabled": False}})
    assert "projection" not in inputs.retrieval_inputs(off, dataset="a", model="fcn")
    triplet = workflow_config(retrieval={"models": ["fcn"], "index_space": "triplet"})
    index = inputs.index_inputs(triplet, dataset="a", model="fcn")
    assert index["projection"] == "out/a/models/fcn/retrieval/projection.pt"
    assert index["manifest"] == "out/a/manifest.parquet"


def test_fewshot_target_dataset() -> None:
    own = workflow_config(fewshot={"models": ["fcn"]})
    assert inputs.fewshot_params(own, dataset="b", shots=5)["target"] == "b"
    other = workflow_config(fewshot={"models": ["fcn"], "dataset": "a", "shots": [2, 4]})
    assert inputs.fewshot_params(other, dataset="b", shots=4) == {
        **other["fewshot"],
        "shots": [4],
        "target": "a",
    }
    assert inputs.fewshot_inputs(other, dataset="b", model="fcn") == {
        "checkpoint": "out/b/models/fcn/checkpoint.pt",
        "index": "out/a/features/lm/index.parquet",
        "vocabulary": "out/a/vocabulary.json",
    }


def test_collection_inputs(tmp_path: Path) -> None:
    config = workflow_config(
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
    two = inputs.collection_listing(entry)["files"]
    # a name that is not UTF-8 (Latin-1 "é") is hashed as its bytes, not a crash of the DAG
    (tmp_path / "music" / os.fsdecode(b"caf\xe9.wav")).write_bytes(b"")
    assert inputs.collection_listing(entry)["files"] not in (two, touched["files"])
    assert inputs.collection_listing({"dataset": "demo", "model": "m"}) == {"dataset": "demo"}


# ---------------------------------------------------------------------------- manifest sources


def _validated(entry: dict, *, resources: str = "res") -> dict:
    config = {
        "resources": resources,
        "datasets": {"ds": entry},
        "features": {"lm": {"kind": "logmel"}},
    }
    return validate_config(config, schema=SCHEMA)


def test_source_demo_and_scores() -> None:
    demo = manifest_source(_validated({"format": "demo", "n_clips": 10}), dataset="ds")
    assert (demo.format, demo.root, demo.files) == ("table", "res/ds", ["res/ds/tracks.csv"])
    assert demo.options["table"] == "tracks.csv" and demo.options["n_clips"] == 10
    assert (demo.options["sep"], demo.options["tag_sep"]) == (",", ";")
    scores = manifest_source(
        _validated({"format": "scores", "root": "/scores", "table": "tags.csv"}), dataset="ds"
    )
    assert scores.format == "table" and scores.root == "res/ds/rendered"
    assert scores.files == ["res/ds/rendered/tracks.csv"]


def test_source_table(tmp_path: Path) -> None:
    entry = {"format": "table", "root": str(tmp_path), "table": "meta/tracks.tsv", "sep": "\t"}
    source = manifest_source(_validated(entry), dataset="ds")
    assert source.format == "table" and source.root == str(tmp_path)
    assert source.files == [str(tmp_path / "meta" / "tracks.tsv")]
    assert source.options["sep"] == "\t"
    entry["table"] = "/elsewhere/tracks.csv"
    assert manifest_source(_validated(entry), dataset="ds").files == ["/elsewhere/tracks.csv"]


def test_source_magnatagatune(tmp_path: Path) -> None:
    entry = {"format": "magnatagatune", "root": str(tmp_path)}
    source = manifest_source(_validated(entry), dataset="ds")
    assert source.format == "magnatagatune"
    assert source.files == [str(tmp_path / "annotations_final.csv")]
    entry["annotations"] = "meta/ann.csv"
    assert manifest_source(_validated(entry), dataset="ds").files == [
        str(tmp_path / "meta" / "ann.csv")
    ]


def test_source_mtg_jamendo(tmp_path: Path) -> None:
    splits = tmp_path / "splits" / "split-0"
    splits.mkdir(parents=True)
    for name in ("test", "train", "validation"):
        (splits / f"autotagging_top50tags-{name}.tsv").write_text("x")
    (splits / "autotagging_genre-train.tsv").write_text("x")  # another tsv's split: not read
    entry = {"format": "mtg_jamendo", "root": str(tmp_path)}
    source = manifest_source(_validated(entry), dataset="ds")
    assert source.format == "mtg_jamendo"
    assert source.files == [
        str(tmp_path / "autotagging_top50tags.tsv"),
        *(str(splits / f"autotagging_top50tags-{n}.tsv") for n in ("test", "train", "validation")),
    ]
    entry["splits_dir"] = None
    assert manifest_source(_validated(entry), dataset="ds").files == [
        str(tmp_path / "autotagging_top50tags.tsv")
    ]


def test_source_gtzan(tmp_path: Path) -> None:
    entry = {"format": "gtzan", "root": str(tmp_path)}
    assert manifest_source(_validated(entry), dataset="ds").files == [str(tmp_path / "genres")]
    for genre in ("rock", "blues", "jazz"):
        (tmp_path / "genres" / genre).mkdir(parents=True)
    (tmp_path / "genres" / "README.txt").write_text("x")
    source = manifest_source(_validated(entry), dataset="ds")
    assert source.format == "gtzan"
    assert source.files == [str(tmp_path / "genres" / g) for g in ("blues", "jazz", "rock")]


def test_mfcc_derives_from_a_logmel_set_with_the_same_log_mel_settings() -> None:
    config = workflow_config()
    assert inputs.derived_source(config, dataset="a", features="mf") == "lm"
    assert inputs.derived_source(config, dataset="a", features="lm") is None
    assert inputs.derived_source_inputs(config, dataset="a", features="mf", shard="0001") == [
        "out/a/features/lm/0001.zarr",
        "out/a/features/lm/0001.failed.parquet",
    ]
    # other log-mel settings, or a dataset that does not extract the log-mel: decode again
    other = workflow_config(
        features={"lm": {"kind": "logmel"}, "mf": {"kind": "mfcc", "n_mels": 40}}
    )
    assert inputs.derived_source(other, dataset="a", features="mf") is None
    alone = copy.deepcopy(config)
    alone["datasets"]["a"]["features"] = ["mf"]
    assert inputs.derived_source_inputs(alone, dataset="a", features="mf", shard="0000") == []
