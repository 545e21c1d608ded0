"""Rule fewshot_model: few-shot personal tags with one model (prototypes, fine-tuning)."""

from pathlib import Path

import pandas as pd
import torch

from pipeline.fewshot.episodes import evaluate_fewshot
from pipeline.io.files import read_json, rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    torch.set_num_threads(smk.threads)
    table = evaluate_fewshot(
        checkpoint=Path(smk.input.checkpoint),
        index=pd.read_parquet(smk.input.index),
        vocabulary=read_json(smk.input.vocabulary)["tags"],
        split=smk.params.split,
        settings=smk.params.fewshot,
    )
    table.insert(0, "target", smk.params.fewshot["target"])
    table.insert(0, "model", smk.wildcards.model)
    table.insert(0, "dataset", smk.wildcards.dataset)
    table.to_csv(smk.output.episodes, index=False)
