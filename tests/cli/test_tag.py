"""The ``pipeline tag`` command: outputs, exit codes and one-line messages for bad input.

Exit codes and stderr are checked on real subprocesses (``python -m pipeline``,
:func:`tests.helpers.cli.run_pipeline`); the rest runs :func:`pipeline.cli.main` in-process,
which is faster. Checkpoints and audio are the ``checkpoints`` and ``audio`` fixtures of
``tests/conftest.py``.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.cli import EXIT_FAILED_FILES, EXIT_OK, EXIT_USAGE, main
from pipeline.io.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers.checkpoints import random_network_checkpoint
from tests.helpers.cli import one_line_error, run_pipeline
from tests.helpers.images import PNG_SIGNATURE


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
    out = run_pipeline(
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
            (bad_files["missing"], "does not exist"),
            (bad_files["text"], "not a readable audio file"),
            (bad_files["empty"], "is empty"),
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
    assert records[1]["tags"] == [] and "does not exist" in records[1]["error"]

    table = pd.read_csv(wav["taggram"]["csv"])
    # the fcn scores 32-frame (0.512 s) chunks: two per 1.008 s window, one for the 0.26 s tail
    assert list(table.columns) == ["window", "chunk", "start_s", "end_s", *checkpoints["tags"]]
    assert table[checkpoints["tags"]].shape == (11, len(checkpoints["tags"]))
    assert table["window"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert table["end_s"].iloc[-1] == pytest.approx(5.3)
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
    assert "is a directory, not a checkpoint file" in capsys.readouterr().err


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
# Hostile input: checkpoints, output paths, control characters (real subprocesses)
# --------------------------------------------------------------------------------------------


class _Code:
    """An instance pickles a reference to code."""


def _bad_checkpoint(folder: Path, kind: str) -> Path:
    path = folder / f"{kind}.pt"
    if kind == "random":
        rng = np.random.default_rng(7)
        path.write_bytes(rng.integers(0, 256, size=3000, dtype=np.uint8).tobytes())
    elif kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.touch()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "code":
        torch.save({"model": _Code()}, path)
    elif kind == "tensor":
        torch.save(torch.zeros(4), path)
    elif kind == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, path)
    elif kind == "pickle":
        with path.open("wb") as f:
            pickle.dump(random_network_checkpoint(), f)
    return path


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("random", "is not a checkpoint (not a torch file)"),
        ("directory", "is a directory, not a checkpoint file"),
        ("empty", "is empty"),
        ("fifo", "is a named pipe (FIFO), not a checkpoint file"),
        ("code", "holds pickled code (tests.cli.test_tag._Code), which is not loaded"),
        ("tensor", "it holds a Tensor, not a dict with keys"),
        ("foreign", "lacks key(s) ['format_version', 'kind', 'tags', 'features', 'stats']"),
        ("pickle", "is not a checkpoint (not a torch file)"),
    ],
)
def test_bad_checkpoints_are_one_line_usage_errors(
    audio: dict[str, Path], tmp_path: Path, kind: str, why: str
) -> None:
    checkpoint = _bad_checkpoint(tmp_path, kind)
    out = run_pipeline("tag", str(audio["flac"]), "-c", str(checkpoint), "--json")
    assert out.returncode == EXIT_USAGE and out.stdout == ""
    line = one_line_error(out)
    assert str(checkpoint) in line and why in line, line
    assert "weights_only" not in line and len(line) < 300


def test_unwritable_outputs_are_found_before_tagging(
    checkpoints: dict, audio: dict[str, Path], tmp_path: Path
) -> None:
    """Each exits 2 with one line, and no file is tagged (nothing on stdout)."""
    file_in_the_way = tmp_path / "taggrams.txt"
    file_in_the_way.write_text("mine")
    fifo = tmp_path / "out.npz"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.parquet"
    folder.mkdir()
    cases = [
        (["--embeddings", "/proc/x.npz"], "--embeddings: cannot write in folder '/proc'"),
        (["--taggram", str(file_in_the_way)], "is a file, not a folder"),
        (["--taggram", str(file_in_the_way / "sub")], "--taggram: cannot create folder"),
        (["--embeddings", str(folder)], "is a directory"),
        (["--embeddings", str(fifo)], "is not a regular file"),
    ]
    for options, why in cases:
        out = run_pipeline("tag", str(audio["flac"]), "-c", str(checkpoints["fcn"]), *options)
        assert out.returncode == EXIT_USAGE, (options, out.stderr)
        assert out.stdout == "" and why in one_line_error(out), (options, out.stderr)
    assert file_in_the_way.read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any folder")
def test_a_folder_without_write_permission_is_a_usage_error(
    checkpoints: dict, audio: dict[str, Path], tmp_path: Path
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    out = run_pipeline(
        "tag", str(audio["flac"]), "-c", str(checkpoints["fcn"]), "--taggram", str(locked)
    )
    assert out.returncode == EXIT_USAGE
    assert "--taggram: cannot write in folder" in one_line_error(out)


def test_control_characters_are_escaped_in_printed_output(
    checkpoints: dict, audio: dict[str, Path], tmp_path: Path
) -> None:
    """A file name with a right-to-left override, an escape sequence and an undecodable
    byte is printed escaped in the table and the messages, and round-trips in the JSON."""
    evil = tmp_path / "song\u202egalf\x1b[2J.flac"
    shutil.copy(audio["flac"], evil)
    undecodable = tmp_path / os.fsdecode(b"bad\xff.flac")
    shutil.copy(audio["flac"], undecodable)
    missing = tmp_path / "gone\u202e\x07.wav"
    base = ["tag", str(evil), os.fsencode(undecodable), str(missing), "-c"]
    out = run_pipeline(*base, str(checkpoints["fcn"]))
    assert out.returncode == EXIT_FAILED_FILES
    for text in (out.stdout, out.stderr):
        assert "\u202e" not in text and "\x1b" not in text and "\x07" not in text
    assert "song\\u202egalf\\x1b[2J.flac: 3.4 s" in out.stdout
    # tagged or not (decoding such a name is io.audio's business), it is printed escaped
    assert "bad\\udcff.flac" in out.stdout + out.stderr
    errors = out.stderr.splitlines()
    assert "Traceback" not in out.stderr and 1 <= len(errors) <= 2, out.stderr
    assert "gone\\u202e\\x07.wav" in errors[-1] and errors[-1].startswith("pipeline tag: error:")

    out = run_pipeline(*base, str(checkpoints["fcn"]), "--json")
    assert out.returncode == EXIT_FAILED_FILES
    lines = out.stdout.splitlines()
    assert all(line.isascii() and line.isprintable() for line in lines)
    records = [json.loads(line) for line in lines]
    assert [r["path"] for r in records] == [str(evil), str(undecodable), str(missing)]
    assert records[0]["ok"] is True and records[2]["ok"] is False
    assert records[1]["ok"] is True  # a name that is not UTF-8 is opened by its bytes

    embeddings = tmp_path / "emb.parquet"  # Parquet holds UTF-8 only: the name escaped
    out = run_pipeline(*base, str(checkpoints["fcn"]), "--embeddings", str(embeddings))
    assert out.returncode == EXIT_FAILED_FILES and "Traceback" not in out.stderr
    paths = set(pq.read_table(embeddings, columns=["path"]).column("path").to_pylist())
    assert paths == {str(evil), str(tmp_path / "bad\\udcff.flac")}

    taggrams = tmp_path / "taggrams"  # the plot's title shows the name escaped
    out = run_pipeline(*base, str(checkpoints["fcn"]), "--taggram", str(taggrams))
    assert out.returncode == EXIT_FAILED_FILES and "Traceback" not in out.stderr
    assert len(list(taggrams.glob("*.png"))) == 2 and len(out.stderr.splitlines()) == 1


def _no_constant(name: str) -> None:
    raise AssertionError(f"invalid JSON: {name}")


def test_non_finite_probabilities_are_a_failed_file_not_nan(
    checkpoints: dict,
    audio: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A model that outputs NaN (NaN weights): the file fails with one line; the JSON stays
    valid."""
    checkpoint = load_checkpoint(checkpoints["fcn"])
    checkpoint["state_dict"] = {
        key: torch.full_like(value, float("nan")) if value.is_floating_point() else value
        for key, value in checkpoint["state_dict"].items()
    }
    broken = tmp_path / "nan.pt"
    save_checkpoint(checkpoint, broken)
    files = [str(audio["flac"])]
    code = main(["tag", *files, "-c", str(broken), "--json"])
    assert code == EXIT_FAILED_FILES
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1
    record = json.loads(out, parse_constant=_no_constant)  # NaN, Infinity: not JSON
    assert record["ok"] is False and "not finite" in record["error"]
    assert err.count("\n") == 1 and "not finite (NaN or infinity) in 4 of 4 windows" in err
