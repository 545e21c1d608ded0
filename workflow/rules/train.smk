# Training: one job per (dataset, model); CUDA with mixed precision when the job has a GPU.
# probe_layers: one probe per layer of a pretrained encoder (models with layer_table: true).


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


rule probe_layers:
    input:
        unpack(train_inputs),
    output:
        table=f"{RESULTS}/{{dataset}}/models/{{model}}/layers/layers.csv",
        plot=f"{RESULTS}/{{dataset}}/models/{{model}}/layers/layers.png",
    log:
        f"{RESULTS}/logs/probe_layers/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/probe_layers/{{dataset}}/{{model}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: model_threads
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        model=model_params,
    script:
        "../scripts/probe_layers.py"
