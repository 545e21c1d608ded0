"""The few-shot table: mean and standard deviation over episodes of the macro ROC-AUC and
PR-AUC, per model, method and number of examples per tag, as CSV, Markdown and HTML.

Light on purpose (pandas only): the ``fewshot_table`` job only reads small CSV files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipeline.errors import PipelineError
from pipeline.evaluation.tables import write_table

__all__ = ["SUMMARY_COLUMNS", "summarise_fewshot", "write_fewshot_table", "FEWSHOT_COLUMNS"]


#: Columns of :func:`summarise_fewshot`'s table: one row per (method, shots).
SUMMARY_COLUMNS = [
    "method",
    "shots",
    "episodes",
    "n_tags",
    "roc_auc_mean",
    "roc_auc_std",
    "pr_auc_mean",
    "pr_auc_std",
]


def summarise_fewshot(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over episodes of :func:`run_fewshot`'s table.

    Parameters
    ----------
    table : pd.DataFrame
        With :data:`FEWSHOT_COLUMNS`.

    Returns
    -------
    pd.DataFrame
        :data:`SUMMARY_COLUMNS`, one row per (method, shots), methods in their first order,
        shots ascending: ``episodes`` (episodes with a score), ``n_tags`` (mean tags scored
        in them), means and sample standard deviations (ddof 1, NaN for one episode) of the
        macro ROC-AUC and PR-AUC.
    """
    missing = [c for c in FEWSHOT_COLUMNS if c not in table]
    if missing:
        raise PipelineError(f"the few-shot table lacks column(s) {missing}")
    order = {m: k for k, m in enumerate(pd.unique(table["method"]))}
    rows = []
    for (method, shots), part in table.groupby(["method", "shots"], sort=False):
        scored = part[part["roc_auc_macro"].notna()]
        rows.append(
            {
                "method": method,
                "shots": int(shots),
                "episodes": len(scored),
                "n_tags": float(scored["n_tags"].mean()) if len(scored) else 0.0,
                "roc_auc_mean": float(scored["roc_auc_macro"].mean()),
                "roc_auc_std": float(scored["roc_auc_macro"].std(ddof=1)),
                "pr_auc_mean": float(scored["pr_auc_macro"].mean()),
                "pr_auc_std": float(scored["pr_auc_macro"].std(ddof=1)),
            }
        )
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    if out.empty:
        return out
    rank = out["method"].map(order)
    out = out.assign(_rank=rank).sort_values(["_rank", "shots"], kind="stable")
    return out.drop(columns="_rank").reset_index(drop=True)


def write_fewshot_table(
    *,
    episodes: Sequence[str | Path],
    out_csv: str | Path,
    out_md: str | Path,
    out_html: str | Path,
    split: str,
) -> pd.DataFrame:
    """Summaries of every model's episode tables (``dataset, model, target`` + columns of
    :func:`run_fewshot`), written as CSV, Markdown and HTML."""

    keys = ["dataset", "model", "target"]
    parts = []
    for path in episodes:
        table = pd.read_csv(path)
        for values, part in table.groupby(keys, sort=False):
            summary = summarise_fewshot(part.drop(columns=keys))
            for key, value in zip(keys, values, strict=True):
                summary.insert(keys.index(key), key, value)
            parts.append(summary)
    if not parts:
        raise PipelineError("no few-shot episodes to summarise")
    table = pd.concat(parts, ignore_index=True)
    caption = [
        f"Macro ROC-AUC and PR-AUC on the held-out {split} tracks of the target dataset, "
        "against labelled examples per tag (shots); support sets drawn from its train and "
        "valid splits; mean and standard deviation over episodes (random support sets, the "
        "same for every method).",
        "prototypes: a positive and a negative prototype per tag on the model's frozen, "
        "L2-normalised track embeddings; finetune: the checkpoint with a new head, fine-tuned "
        "on the support windows.",
        "n_tags: tags scored per episode (enough support positives, and a positive and a "
        "negative among the queries).",
    ]
    write_table(
        table=table,
        out_csv=out_csv,
        out_md=out_md,
        out_html=out_html,
        title="Few-shot tags",
        caption=caption,
        best_metric="roc_auc_mean",
        best_within=["dataset", "model", "target", "shots"],
        highlight="method",
    )
    return table


#: Columns of :func:`pipeline.fewshot.episodes.run_fewshot`'s table: one row per (method,
#: shots, episode).
FEWSHOT_COLUMNS = [
    "method",
    "shots",
    "episode",
    "n_support",
    "n_tags",
    "roc_auc_macro",
    "pr_auc_macro",
]
