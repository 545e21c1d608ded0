# Prediction and evaluation of each trained model on the evaluation split of its dataset.


rule predict_model:
    input:
        checkpoint=f"{RESULTS}/{{dataset}}/models/{{model}}/checkpoint.pt",
        index=model_index,
    output:
        eval_songs=f"{RESULTS}/{{dataset}}/models/{{model}}/predictions/eval_songs.parquet",
        eval_windows=f"{RESULTS}/{{dataset}}/models/{{model}}/predictions/eval_windows.parquet",
        valid_songs=f"{RESULTS}/{{dataset}}/models/{{model}}/predictions/valid_songs.parquet",
        valid_windows=f"{RESULTS}/{{dataset}}/models/{{model}}/predictions/valid_windows.parquet",
        eval_chunks=f"{RESULTS}/{{dataset}}/models/{{model}}/predictions/eval_chunks.parquet",
    log:
        f"{RESULTS}/logs/predict_model/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict_model/{{dataset}}/{{model}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        split=config["evaluation"]["split"],
        taggram_tracks=config["evaluation"]["taggram_tracks"],
    script:
        "../scripts/predict_model.py"


rule evaluate_model:
    input:
        unpack(prediction_tables),
        history=f"{RESULTS}/{{dataset}}/models/{{model}}/history.csv",
        vocabulary=f"{RESULTS}/{{dataset}}/vocabulary.json",
    output:
        metrics=f"{RESULTS}/{{dataset}}/models/{{model}}/evaluation/metrics.json",
        per_tag=f"{RESULTS}/{{dataset}}/models/{{model}}/evaluation/per_tag.csv",
        scores=f"{RESULTS}/{{dataset}}/models/{{model}}/evaluation/scores.parquet",
        per_tag_plot=report(
            f"{RESULTS}/{{dataset}}/models/{{model}}/evaluation/per_tag_auc.png",
            caption="../report/per_tag_auc.rst",
            category="Per-tag AUC",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}"},
        ),
        curves=report(
            f"{RESULTS}/{{dataset}}/models/{{model}}/evaluation/curves.png",
            caption="../report/curves.rst",
            category="ROC and PR curves",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}"},
        ),
        training=report(
            f"{RESULTS}/{{dataset}}/models/{{model}}/evaluation/training.png",
            caption="../report/training.rst",
            category="Training curves",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}"},
        ),
        taggrams=report(
            directory(f"{RESULTS}/{{dataset}}/models/{{model}}/evaluation/taggrams"),
            patterns=["{name}.png"],
            caption="../report/taggram.rst",
            category="Taggrams",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}", "track": "{name}"},
        ),
    log:
        f"{RESULTS}/logs/evaluate_model/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_model/{{dataset}}/{{model}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        evaluation=config["evaluation"],
    script:
        "../scripts/evaluate_model.py"
