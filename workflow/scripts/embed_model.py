"""Rule embed_model: the track embedding of every stored track, all splits."""

from pathlib import Path

import pandas as pd
import torch

from pipeline.evaluation.predict import embed_tracks
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    torch.set_num_threads(smk.threads)
    table = embed_tracks(
        checkpoint=Path(smk.input.checkpoint), index=pd.read_parquet(smk.input.index)
    )
    table.to_parquet(smk.output.embeddings, index=False)
