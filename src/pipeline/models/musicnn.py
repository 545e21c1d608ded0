"""musicnn: musically motivated front end, dense mid end, temporal pooling back end.

J. Pons, O. Nieto, M. Prockup, E. M. Schmidt, A. F. Ehmann and X. Serra, "End-to-end learning
for music audio tagging at scale", ISMIR 2018; J. Pons and X. Serra, "musicnn: pre-trained
convolutional neural networks for music audio tagging", ISMIR 2019 late-breaking demo.
Input: normalised log-mel windows, shape (batch, n_bins, n_frames) (musicnn: 96 x 187 frames
of 3 s; here any length, e.g. 96 x 1,819).

- Front end: vertical *timbral* filters of 7 frames x a fraction of the mel axis (0.4, 0.7),
  max-pooled over frequency; horizontal *temporal* filters of 165, 128, 64 frames on the mean
  over the mel axis (the energy envelope). Outputs are concatenated along channels.
- Mid end: three 1-D convolutions (kernel 7) with batch norm and residual connections; the
  front-end and the three mid-end outputs are concatenated.
- Back end: max and mean pooling over time, dropout, a dense layer (the embedding, musicnn's
  "penultimate" layer), dropout and the output layer (logits).

musicnn's batch norm of the input is left out: windows arrive standardised per mel band
(``stats.json``). The timbral filters are computed as a matrix product with a banded weight
matrix, which equals ``nn.Conv2d`` (tested) and trains several times faster on CPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import ConfigError
from pipeline.models.layers import (
    TaggerNetwork,
    check_dropout,
    check_input,
    check_positive,
    check_window,
)
from pipeline.models.registry import register

__all__ = ["Musicnn", "MusicnnConfig"]


@dataclass(frozen=True, kw_only=True)
class MusicnnConfig:
    """Hyper-parameters of :class:`Musicnn`.

    Parameters
    ----------
    timbral_heights : tuple of float
        Heights of the timbral filters as fractions of the mel axis, in (0, 1].
    timbral_width : int
        Frames spanned by the timbral filters (musicnn: 7).
    timbral_filters : int
        Filters per timbral height (musicnn: 204 = 1.6 x 128; small here for CPUs).
    temporal_lengths : tuple of int
        Frames spanned by the temporal filters (Pons et al. 2018: 165, 128, 64).
    temporal_filters : int
        Filters per temporal length (musicnn: 51).
    mid_channels : int
        Channels of the mid-end convolutions (musicnn: 64, Pons et al. 2018: 512).
    dense : int
        Units of the back end's dense layer, the embedding (musicnn: 200, 2018: 500).
    dropout : float
        Dropout before and after the dense layer (musicnn: 0.5).
    """

    timbral_heights: tuple[float, ...] = (0.4, 0.7)
    timbral_width: int = 7
    timbral_filters: int = 4
    temporal_lengths: tuple[int, ...] = (165, 128, 64)
    temporal_filters: int = 4
    mid_channels: int = 16
    dense: int = 64
    dropout: float = 0.5

    def __post_init__(self) -> None:
        # YAML gives lists: store tuples so that the config stays immutable.
        object.__setattr__(self, "timbral_heights", tuple(self.timbral_heights))
        object.__setattr__(self, "temporal_lengths", tuple(self.temporal_lengths))
        if not self.timbral_heights and not self.temporal_lengths:
            raise ConfigError("musicnn: timbral_heights and temporal_lengths are both empty")
        for height in self.timbral_heights:
            if isinstance(height, bool) or not isinstance(height, Real):
                raise ConfigError(f"musicnn.timbral_heights: {height!r} is not a number")
            if not 0 < height <= 1:
                raise ConfigError(f"musicnn.timbral_heights: {height!r} is not in (0, 1]")
        for length in self.temporal_lengths:
            check_positive("musicnn", temporal_lengths=length)
        check_positive(
            "musicnn",
            timbral_width=self.timbral_width,
            timbral_filters=self.timbral_filters,
            temporal_filters=self.temporal_filters,
            mid_channels=self.mid_channels,
            dense=self.dense,
        )
        check_dropout("musicnn", self.dropout)


#: Frequency offsets of the timbral filters per matrix product (see ``_TimbralBlock``).
_OFFSETS_PER_PRODUCT = 16


class _TimbralBlock(nn.Module):
    """Timbral filters (valid in freq, same in time) -> ReLU -> BN -> max over frequency.

    Computed as one matrix product with a banded (Toeplitz) weight matrix instead of
    ``nn.Conv2d``: the same result, but a single-input-channel convolution with tall kernels
    is memory-bound on CPUs (im2col copies every input value ``height x width`` times) and
    its backward pass is several times slower than this GEMM.
    """

    place: torch.Tensor  # buffer (n_offsets, n_bins, height), set in __init__

    def __init__(self, *, filters: int, height: int, width: int, n_bins: int) -> None:
        super().__init__()
        self.filters, self.width = filters, width
        weight = torch.empty(filters, 1, height, width)
        nn.init.kaiming_uniform_(weight, a=5**0.5)  # nn.Conv2d's initialisation
        self.weight = nn.Parameter(weight[:, 0].clone())  # (filters, height, width)
        bound = 1 / (height * width) ** 0.5
        self.bias = nn.Parameter(torch.empty(filters).uniform_(-bound, bound))
        n_offsets = n_bins - height + 1
        # place[o, b, k] = 1 where filter row k meets mel bin b at frequency offset o
        place = torch.zeros(n_offsets, n_bins, height)
        offsets = torch.arange(n_offsets)[:, None]  # (O, 1)
        rows = torch.arange(height)[None, :]  # (1, height)
        place[offsets, offsets + rows, rows] = 1.0
        self.register_buffer("place", place, persistent=False)
        self.bn = nn.BatchNorm1d(filters)  # over all (offset, example, frame) positions

    def forward(self, taps: torch.Tensor, *, batch: int) -> torch.Tensor:
        """(n_bins * width, B * T) taps from :func:`time_taps` -> (B, filters, T)."""
        n_offsets, n_bins, height = self.place.shape
        band = torch.einsum("fkw,obk->fobw", self.weight, self.place)  # (filters, O, n_bins, w)
        # A filter at offset o meets only bins o .. o + height - 1: each group of offsets is
        # multiplied with the taps of the bins it meets (the skipped terms are exact zeros).
        parts = []
        for o0 in range(0, n_offsets, _OFFSETS_PER_PRODUCT):
            o1 = min(o0 + _OFFSETS_PER_PRODUCT, n_offsets)
            b0, b1 = o0, o1 + height - 1  # bins met by offsets o0 .. o1 - 1
            weights = band[:, o0:o1, b0:b1].reshape(self.filters * (o1 - o0), -1)
            rows = taps[b0 * self.width : b1 * self.width]  # (bins * width, B * T)
            parts.append(torch.mm(weights, rows).view(self.filters, o1 - o0, -1))
        h = torch.cat(parts, dim=1).view(self.filters, -1)  # (filters, O * B * T)
        h = torch.relu(h + self.bias[:, None])
        h = self.bn(h.unsqueeze(0)).view(self.filters, n_offsets, batch, -1)  # (filters, O, B, T)
        return h.amax(dim=1).transpose(0, 1)  # (B, filters, T)


def time_taps(x: torch.Tensor, *, width: int) -> torch.Tensor:
    """Stack ``width`` time-shifted copies of every mel band ('same' padding in time).

    Parameters
    ----------
    x : Tensor, shape (batch, n_bins, n_frames)
    width : int

    Returns
    -------
    Tensor, shape (n_bins * width, batch * n_frames)
        Row ``b * width + j`` holds band ``b`` shifted by ``j - (width - 1) // 2`` frames.
    """
    batch, n_bins, frames = x.shape
    taps = F.pad(x, ((width - 1) // 2, width // 2)).unfold(2, width, 1)  # (B, n_bins, T, w)
    return taps.permute(1, 3, 0, 2).reshape(n_bins * width, batch * frames)


class _TemporalBlock(nn.Module):
    """1-D conv (same padding, also for even lengths) -> ReLU -> BN on the mel-axis mean."""

    def __init__(self, *, filters: int, length: int) -> None:
        super().__init__()
        self.padding = ((length - 1) // 2, length // 2)  # (left, right)
        self.conv = nn.Conv1d(1, filters, kernel_size=length)
        self.bn = nn.BatchNorm1d(filters)

    def forward(self, envelope: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) -> (B, filters, T)."""
        h = self.conv(F.pad(envelope, self.padding))  # (B, filters, T)
        return self.bn(torch.relu(h))


class _MidConv(nn.Module):
    """1-D conv (kernel 7, same padding) -> ReLU -> BN."""

    def __init__(self, *, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=7, padding=3)
        self.bn = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, T) -> (B, out, T)."""
        return self.bn(torch.relu(self.conv(x)))


@register("musicnn", config=MusicnnConfig)
class Musicnn(TaggerNetwork):
    """The musicnn tagger.

    Parameters
    ----------
    n_tags, n_bins, n_frames : int
        Outputs, mel bands, frames per window.
    config : MusicnnConfig
    """

    input_kind: ClassVar[str] = "window"

    def __init__(self, *, n_tags: int, n_bins: int, n_frames: int, config: MusicnnConfig) -> None:
        super().__init__()
        check_input("musicnn", n_tags=n_tags, n_bins=n_bins, n_frames=n_frames)
        self.n_bins = n_bins
        self.timbral_width = config.timbral_width
        self.timbral = nn.ModuleList(
            _TimbralBlock(
                filters=config.timbral_filters,
                height=max(1, int(round(h * n_bins))),
                width=config.timbral_width,
                n_bins=n_bins,
            )
            for h in config.timbral_heights
        )
        self.temporal = nn.ModuleList(
            _TemporalBlock(filters=config.temporal_filters, length=n)
            for n in config.temporal_lengths
        )
        front = config.timbral_filters * len(self.timbral)
        front += config.temporal_filters * len(self.temporal)
        mid = config.mid_channels
        self.mid = nn.ModuleList(
            [
                _MidConv(in_channels=front, out_channels=mid),
                _MidConv(in_channels=mid, out_channels=mid),
                _MidConv(in_channels=mid, out_channels=mid),
            ]
        )
        pooled = 2 * (front + 3 * mid)  # max and mean of every front / mid-end channel
        self.back = nn.Sequential(
            nn.BatchNorm1d(pooled),
            nn.Dropout(config.dropout),
            nn.Linear(pooled, config.dense),
            nn.ReLU(),
            nn.BatchNorm1d(config.dense),
        )
        self.embedding_dim = config.dense
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.dense, n_tags))

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The back end's dense layer ("penultimate"), shape (batch, dense).

        Parameters
        ----------
        x : Tensor, shape (batch, n_bins, n_frames)
        lengths : ignored
        """
        check_window("musicnn", x, n_bins=self.n_bins)
        envelope = x.mean(dim=1, keepdim=True)  # (B, 1, T)
        front = []
        if len(self.timbral):
            taps = time_taps(x, width=self.timbral_width)  # (n_bins * width, B * T)
            front += [block(taps, batch=x.shape[0]) for block in self.timbral]  # (B, f, T)
        front += [block(envelope) for block in self.temporal]  # each (B, temporal_filters, T)
        h0 = torch.cat(front, dim=1)  # (B, front, T)
        h1 = self.mid[0](h0)  # (B, mid, T)
        h2 = self.mid[1](h1) + h1  # (B, mid, T)
        h3 = self.mid[2](h2) + h2  # (B, mid, T)
        h = torch.cat([h0, h1, h2, h3], dim=1)  # (B, front + 3 mid, T)
        pooled = torch.cat([h.amax(dim=2), h.mean(dim=2)], dim=1)  # (B, 2 (front + 3 mid))
        return self.back(pooled)  # (B, dense)
