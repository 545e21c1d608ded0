"""Rule probe_layers: one probe per stored encoder layer, a table and a plot."""

from pathlib import Path

import torch

from pipeline.io.files import rule_errors
from pipeline.training.probe_layers import train_layer_probes

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    torch.set_num_threads(max(smk.threads, 1))
    train_layer_probes(
        model=smk.params.model,
        index_path=Path(smk.input.index),
        stats_path=Path(smk.input.stats),
        vocabulary_path=Path(smk.input.vocabulary),
        out_dir=Path(smk.output.table).parent,
    )
