"""The registry of dataset formats: what each declares, and that the schema's defaults are the
adapters' defaults (the schema is the one source; library defaults must agree with it)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from pipeline.config import load_yaml, validate_config
from pipeline.datasets import (
    ADAPTERS,
    FORMATS,
    dataset_format,
    fma,
    gtzan,
    magnatagatune,
    mtg_jamendo,
    split_description,
)
from pipeline.datasets import table as table_format
from pipeline.datasets.formats import GENERATED_TABLE, DatasetFormat
from pipeline.datasets.manifest import assign_splits, build_manifest, tag_vocabulary
from pipeline.datasets.rendering import demo, scores
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = load_yaml(REPO / "workflow" / "schemas" / "config.schema.yaml")
DATASET_SCHEMA = SCHEMA["$defs"]["dataset"]


def _filled(entry: dict) -> dict:
    """A dataset entry with the schema's defaults filled in."""
    config = {"datasets": {"ds": entry}, "features": {"lm": {"kind": "logmel"}}}
    return validate_config(config, schema=SCHEMA)["datasets"]["ds"]


def _minimal(name: str) -> dict:
    entry = {"format": name}
    entry.update({key: "/data/x" if key == "root" else "t.csv" for key in FORMATS[name].requires})
    return entry


def _defaults(function) -> dict:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


# ---------------------------------------------------------------------------- registry


def test_registry_matches_the_schema() -> None:
    assert sorted(FORMATS) == sorted(DATASET_SCHEMA["properties"]["format"]["enum"])
    assert all(name == spec.name for name, spec in FORMATS.items())
    assert ADAPTERS == {
        name: spec.load_records for name, spec in FORMATS.items() if spec.load_records
    }
    assert sorted(ADAPTERS) == ["fma", "gtzan", "magnatagatune", "mtg_jamendo", "table"]
    for spec in FORMATS.values():  # every key a format requires or generates from is known
        keys = set(spec.requires) | set(spec.generator_keys)
        assert keys <= set(DATASET_SCHEMA["properties"]), spec.name


def test_unknown_format_lists_the_known_ones() -> None:
    assert dataset_format("gtzan") is gtzan.FORMAT
    with pytest.raises(ConfigError, match="unknown dataset format 'fma_small'") as error:
        dataset_format("fma_small")
    assert all(repr(name) in str(error.value) for name in FORMATS)


def test_a_format_is_either_read_or_generated() -> None:
    with pytest.raises(TypeError, match="'odd'"):
        DatasetFormat(name="odd", requires=())
    with pytest.raises(TypeError, match="'odd'"):
        DatasetFormat(
            name="odd",
            requires=(),
            load_records=table_format.load_records,
            metadata_files=table_format.metadata_files,
            generated_dir="x",
        )


# ---------------------------------------------------------------------------- defaults agree


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (
            magnatagatune,
            {"annotations": "DEFAULT_ANNOTATIONS", "audio_dir": "DEFAULT_AUDIO_DIR"},
        ),
        (
            mtg_jamendo,
            {
                "tsv": "DEFAULT_TSV",
                "audio_dir": "DEFAULT_AUDIO_DIR",
                "splits_dir": "DEFAULT_SPLITS_DIR",
            },
        ),
        (gtzan, {"genres_dir": "DEFAULT_GENRES_DIR", "extensions": "DEFAULT_EXTENSIONS"}),
        (
            fma,
            {
                "subset": "DEFAULT_SUBSET",
                "metadata_dir": "DEFAULT_METADATA_DIR",
                "genre_tags": "DEFAULT_GENRE_TAGS",
            },
        ),
        (
            table_format,
            {
                "sep": "DEFAULT_SEP",
                "tag_sep": "DEFAULT_TAG_SEP",
                "path_column": "DEFAULT_PATH_COLUMN",
                "tags_column": "DEFAULT_TAGS_COLUMN",
            },
        ),
    ],
)
def test_schema_defaults_are_the_adapter_defaults(module, expected: dict[str, str]) -> None:
    entry = _filled(_minimal(module.FORMAT.name))
    for key, constant in expected.items():
        value = getattr(module, constant)
        assert entry[key] == (list(value) if isinstance(value, tuple) else value), key


def test_schema_defaults_are_the_generators_defaults() -> None:
    entry = _filled(_minimal("demo"))
    build = _defaults(demo.build_demo_dataset)
    assert {key: entry[key] for key in demo.FORMAT.generator_keys} == {
        key: build[key] for key in ("n_clips", "clip_s", "seed")
    }
    assert entry["clip_s"] == 20.0

    entry = _filled(_minimal("scores"))
    render = _defaults(scores.render_score_folder)
    for key in ("sep", "tag_sep", "tempo_qpm", "program"):
        assert entry[key] == render[key], key
    assert entry["clip_s"] == render["duration_s"] == 30.0


def test_schema_defaults_are_the_manifest_defaults() -> None:
    entry = _filled(_minimal("table"))
    vocabulary, split = entry["vocabulary"], entry["split"]
    for function in (build_manifest, tag_vocabulary):
        found = _defaults(function)
        assert (found["top_n"], found["min_count"]) == (
            vocabulary["top_n"],
            vocabulary["min_count"],
        )
    assert _defaults(build_manifest)["drop_untagged"] == vocabulary["drop_untagged"]
    for function in (build_manifest, assign_splits):
        found = _defaults(function)
        assert {k: found[k] for k in split} == split


def test_format_specific_defaults_stay_with_their_format() -> None:
    assert "clip_s" not in _filled(_minimal("table"))
    assert "sep" not in _filled(_minimal("demo"))
    assert _filled(_minimal("magnatagatune"))["audio_dir"] == "mp3"
    assert _filled(_minimal("mtg_jamendo"))["audio_dir"] == "audio"
    given = _filled({**_minimal("scores"), "clip_s": 12.5, "sep": "\t"})
    assert (given["clip_s"], given["sep"], given["tag_sep"]) == (12.5, "\t", ";")


# ---------------------------------------------------------------------------- inputs


def test_read_formats_list_their_metadata_files(tmp_path: Path) -> None:
    assert magnatagatune.metadata_files(root=tmp_path, options={}) == [
        tmp_path / "annotations_final.csv"
    ]
    assert table_format.metadata_files(root=tmp_path, options={"table": "/t/x.tsv"}) == [
        Path("/t/x.tsv")
    ]
    with pytest.raises(ConfigError, match="'table' is required"):
        table_format.metadata_files(root=tmp_path, options={})
    splits = tmp_path / "splits" / "split-0"
    splits.mkdir(parents=True)
    (splits / "autotagging_top50tags-train.tsv").write_text("x")
    assert mtg_jamendo.metadata_files(root=tmp_path, options={}) == [
        tmp_path / "autotagging_top50tags.tsv",
        splits / "autotagging_top50tags-train.tsv",
    ]
    (tmp_path / "genres" / "rock").mkdir(parents=True)
    assert gtzan.metadata_files(root=tmp_path, options={}) == [tmp_path / "genres" / "rock"]


def test_generated_formats_are_read_as_tables() -> None:
    entry = _filled(_minimal("scores"))
    source = scores.FORMAT.manifest_source(entry=entry, dataset_dir="res/ds")
    assert (source.format, source.root) == ("table", "res/ds/rendered")
    assert source.files == ["res/ds/rendered/tracks.csv"]
    assert {k: source.options[k] for k in GENERATED_TABLE} == GENERATED_TABLE
    assert scores.render_inputs(entry=entry) == {"table": "/data/x/t.csv"}
    assert scores.render_inputs(entry={**entry, "table": "/tags.csv"}) == {"table": "/tags.csv"}
    assert demo.FORMAT.manifest_source(entry=_filled(_minimal("demo")), dataset_dir="r/d").root == (
        "r/d"
    )
    assert demo.FORMAT.generator_inputs is None


def test_required_paths_are_root_then_the_declared_keys() -> None:
    mtat = _filled({"format": "magnatagatune", "root": "/d/mtat", "audio_dir": "/disk/mp3"})
    assert magnatagatune.FORMAT.required_paths(entry=mtat) == [
        ("root", Path("/d/mtat"), "folder"),
        ("annotations", Path("/d/mtat/annotations_final.csv"), "file"),
        ("audio_dir", Path("/disk/mp3"), "folder"),
    ]
    jamendo = _filled({"format": "mtg_jamendo", "root": "/j", "splits_dir": None})
    assert [key for key, _, _ in mtg_jamendo.FORMAT.required_paths(entry=jamendo)] == [
        "root",
        "tsv",
        "audio_dir",
    ]
    assert demo.FORMAT.required_paths(entry=_filled(_minimal("demo"))) == []
    scores_entry = _filled(_minimal("scores"))
    assert [k for k, _, _ in scores.FORMAT.required_paths(entry=scores_entry)] == ["root", "table"]
    for spec in FORMATS.values():  # every path key is a key of the schema
        assert {key for key, _ in spec.paths} <= set(SCHEMA["$defs"]["dataset"]["properties"])


# ---------------------------------------------------------------------------- split names


def test_split_description_names_the_split_of_each_entry() -> None:
    mtat = _filled(_minimal("magnatagatune"))
    assert split_description(mtat).startswith("folders")
    assert split_description({**mtat, "split_scheme": "clean"}).startswith("clean (Won")
    jamendo = _filled(_minimal("mtg_jamendo"))
    assert split_description(jamendo) == "split-0"
    assert split_description({**jamendo, "splits_dir": "data/splits/split-3"}) == "split-3"
    assert split_description({**jamendo, "splits_dir": None}) == "drawn (seed 0)"
    assert split_description(_filled(_minimal("fma"))).startswith("fma_small official")
    gtzan_entry = _filled(_minimal("gtzan"))
    assert split_description(gtzan_entry) == "drawn (seed 0)"
    lists = {"train": "split/train_filtered.txt", "valid": "v.txt", "test": "t.txt"}
    assert (
        split_description({**gtzan_entry, "split_lists": lists})
        == "lists: train_filtered.txt, v.txt, t.txt"
    )


def test_split_list_files_are_inputs_of_the_manifest_step() -> None:
    lists = {"train": "split/train.txt", "valid": "split/valid.txt", "test": "/abs/test.txt"}
    entry = {**_filled(_minimal("gtzan")), "split_lists": lists}
    files = gtzan.FORMAT.manifest_source(entry=entry, dataset_dir="resources/g").files
    assert files[-3:] == ["/data/x/split/train.txt", "/data/x/split/valid.txt", "/abs/test.txt"]
