"""Rule train_model: train one configured model on one dataset."""

from pathlib import Path

from pipeline.io.files import rule_errors
from pipeline.training.run import run_training

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    run_training(
        model=smk.params.model,
        index_path=Path(smk.input.index),
        stats_path=Path(smk.input.stats),
        vocabulary_path=Path(smk.input.vocabulary),
        out_dir=Path(smk.output.checkpoint).parent,
        threads=smk.threads,
        network_checkpoint=Path(smk.input.network) if "network" in smk.input.keys() else None,
    )
