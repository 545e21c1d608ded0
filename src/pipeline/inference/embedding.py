"""The embedding classifier: a frozen network's pooled track embedding and a linear classifier
on it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from pipeline.errors import ConfigError
from pipeline.features.settings import FeatureSettings
from pipeline.inference.linear import CLASSIFIERS
from pipeline.inference.network import NetworkTagger
from pipeline.inference.registry import Tagger, register_tagger, require_keys
from pipeline.io.checkpoint import plain
from pipeline.numeric import sigmoid

__all__ = [
    "EmbeddingClassifierConfig",
    "EmbeddingClassifierTagger",
    "NetworkSource",
    "check_network_source",
]

log = logging.getLogger(__name__)

#: Checkpoint keys of ``kind="embedding_classifier"`` (next to the common ones).
CHECKPOINT_KEYS = (
    "architecture",
    "hparams",
    "train_config",
    "network",
    "scaler",
    "classifier",
    "selection",
)


@dataclass(frozen=True, kw_only=True)
class EmbeddingClassifierConfig:
    """Hyper-parameters of ``embedding_svm``.

    Parameters
    ----------
    network : str
        A window architecture of :data:`pipeline.models.ARCHITECTURES` (random weights).
    network_hparams : mapping
        Its hyper-parameters (random weights).
    weights : str
        ``"random"`` (seeded by ``train.seed``), or the path of a trained window model's
        ``checkpoint.pt``, whose architecture and hyper-parameters replace ``network`` and
        ``network_hparams``.
    classifier : str
        A key of :data:`CLASSIFIERS`: ``"logistic"`` or ``"svm"``.
    C : float or list of float
        Inverse regularisation strength; a list is a grid the validation split chooses from.
    """

    network: str = "musicnn"
    network_hparams: Mapping[str, Any] = field(default_factory=dict)
    weights: str = "random"
    classifier: str = "logistic"
    C: float | list[float] = 1.0

    def __post_init__(self) -> None:
        check_network_source(
            architecture="embedding_svm",
            network=self.network,
            network_hparams=self.network_hparams,
            weights=self.weights,
        )
        if self.classifier not in CLASSIFIERS:
            raise ConfigError(
                f"embedding_svm.classifier: {self.classifier!r} is not one of {sorted(CLASSIFIERS)}"
            )
        grid = self.C if isinstance(self.C, list | tuple) else [self.C]
        if not grid or not all(
            isinstance(c, Real) and not isinstance(c, bool) and c > 0 for c in grid
        ):
            raise ConfigError(
                f"embedding_svm.C: {self.C!r} must be a number > 0 or a non-empty list of them"
            )

    @property
    def grid(self) -> list[float]:
        """The values of C to try, in order."""
        return [float(c) for c in (self.C if isinstance(self.C, list | tuple) else [self.C])]

    def to_dict(self) -> dict[str, Any]:
        """Plain hyper-parameters (checkpoint)."""
        return {
            "network": self.network,
            "network_hparams": plain(dict(self.network_hparams)),
            "weights": str(self.weights),
            "classifier": self.classifier,
            "C": plain(self.C),
        }


# --------------------------------------------------------------------------------------------
# The frozen network
# --------------------------------------------------------------------------------------------


class NetworkSource(Protocol):
    """Where a two-stage model's frozen network comes from (fields of its config class)."""

    network: str
    network_hparams: Mapping[str, Any]
    weights: str


def check_network_source(
    *, architecture: str, network: Any, network_hparams: Any, weights: Any
) -> None:
    """Raise ConfigError (naming ``{architecture}.{field}``) unless the fields are usable.

    ``network`` must be a name, ``network_hparams`` a mapping, ``weights`` ``"random"`` or
    the path of an existing checkpoint file.
    """
    if not isinstance(network, str):
        raise ConfigError(f"{architecture}.network: {network!r} is not a name")
    if not isinstance(network_hparams, Mapping):
        raise ConfigError(f"{architecture}.network_hparams: {network_hparams!r} is not a mapping")
    if not isinstance(weights, str | Path):
        raise ConfigError(
            f"{architecture}.weights: {weights!r} is not 'random' or a checkpoint path"
        )
    if weights != "random" and not Path(weights).is_file():
        raise ConfigError(
            f"{architecture}.weights: {str(weights)!r} is neither 'random' nor an "
            "existing checkpoint file"
        )


# --------------------------------------------------------------------------------------------
# The tagger
# --------------------------------------------------------------------------------------------


class EmbeddingClassifierTagger:
    """Frozen network + linear classifier from a ``kind="embedding_classifier"`` checkpoint.

    Embeddings are the network's (unstandardised); window logits are the classifier on each
    window's embedding; the song prediction is the classifier on the mean embedding.

    Parameters
    ----------
    checkpoint : mapping
    device : str
        Where the network runs.
    """

    kind: ClassVar[str] = "embedding_classifier"

    def __init__(self, checkpoint: Mapping[str, Any], *, device: str = "cpu") -> None:
        require_keys(checkpoint, CHECKPOINT_KEYS, kind=self.kind)
        self.tags = [str(t) for t in checkpoint["tags"]]
        self.features = FeatureSettings.from_dict(checkpoint["features"])
        self.aggregation = "model"
        self.network = NetworkTagger(checkpoint["network"], device=device)
        self._mean = checkpoint["scaler"]["mean"].numpy().astype(np.float64)  # (D,)
        self._std = checkpoint["scaler"]["std"].numpy().astype(np.float64)  # (D,)
        self._weight = checkpoint["classifier"]["weight"].numpy().astype(np.float64)  # (K, D)
        self._bias = checkpoint["classifier"]["bias"].numpy().astype(np.float64)  # (K,)

    def _logits(self, embeddings: np.ndarray) -> np.ndarray:
        """(n, D) -> (n, n_tags) logits, float32."""
        x = (np.asarray(embeddings, np.float64) - self._mean) / self._std
        return (x @ self._weight.T + self._bias).astype(np.float32)

    def embed_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """The network's embedding of each window, shape (n_windows, D)."""
        return self.network.embed_windows(windows, valid_frames=valid_frames)

    def embed_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """The mean of the window embeddings, shape (D,)."""
        return self.embed_windows(windows, valid_frames=valid_frames).mean(axis=0)

    def predict_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """The classifier's logits for each window, shape (n_windows, n_tags)."""
        return self._logits(self.embed_windows(windows, valid_frames=valid_frames))

    def predict_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Window probabilities (n_windows, n_tags) and song probabilities (n_tags,)."""
        embeddings = self.embed_windows(windows, valid_frames=valid_frames)  # (n, D)
        window_probs = sigmoid(self._logits(embeddings))
        return window_probs, sigmoid(self._logits(embeddings.mean(axis=0, keepdims=True)))[0]


@register_tagger("embedding_classifier")
def _embedding_tagger(checkpoint: dict[str, Any], device: str) -> Tagger:
    return EmbeddingClassifierTagger(checkpoint, device=device)
