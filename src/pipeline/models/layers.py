"""Blocks shared by the tagging architectures, AutoPool, and config checks.

- :class:`ConvBlock2d`: 3x3 convolution, batch norm, activation, max pooling (FCN, CRNN,
  short-chunk CNN).
- :class:`AutoPool`: learned per-tag pooling of window predictions into song predictions
  (McFee, Salamon & Bello 2018).
- :func:`pool_schedule`: a paper's pooling kernels, clamped so that any input size works.
- :class:`TaggerNetwork`: the base class (``forward = classifier(embed(x))``).
- :func:`count_parameters`, and small validators that raise :class:`ConfigError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import ClassVar

import torch
from torch import nn

from pipeline.errors import ConfigError, PipelineError

__all__ = [
    "ACTIVATIONS",
    "AutoPool",
    "ConvBlock2d",
    "count_parameters",
    "check_activation",
    "check_dropout",
    "check_input",
    "check_positive",
    "check_window",
    "pool_schedule",
    "TaggerNetwork",
]

#: Activation name (a config value) -> module class.
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU}


def count_parameters(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of a model.

    Parameters
    ----------
    model : nn.Module
    trainable_only : bool
        Count only parameters with ``requires_grad``.

    Returns
    -------
    int
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def check_positive(architecture: str, **values: int) -> None:
    """Raise ConfigError unless every value is an integer >= 1 (booleans are refused)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ConfigError(f"{architecture}.{name}: {value!r} must be an integer >= 1")


def check_dropout(architecture: str, dropout: float, *, name: str = "dropout") -> None:
    """Raise ConfigError unless ``0 <= dropout < 1``."""
    if isinstance(dropout, bool) or not isinstance(dropout, Real) or not 0 <= dropout < 1:
        raise ConfigError(f"{architecture}.{name}: {dropout!r} must be a number in [0, 1)")


def check_activation(architecture: str, activation: str) -> None:
    """Raise ConfigError unless the name is a key of :data:`ACTIVATIONS`."""
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"{architecture}.activation: {activation!r} is not one of {sorted(ACTIVATIONS)}"
        )


def check_input(architecture: str, *, n_tags: int, n_bins: int, n_frames: int) -> None:
    """Raise ConfigError unless the model's sizes are integers >= 1."""
    check_positive(architecture, n_tags=n_tags, n_bins=n_bins, n_frames=n_frames)


def pool_schedule(size: int, kernels: Sequence[int]) -> list[int]:
    """Clamp a sequence of max-pooling kernels (stride = kernel) to an input size.

    Each kernel is reduced to the size left at its stage, so the pooled size never reaches 0
    and a schedule designed for, e.g., 96 mel bands x 1,366 frames also works for 128 bands
    or 231 frames; whatever is left at the end is pooled by a global pooling layer.

    Parameters
    ----------
    size : int
        Input size along one axis.
    kernels : sequence of int
        The schedule's kernels along that axis.

    Returns
    -------
    list of int
        Kernels, each ``min(kernel, size left)``.

    Examples
    --------
    >>> pool_schedule(96, [2, 2, 2, 2, 2, 2, 2])
    [2, 2, 2, 2, 2, 2, 1]
    """
    out = []
    for kernel in kernels:
        k = max(1, min(kernel, size))
        out.append(k)
        size //= k
    return out


class ConvBlock2d(nn.Module):
    """Conv 3x3 (same padding) -> batch norm -> activation -> max pool -> dropout.

    Parameters
    ----------
    in_channels, out_channels : int
    pool : tuple of int
        Max-pooling kernel and stride (freq, time); ``(1, 1)`` pools nothing.
    activation : str
        A key of :data:`ACTIVATIONS`.
    dropout : float
        Dropout after pooling (0: none).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        pool: tuple[int, int],
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = ACTIVATIONS[activation]()
        self.pool = nn.MaxPool2d(pool) if pool != (1, 1) else nn.Identity()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in, F, T) -> (batch, out, F // pool[0], T // pool[1])."""
        return self.drop(self.pool(self.act(self.bn(self.conv(x)))))


class AutoPool(nn.Module):
    """Adaptive pooling of window predictions into song predictions, one alpha per tag.

    McFee, Salamon & Bello (2018), "Adaptive pooling operators for weakly labeled sound event
    detection", IEEE/ACM TASLP 26(11). With window probabilities ``p = sigmoid(logits)``, the
    song probability of tag ``k`` is ``sum_w p[w, k] * softmax_w(alpha[k] * p[w, k])``:
    ``alpha = 0`` is the mean over windows, ``alpha -> +inf`` the max, ``alpha -> -inf`` the
    min. ``alpha`` starts at 0 (mean pooling) and is learned.

    Parameters
    ----------
    n_tags : int
        Tags, one alpha each.

    Notes
    -----
    The output is a probability, not a logit: train it with ``BCELoss``, or pass
    ``torch.logit(p, eps=1e-6)`` to ``BCEWithLogitsLoss``.
    """

    def __init__(self, n_tags: int) -> None:
        super().__init__()
        check_positive("autopool", n_tags=n_tags)
        self.alpha = nn.Parameter(torch.zeros(n_tags))  # (n_tags,)

    def forward(self, logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pool window logits into song probabilities.

        Parameters
        ----------
        logits : Tensor, shape (batch, n_windows, n_tags)
            Window-level logits.
        mask : Tensor of bool, shape (batch, n_windows), optional
            True for real windows, False for padding; every song needs one real window.

        Returns
        -------
        Tensor, shape (batch, n_tags)
            Song-level probabilities.
        """
        if logits.dim() != 3 or logits.shape[-1] != self.alpha.shape[0]:
            raise PipelineError(
                f"AutoPool: logits of shape {tuple(logits.shape)} are not "
                f"(batch, n_windows, {self.alpha.shape[0]})"
            )
        p = torch.sigmoid(logits)  # (B, W, K)
        scores = self.alpha * p  # (B, W, K)
        if mask is not None:
            if mask.shape != logits.shape[:2]:
                raise PipelineError(
                    f"AutoPool: mask of shape {tuple(mask.shape)} is not {tuple(logits.shape[:2])}"
                )
            empty = ~mask.any(dim=1)
            if bool(empty.any()):
                raise PipelineError(
                    f"AutoPool: songs {empty.nonzero().flatten().tolist()} have no real window"
                )
            scores = scores.masked_fill(~mask[:, :, None], float("-inf"))
        weights = torch.softmax(scores, dim=1)  # (B, W, K), sums to 1 over windows
        return (p * weights).sum(dim=1)  # (B, K)


class TaggerNetwork(nn.Module):
    """Base of every architecture: ``forward(x) = classifier(embed(x))``.

    Subclasses set :attr:`input_kind`, :attr:`embedding_dim`, a ``classifier`` module taking
    (batch, embedding_dim) to (batch, n_tags) logits, and implement :meth:`embed`.
    """

    input_kind: ClassVar[str] = "window"
    embedding_dim: int
    classifier: nn.Module

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings, shape (batch, embedding_dim)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits, shape (batch, n_tags)."""
        return self.classifier(self.embed(x, lengths))


def check_window(architecture: str, x: torch.Tensor, *, n_bins: int) -> None:
    """Raise PipelineError unless ``x`` has shape (batch, n_bins, n_frames)."""
    if x.dim() != 3 or x.shape[1] != n_bins:
        raise PipelineError(
            f"{architecture}: input of shape {tuple(x.shape)} is not (batch, {n_bins}, n_frames)"
        )
