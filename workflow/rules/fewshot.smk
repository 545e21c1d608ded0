# Few-shot personal tags: prototypes on frozen embeddings and fine-tuning of a checkpoint,
# ROC-AUC on held-out tracks against the number of examples per tag. One job per number of
# shots (one thread each): the episodes of different shots are independent (their own seeds),
# and one-thread jobs keep every core busy where one multi-threaded job would not.


rule fewshot_model:
    input:
        unpack(fewshot_inputs),
    output:
        episodes=f"{RESULTS}/{{dataset}}/models/{{model}}/fewshot/shots-{{shots}}.csv",
    log:
        f"{RESULTS}/logs/fewshot_model/{{dataset}}/{{model}}/shots-{{shots}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fewshot_model/{{dataset}}/{{model}}/shots-{{shots}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
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
