"""musicnn: the banded-matrix timbral filters equal Conv2d, the front end's sizes, configs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import ConfigError
from pipeline.models import ARCHITECTURES, build_model
from pipeline.models.musicnn import Musicnn, _TimbralBlock, time_taps


def test_yaml_lists_become_tuples() -> None:
    model = build_model(
        "musicnn", n_tags=3, n_bins=20, n_frames=50, hparams={"temporal_lengths": [9, 4]}
    )
    assert len(model.temporal) == 2
    config = ARCHITECTURES["musicnn"].config(temporal_lengths=[9, 4])
    assert config.temporal_lengths == (9, 4)


@pytest.mark.parametrize(("width", "n_bins"), [(7, 12), (6, 12), (7, 40)])
def test_timbral_block_equals_conv2d(width: int, n_bins: int) -> None:
    """The banded-matrix timbral filters equal Conv2d -> ReLU -> BatchNorm2d -> max over freq,
    with one product for all frequency offsets (12 bins) or several (40 bins: 36 offsets),
    and so do the gradients of the filters."""
    torch.manual_seed(0)
    block = _TimbralBlock(filters=3, height=5, width=width, n_bins=n_bins)
    conv, bn = nn.Conv2d(1, 3, (5, width)), nn.BatchNorm2d(3)
    with torch.no_grad():
        conv.weight.copy_(block.weight[:, None])
        conv.bias.copy_(block.bias)
    x = torch.randn(2, n_bins, 30)
    for train in (True, False):
        block.train(train)
        bn.train(train)
        padded = F.pad(x[:, None], ((width - 1) // 2, width // 2))
        expected = bn(torch.relu(conv(padded))).amax(dim=2)  # (B, filters, T)
        got = block(time_taps(x, width=width), batch=2)
        torch.testing.assert_close(got, expected)
    got.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(block.weight.grad, conv.weight.grad[:, 0], rtol=1e-4, atol=1e-5)


def test_time_taps_are_shifted_copies_of_each_band() -> None:
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)  # (batch, bins, frames)
    taps = time_taps(x, width=3)
    assert taps.shape == (3 * 3, 2 * 4)
    # row b * width + j: band b shifted by j - 1 frames, zero outside; columns: (example, frame)
    assert taps[0].tolist() == [0, 0, 1, 2, 0, 12, 13, 14]  # band 0, one frame back
    assert taps[1].tolist() == [0, 1, 2, 3, 12, 13, 14, 15]  # band 0 itself
    assert taps[5].tolist() == [5, 6, 7, 0, 17, 18, 19, 0]  # band 1, one frame ahead


def test_front_end_sizes_follow_the_config() -> None:
    hparams = {
        "timbral_heights": [0.4, 0.7],
        "timbral_filters": 3,
        "temporal_lengths": [20, 10, 5],
        "temporal_filters": 2,
        "mid_channels": 8,
        "dense": 11,
    }
    model = build_model("musicnn", n_tags=4, n_bins=20, n_frames=50, hparams=hparams)
    assert isinstance(model, Musicnn) and model.embedding_dim == 11
    assert [block.weight.shape[1] for block in model.timbral] == [8, 14]  # 0.4 and 0.7 of 20
    assert [block.conv.kernel_size[0] for block in model.temporal] == [20, 10, 5]
    assert model.mid[0].conv.in_channels == 2 * 3 + 3 * 2
    with torch.no_grad():
        assert model.eval().embed(torch.randn(3, 20, 50)).shape == (3, 11)
    timbral_only = build_model(
        "musicnn", n_tags=4, n_bins=20, n_frames=50, hparams={"temporal_lengths": []}
    )
    assert len(timbral_only.temporal) == 0
    assert timbral_only(torch.randn(2, 20, 50)).shape == (2, 4)


def test_a_front_end_is_needed() -> None:
    with pytest.raises(ConfigError, match="both empty"):
        ARCHITECTURES["musicnn"].config(timbral_heights=[], temporal_lengths=[])
    with pytest.raises(ConfigError, match="'tall' is not a number"):
        ARCHITECTURES["musicnn"].config(timbral_heights=["tall"])
