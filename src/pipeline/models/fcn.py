"""FCN: the fully convolutional tagger of Choi, Fazekas & Sandler (2016).

K. Choi, G. Fazekas and M. Sandler, "Automatic tagging using deep convolutional neural
networks", ISMIR 2016. Input: normalised log-mel windows, shape (batch, n_bins, n_frames)
(the paper: 96 mel bands x 1,366 frames of 29.1 s at 12 kHz; here 96 x 1,819 at 16 kHz).

FCN-4 and FCN-5 stack 3x3 convolutions with batch norm, ELU and max pooling until the
feature map is 1x1; the paper's pooling schedules are clamped to the input size
(:func:`pool_schedule`) and a global max pool takes whatever is left, so any input size works.
Channels double at each block from ``width`` (the paper: 128 ... 2048; small here for CPUs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from pipeline.errors import ConfigError
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

__all__ = ["FCN", "FCNConfig", "POOLING"]

#: Pooling schedules (freq, time) of the paper (for 96 x 1,366 inputs), by depth.
POOLING: dict[int, list[tuple[int, int]]] = {
    4: [(2, 4), (4, 5), (3, 8), (4, 8)],
    5: [(2, 4), (2, 4), (2, 4), (3, 5), (4, 4)],
}


@dataclass(frozen=True, kw_only=True)
class FCNConfig:
    """Hyper-parameters of :class:`FCN`.

    Parameters
    ----------
    depth : {4, 5}
        FCN-4 or FCN-5 (convolutional blocks).
    width : int
        Channels of the first block; block ``i`` has ``width * 2**i``.
    activation : {"elu", "relu"}
    dropout : float
        Dropout before the classifier.
    """

    depth: int = 4
    width: int = 4
    activation: str = "elu"
    dropout: float = 0.3

    def __post_init__(self) -> None:
        if self.depth not in POOLING:
            raise ConfigError(f"fcn.depth: {self.depth!r} is not one of {sorted(POOLING)}")
        check_positive("fcn", width=self.width)
        check_activation("fcn", self.activation)
        check_dropout("fcn", self.dropout)


@register("fcn", config=FCNConfig)
class FCN(TaggerNetwork):
    """Fully convolutional network (FCN-4 / FCN-5) on log-mel windows.

    Parameters
    ----------
    n_tags, n_bins, n_frames : int
        Outputs, mel bands, frames per window.
    config : FCNConfig
    """

    input_kind: ClassVar[str] = "window"

    def __init__(self, *, n_tags: int, n_bins: int, n_frames: int, config: FCNConfig) -> None:
        super().__init__()
        check_input("fcn", n_tags=n_tags, n_bins=n_bins, n_frames=n_frames)
        self.n_bins = n_bins
        freq_pools = pool_schedule(n_bins, [f for f, _ in POOLING[config.depth]])
        time_pools = pool_schedule(n_frames, [t for _, t in POOLING[config.depth]])
        channels = [config.width * 2**i for i in range(config.depth)]
        blocks = []
        in_channels = 1
        for out_channels, pf, pt in zip(channels, freq_pools, time_pools, strict=True):
            blocks.append(
                ConvBlock2d(
                    in_channels=in_channels,
                    out_channels=out_channels,
                    pool=(pf, pt),
                    activation=config.activation,
                )
            )
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.embedding_dim = channels[-1]
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(self.embedding_dim, n_tags)
        )

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Global max of the last block, shape (batch, embedding_dim).

        Parameters
        ----------
        x : Tensor, shape (batch, n_bins, n_frames)
        lengths : ignored
        """
        check_window("fcn", x, n_bins=self.n_bins)
        h = self.blocks(x.unsqueeze(1))  # (B, C, F', T'): 1 x 1 for the paper's sizes
        return h.amax(dim=(2, 3))  # (B, C)
