"""The ``pipeline tag`` and ``pipeline similar`` commands: outputs, exit codes and one-line
messages for bad input.

Exit codes and stderr are checked on real subprocesses (``python -m pipeline`` and the
installed ``pipeline`` script); the rest runs :func:`pipeline.cli.main` in-process, which is
faster. Checkpoints and audio are the ``checkpoints`` and ``audio`` fixtures of
``tests/conftest.py``; ``pipeline similar`` searches an index of a music folder
(:func:`tests.helpers.audio.write_music_folder`) tagged with the ``fcn`` checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.cli import EXIT_FAILED_FILES, EXIT_OK, EXIT_USAGE, main
from pipeline.collection import list_folder, merge_shards, tag_files
from pipeline.inference.file_tagger import FileTagger
from pipeline.inference.loading import load_tagger
from tests.helpers.audio import write_music_folder
from tests.helpers.images import PNG_SIGNATURE

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}


def _run(*args: str, executable: list[str] | None = None) -> subprocess.CompletedProcess:
    command = executable or [sys.executable, "-m", "pipeline"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=ENV, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    text = folder / "notes.mp3"
    text.write_text("not audio at all\n" * 50)
    empty = folder / "empty.wav"
    empty.touch()
    return {"missing": folder / "missing.flac", "text": text, "empty": empty}


def test_tag_command_end_to_end(
    checkpoints: dict,
    audio: dict[str, Path],
    bad_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    """Good and bad files in one call: the good ones are tagged and written, each bad one
    is one line on stderr, the exit status is 1, and there is no traceback."""
    files = [audio["wav"], bad_files["missing"], bad_files["text"], audio["short"]]
    files.append(bad_files["empty"])
    out = _run(
        "tag",
        *map(str, files),
        "--checkpoint",
        str(checkpoints["fcn"]),
        "--json",
        "--top",
        "1",
        "--taggram",
        str(tmp_path / "taggrams"),
        "--embeddings",
        str(tmp_path / "emb" / "embeddings.npz"),
    )
    assert out.returncode == EXIT_FAILED_FILES, out.stderr
    assert "Traceback" not in out.stderr
    errors = out.stderr.splitlines()  # one line per bad file (mpg123's notes are not echoed)
    assert len(errors) == 3, out.stderr
    for line, (path, why) in zip(
        errors,
        [
            (bad_files["missing"], "file not found"),
            (bad_files["text"], "not a readable audio file"),
            (bad_files["empty"], "empty file"),
        ],
        strict=True,
    ):
        assert line.startswith("pipeline tag: error: ") and str(path) in line and why in line

    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(f) for f in files]
    assert [r["ok"] for r in records] == [True, False, False, True, False]
    keys = {"path", "ok", "error", "warnings", "duration_s", "n_windows", "sample_rate"}
    keys |= {"channels", "tags", "probabilities"}
    for record in records:
        assert keys <= set(record)
        assert (record["error"] is None) == record["ok"]
    wav = records[0]
    assert wav["n_windows"] == 6 and wav["duration_s"] == pytest.approx(5.3)
    assert (wav["sample_rate"], wav["channels"]) == (44100, 2)
    assert len(wav["tags"]) == len(wav["probabilities"]) == 1
    assert wav["tags"][0] in checkpoints["tags"] and 0 <= wav["probabilities"][0] <= 1
    assert records[1]["tags"] == [] and "file not found" in records[1]["error"]

    table = pd.read_csv(wav["taggram"]["csv"])
    assert table[checkpoints["tags"]].shape == (6, len(checkpoints["tags"]))
    assert Path(wav["taggram"]["png"]).read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(p.name for p in (tmp_path / "taggrams").iterdir()) == [
        "short.csv",
        "short.png",
        "stereo.csv",
        "stereo.png",
    ]
    npz = np.load(tmp_path / "emb" / "embeddings.npz")
    assert list(npz["path"]) == [str(audio["wav"]), str(audio["short"])]
    assert list(npz["offsets"]) == [0, 6, 7] and npz["window_embedding"].shape[0] == 7


def test_bad_checkpoint_is_a_one_line_usage_error(
    audio: dict[str, Path],
    tmp_path: Path,
) -> None:
    """The installed ``pipeline`` script: a missing checkpoint exits 2 with one line."""
    script = Path(sys.executable).with_name("pipeline")
    command = [str(script)] if script.exists() else None
    missing = tmp_path / "nowhere" / "checkpoint.pt"
    out = _run("tag", str(audio["flac"]), "--checkpoint", str(missing), executable=command)
    assert out.returncode == EXIT_USAGE
    assert out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.splitlines() == [
        f"pipeline tag: error: checkpoint {str(missing)!r} does not exist"
    ]


def test_checkpoint_that_is_not_one(
    audio: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = tmp_path / "model.pt"
    fake.write_text("weights? no.")
    assert main(["tag", str(audio["flac"]), "--checkpoint", str(fake)]) == EXIT_USAGE
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(fake) in err[0] and "not a checkpoint" in err[0]
    real = Path(__file__)  # a directory of checkpoints is another usage error
    assert main(["tag", str(audio["flac"]), "-c", str(real.parent)]) == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err


def test_human_output_lists_top_tags_in_order(
    checkpoints: dict,
    audio: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = [str(audio["ogg"]), str(audio["mp3"])]
    assert main(["tag", *files, "--checkpoint", str(checkpoints["lstm"])]) == EXIT_OK
    out, err = capsys.readouterr()
    assert err == ""
    blocks = out.strip().split("\n\n")
    assert len(blocks) == 2
    for block, path, rate in zip(blocks, files, (22050, 44100), strict=True):
        lines = block.splitlines()
        assert lines[0].startswith(f"{path}: ") and lines[0].endswith(f"{rate} Hz mono")
        assert lines[1].split() == ["rank", "tag", "probability"]
        rows = [line.split() for line in lines[2:]]
        assert [int(r[0]) for r in rows] == [1, 2]
        assert sorted(r[1] for r in rows) == sorted(checkpoints["tags"])
        probs = [float(r[2]) for r in rows]
        assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)


def test_every_model_kind_tags_from_the_command_line(
    checkpoints: dict,
    audio: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for kind in ("bag_of_frames", "embedding_svm"):
        out_file = tmp_path / f"{kind}.parquet"
        args = ["tag", str(audio["wav"]), "-c", str(checkpoints[kind]), "--json"]
        assert main([*args, "--embeddings", str(out_file), "--top", "0"]) == EXIT_OK
        record = json.loads(capsys.readouterr().out)
        assert sorted(record["tags"]) == sorted(checkpoints["tags"])
        frame = pd.read_parquet(out_file)
        assert list(frame["level"]) == ["track"] + ["window"] * 6


def test_usage_errors(
    checkpoints: dict,
    audio: dict[str, Path],
    bad_files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["tag", str(audio["flac"]), "-c", str(checkpoints["fcn"])]
    assert main([*base, "--embeddings", str(tmp_path / "e.h5")]) == EXIT_USAGE
    assert "'.h5' is not one of ['.npz', '.parquet']" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main([*base, "--taggram", str(blocker / "sub")]) == EXIT_USAGE
    assert "--taggram: cannot create folder" in capsys.readouterr().err
    for bad in (["--top", "-1"], ["--max-duration", "0"], []):
        with pytest.raises(SystemExit) as info:
            main([*base, *bad] if bad else ["tag", str(audio["flac"])])  # no --checkpoint
        assert info.value.code == EXIT_USAGE
    capsys.readouterr()
    # every file failing is still "files failed", not a usage error
    only_bad = ["tag", str(bad_files["missing"]), str(bad_files["empty"]), "-c"]
    assert main([*only_bad, str(checkpoints["fcn"])]) == EXIT_FAILED_FILES
    assert len(capsys.readouterr().err.splitlines()) == 2


# --------------------------------------------------------------------------------------------
# pipeline similar
# --------------------------------------------------------------------------------------------


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
