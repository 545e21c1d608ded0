"""The Snakemake Workflow Catalog's conventions: .snakemake-workflow-catalog.yml states only
what the repository holds (a conda environment for every rule, a report with a landing page,
a configuration reference)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CATALOG = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text(encoding="utf-8"))


def test_the_catalog_file_has_the_catalogs_keys() -> None:
    usage = CATALOG["usage"]
    assert set(usage) == {"mandatory-flags", "software-stack-deployment"}
    assert set(usage["mandatory-flags"]) == {"desc", "flags"}
    deployment = usage["software-stack-deployment"]
    assert set(deployment) == {"conda", "apptainer", "apptainer+conda", "report"}
    assert all(isinstance(v, bool) for v in deployment.values())


def _rules() -> list[str]:
    text = "\n".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    return re.split(r"\n(?=(?:checkpoint|rule) \w+:)", text)[1:]


def test_conda_deployment_means_every_job_has_the_environment() -> None:
    assert CATALOG["usage"]["software-stack-deployment"]["conda"] is True
    rules = _rules()
    assert len(rules) > 15
    for rule in rules:
        name = rule.split(":", 1)[0]
        assert 'conda:\n        "../../envs/pipeline.yaml"' in rule, name
    assert (REPO / "envs" / "pipeline.yaml").is_file()


def test_report_has_a_landing_page_and_config_a_reference() -> None:
    assert CATALOG["usage"]["software-stack-deployment"]["report"] is True
    assert "report: landing_page()" in (REPO / "Snakefile").read_text()
    assert (REPO / "workflow" / "report" / "workflow.rst").is_file()
    assert (REPO / "config" / "README.md").read_text().startswith("<!-- Generated from")
