"""Rule similarity_index: a dataset's embedding index for `pipeline similar`."""

import pandas as pd

from pipeline.io.files import rule_errors
from pipeline.retrieval.similarity import build_index

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    build_index(
        embeddings=pd.read_parquet(smk.input.embeddings),
        manifest=pd.read_parquet(smk.input.manifest, columns=["track_id", "path"]),
        checkpoint=smk.input.checkpoint,
        projection=smk.input.get("projection"),
        out=smk.output.index,
    )
