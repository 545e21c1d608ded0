"""Sample-level deep CNN on raw waveforms of Lee, Park, Kim & Nam (2017).

J. Lee, J. Park, K. L. Kim and J. Nam, "Sample-level deep convolutional neural networks for
music auto-tagging using raw waveforms", SMC 2017. Input: waveforms, shape
(batch, n_bins, n_samples) with ``n_bins = 1`` (mono; more rows are taken as channels),
e.g. 59,049 = 3^10 samples (3.69 s at 16 kHz); a 2-D (batch, n_samples) input is read as mono.

The 3^9 model: a strided convolution (kernel 3, stride 3), then nine blocks of
conv(3) -> batch norm -> ReLU -> max pool(3), which reduce 59,049 samples to 1 step;
channels ``c, c, c, 2c x 6, 4c`` (the paper: 128, 128, 128, 256 x 6, 512). Pooling kernels
are clamped to the input length and a global max pool takes whatever is left, so other
lengths work. Dropout and a dense output layer follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.models.layers import (
    TaggerNetwork,
    check_dropout,
    check_input,
    check_positive,
    pool_schedule,
)
from pipeline.models.registry import register

__all__ = ["SampleLevelCNN", "SampleLevelConfig"]

#: Channel multipliers of the strided convolution and the nine blocks.
CHANNELS: list[int] = [1, 1, 1, 2, 2, 2, 2, 2, 2, 4]


@dataclass(frozen=True, kw_only=True)
class SampleLevelConfig:
    """Hyper-parameters of :class:`SampleLevelCNN`.

    Parameters
    ----------
    channels : int
        Channels of the first layers (the paper: 128); the last block has ``4 * channels``.
    dropout : float
        Dropout before the output layer (the paper: 0.5).
    """

    channels: int = 16
    dropout: float = 0.5

    def __post_init__(self) -> None:
        check_positive("sample_level", channels=self.channels)
        check_dropout("sample_level", self.dropout)


class _SampleBlock(nn.Module):
    """Conv1d (kernel 3, same padding) -> BN -> ReLU -> max pool."""

    def __init__(self, *, in_channels: int, out_channels: int, pool: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm1d(out_channels)
        self.pool = nn.MaxPool1d(pool) if pool > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, T) -> (B, out, T // pool)."""
        return self.pool(torch.relu(self.bn(self.conv(x))))


@register("sample_level", config=SampleLevelConfig)
class SampleLevelCNN(TaggerNetwork):
    """Sample-level CNN (3^9 model).

    Parameters
    ----------
    n_tags : int
        Outputs.
    n_bins : int
        Input channels (1 for mono waveforms).
    n_frames : int
        Samples per example.
    config : SampleLevelConfig
    """

    input_kind: ClassVar[str] = "window"

    def __init__(
        self, *, n_tags: int, n_bins: int, n_frames: int, config: SampleLevelConfig
    ) -> None:
        super().__init__()
        check_input("sample_level", n_tags=n_tags, n_bins=n_bins, n_frames=n_frames)
        self.n_bins = n_bins
        widths = [config.channels * m for m in CHANNELS]
        self.stem = nn.Sequential(  # strided "frame-level" conv: 3 samples, stride 3
            nn.Conv1d(n_bins, widths[0], kernel_size=3, stride=3, bias=False),
            nn.BatchNorm1d(widths[0]),
            nn.ReLU(),
        )
        pools = pool_schedule(max(1, n_frames // 3), [3] * (len(CHANNELS) - 1))
        self.blocks = nn.Sequential(
            *(
                _SampleBlock(in_channels=c_in, out_channels=c_out, pool=pool)
                for c_in, c_out, pool in zip(widths[:-1], widths[1:], pools, strict=True)
            )
        )
        self.embedding_dim = widths[-1]
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(self.embedding_dim, n_tags)
        )

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Global max of the last block, shape (batch, 4 * channels).

        Parameters
        ----------
        x : Tensor, shape (batch, n_bins, n_samples) or (batch, n_samples) for mono
        lengths : ignored
        """
        given = tuple(x.shape)
        if x.dim() == 2 and self.n_bins == 1:
            x = x.unsqueeze(1)  # (B, 1, N)
        if x.dim() != 3 or x.shape[1] != self.n_bins or x.shape[2] < 3:
            raise PipelineError(
                f"sample_level: input of shape {given} is not "
                f"(batch, {self.n_bins}, n_samples >= 3)"
            )
        h = self.stem(x)  # (B, c, N // 3)
        h = self.blocks(h)  # (B, 4c, N // 3^10): 1 step for 59,049 samples
        return h.amax(dim=2)  # (B, 4c)
