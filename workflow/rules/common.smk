# Shared setup: config validation (with schema defaults) and named input functions.
from pathlib import Path

from snakemake.utils import min_version

from pipeline.config import (
    dataset_feature_sets,
    load_yaml,
    manifest_source,
    model_datasets,
    validate_config,
)
from pipeline.manifest import shard_name

min_version("9.0")


configfile: "config.yaml"


config.update(
    validate_config(
        config,
        schema=load_yaml(
            Path(workflow.current_basedir).parent / "schemas" / "config.schema.yaml"
        ),
        source="config",
    )
)

RESULTS = config["results"]
RESOURCES = config["resources"]


def dataset_entry(wildcards):
    """The validated config entry of {dataset}."""
    return config["datasets"][wildcards.dataset]


def shard_names(dataset):
    """Names of a dataset's shards (fixed by config, so known before the manifest)."""
    return [shard_name(k) for k in range(config["datasets"][dataset]["shards"])]


def feature_dir(dataset, features):
    return f"{RESULTS}/{dataset}/features/{features}"


def all_targets():
    """Everything the default target builds: per dataset and feature set, the index and band stats."""
    targets = []
    for dataset in config["datasets"]:
        targets.append(f"{RESULTS}/{dataset}/manifest.parquet")
        for features in dataset_feature_sets(config, dataset=dataset):
            folder = feature_dir(dataset, features)
            targets += [f"{folder}/index.parquet", f"{folder}/stats.json"]
    if config["models"]:
        targets += [f"{RESULTS}/leaderboard.{ext}" for ext in ("csv", "md", "html")]
    return targets


def demo_params(wildcards):
    entry = dataset_entry(wildcards)
    return {
        "n_clips": entry.get("n_clips", 200),
        "clip_s": entry.get("clip_s", 20.0),
        "seed": entry.get("seed", 0),
    }


def scores_params(wildcards):
    entry = dataset_entry(wildcards)
    keys = ("table", "sep", "tag_sep", "clip_s", "tempo_qpm", "program")
    return {"root": entry["root"], **{k: entry[k] for k in keys if k in entry}}


def manifest_inputs(wildcards):
    """The metadata files the dataset's adapter reads (never the audio files)."""
    return manifest_source(config, dataset=wildcards.dataset).files


def manifest_params(wildcards):
    source = manifest_source(config, dataset=wildcards.dataset)
    return {"format": source.format, "root": source.root, "options": source.options}


def shard_tracks(wildcards):
    """A shard's track list. It is written by build_manifest only when its content changed
    and is not a declared output, so an unchanged shard keeps its time stamp and its store.
    """
    checkpoints.build_manifest.get(dataset=wildcards.dataset)
    return f"{RESULTS}/{wildcards.dataset}/shards/{wildcards.shard}.parquet"


def feature_params(wildcards):
    """The feature set's full settings: a change re-extracts this feature set only."""
    return config["features"][wildcards.features]


def shard_stores(wildcards):
    folder = feature_dir(wildcards.dataset, wildcards.features)
    return [f"{folder}/{shard}.zarr" for shard in shard_names(wildcards.dataset)]


def shard_failures(wildcards):
    folder = feature_dir(wildcards.dataset, wildcards.features)
    return [
        f"{folder}/{shard}.failed.parquet" for shard in shard_names(wildcards.dataset)
    ]


def model_dir(dataset, model):
    return f"{RESULTS}/{dataset}/models/{model}"


def model_entry(wildcards):
    """The validated config entry of {model}."""
    return config["models"][wildcards.model]


def model_params(wildcards):
    """Everything that defines a model: a change re-trains that model only."""
    return config["models"][wildcards.model]


def model_threads(wildcards):
    return config["models"][wildcards.model]["threads"]


def train_inputs(wildcards):
    """Index and band statistics of the model's feature set, the vocabulary, and the
    checkpoint of the network an embedding model borrows (hparams.from_model)."""
    entry = config["models"][wildcards.model]
    folder = feature_dir(wildcards.dataset, entry["features"])
    inputs = {
        "index": f"{folder}/index.parquet",
        "stats": f"{folder}/stats.json",
        "vocabulary": f"{RESULTS}/{wildcards.dataset}/vocabulary.json",
    }
    source = entry.get("hparams", {}).get("from_model")
    if source:
        inputs["network"] = f"{model_dir(wildcards.dataset, source)}/checkpoint.pt"
    return inputs


def model_index(wildcards):
    entry = config["models"][wildcards.model]
    return f"{feature_dir(wildcards.dataset, entry['features'])}/index.parquet"


def evaluated_models():
    """(dataset, model) pairs: every model on every dataset it is trained on."""
    return [
        (dataset, model)
        for model in config["models"]
        for dataset in model_datasets(config, model=model)
    ]


def leaderboard_inputs(wildcards):
    pairs = evaluated_models()
    return {
        "metrics": [f"{model_dir(d, m)}/evaluation/metrics.json" for d, m in pairs],
        "summaries": [f"{model_dir(d, m)}/train_summary.json" for d, m in pairs],
    }


def leaderboard_params(wildcards):
    return {
        "pairs": evaluated_models(),
        "models": config["models"],
        "features": config["features"],
    }


def prediction_tables(wildcards):
    folder = f"{model_dir(wildcards.dataset, wildcards.model)}/predictions"
    names = ("eval_songs", "eval_windows", "valid_songs", "valid_windows")
    return {name: f"{folder}/{name}.parquet" for name in names}
