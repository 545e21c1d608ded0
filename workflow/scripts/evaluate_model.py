"""Rule evaluate_model: metrics of every aggregation, per-tag table and plots."""

from pathlib import Path

from pipeline.evaluation.evaluate import write_evaluation
from pipeline.io.files import read_json, rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    evaluation = smk.params.evaluation
    names = ("eval_songs", "eval_windows", "valid_songs", "valid_windows", "eval_chunks")
    write_evaluation(
        predictions={name: Path(smk.input[name]) for name in names},
        history=Path(smk.input.history),
        out_dir=Path(smk.output.metrics).parent,
        tags=read_json(smk.input.vocabulary)["tags"],
        aggregations=evaluation["aggregations"],
        leaderboard_aggregation=evaluation["leaderboard_aggregation"],
        split=evaluation["split"],
        title=f"{smk.wildcards.model} on {smk.wildcards.dataset}",
        taggram_dir=Path(smk.output.taggrams),
        taggram_tracks=evaluation["taggram_tracks"],
    )
