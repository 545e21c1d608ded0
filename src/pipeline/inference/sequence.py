"""The embedding sequence tagger: a frozen network's window embeddings read in order by an LSTM."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from pipeline.errors import ConfigError
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import middle_block
from pipeline.inference.embedding import check_network_source
from pipeline.inference.network import NetworkTagger
from pipeline.inference.registry import Tagger, register_tagger, require_keys
from pipeline.io.checkpoint import plain
from pipeline.models import build_model
from pipeline.models.layers import TaggerNetwork
from pipeline.models.lstm import LSTMConfig
from pipeline.models.registry import parse_hparams
from pipeline.numeric import sigmoid

__all__ = ["EmbeddingSequenceConfig", "EmbeddingSequenceTagger"]

#: The registered sequence architecture of the second stage.
SEQUENCE_ARCHITECTURE = "lstm"

#: Checkpoint keys of ``kind="embedding_sequence"`` (next to the common ones).
CHECKPOINT_KEYS = (
    "architecture",
    "hparams",
    "train_config",
    "network",
    "scaler",
    "sequence_model",
    "max_windows",
    "selection",
)


@dataclass(frozen=True, kw_only=True)
class EmbeddingSequenceConfig:
    """Hyper-parameters of ``embedding_lstm``.

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
    lstm : mapping
        Fields of :class:`pipeline.models.lstm.LSTMConfig` (``hidden``, ``layers``,
        ``bidirectional``, ``mlp``, ``dropout``); missing ones take its defaults.
    """

    network: str = "musicnn"
    network_hparams: Mapping[str, Any] = field(default_factory=dict)
    weights: str = "random"
    lstm: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_network_source(
            architecture="embedding_lstm",
            network=self.network,
            network_hparams=self.network_hparams,
            weights=self.weights,
        )
        if not isinstance(self.lstm, Mapping):
            raise ConfigError(f"embedding_lstm.lstm: {self.lstm!r} is not a mapping")
        parse_hparams(LSTMConfig, self.lstm, architecture="embedding_lstm.lstm")  # checks

    def to_dict(self) -> dict[str, Any]:
        """Plain hyper-parameters (checkpoint)."""
        return {
            "network": self.network,
            "network_hparams": plain(dict(self.network_hparams)),
            "weights": str(self.weights),
            "lstm": plain(dict(self.lstm)),
        }


def run_lstm(
    model: TaggerNetwork,
    sequences: Sequence[np.ndarray],
    *,
    embed: bool,
    device: torch.device,
    batch_size: int = 64,
) -> np.ndarray:
    """The LSTM's logits (or embeddings) of standardised sequences, in eval mode.

    Parameters
    ----------
    model : pipeline.models.layers.TaggerNetwork
        The ``lstm`` architecture.
    sequences : sequence of np.ndarray, each shape (time_i, D)
    embed : bool
        ``model.embed`` instead of logits.

    Returns
    -------
    np.ndarray, shape (n_sequences, n_tags) or (n_sequences, embedding_dim), float32
    """
    fn = model.embed if embed else model
    out = []
    with torch.no_grad():
        for i in range(0, len(sequences), batch_size):
            chunk = sequences[i : i + batch_size]
            lengths = torch.tensor([len(s) for s in chunk], dtype=torch.int64)
            x = nn.utils.rnn.pad_sequence(
                [torch.from_numpy(np.ascontiguousarray(s, np.float32)) for s in chunk],
                batch_first=True,
            )  # (B, time, D)
            out.append(fn(x.to(device), lengths).float().cpu().numpy())
    return np.concatenate(out)


# --------------------------------------------------------------------------------------------
# The tagger
# --------------------------------------------------------------------------------------------


class EmbeddingSequenceTagger:
    """Frozen network + LSTM from a ``kind="embedding_sequence"`` checkpoint.

    The song prediction is the LSTM on the standardised embeddings of the track's middle
    ``max_windows`` windows; the track embedding is the LSTM's (``model.embed``: its MLP's
    hidden layer). Window logits (the taggram) and window embeddings score each window as a
    one-window sequence, so that window and track embeddings share one space and size, as
    :class:`pipeline.inference.registry.Tagger` requires (the embedding files of ``pipeline tag``
    and
    collection tables rely on it); the frozen network's own window embeddings are
    :meth:`network_embeddings`.

    Parameters
    ----------
    checkpoint : mapping
    device : str
        Where the network and the LSTM run.
    """

    kind: ClassVar[str] = "embedding_sequence"

    def __init__(self, checkpoint: Mapping[str, Any], *, device: str = "cpu") -> None:
        require_keys(checkpoint, CHECKPOINT_KEYS, kind=self.kind)
        self.tags = [str(t) for t in checkpoint["tags"]]
        self.features = FeatureSettings.from_dict(checkpoint["features"])
        self.aggregation = "model"
        self.max_windows = int(checkpoint["max_windows"])
        self.device = torch.device(device)
        self.network = NetworkTagger(checkpoint["network"], device=device)
        self._mean = checkpoint["scaler"]["mean"].numpy().astype(np.float32)  # (D,)
        self._std = checkpoint["scaler"]["std"].numpy().astype(np.float32)  # (D,)
        spec = checkpoint["sequence_model"]
        self.model = build_model(
            spec["architecture"],
            n_tags=len(self.tags),
            n_bins=len(self._mean),
            n_frames=self.max_windows,
            hparams=spec["hparams"],
        )
        self.model.load_state_dict(spec["state_dict"])
        self.model.to(self.device).eval()

    def standardise(self, embeddings: np.ndarray) -> np.ndarray:
        """Network embeddings (n, D) -> the LSTM's input steps (n, D), float32."""
        return (np.asarray(embeddings, np.float32) - self._mean) / self._std

    def sequence(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """The LSTM's input for a track: shape (min(n_windows, max_windows), D), float32."""
        start, stop = middle_block(len(windows), max_windows=self.max_windows)
        valid = None if valid_frames is None else np.asarray(valid_frames)[start:stop]
        return self.standardise(self.network_embeddings(windows[start:stop], valid_frames=valid))

    def network_embeddings(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """The frozen network's embedding of each window (unstandardised), shape (n_windows, D).

        Parameters
        ----------
        windows : np.ndarray, shape (n_windows, n_bins, n_frames)
            Stored (raw dB) features.
        valid_frames : np.ndarray, shape (n_windows,), optional
        """
        return self.network.embed_windows(windows, valid_frames=valid_frames)

    def _one_window_sequences(
        self, windows: np.ndarray, valid_frames: np.ndarray | None, *, embed: bool
    ) -> np.ndarray:
        """The LSTM on each window as a one-step sequence: (n_windows, n_tags or E)."""
        steps = self.standardise(self.network_embeddings(windows, valid_frames=valid_frames))
        return run_lstm(self.model, list(steps[:, None, :]), embed=embed, device=self.device)

    def embed_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """The LSTM's embedding of each window as a one-window sequence, (n_windows, E)."""
        return self._one_window_sequences(windows, valid_frames, embed=True)

    def embed_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """The LSTM's embedding of the track's sequence, shape (E,) (``lstm.mlp`` or its
        summary size when ``mlp`` is 0)."""
        seq = self.sequence(windows, valid_frames=valid_frames)
        return run_lstm(self.model, [seq], embed=True, device=self.device)[0]

    def predict_windows(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> np.ndarray:
        """Logits of each window as a one-window sequence, shape (n_windows, n_tags)."""
        return self._one_window_sequences(windows, valid_frames, embed=False)

    def predict_track(
        self, windows: np.ndarray, *, valid_frames: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """None (no window-level song prediction) and the song probabilities (n_tags,)."""
        seq = self.sequence(windows, valid_frames=valid_frames)
        return None, sigmoid(run_lstm(self.model, [seq], embed=False, device=self.device)[0])


@register_tagger("embedding_sequence")
def _embedding_sequence_tagger(checkpoint: dict[str, Any], device: str) -> Tagger:
    return EmbeddingSequenceTagger(checkpoint, device=device)
