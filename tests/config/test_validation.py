"""Config validation against the schema (with defaults) and clear errors; impossible
settings, duplicate keys and YAML syntax errors refused with one line; the roots and tables
a config names exist when the DAG is built, or the config key is named."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.config import (
    check_config_files,
    check_sources,
    dataset_feature_sets,
    feature_settings,
    load_yaml,
    validate_config,
)
from pipeline.config import workflow_inputs as inputs
from pipeline.errors import ConfigError
from tests.helpers.bad_inputs import (
    BAD_SETTINGS,
    bad_setting_config,
    duplicate_dataset_yaml,
    duplicate_nested_key_yaml,
    good_config,
    syntax_error_yaml,
    with_setting,
)
from tests.helpers.config import REPO, SCHEMA, workflow_config

CONFIG = load_yaml(REPO / "config.yaml")


def _minimal(**datasets) -> dict:
    return {
        "datasets": datasets or {"mine": {"format": "table", "root": "/data", "table": "t.csv"}},
        "features": {"lm": {"kind": "logmel"}},
    }


def _error(config: dict) -> str:
    with pytest.raises(ConfigError) as err:
        validate_config(config, schema=SCHEMA, source="cfg.yaml")
    message = str(err.value)
    assert message.startswith("cfg.yaml: ")
    return message


# ---------------------------------------------------------------------------- the repo's config


def test_repo_config_validates_and_gets_defaults() -> None:
    original = copy.deepcopy(CONFIG)
    config = validate_config(CONFIG, schema=SCHEMA)
    assert CONFIG == original  # the input is not modified
    mfcc = config["features"]["mfcc"]
    assert mfcc["fmin"] == 0.0 and mfcc["mel_scale"] == "slaney" and mfcc["mel_norm"] == "slaney"
    assert mfcc["top_db"] is None and mfcc["amin"] == 1e-10
    assert mfcc["window"]["max_duration_s"] == 900
    assert config["storage"]["compression"] == "none"
    assert config["storage"]["windows_per_shard"] == 0
    assert config["extraction"]["threads"] == 2 and config["extraction"]["tracks_per_task"] == 1
    assert config["datasets"]["demo"]["split"]["valid_fraction"] == 0.15
    assert dataset_feature_sets(config, dataset="demo") == ["logmel", "mfcc"]


def test_repo_feature_sets_are_the_reference_settings() -> None:
    config = validate_config(CONFIG, schema=SCHEMA)
    logmel = feature_settings(config, name="logmel")
    assert (logmel.sample_rate, logmel.n_fft, logmel.hop_length, logmel.n_mels) == (
        16000,
        512,
        256,
        96,
    )
    assert logmel.window.length == 465_600
    assert logmel.n_frames == logmel.natural_n_frames == 1819
    mfcc = feature_settings(config, name="mfcc")
    assert (mfcc.kind, mfcc.n_mfcc, mfcc.deltas) == ("mfcc", 20, 2)
    with pytest.raises(ConfigError, match="features.chroma: not defined"):
        feature_settings(config, name="chroma")


def test_defaults_of_a_minimal_config() -> None:
    config = validate_config(_minimal(), schema=SCHEMA)
    assert config["results"] == "results" and config["resources"] == "resources"
    dataset = config["datasets"]["mine"]
    assert dataset["shards"] == 8
    assert dataset["vocabulary"] == {"top_n": 50, "min_count": 1, "drop_untagged": False}
    assert dataset["split"] == {"seed": 0, "valid_fraction": 0.1, "test_fraction": 0.2}
    settings = feature_settings(config, name="lm")
    assert settings.n_mels == 96 and settings.window.length_s == 29.1


# ---------------------------------------------------------------------------- errors


def _set(config: dict, dotted: str, value) -> dict:
    node = config
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return config


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("colour", "red", ["colour", "at the top level", "datasets", "features", "storage"]),
        ("features.logmel.n_mel", 96, ["'n_mel'", "features.logmel", "n_mels"]),
        ("features.logmel.window.lenght_s", 2, ["lenght_s", "features.logmel.window", "length_s"]),
        ("datasets.demo.vocabulary.top", 5, ["'top'", "datasets.demo.vocabulary", "top_n"]),
        ("features.logmel.kind", "chroma", ["features.logmel.kind", "'chroma'", "logmel", "mfcc"]),
        ("features.logmel.mel_scale", "bark", ["features.logmel.mel_scale", "slaney", "htk"]),
        ("features.logmel.window.tail", "wrap", ["features.logmel.window.tail", "pad", "drop"]),
        ("storage.compression", "gzip", ["storage.compression", "'gzip'", "lz4", "zstd"]),
        ("datasets.demo.format", "csv", ["datasets.demo.format", "'csv'", "table", "gtzan"]),
        ("features.mfcc.deltas", 3, ["features.mfcc.deltas", "3"]),
        ("features.logmel.n_mels", 1000, ["features.logmel.n_mels", "1000", "512"]),
        ("features.logmel.sample_rate", 1000, ["features.logmel.sample_rate", "4000"]),
        ("datasets.demo.shards", 0, ["datasets.demo.shards", "0", "1"]),
        ("datasets.demo.split.test_fraction", 1.5, ["datasets.demo.split.test_fraction", "1"]),
        ("features.logmel.window.length_s", 0, ["features.logmel.window.length_s", "0"]),
        ("extraction.threads", 0, ["extraction.threads", "0"]),
        ("features.logmel.n_fft", "512", ["features.logmel.n_fft", "'512'", "integer"]),
    ],
)
def test_bad_keys_and_values_are_named(key: str, value, expected: list[str]) -> None:
    message = _error(_set(copy.deepcopy(CONFIG), key, value))
    for text in expected:
        assert text in message, (text, message)


def test_dataset_naming_an_undefined_feature_set() -> None:
    config = _set(copy.deepcopy(CONFIG), "datasets.demo.features", ["logmel", "chroma"])
    message = _error(config)
    assert "datasets.demo.features" in message and "'chroma'" in message
    assert "logmel" in message and "mfcc" in message


def test_n_mfcc_larger_than_n_mels() -> None:
    config = _set(copy.deepcopy(CONFIG), "features.mfcc.n_mfcc", 97)
    message = _error(config)
    assert "features.mfcc.n_mfcc" in message and "97" in message and "96" in message


def test_hop_longer_than_window_is_a_config_error() -> None:
    config = _set(copy.deepcopy(CONFIG), "features.logmel.window.hop_s", 40.0)
    assert "hop_s" in _error(config)


def test_window_errors_name_the_feature_set() -> None:
    config = _set(copy.deepcopy(CONFIG), "features.logmel.window.hop_s", 40.0)
    assert "features.logmel.window.hop_s" in _error(config)


@pytest.mark.parametrize("fmt", ["table", "magnatagatune", "mtg_jamendo", "gtzan", "scores"])
def test_missing_root(fmt: str) -> None:
    message = _error(_minimal(mine={"format": fmt, "table": "t.csv"}))
    assert "datasets.mine.root" in message and repr(fmt) in message


def test_demo_needs_no_root() -> None:
    validate_config(_minimal(d={"format": "demo"}), schema=SCHEMA)


def test_missing_format_and_required_sections() -> None:
    assert "format" in _error(_minimal(mine={"root": "/data"}))
    assert "features" in _error({"datasets": {"d": {"format": "demo"}}})
    assert "datasets" in _error({"datasets": {}, "features": {"lm": {"kind": "logmel"}}})


def test_bad_names_are_rejected() -> None:
    config = _minimal()
    config["features"] = {"log mel": {"kind": "logmel"}}
    assert "log mel" in _error(config)


def test_table_dataset_without_table_file_is_a_config_error() -> None:
    message = _error(_minimal(mine={"format": "table", "root": "/data"}))
    assert "datasets.mine.table" in message


def test_load_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(listing)


def test_from_model_must_name_another_model() -> None:
    config = copy.deepcopy(CONFIG)
    config["models"] = {
        "emb": {
            "architecture": "embedding_svm",
            "features": "logmel",
            "hparams": {"from_model": "x"},
        }
    }
    message = _error(config)
    assert "models.emb.hparams.from_model" in message and "'x'" in message


# ------------------------------------------------- collections, retrieval and few-shot sections


def _with_model(**sections) -> dict:
    config = _minimal()
    config["models"] = {"fcn": {"architecture": "fcn", "features": "lm"}}
    config.update(sections)
    return config


def test_use_sections_default_to_nothing() -> None:
    filled = validate_config(_with_model(), schema=SCHEMA)
    assert filled["collections"] == {}
    assert filled["retrieval"]["models"] == [] and filled["retrieval"]["k"] == 20
    assert filled["retrieval"]["metric_learning"]["enabled"] is True
    assert filled["fewshot"]["shots"] == [1, 5, 10, 20]


def test_collection_checks() -> None:
    from pipeline.config import collection_model

    both = {"c": {"root": "/m", "dataset": "mine", "model": "fcn"}}
    assert "give exactly one of root" in _error(_with_model(collections=both))
    neither = {"c": {"model": "fcn"}}
    assert "give exactly one of root" in _error(_with_model(collections=neither))
    unknown = {"c": {"root": "/m", "model": "nope"}}
    assert "collections.c.model: 'nope' is not a model" in _error(_with_model(collections=unknown))
    no_dataset = {"c": {"dataset": "other", "model": "fcn"}}
    assert "collections.c.dataset: 'other'" in _error(_with_model(collections=no_dataset))
    wrong = {"c": {"root": "/m", "model": "fcn", "trained_on": "other"}}
    assert "is not trained on 'other'" in _error(_with_model(collections=wrong))
    good = validate_config(
        _with_model(collections={"c": {"root": "/m", "model": "fcn"}}), schema=SCHEMA
    )
    assert collection_model(good, collection="c") == ("mine", "fcn")
    entry = good["collections"]["c"]
    assert entry["shards"] == 1 and "*.mp3" in entry["patterns"]


def test_retrieval_and_fewshot_checks() -> None:
    message = _error(_with_model(retrieval={"models": ["fcn", "x"]}))
    assert "retrieval.models: 'x' is not a model" in message
    triplet = {"models": ["fcn"], "index_space": "triplet", "metric_learning": {"enabled": False}}
    assert "needs retrieval.metric_learning.enabled" in _error(_with_model(retrieval=triplet))
    assert "retrieval.relevance_threshold" in _error(
        _with_model(retrieval={"relevance_threshold": 0})
    )
    assert "fewshot.models: 'y'" in _error(_with_model(fewshot={"models": ["y"]}))
    other = {"models": ["fcn"], "dataset": "other"}
    assert "fewshot.dataset: 'other'" in _error(_with_model(fewshot=other))
    assert "fewshot.shots" in _error(_with_model(fewshot={"shots": [0]}))
    assert "fewshot.finetune.steps" in _error(_with_model(fewshot={"finetune": {"steps": 0}}))


# ---------------------------------------------------------------------------- impossible settings


@pytest.mark.parametrize("name", sorted(BAD_SETTINGS))
def test_impossible_settings_are_refused_naming_the_key(name: str) -> None:
    bad = BAD_SETTINGS[name]
    message = _error(bad_setting_config(name))
    assert f"cfg.yaml: {bad.key}: " in message, message
    for text in bad.says:
        assert text in message, (text, message)
    assert "\n" not in message


def test_the_good_settings_pass() -> None:
    config = validate_config(good_config(), schema=SCHEMA)
    assert "duplicate_audio" not in config["datasets"]["mine"]  # no new default: same params
    for fmax in (None, 8000.0):
        validate_config(with_setting(good_config(), "features.logmel.fmax", fmax), schema=SCHEMA)
    short = with_setting(good_config(), "features.logmel.window", {"length_s": 2.0, "hop_s": 2.0})
    validate_config(with_setting(short, "features.logmel.window.tail", "drop"), schema=SCHEMA)
    validate_config(with_setting(short, "features.logmel.window.min_tail_s", 2.0), schema=SCHEMA)
    validate_config(with_setting(good_config(), "datasets.mine.sep", "\\t"), schema=SCHEMA)


def test_waveform_feature_sets_skip_the_spectral_checks() -> None:
    config = with_setting(good_config(), "features.wave", {"kind": "waveform", "n_fft": 16})
    validate_config(config, schema=SCHEMA)


# ---------------------------------------------------------------------------- YAML files


def test_a_dataset_written_twice_is_refused_with_file_line_and_key(tmp_path: Path) -> None:
    path = duplicate_dataset_yaml(tmp_path)
    assert list(yaml.safe_load(path.read_text())["datasets"]) == ["mine", "other"]  # silent
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    message = str(err.value)
    assert str(path) in message and "line 4" in message and "'mine'" in message
    assert "first on line 2" in message and "\n" not in message


def test_a_nested_duplicate_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 8, column 5: duplicate key 'fmax' \(first on"):
        load_yaml(duplicate_nested_key_yaml(tmp_path))


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  x: 3\n")
    assert load_yaml(path)["m"] == {"x": 3, "y": 2}


def test_a_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = syntax_error_yaml(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_yaml(path)
    message = str(err.value)
    assert message.startswith(f"'{path}', not valid YAML: line 3, column ")
    assert "\n" not in message


def test_json_config_files(tmp_path: Path) -> None:
    good = tmp_path / "c.json"
    good.write_text('{"datasets": {"d": {"format": "demo"}}, "features": {}}')
    assert load_yaml(good)["datasets"] == {"d": {"format": "demo"}}
    good.write_text('{"a": 1, "a": 2}')
    with pytest.raises(ConfigError, match="c.json': duplicate key 'a'"):
        load_yaml(good)
    good.write_text('{"a": 1,,}')
    with pytest.raises(ConfigError, match="c.json', line 1, column 9: not valid JSON"):
        load_yaml(good)


def test_check_config_files(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(good_config()))
    check_config_files([good, str(good)])
    check_config_files([tmp_path / "absent.yaml"], missing_ok=True)
    with pytest.raises(ConfigError, match="file not found"):
        check_config_files([tmp_path / "absent.yaml"])
    with pytest.raises(ConfigError, match="duplicate key 'mine'"):
        check_config_files([good, duplicate_dataset_yaml(tmp_path)])


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
    config = workflow_config(collections={"mine": music})
    config["datasets"]["a"]["root"] = str(tmp_path)
    (tmp_path / "t.csv").write_text("")
    with pytest.raises(ConfigError, match=r"collections\.mine\.root: '.*music' does not exist"):
        check_sources(config)
    (tmp_path / "music").mkdir()
    check_sources(config)


def test_a_missing_split_list_is_named(tmp_path: Path) -> None:
    config = workflow_config()
    config["datasets"]["a"]["root"] = str(tmp_path)
    (tmp_path / "t.csv").write_text("")
    names = {"train": "train.txt", "valid": "valid.txt", "test": "lists/test.txt"}
    config["datasets"]["a"]["split_lists"] = names
    for name in ("train.txt", "valid.txt"):
        (tmp_path / name).write_text("x.wav\n")
    with pytest.raises(
        ConfigError,
        match=r"datasets\.a\.split_lists\.test: 'lists/test.txt' \(under root '.*'\) does not",
    ):
        check_sources(config)
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "test.txt").write_text("y.wav\n")
    check_sources(config)


# ---------------------------------------------------------------------------- seeds


def test_seeds_make_one_run_per_seed() -> None:
    config = _with_model(retrieval={"models": ["fcn"]})
    config["models"]["fcn"]["seeds"] = [3, 1, 2]
    config["models"]["fcn"]["train"] = {"epochs": 2}
    filled = validate_config(config, schema=SCHEMA)
    assert list(filled["models"]) == ["fcn", "fcn_seed1", "fcn_seed2"]
    assert filled["models"]["fcn"]["train"] == {"epochs": 2, "seed": 3}
    run = filled["models"]["fcn_seed2"]
    assert run["train"] == {"epochs": 2, "seed": 2} and run["seed_of"] == "fcn"
    assert "seeds" not in run
    assert filled["retrieval"]["models"] == ["fcn"]  # the other uses keep the model's name
    assert validate_config(filled, schema=SCHEMA) == filled  # validating again: the same
    # a run's params leave out seeds: adding a seed trains that seed only
    params = inputs.model_params(filled, model="fcn")
    assert "seeds" not in params and params["train"]["seed"] == 3
    assert "seed_of" not in inputs.model_params(filled, model="fcn_seed1")
    assert [m for _, m in inputs.evaluated_models(filled)] == ["fcn", "fcn_seed1", "fcn_seed2"]


def test_no_seeds_changes_nothing() -> None:
    filled = validate_config(_with_model(), schema=SCHEMA)
    assert list(filled["models"]) == ["fcn"] and filled["models"]["fcn"]["train"] == {}
    assert inputs.model_params(filled, model="fcn") == filled["models"]["fcn"]


@pytest.mark.parametrize(
    ("seeds", "train", "expected"),
    [
        ([], {}, "seeds"),
        ([1, 1], {}, "seeds"),
        ([-1], {}, "seeds"),
        ([0, 1], {"seed": 5}, "models.fcn: give either seeds [0, 1] or train.seed 5"),
    ],
)
def test_bad_seeds_are_named(seeds: list, train: dict, expected: str) -> None:
    config = _with_model()
    config["models"]["fcn"] |= {"seeds": seeds, "train": train}
    assert expected in _error(config)


def test_a_seed_run_may_not_shadow_a_model() -> None:
    config = _with_model()
    config["models"]["fcn"]["seeds"] = [0, 1]
    config["models"]["fcn_seed1"] = {"architecture": "fcn", "features": "lm"}
    assert "'fcn_seed1', which is already a model" in _error(config)


def test_bootstrap_defaults_and_bounds() -> None:
    filled = validate_config(_with_model(), schema=SCHEMA)
    assert filled["evaluation"]["bootstrap"] == {"resamples": 1000, "seed": 0, "confidence": 0.95}
    config = _with_model(evaluation={"bootstrap": {"confidence": 1.0}})
    assert "evaluation.bootstrap.confidence" in _error(config)


# ---------------------------------------------------------------------------- encoders


def _with_encoder() -> dict:
    config = _minimal()
    config["features"]["mert"] = {
        "kind": "encoder",
        "sample_rate": 24000,
        "encoder": {"model": "m-a-p/MERT-v1-95M", "revision": "abc"},
    }
    return config


def test_encoder_feature_set_gets_its_defaults() -> None:
    config = validate_config(_with_encoder(), schema=SCHEMA)
    settings = feature_settings(config, name="mert")
    encoder = settings.encoder
    assert (encoder.layers, encoder.pooling, encoder.chunk_s) == (None, "mean", 5.0)
    assert encoder.revision == "abc" and settings.sample_rate == 24000


def test_encoder_models_need_an_encoder_feature_set_and_layer_tables_a_probe() -> None:
    config = _with_encoder()
    config["models"] = {"p": {"architecture": "probe_mlp", "features": "lm"}}
    assert "models.p.features: probe_mlp reads a kind: encoder" in _error(config)
    config["models"] = {
        "z": {"architecture": "zero_shot_clap", "features": "mert", "layer_table": True}
    }
    assert "models.z.layer_table: applies to probe_linear and probe_mlp" in _error(config)
    config["models"] = {
        "p": {"architecture": "probe_linear", "features": "mert", "layer_table": True}
    }
    validated = validate_config(config, schema=SCHEMA)
    assert "results/mine/models/p/layers/layers.csv" in inputs.all_targets(validated)


def test_encoder_settings_errors_are_named() -> None:
    config = _with_encoder()
    config["features"]["mert"]["encoder"]["pooling"] = "max"
    assert "features.mert.encoder.pooling" in _error(config)
    config = _with_encoder()
    config["features"]["mert"]["encoder"]["layers"] = "some"
    assert "features.mert.encoder.layers" in _error(config)
