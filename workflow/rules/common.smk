# Shared setup: config validation (with schema defaults) and named input functions.
import hashlib
from pathlib import Path

from snakemake.utils import min_version

from pipeline.config import (
    collection_model,
    dataset_feature_sets,
    load_yaml,
    manifest_source,
    model_datasets,
    validate_config,
)
from pipeline.datasets.manifest import shard_name

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
    for collection in config["collections"]:
        targets.append(f"{RESULTS}/collections/{collection}/tags.parquet")
    if retrieval_pairs():
        targets += [f"{RESULTS}/retrieval.{ext}" for ext in ("csv", "md", "html")]
        targets += [
            f"{model_dir(d, m)}/similarity/index.parquet" for d, m in retrieval_pairs()
        ]
    if fewshot_pairs():
        targets += [f"{RESULTS}/fewshot.{ext}" for ext in ("csv", "md", "html")]
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


# -- batch tagging of collections --------------------------------------------------------------


def collection_entry(wildcards):
    return config["collections"][wildcards.collection]


def collection_shard_names(collection):
    return [shard_name(k) for k in range(config["collections"][collection]["shards"])]


def collection_checkpoint(wildcards):
    dataset, model = collection_model(config, collection=wildcards.collection)
    return f"{model_dir(dataset, model)}/checkpoint.pt"


def collection_list_inputs(wildcards):
    """A dataset collection lists its dataset's manifest; a folder has no input file."""
    entry = collection_entry(wildcards)
    if "dataset" in entry:
        return {"manifest": f"{RESULTS}/{entry['dataset']}/manifest.parquet"}
    return {}


def collection_listing(wildcards):
    """What a folder collection holds (names, sizes, times), so that a change re-lists it."""
    entry = collection_entry(wildcards)
    if "dataset" in entry:
        return {"dataset": entry["dataset"]}
    root = Path(entry["root"])
    if not root.is_dir():
        return {"root": str(root), "missing": True}
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {
        "root": str(root),
        "patterns": entry["patterns"],
        "files": digest.hexdigest(),
    }


def collection_shard_tables(wildcards):
    folder = f"{RESULTS}/collections/{wildcards.collection}/shards"
    names = collection_shard_names(wildcards.collection)
    return {
        "tables": [f"{folder}/{name}.parquet" for name in names],
        "failed": [f"{folder}/{name}.failed.parquet" for name in names],
    }


# -- similarity search and retrieval -----------------------------------------------------------


def retrieval_pairs():
    """(dataset, model) pairs evaluated for retrieval and indexed for similarity search."""
    wanted = config["retrieval"]["models"]
    return [(d, m) for d, m in evaluated_models() if m in wanted]


def metric_learning_on():
    return config["retrieval"]["metric_learning"]["enabled"]


def retrieval_inputs(wildcards):
    folder = model_dir(wildcards.dataset, wildcards.model)
    inputs = {"embeddings": f"{folder}/embeddings.parquet"}
    if metric_learning_on():
        inputs["projection"] = f"{folder}/retrieval/projection.pt"
    return inputs


def index_inputs(wildcards):
    folder = model_dir(wildcards.dataset, wildcards.model)
    inputs = {
        "embeddings": f"{folder}/embeddings.parquet",
        "checkpoint": f"{folder}/checkpoint.pt",
        "manifest": f"{RESULTS}/{wildcards.dataset}/manifest.parquet",
    }
    if config["retrieval"]["index_space"] == "triplet":
        inputs["projection"] = f"{folder}/retrieval/projection.pt"
    return inputs


def retrieval_table_inputs(wildcards):
    return [f"{model_dir(d, m)}/retrieval/metrics.json" for d, m in retrieval_pairs()]


# -- few-shot personal tags --------------------------------------------------------------------


def fewshot_pairs():
    """(dataset the model is trained on, model) pairs adapted to few-shot tags."""
    wanted = config["fewshot"]["models"]
    return [(d, m) for d, m in evaluated_models() if m in wanted]


def fewshot_target(wildcards):
    """The dataset whose tags are learnt from a few examples."""
    return config["fewshot"]["dataset"] or wildcards.dataset


def fewshot_inputs(wildcards):
    target = fewshot_target(wildcards)
    features = config["models"][wildcards.model]["features"]
    return {
        "checkpoint": f"{model_dir(wildcards.dataset, wildcards.model)}/checkpoint.pt",
        "index": f"{feature_dir(target, features)}/index.parquet",
        "vocabulary": f"{RESULTS}/{target}/vocabulary.json",
    }


def fewshot_params(wildcards):
    return {**config["fewshot"], "target": fewshot_target(wildcards)}


def fewshot_table_inputs(wildcards):
    return [f"{model_dir(d, m)}/fewshot/episodes.csv" for d, m in fewshot_pairs()]
