"""Checkpoint build_manifest: manifest, vocabulary, summary (every audio file checked), the
failure rows of missing audio and the per-shard track lists of a dataset."""

from pathlib import Path

from pipeline.datasets.manifest import make_manifest
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    source = smk.params.source
    make_manifest(
        entry=source["options"],
        format=source["format"],
        root=Path(source["root"]),
        manifest_path=Path(smk.output.manifest),
        vocabulary_path=Path(smk.output.vocabulary),
        shard_dir=Path(smk.params.shard_dir),
        dataset=smk.wildcards.dataset,
        summary_path=Path(smk.output.summary),
        failed_path=Path(smk.output.failed),
    )
