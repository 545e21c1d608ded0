"""The report's landing page: the leaderboard summarised per dataset, valid reStructuredText
that Snakemake's Jinja and docutils render."""

from __future__ import annotations

import math

import jinja2
import pandas as pd
import pytest
from docutils.core import publish_parts

from pipeline.evaluation.landing import landing_page, leaderboard_summary
from tests.helpers.config import REPO


def _table() -> pd.DataFrame:
    common = {"split": "test", "aggregation": "mean"}
    return pd.DataFrame(
        [
            {"dataset": "demo", "model": "fcn", "macro_roc_auc": 0.808, "macro_pr_auc": 0.41},
            {"dataset": "demo", "model": "musicnn", "macro_roc_auc": 0.837, "macro_pr_auc": 0.45},
            {"dataset": "demo", "model": "broken", "macro_roc_auc": math.nan, "macro_pr_auc": None},
            {"dataset": "gtzan", "model": "fcn", "macro_roc_auc": 0.9, "macro_pr_auc": 0.6},
        ]
    ).assign(**common)


def test_best_model_runner_up_and_gap_per_dataset() -> None:
    text = leaderboard_summary(_table())
    demo, gtzan = text.split("Dataset ``demo``")[1].split("Dataset ``gtzan``")
    assert (
        "3 model(s) evaluated on the ``test`` split. Best macro ROC-AUC: ``musicnn`` with "
        "0.837 (macro PR-AUC 0.450, mean aggregation), ahead of ``fcn`` with 0.808 "
        "(a difference of 0.029)." in " ".join(demo.split())
    )
    rows = [line.strip() for line in demo.splitlines() if line.strip().startswith("* - ``")]
    assert rows == ["* - ``musicnn``", "* - ``fcn``", "* - ``broken``"]  # best first, NaN last
    assert "- –" in demo  # a missing value is a dash, never nan
    assert "1 model(s)" in gtzan and "ahead of" not in gtzan


def test_an_empty_leaderboard_and_missing_columns() -> None:
    empty = pd.DataFrame(
        columns=["dataset", "model", "macro_roc_auc", "macro_pr_auc", "split", "aggregation"]
    )
    assert "No model has been evaluated yet." in leaderboard_summary(empty)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['split'\]"):
        leaderboard_summary(_table().drop(columns="split"))


def test_the_page_renders_as_snakemake_renders_it() -> None:
    intro = (REPO / "workflow" / "report" / "workflow.rst").read_text(encoding="utf-8")
    page = landing_page(intro=intro, table=_table())

    class Snakemake:  # what snakemake's report passes to the template
        config = {"evaluation": {"split": "test"}, "datasets": {"demo": {}}, "models": {"fcn": {}}}

    rendered = jinja2.Environment().from_string(page).render(snakemake=Snakemake)
    html = publish_parts(
        rendered, writer="html", settings_overrides={"report_level": 2, "halt_level": 2}
    )["html_body"]  # halt_level 2: a docutils warning (bad markup) raises
    assert "Leaderboard summary" in html and "<table" in html
    assert (
        "musicnn" in html
        and "0.837" in html
        and "Datasets: demo; models:" in " ".join(html.split())
    )
