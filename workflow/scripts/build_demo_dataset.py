"""Rule build_demo_dataset: render the embedded demo dataset from the music21 corpus."""

from pathlib import Path

from pipeline.datasets.rendering.demo import build_demo_dataset
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    build_demo_dataset(
        out_dir=Path(smk.output.tracks).parent,
        n_clips=smk.params.demo["n_clips"],
        clip_s=smk.params.demo["clip_s"],
        seed=smk.params.demo["seed"],
        workers=smk.threads,
    )
