"""Rule index_features: one index of all shard stores, all failures, and a summary."""

from pathlib import Path

from pipeline.features.index import write_feature_index
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    write_feature_index(
        manifest_path=Path(smk.input.manifest),
        stores=[Path(p) for p in smk.input.stores],
        failed=[Path(p) for p in smk.input.failed],
        index_path=Path(smk.output.index),
        failed_path=Path(smk.output.failed),
        summary_path=Path(smk.output.summary),
    )
