# Batch tagging: every file of a collection (a folder, or a dataset's tracks) tagged with one
# checkpoint, in shards, into results/collections/<name>/tags.parquet.


rule list_collection:
    input:
        unpack(collection_list_inputs),
    output:
        tracks=f"{RESULTS}/collections/{{collection}}/tracks.parquet",
    log:
        f"{RESULTS}/logs/list_collection/{{collection}}.log",
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        entry=collection_entry,
        listing=collection_listing,
    script:
        "../scripts/list_collection.py"


rule tag_collection_shard:
    input:
        tracks=f"{RESULTS}/collections/{{collection}}/tracks.parquet",
        checkpoint=collection_checkpoint,
    output:
        table=f"{RESULTS}/collections/{{collection}}/shards/{{shard}}.parquet",
        failed=f"{RESULTS}/collections/{{collection}}/shards/{{shard}}.failed.parquet",
    log:
        f"{RESULTS}/logs/tag_collection/{{collection}}/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tag_collection/{{collection}}/{{shard}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        entry=collection_entry,
    script:
        "../scripts/tag_collection_shard.py"


rule tag_collection:
    input:
        unpack(collection_shard_tables),
        checkpoint=collection_checkpoint,
    output:
        table=f"{RESULTS}/collections/{{collection}}/tags.parquet",
        failed=f"{RESULTS}/collections/{{collection}}/failed.parquet",
    log:
        f"{RESULTS}/logs/tag_collection/{{collection}}.log",
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/tag_collection.py"
