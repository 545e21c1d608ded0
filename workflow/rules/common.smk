# Shared setup: config validation (with schema defaults) and named input functions.
from pathlib import Path

from snakemake.utils import min_version

from pipeline.config import (
    dataset_feature_sets,
    load_yaml,
    manifest_source,
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


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    features=r"[A-Za-z0-9_-]+",
    shard=r"\d{4}",


def dataset_entry(wildcards):
    """The validated config entry of {dataset}."""
    return config["datasets"][wildcards.dataset]


def shard_names(dataset):
    """Names of a dataset's shards (fixed by config, so known before the manifest)."""
    return [shard_name(k) for k in range(config["datasets"][dataset]["shards"])]


def feature_dir(dataset, features):
    return f"{RESULTS}/{dataset}/features/{features}"


def all_targets():
    """Everything `rule all` builds: per dataset and feature set, the index and band stats."""
    targets = []
    for dataset in config["datasets"]:
        targets.append(f"{RESULTS}/{dataset}/manifest.parquet")
        for features in dataset_feature_sets(config, dataset=dataset):
            folder = feature_dir(dataset, features)
            targets += [f"{folder}/index.parquet", f"{folder}/stats.json"]
    return targets
