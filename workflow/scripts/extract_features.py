"""Rule extract_features: one feature set of one shard into a Zarr store + failure table."""

from pathlib import Path

from pipeline.features.extract import extract_shard, read_tracks
from pipeline.features.settings import FeatureSettings
from pipeline.io.files import rule_errors

smk = snakemake  # noqa: F821 - injected by Snakemake
with rule_errors(smk.log[0]):
    extract_shard(
        tracks=read_tracks(Path(smk.input.tracks)),
        settings=FeatureSettings.from_dict(smk.params.features, name=smk.wildcards.features),
        store_path=Path(smk.output.store),
        failed_path=Path(smk.output.failed),
        threads=smk.threads,
        compression=smk.params.storage["compression"],
        windows_per_shard=smk.params.storage["windows_per_shard"],
        tracks_per_task=smk.params.tracks_per_task,
        attrs={"dataset": smk.wildcards.dataset, "shard": smk.wildcards.shard},
        dask_scheduler=smk.params.dask_scheduler,
    )
