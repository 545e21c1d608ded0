"""Rule evaluate_retrieval: MAP@k, Recall@k, MRR, nDCG@k of a model's embedding spaces."""

import pandas as pd

from pipeline.io.files import rule_errors, write_json
from pipeline.retrieval.evaluate import evaluate_retrieval

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    rows = evaluate_retrieval(
        embeddings=pd.read_parquet(smk.input.embeddings),
        projection=smk.input.get("projection"),
        split=smk.params.split,
        k=smk.params.retrieval["k"],
        relevance_threshold=smk.params.retrieval["relevance_threshold"],
        bootstrap=smk.params.bootstrap,
    )
    write_json(
        [{"dataset": smk.wildcards.dataset, "model": smk.wildcards.model, **r} for r in rows],
        smk.output.metrics,
        non_finite="null",  # a mean over no query (NaN) is written as null
    )
