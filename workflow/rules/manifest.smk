# The manifest: one table per dataset (tracks, tags, split, shard) and per-shard track lists.


checkpoint build_manifest:
    input:
        manifest_inputs,
    output:
        manifest=f"{RESULTS}/{{dataset}}/manifest.parquet",
        vocabulary=f"{RESULTS}/{{dataset}}/vocabulary.json",
        summary=f"{RESULTS}/{{dataset}}/manifest_summary.json",
        failed=f"{RESULTS}/{{dataset}}/manifest.failed.parquet",
    log:
        f"{RESULTS}/logs/build_manifest/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_manifest/{{dataset}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        source=manifest_params,
        shard_dir=f"{RESULTS}/{{dataset}}/shards",
    script:
        "../scripts/build_manifest.py"
