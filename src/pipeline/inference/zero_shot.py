"""Zero-shot tagging with CLAP (``kind="zero_shot"`` checkpoints; trainer:
:mod:`pipeline.training.zero_shot`): no training, one text prompt per tag.

A window's logit for a tag is ``scale * cos(audio, text)``: the cosine similarity of the
window's stored CLAP audio embedding (a ``kind: encoder`` feature set of a CLAP model) and
the tag prompt's text embedding, which the checkpoint holds (so tagging needs no text model).
Song probabilities are the mean of the window probabilities (``aggregation="mean"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from pipeline.errors import PipelineError
from pipeline.features.settings import FeatureSettings
from pipeline.inference.registry import Tagger, check_windows, register_tagger, require_keys
from pipeline.numeric import l2_normalise, sigmoid

__all__ = ["ZeroShotTagger", "ZERO_SHOT_KEYS"]

#: Keys of a ``kind="zero_shot"`` checkpoint besides the common ones.
ZERO_SHOT_KEYS = ("text_embeddings", "prompts", "scale", "layer")


class ZeroShotTagger:
    """Cosine similarity of stored CLAP audio embeddings and the tags' text embeddings.

    Parameters
    ----------
    checkpoint : mapping
        ``text_embeddings`` (n_tags, dim) L2-normalised, ``prompts``, ``scale``, ``layer``
        (the stored row holding the audio embedding) and the common keys.
    """

    kind: ClassVar[str] = "zero_shot"
    aggregation = "mean"

    def __init__(self, checkpoint: Mapping[str, Any]) -> None:
        require_keys(checkpoint, ZERO_SHOT_KEYS, kind=self.kind)
        self.tags = [str(t) for t in checkpoint["tags"]]
        self.features = FeatureSettings.from_dict(checkpoint["features"])
        if self.features.encoder is None:
            raise PipelineError("a zero-shot checkpoint needs an encoder feature set")
        self.text = np.asarray(checkpoint["text_embeddings"], dtype=np.float32)  # (n_tags, D)
        if self.text.shape[0] != len(self.tags):
            raise PipelineError(
                f"zero-shot checkpoint: {self.text.shape[0]} text embeddings for "
                f"{len(self.tags)} tags"
            )
        self.prompts = [str(p) for p in checkpoint["prompts"]]
        self.scale = float(checkpoint["scale"])
        self.layer = int(checkpoint["layer"])
        self.n_bins = self.features.encoder.n_layers
        self.n_frames = self.features.n_frames

    def embed_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """The windows' audio embeddings (L2-normalised), shape (n_windows, D)."""
        windows, _ = check_windows(
            windows,
            valid_frames,
            n_bins=self.n_bins,
            n_frames=self.n_frames,
            features=self.features,
        )
        dim = self.text.shape[1]
        audio = windows[:, self.layer, :dim].astype(np.float32)  # mean+std: the mean half
        return l2_normalise(audio).astype(np.float32)

    def predict_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """Logits ``scale * cosine``, shape (n_windows, n_tags), float32."""
        audio = self.embed_windows(windows, valid_frames=valid_frames)
        return (self.scale * audio @ self.text.T).astype(np.float32)

    def predict_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Window probabilities (n_windows, n_tags) and their mean (n_tags,)."""
        probs = sigmoid(self.predict_windows(windows, valid_frames=valid_frames))
        return probs, probs.mean(axis=0)

    def embed_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """The mean of the window embeddings, shape (D,)."""
        return self.embed_windows(windows, valid_frames=valid_frames).mean(axis=0)


@register_tagger("zero_shot")
def _zero_shot_tagger(checkpoint: dict[str, Any], device: str) -> Tagger:
    return ZeroShotTagger(checkpoint)
