"""Rule predict_model: song and window predictions on the evaluated and validation splits,
and the chunk taggrams of the first evaluated tracks (models that score short chunks)."""

from pathlib import Path

import pandas as pd

from pipeline.evaluation.predict import predict_chunks, predict_split
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
    predict_chunks(
        checkpoint=Path(smk.input.checkpoint),
        index=index,
        split=smk.params.split,
        n_tracks=smk.params.taggram_tracks,
    ).to_parquet(smk.output.eval_chunks, index=False)
