# Training: one job per (dataset, model); CUDA with mixed precision when the job has a GPU.


rule train_model:
    input:
        unpack(train_inputs),
    output:
        checkpoint=f"{RESULTS}/{{dataset}}/models/{{model}}/checkpoint.pt",
        history=f"{RESULTS}/{{dataset}}/models/{{model}}/history.csv",
        summary=f"{RESULTS}/{{dataset}}/models/{{model}}/train_summary.json",
    log:
        f"{RESULTS}/logs/train_model/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_model/{{dataset}}/{{model}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: model_threads
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        model=model_params,
    script:
        "../scripts/train_model.py"
