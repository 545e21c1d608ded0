"""Rule leaderboard: one table of all models on all datasets (CSV, Markdown, HTML)."""

from pipeline.evaluation.leaderboard import write_leaderboard_from
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    p = smk.params.leaderboard
    write_leaderboard_from(
        pairs=p["pairs"],
        models=p["models"],
        features=p["features"],
        metrics=list(smk.input.metrics),
        summaries=list(smk.input.summaries),
        scores=list(smk.input.scores),
        bootstrap=p["bootstrap"],
        out_csv=smk.output.csv,
        out_md=smk.output.md,
        out_html=smk.output.html,
        out_png=smk.output.plot,
        dataset_splits=p.get("dataset_splits"),
    )
