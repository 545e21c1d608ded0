"""The score-folder adapter: renders good scores, records bad ones, validates the table."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from music21 import meter, note, stream

from pipeline.datasets.rendering.scores import render_score_folder
from pipeline.errors import ConfigError

SR = 16000


def _score(pitches: list[str]):
    part = stream.Part()
    part.append(meter.TimeSignature("4/4"))
    part.append([note.Note(p, quarterLength=1) for p in pitches])
    return stream.Score([part])


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "scores"
    (root / "abc").mkdir(parents=True)
    (root / "abc" / "waltz.abc").write_text("X:1\nT:w\nM:3/4\nL:1/4\nK:G\nG B d | g3 |]\n")
    _score(["A4", "C5"]).write("musicxml", fp=root / "song.musicxml")
    _score(["E4", "G4"]).write("midi", fp=root / "song.mid")
    (root / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06 this is not midi")
    (root / "notes.txt").write_text("not a score")
    return root


def _table(tmp_path: Path, rows: list[list[str]], *, sep: str = ",") -> Path:
    path = tmp_path / "tags.csv"
    path.write_text("\n".join(sep.join(r) for r in rows) + "\n")
    return path


def test_renders_good_scores_and_records_bad_ones(tmp_path: Path, folder: Path) -> None:
    table = _table(
        tmp_path,
        [
            ["path", "tags", "split", "artist"],
            ["abc/waltz.abc", "folk; waltz", "train", "trad"],
            ["song.musicxml", "pop", "test", "me"],
            ["song.mid", "pop;midi", "train", "me"],
            ["corrupt.mid", "broken", "train", "x"],
            ["missing.abc", "gone", "train", "x"],
            ["notes.txt", "text", "train", "x"],
        ],
    )
    out = tmp_path / "out"
    tracks = render_score_folder(
        root=folder, tags_table=table, out_dir=out, duration_s=1.5, tempo_qpm=120
    )
    rows = _read(tracks)
    # song.musicxml and song.mid would both be "song": they keep their suffixes
    assert [r["track_id"] for r in rows] == ["abc_waltz", "song_musicxml", "song_mid"]
    assert list(rows[0]) == ["track_id", "path", "tags", "artist", "split", "duration_s"]
    assert rows[0]["tags"] == "folk;waltz" and rows[0]["split"] == "train"
    assert rows[0]["artist"] == "trad"
    for row in rows:
        data, rate = sf.read(out / row["path"])
        assert rate == SR and data.shape == (int(1.5 * SR),)
        assert np.abs(data).max() > 0.5
        assert float(row["duration_s"]) == 1.5

    failed = {r["path"]: r for r in _read(out / "failed.csv")}
    assert set(failed) == {"corrupt.mid", "missing.abc", "notes.txt"}
    assert failed["corrupt.mid"]["stage"] == "parse"
    assert "corrupt.mid" in failed["corrupt.mid"]["error"]
    assert failed["missing.abc"]["stage"] == "read"
    assert failed["notes.txt"]["stage"] == "parse"


def test_track_ids_given_or_derived_and_tsv(tmp_path: Path, folder: Path) -> None:
    table = _table(
        tmp_path,
        [["track_id", "path", "tags"], ["w1", "abc/waltz.abc", "a|b"], ["", "song.mid", "c"]],
        sep="\t",
    )
    out = tmp_path / "out"
    render_score_folder(
        root=folder, tags_table=table, out_dir=out, sep="\t", tag_sep="|", duration_s=1.0
    )
    rows = _read(out / "tracks.csv")
    assert [(r["track_id"], r["tags"]) for r in rows] == [("w1", "a;b"), ("song", "c")]
    assert [p.name for p in sorted((out / "audio").iterdir())] == ["song.flac", "w1.flac"]
    assert list(rows[0]) == ["track_id", "path", "tags", "duration_s"]
    assert (out / "audio" / "w1.flac").is_file()
    assert _read(out / "failed.csv") == []


def test_parallel_render_matches_serial(tmp_path: Path, folder: Path) -> None:
    table = _table(
        tmp_path, [["path", "tags"], ["abc/waltz.abc", "a"], ["song.mid", "b"], ["bad.abc", "c"]]
    )
    serial = render_score_folder(root=folder, tags_table=table, out_dir=tmp_path / "s")
    parallel = render_score_folder(root=folder, tags_table=table, out_dir=tmp_path / "p", workers=2)
    assert serial.read_text() == parallel.read_text()
    a, _ = sf.read(tmp_path / "s" / "audio" / "abc_waltz.flac")
    b, _ = sf.read(tmp_path / "p" / "audio" / "abc_waltz.flac")
    np.testing.assert_array_equal(a, b)


def test_table_errors_name_the_file_and_column(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(ConfigError, match="nope.csv"):
        render_score_folder(root=folder, tags_table=tmp_path / "nope.csv", out_dir=tmp_path)
    no_tags = _table(tmp_path, [["path", "labels"], ["song.mid", "x"]])
    with pytest.raises(ConfigError, match=r"tags\.csv.*'tags'"):
        render_score_folder(root=folder, tags_table=no_tags, out_dir=tmp_path)
    no_path = _table(tmp_path, [["file", "tags"], ["song.mid", "x"]])
    with pytest.raises(ConfigError, match=r"'path'"):
        render_score_folder(root=folder, tags_table=no_path, out_dir=tmp_path)
    dup = _table(
        tmp_path, [["track_id", "path", "tags"], ["s", "song.mid", "x"], ["s", "a.abc", "y"]]
    )
    with pytest.raises(ConfigError, match="'s'"):
        render_score_folder(root=folder, tags_table=dup, out_dir=tmp_path)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"tag_sep": ";;"}, "tag_sep: ';;' must be exactly one character"),
        ({"sep": ";", "tag_sep": ";"}, "tag_sep: ';' is also the column separator (sep)"),
        ({"duration_s": float("inf")}, "duration_s: inf must be a finite number of seconds"),
    ],
)
def test_impossible_settings_are_refused(
    tmp_path: Path, folder: Path, options: dict, says: str
) -> None:
    tags = _table(tmp_path, [["path", "tags"], ["song.mid", "x"]])
    with pytest.raises(ConfigError) as err:
        render_score_folder(root=folder, tags_table=tags, out_dir=tmp_path / "out", **options)
    assert says in str(err.value)
