"""Every audio file checked before any work (:mod:`pipeline.datasets.file_check`): found,
missing, unreadable; stop when all or too many are missing, failure rows otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.datasets import file_check
from pipeline.datasets.file_check import (
    FAILURE_COLUMNS,
    FOUND,
    MISSING,
    UNREADABLE,
    apply_file_check,
    check_audio_files,
    stat_paths,
)
from pipeline.errors import ConfigError


def _records(paths: list[Path | str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"track_id": [f"t{i}" for i in range(len(paths))], "path": [str(p) for p in paths]}
    )


def _files(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"{i:03d}.mp3"
        path.write_bytes(b"x")
        out.append(path)
    return out


def test_stat_paths_classifies_each_kind(tmp_path: Path) -> None:
    good = _files(tmp_path, 1)[0]
    empty = tmp_path / "empty.mp3"
    empty.touch()
    folder = tmp_path / "folder.mp3"
    folder.mkdir()
    broken = tmp_path / "broken.mp3"
    broken.symlink_to(tmp_path / "nowhere.mp3")
    under_file = good / "x.mp3"  # a path through a file: NotADirectoryError
    fifo = tmp_path / "pipe.mp3"
    os.mkfifo(fifo)
    paths = [good, tmp_path / "none.mp3", empty, folder, broken, under_file, fifo, "a\x00b"]
    codes = stat_paths([str(p) for p in paths])
    assert codes.tolist() == [
        FOUND,
        MISSING,
        UNREADABLE,
        UNREADABLE,
        MISSING,
        MISSING,
        UNREADABLE,
        UNREADABLE,
    ]
    assert stat_paths([]).shape == (0,)


def test_stat_paths_in_chunks_keeps_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_check, "CHUNK", 7)  # many chunks on the thread pool
    files = _files(tmp_path, 30)
    paths = [str(p) if i % 3 else str(p) + ".gone" for i, p in enumerate(files)]
    codes = stat_paths(paths, threads=4)
    expected = np.array([MISSING if i % 3 == 0 else FOUND for i in range(30)], dtype=np.int8)
    np.testing.assert_array_equal(codes, expected)


def test_check_audio_files_explains_each_bad_path(tmp_path: Path) -> None:
    good = _files(tmp_path, 2)
    empty = tmp_path / "empty.mp3"
    empty.touch()
    check = check_audio_files(
        track_ids=["a", "b", "c", "d"],
        paths=[str(good[0]), str(tmp_path / "none.mp3"), str(empty), str(good[1])],
    )
    assert (check.n_checked, check.n_found, check.n_bad) == (4, 2, 2)
    assert check.missing[0][:2] == ("b", str(tmp_path / "none.mp3"))
    assert "does not exist" in check.missing[0][2]
    assert check.unreadable[0][0] == "c" and "is empty" in check.unreadable[0][2]
    failures = check.failures()
    assert list(failures.columns) == FAILURE_COLUMNS
    assert failures["stage"].tolist() == ["check", "check"]
    summary = check.summary()
    assert summary["found"] == 2 and summary["missing"] == 1 and summary["unreadable"] == 1
    assert summary["missing_examples"] == [str(tmp_path / "none.mp3")]


def test_all_missing_stops_with_one_line_naming_dataset_paths_and_cause(tmp_path: Path) -> None:
    records = _records([tmp_path / f"{i}.mp3" for i in range(20)])
    with pytest.raises(ConfigError) as error:
        apply_file_check(records, dataset="dataset 'jam'", hint="try audio_variant: low")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("dataset 'jam': none of the 20 audio files is usable")
    assert f"'{tmp_path / '0.mp3'}'" in message and f"'{tmp_path / '5.mp3'}'" not in message
    assert "wrong 'root'" in message and "try audio_variant: low" in message


def test_some_missing_warns_and_leaves_them_out(tmp_path: Path) -> None:
    files = _files(tmp_path, 19)
    records = _records([*files[:10], tmp_path / "gone.mp3", *files[10:]])
    kept, check, warnings = apply_file_check(records, dataset="dataset 'x'")
    assert len(kept) == 19 and "t10" not in set(kept["track_id"])
    assert kept.index.tolist() == list(range(19))
    assert check.n_bad == 1 and len(warnings) == 1
    assert "1 of 20 audio files are missing (5.00%)" in warnings[0]
    assert check.failures()["track_id"].tolist() == ["t10"]


def test_too_many_missing_stops_above_the_limit(tmp_path: Path) -> None:
    files = _files(tmp_path, 7)
    records = _records([*files, *(tmp_path / f"gone{i}.mp3" for i in range(3))])
    with pytest.raises(
        ConfigError, match=r"3 of 10 .* \(30.0%, more than max_missing_fraction 0.1\)"
    ):
        apply_file_check(records, dataset="dataset 'x'")
    kept, check, _ = apply_file_check(records, dataset="dataset 'x'", max_missing_fraction=0.3)
    assert len(kept) == 7 and len(check.missing) == 3
    with pytest.raises(ConfigError, match="max_missing_fraction 1.5"):
        apply_file_check(records, dataset="dataset 'x'", max_missing_fraction=1.5)


def test_nothing_to_report_when_all_found(tmp_path: Path) -> None:
    records = _records(_files(tmp_path, 3))
    kept, check, warnings = apply_file_check(records, dataset="d")
    assert len(kept) == 3 and check.n_found == 3 and warnings == []
    assert check.failures().empty
