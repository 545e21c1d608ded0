"""What every few-shot method shares: the method signature (:data:`Method`) and the checks of
label matrices and track masks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.errors import PipelineError

__all__ = ["Method", "bool_labels", "track_mask"]


#: A few-shot method: ``(support_idx (n_support,), query_idx (n_query,), tags (n_used,))``
#: -> scores, shape (n_query, n_used); indices are rows and columns of the labels.
Method = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def bool_labels(labels: np.ndarray, *, name: str) -> np.ndarray:
    """A 2-D 0/1 (or bool) array as bool."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise PipelineError(f"{name} of shape {labels.shape} is not (n_tracks, n_tags)")
    if labels.dtype != bool:
        values = np.unique(labels)
        if not np.isin(values, [0, 1]).all():
            raise PipelineError(f"{name} must be 0/1 or bool; it holds {values[:10].tolist()!r}")
        labels = labels.astype(bool)
    return labels


def track_mask(mask: np.ndarray, *, name: str, n: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (n,) or mask.dtype != bool:
        raise PipelineError(
            f"{name} must be a bool array of shape ({n},); got {mask.dtype} {mask.shape}"
        )
    return mask
