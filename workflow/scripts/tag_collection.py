"""Rule tag_collection: join a collection's shard tables (also a similarity index)."""

import pandas as pd

from pipeline.collection import FAILURE_COLUMNS, merge_shards
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    merge_shards(
        tables=list(smk.input.tables), out=smk.output.table, checkpoint=smk.input.checkpoint
    )
    failed = [pd.read_parquet(path) for path in smk.input.failed]
    pd.concat(failed, ignore_index=True).reindex(columns=FAILURE_COLUMNS).to_parquet(
        smk.output.failed, index=False
    )
