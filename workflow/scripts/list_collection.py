"""Rule list_collection: the files of a collection (a folder, or a dataset's manifest)."""

import pandas as pd

from pipeline.collection import list_folder
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    entry = smk.params.entry
    if "dataset" in entry:
        tracks = pd.read_parquet(smk.input.manifest, columns=["track_id", "path"])
    else:
        tracks = list_folder(root=entry["root"], patterns=entry["patterns"])
    tracks.to_parquet(smk.output.tracks, index=False)
