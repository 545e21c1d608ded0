"""Track embeddings from the stores, batch tagging of a collection, the similarity index and
the ``pipeline similar`` command, on the synthetic checkpoints of the ``checkpoints`` fixture
(``tests/conftest.py``) and real encoded audio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.cli import EXIT_FAILED_FILES, EXIT_OK, EXIT_USAGE, main
from pipeline.collection import list_folder, merge_shards, shard_tracks, tag_files
from pipeline.errors import ConfigError, PipelineError
from pipeline.evaluation.predict import embed_tracks, embedding_matrix
from pipeline.inference.file_tagger import FileTagger
from pipeline.inference.loading import load_tagger
from pipeline.retrieval.evaluate import evaluate_retrieval
from pipeline.retrieval.metric_learning import save_projection
from pipeline.retrieval.similarity import build_index, load_index
from tests.helpers.audio import write_audio
from tests.helpers.checkpoints import KINDS


@pytest.fixture(scope="module")
def manifest(checkpoints: dict) -> pd.DataFrame:
    index = checkpoints["index"]
    return pd.DataFrame(
        {"track_id": index["track_id"], "path": [f"/music/{t}.wav" for t in index["track_id"]]}
    )


@pytest.mark.parametrize("kind", KINDS)
def test_embed_tracks_equals_the_taggers_track_embedding(checkpoints: dict, kind: str) -> None:
    """Every split, one row per stored track; batched window means = embed_track per track."""
    index = checkpoints["index"]
    table = embed_tracks(checkpoint=checkpoints[kind], index=index)
    stored = index[index["stop"] > index["start"]]
    assert sorted(table["track_id"]) == sorted(stored["track_id"])
    assert set(table["split"]) == {"train", "valid", "test"}
    matrix = embedding_matrix(table)
    assert matrix.shape[0] == len(table) and np.isfinite(matrix).all()

    from pipeline.features.windows import audio_frames
    from pipeline.io.store import FeatureStore

    tagger = load_tagger(checkpoints[kind])
    row = stored.iloc[3]
    windows, starts = FeatureStore(Path(row["store"])).checked_windows(
        features=tagger.features.to_dict()
    )
    valid = audio_frames(
        starts_s=starts[row["start"] : row["stop"]],
        duration_s=float(row["duration_s"]),
        features=tagger.features,
    )
    expected = tagger.embed_track(windows[row["start"] : row["stop"]], valid_frames=valid)
    got = matrix[list(table["track_id"]).index(row["track_id"])]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    test_only = embed_tracks(checkpoint=checkpoints[kind], index=index, splits=["test"])
    assert set(test_only["split"]) == {"test"}


def test_embedding_matrix_errors() -> None:
    with pytest.raises(PipelineError, match="no 'embedding' column"):
        embedding_matrix(pd.DataFrame({"x": [1]}))
    ragged = pd.DataFrame({"embedding": [np.zeros(3), np.zeros(4)]})
    with pytest.raises(PipelineError, match="different lengths"):
        embedding_matrix(ragged)


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


# --------------------------------------------------------------------------------------------
# Batch tagging of a collection
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A music folder: real audio in sub-folders, a text file, and a broken 'mp3'."""
    root = tmp_path_factory.mktemp("music")
    write_audio(root / "a" / "one.wav", duration_s=2.2, freq_hz=200.0)
    write_audio(root / "a" / "two.FLAC", duration_s=1.5, freq_hz=3000.0, seed=1)
    write_audio(root / "b" / "three.ogg", duration_s=3.1, sample_rate=22050, seed=2)
    (root / "b" / "notes.txt").write_text("not audio")
    (root / "b" / "broken.mp3").write_text("not audio either\n" * 40)
    return root


def test_list_folder(folder: Path, tmp_path: Path) -> None:
    tracks = list_folder(root=folder)
    assert list(tracks["track_id"]) == ["a/one.wav", "a/two.FLAC", "b/broken.mp3", "b/three.ogg"]
    assert list_folder(root=folder, patterns=["*.wav"])["track_id"].tolist() == ["a/one.wav"]
    with pytest.raises(ConfigError, match="is not a folder"):
        list_folder(root=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="no file matches"):
        list_folder(root=folder, patterns=["*.aiff"])


def test_tag_a_collection_in_shards(
    checkpoints: dict,
    folder: Path,
    tmp_path: Path,
) -> None:
    """Shards partition the files; tags equal the tag command's; a broken file is recorded
    and the others are tagged; the merged table is a similarity index."""
    tracks = list_folder(root=folder)
    parts = [shard_tracks(tracks, shard=k, n_shards=2) for k in range(2)]
    assert sorted(pd.concat(parts)["track_id"]) == sorted(tracks["track_id"])
    tagger = load_tagger(checkpoints["fcn"])
    file_tagger = FileTagger(tagger, embed=True)
    paths, failures = [], []
    for k, part in enumerate(parts):
        table, failed = tag_files(tracks=part, file_tagger=file_tagger, top=1)
        paths.append(tmp_path / f"{k}.parquet")
        pq.write_table(table, paths[-1])
        failures.append(failed)
    failed = pd.concat(failures)
    assert list(failed["track_id"]) == ["b/broken.mp3"]
    assert "broken.mp3" in failed["error"].iloc[0]

    out = tmp_path / "tags.parquet"
    assert merge_shards(tables=paths, out=out, checkpoint=checkpoints["fcn"]) == 3
    table = pd.read_parquet(out)
    assert list(table["track_id"]) == ["a/one.wav", "a/two.FLAC", "b/three.ogg"]
    tags = checkpoints["tags"]
    assert list(table.columns) == [
        "track_id",
        "path",
        "duration_s",
        "n_windows",
        "top_tags",
        *tags,
        "embedding",
    ]
    direct = file_tagger.tag(folder / "a" / "one.wav")
    np.testing.assert_allclose(table.loc[0, tags].to_numpy(float), direct.song_probs, rtol=1e-5)
    assert list(table.loc[0, "top_tags"]) == [direct.top(1)[0][0]]
    np.testing.assert_allclose(table.loc[0, "embedding"], direct.embedding, rtol=1e-5)
    index = load_index(out)
    found = index.search(index.to_space(direct.embedding[None]), k=1)[0]
    assert found["track_id"][0] == "a/one.wav"

    with pytest.raises(ConfigError, match="shard 2 is not in 0..1"):
        shard_tracks(tracks, shard=2, n_shards=2)


def test_a_shard_of_only_bad_files(checkpoints: dict, tmp_path: Path) -> None:
    """No file tagged: an empty table with every column, and every failure recorded."""
    bad = tmp_path / "bad.wav"
    bad.touch()
    tracks = pd.DataFrame({"track_id": ["bad"], "path": [str(bad)]})
    file_tagger = FileTagger(load_tagger(checkpoints["fcn"]), embed=True)
    table, failed = tag_files(tracks=tracks, file_tagger=file_tagger, top=3)
    assert table.num_rows == 0 and "embedding" in table.column_names
    assert list(failed["track_id"]) == ["bad"] and "empty" in failed["error"][0]


# --------------------------------------------------------------------------------------------
# pipeline similar
# --------------------------------------------------------------------------------------------


def test_similar_command(
    checkpoints: dict,
    folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    tracks = list_folder(root=folder, patterns=["*.wav", "*.flac", "*.ogg"])
    file_tagger = FileTagger(load_tagger(checkpoints["fcn"]), embed=True)
    table, _ = tag_files(tracks=tracks, file_tagger=file_tagger, top=1)
    shard = tmp_path / "0.parquet"
    pq.write_table(table, shard)
    index = tmp_path / "tags.parquet"
    merge_shards(tables=[shard], out=index, checkpoint=checkpoints["fcn"])

    query = str(folder / "b" / "three.ogg")
    missing = str(tmp_path / "missing.wav")
    code = main(["similar", query, missing, "--index", str(index), "--k", "2", "--json"])
    assert code == EXIT_FAILED_FILES
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["ok"] for r in records] == [True, False]
    neighbours = records[0]["neighbours"]
    assert [n["rank"] for n in neighbours] == [1, 2]
    assert neighbours[0]["track_id"] == "b/three.ogg"
    assert neighbours[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert len(neighbours[0]["tags"]) == 1  # a collection's index: its predicted top tags
    assert err.count("\n") == 1 and "missing.wav" in err and "Traceback" not in err

    assert main(["similar", query, "--index", str(index), "-k", "5"]) == EXIT_OK
    out, _ = capsys.readouterr()
    assert "3 nearest tracks" in out and "b/three.ogg" in out

    assert main(["similar", query, "--index", str(tmp_path / "nope.parquet")]) == EXIT_USAGE
    _, err = capsys.readouterr()
    assert "does not exist" in err
    other = tmp_path / "other.pt"
    assert main(["similar", query, "--index", str(index), "-c", str(other)]) == EXIT_USAGE


def test_similar_is_a_subprocess_without_traceback(tmp_path: Path) -> None:
    """A real process: usage error (k=0) and a missing index exit 2 with one line."""
    base = [sys.executable, "-m", "pipeline", "similar", "x.wav"]
    out = subprocess.run(
        [*base, "--index", str(tmp_path / "i.parquet")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == EXIT_USAGE
    assert (
        out.stderr.strip().startswith("pipeline similar: error:") and "Traceback" not in out.stderr
    )
    out = subprocess.run(
        [*base, "--index", "i.parquet", "-k", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == EXIT_USAGE and "must be >= 1" in out.stderr


def test_retrieval_table(checkpoints: dict, tmp_path: Path) -> None:
    """Rows of every model's spaces, best MAP first; one chance row per dataset."""
    from pipeline.io.files import write_json
    from pipeline.retrieval.table import write_retrieval_table

    paths = []
    for kind in ("fcn", "lstm"):
        table = embed_tracks(checkpoint=checkpoints[kind], index=checkpoints["index"])
        rows = evaluate_retrieval(
            embeddings=table, projection=None, split="train", k=5, relevance_threshold=1.0
        )
        paths.append(tmp_path / f"{kind}.json")
        write_json([{"dataset": "synthetic", "model": kind, **r} for r in rows], paths[-1])
    out = {ext: tmp_path / f"retrieval.{ext}" for ext in ("csv", "md", "html")}
    shown = write_retrieval_table(
        metrics=paths,
        out_csv=out["csv"],
        out_md=out["md"],
        out_html=out["html"],
        split="train",
        k=5,
        relevance_threshold=1.0,
    )
    assert list(shown.columns[:10]) == [
        "dataset",
        "model",
        "space",
        "dim",
        "map@5",
        "recall@5",
        "mrr",
        "ndcg@5",
        "n_queries",
        "n_tracks",
    ]
    assert list(shown["space"]).count("random") == 1
    assert shown["map@5"].is_monotonic_decreasing
    assert shown.loc[shown["space"] == "random", "model"].item() == "(any)"
    assert pd.read_csv(out["csv"]).shape == shown.shape
    assert ">= 1.0" in out["md"].read_text()
