"""The ``pipeline similar`` command: the nearest tracks of an index, exit codes and one-line
messages for bad input.

``pipeline similar`` searches an index of a music folder
(:func:`tests.helpers.audio.write_music_folder`) tagged with the ``fcn`` checkpoint of the
``checkpoints`` fixture (``tests/conftest.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import EXIT_FAILED_FILES, EXIT_OK, EXIT_USAGE, main
from pipeline.collection import list_folder, merge_shards, tag_files
from pipeline.inference.file_tagger import FileTagger
from pipeline.inference.loading import load_tagger
from tests.helpers.audio import write_music_folder
from tests.helpers.cli import one_line_error, run_pipeline


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A music folder: real audio in sub-folders, a text file, and a broken 'mp3'."""
    return write_music_folder(tmp_path_factory.mktemp("music"))


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


def test_similar_refuses_an_index_that_is_not_a_file(tmp_path: Path) -> None:
    fifo = tmp_path / "index.parquet"
    os.mkfifo(fifo)  # never opened: no hang
    for index, why in ((fifo, "is a named pipe (FIFO)"), (tmp_path, "is a directory")):
        out = run_pipeline("similar", "x.wav", "--index", str(index))
        assert out.returncode == EXIT_USAGE
        assert why in one_line_error(out, command="similar")
