"""The retrieval steps of the workflow: a metric-learning projection trained on a model's
track embeddings, and the leave-one-out retrieval evaluation of its embedding spaces (the
model's own, the projection's, and a random ranking) on the evaluated split.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError
from pipeline.evaluation.bootstrap import BootstrapSettings, mean_interval
from pipeline.evaluation.predict import embedding_matrix
from pipeline.retrieval.metric_learning import (
    TripletConfig,
    load_projection,
    project,
    save_projection,
    train_projection,
)
from pipeline.retrieval.metrics import chance_metrics, query_metrics
from pipeline.retrieval.table import shown

__all__ = ["train_metric_projection", "evaluate_retrieval", "CI_METRICS"]

#: Metrics given a bootstrap interval over the queries (``<metric>_ci_low``, ``_ci_high``).
CI_METRICS = ("map_at_k", "ndcg_at_k")


def _split_part(embeddings: pd.DataFrame, split: str) -> tuple[np.ndarray, list[list[str]]]:

    part = embeddings[embeddings["split"] == split]
    if len(part) < 2:
        raise PipelineError(f"split {split!r} has {len(part)} embedded track(s); need at least 2")
    return embedding_matrix(part), [list(t) for t in part["tags"]]


def train_metric_projection(
    *,
    embeddings: pd.DataFrame,
    retrieval: Mapping[str, Any],
    out_projection: str | Path,
    out_history: str | Path,
) -> None:
    """Train the triplet projection on the train split (valid split picks the epoch).

    Parameters
    ----------
    embeddings : pd.DataFrame
        From :func:`pipeline.evaluation.predict.embed_tracks` (``split``, ``tags``, ``embedding``).
    retrieval : mapping
        The ``retrieval:`` config (``k``, ``relevance_threshold``, ``metric_learning``).
    out_projection, out_history : str or Path
    """
    settings = {k: v for k, v in retrieval["metric_learning"].items() if k != "enabled"}
    train_x, train_tags = _split_part(embeddings, "train")
    valid_x, valid_tags = _split_part(embeddings, "valid")
    projection, history = train_projection(
        train_embeddings=train_x,
        train_tags=train_tags,
        valid_embeddings=valid_x,
        valid_tags=valid_tags,
        config=TripletConfig.from_dict(settings),
        k=int(retrieval["k"]),
        relevance_threshold=float(retrieval["relevance_threshold"]),
    )
    save_projection(projection, out_projection)
    Path(out_history).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(out_history, index=False)


def evaluate_retrieval(
    *,
    embeddings: pd.DataFrame,
    projection: str | Path | None,
    split: str,
    k: int,
    relevance_threshold: float,
    bootstrap: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Retrieval metrics of one model's spaces on one split.

    Parameters
    ----------
    bootstrap : mapping, optional
        The config's ``evaluation.bootstrap`` (resamples, seed, confidence); default its
        defaults.

    Returns
    -------
    list of dict
        One per space: ``"tagger"`` (the model's own embeddings), ``"triplet"`` (the
        projection, when given) and ``"random"`` (chance), each with ``space``, ``dim`` and
        the metrics of :func:`pipeline.retrieval.metrics.retrieval_metrics`; the model's
        spaces also ``<metric>_ci_low`` and ``<metric>_ci_high`` for :data:`CI_METRICS`: a
        percentile bootstrap interval of the mean over the queries (the queries are
        resampled, each keeping its ranking of the whole split; NaN when no query counts).
        The random row has none (NaN).
    """
    settings = BootstrapSettings.from_dict(dict(bootstrap or {}))
    x, tags = _split_part(embeddings, split)
    spaces: list[tuple[str, np.ndarray]] = [("tagger", x)]
    if projection is not None:
        spaces.append(("triplet", project(projection=load_projection(projection), embeddings=x)))
    rows = []
    for space, matrix in spaces:
        metrics, per_query = query_metrics(
            embeddings=matrix, tags=tags, k=k, relevance_threshold=relevance_threshold
        )
        row = {"space": space, "dim": int(matrix.shape[1]), **shown(metrics)}
        for name in CI_METRICS:
            row[f"{name}_ci_low"], row[f"{name}_ci_high"] = mean_interval(
                per_query[name], settings=settings
            )
        rows.append(row)
    chance = chance_metrics(tags=tags, k=k, relevance_threshold=relevance_threshold, repeats=3)
    no_interval = {
        f"{name}_ci_{end}": float("nan") for name in CI_METRICS for end in ("low", "high")
    }
    rows.append({"space": "random", "dim": 0, **shown(chance), **no_interval})
    return rows
