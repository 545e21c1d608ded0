"""Rule fewshot_table: ROC-AUC against examples per tag, every model and method."""

from pipeline.fewshot.table import write_fewshot_table
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    write_fewshot_table(
        episodes=list(smk.input),
        out_csv=smk.output.csv,
        out_md=smk.output.md,
        out_html=smk.output.html,
        split=smk.params.split,
    )
