"""Which torch device a job uses."""

from __future__ import annotations

import torch

from pipeline.errors import ConfigError

__all__ = ["torch_device"]


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def torch_device(device: str | None) -> torch.device:
    """A torch device; None: CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        out = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"device: {device!r} is not a torch device ({exc})") from exc
    if out.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} asked for, but CUDA is not available")
    return out
