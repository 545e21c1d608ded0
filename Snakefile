# Music auto-tagging workflow: raw audio + tags -> manifest -> Zarr features -> (models).
# Rules live in workflow/rules, one file per stage; logic lives in src/pipeline.
# Usage: snakemake --cores all            (see README.md)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/manifest.smk"
include: "workflow/rules/features.smk"


rule all:
    input:
        all_targets(),
    default_target: True
