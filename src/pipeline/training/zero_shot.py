"""The zero-shot CLAP "trainer" (``architecture: zero_shot_clap``): nothing is trained. The
feature set's CLAP model embeds one prompt per tag (``hparams.template``, default
:data:`DEFAULT_TEMPLATE`; ``hparams.prompts`` overrides single tags), the text embeddings go
into a ``kind="zero_shot"`` checkpoint (:mod:`pipeline.inference.zero_shot`), and the valid
split is scored at the song level for the summary, as every trainer does. The outputs are
those of :func:`pipeline.training.window.train_model`, so the model is evaluated and listed
like every other.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from pipeline.errors import ConfigError
from pipeline.features.settings import ENCODER_KIND, FeatureSettings
from pipeline.inference.zero_shot import ZeroShotTagger
from pipeline.io.checkpoint import FORMAT_VERSION
from pipeline.io.device import torch_device
from pipeline.io.pretrained import clap_text_embeddings, load_encoder
from pipeline.models.registry import parse_hparams
from pipeline.numeric import json_float
from pipeline.training.config import TrainConfig
from pipeline.training.two_stage import (
    StoreReader,
    budget_summary,
    song_metrics,
    split_data,
    write_outputs,
)

__all__ = ["DEFAULT_TEMPLATE", "ZeroShotConfig", "train_zero_shot_clap", "tag_prompts"]

log = logging.getLogger(__name__)

#: The prompt of a tag unless configured (LAION-CLAP's music zero-shot wording).
DEFAULT_TEMPLATE = "This is a recording of {tag} music."


@dataclass(frozen=True, kw_only=True)
class ZeroShotConfig:
    """Hyper-parameters of ``zero_shot_clap``.

    Parameters
    ----------
    template : str
        Prompt of a tag; ``{tag}`` is replaced by the tag (underscores as spaces).
    prompts : dict of str to str
        Prompts of single tags, overriding the template.
    scale : float
        Logit = scale * cosine similarity (monotone per tag: ROC-AUC and PR-AUC do not
        depend on it, the probabilities do).
    layer : int
        The stored row holding the CLAP audio embedding (0: a CLAP feature set has one).
    """

    template: str = DEFAULT_TEMPLATE
    prompts: dict[str, str] = field(default_factory=dict)
    scale: float = 10.0
    layer: int = 0

    def __post_init__(self) -> None:
        if "{tag}" not in self.template:
            raise ConfigError(f"zero_shot_clap.template: {self.template!r} has no {{tag}}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"zero_shot_clap.scale: {self.scale!r} must be a number > 0")


def tag_prompts(tags: Sequence[str], *, config: ZeroShotConfig) -> list[str]:
    """One prompt per tag, in vocabulary order."""
    return [
        config.prompts.get(str(t), config.template.format(tag=str(t).replace("_", " ")))
        for t in tags
    ]


def train_zero_shot_clap(
    *,
    architecture: str,
    hparams: Mapping[str, Any],
    train_config: TrainConfig,
    index: pd.DataFrame,
    stats: Mapping[str, Any],
    tags: Sequence[str],
    features: Mapping[str, Any],
    out_dir: Path,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Embed the tag prompts, write the checkpoint; score the valid split for the summary.

    Parameters are those of :func:`pipeline.training.window.train_model`; ``features`` must
    be a ``kind: encoder`` feature set of a CLAP model.

    Returns
    -------
    dict
        The summary keys of the other trainers (``params`` 0, ``best_epoch`` 1) plus
        ``template``, ``licence`` and ``frozen_params`` (the CLAP model's).
    """
    started = time.perf_counter()
    config = parse_hparams(ZeroShotConfig, hparams, architecture=architecture)
    settings = FeatureSettings.from_dict(features)
    if settings.kind != ENCODER_KIND or settings.encoder is None:
        raise ConfigError(
            f"{architecture}: feature set {settings.name!r} is of kind {settings.kind!r}; "
            "zero-shot tagging needs a kind: encoder feature set of a CLAP model"
        )
    enc = settings.encoder
    dev = torch_device(device)
    encoder = load_encoder(model=enc.model, revision=enc.revision, device=dev)
    prompts = tag_prompts(tags, config=config)
    text = clap_text_embeddings(encoder, prompts)  # (n_tags, D)
    frozen = sum(p.numel() for p in encoder.model.parameters())
    checkpoint: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "kind": "zero_shot",
        "tags": [str(t) for t in tags],
        "features": settings.to_dict(),
        "stats": {"mean": list(stats["mean"]), "std": list(stats["std"])},
        "architecture": str(architecture),
        "hparams": asdict(config),
        "train_config": train_config.to_dict(),
        "text_embeddings": text.to(torch.float32),
        "prompts": prompts,
        "scale": float(config.scale),
        "layer": int(config.layer),
        "licence": enc.licence,
        "selection": {"criterion": "none (zero-shot: no training)", "epoch": 1, "value": None},
    }
    tagger = ZeroShotTagger(checkpoint)
    valid = split_data(index, split="valid", tags=tags)
    reader = StoreReader(features=settings)
    probs = np.stack(
        [tagger.predict_track(w, valid_frames=v)[1] for w, v in reader.tracks(valid.tracks)]
    ).astype(np.float64)
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)
    metrics = song_metrics(valid.labels, np.log(clipped) - np.log1p(-clipped))
    checkpoint["selection"]["value"] = json_float(metrics["valid_roc_auc"])
    history = [
        {
            "epoch": 1,
            "train_loss": math.nan,
            **metrics,
            "lr": math.nan,
            "seconds": time.perf_counter() - started,
        }
    ]
    summary = {
        "architecture": str(architecture),
        "params": 0,
        "train_time_s": time.perf_counter() - started,
        "best_epoch": 1,
        "best_valid_roc_auc": json_float(metrics["valid_roc_auc"]),
        "best_valid_pr_auc": json_float(metrics["valid_pr_auc"]),
        "epochs_run": 1,
        "stopped_early": False,
        "device": str(dev),
        "amp": False,
        "selection": "none (zero-shot CLAP: no training, no selection)",
        **budget_summary(
            split_data(index, split="train", tags=tags), label_fraction=0.0, tag_label_fraction=0.0
        ),
        "frozen_params": int(frozen),
        "note": f"zero-shot: cosine of CLAP audio and text embeddings; prompt {config.template!r}",
        "template": config.template,
        "licence": enc.licence,
    }
    write_outputs(out_dir=Path(out_dir), checkpoint=checkpoint, history=history, summary=summary)
    log.info("zero_shot_clap: %s", summary)
    return summary
