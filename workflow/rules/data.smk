# Generated inputs: the embedded demo dataset, and audio rendered from a folder of scores.


rule build_demo_dataset:
    output:
        tracks=f"{RESOURCES}/{{dataset}}/tracks.csv",
        audio=directory(f"{RESOURCES}/{{dataset}}/audio"),
        licence=f"{RESOURCES}/{{dataset}}/LICENSE.md",
    log:
        f"{RESULTS}/logs/build_demo_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_demo_dataset/{{dataset}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: workflow.cores
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        demo=generator_params,
    script:
        "../scripts/build_demo_dataset.py"


rule render_scores:
    input:
        unpack(generator_inputs),
    output:
        tracks=f"{RESOURCES}/{{dataset}}/rendered/tracks.csv",
        audio=directory(f"{RESOURCES}/{{dataset}}/rendered/audio"),
    log:
        f"{RESULTS}/logs/render_scores/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/render_scores/{{dataset}}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: workflow.cores
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        scores=generator_params,
    script:
        "../scripts/render_scores.py"
