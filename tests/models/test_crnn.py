"""CRNN (Choi et al. 2017): convolutions down to one frequency row, a GRU over time."""

from __future__ import annotations

import torch

from pipeline.models import build_model
from pipeline.models.crnn import CRNN
from pipeline.models.layers import count_parameters


def test_paper_model_has_about_0_4_million_parameters() -> None:
    """Channels 64, 128, 128, 128 and a 2-layer GRU of 32, 50 tags: the paper's 0.4M model."""
    model = build_model(
        "crnn", n_tags=50, n_bins=96, n_frames=1366, hparams={"width": 64, "gru": 32}
    )
    assert [block.conv.out_channels for block in model.blocks] == [64, 128, 128, 128]
    assert 350_000 < count_parameters(model) < 450_000


def test_the_gru_reads_the_time_steps_left_after_pooling() -> None:
    """96 bands are pooled to 1 row and 1,366 frames by 96 to 14 steps, read in order."""
    torch.manual_seed(0)
    model = build_model("crnn", n_tags=3, n_bins=96, n_frames=1366, hparams={"gru": 5}).eval()
    assert isinstance(model, CRNN) and model.embedding_dim == 5
    x = torch.randn(1, 96, 1366)
    with torch.no_grad():
        h = model.blocks(x.unsqueeze(1))
        assert h.shape[2:] == (1, 14)
        steps = h[:, :, 0].transpose(1, 2)  # (1, 14, channels)
        outputs, _ = model.gru(steps)
        torch.testing.assert_close(model.embed(x), outputs[:, -1])  # the last step's state
        reversed_steps, _ = model.gru(steps.flip(1))
        assert not torch.allclose(reversed_steps[:, -1], outputs[:, -1])  # order matters


def test_one_gru_layer_has_no_dropout_between_layers() -> None:
    one = build_model("crnn", n_tags=2, n_bins=40, n_frames=50, hparams={"gru_layers": 1})
    two = build_model("crnn", n_tags=2, n_bins=40, n_frames=50, hparams={"dropout": 0.2})
    assert (one.gru.num_layers, one.gru.dropout) == (1, 0.0)
    assert (two.gru.num_layers, two.gru.dropout) == (2, 0.2)
