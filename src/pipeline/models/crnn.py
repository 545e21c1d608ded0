"""CRNN: convolutional recurrent tagger of Choi, Fazekas, Sandler & Cho (2017).

K. Choi, G. Fazekas, M. Sandler and K. Cho, "Convolutional recurrent neural networks for
music classification", ICASSP 2017. Input: normalised log-mel windows, shape
(batch, n_bins, n_frames) (the paper: 96 x 1,366, zero-padded to 1,440 frames).

Four 3x3 convolutional blocks (batch norm, ELU, max pooling (2,2), (3,3), (4,4), (4,4),
dropout 0.1) reduce the frequency axis to 1 and the time axis by 96; a 2-layer GRU reads the
remaining time steps and its last hidden state is the embedding. Pooling kernels are clamped
to the input size and any frequency rows left are max-pooled, so any input size works.
Channels are ``width * (1, 2, 2, 2)`` (the paper's 0.4M-parameter model: 64, 128, 128, 128,
GRU 32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from pipeline.models.layers import (
    ConvBlock2d,
    TaggerNetwork,
    check_activation,
    check_dropout,
    check_input,
    check_positive,
    check_window,
    pool_schedule,
)
from pipeline.models.registry import register

__all__ = ["CRNN", "CRNNConfig"]

#: The paper's pooling (freq, time) per convolutional block, and channel multipliers.
POOLING: list[tuple[int, int]] = [(2, 2), (3, 3), (4, 4), (4, 4)]
CHANNELS: list[int] = [1, 2, 2, 2]


@dataclass(frozen=True, kw_only=True)
class CRNNConfig:
    """Hyper-parameters of :class:`CRNN`.

    Parameters
    ----------
    width : int
        Channels of the first block (then ``2 * width``).
    gru : int
        Hidden units of each GRU layer (the embedding size).
    gru_layers : int
        Stacked GRU layers (the paper: 2).
    activation : {"elu", "relu"}
    conv_dropout : float
        Dropout after each convolutional block (the paper: 0.1).
    dropout : float
        Dropout between GRU layers and before the classifier.
    """

    width: int = 4
    gru: int = 32
    gru_layers: int = 2
    activation: str = "elu"
    conv_dropout: float = 0.1
    dropout: float = 0.3

    def __post_init__(self) -> None:
        check_positive("crnn", width=self.width, gru=self.gru, gru_layers=self.gru_layers)
        check_activation("crnn", self.activation)
        check_dropout("crnn", self.conv_dropout, name="conv_dropout")
        check_dropout("crnn", self.dropout)


@register("crnn", config=CRNNConfig)
class CRNN(TaggerNetwork):
    """Four convolutional blocks, then a GRU over time.

    Parameters
    ----------
    n_tags, n_bins, n_frames : int
        Outputs, mel bands, frames per window.
    config : CRNNConfig
    """

    input_kind: ClassVar[str] = "window"

    def __init__(self, *, n_tags: int, n_bins: int, n_frames: int, config: CRNNConfig) -> None:
        super().__init__()
        check_input("crnn", n_tags=n_tags, n_bins=n_bins, n_frames=n_frames)
        self.n_bins = n_bins
        freq_pools = pool_schedule(n_bins, [f for f, _ in POOLING])
        time_pools = pool_schedule(n_frames, [t for _, t in POOLING])
        blocks = []
        in_channels = 1
        for mult, pf, pt in zip(CHANNELS, freq_pools, time_pools, strict=True):
            out_channels = config.width * mult
            blocks.append(
                ConvBlock2d(
                    in_channels=in_channels,
                    out_channels=out_channels,
                    pool=(pf, pt),
                    activation=config.activation,
                    dropout=config.conv_dropout,
                )
            )
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.gru = nn.GRU(
            input_size=in_channels,
            hidden_size=config.gru,
            num_layers=config.gru_layers,
            batch_first=True,
            dropout=config.dropout if config.gru_layers > 1 else 0.0,
        )
        self.embedding_dim = config.gru
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.gru, n_tags))

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden state of the top GRU layer, shape (batch, gru).

        Parameters
        ----------
        x : Tensor, shape (batch, n_bins, n_frames)
        lengths : ignored
        """
        check_window("crnn", x, n_bins=self.n_bins)
        h = self.blocks(x.unsqueeze(1))  # (B, C, F', T'), F' = 1 for the paper's sizes
        h = h.amax(dim=2).transpose(1, 2)  # (B, T', C)
        _, last = self.gru(h)  # (layers, B, gru)
        return last[-1]  # (B, gru)
