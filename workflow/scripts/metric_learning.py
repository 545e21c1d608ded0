"""Rule metric_learning: a triplet-loss projection of a model's embeddings (train split)."""

import pandas as pd
import torch

from pipeline.io.files import rule_errors
from pipeline.retrieval.evaluate import train_metric_projection

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    torch.set_num_threads(smk.threads)
    train_metric_projection(
        embeddings=pd.read_parquet(smk.input.embeddings),
        retrieval=smk.params.retrieval,
        out_projection=smk.output.projection,
        out_history=smk.output.history,
    )
