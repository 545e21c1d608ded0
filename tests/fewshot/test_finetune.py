"""Fine-tuning a trained window network on a support set (:mod:`pipeline.fewshot.finetune`):
it learns new tags, leaves the caller's weights alone, refuses sequence models and bad
settings, and reads the support and query windows from real feature stores.

Log-mel windows where a new tag is loud energy in the high or the low bands, tagged by a tiny
randomly initialised FCN checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.errors import ConfigError, PipelineError
from pipeline.features.index import build_index
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import audio_frames, store_windows
from pipeline.fewshot.episodes import run_fewshot
from pipeline.fewshot.finetune import FinetuneConfig, finetune_method, finetune_scores
from pipeline.fewshot.prototypes import prototype_method
from pipeline.inference.network import NetworkTagger
from pipeline.io.audio import WindowSettings
from pipeline.io.checkpoint import network_checkpoint
from pipeline.io.store import StoreWriter
from pipeline.models import build_model
from tests.helpers.fewshot import macro_auc as _macro_auc

N_BINS, N_FRAMES, CROP = 16, 64, 32
# 63 hops of 256 samples: 64 centred frames per window, 1.008 s
WINDOW = WindowSettings(length_s=63 * 256 / 16000, hop_s=63 * 256 / 16000, min_tail_s=0.1)
FEATURES = FeatureSettings(
    name="lm", window=WINDOW, n_fft=512, hop_length=256, n_mels=N_BINS, n_frames=N_FRAMES
)
NEW_TAGS = ["dark", "bright"]
BANDS = {"dark": slice(1, 5), "bright": slice(10, 14)}
FLOOR = -100.0


def _checkpoint(architecture: str = "fcn") -> dict:
    """A randomly initialised tiny network checkpoint with an old three-tag vocabulary."""
    torch.manual_seed(0)
    if architecture == "fcn":
        hparams = {"depth": 4, "width": 4, "dropout": 0.1}
        kind, crop, n_frames = "window", CROP, CROP
    else:
        hparams = {"hidden": 8, "mlp": 8, "dropout": 0.0}
        kind, crop, n_frames = "sequence", None, 32
    model = build_model(architecture, n_tags=3, n_bins=N_BINS, n_frames=n_frames, hparams=hparams)
    return network_checkpoint(
        architecture=architecture,
        hparams=hparams,
        train_config={},
        tags=["old1", "old2", "old3"],
        features=FEATURES.to_dict(),
        stats={"mean": [-60.0] * N_BINS, "std": [4.0] * N_BINS},
        input_kind=kind,
        crop_frames=crop,
        pool_frames=8,
        eval_chunks=4,
        max_windows=2,
        state_dict=model.state_dict(),
        selection={"criterion": "random weights", "epoch": 0, "value": None},
    )


def _windows(n: int, *, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows (n, N_BINS, N_FRAMES) float16 dB, their NEW_TAGS labels and valid frames."""
    rng = np.random.default_rng(seed)
    labels = rng.random((n, len(NEW_TAGS))) < 0.5
    windows = rng.normal(-60.0, 4.0, size=(n, N_BINS, N_FRAMES))
    for k, tag in enumerate(NEW_TAGS):
        windows[labels[:, k], BANDS[tag], :] += 30.0
    valid = rng.choice([N_FRAMES, N_FRAMES, 40], size=n)  # some short tails
    for w, v in zip(windows, valid, strict=True):
        w[:, v:] = FLOOR
    return windows.astype(np.float16), labels, valid


@pytest.mark.parametrize("head_init", ["zero", "prototype"])
def test_finetune_learns_new_tags(head_init: str) -> None:
    checkpoint = _checkpoint()
    before = {k: v.clone() for k, v in checkpoint["state_dict"].items()}
    s_windows, s_labels, s_valid = _windows(24, seed=10)
    q_windows, q_labels, q_valid = _windows(60, seed=11)
    query_track = np.repeat(np.arange(30), 2)  # two windows per query track
    config = FinetuneConfig(steps=40, batch_size=8, head_init=head_init)
    scores = finetune_scores(
        checkpoint=checkpoint,
        support_windows=s_windows,
        support_window_labels=s_labels,
        support_valid=s_valid,
        query_windows=q_windows,
        query_valid=q_valid,
        query_track=query_track,
        config=config,
    )
    assert scores.shape == (30, 2) and ((scores > 0) & (scores < 1)).all()
    track_labels = q_labels.reshape(30, 2, 2).any(axis=1)
    assert _macro_auc(track_labels, scores) > 0.8
    # window-level: the song score is the mean of the window probabilities
    window_scores = finetune_scores(
        checkpoint=checkpoint,
        support_windows=s_windows,
        support_window_labels=s_labels,
        support_valid=s_valid,
        query_windows=q_windows,
        query_valid=q_valid,
        query_track=np.arange(60),
        config=config,
    )
    np.testing.assert_allclose(window_scores.reshape(30, 2, 2).mean(axis=1), scores, rtol=1e-5)
    assert _macro_auc(q_labels, window_scores) > 0.8
    # trained, not only ranked: before training the gap is 0 (zero head) or ~0.5 (prototypes)
    gap = window_scores[q_labels].mean() - window_scores[~q_labels].mean()
    assert gap > 0.7 and ((window_scores > 0.5) == q_labels).mean() > 0.9
    for key, value in checkpoint["state_dict"].items():  # the caller's weights are untouched
        assert torch.equal(value, before[key]), key


def test_finetune_refuses_sequence_models_and_bad_config() -> None:
    windows, labels, valid = _windows(4, seed=0)
    with pytest.raises(PipelineError, match="fine-tuning needs a window model; lstm reads"):
        finetune_scores(
            checkpoint=_checkpoint("lstm"),
            support_windows=windows,
            support_window_labels=labels,
            support_valid=valid,
            query_windows=windows,
            query_valid=valid,
            query_track=np.arange(4),
            config=FinetuneConfig(),
        )
    with pytest.raises(ConfigError, match="unknown key.*'epochs'"):
        FinetuneConfig.from_dict({"steps": 5, "epochs": 3})
    with pytest.raises(ConfigError, match="finetune.lr_head"):
        FinetuneConfig.from_dict({"lr_head": 0})
    with pytest.raises(ConfigError, match="finetune.head_init"):
        FinetuneConfig(head_init="random")
    assert FinetuneConfig.from_dict({"steps": 5}) == FinetuneConfig(steps=5)
    with pytest.raises(PipelineError, match="query track 1"):
        finetune_scores(
            checkpoint=_checkpoint(),
            support_windows=windows,
            support_window_labels=labels,
            support_valid=valid,
            query_windows=windows,
            query_valid=valid,
            query_track=np.array([0, 0, 2, 2]),
            config=FinetuneConfig(steps=1),
        )


def test_fewshot_from_feature_stores(tmp_path: Path) -> None:
    """Both builders over a real store and index: the rule script's path."""
    rng = np.random.default_rng(20)
    n_tracks = 36
    writer = StoreWriter(
        path=tmp_path / "0000.zarr",
        window_shape=(N_BINS, N_FRAMES),
        attrs={"features": FEATURES.to_dict(), "dataset": "synthetic", "shard": "0000"},
    )
    labels = rng.random((n_tracks, 2)) < 0.4
    rows = []
    for i in range(n_tracks):
        duration = float(rng.choice([0.8, 1.5, 2.0]))
        n = int(np.ceil(duration / WINDOW.length_s - 1e-9))
        starts = np.arange(n) * WINDOW.length_s
        windows = rng.normal(-60.0, 4.0, size=(n, N_BINS, N_FRAMES))
        for k, tag in enumerate(NEW_TAGS):
            if labels[i, k]:
                windows[:, BANDS[tag], :] += 30.0
        valid = audio_frames(starts_s=starts, duration_s=duration, features=FEATURES)
        for w, v in zip(windows, valid, strict=True):
            w[:, v:] = FLOOR
        track_id = f"t{i:03d}"
        writer.add(track_id=track_id, windows=windows, starts_s=starts, duration_s=duration)
        tags = [t for t, on in zip(NEW_TAGS, labels[i], strict=True) if on]
        rows.append({"track_id": track_id, "split": "train" if i < 20 else "test", "tags": tags})
    writer.close()
    index = build_index(stores=[tmp_path / "0000.zarr"], manifest=pd.DataFrame(rows))
    assert index["track_id"].tolist() == [r["track_id"] for r in rows]

    checkpoint = _checkpoint()
    tagger = NetworkTagger(checkpoint)
    embeddings = np.stack(
        [
            tagger.embed_track(store_windows(store=row.store, start=row.start, stop=row.stop))
            for row in index.itertuples()
        ]
    )
    methods = {
        "prototype": prototype_method(embeddings=embeddings, labels=labels),
        "finetune": finetune_method(
            checkpoint=checkpoint,
            index=index,
            labels=labels,
            config=FinetuneConfig(steps=25, batch_size=8),
        ),
    }
    pool = (index["split"] == "train").to_numpy()
    table = run_fewshot(
        labels=labels,
        tags=NEW_TAGS,
        pool=pool,
        query=~pool,
        shots=[1, 5],
        episodes=2,
        seed=0,
        methods=methods,
    )
    assert len(table) == 2 * 2 * 2 and table["roc_auc_macro"].notna().all()
    five = table[(table["shots"] == 5) & (table["method"] == "finetune")]
    assert (five["roc_auc_macro"] > 0.8).all(), five

    wrong = checkpoint | {"features": {**FEATURES.to_dict(), "n_mels": 8}}
    method = finetune_method(checkpoint=wrong, index=index, labels=labels, config=FinetuneConfig())
    with pytest.raises(PipelineError, match="holds features"):
        method(np.array([0, 1]), np.array([30]), np.array([0]))
