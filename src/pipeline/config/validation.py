"""Config validation against the JSON schema (with defaults), and typed views of the result.

The schema lives in ``workflow/schemas/config.schema.yaml`` and is the one source of defaults:
:func:`validate_config` fills them in and turns the first violation into a
:class:`ConfigError` that names the key, the bad value and what is allowed; the checks across
sections (a model's feature set exists, the keys a dataset format requires) and across keys
(a feature set's mel range and FFT size, split fractions, table separators) follow.

When the DAG is built, ``workflow/rules/common.smk`` also calls :func:`check_config_files`
(each config file read again with :func:`load_yaml`, which refuses a key written twice and
names the file, line and column of a syntax error: Snakemake's own loader keeps the last of
duplicate keys and names neither) and :func:`check_sources` (the roots and tables of the
datasets exist, named by their config key).
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline.datasets import dataset_format, separators
from pipeline.errors import ConfigError, printable
from pipeline.features.settings import FeatureSettings

__all__ = [
    "load_yaml",
    "check_config_files",
    "check_sources",
    "validate_config",
    "feature_settings",
    "dataset_feature_sets",
    "model_datasets",
    "collection_model",
    "expand_seeds",
    "seed_run_name",
]


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key written twice in one mapping (``yaml.safe_load``
    keeps the last value silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *anchor": explicit keys may override merged ones
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:
                continue  # an unhashable key: the parent method says so
            if seen is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {printable(repr(key))} (first on line {seen}); a key may "
                    "appear once per mapping, the second would silently replace the first",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: ``line L, column C: problem``."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    text = f"{problem} ({context})" if context and "duplicate key" not in problem else problem
    return where + " ".join(printable(text).split())


def _refuse_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"duplicate key {printable(repr(key))}")
        out[key] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) config file into a dict, strictly.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict

    Raises
    ------
    ConfigError
        One line naming the file: it does not exist or cannot be read; a syntax error (with
        its line and column); a key written twice in one mapping (with the line of each: a
        dataset name given twice under ``datasets:`` would otherwise replace the first); or
        the top level is not a mapping.
    """
    path = Path(path)
    name = printable(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"'{name}': file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"'{name}': cannot be read as UTF-8 text: {printable(exc)}") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_refuse_duplicate_json_keys)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"'{name}', line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"
            ) from exc
        except ConfigError as exc:
            raise ConfigError(f"'{name}': {exc}") from exc
    else:
        try:
            data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
        except yaml.constructor.ConstructorError as exc:
            raise ConfigError(f"'{name}', {_yaml_problem(exc)}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"'{name}', not valid YAML: {_yaml_problem(exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"'{name}': expected a mapping at the top level")
    return data


def check_config_files(paths: Iterable[str | Path], *, missing_ok: bool = False) -> None:
    """Read each config file with :func:`load_yaml`, to refuse what Snakemake's loader lets
    through (duplicate keys) or reports without file and line (syntax errors).

    Parameters
    ----------
    paths : iterable of str or Path
        The config files (``workflow.configfiles`` in the Snakefile).
    missing_ok : bool
        Skip files that do not exist (Snakemake decides whether that is an error).

    Raises
    ------
    ConfigError
        The first file :func:`load_yaml` refuses.
    """
    for path in dict.fromkeys(str(p) for p in paths):
        if missing_ok and not os.path.exists(path):
            continue
        load_yaml(path)


def _with_defaults(validator_class: Any) -> Any:
    """A validator class that also fills in ``default`` values of properties."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _message(error: jsonschema.ValidationError) -> str:
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(allowed))
        where = f"under '{key}'" if error.absolute_path else "at the top level"
        if allowed:
            return f"unknown key(s) {unexpected} {where}; allowed keys: {allowed}"
    if error.validator == "enum":
        return f"{key}: {error.instance!r} is not one of {error.validator_value}"
    if error.validator == "required":
        return f"{key}: {error.message}"
    return f"{key}: {error.message}"


def validate_config(
    config: Mapping[str, Any], *, schema: Mapping[str, Any], source: str = "config"
) -> dict[str, Any]:
    """Validate a config against the schema and fill in defaults.

    Parameters
    ----------
    config : mapping
        As loaded from ``config.yaml`` (and ``--config`` overrides).
    schema : mapping
        The loaded ``workflow/schemas/config.schema.yaml``.
    source : str
        Named in error messages (e.g. the config file's path).

    Returns
    -------
    dict
        A deep copy of ``config`` with every default filled in.

    Raises
    ------
    ConfigError
        At the first violation, naming the key, the value and what is allowed; also when a
        dataset names a feature set that does not exist.
    """
    filled = copy.deepcopy(dict(config))
    if isinstance(filled.get("models"), dict):  # validating an expanded config again
        filled["models"] = _without_seed_runs(filled["models"])
    validator = _Validator(schema)
    errors = sorted(validator.iter_errors(filled), key=lambda e: (len(e.path), str(e.path)))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"{source}: {_message(best)}")
    for name, dataset in filled["datasets"].items():
        wanted = dataset_feature_sets(filled, dataset=name)
        unknown = sorted(set(wanted) - set(filled["features"]))
        if unknown:
            raise ConfigError(
                f"{source}: datasets.{name}.features: {unknown} not defined under features:; "
                f"defined: {sorted(filled['features'])}"
            )
        for key in dataset_format(dataset["format"]).requires:
            if key not in dataset:
                raise ConfigError(
                    f"{source}: datasets.{name}.{key}: required for format {dataset['format']!r}"
                )
    for name, model in filled["models"].items():
        if model["features"] not in filled["features"]:
            raise ConfigError(
                f"{source}: models.{name}.features: {model['features']!r} is not defined under "
                f"features:; defined: {sorted(filled['features'])}"
            )
        _check_encoder_model(model, features=filled["features"], key=f"{source}: models.{name}")
        upstream = model["hparams"].get("from_model")
        if upstream is not None and (upstream not in filled["models"] or upstream == name):
            raise ConfigError(
                f"{source}: models.{name}.hparams.from_model: {upstream!r} is not another "
                f"model under models:; defined: {sorted(filled['models'])}"
            )
        for dataset in model.get("datasets", []):
            if dataset not in filled["datasets"]:
                raise ConfigError(
                    f"{source}: models.{name}.datasets: {dataset!r} is not defined under "
                    f"datasets:; defined: {sorted(filled['datasets'])}"
                )
            if model["features"] not in dataset_feature_sets(filled, dataset=dataset):
                raise ConfigError(
                    f"{source}: models.{name}: dataset {dataset!r} does not extract feature "
                    f"set {model['features']!r}; add it to datasets.{dataset}.features"
                )
    filled["models"] = expand_seeds(filled["models"], source=source)
    _check_uses(filled, source=source)
    try:
        for name in filled["datasets"]:
            _check_dataset(filled["datasets"][name], key=f"datasets.{name}")
        for name in filled["features"]:
            # FeatureSettings checks the cross-field rules (mel range, n_fft, finite windows)
            settings = feature_settings(filled, name=name)
            _check_tail(settings, key=f"features.{name}.window")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return filled


def seed_run_name(model: str, seed: int) -> str:
    """The name (``{model}`` wildcard) of the run of ``model`` with an extra ``seed``."""
    return f"{model}_seed{seed}"


def expand_seeds(models: Mapping[str, Any], *, source: str = "config") -> dict[str, Any]:
    """One model entry per training seed.

    A model with ``seeds: [s0, s1, ...]`` trains with ``train.seed = s0`` under its own name,
    and once more per further seed as ``<name>_seed<s>`` (:func:`seed_run_name`): a copy of
    its entry with that ``train.seed`` and ``seed_of: <name>``, placed right after it. Each
    run is an ordinary model of the workflow (trained, predicted and evaluated as one job
    each); the leaderboard merges them into one row. Models without ``seeds`` are unchanged.

    Raises
    ------
    ConfigError
        A model gives ``seeds`` and a different ``train.seed``, or a run's name is already a model.
    """
    out: dict[str, Any] = {}
    for name, entry in models.items():
        out[name] = entry
        seeds = entry.get("seeds")
        if not seeds:
            continue
        if entry.get("train", {}).get("seed", seeds[0]) != seeds[0]:
            raise ConfigError(
                f"{source}: models.{name}: give either seeds {seeds!r} or train.seed "
                f"{entry['train']['seed']!r}, not both"
            )
        entry["train"] = {**entry.get("train", {}), "seed": int(seeds[0])}
        for seed in seeds[1:]:
            run = seed_run_name(name, int(seed))
            if run in models:
                raise ConfigError(
                    f"{source}: models.{name}.seeds: the run of seed {seed} would be named "
                    f"{run!r}, which is already a model under models:; rename that model"
                )
            copy_ = {k: copy.deepcopy(v) for k, v in entry.items() if k != "seeds"}
            copy_["train"]["seed"] = int(seed)
            out[run] = {**copy_, "seed_of": name}
    return out


def _without_seed_runs(models: Mapping[str, Any]) -> dict[str, Any]:
    """The models without the runs :func:`expand_seeds` added (so that it is idempotent)."""

    def added(name: str, entry: Any) -> bool:
        if not isinstance(entry, Mapping) or "seed_of" not in entry:
            return False
        base = models.get(entry["seed_of"])
        seeds = list(base.get("seeds") or []) if isinstance(base, Mapping) else []
        return name in {seed_run_name(str(entry["seed_of"]), int(s)) for s in seeds[1:]}

    return {name: entry for name, entry in models.items() if not added(name, entry)}


#: Architectures that read a pretrained encoder's embeddings (a ``kind: encoder`` set).
ENCODER_ARCHITECTURES = ("probe_linear", "probe_mlp", "zero_shot_clap")


def _check_encoder_model(
    model: Mapping[str, Any], *, features: Mapping[str, Any], key: str
) -> None:
    """Probes and zero-shot CLAP read encoder feature sets; ``layer_table`` is for probes."""
    architecture = model["architecture"]
    kind = features[model["features"]]["kind"]
    if architecture in ENCODER_ARCHITECTURES and kind != "encoder":
        raise ConfigError(
            f"{key}.features: {architecture} reads a kind: encoder feature set, but "
            f"{model['features']!r} is of kind {kind!r}"
        )
    if model.get("layer_table") and architecture not in ENCODER_ARCHITECTURES[:2]:
        raise ConfigError(
            f"{key}.layer_table: applies to probe_linear and probe_mlp only, not {architecture!r}"
        )


def _check_dataset(entry: Mapping[str, Any], *, key: str) -> None:
    """Split fractions that leave tracks for training; one-character, distinct separators."""
    split = entry["split"]
    valid, test = split["valid_fraction"], split["test_fraction"]
    for name, value in (("valid_fraction", valid), ("test_fraction", test)):
        if not 0 <= value < 1:  # NaN passes the schema's bounds
            raise ConfigError(f"{key}.split.{name}: {value!r} must be in [0, 1)")
    if not valid + test < 1:
        raise ConfigError(
            f"{key}.split: valid_fraction + test_fraction = {valid} + {test} = {valid + test:g} "
            "must be < 1 (each in [0, 1)), or no track is left for training"
        )
    if "sep" in entry or "tag_sep" in entry:
        separators(options=entry, key=key + ".{}", default_sep=",", default_tag_sep=";")


def _check_tail(settings: FeatureSettings, *, key: str) -> None:
    """``min_tail_s <= length_s`` under ``tail: pad``: a longer minimum would silently drop
    every partial last window (the schema's default, 5 s, is longer than a short window)."""
    window = settings.window
    if window.tail == "pad" and window.min_tail_s > window.length_s:
        raise ConfigError(
            f"{key}.min_tail_s: {window.min_tail_s!r} must be <= length_s ({window.length_s!r}); "
            "allowed: 0 <= min_tail_s <= length_s (a longer minimum keeps no partial window; "
            "use tail: drop for that)"
        )


def check_sources(config: Mapping[str, Any], *, source: str = "config") -> None:
    """Refuse a validated config whose datasets' roots, tables or audio folders, or whose
    folder collections, do not exist, naming the config key.

    Only what the user provides is checked: the tables of generated datasets (``demo``, and
    the rendered table of ``scores``) are written by a rule. Without this, Snakemake would
    stop with a MissingInputException that names a file but not the key that points to it.

    Parameters
    ----------
    config : mapping
        As :func:`validate_config` returns it (defaults filled in).
    source : str
        Named at the start of the message.

    Raises
    ------
    ConfigError
        ``<source>: datasets.<name>.<key>: '<path>' does not exist`` (or is a file where a
        folder is needed, or the other way round); the same for ``collections.<name>.root``.
    """
    for name, entry in config["datasets"].items():
        spec = dataset_format(entry["format"])
        for key, path, kind in spec.required_paths(entry=entry):
            problem = _path_problem(path, kind=kind)
            if problem:
                written = Path(entry[key])
                shown = f"'{printable(written)}'"
                if key != "root" and not written.expanduser().is_absolute():
                    shown += f" (under root '{printable(entry['root'])}')"
                raise ConfigError(f"{source}: datasets.{name}.{key}: {shown} {problem}")
        lists = entry.get("split_lists")
        if isinstance(lists, Mapping) and spec.generated_dir is None:
            for split, value in lists.items():
                written = Path(str(value)).expanduser()
                full = written if written.is_absolute() else Path(entry["root"]) / written
                problem = _path_problem(full, kind="file")
                if problem:
                    shown = f"'{printable(written)}'"
                    if not written.is_absolute():
                        shown += f" (under root '{printable(entry['root'])}')"
                    raise ConfigError(
                        f"{source}: datasets.{name}.split_lists.{split}: {shown} {problem}"
                    )
    for name, entry in config.get("collections", {}).items():
        if "root" in entry:
            problem = _path_problem(Path(entry["root"]), kind="folder")
            if problem:
                raise ConfigError(
                    f"{source}: collections.{name}.root: '{printable(entry['root'])}' {problem}"
                )


def _path_problem(path: Path, *, kind: str) -> str | None:
    """Why ``path`` is not an existing ``kind`` ("file" or "folder"), or None."""
    if not path.exists():
        return "does not exist" + (
            f" (working directory '{printable(Path.cwd())}')" if not path.is_absolute() else ""
        )
    if kind == "folder" and not path.is_dir():
        return "is not a folder"
    if kind == "file" and path.is_dir():
        return "is a folder, not a file"
    return None


def _check_uses(config: Mapping[str, Any], *, source: str) -> None:
    """Cross-checks of collections:, retrieval: and fewshot: against models and datasets."""
    models, datasets = config["models"], config["datasets"]

    def known_model(key: str, name: str) -> None:
        if name not in models:
            raise ConfigError(
                f"{source}: {key}: {name!r} is not a model under models:; defined: {sorted(models)}"
            )

    for name, entry in config["collections"].items():
        key = f"collections.{name}"
        if ("root" in entry) == ("dataset" in entry):
            raise ConfigError(f"{source}: {key}: give exactly one of root (a folder) and dataset")
        if "dataset" in entry and entry["dataset"] not in datasets:
            raise ConfigError(
                f"{source}: {key}.dataset: {entry['dataset']!r} is not defined under datasets:; "
                f"defined: {sorted(datasets)}"
            )
        known_model(f"{key}.model", entry["model"])
        collection_model(config, collection=name, source=source)
        limit = entry.get("max_duration_s")
        if limit is not None and not (math.isfinite(limit) and limit > 0):  # NaN passes the schema
            raise ConfigError(
                f"{source}: {key}.max_duration_s: {limit!r} must be a finite number of seconds "
                "> 0, or null"
            )
    retrieval = config["retrieval"]
    for name in retrieval["models"]:
        known_model("retrieval.models", name)
    if retrieval["index_space"] == "triplet" and not retrieval["metric_learning"]["enabled"]:
        raise ConfigError(
            f"{source}: retrieval.index_space: 'triplet' needs retrieval.metric_learning.enabled"
        )
    fewshot = config["fewshot"]
    for name in fewshot["models"]:
        known_model("fewshot.models", name)
        target = fewshot["dataset"]
        if target is None:
            continue
        if target not in datasets:
            raise ConfigError(
                f"{source}: fewshot.dataset: {target!r} is not defined under datasets:; "
                f"defined: {sorted(datasets)}"
            )
        if models[name]["features"] not in dataset_feature_sets(config, dataset=target):
            raise ConfigError(
                f"{source}: fewshot.dataset: {target!r} does not extract feature set "
                f"{models[name]['features']!r} that fewshot model {name!r} reads"
            )


def collection_model(
    config: Mapping[str, Any], *, collection: str, source: str = "config"
) -> tuple[str, str]:
    """The (dataset, model) whose checkpoint tags a collection.

    Raises
    ------
    ConfigError
        ``trained_on`` is not a dataset the model is trained on, or is missing while the model
        is trained on several.
    """
    entry = config["collections"][collection]
    model = entry["model"]
    trained = model_datasets(config, model=model)
    dataset = entry.get("trained_on")
    if dataset is None:
        if len(trained) != 1:
            raise ConfigError(
                f"{source}: collections.{collection}.trained_on: required, model {model!r} is "
                f"trained on {trained}"
            )
        dataset = trained[0]
    if dataset not in trained:
        raise ConfigError(
            f"{source}: collections.{collection}.trained_on: model {model!r} is not trained on "
            f"{dataset!r}; it is trained on {trained}"
        )
    return dataset, model


def feature_settings(config: Mapping[str, Any], *, name: str) -> FeatureSettings:
    """The typed settings of feature set ``name`` of a validated config."""
    try:
        entry = config["features"][name]
    except KeyError as exc:
        raise ConfigError(
            f"features.{name}: not defined; defined: {sorted(config['features'])}"
        ) from exc
    return FeatureSettings.from_dict(entry, name=name)


def model_datasets(config: Mapping[str, Any], *, model: str) -> list[str]:
    """Datasets a model is trained on: its ``datasets`` list, default every dataset that
    extracts its feature set."""
    entry = config["models"][model]
    if "datasets" in entry:
        return list(entry["datasets"])
    return [
        name
        for name in config["datasets"]
        if entry["features"] in dataset_feature_sets(config, dataset=name)
    ]


def dataset_feature_sets(config: Mapping[str, Any], *, dataset: str) -> list[str]:
    """Feature sets extracted for a dataset (its ``features`` list, default all)."""
    entry = config["datasets"][dataset]
    return list(entry.get("features", list(config["features"])))
