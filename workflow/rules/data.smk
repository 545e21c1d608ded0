# Generated inputs: the embedded demo dataset, and audio rendered from a folder of scores.


def demo_params(wildcards):
    entry = dataset_entry(wildcards)
    return {
        "n_clips": entry.get("n_clips", 200),
        "clip_s": entry.get("clip_s", 20.0),
        "seed": entry.get("seed", 0),
    }


def scores_params(wildcards):
    entry = dataset_entry(wildcards)
    keys = ("table", "sep", "tag_sep", "clip_s", "tempo_qpm", "program")
    return {"root": entry["root"], **{k: entry[k] for k in keys if k in entry}}


rule build_demo_dataset:
    output:
        tracks=f"{RESOURCES}/{{dataset}}/tracks.csv",
        audio=directory(f"{RESOURCES}/{{dataset}}/audio"),
        licence=f"{RESOURCES}/{{dataset}}/LICENSE.md",
    log:
        f"{RESULTS}/logs/build_demo_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_demo_dataset/{{dataset}}.tsv"
    params:
        demo=demo_params,
    threads: workflow.cores
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/build_demo_dataset.py"


rule render_scores:
    output:
        tracks=f"{RESOURCES}/{{dataset}}/rendered/tracks.csv",
        audio=directory(f"{RESOURCES}/{{dataset}}/rendered/audio"),
    log:
        f"{RESULTS}/logs/render_scores/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/render_scores/{{dataset}}.tsv"
    params:
        scores=scores_params,
    threads: workflow.cores
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/pipeline.yaml"
    script:
        "../scripts/render_scores.py"
