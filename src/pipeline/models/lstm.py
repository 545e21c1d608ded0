"""Sequence-to-one LSTM over a whole track.

S. Hochreiter and J. Schmidhuber, "Long short-term memory", Neural Computation 9(8), 1997;
used for song-level tagging as a recurrent summary of a track's frame vectors (as in the
seed thesis). Input: a padded batch of sequences, shape (batch, time, n_bins), with
``lengths`` (batch,): MFCC frames pooled in time by the data loader, or per-window CNN
embeddings (then ``n_bins`` is the embedding size).

The padded batch is packed (``pack_padded_sequence``) so padding never enters the
recurrence; the summary is the last layer's final hidden state (both directions concatenated
when bidirectional), followed by an MLP (the hidden layer is the embedding) and the output
layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from pipeline.errors import ConfigError, PipelineError
from pipeline.models.layers import TaggerNetwork, check_dropout, check_input, check_positive
from pipeline.models.registry import register

__all__ = ["LSTMTagger", "LSTMConfig"]


@dataclass(frozen=True, kw_only=True)
class LSTMConfig:
    """Hyper-parameters of :class:`LSTMTagger`.

    Parameters
    ----------
    hidden : int
        Hidden units per direction and layer.
    layers : int
        Stacked LSTM layers.
    bidirectional : bool
        Read the sequence both ways and concatenate the two final states.
    mlp : int
        Units of the MLP's hidden layer (the embedding); 0: no hidden layer, the embedding is
        the LSTM summary itself.
    dropout : float
        Dropout between LSTM layers, and before the MLP's and the output layer.
    """

    hidden: int = 64
    layers: int = 1
    bidirectional: bool = False
    mlp: int = 64
    dropout: float = 0.3

    def __post_init__(self) -> None:
        check_positive("lstm", hidden=self.hidden, layers=self.layers)
        if not isinstance(self.bidirectional, bool):
            raise ConfigError(f"lstm.bidirectional: {self.bidirectional!r} is not true or false")
        if isinstance(self.mlp, bool) or not isinstance(self.mlp, Integral) or self.mlp < 0:
            raise ConfigError(f"lstm.mlp: {self.mlp!r} must be an integer >= 0")
        check_dropout("lstm", self.dropout)


@register("lstm", config=LSTMConfig)
class LSTMTagger(TaggerNetwork):
    """LSTM summary of a track, then an MLP to logits.

    Parameters
    ----------
    n_tags : int
        Outputs.
    n_bins : int
        Size of each frame vector.
    n_frames : int
        Typical sequence length (not used: any length works).
    config : LSTMConfig
    """

    input_kind: ClassVar[str] = "sequence"

    def __init__(self, *, n_tags: int, n_bins: int, n_frames: int, config: LSTMConfig) -> None:
        super().__init__()
        check_input("lstm", n_tags=n_tags, n_bins=n_bins, n_frames=n_frames)
        self.n_bins = n_bins
        self.lstm = nn.LSTM(
            input_size=n_bins,
            hidden_size=config.hidden,
            num_layers=config.layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.directions = 2 if config.bidirectional else 1
        summary = config.hidden * self.directions
        if config.mlp:
            self.mlp: nn.Module = nn.Sequential(
                nn.Dropout(config.dropout), nn.Linear(summary, config.mlp), nn.ReLU()
            )
            self.embedding_dim = config.mlp
        else:
            self.mlp = nn.Identity()
            self.embedding_dim = summary
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(self.embedding_dim, n_tags)
        )

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """MLP hidden layer on the final LSTM state, shape (batch, embedding_dim).

        Parameters
        ----------
        x : Tensor, shape (batch, time, n_bins)
            Padded sequences (padding after each sequence's end).
        lengths : Tensor of int64, shape (batch,), optional
            Valid steps of each sequence, in 1..time; ``None``: all ``time`` steps.
        """
        if x.dim() != 3 or x.shape[2] != self.n_bins or x.shape[1] < 1:
            raise PipelineError(
                f"lstm: input of shape {tuple(x.shape)} is not (batch, time, {self.n_bins})"
            )
        batch, time, _ = x.shape
        if lengths is None:
            lengths = torch.full((batch,), time, dtype=torch.int64)
        lengths = lengths.to("cpu", torch.int64)  # pack_padded_sequence wants CPU lengths
        if lengths.shape != (batch,) or bool((lengths < 1).any()) or bool((lengths > time).any()):
            raise PipelineError(
                f"lstm: lengths {lengths.tolist()} must be {batch} values in 1..{time}"
            )
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)  # h_n: (layers * directions, B, hidden)
        last = h_n[-self.directions :]  # (directions, B, hidden): the top layer
        summary = last.transpose(0, 1).reshape(batch, -1)  # (B, directions * hidden)
        return self.mlp(summary)  # (B, embedding_dim)
