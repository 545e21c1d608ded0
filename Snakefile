# Music auto-tagging workflow: raw audio + tags -> manifest -> Zarr features -> trained,
# evaluated taggers -> one leaderboard.
# Rules live in workflow/rules, one file per stage; logic lives in src/pipeline.
# Usage: snakemake --cores all            (see README.md)


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    features=r"[A-Za-z0-9_-]+",
    shard=r"\d{4}",
    model=r"[A-Za-z0-9_-]+",
    collection=r"[A-Za-z0-9_-]+",
    shots=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/manifest.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/collections.smk"
include: "workflow/rules/retrieval.smk"
include: "workflow/rules/fewshot.smk"


# The landing page of `snakemake --report`: the leaderboard's summary once it is written.
report: landing_page()


rule all:
    default_target: True
    input:
        all_targets(),
