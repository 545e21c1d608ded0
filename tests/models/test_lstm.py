"""The LSTM sequence tagger: padding, directions and the MLP embedding."""

from __future__ import annotations

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.models import build_model
from pipeline.models.lstm import LSTMTagger


def test_lstm_ignores_padding() -> None:
    torch.manual_seed(0)
    model = build_model("lstm", n_tags=3, n_bins=4, n_frames=10, hparams={"dropout": 0.0}).eval()
    x = torch.randn(2, 10, 4)
    lengths = torch.tensor([10, 6])
    with torch.no_grad():
        padded = model(x, lengths)
        x[1, 6:] = 99.0  # other padding values change nothing
        torch.testing.assert_close(model(x, lengths), padded)
        torch.testing.assert_close(model(x[1:, :6], lengths[1:]), padded[1:])
    with pytest.raises(PipelineError, match=r"lengths \[10, 0\]"):
        model(x, torch.tensor([10, 0]))


@pytest.mark.parametrize(
    ("hparams", "dim"),
    [
        ({"hidden": 6, "mlp": 5}, 5),
        ({"hidden": 6, "mlp": 0}, 6),
        ({"hidden": 6, "mlp": 0, "bidirectional": True}, 12),
        ({"hidden": 6, "mlp": 0, "bidirectional": True, "layers": 2}, 12),
    ],
)
def test_embedding_size(hparams: dict, dim: int) -> None:
    model = build_model("lstm", n_tags=3, n_bins=4, n_frames=10, hparams=hparams).eval()
    assert isinstance(model, LSTMTagger) and model.input_kind == "sequence"
    assert model.embedding_dim == dim
    with torch.no_grad():
        assert model.embed(torch.randn(2, 7, 4)).shape == (2, dim)


def test_summary_is_the_last_valid_state_of_each_direction() -> None:
    """Without an MLP the embedding is the top layer's final states: forward at the last
    valid step, backward at the first."""
    torch.manual_seed(0)
    hparams = {"hidden": 3, "mlp": 0, "bidirectional": True, "dropout": 0.0}
    model = build_model("lstm", n_tags=2, n_bins=4, n_frames=6, hparams=hparams).eval()
    x = torch.randn(1, 6, 4)
    with torch.no_grad():
        embedding = model.embed(x, torch.tensor([4]))[0]
        outputs, _ = model.lstm(x[:, :4])  # (1, 4, 2 * hidden), the valid steps only
    torch.testing.assert_close(embedding[:3], outputs[0, 3, :3])  # forward: last step
    torch.testing.assert_close(embedding[3:], outputs[0, 0, 3:])  # backward: first step


def test_wrong_input_shape_names_it() -> None:
    model = build_model("lstm", n_tags=2, n_bins=4, n_frames=6)
    with pytest.raises(PipelineError, match=r"\(2, 6, 5\) is not \(batch, time, 4\)"):
        model(torch.randn(2, 6, 5))
    with pytest.raises(PipelineError, match=r"\(2, 0, 4\)"):
        model(torch.randn(2, 0, 4))
