# The manifest: one table per dataset (tracks, tags, split, shard) and per-shard track lists.


def manifest_inputs(wildcards):
    """The metadata files the dataset's adapter reads (never the audio files)."""
    return manifest_source(config, dataset=wildcards.dataset).files


def manifest_params(wildcards):
    source = manifest_source(config, dataset=wildcards.dataset)
    return {"format": source.format, "root": source.root, "options": source.options}


checkpoint build_manifest:
    input:
        manifest_inputs,
    output:
        manifest=f"{RESULTS}/{{dataset}}/manifest.parquet",
        vocabulary=f"{RESULTS}/{{dataset}}/vocabulary.json",
    log:
        f"{RESULTS}/logs/build_manifest/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_manifest/{{dataset}}.tsv"
    params:
        source=manifest_params,
        shard_dir=f"{RESULTS}/{{dataset}}/shards",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/build_manifest.py"
