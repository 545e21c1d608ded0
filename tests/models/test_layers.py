"""Shared layers: AutoPool, pooling schedules, the conv block, parameter counts, the checks of
hyper-parameters and inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.errors import ConfigError, PipelineError
from pipeline.models.layers import (
    AutoPool,
    ConvBlock2d,
    check_activation,
    check_dropout,
    check_input,
    check_positive,
    check_window,
    count_parameters,
    pool_schedule,
)


def test_autopool_interpolates_mean_and_max() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, 4, generator=generator)
    p = torch.sigmoid(logits)
    pool = AutoPool(4)
    torch.testing.assert_close(pool(logits), p.mean(dim=1))  # alpha = 0: mean
    with torch.no_grad():
        pool.alpha.fill_(1e4)
    torch.testing.assert_close(pool(logits), p.amax(dim=1))  # large alpha: max
    with torch.no_grad():
        pool.alpha.fill_(-1e4)
    torch.testing.assert_close(pool(logits), p.amin(dim=1))  # large negative alpha: min


def test_autopool_mask_and_gradient() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 3, generator=generator, requires_grad=True)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    pool = AutoPool(3)
    out = pool(logits, mask)
    p = torch.sigmoid(logits.detach())
    torch.testing.assert_close(out[1], p[1, :2].mean(dim=0))  # padding windows ignored
    out.sum().backward()
    assert logits.grad[1, 2:].abs().sum() == 0
    assert pool.alpha.grad is not None and torch.isfinite(pool.alpha.grad).all()
    with pytest.raises(PipelineError, match=r"songs \[1\]"):
        pool(logits, torch.tensor([[True] * 5, [False] * 5]))


def test_pool_schedule_clamps() -> None:
    assert pool_schedule(96, [2, 4, 3, 4]) == [2, 4, 3, 4]
    assert pool_schedule(96, [2] * 7) == [2, 2, 2, 2, 2, 2, 1]
    assert pool_schedule(10, [4, 8, 2]) == [4, 2, 1]


def test_count_parameters() -> None:
    layer = nn.Linear(3, 2)
    assert count_parameters(layer) == 8
    layer.bias.requires_grad_(False)
    assert count_parameters(layer) == 6
    assert count_parameters(layer, trainable_only=False) == 8


def test_conv_block_shapes_and_pooling() -> None:
    torch.manual_seed(0)
    block = ConvBlock2d(in_channels=2, out_channels=5, pool=(2, 3), activation="elu").eval()
    x = torch.randn(4, 2, 9, 10)
    with torch.no_grad():
        out = block(x)
        assert out.shape == (4, 5, 4, 3)  # floor(9 / 2), floor(10 / 3)
        conv = block.act(block.bn(block.conv(x)))
        torch.testing.assert_close(out, nn.functional.max_pool2d(conv, (2, 3)))
    assert isinstance(ConvBlock2d(in_channels=1, out_channels=1, pool=(1, 1)).pool, nn.Identity)
    assert count_parameters(block) == 2 * 5 * 9 + 2 * 5  # 3x3 kernels without bias, BN


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: check_positive("m", width=0), "m.width: 0 must be an integer >= 1"),
        (lambda: check_positive("m", width=True), "m.width: True"),
        (lambda: check_positive("m", width=2.0), "m.width: 2.0"),
        (lambda: check_dropout("m", 1.0), r"m.dropout: 1.0 must be a number in \[0, 1\)"),
        (lambda: check_dropout("m", -0.1, name="p"), "m.p: -0.1"),
        (lambda: check_activation("m", "gelu"), r"'gelu' is not one of \['elu', 'relu'\]"),
        (lambda: check_input("m", n_tags=0, n_bins=1, n_frames=1), "m.n_tags: 0"),
    ],
)
def test_checks_name_the_key_and_the_value(check, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check()


def test_valid_values_pass_the_checks() -> None:
    check_positive("m", width=1, depth=5)
    check_dropout("m", 0.0)
    check_dropout("m", 0.99)
    check_activation("m", "relu")
    check_input("m", n_tags=1, n_bins=1, n_frames=1)
    check_window("m", torch.zeros(2, 3, 4), n_bins=3)
    with pytest.raises(PipelineError, match=r"m: input of shape \(2, 4, 4\) is not \(batch, 3"):
        check_window("m", torch.zeros(2, 4, 4), n_bins=3)
