# Shared setup: config validation (with schema defaults) and named input functions.
# Each input function is one line: what a rule reads is computed in
# src/pipeline/config/workflow_inputs.py (unit-tested), from the validated config.
import sys
from pathlib import Path

from snakemake.utils import min_version

from pipeline.config import (
    check_config_files,
    check_sources,
    load_yaml,
    validate_config,
)
from pipeline.config import workflow_inputs as inputs
from pipeline.errors import ConfigError

min_version("9.0")

# A bad config stops the run here with one line naming the file, line or key (no traceback).
# Snakemake's own loader keeps the last of duplicate keys and reports a YAML syntax error
# without file or line: config.yaml is read strictly first, then every config file in use.
try:
    check_config_files(["config.yaml"], missing_ok=True)
except ConfigError as error:
    sys.exit(f"error: {error}")


configfile: "config.yaml"


try:
    check_config_files(workflow.configfiles, missing_ok=True)
    config.update(
        validate_config(
            config,
            schema=load_yaml(
                Path(workflow.current_basedir).parent / "schemas" / "config.schema.yaml"
            ),
            source="config",
        )
    )
    check_sources(config, source="config")
except ConfigError as error:
    sys.exit(f"error: {error}")

RESULTS = config["results"]
RESOURCES = config["resources"]


def all_targets():
    return inputs.all_targets(config)


def landing_page():
    return inputs.landing_page(config, default="workflow/report/workflow.rst")


# -- datasets and manifests --------------------------------------------------------------------


def generator_inputs(wildcards):
    """The files the rule that generates {dataset} reads (the table of a scores folder)."""
    return inputs.generator_inputs(config, dataset=wildcards.dataset)


def generator_params(wildcards):
    """The config keys that define a generated {dataset}: a change re-generates it."""
    return inputs.generator_params(config, dataset=wildcards.dataset)


def manifest_inputs(wildcards):
    """The metadata files the dataset's adapter reads (never the audio files)."""
    return inputs.manifest_source(config, dataset=wildcards.dataset).files


def manifest_params(wildcards):
    return inputs.manifest_params(config, dataset=wildcards.dataset)


def shard_tracks(wildcards):
    """A shard's track list. It is written by build_manifest only when its content changed
    and is not a declared output, so an unchanged shard keeps its time stamp and its store.
    """
    checkpoints.build_manifest.get(dataset=wildcards.dataset)
    return f"{RESULTS}/{wildcards.dataset}/shards/{wildcards.shard}.parquet"


# -- features ----------------------------------------------------------------------------------


def feature_params(wildcards):
    """The feature set's full settings: a change re-extracts this feature set only."""
    return config["features"][wildcards.features]


def derived_source(wildcards):
    """An MFCC set's log-mel store and failures of the shard, when it derives from one."""
    return inputs.derived_source_inputs(
        config, shard=wildcards.shard, **_dataset_features(wildcards)
    )


def shard_stores(wildcards):
    return inputs.shard_stores(config, **_dataset_features(wildcards))


def shard_failures(wildcards):
    return inputs.shard_failures(config, **_dataset_features(wildcards))


def _dataset_features(wildcards):
    return {"dataset": wildcards.dataset, "features": wildcards.features}


# -- models ------------------------------------------------------------------------------------


def _dataset_model(wildcards):
    return {"dataset": wildcards.dataset, "model": wildcards.model}


def model_params(wildcards):
    """Everything that defines a model: a change re-trains that model only."""
    return inputs.model_params(config, model=wildcards.model)


def model_threads(wildcards):
    return config["models"][wildcards.model]["threads"]


def train_inputs(wildcards):
    return inputs.train_inputs(config, **_dataset_model(wildcards))


def model_index(wildcards):
    return inputs.model_index(config, **_dataset_model(wildcards))


def prediction_tables(wildcards):
    return inputs.prediction_tables(config, **_dataset_model(wildcards))


def leaderboard_inputs(wildcards):
    return inputs.leaderboard_inputs(config)


def leaderboard_params(wildcards):
    return inputs.leaderboard_params(config)


# -- batch tagging of collections --------------------------------------------------------------


def collection_entry(wildcards):
    return config["collections"][wildcards.collection]


def collection_checkpoint(wildcards):
    return inputs.collection_checkpoint(config, collection=wildcards.collection)


def collection_list_inputs(wildcards):
    return inputs.collection_list_inputs(config, collection=wildcards.collection)


def collection_listing(wildcards):
    """What a folder collection holds (names, sizes, times), so that a change re-lists it."""
    return inputs.collection_listing(collection_entry(wildcards))


def collection_shard_tables(wildcards):
    return inputs.collection_shard_tables(config, collection=wildcards.collection)


# -- similarity search and retrieval -----------------------------------------------------------


def retrieval_inputs(wildcards):
    return inputs.retrieval_inputs(config, **_dataset_model(wildcards))


def index_inputs(wildcards):
    return inputs.index_inputs(config, **_dataset_model(wildcards))


def retrieval_table_inputs(wildcards):
    return inputs.retrieval_table_inputs(config)


# -- few-shot personal tags --------------------------------------------------------------------


def fewshot_inputs(wildcards):
    return inputs.fewshot_inputs(config, **_dataset_model(wildcards))


def fewshot_params(wildcards):
    return inputs.fewshot_params(
        config, dataset=wildcards.dataset, shots=int(wildcards.shots)
    )


def fewshot_table_inputs(wildcards):
    return inputs.fewshot_table_inputs(config)
