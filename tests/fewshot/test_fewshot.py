"""Few-shot personal tags: episodes, prototypes, fine-tuning, and the shots table.

Synthetic data with known answers: embeddings that are (or are not) clustered by tag, and
log-mel windows where a new tag is loud energy in the high or the low bands, tagged by a tiny
randomly initialised FCN checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.errors import ConfigError, PipelineError
from pipeline.evaluation.metrics import summary_metrics
from pipeline.features.index import build_index
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import audio_frames, store_windows
from pipeline.fewshot.episodes import run_fewshot, sample_support
from pipeline.fewshot.finetune import FinetuneConfig, finetune_method, finetune_scores
from pipeline.fewshot.prototypes import prototype_method, prototype_scores
from pipeline.fewshot.table import FEWSHOT_COLUMNS, SUMMARY_COLUMNS, summarise_fewshot
from pipeline.inference.network import NetworkTagger
from pipeline.io.audio import WindowSettings
from pipeline.io.checkpoint import network_checkpoint
from pipeline.io.store import StoreWriter
from pipeline.models import build_model

N_BINS, N_FRAMES, CROP = 16, 64, 32
# 63 hops of 256 samples: 64 centred frames per window, 1.008 s
WINDOW = WindowSettings(length_s=63 * 256 / 16000, hop_s=63 * 256 / 16000, min_tail_s=0.1)
FEATURES = FeatureSettings(
    name="lm", window=WINDOW, n_fft=512, hop_length=256, n_mels=N_BINS, n_frames=N_FRAMES
)
NEW_TAGS = ["dark", "bright"]
BANDS = {"dark": slice(1, 5), "bright": slice(10, 14)}
FLOOR = -100.0


def _macro_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    tags = [f"t{k}" for k in range(labels.shape[1])]
    return summary_metrics(y_true=labels, y_score=scores, tags=tags)["macro_roc_auc"]


# --------------------------------------------------------------------------------------------
# sample_support
# --------------------------------------------------------------------------------------------


def _random_labels(n: int, rates: list[float], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, len(rates))) < np.asarray(rates)[None, :]


def test_support_has_shots_positives_per_usable_tag() -> None:
    labels = _random_labels(300, [0.3, 0.1, 0.05, 0.5, 0.2], seed=1)
    for shots in (1, 5, 10):
        support, usable = sample_support(
            labels=labels, shots=shots, rng=np.random.default_rng(shots)
        )
        assert support.dtype == np.int64 and usable.dtype == bool and usable.shape == (5,)
        assert np.array_equal(support, np.unique(support))
        assert usable.all()
        n_positive = labels[support].sum(axis=0)
        assert (n_positive >= shots).all() and (n_positive < len(support)).all()
        # a union of per-tag draws: never more than shots x tags tracks
        assert len(support) <= shots * labels.shape[1]


def test_support_flags_unusable_tags_and_is_deterministic() -> None:
    labels = _random_labels(100, [0.3, 0.3, 0.0, 0.3], seed=2)
    labels[:3, 2] = True  # tag 2: only three positives
    labels[:, 3] = True  # tag 3: no negative anywhere
    support, usable = sample_support(labels=labels, shots=5, rng=np.random.default_rng(7))
    assert usable.tolist() == [True, True, False, False]
    again, usable_again = sample_support(labels=labels, shots=5, rng=np.random.default_rng(7))
    assert np.array_equal(support, again) and np.array_equal(usable, usable_again)
    other, _ = sample_support(labels=labels, shots=5, rng=np.random.default_rng(8))
    assert not np.array_equal(support, other)
    # three positives are enough for three shots
    _, usable3 = sample_support(labels=labels, shots=3, rng=np.random.default_rng(7))
    assert usable3[2]
    with pytest.raises(PipelineError, match="shots"):
        sample_support(labels=labels, shots=0, rng=np.random.default_rng(0))


def test_support_tag_without_negative_in_support_is_unusable() -> None:
    # every track carries tag 0, so the support (drawn for tag 0 and 1) has no negative of it
    labels = np.array([[1, 1], [1, 0], [1, 1], [1, 0]], dtype=bool)
    _, usable = sample_support(labels=labels, shots=1, rng=np.random.default_rng(0))
    assert not usable[0]


# --------------------------------------------------------------------------------------------
# prototype_scores
# --------------------------------------------------------------------------------------------


def _clusters(n: int, *, n_tags: int, dim: int, noise: float, seed: int):
    """One tag per track; embedding = the tag's centre + noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_tags, dim)) * 3.0
    tag = rng.integers(0, n_tags, size=n)
    labels = np.eye(n_tags, dtype=bool)[tag]
    return centres[tag] + noise * rng.normal(size=(n, dim)), labels


def test_prototypes_separate_clusters_perfectly() -> None:
    x, labels = _clusters(200, n_tags=4, dim=8, noise=0.1, seed=0)
    scores = prototype_scores(support=x[:20], support_labels=labels[:20], queries=x[20:])
    assert scores.shape == (180, 4) and ((scores > 0) & (scores < 1)).all()
    assert _macro_auc(labels[20:], scores) == 1.0
    # scale-free: embeddings are L2-normalised
    scaled = prototype_scores(support=5 * x[:20], support_labels=labels[:20], queries=x[20:])
    np.testing.assert_allclose(scaled, scores)


def test_prototypes_on_shuffled_labels_are_chance() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 16))
    labels = rng.random((3000, 5)) < 0.3  # independent of x
    scores = prototype_scores(support=x[:100], support_labels=labels[:100], queries=x[100:])
    assert abs(_macro_auc(labels[100:], scores) - 0.5) < 0.03


def test_prototypes_nan_for_tags_without_positive_or_negative() -> None:
    x, labels = _clusters(40, n_tags=2, dim=4, noise=0.1, seed=1)
    support_labels = np.stack([labels[:10, 0], np.ones(10, bool), np.zeros(10, bool)], axis=1)
    scores = prototype_scores(support=x[:10], support_labels=support_labels, queries=x[10:])
    assert np.isfinite(scores[:, 0]).all()
    assert np.isnan(scores[:, 1]).all() and np.isnan(scores[:, 2]).all()
    with pytest.raises(PipelineError, match="same D"):
        prototype_scores(support=x[:10], support_labels=labels[:10], queries=x[10:, :3])


# --------------------------------------------------------------------------------------------
# run_fewshot and summarise_fewshot
# --------------------------------------------------------------------------------------------


def _noisy_multilabel(n: int, *, n_tags: int, dim: int, noise: float, seed: int):
    """Independent tags; embedding = sum of the track's tag directions + noise."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n_tags, dim))
    labels = rng.random((n, n_tags)) < 0.25
    return labels @ directions + noise * rng.normal(size=(n, dim)), labels


def test_run_fewshot_table_and_more_shots_help() -> None:
    x, labels = _noisy_multilabel(500, n_tags=5, dim=32, noise=2.0, seed=4)
    tags = [f"tag{k}" for k in range(5)]
    pool = np.arange(500) < 300
    seen: list[tuple[str, int, int, tuple[int, ...]]] = []

    def recording(name: str):
        proto = prototype_method(embeddings=x, labels=labels)

        def method(support_idx, query_idx, tag_idx):
            seen.append((name, len(query_idx), len(tag_idx), tuple(support_idx)))
            assert not set(support_idx) & set(query_idx)
            assert pool[support_idx].all() and not pool[query_idx].any()
            return proto(support_idx, query_idx, tag_idx)

        return method

    kwargs = dict(labels=labels, tags=tags, pool=pool, query=~pool, shots=[1, 10], seed=0)
    table = run_fewshot(**kwargs, episodes=6, methods={"a": recording("a"), "b": recording("b")})
    assert list(table.columns) == FEWSHOT_COLUMNS and len(table) == 2 * 2 * 6
    assert table["roc_auc_macro"].notna().all()
    # one shot per tag may leave a tag without a negative in the support set: not scored
    assert table["n_tags"].between(1, 5).all() and (table["n_tags"] == 5).mean() > 0.5
    assert (table.loc[table["shots"] == 10, "n_tags"] == 5).all()
    # both methods were given identical episodes, hence identical scores here
    supports_a = [s for name, *_, s in seen if name == "a"]
    supports_b = [s for name, *_, s in seen if name == "b"]
    assert supports_a == supports_b and len(set(supports_a)) > 6
    a, b = table[table["method"] == "a"], table[table["method"] == "b"]
    np.testing.assert_array_equal(a["roc_auc_macro"].to_numpy(), b["roc_auc_macro"].to_numpy())
    # one shot per tag: at most 5 support tracks; ten shots: at least 10
    assert (a.loc[a["shots"] == 1, "n_support"] <= 5).all()
    assert (a.loc[a["shots"] == 10, "n_support"] >= 10).all()

    summary = summarise_fewshot(table)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert summary[["method", "shots"]].values.tolist() == [
        ["a", 1],
        ["a", 10],
        ["b", 1],
        ["b", 10],
    ]
    assert (summary["episodes"] == 6).all() and (summary["roc_auc_std"] > 0).all()
    roc = summary[summary["method"] == "a"].set_index("shots")["roc_auc_mean"]
    assert roc[10] > roc[1] + 0.05, roc.to_dict()
    assert roc[10] > 0.75

    again = run_fewshot(**kwargs, episodes=6, methods={"a": recording("a"), "b": recording("b")})
    pd.testing.assert_frame_equal(table, again)


def test_run_fewshot_checks_inputs_and_skips_rare_tags() -> None:
    rows = np.arange(60)
    # tags a and b alternate; c has a single positive, too rare for two shots
    labels = np.stack([rows % 2 == 0, (rows // 2) % 2 == 0, rows == 0], axis=1)
    pool = rows < 40
    scored: list[list[int]] = []

    def recording(support_idx, query_idx, tag_idx):
        scored.append(tag_idx.tolist())
        return np.full((len(query_idx), len(tag_idx)), 0.5)

    common = dict(labels=labels, tags=["a", "b", "c"], shots=[2], episodes=3, seed=0)
    table = run_fewshot(**common, pool=pool, query=~pool, methods={"r": recording})
    # c is never scored; a support of two tracks carrying both a and b leaves nothing to score
    assert len(table) == 3 and [0, 1] in scored and all(2 not in t for t in scored)
    n_tags = table["n_tags"].tolist()
    assert [n for n in n_tags if n] == [len(t) for t in scored] and n_tags.count(0) < 3
    assert table.loc[table["n_tags"] > 0, "roc_auc_macro"].eq(0.5).all()
    assert table.loc[table["n_tags"] == 0, "roc_auc_macro"].isna().all()

    with pytest.raises(PipelineError, match="share"):
        run_fewshot(**common, pool=pool, query=np.ones(60, bool), methods={"r": recording})
    with pytest.raises(PipelineError, match="tags"):
        run_fewshot(**{**common, "tags": ["a"]}, pool=pool, query=~pool, methods={"r": recording})

    def wrong_shape(support_idx, query_idx, tag_idx):
        return np.zeros((len(query_idx), len(tag_idx) + 1))

    with pytest.raises(PipelineError, match="'bad'"):
        run_fewshot(**common, pool=pool, query=~pool, methods={"bad": wrong_shape})


# --------------------------------------------------------------------------------------------
# Fine-tuning a tiny checkpoint
# --------------------------------------------------------------------------------------------


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


def test_summarise_fewshot_known_values() -> None:
    table = pd.DataFrame(
        {
            "method": ["m", "m", "m", "n"],
            "shots": [5, 5, 5, 1],
            "episode": [0, 1, 2, 0],
            "n_support": [9, 8, 7, 2],
            "n_tags": [3, 2, 0, 1],
            "roc_auc_macro": [0.6, 0.8, np.nan, 0.9],
            "pr_auc_macro": [0.2, 0.4, np.nan, 0.5],
        }
    )
    summary = summarise_fewshot(table)
    m = summary.iloc[0]
    assert (m["method"], m["shots"], m["episodes"], m["n_tags"]) == ("m", 5, 2, 2.5)
    assert m["roc_auc_mean"] == pytest.approx(0.7) and m["roc_auc_std"] == pytest.approx(0.02**0.5)
    assert m["pr_auc_mean"] == pytest.approx(0.3)
    n = summary.iloc[1]
    assert n["episodes"] == 1 and n["roc_auc_mean"] == 0.9 and np.isnan(n["roc_auc_std"])
    with pytest.raises(PipelineError, match="roc_auc_macro"):
        summarise_fewshot(table.drop(columns="roc_auc_macro"))


# --------------------------------------------------------------------------------------------
# The workflow's evaluation on a trained checkpoint (fixture `checkpoints` of tests/conftest.py)
# --------------------------------------------------------------------------------------------


def test_evaluate_fewshot_and_table(checkpoints: dict, tmp_path: Path) -> None:
    """Both methods on the synthetic stores' own tags; the table summarises the episodes."""
    from pipeline.fewshot.episodes import evaluate_fewshot
    from pipeline.fewshot.table import write_fewshot_table

    settings = {
        "shots": [1, 3],
        "episodes": 2,
        "seed": 0,
        "finetune": {"enabled": True, "steps": 3, "batch_size": 4},
    }
    table = evaluate_fewshot(
        checkpoint=checkpoints["fcn"],
        index=checkpoints["index"],
        vocabulary=checkpoints["tags"],
        split="test",
        settings=settings,
    )
    assert list(table.columns) == FEWSHOT_COLUMNS
    assert set(table["method"]) == {"prototypes", "finetune"} and len(table) == 8
    assert table["roc_auc_macro"].dropna().between(0, 1).all()
    sequence = evaluate_fewshot(
        checkpoint=checkpoints["lstm"],
        index=checkpoints["index"],
        vocabulary=checkpoints["tags"],
        split="test",
        settings=settings,
    )
    assert set(sequence["method"]) == {"prototypes"}  # no fine-tuning of a sequence model
    with pytest.raises(ConfigError, match="held out"):
        evaluate_fewshot(
            checkpoint=checkpoints["fcn"],
            index=checkpoints["index"],
            vocabulary=checkpoints["tags"],
            split="valid",
            settings=settings,
        )

    episodes = tmp_path / "episodes.csv"
    table.insert(0, "target", "synthetic")
    table.insert(0, "model", "fcn")
    table.insert(0, "dataset", "synthetic")
    table.to_csv(episodes, index=False)
    out = {ext: tmp_path / f"fewshot.{ext}" for ext in ("csv", "md", "html")}
    summary = write_fewshot_table(
        episodes=[episodes],
        out_csv=out["csv"],
        out_md=out["md"],
        out_html=out["html"],
        split="test",
    )
    assert list(summary.columns) == ["dataset", "model", "target", *SUMMARY_COLUMNS]
    assert len(summary) == 4
    assert "Few-shot tags" in out["md"].read_text() and "<table>" in out["html"].read_text()
