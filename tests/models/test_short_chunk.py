"""Short-chunk CNN and ResNet (Won et al. 2020): seven halvings of 128 x 231 crops."""

from __future__ import annotations

import pytest
import torch

from pipeline.models import build_model
from pipeline.models.short_chunk import CHANNELS, ShortChunkCNN, ShortChunkResNet, _ResBlock


def test_cnn_halves_the_paper_crop_seven_times() -> None:
    model = build_model("short_chunk_cnn", n_tags=3, n_bins=128, n_frames=231)
    assert isinstance(model, ShortChunkCNN) and len(model.blocks) == 7
    assert [block.conv.out_channels for block in model.blocks] == [16 * m for m in CHANNELS]
    assert model.embedding_dim == 64
    with torch.no_grad():
        h = model.eval().blocks(torch.randn(1, 1, 128, 231))
    assert h.shape == (1, 64, 1, 1)  # 128 / 2^7 = 1, floor(231 / 2^7) = 1


def test_resnet_strides_stop_at_one() -> None:
    model = build_model("short_chunk_resnet", n_tags=3, n_bins=8, n_frames=231)
    assert isinstance(model, ShortChunkResNet)
    strides = [tuple(block.conv1.stride) for block in model.blocks]
    assert strides == [(2, 2)] * 3 + [(1, 2)] * 4  # 8 bands are 1 row after three halvings
    with torch.no_grad():
        h = model.eval().blocks(torch.randn(1, 1, 8, 231))
    assert h.shape == (1, 64, 1, 2)  # ceil(231 / 2^7) = 2


@pytest.mark.parametrize(
    ("stride", "in_channels", "identity"),
    [((1, 1), 4, True), ((2, 2), 4, False), ((1, 1), 2, False)],
)
def test_residual_shortcut(stride: tuple[int, int], in_channels: int, identity: bool) -> None:
    torch.manual_seed(0)
    block = _ResBlock(in_channels=in_channels, out_channels=4, stride=stride).eval()
    assert isinstance(block.shortcut, torch.nn.Identity) == identity
    x = torch.randn(2, in_channels, 5, 6)
    with torch.no_grad():
        out = block(x)
        h = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
        torch.testing.assert_close(out, torch.relu(h + block.shortcut(x)))
    assert out.shape == (2, 4, -(-5 // stride[0]), -(-6 // stride[1]))
    assert (out >= 0).all()


def test_embedding_is_the_dense_layer_after_the_global_max() -> None:
    torch.manual_seed(0)
    model = build_model("short_chunk_cnn", n_tags=3, n_bins=32, n_frames=40).eval()
    x = torch.randn(2, 32, 40)
    with torch.no_grad():
        pooled = model.blocks(model.input_bn(x.unsqueeze(1))).amax(dim=(2, 3))
        torch.testing.assert_close(model.embed(x), model.dense(pooled))
        assert (model.embed(x) >= 0).all()  # after ReLU
