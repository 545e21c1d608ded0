"""Triplet metric learning (:mod:`pipeline.retrieval.metric_learning`): settings, triplet
mining on the tag ranking, a projection that finds the tag dimensions of synthetic tracks,
reproducibility and the projection file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.errors import ConfigError, PipelineError
from pipeline.retrieval import metric_learning, metrics
from pipeline.retrieval.metric_learning import (
    HISTORY_COLUMNS,
    TripletConfig,
    load_projection,
    project,
    save_projection,
    train_projection,
)
from pipeline.retrieval.metrics import retrieval_metrics, tag_relevance
from tests.helpers.retrieval import clustered_tracks


def test_triplet_config_from_dict() -> None:
    config = TripletConfig.from_dict({"dim": 8, "hidden": 0})
    assert config.dim == 8 and config.hidden == 0 and config.margin == 0.2
    assert TripletConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['dims'\]"):
        TripletConfig.from_dict({"dims": 8})
    with pytest.raises(ConfigError, match="triplet.margin: -1"):
        TripletConfig.from_dict({"margin": -1})
    with pytest.raises(ConfigError, match="triplet.hidden: -1"):
        TripletConfig(hidden=-1)
    with pytest.raises(ConfigError, match="triplet.epochs: 2.5"):
        TripletConfig(epochs=2.5)


def test_mined_triplets_follow_the_tag_ranking_and_prefer_active_ones() -> None:
    _, tags = clustered_tracks(100, seed=5)
    miner = metric_learning._TripletMiner(metrics._tags_multi_hot(tags, name="tags"))
    out = np.random.default_rng(0).normal(size=(100, 8))
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    triplets = miner.mine(rng=np.random.default_rng(1), embeddings=out, per_anchor=3, margin=0.2)
    a, p, n = triplets.T
    n_anchors = sum(1 for t in tags if t)
    assert 0.9 * 3 * n_anchors <= len(triplets) <= 3 * n_anchors
    assert np.bincount(a).max() <= 3
    jaccard = tag_relevance(query_tags=tags, candidate_tags=tags)
    assert (jaccard[a, p] > jaccard[a, n]).all()
    assert (a != p).all() and (a != n).all()
    # With random outputs about half of all ordered pairs violate the margin; the miner
    # picks those (semi-hard, then hard) first.
    violation = 0.2 + (1 - (out[a] * out[p]).sum(1)) - (1 - (out[a] * out[n]).sum(1))
    assert (violation > 0).mean() > 0.95


def test_triplet_projection_learns_the_tag_dimensions(tmp_path: Path) -> None:
    train_x, train_tags = clustered_tracks(400, seed=10)
    valid_x, valid_tags = clustered_tracks(150, seed=11)
    test_x, test_tags = clustered_tracks(200, seed=12)
    config = TripletConfig(dim=16, hidden=32, epochs=10, patience=4, lr=5e-3, seed=0)
    torch_state = torch.random.get_rng_state()
    projection, history = train_projection(
        train_embeddings=train_x,
        train_tags=train_tags,
        valid_embeddings=valid_x,
        valid_tags=valid_tags,
        config=config,
        k=10,
    )
    assert torch.equal(torch.random.get_rng_state(), torch_state)  # global state untouched
    assert list(history.columns) == HISTORY_COLUMNS
    assert (history["n_triplets"] > 0).all()
    best = history.loc[history["valid_map_at_k"].idxmax()]
    assert projection["selection"]["epoch"] == best["epoch"]
    assert projection["selection"]["valid_map_at_k"] == pytest.approx(best["valid_map_at_k"])
    assert projection["kind"] == "triplet_projection" and projection["input_dim"] == 32

    raw = retrieval_metrics(embeddings=test_x, tags=test_tags, k=10)["map_at_k"]
    projected = project(projection=projection, embeddings=test_x)
    assert projected.shape == (200, 16) and projected.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(projected, axis=1), 1.0, atol=1e-5)
    learned = retrieval_metrics(embeddings=projected, tags=test_tags, k=10)["map_at_k"]
    # Raw cosine is near chance (~0.06); the projection finds the 4 tag dimensions (~0.67).
    assert learned > raw + 0.3, (raw, learned)

    path = tmp_path / "projection.pt"
    save_projection(projection, path)
    loaded = load_projection(path)
    np.testing.assert_array_equal(project(projection=loaded, embeddings=test_x), projected)
    assert loaded["selection"] == projection["selection"]

    with pytest.raises(PipelineError, match="input_dim=32"):
        project(projection=loaded, embeddings=test_x[:, :30])


def test_triplet_training_is_reproducible_and_linear_works() -> None:
    train_x, train_tags = clustered_tracks(120, seed=20)
    valid_x, valid_tags = clustered_tracks(60, seed=21)
    config = TripletConfig(dim=4, hidden=0, epochs=2, seed=3)
    runs = [
        train_projection(
            train_embeddings=train_x,
            train_tags=train_tags,
            valid_embeddings=valid_x,
            valid_tags=valid_tags,
            config=config,
            k=5,
        )
        for _ in range(2)
    ]
    for name, tensor in runs[0][0]["state_dict"].items():
        assert torch.equal(tensor, runs[1][0]["state_dict"][name]), name
    assert runs[0][1].equals(runs[1][1])
    assert set(runs[0][0]["state_dict"]) == {"net.0.weight", "net.0.bias"}


def test_train_projection_errors() -> None:
    x, tags = clustered_tracks(20, seed=0)
    with pytest.raises(PipelineError, match="30 dimensions but train_embeddings 32"):
        train_projection(
            train_embeddings=x,
            train_tags=tags,
            valid_embeddings=x[:, :30],
            valid_tags=tags,
            config=TripletConfig(epochs=1),
        )
    with pytest.raises(PipelineError, match="no valid track"):
        train_projection(
            train_embeddings=x,
            train_tags=tags,
            valid_embeddings=x[:3],
            valid_tags=[["a"], ["b"], ["c"]],
            config=TripletConfig(epochs=1),
        )
    with pytest.raises(PipelineError, match="no triplet"):
        train_projection(
            train_embeddings=x[:4],
            train_tags=[["a"]] * 4,
            valid_embeddings=x,
            valid_tags=tags,
            config=TripletConfig(epochs=1),
        )


def test_load_projection_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pt"
    with pytest.raises(PipelineError, match="missing.pt"):
        load_projection(missing)
    other = tmp_path / "other.pt"
    torch.save({"kind": "network"}, other)
    with pytest.raises(PipelineError, match=r"other\.pt.*not a 'triplet_projection'"):
        load_projection(other)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(PipelineError, match="garbage.pt"):
        load_projection(garbage)
    with pytest.raises(PipelineError, match="lacks key"):
        save_projection({"kind": "triplet_projection"}, tmp_path / "bad.pt")
