"""The workflow's retrieval steps (:mod:`pipeline.retrieval.evaluate`): the metric-learning
projection trained from a table of track embeddings, and the retrieval rows of each
embedding space, on hand-made embeddings with known answers and the synthetic checkpoints of
the ``checkpoints`` fixture (``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.errors import ConfigError, PipelineError
from pipeline.evaluation.predict import embed_tracks
from pipeline.retrieval.evaluate import evaluate_retrieval, train_metric_projection
from pipeline.retrieval.metric_learning import (
    HISTORY_COLUMNS,
    TripletConfig,
    load_projection,
    project,
    train_projection,
)
from pipeline.retrieval.metrics import chance_metrics, retrieval_metrics
from pipeline.retrieval.table import shown
from tests.helpers.retrieval import clustered_tracks

SHOWN = ["map_at_k", "recall_at_k", "mrr", "ndcg_at_k", "n_queries", "n_tracks"]
CI = ["map_at_k_ci_low", "map_at_k_ci_high", "ndcg_at_k_ci_low", "ndcg_at_k_ci_high"]


def _table(parts: dict[str, tuple[np.ndarray, list[list[str]]]]) -> pd.DataFrame:
    """A table shaped like :func:`pipeline.evaluation.predict.embed_tracks`'s, by split."""
    frames = [
        pd.DataFrame(
            {
                "track_id": [f"{split}-{i}" for i in range(len(x))],
                "split": split,
                "tags": tags,
                "embedding": list(x),
            }
        )
        for split, (x, tags) in parts.items()
    ]
    return pd.concat(frames, ignore_index=True)


def test_retrieval_rows_rank_the_synthetic_tags(checkpoints: dict) -> None:
    """The synthetic tags are audible (band energy): the trained model's space beats chance."""
    table = embed_tracks(checkpoint=checkpoints["fcn"], index=checkpoints["index"])
    rows = evaluate_retrieval(
        embeddings=table, projection=None, split="train", k=5, relevance_threshold=1.0
    )
    spaces = {r["space"]: r for r in rows}
    assert set(spaces) == {"tagger", "random"}
    assert spaces["tagger"]["map_at_k"] > spaces["random"]["map_at_k"]
    assert 0 <= spaces["tagger"]["ndcg_at_k"] <= 1
    for name in ("map_at_k", "ndcg_at_k"):  # the interval holds the mean over the queries
        tagger = spaces["tagger"]
        assert tagger[f"{name}_ci_low"] <= tagger[name] <= tagger[f"{name}_ci_high"]


def test_rows_are_the_metrics_of_each_space_on_the_split() -> None:
    """Multi-hot tag embeddings rank perfectly; the random row is chance; other splits'
    tracks are not queried."""
    groups = [["a", "b"], ["c"], ["d", "e"]]
    tags = [groups[i % 3] for i in range(9)]
    vocabulary = ["a", "b", "c", "d", "e"]
    x = np.array([[t in track for t in vocabulary] for track in tags], dtype=np.float32)
    rng = np.random.default_rng(0)
    table = _table({"test": (x, tags), "train": (rng.normal(size=(5, 5)), [["a"]] * 5)})
    rows = evaluate_retrieval(
        embeddings=table, projection=None, split="test", k=3, relevance_threshold=0.5
    )
    assert [list(r) for r in rows] == [["space", "dim", *SHOWN, *CI]] * 2
    tagger, chance = rows
    assert tagger["space"] == "tagger" and tagger["dim"] == 5 and tagger["n_tracks"] == 9
    expected = retrieval_metrics(embeddings=x, tags=tags, k=3, relevance_threshold=0.5)
    assert {k: v for k, v in tagger.items() if k not in CI} == {
        "space": "tagger",
        "dim": 5,
        **shown(expected),
    }
    for key in ("map_at_k", "recall_at_k", "mrr", "ndcg_at_k"):
        assert tagger[key] == pytest.approx(1.0), key
    for key in CI:  # every query is perfect: the interval of the mean is [1, 1]
        assert tagger[key] == pytest.approx(1.0), key
    assert chance["space"] == "random" and chance["dim"] == 0
    baseline = chance_metrics(tags=tags, k=3, relevance_threshold=0.5, repeats=3)
    assert {k: v for k, v in chance.items() if k not in CI} == {
        "space": "random",
        "dim": 0,
        **shown(baseline),
    }
    assert all(np.isnan(chance[key]) for key in CI)  # no interval for the random ranking
    assert chance["map_at_k"] < 0.9


def test_train_metric_projection_and_its_space(tmp_path: Path) -> None:
    """The rule's projection is :func:`train_projection` on the train and valid splits with
    the ``metric_learning`` settings (``enabled`` dropped); its rows use it."""
    train, valid, test = (clustered_tracks(n, seed=s) for n, s in ((120, 1), (60, 2), (60, 3)))
    table = _table({"train": train, "valid": valid, "test": test})
    settings = {"enabled": True, "dim": 4, "hidden": 0, "epochs": 2, "seed": 1}
    retrieval = {"k": 5, "relevance_threshold": 0.5, "metric_learning": settings}
    out = tmp_path / "projection.pt"
    history_path = tmp_path / "logs" / "history.csv"
    train_metric_projection(
        embeddings=table, retrieval=retrieval, out_projection=out, out_history=history_path
    )
    projection = load_projection(out)
    assert projection["config"] == TripletConfig(dim=4, hidden=0, epochs=2, seed=1).to_dict()
    assert projection["input_dim"] == 32
    direct, direct_history = train_projection(
        train_embeddings=train[0],
        train_tags=train[1],
        valid_embeddings=valid[0],
        valid_tags=valid[1],
        config=TripletConfig(dim=4, hidden=0, epochs=2, seed=1),
        k=5,
        relevance_threshold=0.5,
    )
    for name, tensor in direct["state_dict"].items():
        assert torch.equal(projection["state_dict"][name], tensor), name
    history = pd.read_csv(history_path)
    assert list(history.columns) == HISTORY_COLUMNS
    pd.testing.assert_frame_equal(history, direct_history, check_dtype=False)

    rows = evaluate_retrieval(
        embeddings=table, projection=out, split="test", k=5, relevance_threshold=0.5
    )
    assert [(r["space"], r["dim"]) for r in rows] == [("tagger", 32), ("triplet", 4), ("random", 0)]
    projected = project(projection=projection, embeddings=test[0])
    expected = retrieval_metrics(embeddings=projected, tags=test[1], k=5, relevance_threshold=0.5)
    triplet = {k: v for k, v in rows[1].items() if k not in CI}
    assert triplet == {"space": "triplet", "dim": 4, **shown(expected)}


def test_splits_need_two_tracks_and_settings_are_checked(tmp_path: Path) -> None:
    x, tags = clustered_tracks(6, seed=0)
    table = _table({"train": (x[:5], tags[:5]), "test": (x[5:], tags[5:])})
    with pytest.raises(PipelineError, match=r"split 'test' has 1 embedded track\(s\)"):
        evaluate_retrieval(
            embeddings=table, projection=None, split="test", k=2, relevance_threshold=0.5
        )
    retrieval = {"k": 2, "relevance_threshold": 0.5, "metric_learning": {"epochs": 1}}
    with pytest.raises(PipelineError, match=r"split 'valid' has 0 embedded track\(s\)"):
        train_metric_projection(
            embeddings=table,
            retrieval=retrieval,
            out_projection=tmp_path / "p.pt",
            out_history=tmp_path / "h.csv",
        )
    table = _table({"train": (x[:3], tags[:3]), "valid": (x[3:], tags[3:])})
    retrieval = {"k": 2, "relevance_threshold": 0.5, "metric_learning": {"dims": 4}}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['dims'\]"):
        train_metric_projection(
            embeddings=table,
            retrieval=retrieval,
            out_projection=tmp_path / "p.pt",
            out_history=tmp_path / "h.csv",
        )
    assert not (tmp_path / "p.pt").exists()
