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
