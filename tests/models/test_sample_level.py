"""Sample-level CNN (Lee et al. 2017): 3^10 samples are reduced to one step."""

from __future__ import annotations

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.models import build_model
from pipeline.models.sample_level import CHANNELS, SampleLevelCNN


def test_paper_input_reduces_to_one_step() -> None:
    """59,049 = 3^10 samples: the strided conv and nine pools of 3 leave 1 step."""
    model = build_model("sample_level", n_tags=3, n_bins=1, n_frames=3**10, hparams={"channels": 2})
    assert isinstance(model, SampleLevelCNN) and len(model.blocks) == 9
    assert model.embedding_dim == 2 * CHANNELS[-1] == 8
    x = torch.randn(1, 1, 3**10)
    with torch.no_grad():
        h = model.eval().blocks(model.stem(x))
        assert h.shape == (1, 8, 1)
        torch.testing.assert_close(model.embed(x), h[:, :, 0])


def test_mono_waveforms_may_come_without_a_channel_axis() -> None:
    torch.manual_seed(0)
    model = build_model("sample_level", n_tags=3, n_bins=1, n_frames=729, hparams={"channels": 2})
    x = torch.randn(2, 729)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), model(x.unsqueeze(1)))


@pytest.mark.parametrize(
    ("shape", "named"),
    [((2, 2), r"\(2, 2\)"), ((2, 3, 100), r"\(2, 3, 100\)"), ((2, 1, 2), r"\(2, 1, 2\)")],
)
def test_bad_inputs_name_their_shape(shape: tuple[int, ...], named: str) -> None:
    """Too short (fewer than 3 samples, mono with or without its channel axis) or with more
    channels than the model takes."""
    model = build_model("sample_level", n_tags=3, n_bins=1, n_frames=729, hparams={"channels": 2})
    with pytest.raises(PipelineError, match=f"sample_level: input of shape {named} is not"):
        model(torch.randn(*shape))
