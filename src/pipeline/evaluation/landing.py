"""The landing page of ``snakemake --report``: the workflow's description and a summary of the
leaderboard, as reStructuredText.

The rule ``summarise_leaderboard`` writes :func:`landing_page` of ``results/leaderboard.csv``
to ``results/leaderboard_summary.rst``, and the Snakefile's ``report:`` directive points at it
once it exists (:func:`pipeline.config.workflow_inputs.landing_page`). Per dataset it names the
best model by macro ROC-AUC, the runner-up and the gap between them, then lists every model
with its macro ROC-AUC and PR-AUC. Snakemake renders the page with Jinja, so the intro may use
``{{ snakemake.config[...] }}``; names (``[A-Za-z0-9_-]``, checked by the config schema) are
written as literals.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["landing_page", "leaderboard_summary"]

#: The leaderboard columns the summary reads.
SUMMARY_COLUMNS = ("dataset", "model", "macro_roc_auc", "macro_pr_auc", "split", "aggregation")


def _score(value: Any) -> str:
    """A metric with three decimals, or an en dash when there is none (NaN, None)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{number:.3f}" if math.isfinite(number) else "–"


def _heading(text: str, underline: str) -> list[str]:
    return [text, underline * len(text), ""]


def leaderboard_summary(table: pd.DataFrame) -> str:
    """The summary section of the landing page (reStructuredText).

    Parameters
    ----------
    table : pd.DataFrame
        The leaderboard (``results/leaderboard.csv``), with at least :data:`SUMMARY_COLUMNS`.

    Returns
    -------
    str
        Per dataset: the best model and the runner-up by macro ROC-AUC (models without a
        value last), and a table of every model, best first.

    Raises
    ------
    ValueError
        A column of :data:`SUMMARY_COLUMNS` is missing (the message names it).
    """
    missing = [c for c in SUMMARY_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the leaderboard lacks column(s) {missing}")
    lines = _heading("Leaderboard summary", "-")
    if table.empty:
        return "\n".join([*lines, "No model has been evaluated yet.", ""])
    for dataset, rows in table.groupby("dataset", sort=True):
        rows = rows.assign(_auc=pd.to_numeric(rows["macro_roc_auc"], errors="coerce"))
        rows = rows.sort_values(["_auc", "model"], ascending=[False, True], na_position="last")
        lines += _heading(f"Dataset ``{dataset}``", "~")
        best = rows.iloc[0]
        text = (
            f"{len(rows)} model(s) evaluated on the ``{best['split']}`` split. Best macro "
            f"ROC-AUC: ``{best['model']}`` with {_score(best['macro_roc_auc'])} (macro PR-AUC "
            f"{_score(best['macro_pr_auc'])}, {best['aggregation']} aggregation)"
        )
        if len(rows) > 1:
            second = rows.iloc[1]
            gap = best["_auc"] - second["_auc"]
            text += (
                f", ahead of ``{second['model']}`` with {_score(second['macro_roc_auc'])} "
                f"(a difference of {_score(gap)})"
            )
        lines += [text + ".", ""]
        lines += [
            ".. list-table::",
            "   :header-rows: 1",
            "",
            "   * - model",
            "     - macro ROC-AUC",
            "     - macro PR-AUC",
        ]
        for _, row in rows.iterrows():
            lines += [
                f"   * - ``{row['model']}``",
                f"     - {_score(row['macro_roc_auc'])}",
                f"     - {_score(row['macro_pr_auc'])}",
            ]
        lines.append("")
    lines.append(
        "The full table, with micro averages, parameters and training time, is under "
        "Leaderboard in this report."
    )
    return "\n".join(lines) + "\n"


def landing_page(*, intro: str, table: pd.DataFrame) -> str:
    """The whole landing page: ``intro`` (``workflow/report/workflow.rst``) and the summary."""
    return intro.rstrip("\n") + "\n\n" + leaderboard_summary(table)
