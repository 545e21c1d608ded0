"""Rule retrieval_table: retrieval metrics of every model and space (CSV, Markdown, HTML)."""

from pipeline.io.files import configure_logging
from pipeline.retrieval.table import write_retrieval_table

smk = snakemake  # noqa: F821 - injected by Snakemake
configure_logging(log_path=smk.log[0])
write_retrieval_table(
    metrics=list(smk.input),
    out_csv=smk.output.csv,
    out_md=smk.output.md,
    out_html=smk.output.html,
    split=smk.params.split,
    k=smk.params.retrieval["k"],
    relevance_threshold=smk.params.retrieval["relevance_threshold"],
)
