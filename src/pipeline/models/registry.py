"""Tagging architectures behind one registry (no if/elif on names).

Every architecture is an ``nn.Module`` with a typed, keyword-only config dataclass, built by
:func:`build_model` from the names and hyper-parameters in ``config.yaml``:

- ``forward(x, lengths=None) -> logits``, shape (batch, n_tags); train with
  ``BCEWithLogitsLoss``.
- ``embed(x, lengths=None) -> embeddings``, shape (batch, embedding_dim): the layer before the
  classifier, used for similarity search and two-stage models.
- ``input_kind`` (class attribute): ``"window"`` models take normalised feature windows or
  crops, shape (batch, n_bins, n_frames); ``"sequence"`` models take a whole track as a
  sequence of frame vectors, shape (batch, time, n_bins), with ``lengths`` (batch,).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from pipeline.errors import ConfigError
from pipeline.models.layers import TaggerNetwork

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "build_model",
    "register",
    "parse_hparams",
]


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: its module class and its config dataclass."""

    module: type[TaggerNetwork]
    config: type


#: Architecture name -> module class and config class. Filled by :func:`register`.
ARCHITECTURES: dict[str, Architecture] = {}


_T = TypeVar("_T", bound=type[TaggerNetwork])


def register(name: str, *, config: type) -> Callable[[_T], _T]:
    """Class decorator that adds an architecture to :data:`ARCHITECTURES`."""

    def add(module: _T) -> _T:
        ARCHITECTURES[name] = Architecture(module=module, config=config)
        return module

    return add


def build_model(
    architecture: str,
    *,
    n_tags: int,
    n_bins: int,
    n_frames: int,
    hparams: Mapping[str, Any] | None = None,
) -> TaggerNetwork:
    """Build a registered architecture.

    Parameters
    ----------
    architecture : str
        A key of :data:`ARCHITECTURES`.
    n_tags : int
        Outputs (logits) per example.
    n_bins : int
        Feature rows of the input (mel bands, MFCCs, or 1 for waveforms).
    n_frames : int
        Frames (or samples) per input example; for crops, the crop length.
    hparams : mapping, optional
        Fields of the architecture's config dataclass; unknown keys are a ConfigError.

    Returns
    -------
    TaggerNetwork
        The architecture's :class:`~pipeline.models.layers.TaggerNetwork`.
    """
    if architecture not in ARCHITECTURES:
        raise ConfigError(f"architecture {architecture!r} is not one of {sorted(ARCHITECTURES)}")
    spec = ARCHITECTURES[architecture]
    config = parse_hparams(spec.config, hparams, architecture=architecture)
    return spec.module(n_tags=n_tags, n_bins=n_bins, n_frames=n_frames, config=config)


def parse_hparams(config: type, hparams: Mapping[str, Any] | None, *, architecture: str) -> Any:
    """Build a hyper-parameter dataclass; unknown keys are a ConfigError naming them.

    Parameters
    ----------
    config : type
        A frozen, keyword-only dataclass whose ``__post_init__`` checks the values.
    hparams : mapping or None
    architecture : str
        For the message (``"bag_of_frames"``, ``"embedding_svm"``).
    """
    hparams = dict(hparams or {})
    allowed = {f.name for f in fields(config)}
    unknown = sorted(set(hparams) - allowed)
    if unknown:
        raise ConfigError(
            f"architecture {architecture!r}: unknown hyper-parameter(s) {unknown}; "
            f"allowed: {sorted(allowed)}"
        )
    return config(**hparams)
