"""Short-chunk CNN and short-chunk ResNet of Won, Ferraro, Bogdanov & Serra (2020).

M. Won, A. Ferraro, D. Bogdanov and X. Serra, "Evaluation of CNN-based automatic music
tagging models", SMC 2020. Input: normalised log-mel crops, shape (batch, n_bins, n_frames)
(the paper: 128 mel bands x ~231 frames = 3.69 s at 16 kHz, hop 256; here any n_bins, e.g.
96, and crops of about 128 frames or more).

Seven blocks of 3x3 convolutions (``short_chunk_cnn``: conv, batch norm, ReLU, 2x2 max
pooling; ``short_chunk_resnet``: residual blocks with stride 2) with channels
``c, c, 2c, 2c, 2c, 2c, 4c``; a global max pool over what is left (the paper: 1 x 1 after
seven halvings of 128 x 231), a dense layer with batch norm and ReLU (the embedding), dropout
and the output layer. Pooling kernels are clamped to the input size so 96 bands work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from pipeline.models.layers import (
    ConvBlock2d,
    TaggerNetwork,
    check_dropout,
    check_input,
    check_positive,
    check_window,
    pool_schedule,
)
from pipeline.models.registry import register

__all__ = ["ShortChunkCNN", "ShortChunkConfig", "ShortChunkResNet"]

#: Channel multipliers of the seven blocks.
CHANNELS: list[int] = [1, 1, 2, 2, 2, 2, 4]


@dataclass(frozen=True, kw_only=True)
class ShortChunkConfig:
    """Hyper-parameters of :class:`ShortChunkCNN` and :class:`ShortChunkResNet`.

    Parameters
    ----------
    channels : int
        Channels of the first block (the paper: 128); the last block has ``4 * channels``.
    dropout : float
        Dropout before the output layer (the paper: 0.5).
    """

    channels: int = 16
    dropout: float = 0.5

    def __post_init__(self) -> None:
        check_positive("short_chunk", channels=self.channels)
        check_dropout("short_chunk", self.dropout)


class _ResBlock(nn.Module):
    """Residual block: conv3x3 (stride) -> BN -> ReLU -> conv3x3 -> BN, plus a shortcut.

    The shortcut is a strided 3x3 conv + BN when the stride or the channels change (as in
    the paper's code), the identity otherwise; ReLU after the sum.
    """

    def __init__(self, *, in_channels: int, out_channels: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != (1, 1) or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, F, T) -> (B, out, ceil(F / stride), ceil(T / stride))."""
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return torch.relu(h + self.shortcut(x))


class _ShortChunk(TaggerNetwork):
    """Shared input norm, head and embedding of the two short-chunk models."""

    input_kind: ClassVar[str] = "window"
    name: ClassVar[str] = "short_chunk"

    def __init__(self, *, n_tags: int, n_bins: int, config: ShortChunkConfig) -> None:
        super().__init__()
        self.n_bins = n_bins
        self.input_bn = nn.BatchNorm2d(1)
        width = config.channels * CHANNELS[-1]
        self.dense = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU())
        self.embedding_dim = width
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(width, n_tags))
        self.blocks: nn.Module = nn.Identity()

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The dense layer after the global max pool, shape (batch, 4 * channels).

        Parameters
        ----------
        x : Tensor, shape (batch, n_bins, n_frames)
        lengths : ignored
        """
        check_window(self.name, x, n_bins=self.n_bins)
        h = self.blocks(self.input_bn(x.unsqueeze(1)))  # (B, 4c, F', T')
        return self.dense(h.amax(dim=(2, 3)))  # (B, 4c)


@register("short_chunk_cnn", config=ShortChunkConfig)
class ShortChunkCNN(_ShortChunk):
    """Seven conv blocks with 2x2 max pooling (clamped to the input size).

    Parameters
    ----------
    n_tags, n_bins, n_frames : int
        Outputs, mel bands, frames per crop.
    config : ShortChunkConfig
    """

    name: ClassVar[str] = "short_chunk_cnn"

    def __init__(
        self, *, n_tags: int, n_bins: int, n_frames: int, config: ShortChunkConfig
    ) -> None:
        check_input(self.name, n_tags=n_tags, n_bins=n_bins, n_frames=n_frames)
        super().__init__(n_tags=n_tags, n_bins=n_bins, config=config)
        freq_pools = pool_schedule(n_bins, [2] * len(CHANNELS))
        time_pools = pool_schedule(n_frames, [2] * len(CHANNELS))
        blocks = []
        in_channels = 1
        for mult, pf, pt in zip(CHANNELS, freq_pools, time_pools, strict=True):
            out_channels = config.channels * mult
            blocks.append(
                ConvBlock2d(in_channels=in_channels, out_channels=out_channels, pool=(pf, pt))
            )
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)


@register("short_chunk_resnet", config=ShortChunkConfig)
class ShortChunkResNet(_ShortChunk):
    """Seven residual blocks with stride 2 (1 along an axis already reduced to size 1).

    Parameters
    ----------
    n_tags, n_bins, n_frames : int
        Outputs, mel bands, frames per crop.
    config : ShortChunkConfig
    """

    name: ClassVar[str] = "short_chunk_resnet"

    def __init__(
        self, *, n_tags: int, n_bins: int, n_frames: int, config: ShortChunkConfig
    ) -> None:
        check_input(self.name, n_tags=n_tags, n_bins=n_bins, n_frames=n_frames)
        super().__init__(n_tags=n_tags, n_bins=n_bins, config=config)
        blocks = []
        in_channels = 1
        f, t = n_bins, n_frames
        for mult in CHANNELS:
            out_channels = config.channels * mult
            stride = (2 if f > 1 else 1, 2 if t > 1 else 1)
            blocks.append(
                _ResBlock(in_channels=in_channels, out_channels=out_channels, stride=stride)
            )
            f, t = -(-f // stride[0]), -(-t // stride[1])  # ceil: padding 1, kernel 3
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
