"""Offline loading of pretrained encoders: local directories of tiny random-weight models,
the missing-weights message, licences."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.io.pretrained import (
    clap_text_embeddings,
    download_command,
    load_encoder,
    model_licence,
    resolve_model_dir,
)


def test_hubert_style_model_loads_with_its_rate_layers_and_licence(tiny_encoders):
    enc = load_encoder(model=str(tiny_encoders["hubert"]))
    assert (enc.family, enc.sample_rate, enc.n_layers, enc.dim) == ("hidden_states", 8000, 4, 32)
    assert enc.normalize and enc.licence == "cc-by-nc-4.0"
    assert not enc.model.training


def test_clap_model_loads_and_embeds_text(tiny_encoders):
    enc = load_encoder(model=str(tiny_encoders["clap"]))
    assert (enc.family, enc.sample_rate, enc.n_layers, enc.dim) == ("clap", 8000, 1, 16)
    text = clap_text_embeddings(enc, ["This is a recording of rock music.", "jazz"])
    assert text.shape == (2, 16)
    torch.testing.assert_close(text.norm(dim=1), torch.ones(2))


def test_text_embeddings_of_a_hubert_model_are_refused(tiny_encoders):
    enc = load_encoder(model=str(tiny_encoders["hubert"]))
    with pytest.raises(PipelineError, match="not a CLAP model"):
        clap_text_embeddings(enc, ["rock"])


def test_a_model_missing_from_the_cache_is_one_line_with_the_download_command(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PipelineError) as info:
        resolve_model_dir("m-a-p/MERT-v1-95M", revision="abc123")
    message = str(info.value)
    assert "\n" not in message
    assert "'m-a-p/MERT-v1-95M'" in message
    assert "hf download m-a-p/MERT-v1-95M --revision abc123" in message
    assert download_command("x/y", revision="main") == "hf download x/y --revision main"


def test_a_directory_without_weights_names_the_model_and_the_command(tiny_encoders, tmp_path):
    broken = tmp_path / "no-weights"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_encoders["hubert"] / "config.json").read_text())
    with pytest.raises(PipelineError, match=r"is not available offline.*hf download"):
        load_encoder(model=str(broken))


def test_missing_local_directory_and_unsupported_type_are_named(tmp_path):
    with pytest.raises(PipelineError, match="does not exist"):
        resolve_model_dir(str(tmp_path / "nope"), revision="main")
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(PipelineError, match="model_type 'bert' is not supported"):
        load_encoder(model=str(odd))


def test_licence_from_the_model_card_then_known_models(tmp_path):
    (tmp_path / "README.md").write_text("---\nlanguage: en\nlicense: mit\n---\ntext")
    assert model_licence(tmp_path, model="local") == "mit"
    empty = Path(tmp_path / "empty")
    empty.mkdir()
    assert model_licence(empty, model="m-a-p/MERT-v1-330M") == "cc-by-nc-4.0"
    assert model_licence(empty, model="someone/else").startswith("unknown")
