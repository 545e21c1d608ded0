"""Rule evaluate_retrieval: MAP@k, Recall@k, MRR, nDCG@k of a model's embedding spaces."""

import pandas as pd

from pipeline.io.files import configure_logging, write_json
from pipeline.retrieval.evaluate import evaluate_retrieval

smk = snakemake  # noqa: F821 - injected by Snakemake
configure_logging(log_path=smk.log[0])
rows = evaluate_retrieval(
    embeddings=pd.read_parquet(smk.input.embeddings),
    projection=smk.input.get("projection"),
    split=smk.params.split,
    k=smk.params.retrieval["k"],
    relevance_threshold=smk.params.retrieval["relevance_threshold"],
)
write_json(
    [{"dataset": smk.wildcards.dataset, "model": smk.wildcards.model, **r} for r in rows],
    smk.output.metrics,
)
