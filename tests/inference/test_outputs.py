"""Embedding files of tagged files (``--embeddings``): NPZ and Parquet, track and window rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import ConfigError, PipelineError
from pipeline.inference.file_tagger import FileTagger
from pipeline.inference.loading import load_tagger
from pipeline.inference.outputs import EMBEDDING_WRITERS, write_embeddings
from pipeline.inference.streaming import TagResult


def _result(path: str, n_windows: int, *, dim: int = 3, offset: float = 0.0) -> TagResult:
    """A tagged file with known embeddings: window ``i``'s vector is ``offset + i`` repeated."""
    windows = offset + np.repeat(np.arange(n_windows, dtype=np.float32)[:, None], dim, axis=1)
    return TagResult(
        path=path,
        tags=["a", "b"],
        song_probs=np.array([0.5, 0.5], np.float32),
        window_probs=np.full((n_windows, 2), 0.5, np.float32),
        window_start_s=np.arange(n_windows) * 1.5,
        duration_s=1.5 * n_windows,
        source_sample_rate=16000,
        channels=1,
        embedding=windows.mean(axis=0),
        window_embeddings=windows,
    )


def test_embedding_files(checkpoints: dict, audio: dict[str, Path], tmp_path: Path) -> None:
    file_tagger = FileTagger(load_tagger(checkpoints["fcn"]), embed=True)
    results = [file_tagger.tag(audio["wav"]), file_tagger.tag(audio["short"])]
    result = results[0]

    dim = result.embedding.shape[0]
    write_embeddings(results, path=tmp_path / "e.npz")
    npz = np.load(tmp_path / "e.npz")
    assert npz["embedding"].shape == (2, dim) and list(npz["offsets"]) == [0, 6, 7]
    assert npz["window_embedding"].shape == (7, dim) and npz["window_start_s"].shape == (7,)
    assert list(npz["path"]) == [r.path for r in results]
    np.testing.assert_array_equal(npz["window_embedding"][:6], result.window_embeddings)

    write_embeddings(results, path=tmp_path / "e.parquet")
    frame = pq.read_table(tmp_path / "e.parquet").to_pandas()
    assert list(frame.columns) == ["path", "level", "window", "start_s", "embedding"]
    assert (frame["level"] == "track").sum() == 2 and (frame["level"] == "window").sum() == 7
    vectors = np.stack(frame["embedding"].to_numpy())
    assert vectors.shape == (9, dim)
    np.testing.assert_array_equal(vectors[0], result.embedding)
    with pytest.raises(ConfigError, match=r"'\.h5'"):
        write_embeddings(results, path=tmp_path / "e.h5")


def test_npz_holds_every_window_in_file_order(tmp_path: Path) -> None:
    results = [_result("one.wav", 2), _result("two.wav", 3, offset=10.0)]
    write_embeddings(results, path=tmp_path / "sub" / "e.npz")  # the folder is made
    npz = np.load(tmp_path / "sub" / "e.npz")
    assert list(npz["path"]) == ["one.wav", "two.wav"]
    assert list(npz["offsets"]) == [0, 2, 5]
    np.testing.assert_array_equal(npz["window_embedding"][:, 0], [0, 1, 10, 11, 12])
    np.testing.assert_array_equal(npz["embedding"], [[0.5] * 3, [11.0] * 3])
    np.testing.assert_array_equal(npz["window_start_s"], [0.0, 1.5, 0.0, 1.5, 3.0])
    assert npz["embedding"].dtype == npz["window_embedding"].dtype == np.float32


def test_upper_case_suffix_writes_the_named_file(tmp_path: Path) -> None:
    """The suffix is matched in any case, so the file must be where the user said."""
    write_embeddings([_result("one.wav", 2)], path=tmp_path / "e.NPZ")
    assert [p.name for p in tmp_path.iterdir()] == ["e.NPZ"]


def test_parquet_has_a_track_row_then_its_window_rows(tmp_path: Path) -> None:
    results = [_result("one.wav", 2), _result("two.wav", 1, offset=10.0)]
    write_embeddings(results, path=tmp_path / "e.parquet")
    table = pq.read_table(tmp_path / "e.parquet")
    kind = table.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(kind) and kind.list_size == 3
    assert kind.value_type == pa.float32()
    frame = table.to_pandas()
    assert list(frame["path"]) == ["one.wav"] * 3 + ["two.wav"] * 2
    assert list(frame["level"]) == ["track", "window", "window", "track", "window"]
    assert frame["window"].isna().tolist() == [True, False, False, True, False]
    assert frame["window"].dropna().tolist() == [0, 1, 0]
    assert frame["start_s"].dropna().tolist() == [0.0, 1.5, 0.0]
    vectors = np.stack(frame["embedding"].to_numpy())
    np.testing.assert_array_equal(vectors[:, 0], [0.5, 0.0, 1.0, 10.0, 10.0])


def test_missing_embeddings_and_empty_results_are_errors(tmp_path: Path) -> None:
    assert sorted(EMBEDDING_WRITERS) == [".npz", ".parquet"]
    plain = _result("plain.wav", 2)
    plain.embedding = None
    with pytest.raises(PipelineError, match="plain.wav"):
        write_embeddings([_result("ok.wav", 1), plain], path=tmp_path / "e.npz")
    with pytest.raises(PipelineError, match="no file was tagged"):
        write_embeddings([], path=tmp_path / "e.parquet")
    with pytest.raises(ConfigError, match=r"'\.csv' is not one of \['\.npz', '\.parquet'\]"):
        write_embeddings([_result("ok.wav", 1)], path=tmp_path / "e.csv")
    assert not list(tmp_path.iterdir())
