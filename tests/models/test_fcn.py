"""FCN-4 and FCN-5 (Choi et al. 2016): the paper's pooling reduces its input to 1 x 1."""

from __future__ import annotations

import pytest
import torch

from pipeline.models import build_model
from pipeline.models.fcn import FCN, POOLING


@pytest.mark.parametrize("depth", [4, 5])
def test_paper_input_pools_to_one_by_one(depth: int) -> None:
    """96 mel bands x 1,366 frames: the paper's schedule leaves a 1 x 1 map, so the global max
    is the last block's only value."""
    model = build_model("fcn", n_tags=3, n_bins=96, n_frames=1366, hparams={"depth": depth})
    assert isinstance(model, FCN) and len(model.blocks) == depth
    assert [tuple(block.pool.kernel_size) for block in model.blocks] == POOLING[depth]
    assert model.embedding_dim == 4 * 2 ** (depth - 1)
    x = torch.randn(1, 96, 1366)
    with torch.no_grad():
        h = model.eval().blocks(x.unsqueeze(1))
        assert h.shape == (1, model.embedding_dim, 1, 1)
        torch.testing.assert_close(model.embed(x), h[:, :, 0, 0])


def test_small_inputs_clamp_the_pooling() -> None:
    model = build_model("fcn", n_tags=3, n_bins=16, n_frames=32, hparams={"width": 2})
    kernels = [
        (1, 1) if isinstance(block.pool, torch.nn.Identity) else tuple(block.pool.kernel_size)
        for block in model.blocks
    ]
    assert kernels == [(2, 4), (4, 5), (2, 1), (1, 1)]  # 16 -> 8 -> 2 -> 1; 32 -> 8 -> 1
    assert model(torch.randn(2, 16, 32)).shape == (2, 3)


def test_channels_double_and_activation_is_configurable() -> None:
    model = build_model("fcn", n_tags=3, n_bins=96, n_frames=64, hparams={"activation": "relu"})
    assert [block.conv.out_channels for block in model.blocks] == [4, 8, 16, 32]
    assert all(isinstance(block.act, torch.nn.ReLU) for block in model.blocks)
