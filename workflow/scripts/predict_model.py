"""Rule predict_model: song and window predictions on the evaluated and validation splits."""

from pathlib import Path

import pandas as pd

from pipeline.evaluation.predict import predict_split
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    index = pd.read_parquet(smk.input.index)
    for prefix, split in (("eval", smk.params.split), ("valid", "valid")):
        songs, windows = predict_split(
            checkpoint=Path(smk.input.checkpoint), index=index, split=split
        )
        songs.to_parquet(smk.output[f"{prefix}_songs"], index=False)
        windows.to_parquet(smk.output[f"{prefix}_windows"], index=False)
