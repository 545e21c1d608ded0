# Music auto-tagging workflow: raw audio + tags -> manifest -> Zarr features -> (models).
# Rules live in workflow/rules, one file per stage; logic lives in src/pipeline.
# Usage: snakemake --cores all            (see README.md)


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    features=r"[A-Za-z0-9_-]+",
    shard=r"\d{4}",


include: "workflow/rules/data.smk"
include: "workflow/rules/manifest.smk"
include: "workflow/rules/features.smk"


rule all:
    default_target: True
    input:
        all_targets(),
