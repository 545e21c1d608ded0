"""Which torch device a job uses."""

from __future__ import annotations

import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.io.device import torch_device


def test_default_is_cuda_when_available() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert torch_device(None) == torch.device(expected)


def test_named_devices() -> None:
    assert torch_device("cpu") == torch.device("cpu")
    assert torch_device("cpu:0") == torch.device("cpu", 0)


def test_unknown_devices_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="device: 'gpu0' is not a torch device"):
        torch_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_cuda_without_cuda_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="device: 'cuda:1' asked for, but CUDA is not available"):
        torch_device("cuda:1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a machine with CUDA")
def test_cuda_with_cuda() -> None:
    assert torch_device("cuda").type == "cuda"
