"""The architecture registry: every architecture's contract (shapes, gradients, embeddings),
sizes, and hyper-parameters checked by name."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.errors import ConfigError, PipelineError
from pipeline.models import ARCHITECTURES, build_model
from pipeline.models.layers import TaggerNetwork, count_parameters
from pipeline.models.registry import Architecture, parse_hparams, register

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
    "probe_linear": ((13, 48), {}),
    "probe_mlp": ((13, 48), {"hidden": 16, "dropout": 0.1}),
}


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


@dataclass(frozen=True, kw_only=True)
class _TinyConfig:
    width: int = 2

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ConfigError(f"tiny.width: {self.width!r} must be >= 1")


class _Tiny(TaggerNetwork):
    """Mean over frames, then a linear layer."""

    def __init__(self, *, n_tags: int, n_bins: int, n_frames: int, config: _TinyConfig) -> None:
        super().__init__()
        self.embedding_dim = n_bins * config.width
        self.width = config.width
        self.classifier = nn.Linear(self.embedding_dim, n_tags)

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return x.mean(dim=2).repeat(1, self.width)


def test_register_adds_a_buildable_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ARCHITECTURES, "tiny", None)  # removed again after the test
    assert register("tiny", config=_TinyConfig)(_Tiny) is _Tiny
    assert ARCHITECTURES["tiny"] == Architecture(module=_Tiny, config=_TinyConfig)
    model = build_model("tiny", n_tags=2, n_bins=3, n_frames=5, hparams={"width": 4})
    assert isinstance(model, _Tiny) and model.embedding_dim == 12
    x = torch.ones(1, 3, 5)
    torch.testing.assert_close(model.embed(x), torch.ones(1, 12))
    torch.testing.assert_close(model(x), model.classifier(torch.ones(1, 12)))
    with pytest.raises(ConfigError, match="tiny.width: 0"):
        build_model("tiny", n_tags=2, n_bins=3, n_frames=5, hparams={"width": 0})


def test_parse_hparams_names_unknown_keys_and_allowed_ones() -> None:
    assert parse_hparams(_TinyConfig, None, architecture="x") == _TinyConfig()
    assert parse_hparams(_TinyConfig, {"width": 3}, architecture="x").width == 3
    with pytest.raises(
        ConfigError,
        match=r"architecture 'x': unknown hyper-parameter\(s\) \['a', 'b'\]; "
        r"allowed: \['width'\]",
    ):
        parse_hparams(_TinyConfig, {"b": 1, "a": 2, "width": 1}, architecture="x")
