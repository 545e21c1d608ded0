"""Zero-shot CLAP tagging: prompts, the checkpoint, scores = scaled cosine similarity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.errors import ConfigError
from pipeline.inference.loading import load_tagger
from pipeline.io.checkpoint import load_checkpoint
from pipeline.io.pretrained import clap_text_embeddings, load_encoder
from pipeline.io.store import FeatureStore
from pipeline.numeric import l2_normalise
from pipeline.training.config import TrainConfig
from pipeline.training.zero_shot import ZeroShotConfig, tag_prompts, train_zero_shot_clap
from tests.helpers.encoders import encoder_dataset
from tests.helpers.training import SUMMARY_KEYS


def test_prompts_from_the_template_with_overrides():
    config = ZeroShotConfig(prompts={"low": "A bass drone."})
    assert tag_prompts(["hard_rock", "low"], config=config) == [
        "This is a recording of hard rock music.",
        "A bass drone.",
    ]
    with pytest.raises(ConfigError, match="has no"):
        ZeroShotConfig(template="no tag here")


def test_zero_shot_scores_are_the_scaled_cosine_of_audio_and_text(tiny_encoders, tmp_path):
    data = encoder_dataset(tmp_path / "data", tiny_encoders["clap"], chunk_s=2.0)
    out = tmp_path / "zs"
    summary = train_zero_shot_clap(
        architecture="zero_shot_clap",
        hparams={"scale": 5.0},
        train_config=TrainConfig(),
        index=data["index"],
        stats=data["stats"],
        tags=data["tags"],
        features=data["features"],
        out_dir=out,
        progress=False,
    )
    assert SUMMARY_KEYS <= set(summary) and summary["params"] == 0
    assert summary["licence"] == "apache-2.0"
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint["kind"] == "zero_shot" and checkpoint["licence"] == "apache-2.0"
    encoder = load_encoder(model=str(tiny_encoders["clap"]))
    text = clap_text_embeddings(encoder, checkpoint["prompts"]).numpy()
    np.testing.assert_allclose(checkpoint["text_embeddings"].numpy(), text, rtol=1e-5, atol=1e-6)

    tagger = load_tagger(out / "checkpoint.pt")
    row = data["index"].iloc[0]
    windows = FeatureStore(row["store"]).track_windows(track=int(row["track"]))
    audio = l2_normalise(windows[:, 0].astype(np.float32))
    np.testing.assert_allclose(
        tagger.predict_windows(windows), 5.0 * audio @ text.T, rtol=1e-4, atol=1e-5
    )
    probs, song = tagger.predict_track(windows)
    np.testing.assert_allclose(song, probs.mean(axis=0))
    assert np.isfinite(summary["best_valid_roc_auc"])
    assert (out / "history.csv").is_file() and torch.is_tensor(checkpoint["text_embeddings"])


def test_zero_shot_needs_a_clap_encoder_feature_set(tiny_encoders, tmp_path):
    data = encoder_dataset(tmp_path / "data", tiny_encoders["hubert"], n_tracks=8)
    with pytest.raises(Exception, match="not a CLAP model"):
        train_zero_shot_clap(
            architecture="zero_shot_clap",
            hparams={},
            train_config=TrainConfig(),
            index=data["index"],
            stats=data["stats"],
            tags=data["tags"],
            features=data["features"],
            out_dir=tmp_path / "zs",
            progress=False,
        )
