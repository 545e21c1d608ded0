# Features: one extract_features job per (dataset, feature set, shard), then dataset-wide
# views over the shard stores (index, failures, band statistics of the train split).


rule extract_features:
    input:
        tracks=shard_tracks,
        source=derived_source,
    output:
        store=directory(f"{RESULTS}/{{dataset}}/features/{{features}}/{{shard}}.zarr"),
        failed=f"{RESULTS}/{{dataset}}/features/{{features}}/{{shard}}.failed.parquet",
    log:
        f"{RESULTS}/logs/extract_features/{{dataset}}/{{features}}/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract_features/{{dataset}}/{{features}}/{{shard}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: config["extraction"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        features=feature_params,
        storage=config["storage"],
        tracks_per_task=config["extraction"]["tracks_per_task"],
        dask_scheduler=config["extraction"]["dask_scheduler"],
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
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
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
    conda:
        "../../envs/pipeline.yaml"
    threads: config["extraction"]["threads"]
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        split="train",
        dask_scheduler=config["extraction"]["dask_scheduler"],
    script:
        "../scripts/feature_stats.py"
