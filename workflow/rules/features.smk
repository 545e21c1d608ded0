# Features: one extract_features job per (dataset, feature set, shard), then dataset-wide
# views over the shard stores (index, failures, band statistics of the train split).


def shard_tracks(wildcards):
    """A shard's track list. It is written by build_manifest only when its content changed
    and is not a declared output, so an unchanged shard keeps its time stamp and its store."""
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
    return [f"{folder}/{shard}.failed.parquet" for shard in shard_names(wildcards.dataset)]


rule extract_features:
    input:
        tracks=shard_tracks,
    output:
        store=directory(f"{RESULTS}/{{dataset}}/features/{{features}}/{{shard}}.zarr"),
        failed=f"{RESULTS}/{{dataset}}/features/{{features}}/{{shard}}.failed.parquet",
    log:
        f"{RESULTS}/logs/extract_features/{{dataset}}/{{features}}/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract_features/{{dataset}}/{{features}}/{{shard}}.tsv"
    params:
        features=feature_params,
        storage=config["storage"],
        tracks_per_task=config["extraction"]["tracks_per_task"],
    threads: config["extraction"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/extract_features.py"


rule index_features:
    input:
        manifest=f"{RESULTS}/{{dataset}}/manifest.parquet",
        stores=shard_stores,
        failed=shard_failures,
    output:
        index=f"{RESULTS}/{{dataset}}/features/{{features}}/index.parquet",
        failed=f"{RESULTS}/{{dataset}}/features/{{features}}/failed.csv",
        summary=f"{RESULTS}/{{dataset}}/features/{{features}}/summary.json",
    log:
        f"{RESULTS}/logs/index_features/{{dataset}}/{{features}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/index_features/{{dataset}}/{{features}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/index_features.py"


rule feature_stats:
    input:
        index=f"{RESULTS}/{{dataset}}/features/{{features}}/index.parquet",
    output:
        stats=f"{RESULTS}/{{dataset}}/features/{{features}}/stats.json",
    log:
        f"{RESULTS}/logs/feature_stats/{{dataset}}/{{features}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/feature_stats/{{dataset}}/{{features}}.tsv"
    params:
        split="train",
    threads: config["extraction"]["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/feature_stats.py"
