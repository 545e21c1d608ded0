"""Which layer of a pretrained encoder tags best: one probe per stored layer.

:func:`train_layer_probes` trains the model's probe architecture (``probe_linear`` or
``probe_mlp``, with its hyper-parameters and training settings) once per stored layer
(``hparams.layer`` = 0 .. n_layers - 1), with the same loop and checkpoint selection as any
model (:func:`pipeline.training.window.train_model`), and writes a table (``layers.csv``:
``layer, hidden_state, best_valid_roc_auc, best_valid_pr_auc, best_epoch``; ``hidden_state``
is the encoder's hidden-state index the stored row came from) and a plot (``layers.png``:
validation macro ROC-AUC and PR-AUC per layer, the best marked).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError
from pipeline.evaluation.plots import plot_layer_scores
from pipeline.features.settings import ENCODER_KIND, FeatureSettings
from pipeline.io.files import read_json
from pipeline.io.store import FeatureStore
from pipeline.training.config import TrainConfig
from pipeline.training.window import train_model

__all__ = ["LAYER_COLUMNS", "PROBES", "train_layer_probes"]

log = logging.getLogger(__name__)

#: Columns of ``layers.csv``.
LAYER_COLUMNS = ["layer", "hidden_state", "best_valid_roc_auc", "best_valid_pr_auc", "best_epoch"]

#: Architectures a layer table is made for.
PROBES = ("probe_linear", "probe_mlp")


def train_layer_probes(
    *,
    model: Mapping[str, Any],
    index_path: Path,
    stats_path: Path,
    vocabulary_path: Path,
    out_dir: Path,
    progress: bool = False,
) -> pd.DataFrame:
    """Train one probe per stored layer; write ``layers.csv`` and ``layers.png``.

    Parameters
    ----------
    model : mapping
        The model's validated config entry (``architecture`` one of :data:`PROBES`).
    index_path, stats_path, vocabulary_path : Path
        As :func:`pipeline.training.run.run_training`.
    out_dir : Path
        Receives the table, the plot and one folder per layer (``layer_00/``: checkpoint,
        history, summary).

    Returns
    -------
    pd.DataFrame
        :data:`LAYER_COLUMNS`, one row per layer.
    """
    architecture = str(model["architecture"])
    if architecture not in PROBES:
        raise ConfigError(f"layer_table: architecture {architecture!r} is not one of {PROBES}")
    index = pd.read_parquet(index_path)
    features = FeatureStore(Path(index["store"].iloc[0])).attrs["features"]
    settings = FeatureSettings.from_dict(features)
    if settings.kind != ENCODER_KIND or settings.encoder is None:
        raise ConfigError(f"layer_table: feature set {settings.name!r} is not a kind: encoder set")
    kept = settings.encoder.layers
    n_layers = settings.encoder.n_layers
    out_dir = Path(out_dir)
    rows = []
    for layer in range(n_layers):
        summary = train_model(
            architecture=architecture,
            hparams={**dict(model.get("hparams", {})), "layer": layer},
            train_config=TrainConfig.from_dict(model.get("train", {})),
            index=index,
            stats=read_json(stats_path),
            tags=read_json(vocabulary_path)["tags"],
            features=features,
            out_dir=out_dir / f"layer_{layer:02d}",
            progress=progress,
        )
        (out_dir / f"layer_{layer:02d}" / "last.pt").unlink(missing_ok=True)
        rows.append(
            {
                "layer": layer,
                "hidden_state": layer if kept is None else kept[layer],
                "best_valid_roc_auc": summary["best_valid_roc_auc"],
                "best_valid_pr_auc": summary["best_valid_pr_auc"],
                "best_epoch": summary["best_epoch"],
            }
        )
        log.info("%s layer %d: %s", architecture, layer, rows[-1])
    table = pd.DataFrame(rows, columns=LAYER_COLUMNS)
    table.to_csv(out_dir / "layers.csv", index=False)
    plot_layer_scores(
        table=table,
        out_png=out_dir / "layers.png",
        title=f"{architecture} per layer of {settings.encoder.model} (validation, song level)",
    )
    best = table["best_valid_roc_auc"].astype(float)
    if np.isfinite(best).any():
        log.info("best layer: %d", int(table["layer"].iloc[int(np.nanargmax(best))]))
    return table
