"""The similarity index (:mod:`pipeline.retrieval.similarity`): built from track embeddings,
written with its description, loaded and searched; on hand-made vectors with known neighbours
and on the synthetic checkpoints of the ``checkpoints`` fixture (``tests/conftest.py``).

The track embeddings the index is built from are tested in ``tests/evaluation/test_predict.py``
(:func:`pipeline.evaluation.predict.embed_tracks`), the ``pipeline similar`` command in
``tests/cli/test_similar.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.predict import embed_tracks, embedding_matrix
from pipeline.retrieval.evaluate import evaluate_retrieval
from pipeline.retrieval.metric_learning import save_projection
from pipeline.retrieval.similarity import (
    METADATA_KEY,
    build_index,
    index_metadata,
    load_index,
    write_with_metadata,
)


@pytest.fixture(scope="module")
def manifest(checkpoints: dict) -> pd.DataFrame:
    index = checkpoints["index"]
    return pd.DataFrame(
        {"track_id": index["track_id"], "path": [f"/music/{t}.wav" for t in index["track_id"]]}
    )


def test_similarity_index_finds_the_track_itself(
    checkpoints: dict,
    manifest: pd.DataFrame,
    tmp_path: Path,
) -> None:
    """A stored track's own embedding is its nearest neighbour, similarity 1."""
    table = embed_tracks(checkpoint=checkpoints["fcn"], index=checkpoints["index"])
    out = tmp_path / "index.parquet"
    n = build_index(
        embeddings=table, manifest=manifest, checkpoint=checkpoints["fcn"], projection=None, out=out
    )
    index = load_index(out)
    assert n == len(table) == len(index.table)
    assert index.space == "tagger" and index.checkpoint == checkpoints["fcn"].resolve()
    np.testing.assert_allclose(np.linalg.norm(index.matrix, axis=1), 1.0, atol=1e-5)
    found = index.search(index.to_space(embedding_matrix(table)[[5]]), k=3)[0]
    assert list(found["rank"]) == [1, 2, 3]
    assert found["track_id"][0] == table["track_id"][5]
    assert found["similarity"][0] == pytest.approx(1.0, abs=1e-5)
    assert found["path"][0] == f"/music/{table['track_id'][5]}.wav"
    assert found["similarity"].is_monotonic_decreasing
    with pytest.raises(PipelineError, match="do not match index"):
        index.search(np.zeros((1, index.matrix.shape[1] + 1)), k=3)


def test_unknown_tracks_and_bad_index_files(
    checkpoints: dict,
    manifest: pd.DataFrame,
    tmp_path: Path,
) -> None:
    table = embed_tracks(checkpoint=checkpoints["fcn"], index=checkpoints["index"], splits=["test"])
    with pytest.raises(PipelineError, match="not in the manifest"):
        build_index(
            embeddings=table,
            manifest=manifest.iloc[:2],
            checkpoint=checkpoints["fcn"],
            projection=None,
            out=tmp_path / "x.parquet",
        )
    with pytest.raises(PipelineError, match="does not exist"):
        load_index(tmp_path / "missing.parquet")
    text = tmp_path / "text.parquet"
    text.write_text("no")
    with pytest.raises(PipelineError, match="not a Parquet file"):
        load_index(text)
    plain = tmp_path / "plain.parquet"
    pd.DataFrame({"track_id": ["a"]}).to_parquet(plain)
    with pytest.raises(PipelineError, match="not a similarity index"):
        load_index(plain)


def test_index_in_a_projection_space(
    checkpoints: dict,
    manifest: pd.DataFrame,
    tmp_path: Path,
) -> None:
    """index_space triplet: the index holds projected embeddings and projects queries too."""
    from pipeline.retrieval.metric_learning import TripletConfig, train_projection

    table = embed_tracks(checkpoint=checkpoints["fcn"], index=checkpoints["index"])
    parts = {s: table[table["split"] == s] for s in ("train", "valid")}
    projection, history = train_projection(
        train_embeddings=embedding_matrix(parts["train"]),
        train_tags=list(parts["train"]["tags"]),
        valid_embeddings=embedding_matrix(parts["valid"]),
        valid_tags=list(parts["valid"]["tags"]),
        config=TripletConfig(dim=4, hidden=0, epochs=3),
        k=5,
    )
    assert len(history) >= 1
    path = tmp_path / "projection.pt"
    save_projection(projection, path)
    out = tmp_path / "index.parquet"
    build_index(
        embeddings=table, manifest=manifest, checkpoint=checkpoints["fcn"], projection=path, out=out
    )
    index = load_index(out)
    assert index.space == "triplet" and index.matrix.shape[1] == 4
    query = index.to_space(embedding_matrix(table)[[0]])
    found = index.search(query, k=1)[0]
    assert found["similarity"][0] == pytest.approx(1.0, abs=1e-5)
    rows = evaluate_retrieval(
        embeddings=table, projection=path, split="test", k=5, relevance_threshold=0.5
    )
    assert [r["space"] for r in rows] == ["tagger", "triplet", "random"]
    assert rows[1]["dim"] == 4


def _angles(*degrees: float, norms: tuple[float, ...] | None = None) -> np.ndarray:
    radians = np.deg2rad(np.array(degrees))
    unit = np.stack([np.cos(radians), np.sin(radians)], axis=1)
    return unit if norms is None else unit * np.asarray(norms)[:, None]


def _embeddings(vectors: np.ndarray) -> pd.DataFrame:
    """A table shaped like :func:`pipeline.evaluation.predict.embed_tracks`'s."""
    n = len(vectors)
    return pd.DataFrame(
        {
            "track_id": [f"t{i}" for i in range(n)],
            "split": ["test" if i % 2 else "train" for i in range(n)],
            "tags": [[f"tag{i}"] for i in range(n)],
            "embedding": list(vectors),
        }
    )


def test_index_metadata_names_the_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert index_metadata(checkpoint="m/checkpoint.pt", projection=None) == {
        "checkpoint": str(tmp_path.resolve() / "m" / "checkpoint.pt"),
        "projection": None,
        "space": "tagger",
    }
    described = index_metadata(checkpoint="c.pt", projection="p/projection.pt")
    assert described["projection"] == str(tmp_path.resolve() / "p" / "projection.pt")
    assert described["space"] == "triplet"


def test_known_vectors_find_their_neighbours(tmp_path: Path) -> None:
    """Four tracks at 0, 90, 60 and 40 degrees, of any length, and a zero vector."""
    vectors = np.concatenate([_angles(0, 90, 60, 40, norms=(3.0, 0.5, 2.0, 1.0)), [[0.0, 0.0]]])
    table = _embeddings(vectors)
    manifest = pd.DataFrame(
        {"track_id": [f"t{i}" for i in range(6)], "path": [f"/m/{i}.flac" for i in range(6)]}
    ).iloc[::-1]  # its order does not matter; it may hold more tracks
    out = tmp_path / "sub" / "index.parquet"
    assert (
        build_index(
            embeddings=table,
            manifest=manifest,
            checkpoint=tmp_path / "c.pt",
            projection=None,
            out=out,
        )
        == 5
    )
    index = load_index(out)
    assert list(index.table.columns) == ["track_id", "path", "split", "tags"]
    assert index.space == "tagger" and index.projection is None and index.projector is None
    assert index.checkpoint == (tmp_path / "c.pt").resolve()
    assert index.matrix.dtype == np.float32
    np.testing.assert_allclose(index.matrix[:4], _angles(0, 90, 60, 40), atol=1e-6)
    assert (index.matrix[4] == 0).all()  # a zero embedding stays zero
    found = index.search(index.to_space(_angles(10, norms=(7.0,))), k=3)[0]
    assert list(found.columns[:3]) == ["rank", "similarity", "track_id"]
    assert list(found["track_id"]) == ["t0", "t3", "t2"]
    assert list(found["path"]) == ["/m/0.flac", "/m/3.flac", "/m/2.flac"]
    np.testing.assert_allclose(found["similarity"], np.cos(np.deg2rad([10, 30, 50])), atol=1e-6)
    assert [list(t) for t in found["tags"]] == [["tag0"], ["tag3"], ["tag2"]]
    everything = index.search(index.to_space(_angles(90, 0)), k=10)
    assert [len(f) for f in everything] == [5, 5]  # k beyond the index: every track
    assert list(everything[0]["track_id"]) == ["t1", "t2", "t3", "t0", "t4"]
    assert everything[0]["similarity"].iloc[-1] == 0.0
    np.testing.assert_allclose(index.to_space(np.array([[0.0, 2.0]])), [[0.0, 1.0]])


def test_a_collection_table_is_an_index(tmp_path: Path) -> None:
    """A table written with a description, predicted ``top_tags`` as its tags; another
    checkpoint may replace the one it names; its own metadata is kept."""
    table = pa.table(
        {
            "track_id": ["a", "b"],
            "top_tags": [["rock"], ["jazz"]],
            "embedding": pa.FixedSizeListArray.from_arrays(
                pa.array([1.0, 0.0, 0.0, 1.0], pa.float32()), 2
            ),
        }
    ).replace_schema_metadata({b"other": b"kept"})
    out = tmp_path / "tags.parquet"
    write_with_metadata(
        table, out=out, metadata=index_metadata(checkpoint=tmp_path / "c.pt", projection=None)
    )
    metadata = pq.read_schema(out).metadata
    assert metadata[b"other"] == b"kept"
    assert json.loads(metadata[METADATA_KEY])["space"] == "tagger"
    index = load_index(out, checkpoint=tmp_path / "moved.pt")
    assert index.checkpoint == tmp_path / "moved.pt"
    assert [list(t) for t in index.table["tags"]] == [["rock"], ["jazz"]]
    assert index.search(np.array([[0.0, 1.0]]), k=1)[0]["track_id"][0] == "b"

    empty = tmp_path / "empty.parquet"
    write_with_metadata(table.slice(0, 0), out=empty, metadata={"checkpoint": "c.pt"})
    with pytest.raises(PipelineError, match="has no tracks"):
        load_index(empty)
    no_embedding = tmp_path / "no_embedding.parquet"
    write_with_metadata(table.drop(["embedding"]), out=no_embedding, metadata={})
    with pytest.raises(PipelineError, match="not a similarity index"):
        load_index(no_embedding)
