"""Shared pieces of the few-shot tests."""

from __future__ import annotations

import numpy as np

from pipeline.evaluation.metrics import summary_metrics

__all__ = ["macro_auc"]


def macro_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Macro ROC-AUC of scores (n, n_tags) against 0/1 labels, as the evaluation reports it."""
    tags = [f"t{k}" for k in range(labels.shape[1])]
    return summary_metrics(y_true=labels, y_score=scores, tags=tags)["macro_roc_auc"]
