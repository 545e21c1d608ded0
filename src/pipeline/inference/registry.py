"""The tagger protocol (what every trained model offers for prediction) and the registry of
checkpoint kinds."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from pipeline.errors import PipelineError
from pipeline.features.settings import FeatureSettings

__all__ = ["Tagger", "TAGGER_KINDS", "register_tagger", "require_keys", "check_windows"]


class Tagger(Protocol):
    """What every tagger offers.

    Attributes
    ----------
    tags : list of str
        The vocabulary, in output order.
    features : FeatureSettings
        The feature set the tagger expects (compute new files' features with these).
    aggregation : str
        How song predictions are made: ``"mean"`` (the mean of the window probabilities,
        so ``predict_track(w)[1] == sigmoid(predict_windows(w)).mean(0)``) or ``"model"``
        (the model's own summary of the track, e.g. a sequence model).
    """

    tags: list[str]
    features: FeatureSettings
    aggregation: str

    def predict_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """Logits per window, shape (n_windows, n_tags)."""
        ...

    def predict_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Window probabilities (n_windows, n_tags) or None, and song probabilities (n_tags,)."""
        ...

    def embed_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """Embeddings per window, shape (n_windows, embedding_dim)."""
        ...

    def embed_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """One embedding for the track, shape (embedding_dim,)."""
        ...


#: Checkpoint ``kind`` -> factory ``(checkpoint dict, device) -> Tagger``. ``"network"`` is
#: registered here; :func:`load_tagger` imports the other kinds' packages on demand.
TAGGER_KINDS: dict[str, Callable[[dict[str, Any], str], Tagger]] = {}


def register_tagger(kind: str) -> Callable[[Callable[..., Tagger]], Callable[..., Tagger]]:
    """Decorator: register a tagger factory for checkpoints of ``kind``."""

    def add(factory: Callable[..., Tagger]) -> Callable[..., Tagger]:
        TAGGER_KINDS[kind] = factory
        return factory

    return add


def require_keys(checkpoint: Mapping[str, Any], keys: Sequence[str], *, kind: str) -> None:
    """Raise PipelineError naming the kind unless the checkpoint has every key."""
    missing = [k for k in keys if k not in checkpoint]
    if missing:
        raise PipelineError(f"checkpoint of kind {kind!r} lacks key(s) {missing}")


def check_windows(
    windows: np.ndarray,
    valid_frames: np.ndarray | None,
    *,
    n_bins: int,
    n_frames: int,
    features: FeatureSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Check a tagger's input; the windows and their valid frames (default: all frames).

    Returns
    -------
    windows : np.ndarray, shape (n_windows, n_bins, n_frames)
    valid : np.ndarray, shape (n_windows,), int64, in ``[1, n_frames]``
    """
    windows = np.asarray(windows)
    if windows.ndim != 3 or windows.shape[1:] != (n_bins, n_frames):
        raise PipelineError(
            f"windows of shape {windows.shape} are not (n, {n_bins}, {n_frames}) "
            f"of feature set {features.name!r}"
        )
    if len(windows) == 0:
        raise PipelineError("no windows to tag (shape (0, ...))")
    if valid_frames is None:
        return windows, np.full(len(windows), n_frames, dtype=np.int64)
    valid = np.clip(np.asarray(valid_frames, dtype=np.int64), 1, n_frames)
    if valid.shape != (len(windows),):
        raise PipelineError(
            f"valid_frames of shape {valid.shape} does not match {len(windows)} windows"
        )
    return windows, valid
