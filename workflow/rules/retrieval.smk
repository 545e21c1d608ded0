# Similarity search: track embeddings of a model, a metric-learning projection (triplet loss
# on the tag-similarity ranking), retrieval metrics on the evaluation split, and an index.


rule embed_model:
    input:
        checkpoint=f"{RESULTS}/{{dataset}}/models/{{model}}/checkpoint.pt",
        index=model_index,
    output:
        embeddings=f"{RESULTS}/{{dataset}}/models/{{model}}/embeddings.parquet",
    log:
        f"{RESULTS}/logs/embed_model/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/embed_model/{{dataset}}/{{model}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/embed_model.py"


rule metric_learning:
    input:
        embeddings=f"{RESULTS}/{{dataset}}/models/{{model}}/embeddings.parquet",
    output:
        projection=f"{RESULTS}/{{dataset}}/models/{{model}}/retrieval/projection.pt",
        history=f"{RESULTS}/{{dataset}}/models/{{model}}/retrieval/triplet_history.csv",
    log:
        f"{RESULTS}/logs/metric_learning/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/metric_learning/{{dataset}}/{{model}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        retrieval=config["retrieval"],
    script:
        "../scripts/metric_learning.py"


rule evaluate_retrieval:
    input:
        unpack(retrieval_inputs),
    output:
        metrics=f"{RESULTS}/{{dataset}}/models/{{model}}/retrieval/metrics.json",
    log:
        f"{RESULTS}/logs/evaluate_retrieval/{{dataset}}/{{model}}.log",
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        retrieval=config["retrieval"],
        split=config["evaluation"]["split"],
        bootstrap=config["evaluation"]["bootstrap"],
    script:
        "../scripts/evaluate_retrieval.py"


rule similarity_index:
    input:
        unpack(index_inputs),
    output:
        index=f"{RESULTS}/{{dataset}}/models/{{model}}/similarity/index.parquet",
    log:
        f"{RESULTS}/logs/similarity_index/{{dataset}}/{{model}}.log",
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/similarity_index.py"


rule retrieval_table:
    input:
        retrieval_table_inputs,
    output:
        csv=f"{RESULTS}/retrieval.csv",
        md=f"{RESULTS}/retrieval.md",
        html=report(
            f"{RESULTS}/retrieval.html",
            caption="../report/retrieval.rst",
            category="Leaderboard",
        ),
    log:
        f"{RESULTS}/logs/retrieval_table.log",
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        retrieval=config["retrieval"],
        split=config["evaluation"]["split"],
    script:
        "../scripts/retrieval_table.py"
