"""The bag-of-frames tagger: a K-means codebook of frames, a histogram per track, an MLP on it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from pipeline.errors import ConfigError
from pipeline.features.codebook import histogram, track_frames
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import hop_frames, normaliser
from pipeline.inference.registry import Tagger, check_windows, register_tagger, require_keys
from pipeline.numeric import sigmoid

__all__ = ["BagOfFramesConfig", "BagOfFramesTagger", "HistogramMLP"]

#: Checkpoint keys of ``kind="bag_of_frames"`` (next to the common ones).
CHECKPOINT_KEYS = (
    "architecture",
    "hparams",
    "train_config",
    "codebook",
    "bandwidth",
    "scaler",
    "classifier",
    "selection",
)


@dataclass(frozen=True, kw_only=True)
class BagOfFramesConfig:
    """Hyper-parameters of the bag-of-frames model.

    Parameters
    ----------
    codebook_size : int
        Codewords (K-means clusters).
    max_frames : int
        Most train-split frames the codebook is fitted on (sampled, seeded).
    soft : bool
        Soft assignment of frames to codewords (see the module docstring); False: each frame
        counts for its nearest codeword only.
    hidden : int
        Units of the MLP's hidden layer.
    dropout : float
        Dropout on the hidden layer while training.
    """

    codebook_size: int = 64
    max_frames: int = 50_000
    soft: bool = False
    hidden: int = 64
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for key in ("codebook_size", "max_frames", "hidden"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"bag_of_frames.{key}: {value!r} must be an integer >= 1")
        if self.codebook_size < 2:
            raise ConfigError(
                f"bag_of_frames.codebook_size: {self.codebook_size!r} must be at least 2"
            )
        if not isinstance(self.soft, bool):
            raise ConfigError(f"bag_of_frames.soft: {self.soft!r} must be true or false")
        value = self.dropout
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise ConfigError(f"bag_of_frames.dropout: {value!r} must be a number in [0, 1)")


class HistogramMLP(nn.Module):
    """Standardised codeword histograms -> one hidden ReLU layer -> tag logits.

    Parameters
    ----------
    n_inputs : int
        Codewords.
    hidden : int
    n_tags : int
    dropout : float
    """

    def __init__(self, *, n_inputs: int, hidden: int, n_tags: int, dropout: float) -> None:
        super().__init__()
        self.hidden = nn.Linear(n_inputs, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, n_tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_inputs) -> logits (batch, n_tags)."""
        h = self.dropout(torch.relu(self.hidden(x)))  # (B, hidden)
        return self.output(h)  # (B, n_tags)


# --------------------------------------------------------------------------------------------
# The tagger
# --------------------------------------------------------------------------------------------


class BagOfFramesTagger:
    """A fitted bag-of-frames model from a ``kind="bag_of_frames"`` checkpoint.

    The song prediction is the MLP on the whole track's histogram (``aggregation="model"``);
    ``predict_windows`` applies the MLP to each window's own histogram (a taggram).
    Embeddings are the (unstandardised) histograms.

    Parameters
    ----------
    checkpoint : mapping
        From :func:`pipeline.io.checkpoint.load_checkpoint`.
    """

    kind: ClassVar[str] = "bag_of_frames"

    def __init__(self, checkpoint: Mapping[str, Any]) -> None:
        require_keys(checkpoint, CHECKPOINT_KEYS, kind=self.kind)
        self.tags = [str(t) for t in checkpoint["tags"]]
        self.features = FeatureSettings.from_dict(checkpoint["features"])
        self.aggregation = "model"
        self.codebook = checkpoint["codebook"].numpy().astype(np.float32)  # (K, n_bins)
        self.bandwidth = float(checkpoint["bandwidth"])
        self.soft = bool(checkpoint["hparams"]["soft"])
        self.n_bins = self.codebook.shape[1]
        self.n_frames = self.features.n_frames
        self.hop = hop_frames(self.features)
        self._mean, self._inv_std = normaliser(checkpoint["stats"], n_bins=self.n_bins)
        self._scale_mean = checkpoint["scaler"]["mean"].float()  # (K,)
        self._scale_std = checkpoint["scaler"]["std"].float()  # (K,)
        classifier = checkpoint["classifier"]
        self.mlp = HistogramMLP(
            n_inputs=len(self.codebook),
            hidden=int(classifier["hidden"]),
            n_tags=len(self.tags),
            dropout=float(classifier["dropout"]),
        )
        self.mlp.load_state_dict(classifier["state_dict"])
        self.mlp.eval()

    def predict_histograms(self, histograms: np.ndarray) -> np.ndarray:
        """(n, K) histograms -> (n, n_tags) logits, float32."""
        x = (torch.from_numpy(np.asarray(histograms, np.float32)) - self._scale_mean) / (
            self._scale_std
        )
        with torch.no_grad():
            return self.mlp(x).numpy()

    def _check(
        self, windows: np.ndarray, valid_frames: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return check_windows(
            windows,
            valid_frames,
            n_bins=self.n_bins,
            n_frames=self.n_frames,
            features=self.features,
        )

    def embed_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """Each window's codeword histogram, shape (n_windows, K)."""
        windows, valid = self._check(windows, valid_frames)
        out = []
        for w, v in zip(windows, valid, strict=True):
            frames = track_frames(
                w[None], v[None], mean=self._mean, inv_std=self._inv_std, hop=self.n_frames
            )  # (v, n_bins)
            out.append(histogram(frames, self.codebook, soft=self.soft, bandwidth=self.bandwidth))
        return np.stack(out)

    def embed_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """The whole track's codeword histogram, shape (K,)."""
        windows, valid = self._check(windows, valid_frames)
        frames = track_frames(
            windows, valid, mean=self._mean, inv_std=self._inv_std, hop=self.hop
        )  # (T, n_bins)
        return histogram(frames, self.codebook, soft=self.soft, bandwidth=self.bandwidth)

    def predict_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """Logits of each window's histogram, shape (n_windows, n_tags)."""
        return self.predict_histograms(self.embed_windows(windows, valid_frames=valid_frames))

    def predict_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Window probabilities (n_windows, n_tags) and song probabilities (n_tags,).

        The song probabilities come from the whole track's histogram, not from the windows.
        """
        window_probs = sigmoid(self.predict_windows(windows, valid_frames=valid_frames))
        track = self.embed_track(windows, valid_frames=valid_frames)
        return window_probs, sigmoid(self.predict_histograms(track[None]))[0]


@register_tagger("bag_of_frames")
def _bag_of_frames_tagger(checkpoint: dict[str, Any], device: str) -> Tagger:
    return BagOfFramesTagger(checkpoint)  # numpy and a tiny MLP: always on the CPU
