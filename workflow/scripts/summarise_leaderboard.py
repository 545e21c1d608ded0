"""Rule summarise_leaderboard: the landing page of `snakemake --report` (workflow description
and the leaderboard's summary)."""

from pathlib import Path

import pandas as pd

from pipeline.evaluation.landing import landing_page
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    page = landing_page(
        intro=Path(smk.input.intro).read_text(encoding="utf-8"),
        table=pd.read_csv(smk.input.leaderboard),
    )
    Path(smk.output.page).write_text(page, encoding="utf-8")
