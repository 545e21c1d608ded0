"""Taggram files: per-window (or, for models that score shorter chunks, per-chunk)
probabilities as CSV and PNG, with the time in seconds of the track."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.evaluation.plots import plot_taggram
from pipeline.inference.streaming import TagResult

__all__ = ["write_taggram"]


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


def write_taggram(
    result: TagResult, *, csv_path: str | Path, png_path: str | Path | None, title: str
) -> None:
    """A file's taggram as CSV (and PNG), at the model's own resolution.

    Parameters
    ----------
    result : TagResult
    csv_path : str or Path
        Window models: columns ``window, start_s`` and one probability column per tag, one
        row per window (n_windows x (2 + n_tags)). Models that score chunks shorter than a
        window (``result.chunk_probs``): columns ``window, chunk, start_s, end_s`` and the
        tags, one row per chunk, ``start_s`` / ``end_s`` in seconds of the file.
    png_path : str or Path, optional
        :func:`pipeline.evaluation.plots.plot_taggram` of the same probabilities.
    title : str
        Of the plot.
    """
    probs, start_s, chunk_s = result.taggram()
    table = pd.DataFrame(probs, columns=result.tags)
    if chunk_s is None:
        table.insert(0, "start_s", result.window_start_s)
        table.insert(0, "window", np.arange(result.n_windows))
    else:
        table.insert(0, "end_s", np.minimum(start_s + chunk_s, result.duration_s))
        table.insert(0, "start_s", start_s)
        table.insert(0, "chunk", np.arange(len(start_s)))
        table.insert(0, "window", result.chunk_window)
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv_path, index=False, float_format="%.6g")
    if png_path is not None:
        if chunk_s is None:
            cell_s = None if result.n_windows > 1 else result.duration_s or None
        else:
            cell_s = chunk_s
        plot_taggram(
            probabilities=probs,
            window_start_s=start_s,
            tags=result.tags,
            out_png=png_path,
            title=title,
            window_hop_s=cell_s,
        )
