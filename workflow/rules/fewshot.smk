# Few-shot personal tags: prototypes on frozen embeddings and fine-tuning of a checkpoint,
# ROC-AUC on held-out tracks against the number of examples per tag.


rule fewshot_model:
    input:
        unpack(fewshot_inputs),
    output:
        episodes=f"{RESULTS}/{{dataset}}/models/{{model}}/fewshot/episodes.csv",
    log:
        f"{RESULTS}/logs/fewshot_model/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fewshot_model/{{dataset}}/{{model}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        fewshot=fewshot_params,
        split=config["evaluation"]["split"],
    script:
        "../scripts/fewshot_model.py"


rule fewshot_table:
    input:
        fewshot_table_inputs,
    output:
        csv=f"{RESULTS}/fewshot.csv",
        md=f"{RESULTS}/fewshot.md",
        html=report(
            f"{RESULTS}/fewshot.html",
            caption="../report/fewshot.rst",
            category="Leaderboard",
        ),
    log:
        f"{RESULTS}/logs/fewshot_table.log",
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        fewshot=config["fewshot"],
        split=config["evaluation"]["split"],
    script:
        "../scripts/fewshot_table.py"
