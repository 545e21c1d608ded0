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


def test_a_mert_config_without_its_additions_loads_as_hubert(tiny_encoders, tmp_path):
    """A MERT checkpoint (model_type mert_model, no CQT / DeepNorm) is a HuBERT one: it loads
    into HubertModel without remote code and gives the same hidden states."""
    import json
    import shutil

    mert = tmp_path / "mert"
    shutil.copytree(tiny_encoders["hubert"], mert)
    config = json.loads((mert / "config.json").read_text())
    config.pop("conv_pos_batch_norm", None)  # MERT's config predates it
    config.update(
        model_type="mert_model",
        feature_extractor_cqt=False,
        deepnorm=False,
        attention_relax=-1.0,
        auto_map={"AutoModel": "modeling_MERT.MERTModel"},
    )
    (mert / "config.json").write_text(json.dumps(config))
    as_mert = load_encoder(model=str(mert))
    as_hubert = load_encoder(model=str(tiny_encoders["hubert"]))
    assert type(as_mert.model).__name__ == "HubertModel" and as_mert.n_layers == 4
    x = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = as_mert.model(input_values=x, output_hidden_states=True).hidden_states
        b = as_hubert.model(input_values=x, output_hidden_states=True).hidden_states
    for left, right in zip(a, b, strict=True):
        torch.testing.assert_close(left, right)


def test_weights_of_another_architecture_are_refused(tiny_encoders, tmp_path):
    import json
    import shutil

    odd = tmp_path / "odd"
    shutil.copytree(tiny_encoders["clap"], odd)
    config = json.loads((tiny_encoders["hubert"] / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps(config))
    with pytest.raises(PipelineError, match="are not in the checkpoint"):
        load_encoder(model=str(odd))
