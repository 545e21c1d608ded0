"""Config validation against the JSON schema (with defaults), and typed views of the result.

The schema lives in ``workflow/schemas/config.schema.yaml`` and is the one source of defaults:
:func:`validate_config` fills them in and turns the first violation into a
:class:`ConfigError` that names the key, the bad value and what is allowed; the checks across
sections (a model's feature set exists, the keys a dataset format requires) follow.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline.datasets import dataset_format
from pipeline.errors import ConfigError
from pipeline.features.settings import FeatureSettings

__all__ = [
    "load_yaml",
    "validate_config",
    "feature_settings",
    "dataset_feature_sets",
    "model_datasets",
    "collection_model",
]


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file into a dict, with a clear error naming the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{str(path)!r}: file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{str(path)!r}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{str(path)!r}: expected a mapping at the top level")
    return data


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
    _check_uses(filled, source=source)
    for name in filled["features"]:
        try:
            feature_settings(filled, name=name)  # cross-field checks (n_mfcc <= n_mels)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
    return filled


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
