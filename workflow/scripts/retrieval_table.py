"""Rule retrieval_table: retrieval metrics of every model and space (CSV, Markdown, HTML)."""

from pipeline.io.files import rule_errors
from pipeline.retrieval.table import write_retrieval_table

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    write_retrieval_table(
        metrics=list(smk.input),
        out_csv=smk.output.csv,
        out_md=smk.output.md,
        out_html=smk.output.html,
        split=smk.params.split,
        k=smk.params.retrieval["k"],
        relevance_threshold=smk.params.retrieval["relevance_threshold"],
    )
