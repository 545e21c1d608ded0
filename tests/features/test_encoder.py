"""The encoder feature kind: shapes, layer selection, pooling, determinism, chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.features.encoder import EncoderExtractor, chunk_starts, select_layers
from pipeline.features.settings import FeatureSettings
from pipeline.io.pretrained import load_encoder
from tests.helpers.encoders import encoder_features


def _settings(model, **kwargs) -> FeatureSettings:
    return FeatureSettings.from_dict(encoder_features(model, **kwargs), name="enc")


def _audio(n: int, samples: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((n, samples))).astype(np.float32)


def test_chunk_starts_cover_the_window_with_the_last_chunk_at_its_end():
    np.testing.assert_array_equal(chunk_starts(length=10, chunk=4), [0, 4, 6])
    np.testing.assert_array_equal(chunk_starts(length=8, chunk=4), [0, 4])
    np.testing.assert_array_equal(chunk_starts(length=4, chunk=4), [0])


def test_select_layers_all_negative_and_bad():
    assert select_layers(None, n_layers=3, key="k") == [0, 1, 2]
    assert select_layers((0, -1), n_layers=13, key="k") == [0, 12]
    with pytest.raises(ConfigError, match="k.layers: 13 is not a layer"):
        select_layers((13,), n_layers=13, key="k")
    with pytest.raises(ConfigError, match="twice"):
        select_layers((1, -12), n_layers=13, key="k")


def test_hubert_windows_are_layers_by_dim_and_settings_are_filled_in(tiny_encoders):
    extractor = EncoderExtractor(_settings(tiny_encoders["hubert"]))
    out = extractor(_audio(3, 16000))
    assert out.shape == (3, 4, 32) and out.dtype == np.float32
    enc = extractor.settings.encoder
    assert (enc.n_layers, enc.dim, enc.licence) == (4, 32, "cc-by-nc-4.0")
    assert extractor.settings.n_frames == 32 and extractor.shape == (4, 32)
    # the filled-in settings survive the store attributes / checkpoint round trip
    again = FeatureSettings.from_dict(extractor.settings.to_dict())
    assert again == extractor.settings


def test_layer_selection_picks_the_same_rows(tiny_encoders):
    audio = _audio(2, 16000)
    every = EncoderExtractor(_settings(tiny_encoders["hubert"]))(audio)
    some = EncoderExtractor(_settings(tiny_encoders["hubert"], layers=[0, -1]))(audio)
    np.testing.assert_allclose(some, every[:, [0, 3]], rtol=1e-5, atol=1e-6)


def test_mean_std_pooling_appends_the_standard_deviation(tiny_encoders):
    audio = _audio(2, 16000)
    mean = EncoderExtractor(_settings(tiny_encoders["hubert"]))(audio)
    both = EncoderExtractor(_settings(tiny_encoders["hubert"], pooling="mean+std"))(audio)
    assert both.shape == (2, 4, 64)
    np.testing.assert_allclose(both[..., :32], mean, rtol=1e-5, atol=1e-6)
    assert (both[..., 32:] > 0).all()


def test_extraction_is_deterministic_and_batch_size_does_not_change_it(tiny_encoders):
    audio = _audio(3, 16000)
    a = EncoderExtractor(_settings(tiny_encoders["hubert"], batch_size=1))(audio)
    b = EncoderExtractor(_settings(tiny_encoders["hubert"], batch_size=8))(audio)
    c = EncoderExtractor(_settings(tiny_encoders["hubert"], batch_size=8))(audio)
    np.testing.assert_array_equal(b, c)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_one_chunk_equals_the_model_on_the_whole_window(tiny_encoders):
    """chunk_s >= the window: the time mean of the model's own hidden states."""
    audio = _audio(2, 16000)
    out = EncoderExtractor(_settings(tiny_encoders["hubert"], chunk_s=5.0))(audio)
    enc = load_encoder(model=str(tiny_encoders["hubert"]))
    x = torch.from_numpy(audio)
    x = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-7)
    with torch.no_grad():
        hidden = enc.model(input_values=x, output_hidden_states=True).hidden_states
    expected = torch.stack([h.mean(dim=1) for h in hidden], dim=1).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_chunked_window_pools_its_chunks_frames(tiny_encoders):
    """A 2 s window in 1 s chunks = the mean of the two 1 s windows' (equal frame counts);
    the std over all frames follows from the chunks' moments."""
    audio = _audio(2, 16000)
    chunked = EncoderExtractor(_settings(tiny_encoders["hubert"], pooling="mean+std"))(audio)
    one = EncoderExtractor(_settings(tiny_encoders["hubert"], length_s=1.0, pooling="mean+std"))
    halves = one(np.concatenate([audio[:, :8000], audio[:, 8000:]]))  # (4, L, 64)
    first, second = halves[:2], halves[2:]
    mean = (first[..., :32] + second[..., :32]) / 2
    np.testing.assert_allclose(chunked[..., :32], mean, rtol=1e-4, atol=1e-5)
    second_moment = (
        first[..., 32:] ** 2 + first[..., :32] ** 2 + second[..., 32:] ** 2 + second[..., :32] ** 2
    ) / 2
    std = np.sqrt(second_moment - mean**2)
    np.testing.assert_allclose(chunked[..., 32:], std, rtol=1e-3, atol=1e-4)


def test_clap_windows_are_one_normalised_embedding_per_chunk_averaged(tiny_encoders):
    audio = _audio(2, 16000)
    out = EncoderExtractor(_settings(tiny_encoders["clap"], chunk_s=2.0))(audio)
    assert out.shape == (2, 1, 16)
    np.testing.assert_allclose(np.linalg.norm(out[:, 0], axis=1), 1.0, rtol=1e-5)
    halves = EncoderExtractor(_settings(tiny_encoders["clap"], chunk_s=1.0))(audio)
    assert halves.shape == (2, 1, 16) and not np.allclose(halves, out)


def test_wrong_sample_rate_and_layers_are_config_errors(tiny_encoders):
    entry = encoder_features(tiny_encoders["hubert"])
    entry["sample_rate"] = 16000
    with pytest.raises(ConfigError, match=r"features.enc.sample_rate: 16000 Hz.*takes 8000"):
        EncoderExtractor(FeatureSettings.from_dict(entry, name="enc"))
    with pytest.raises(ConfigError, match="features.enc.encoder.layers: 7"):
        EncoderExtractor(_settings(tiny_encoders["hubert"], layers=[7]))


def test_encoder_settings_are_checked_and_keep_other_kinds_unchanged():
    with pytest.raises(ConfigError, match="needs an encoder"):
        FeatureSettings(name="x", kind="encoder")
    with pytest.raises(ConfigError, match="features.x.encoder.pooling"):
        FeatureSettings.from_dict(
            {"kind": "encoder", "encoder": {"model": "m", "pooling": "max"}}, name="x"
        )
    assert "encoder" not in FeatureSettings(name="logmel").to_dict()
