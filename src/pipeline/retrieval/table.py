"""The retrieval table: one row per (dataset, model, embedding space) with MAP@k, Recall@k,
MRR and nDCG@k, as CSV, Markdown and HTML.

Light on purpose (pandas only): the ``retrieval_table`` job only reads small JSON files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import PipelineError
from pipeline.evaluation.tables import write_table

__all__ = ["RETRIEVAL_COLUMNS", "write_retrieval_table"]


#: Columns of the retrieval table, in order.
RETRIEVAL_COLUMNS = [
    "dataset",
    "model",
    "space",
    "dim",
    "map_at_k",
    "recall_at_k",
    "mrr",
    "ndcg_at_k",
    "n_queries",
    "n_tracks",
]


def shown(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics and counts of the table (the settings are stated in its caption)."""
    keep = ("map_at_k", "recall_at_k", "mrr", "ndcg_at_k", "n_queries", "n_tracks")
    return {key: metrics[key] for key in keep}


def write_retrieval_table(
    *,
    metrics: Sequence[str | Path],
    out_csv: str | Path,
    out_md: str | Path,
    out_html: str | Path,
    split: str,
    k: int,
    relevance_threshold: float,
) -> pd.DataFrame:
    """Join the ``metrics.json`` files of
    :func:`pipeline.retrieval.evaluate.evaluate_retrieval` into one table."""
    rows = [row for path in metrics for row in json.loads(Path(path).read_text())]
    if not rows:
        raise PipelineError("no retrieval metrics to join into a table")
    table = pd.DataFrame(rows)
    # the random ranking depends on the split's tags only: one row per dataset
    chance = table["space"] == "random"
    first = ~table.loc[chance].duplicated(["dataset"])
    table = pd.concat([table.loc[~chance], table.loc[chance][first].assign(model="(any)")])
    table = table[
        [c for c in RETRIEVAL_COLUMNS if c in table]
        + [c for c in table if c not in RETRIEVAL_COLUMNS]
    ]
    table = table.sort_values(
        ["dataset", "map_at_k", "model"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)
    caption = [
        f"Split: {split}; every track queries the other tracks of the split by cosine similarity.",
        f"Relevant: Jaccard overlap of the two tracks' tags >= {relevance_threshold} "
        f"(MAP@{k}, Recall@{k}, MRR); nDCG@{k} uses the overlap as graded relevance.",
        "Spaces: tagger = the model's own track embedding; triplet = a projection of it "
        "trained with a triplet loss on the tag-similarity ranking (train split, epoch "
        "chosen on valid); random = a random ranking (chance).",
        "MAP, Recall and MRR are means over the queries with at least one relevant track "
        "(n_queries); nDCG over the queries sharing at least one tag with another track.",
        "*_ci_low, *_ci_high: percentile bootstrap intervals of MAP and nDCG over the queries "
        "(evaluation.bootstrap: resamples, seed and coverage; none for the random ranking).",
    ]
    renamed = table.rename(
        columns={
            "map_at_k": f"map@{k}",
            "recall_at_k": f"recall@{k}",
            "ndcg_at_k": f"ndcg@{k}",
            "map_at_k_ci_low": f"map@{k}_ci_low",
            "map_at_k_ci_high": f"map@{k}_ci_high",
            "ndcg_at_k_ci_low": f"ndcg@{k}_ci_low",
            "ndcg_at_k_ci_high": f"ndcg@{k}_ci_high",
        }
    )
    write_table(
        table=renamed,
        out_csv=out_csv,
        out_md=out_md,
        out_html=out_html,
        title="Retrieval",
        caption=caption,
        best_metric=f"map@{k}",
        best_within=["dataset"],
        highlight="model",
    )
    return renamed
