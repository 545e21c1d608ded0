"""The embedding sequence tagger: a frozen network's standardised window embeddings read in
order by an LSTM, over the middle ``max_windows`` windows of a track."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import ConfigError, PipelineError
from pipeline.inference.network import NetworkTagger
from pipeline.inference.sequence import (
    EmbeddingSequenceConfig,
    EmbeddingSequenceTagger,
    run_lstm,
)
from pipeline.models import build_model
from tests.helpers.checkpoints import random_embedding_sequence_checkpoint
from tests.helpers.synthetic import N_BINS, N_FRAMES


@pytest.fixture(scope="module")
def checkpoint() -> dict:
    return random_embedding_sequence_checkpoint(max_windows=3)


def _windows(n: int, *, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(-60.0, 6.0, size=(n, N_BINS, N_FRAMES)).astype(np.float16)


def test_sequence_is_the_standardised_middle_block(checkpoint: dict) -> None:
    tagger = EmbeddingSequenceTagger(checkpoint)
    windows, valid = _windows(5, seed=1), np.array([64, 64, 64, 64, 20])
    embeddings = NetworkTagger(checkpoint["network"]).embed_windows(windows, valid_frames=valid)
    np.testing.assert_array_equal(
        tagger.network_embeddings(windows, valid_frames=valid), embeddings
    )
    mean = checkpoint["scaler"]["mean"].numpy()
    std = checkpoint["scaler"]["std"].numpy()
    sequence = tagger.sequence(windows, valid_frames=valid)
    assert sequence.shape == (3, 32) and sequence.dtype == np.float32
    np.testing.assert_allclose(sequence, (embeddings[1:4] - mean) / std, rtol=1e-5, atol=1e-6)
    short = tagger.sequence(windows[:2], valid_frames=valid[:2])
    np.testing.assert_allclose(short, (embeddings[:2] - mean) / std, rtol=1e-5, atol=1e-6)


def test_song_prediction_reads_only_the_middle_block(checkpoint: dict) -> None:
    tagger = EmbeddingSequenceTagger(checkpoint)
    windows = _windows(5, seed=2)
    window_probs, song = tagger.predict_track(windows)
    assert window_probs is None and song.shape == (2,)
    np.testing.assert_allclose(song, tagger.predict_track(windows[1:4])[1], atol=1e-6)
    np.testing.assert_allclose(tagger.embed_track(windows), tagger.embed_track(windows[1:4]))
    assert not np.allclose(song, tagger.predict_track(windows[:3])[1], atol=1e-4)
    assert tagger.embed_track(windows).shape == (8,)  # the LSTM's MLP layer


def test_windows_are_scored_as_one_window_sequences(checkpoint: dict) -> None:
    tagger = EmbeddingSequenceTagger(checkpoint)
    windows = _windows(3, seed=3)
    logits = tagger.predict_windows(windows)
    embedded = tagger.embed_windows(windows)
    assert logits.shape == (3, 2) and embedded.shape == (3, 8)
    for i in range(3):
        _, one = tagger.predict_track(windows[i : i + 1])
        np.testing.assert_allclose(1 / (1 + np.exp(-logits[i])), one, atol=1e-6)
        np.testing.assert_allclose(embedded[i], tagger.embed_track(windows[i : i + 1]), atol=1e-6)


def test_run_lstm_batches_sequences_of_any_length() -> None:
    torch.manual_seed(0)
    model = build_model("lstm", n_tags=2, n_bins=4, n_frames=5, hparams={"dropout": 0.0}).eval()
    rng = np.random.default_rng(0)
    sequences = [rng.standard_normal((n, 4)) for n in (5, 1, 3)]  # float64: cast to float32
    device = torch.device("cpu")
    together = run_lstm(model, sequences, embed=False, device=device)
    apart = run_lstm(model, sequences, embed=False, device=device, batch_size=1)
    assert together.shape == (3, 2) and together.dtype == np.float32
    np.testing.assert_allclose(together, apart, atol=1e-6)
    with torch.no_grad():
        alone = model(torch.from_numpy(sequences[2].astype(np.float32))[None]).numpy()
    np.testing.assert_allclose(together[2], alone[0], atol=1e-6)
    embedded = run_lstm(model, sequences, embed=True, device=device)
    assert embedded.shape == (3, model.embedding_dim)


def test_config_checks_the_lstm_hyper_parameters() -> None:
    config = EmbeddingSequenceConfig(network="fcn", lstm={"hidden": 4})
    assert config.to_dict() == {
        "network": "fcn",
        "network_hparams": {},
        "weights": "random",
        "lstm": {"hidden": 4},
    }
    with pytest.raises(ConfigError, match="embedding_lstm.lstm: 4 is not a mapping"):
        EmbeddingSequenceConfig(lstm=4)
    with pytest.raises(ConfigError, match=r"'embedding_lstm.lstm'.*\['hiden'\]"):
        EmbeddingSequenceConfig(lstm={"hiden": 4})
    with pytest.raises(ConfigError, match="lstm.hidden: 0"):
        EmbeddingSequenceConfig(lstm={"hidden": 0})
    with pytest.raises(ConfigError, match="embedding_lstm.network_hparams"):
        EmbeddingSequenceConfig(network_hparams="small")


def test_missing_keys_are_named(checkpoint: dict) -> None:
    partial = {k: v for k, v in checkpoint.items() if k != "max_windows"}
    with pytest.raises(
        PipelineError, match=r"'embedding_sequence' lacks key\(s\) \['max_windows'\]"
    ):
        EmbeddingSequenceTagger(partial)
