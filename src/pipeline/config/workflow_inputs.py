"""What each rule of the workflow reads, and what the default target builds, from the config.

``workflow/rules/common.smk`` keeps one-line named input functions that call these with the
validated config (:func:`pipeline.config.validate_config`) and the job's wildcards; everything
here is a plain function of the config (and, for a folder collection, of the folder's
listing), tested without Snakemake. Paths follow the layout of the rules' outputs::

    <results>/<dataset>/manifest.parquet, vocabulary.json, shards/<shard>.parquet
    <results>/<dataset>/features/<features>/<shard>.zarr, index.parquet, stats.json
    <results>/<dataset>/models/<model>/checkpoint.pt, evaluation/, retrieval/, fewshot/
    <results>/collections/<collection>/tracks.parquet, shards/, tags.parquet
    <results>/leaderboard.*, leaderboard_summary.rst, retrieval.*, fewshot.*
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.config.validation import collection_model, dataset_feature_sets, model_datasets
from pipeline.datasets import dataset_format, split_description
from pipeline.datasets.formats import ManifestSource
from pipeline.datasets.manifest import shard_name
from pipeline.features.settings import FeatureSettings

__all__ = [
    "all_targets",
    "collection_checkpoint",
    "collection_list_inputs",
    "collection_listing",
    "collection_shard_tables",
    "evaluated_models",
    "feature_dir",
    "fewshot_inputs",
    "fewshot_pairs",
    "fewshot_params",
    "fewshot_shots",
    "fewshot_table_inputs",
    "fewshot_target",
    "generator_inputs",
    "generator_params",
    "index_inputs",
    "landing_page",
    "leaderboard_inputs",
    "leaderboard_params",
    "manifest_params",
    "manifest_source",
    "model_dir",
    "model_index",
    "model_params",
    "prediction_tables",
    "retrieval_inputs",
    "retrieval_pairs",
    "retrieval_table_inputs",
    "shard_failures",
    "shard_stores",
    "train_inputs",
]

Config = Mapping[str, Any]
REPORTS = ("csv", "md", "html")
PREDICTIONS = ("eval_songs", "eval_windows", "valid_songs", "valid_windows", "eval_chunks")


# ---------------------------------------------------------------------------- folders


def feature_dir(config: Config, *, dataset: str, features: str) -> str:
    """The folder of a dataset's feature set: shard stores, index, statistics."""
    return f"{config['results']}/{dataset}/features/{features}"


def model_dir(config: Config, *, dataset: str, model: str) -> str:
    """The folder of a model trained on a dataset: checkpoint and everything made from it."""
    return f"{config['results']}/{dataset}/models/{model}"


def _shard_names(count: int) -> list[str]:
    return [shard_name(k) for k in range(count)]


# ---------------------------------------------------------------------------- pairs


def evaluated_models(config: Config) -> list[tuple[str, str]]:
    """(dataset, model) pairs: every model on every dataset it is trained on."""
    return [
        (dataset, model)
        for model in config["models"]
        for dataset in model_datasets(config, model=model)
    ]


def retrieval_pairs(config: Config) -> list[tuple[str, str]]:
    """(dataset, model) pairs evaluated for retrieval and indexed for similarity search."""
    wanted = config["retrieval"]["models"]
    return [(d, m) for d, m in evaluated_models(config) if m in wanted]


def fewshot_pairs(config: Config) -> list[tuple[str, str]]:
    """(dataset the model is trained on, model) pairs adapted to few-shot tags."""
    wanted = config["fewshot"]["models"]
    return [(d, m) for d, m in evaluated_models(config) if m in wanted]


# ---------------------------------------------------------------------------- default target


def all_targets(config: Config) -> list[str]:
    """Everything the default target builds.

    Per dataset its manifest and, per feature set, the index and band statistics; the
    leaderboard when there are models; each collection's tags; the retrieval table and the
    similarity indexes, and the few-shot table, when models are listed for them.
    """
    results = config["results"]
    targets = []
    for dataset in config["datasets"]:
        targets.append(f"{results}/{dataset}/manifest.parquet")
        for features in dataset_feature_sets(config, dataset=dataset):
            folder = feature_dir(config, dataset=dataset, features=features)
            targets += [f"{folder}/index.parquet", f"{folder}/stats.json"]
    if config["models"]:
        targets += [f"{results}/leaderboard.{ext}" for ext in REPORTS]
        targets.append(f"{results}/leaderboard_summary.rst")
    for collection in config["collections"]:
        targets.append(f"{results}/collections/{collection}/tags.parquet")
    retrieval = retrieval_pairs(config)
    if retrieval:
        targets += [f"{results}/retrieval.{ext}" for ext in REPORTS]
        targets += [
            f"{model_dir(config, dataset=d, model=m)}/similarity/index.parquet"
            for d, m in retrieval
        ]
    if fewshot_pairs(config):
        targets += [f"{results}/fewshot.{ext}" for ext in REPORTS]
    targets += [
        f"{model_dir(config, dataset=d, model=m)}/layers/layers.csv"
        for d, m in evaluated_models(config)
        if config["models"][m].get("layer_table")
    ]
    return targets


def landing_page(config: Config, *, default: str) -> str:
    """The landing page of ``snakemake --report`` (the Snakefile's ``report:``): the absolute
    path of ``<results>/leaderboard_summary.rst`` once the workflow wrote it, else
    ``default`` (the description alone, before any model was evaluated)."""
    summary = Path(config["results"]) / "leaderboard_summary.rst"
    return str(summary.resolve()) if summary.is_file() else default


# ---------------------------------------------------------------------------- datasets


def manifest_source(config: Config, *, dataset: str) -> ManifestSource:
    """What the manifest step of ``dataset`` reads, as its format declares it."""
    entry = config["datasets"][dataset]
    spec = dataset_format(entry["format"])
    return spec.manifest_source(entry=entry, dataset_dir=f"{config['resources']}/{dataset}")


def manifest_params(config: Config, *, dataset: str) -> dict[str, Any]:
    """The params of the manifest step: the adapter, the folder it reads, its options."""
    source = manifest_source(config, dataset=dataset)
    return {"format": source.format, "root": source.root, "options": source.options}


def generator_params(config: Config, *, dataset: str) -> dict[str, Any]:
    """The config keys that define a generated dataset (its format's ``generator_keys``)."""
    entry = config["datasets"][dataset]
    return {key: entry[key] for key in dataset_format(entry["format"]).generator_keys}


def generator_inputs(config: Config, *, dataset: str) -> dict[str, str]:
    """The files the rule that generates a dataset reads (none for the demo)."""
    entry = config["datasets"][dataset]
    read = dataset_format(entry["format"]).generator_inputs
    return {} if read is None else read(entry=entry)


# ---------------------------------------------------------------------------- features


def shard_stores(config: Config, *, dataset: str, features: str) -> list[str]:
    """Every shard store of a dataset's feature set."""
    folder = feature_dir(config, dataset=dataset, features=features)
    shards = _shard_names(config["datasets"][dataset]["shards"])
    return [f"{folder}/{shard}.zarr" for shard in shards]


def derived_source(config: Config, *, dataset: str, features: str) -> str | None:
    """The log-mel set of the same dataset that a feature set is derived from, or None.

    An MFCC set whose log-mel settings equal those of a log-mel set the dataset extracts is
    computed from that set's stores instead of decoding the audio again (the first such
    set in config order).
    """
    settings = FeatureSettings.from_dict(config["features"][features], name=features)
    for name in dataset_feature_sets(config, dataset=dataset):
        if name == features:
            continue
        source = FeatureSettings.from_dict(config["features"][name], name=name)
        if settings.derives_from(source):
            return name
    return None


def derived_source_inputs(config: Config, *, dataset: str, features: str, shard: str) -> list[str]:
    """The source set's store and failure table of one shard (empty when not derived)."""
    source = derived_source(config, dataset=dataset, features=features)
    if source is None:
        return []
    folder = feature_dir(config, dataset=dataset, features=source)
    return [f"{folder}/{shard}.zarr", f"{folder}/{shard}.failed.parquet"]


def shard_failures(config: Config, *, dataset: str, features: str) -> list[str]:
    """Every shard's table of tracks that failed extraction, after the manifest step's table
    of tracks whose audio is missing or unreadable (``manifest.failed.parquet``)."""
    folder = feature_dir(config, dataset=dataset, features=features)
    shards = _shard_names(config["datasets"][dataset]["shards"])
    missing = f"{config['results']}/{dataset}/manifest.failed.parquet"
    return [missing, *(f"{folder}/{shard}.failed.parquet" for shard in shards)]


# ---------------------------------------------------------------------------- models


def model_params(config: Config, *, model: str) -> dict[str, Any]:
    """Everything that defines a model's training run: its entry without ``seeds`` and
    ``seed_of`` (so adding a seed trains the new seed only, not the runs already made)."""
    return {k: v for k, v in config["models"][model].items() if k not in ("seeds", "seed_of")}


def model_index(config: Config, *, dataset: str, model: str) -> str:
    """The feature index of the feature set the model reads."""
    features = config["models"][model]["features"]
    return f"{feature_dir(config, dataset=dataset, features=features)}/index.parquet"


def train_inputs(config: Config, *, dataset: str, model: str) -> dict[str, str]:
    """Index and band statistics of the model's feature set, the vocabulary, and the
    checkpoint of the network an embedding model borrows (``hparams.from_model``)."""
    entry = config["models"][model]
    folder = feature_dir(config, dataset=dataset, features=entry["features"])
    inputs = {
        "index": f"{folder}/index.parquet",
        "stats": f"{folder}/stats.json",
        "vocabulary": f"{config['results']}/{dataset}/vocabulary.json",
    }
    source = entry["hparams"].get("from_model")
    if source:
        inputs["network"] = f"{model_dir(config, dataset=dataset, model=source)}/checkpoint.pt"
    return inputs


def prediction_tables(config: Config, *, dataset: str, model: str) -> dict[str, str]:
    """The window- and song-level predictions on the evaluation and validation splits."""
    folder = f"{model_dir(config, dataset=dataset, model=model)}/predictions"
    return {name: f"{folder}/{name}.parquet" for name in PREDICTIONS}


def leaderboard_inputs(config: Config) -> dict[str, list[str]]:
    """Metrics, training summaries and song scores of every evaluated (dataset, model) pair."""
    dirs = [model_dir(config, dataset=d, model=m) for d, m in evaluated_models(config)]
    return {
        "metrics": [f"{folder}/evaluation/metrics.json" for folder in dirs],
        "summaries": [f"{folder}/train_summary.json" for folder in dirs],
        "scores": [f"{folder}/evaluation/scores.parquet" for folder in dirs],
    }


def leaderboard_params(config: Config) -> dict[str, Any]:
    """The pairs, model and feature settings that the leaderboard states."""
    return {
        "pairs": evaluated_models(config),
        "models": config["models"],
        "features": config["features"],
        "bootstrap": config["evaluation"]["bootstrap"],
        "dataset_splits": {
            name: split_description(entry) for name, entry in config["datasets"].items()
        },
    }


# ---------------------------------------------------------------------------- collections


def collection_checkpoint(config: Config, *, collection: str) -> str:
    """The checkpoint that tags a collection."""
    dataset, model = collection_model(config, collection=collection)
    return f"{model_dir(config, dataset=dataset, model=model)}/checkpoint.pt"


def collection_list_inputs(config: Config, *, collection: str) -> dict[str, str]:
    """A dataset collection lists its dataset's manifest; a folder has no input file."""
    entry = config["collections"][collection]
    if "dataset" in entry:
        return {"manifest": f"{config['results']}/{entry['dataset']}/manifest.parquet"}
    return {}


def collection_listing(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What a collection holds, as params of its listing job, so that a change re-lists it.

    Parameters
    ----------
    entry : Mapping[str, Any]
        The collection's validated config entry.

    Returns
    -------
    dict
        ``{"dataset": name}`` for a dataset collection (its manifest is an input). For a
        folder: ``{"root", "patterns", "files"}``, ``files`` a digest of the path, size and
        modification time of every file under ``root`` (walked now, when the DAG is built:
        a collection is one job, whatever its size); ``{"root", "missing": True}`` when the
        folder does not exist.
    """
    if "dataset" in entry:
        return {"dataset": entry["dataset"]}
    root = Path(entry["root"])
    if not root.is_dir():
        return {"root": str(root), "missing": True}
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        # surrogateescape: a file name that is not UTF-8 hashes as its bytes
        digest.update(
            f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode(errors="surrogateescape")
        )
    return {"root": str(root), "patterns": entry["patterns"], "files": digest.hexdigest()}


def collection_shard_tables(config: Config, *, collection: str) -> dict[str, list[str]]:
    """Every shard's tag table and failure table of a collection."""
    folder = f"{config['results']}/collections/{collection}/shards"
    names = _shard_names(config["collections"][collection]["shards"])
    return {
        "tables": [f"{folder}/{name}.parquet" for name in names],
        "failed": [f"{folder}/{name}.failed.parquet" for name in names],
    }


# ---------------------------------------------------------------------------- retrieval


def retrieval_inputs(config: Config, *, dataset: str, model: str) -> dict[str, str]:
    """Track embeddings, and the metric-learning projection when it is trained."""
    folder = model_dir(config, dataset=dataset, model=model)
    inputs = {"embeddings": f"{folder}/embeddings.parquet"}
    if config["retrieval"]["metric_learning"]["enabled"]:
        inputs["projection"] = f"{folder}/retrieval/projection.pt"
    return inputs


def index_inputs(config: Config, *, dataset: str, model: str) -> dict[str, str]:
    """Embeddings, checkpoint and manifest of a similarity index (and the projection when
    the index lives in the metric-learning space)."""
    folder = model_dir(config, dataset=dataset, model=model)
    inputs = {
        "embeddings": f"{folder}/embeddings.parquet",
        "checkpoint": f"{folder}/checkpoint.pt",
        "manifest": f"{config['results']}/{dataset}/manifest.parquet",
    }
    if config["retrieval"]["index_space"] == "triplet":
        inputs["projection"] = f"{folder}/retrieval/projection.pt"
    return inputs


def retrieval_table_inputs(config: Config) -> list[str]:
    """Retrieval metrics of every (dataset, model) pair listed for retrieval."""
    return [
        f"{model_dir(config, dataset=d, model=m)}/retrieval/metrics.json"
        for d, m in retrieval_pairs(config)
    ]


# ---------------------------------------------------------------------------- few-shot


def fewshot_target(config: Config, *, dataset: str) -> str:
    """The dataset whose tags are learnt from a few examples (``fewshot.dataset``, or the
    dataset the model is trained on)."""
    return config["fewshot"]["dataset"] or dataset


def fewshot_inputs(config: Config, *, dataset: str, model: str) -> dict[str, str]:
    """The model's checkpoint, and the feature index and vocabulary of the target dataset."""
    target = fewshot_target(config, dataset=dataset)
    features = config["models"][model]["features"]
    return {
        "checkpoint": f"{model_dir(config, dataset=dataset, model=model)}/checkpoint.pt",
        "index": f"{feature_dir(config, dataset=target, features=features)}/index.parquet",
        "vocabulary": f"{config['results']}/{target}/vocabulary.json",
    }


def fewshot_params(config: Config, *, dataset: str, shots: int) -> dict[str, Any]:
    """The ``fewshot`` settings of one job (its number of shots) and the target dataset."""
    return {
        **config["fewshot"],
        "shots": [int(shots)],
        "target": fewshot_target(config, dataset=dataset),
    }


def fewshot_shots(config: Config) -> list[int]:
    """The numbers of shots, each its own ``fewshot_model`` job, ascending."""
    return sorted({int(s) for s in config["fewshot"]["shots"]})


def fewshot_table_inputs(config: Config) -> list[str]:
    """Few-shot episodes of every (dataset, model) pair listed for few-shot tags, one file
    per number of shots."""
    return [
        f"{model_dir(config, dataset=d, model=m)}/fewshot/shots-{s}.csv"
        for d, m in fewshot_pairs(config)
        for s in fewshot_shots(config)
    ]
