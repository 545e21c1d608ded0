"""Rule extract_features: one feature set of one shard into a Zarr store + failure table
(decoding the audio, or from the shard's log-mel store when the set derives from it)."""

from pathlib import Path

from pipeline.features.extract import derive_shard, extract_shard, read_tracks
from pipeline.features.settings import FeatureSettings
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    settings = FeatureSettings.from_dict(smk.params.features, name=smk.wildcards.features)
    storage = {
        "compression": smk.params.storage["compression"],
        "windows_per_shard": smk.params.storage["windows_per_shard"],
    }
    common = {
        "settings": settings,
        "store_path": Path(smk.output.store),
        "failed_path": Path(smk.output.failed),
        "threads": smk.threads,
        "attrs": {"dataset": smk.wildcards.dataset, "shard": smk.wildcards.shard},
        **storage,
    }
    source = getattr(smk.input, "source", None)  # [store, failures] of a log-mel set, or []
    if source:
        source_store, source_failed = source
        derive_shard(source_store=Path(source_store), source_failed=Path(source_failed), **common)
    else:
        extract_shard(
            tracks=read_tracks(Path(smk.input.tracks)),
            tracks_per_task=smk.params.tracks_per_task,
            dask_scheduler=smk.params.dask_scheduler,
            **common,
        )
