"""Probes on frozen pretrained-encoder embeddings (``kind: encoder`` feature sets), as in the
MARBLE and HEAR benchmarks: ``probe_linear`` (one linear layer) and ``probe_mlp`` (one
hidden layer, 512 wide by default), over one stored layer or a learned softmax-weighted sum
of all of them.

Input: the stored window, normalised per layer with the train split's statistics,
shape (batch, n_layers, dim). They are window models like the CNNs: the same training loop,
validation, checkpoint selection and song-level aggregation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from pipeline.errors import ConfigError
from pipeline.models.layers import TaggerNetwork, check_dropout, check_input, check_window
from pipeline.models.registry import register

__all__ = ["ProbeConfig", "MLPProbeConfig", "LinearProbe", "MLPProbe"]


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    """Hyper-parameters of :class:`LinearProbe`.

    Parameters
    ----------
    layer : int or None
        The stored layer (row of a window; negative from the end) the probe reads; None
        learns a softmax-weighted sum of all layers (weights start equal).
    dropout : float
        Dropout on the probe's input.
    """

    layer: int | None = None
    dropout: float = 0.0

    def __post_init__(self) -> None:
        check_dropout("probe", self.dropout)


@dataclass(frozen=True, kw_only=True)
class MLPProbeConfig(ProbeConfig):
    """Hyper-parameters of :class:`MLPProbe`: those of :class:`ProbeConfig` and

    Parameters
    ----------
    hidden : int
        Width of the hidden layer (MARBLE: 512).
    """

    hidden: int = 512

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden < 1:
            raise ConfigError(f"probe_mlp.hidden: {self.hidden!r} must be >= 1")


class _Probe(TaggerNetwork):
    """The layer choice shared by the probes: :meth:`pooled` is (batch, dim)."""

    input_kind: ClassVar[str] = "window"
    name: ClassVar[str] = "probe"

    def __init__(self, *, n_tags: int, n_bins: int, n_frames: int, config: ProbeConfig) -> None:
        super().__init__()
        check_input(self.name, n_tags=n_tags, n_bins=n_bins, n_frames=n_frames)
        if config.layer is not None and not -n_bins <= config.layer < n_bins:
            raise ConfigError(
                f"{self.name}.layer: {config.layer} is not a stored layer (0..{n_bins - 1})"
            )
        self.n_bins = n_bins
        self.layer = None if config.layer is None else config.layer % n_bins
        self.layer_logits = nn.Parameter(torch.zeros(n_bins), requires_grad=config.layer is None)
        self.dropout = nn.Dropout(config.dropout)

    def layer_weights(self) -> torch.Tensor:
        """Weight of each stored layer, shape (n_layers,): softmax of the learned logits,
        or one-hot at the chosen layer."""
        if self.layer is not None:
            return nn.functional.one_hot(torch.tensor(self.layer), self.n_bins).float()
        return torch.softmax(self.layer_logits.detach().float(), dim=0)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_layers, dim) -> (batch, dim): the chosen layer or the weighted sum."""
        check_window(self.name, x, n_bins=self.n_bins)
        if self.layer is not None:
            return self.dropout(x[:, self.layer])
        weights = torch.softmax(self.layer_logits, dim=0).to(x.dtype)
        return self.dropout(torch.einsum("l,bld->bd", weights, x))


@register("probe_linear", config=ProbeConfig)
class LinearProbe(_Probe):
    """A linear probe: logits = W · layer(x) + b; its embedding is the (pooled) layer."""

    name: ClassVar[str] = "probe_linear"

    def __init__(self, *, n_tags: int, n_bins: int, n_frames: int, config: ProbeConfig) -> None:
        super().__init__(n_tags=n_tags, n_bins=n_bins, n_frames=n_frames, config=config)
        self.embedding_dim = n_frames
        self.classifier = nn.Linear(n_frames, n_tags)

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, n_layers, dim) -> (batch, dim)."""
        return self.pooled(x)


@register("probe_mlp", config=MLPProbeConfig)
class MLPProbe(_Probe):
    """An MLP probe: logits = W2 · ReLU(W1 · layer(x) + b1) + b2; its embedding is the
    hidden layer."""

    name: ClassVar[str] = "probe_mlp"

    def __init__(self, *, n_tags: int, n_bins: int, n_frames: int, config: MLPProbeConfig) -> None:
        super().__init__(n_tags=n_tags, n_bins=n_bins, n_frames=n_frames, config=config)
        self.embedding_dim = config.hidden
        self.hidden = nn.Sequential(nn.Linear(n_frames, config.hidden), nn.ReLU())
        self.classifier = nn.Linear(config.hidden, n_tags)

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, n_layers, dim) -> (batch, hidden)."""
        return self.hidden(self.pooled(x))
