# One leaderboard across all models and datasets (CSV, Markdown, HTML); `snakemake --report`.


rule leaderboard:
    input:
        unpack(leaderboard_inputs),
    output:
        csv=f"{RESULTS}/leaderboard.csv",
        md=f"{RESULTS}/leaderboard.md",
        html=report(
            f"{RESULTS}/leaderboard.html",
            caption="../report/leaderboard.rst",
            category="Leaderboard",
        ),
        plot=report(
            f"{RESULTS}/leaderboard.png",
            caption="../report/leaderboard_plot.rst",
            category="Leaderboard",
        ),
    log:
        f"{RESULTS}/logs/leaderboard.log",
    benchmark:
        f"{RESULTS}/benchmarks/leaderboard.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        leaderboard=leaderboard_params,
    script:
        "../scripts/leaderboard.py"


# The landing page of `snakemake --report` (the Snakefile's `report:` points at it once it
# exists): the workflow's description and, per dataset, the best models.
rule summarise_leaderboard:
    input:
        leaderboard=f"{RESULTS}/leaderboard.csv",
        intro=workflow.source_path("../report/workflow.rst"),
    output:
        page=f"{RESULTS}/leaderboard_summary.rst",
    log:
        f"{RESULTS}/logs/summarise_leaderboard.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarise_leaderboard.tsv"
    conda:
        "../../envs/pipeline.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/summarise_leaderboard.py"
