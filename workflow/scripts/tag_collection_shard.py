"""Rule tag_collection_shard: tag one shard of a collection's files (tags and embeddings)."""

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import torch

from pipeline.collection import shard_tracks, tag_files
from pipeline.inference.file_tagger import FileTagger
from pipeline.inference.loading import load_tagger
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    torch.set_num_threads(smk.threads)
    entry = smk.params.entry
    tracks = shard_tracks(
        pd.read_parquet(smk.input.tracks), shard=int(smk.wildcards.shard), n_shards=entry["shards"]
    )
    tagger = load_tagger(Path(smk.input.checkpoint))
    file_tagger = FileTagger(tagger, embed=True, max_duration_s=entry["max_duration_s"])
    table, failures = tag_files(tracks=tracks, file_tagger=file_tagger, top=entry["top"])
    pq.write_table(table, smk.output.table)
    failures.to_parquet(smk.output.failed, index=False)
