"""The tagging architectures: contract, shapes, gradients, configs, AutoPool."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import ConfigError, PipelineError
from pipeline.models import ARCHITECTURES, build_model
from pipeline.models.layers import AutoPool, count_parameters, pool_schedule
from pipeline.models.musicnn import _TimbralBlock, time_taps

N_TAGS = 5
BATCH = 2

#: Small test inputs per architecture: (n_bins, n_frames), and hyper-parameters that keep
#: the models small. Every registered architecture must have an entry.
CASES: dict[str, tuple[tuple[int, int], dict]] = {
    "fcn": ((96, 300), {"width": 4}),
    "musicnn": ((96, 200), {"timbral_filters": 2, "temporal_filters": 2, "mid_channels": 8}),
    "crnn": ((96, 300), {"width": 4, "gru": 8}),
    "short_chunk_cnn": ((96, 128), {"channels": 4}),
    "short_chunk_resnet": ((96, 128), {"channels": 4}),
    "sample_level": ((1, 3**9), {"channels": 4}),
    "lstm": ((12, 40), {"hidden": 8, "mlp": 8, "bidirectional": True, "layers": 2}),
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, most of all on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _inputs(model: nn.Module, n_bins: int, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded batch for the model's input kind, and lengths (unequal for sequences)."""
    generator = torch.Generator().manual_seed(0)
    if model.input_kind == "sequence":
        x = torch.randn(BATCH, n_frames, n_bins, generator=generator)
        lengths = torch.tensor([n_frames, n_frames // 3])
        x[1, n_frames // 3 :] = 0.0  # padding
        return x, lengths
    return torch.randn(BATCH, n_bins, n_frames, generator=generator), None


def test_every_architecture_has_a_case() -> None:
    build_model("lstm", n_tags=1, n_bins=1, n_frames=1)  # fills the registry
    assert set(ARCHITECTURES) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    (n_bins, n_frames), hparams = CASES[name]
    model = build_model(name, n_tags=N_TAGS, n_bins=n_bins, n_frames=n_frames, hparams=hparams)
    assert model.input_kind in ("window", "sequence")
    x, lengths = _inputs(model, n_bins, n_frames)
    x.requires_grad_(True)
    logits = model(x, lengths)
    assert logits.shape == (BATCH, N_TAGS)
    assert torch.isfinite(logits).all()
    target = torch.tensor([[1.0, 0, 1, 0, 0], [0, 1, 0, 0, 1]])
    nn.BCEWithLogitsLoss()(logits, target).backward()
    # gradients reach the first layer (and through it the input) and every parameter
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
    print(f"{name}: {count_parameters(model):,d} parameters")

    model.eval()
    with torch.no_grad():
        embedding = model.embed(x, lengths)
        assert embedding.shape == (BATCH, model.embedding_dim)
        # forward is the classifier applied to the embedding
        torch.testing.assert_close(model.classifier(embedding), model(x, lengths))


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
    ("name", "n_bins", "n_frames"),
    [
        ("fcn", 128, 40),  # shorter than the paper's pooling schedule
        ("crnn", 40, 20),
        ("short_chunk_cnn", 128, 231),  # the paper's size
        ("short_chunk_resnet", 96, 300),
        ("musicnn", 12, 10),  # temporal filters longer than the input
        ("sample_level", 1, 10_000),  # not a power of 3
    ],
)
def test_other_input_sizes(name: str, n_bins: int, n_frames: int) -> None:
    torch.manual_seed(0)
    small = {"fcn": "width", "crnn": "width", "musicnn": "mid_channels"}
    hparams = {small.get(name, "channels"): 4}
    model = build_model(name, n_tags=3, n_bins=n_bins, n_frames=n_frames, hparams=hparams)
    assert model(torch.randn(2, n_bins, n_frames)).shape == (2, 3)


def test_numpy_sizes_are_accepted() -> None:
    model = build_model("fcn", n_tags=np.int64(3), n_bins=np.int64(96), n_frames=np.int64(64))
    assert model(torch.randn(2, 96, 64)).shape == (2, 3)


def test_wrong_input_shape_names_it() -> None:
    model = build_model("fcn", n_tags=3, n_bins=96, n_frames=64)
    with pytest.raises(PipelineError, match=r"\(2, 60, 64\)"):
        model(torch.randn(2, 60, 64))


def test_build_model_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="'transformer'"):
        build_model("transformer", n_tags=3, n_bins=96, n_frames=100)
    with pytest.raises(ConfigError, match="'widht'"):
        build_model("fcn", n_tags=3, n_bins=96, n_frames=100, hparams={"widht": 8})


@pytest.mark.parametrize(
    ("name", "hparams", "message"),
    [
        ("fcn", {"depth": 3}, "fcn.depth: 3"),
        ("fcn", {"width": 0}, "fcn.width: 0"),
        ("fcn", {"activation": "tanh"}, "'tanh'"),
        ("crnn", {"dropout": 1.0}, "crnn.dropout: 1.0"),
        ("crnn", {"conv_dropout": -0.1}, "crnn.conv_dropout: -0.1"),
        ("musicnn", {"timbral_heights": [0.4, 1.5]}, "1.5"),
        ("musicnn", {"temporal_lengths": [0]}, "musicnn.temporal_lengths: 0"),
        ("lstm", {"bidirectional": "yes"}, "'yes'"),
        ("lstm", {"mlp": -1}, "lstm.mlp: -1"),
        ("sample_level", {"channels": 2.5}, "2.5"),
    ],
)
def test_bad_hyper_parameters(name: str, hparams: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        build_model(name, n_tags=3, n_bins=96, n_frames=100, hparams=hparams)


def test_yaml_lists_become_tuples() -> None:
    model = build_model(
        "musicnn", n_tags=3, n_bins=20, n_frames=50, hparams={"temporal_lengths": [9, 4]}
    )
    assert len(model.temporal) == 2
    config = ARCHITECTURES["musicnn"].config(temporal_lengths=[9, 4])
    assert config.temporal_lengths == (9, 4)


@pytest.mark.parametrize("width", [7, 6])
def test_timbral_block_equals_conv2d(width: int) -> None:
    """The banded-matrix timbral filters equal Conv2d -> ReLU -> BatchNorm2d -> max over freq."""
    torch.manual_seed(0)
    block = _TimbralBlock(filters=3, height=5, width=width, n_bins=12)
    conv, bn = nn.Conv2d(1, 3, (5, width)), nn.BatchNorm2d(3)
    with torch.no_grad():
        conv.weight.copy_(block.weight[:, None])
        conv.bias.copy_(block.bias)
    x = torch.randn(2, 12, 30)
    for train in (True, False):
        block.train(train)
        bn.train(train)
        padded = F.pad(x[:, None], ((width - 1) // 2, width // 2))
        expected = bn(torch.relu(conv(padded))).amax(dim=2)  # (B, filters, T)
        torch.testing.assert_close(block(time_taps(x, width=width), batch=2), expected)


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
