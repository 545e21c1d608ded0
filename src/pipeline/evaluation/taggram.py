"""Taggram files: per-window probabilities as CSV and PNG."""

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
    """A file's taggram as CSV (and PNG).

    Parameters
    ----------
    result : TagResult
    csv_path : str or Path
        Columns ``window, start_s`` and one probability column per tag; one row per window
        (n_windows x (2 + n_tags)).
    png_path : str or Path, optional
        :func:`pipeline.evaluation.plots.plot_taggram` of the same probabilities.
    title : str
        Of the plot.
    """
    table = pd.DataFrame(result.window_probs, columns=result.tags)
    table.insert(0, "start_s", result.window_start_s)
    table.insert(0, "window", np.arange(result.n_windows))
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv_path, index=False, float_format="%.6g")
    if png_path is not None:
        plot_taggram(
            probabilities=result.window_probs,
            window_start_s=result.window_start_s,
            tags=result.tags,
            out_png=png_path,
            title=title,
            window_hop_s=None if result.n_windows > 1 else result.duration_s or None,
        )
