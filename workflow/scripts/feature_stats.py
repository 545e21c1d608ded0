"""Rule feature_stats: per-band mean and std of the train split (a Dask reduction)."""

import pandas as pd

from pipeline.features.stats import band_statistics
from pipeline.io.files import rule_errors, write_json

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    stats = band_statistics(
        index=pd.read_parquet(smk.input.index),
        split=smk.params.split,
        threads=smk.threads,
        dask_scheduler=smk.params.dask_scheduler,
    )
    write_json(stats, smk.output.stats)
