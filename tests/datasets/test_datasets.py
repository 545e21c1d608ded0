"""Dataset adapters on tiny fixtures in each dataset's exact layout, with real encoded audio.

The MagnaTagATune and MTG-Jamendo fixtures are :mod:`tests.helpers.datasets`'s (the workflow's
preset tests write them too)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from pipeline.datasets import (
    ADAPTERS,
    RECORD_COLUMNS,
    gtzan,
    load_dataset_records,
    magnatagatune,
    mtg_jamendo,
    table,
)
from pipeline.errors import ConfigError
from tests.helpers.audio import tone, write_audio
from tests.helpers.bad_inputs import CONTROL_IDS, control_id_table, write_track_table
from tests.helpers.datasets import (
    CLIP_S,
    JAMENDO_ROWS,
    MTAT_CLIPS,
    MTAT_TAGS,
    jamendo_tsv,
    write_jamendo,
    write_mtat,
)


def _assert_contract(records: pd.DataFrame) -> None:
    assert tuple(records.columns) == RECORD_COLUMNS
    assert records["track_id"].is_unique
    assert all(isinstance(v, str) for v in records["track_id"])
    assert all(isinstance(v, str) for v in records["path"])
    assert all(isinstance(t, list) and all(isinstance(x, str) for x in t) for t in records["tags"])
    assert set(records["split"]) <= {"train", "valid", "test", None}
    assert all(v is None or isinstance(v, str) for v in records["artist"])
    assert records["duration_s"].dtype == "float64"


def _assert_decodes(path: str, written: Path) -> None:
    assert Path(path) == written
    assert sf.info(path).frames > 0


# --------------------------------------------------------------------------- MagnaTagATune


def test_magnatagatune_header_shape_tags_splits_artists(tmp_path: Path) -> None:
    write_mtat(tmp_path)
    header = (tmp_path / "annotations_final.csv").read_text().splitlines()[0].split("\t")
    assert len(header) == 190 and header[0] == '"clip_id"' and header[-1] == '"mp3_path"'

    records = magnatagatune.load_records(root=tmp_path, options={}).set_index("track_id")

    assert list(records.index) == list(MTAT_CLIPS)
    for clip_id, (mp3_path, tags) in MTAT_CLIPS.items():
        assert records.at[clip_id, "tags"] == [t for t in MTAT_TAGS if t in tags]
        _assert_decodes(records.at[clip_id, "path"], tmp_path / "mp3" / mp3_path)
    assert records["split"].to_dict() == {
        "2": "test",
        "6": "train",
        "10": "train",
        "11": "train",
        "12": "valid",
        "13": "test",
        "14": "test",
    }
    assert records.at["2", "artist"] == "american_bach_soloists"
    assert records.at["13", "artist"] == "strojovna_07"
    assert records["duration_s"].isna().all()


def test_magnatagatune_skips_rows_without_path_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clips = {**MTAT_CLIPS, "99": ("", ["rock"]), "100": ("", [])}
    write_mtat(tmp_path, clips=clips)
    with caplog.at_level(logging.WARNING, logger="pipeline.datasets.magnatagatune"):
        records = load_dataset_records(format="magnatagatune", root=tmp_path, options={})
    _assert_contract(records)
    assert set(records["track_id"]) == set(MTAT_CLIPS)
    assert "skipped 2 of 9 rows" in caplog.text


def test_magnatagatune_options_and_errors(tmp_path: Path) -> None:
    annotations = write_mtat(tmp_path / "meta")
    options = {"annotations": str(annotations), "audio_dir": str(tmp_path / "elsewhere")}
    records = magnatagatune.load_records(root=tmp_path / "root", options=options)
    assert records["path"].iloc[0] == str(tmp_path / "elsewhere" / MTAT_CLIPS["2"][0])

    with pytest.raises(ConfigError, match="annotations_final.csv' not found") as error:
        magnatagatune.load_records(root=tmp_path, options={})
    assert str(tmp_path / "annotations_final.csv") in str(error.value)

    text = annotations.read_text()
    annotations.write_text(text.replace('"mp3_path"', '"path"'))
    with pytest.raises(ConfigError, match="no column 'mp3_path'"):
        magnatagatune.load_records(root=tmp_path / "meta", options={})

    lines = text.splitlines()
    annotations.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(ConfigError, match="clip_id '2' more than once"):
        magnatagatune.load_records(root=tmp_path / "meta", options={})


def test_magnatagatune_split_of_folder() -> None:
    assert magnatagatune.split_of_folder(mp3_path="9/x-y.mp3") == "train"
    assert magnatagatune.split_of_folder(mp3_path="c/x-y.mp3") == "valid"
    assert magnatagatune.split_of_folder(mp3_path="e/x-y.mp3") == "test"
    assert magnatagatune.split_of_folder(mp3_path="g/x-y.mp3") is None
    assert magnatagatune.split_of_folder(mp3_path="x-y.mp3") is None


# --------------------------------------------------------------------------- MTG-Jamendo


def test_mtg_jamendo_tags_splits_paths(tmp_path: Path) -> None:
    write_jamendo(tmp_path)
    records = mtg_jamendo.load_records(root=tmp_path, options={}).set_index("track_id")

    assert records["split"].to_dict() == {
        "track_0000214": "train",
        "track_0000215": "train",
        "track_0001008": "valid",
        "track_0001009": "test",
        "track_0002000": None,
    }
    assert records.at["track_0000215", "tags"] == [
        "genre---rock",
        "instrument---guitar",
        "mood/theme---energetic",
    ]
    assert records.at["track_0000215", "artist"] == "artist_000014"
    assert records.at["track_0000215", "duration_s"] == pytest.approx(98.3)
    for row in JAMENDO_ROWS:
        _assert_decodes(records.at[row[0], "path"], tmp_path / "audio" / row[3])


def test_mtg_jamendo_options(tmp_path: Path) -> None:
    write_jamendo(tmp_path, stem="autotagging_genre")
    options = {"tsv": "autotagging_genre.tsv", "tag_prefixes": ["genre---", "mood/theme---"]}
    records = load_dataset_records(format="mtg_jamendo", root=tmp_path, options=options)
    _assert_contract(records)
    tags = dict(zip(records["track_id"], records["tags"], strict=True))
    assert tags["track_0000215"] == ["genre---rock", "mood/theme---energetic"]
    assert tags["track_0001009"] == []  # only an instrument tag: kept, without tags
    assert records["split"].tolist().count("train") == 2

    no_splits = {**options, "splits_dir": None, "audio_dir": "/mnt/jamendo"}
    records = mtg_jamendo.load_records(root=tmp_path, options=no_splits)
    assert records["split"].isna().all()
    assert records["path"].iloc[0] == str(Path("/mnt/jamendo/14/214.mp3"))


def test_mtg_jamendo_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="autotagging_top50tags.tsv' not found"):
        mtg_jamendo.load_records(root=tmp_path, options={"splits_dir": None})
    write_jamendo(tmp_path)

    missing = tmp_path / "splits" / "split-0" / "autotagging_top50tags-validation.tsv"
    missing.unlink()
    with pytest.raises(ConfigError) as error:
        mtg_jamendo.load_records(root=tmp_path, options={})
    assert str(missing) in str(error.value)
    with pytest.raises(ConfigError, match="splits_dir: null"):
        mtg_jamendo.load_records(root=tmp_path, options={"splits_dir": "nowhere"})
    with pytest.raises(ConfigError, match="tag_prefixes"):
        mtg_jamendo.load_records(root=tmp_path, options={"tag_prefixes": "genre---"})

    jamendo_tsv(tmp_path / "dup.tsv", [*JAMENDO_ROWS, JAMENDO_ROWS[2]])
    with pytest.raises(ConfigError, match="'track_0001008' twice"):
        mtg_jamendo.load_records(root=tmp_path, options={"tsv": "dup.tsv", "splits_dir": None})

    (tmp_path / "bad.tsv").write_text("TRACK_ID\tARTIST_ID\tPATH\tDURATION\tTAGS\n")
    with pytest.raises(ConfigError, match="no column 'ALBUM_ID'"):
        mtg_jamendo.load_records(root=tmp_path, options={"tsv": "bad.tsv", "splits_dir": None})


# --------------------------------------------------------------------------- GTZAN


def _write_gtzan(root: Path) -> dict[str, Path]:
    written = {}
    for number, (genre, index) in enumerate(
        [("blues", 0), ("blues", 1), ("classical", 0), ("rock", 99)]
    ):
        path = root / "genres" / genre / f"{genre}.{index:05d}.wav"
        written[path.stem] = write_audio(path, duration_s=CLIP_S, seed=number)
    corrupt = root / "genres" / "jazz" / "jazz.00054.wav"  # as in the real GTZAN: not audio
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00garbage")
    written[corrupt.stem] = corrupt
    (root / "genres" / "blues" / "._blues.00000.wav").write_bytes(b"\x00\x05\x16\x07")
    (root / "genres" / "blues" / "notes.txt").write_text("not audio")
    (root / "genres" / "input.mf").write_text("blues/blues.00000.wav\tblues\n")
    return written


def test_gtzan_genre_tags_no_split(tmp_path: Path) -> None:
    written = _write_gtzan(tmp_path)
    records = load_dataset_records(format="gtzan", root=tmp_path, options={})
    _assert_contract(records)

    assert records["track_id"].tolist() == [
        "blues.00000",
        "blues.00001",
        "classical.00000",
        "jazz.00054",
        "rock.00099",
    ]
    assert [t for [t] in records["tags"]] == ["blues", "blues", "classical", "jazz", "rock"]
    assert records["split"].isna().all() and records["artist"].isna().all()
    for track_id, path in zip(records["track_id"], records["path"], strict=True):
        assert Path(path) == written[track_id]
        if track_id != "jazz.00054":
            _assert_decodes(path, written[track_id])


def test_gtzan_options_and_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        gtzan.load_records(root=tmp_path, options={})
    assert str(tmp_path / "genres") in str(error.value)

    write_audio(tmp_path / "Data" / "genres_original" / "pop" / "pop.00003.au.flac", seed=1)
    write_audio(tmp_path / "Data" / "genres_original" / "pop" / "pop.00004.FLAC", seed=2)
    options = {"genres_dir": "Data/genres_original", "extensions": [".flac"]}
    records = gtzan.load_records(root=tmp_path, options=options)
    assert records["track_id"].tolist() == ["pop.00003.au", "pop.00004"]
    with pytest.raises(ConfigError, match=r"no audio file with extension \['.au', '.wav'\]"):
        gtzan.load_records(root=tmp_path, options={"genres_dir": "Data/genres_original"})

    _write_gtzan(tmp_path)
    # the original release's format; tests.helpers.audio has no .au, so write it with soundfile
    au = tmp_path / "genres" / "rock" / "rock.00099.au"
    sf.write(au, tone(duration_s=CLIP_S, sample_rate=22050), 22050, format="AU")
    with pytest.raises(ConfigError, match="'rock.00099' .* used twice"):
        gtzan.load_records(root=tmp_path, options={})


# --------------------------------------------------------------------------- generic table


def test_table_csv_mixed_formats_and_non_ascii(tmp_path: Path) -> None:
    outside = write_audio(tmp_path / "outside" / "x.mp3", duration_s=CLIP_S, seed=3)
    written = {
        "songs/intro": write_audio(tmp_path / "lib" / "songs" / "intro.flac", duration_s=CLIP_S),
        "songs/café déjà vu": write_audio(
            tmp_path / "lib" / "songs" / "café déjà vu.ogg", duration_s=CLIP_S, seed=1
        ),
        "b": write_audio(tmp_path / "lib" / "b.wav", duration_s=CLIP_S, seed=2),
        "custom-id": outside,
    }
    (tmp_path / "lib" / "tracks.csv").write_text(
        "path,tags,split,artist,duration_s,track_id,comment\n"
        "songs/intro.flac,piano; calm ;piano,train,Ada,31.5,,first\n"
        'songs/café déjà vu.ogg,,validation,,,,"a, quoted, note"\n'
        "b.wav,rock,,Björk,,,\n"
        f"{outside},rock;fast,test,,2,custom-id,\n",
        encoding="utf-8",
    )
    records = load_dataset_records(
        format="table", root=tmp_path, options={"table": "lib/tracks.csv"}
    )
    _assert_contract(records)
    records = records.set_index("track_id")

    assert list(records.index) == list(written)
    for track_id, path in written.items():
        _assert_decodes(records.at[track_id, "path"], path)
    assert records["tags"].tolist() == [["piano", "calm"], [], ["rock"], ["rock", "fast"]]
    assert records["split"].tolist() == ["train", "valid", None, "test"]
    assert records["artist"].tolist() == ["Ada", None, "Björk", None]
    assert records.at["songs/intro", "duration_s"] == 31.5
    assert math.isnan(records.at["b", "duration_s"])


def test_table_tsv_with_custom_columns(tmp_path: Path) -> None:
    audio = write_audio(tmp_path / "audio" / "Ünïcödé.mp3", duration_s=CLIP_S)
    (tmp_path / "meta.tsv").write_text("file\tlabels\naudio/Ünïcödé.mp3\tjazz|live\n")
    options = {
        "table": str(tmp_path / "meta.tsv"),
        "sep": "\\t",  # written with single quotes in YAML: a literal backslash-t
        "tag_sep": "|",
        "path_column": "file",
        "tags_column": "labels",
    }
    records = table.load_records(root=Path("/unused"), options=options)
    assert records["track_id"].tolist() == ["audio/Ünïcödé"]
    assert records["tags"].tolist() == [["jazz", "live"]]
    _assert_decodes(records["path"].iloc[0], audio)


def test_table_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'table' is required"):
        table.load_records(root=tmp_path, options={})
    with pytest.raises(ConfigError) as error:
        table.load_records(root=tmp_path, options={"table": "tracks.csv"})
    assert str(tmp_path / "tracks.csv") in str(error.value)

    csv_path = tmp_path / "tracks.csv"
    csv_path.write_text("file,tags\na.wav,rock\n")
    with pytest.raises(ConfigError, match="no column 'path'"):
        table.load_records(root=tmp_path, options={"table": "tracks.csv"})
    csv_path.write_text("path,tags\nsongs/a.wav,rock\nsongs/a.flac,pop\n")
    with pytest.raises(ConfigError, match="track id 'songs/a' appears twice"):
        table.load_records(root=tmp_path, options={"table": "tracks.csv"})
    csv_path.write_text("path,tags,split\na.wav,rock,training\n")
    with pytest.raises(ConfigError, match="split 'training' is not one of"):
        table.load_records(root=tmp_path, options={"table": "tracks.csv"})
    csv_path.write_text("path,tags\na.wav,rock,extra\nb.wav,pop\n")
    with pytest.raises(ConfigError, match="cannot read table"):
        table.load_records(root=tmp_path, options={"table": "tracks.csv"})
    with pytest.raises(ConfigError, match="option 'sep': ';;' must be exactly one character"):
        table.load_records(root=tmp_path, options={"table": "tracks.csv", "sep": ";;"})


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_format() -> None:
    assert set(ADAPTERS) == {"magnatagatune", "mtg_jamendo", "gtzan", "table"}
    assert ADAPTERS["gtzan"] is gtzan.load_records


def test_unknown_format_lists_allowed_formats(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_dataset_records(format="fma", root=tmp_path, options={})
    message = str(error.value)
    assert "'fma'" in message
    assert all(repr(name) in message for name in ADAPTERS)
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_dataset_records(format="gtzan", root=tmp_path, options=["genres"])  # type: ignore[arg-type]


def _fake_records(**changes: list) -> pd.DataFrame:
    columns = {
        "track_id": ["a", "b"],
        "path": ["/x/a.wav", "/x/b.wav"],
        "tags": [["rock"], []],
        "split": ["train", None],
        "artist": [None, "Ada"],
        "duration_s": [1.0, math.nan],
    }
    return pd.DataFrame({**columns, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"track_id": ["a", "a"]}, "track_id 'a' appears more than once"),
        ({"split": ["train", "validation"]}, "split of track 'b' is 'validation'"),
        ({"tags": ["rock", []]}, "tags of track 'a' are 'rock'"),
        ({"duration_s": [1.0, -2.0]}, "duration_s of track 'b'"),
        ({"path": ["/x/a.wav", None]}, "path of track 'b' is nan"),
    ],
)
def test_contract_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict, message: str
) -> None:
    monkeypatch.setitem(ADAPTERS, "fake", lambda *, root, options: _fake_records(**changes))
    with pytest.raises(ConfigError, match=message) as error:
        load_dataset_records(format="fake", root=tmp_path, options={})
    assert "'fake'" in str(error.value)


def test_contract_normalises_order_and_missing_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shuffled = _fake_records(split=["test", math.nan])[list(reversed(RECORD_COLUMNS))]
    monkeypatch.setitem(ADAPTERS, "fake", lambda *, root, options: shuffled)
    records = load_dataset_records(format="fake", root=tmp_path)
    _assert_contract(records)
    assert records["split"].tolist() == ["test", None]

    monkeypatch.setitem(ADAPTERS, "fake", lambda *, root, options: shuffled.drop(columns="artist"))
    with pytest.raises(ConfigError, match="expected exactly"):
        load_dataset_records(format="fake", root=tmp_path)
    monkeypatch.setitem(ADAPTERS, "fake", lambda *, root, options: shuffled.iloc[:0])
    with pytest.raises(ConfigError, match="has no tracks"):
        load_dataset_records(format="fake", root=tmp_path)


# ------------------------------------------------------------------------ bad settings and tables


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"tag_sep": ";;"}, "table option 'tag_sep': ';;' must be exactly one character"),
        ({"sep": ""}, "table option 'sep': '' must be exactly one character"),
        ({"tag_sep": ","}, "table option 'tag_sep': ',' is also the column separator"),
        ({"sep": "tab", "tag_sep": "\t"}, "table option 'tag_sep': '\\t' is also the column"),
    ],
)
def test_table_separators_one_character_and_distinct(
    tmp_path: Path, options: dict, says: str
) -> None:
    write_track_table(tmp_path, [{"path": "a.wav", "tags": "x;y"}])
    with pytest.raises(ConfigError) as err:
        table.load_records(root=tmp_path, options={"table": "tracks.csv", **options})
    assert says in str(err.value)


def test_table_tab_names(tmp_path: Path) -> None:
    write_track_table(tmp_path, [{"path": "a.wav", "tags": "x;y"}], sep="\t")
    for sep in ("\t", "\\t", "tab", "TAB"):
        records = table.load_records(root=tmp_path, options={"table": "tracks.csv", "sep": sep})
        assert records["tags"].tolist() == [["x", "y"]]


def test_adapter_errors_are_one_printable_line(tmp_path: Path) -> None:
    folder = tmp_path / "evil\u202e\x1b[2Jdir"
    with pytest.raises(ConfigError) as err:
        load_dataset_records(format="table", root=folder, options={"table": "t.csv"})
    message = str(err.value)
    assert message.isprintable() and "\\u202e\\x1b[2J" in message and "not found" in message


def test_control_characters_in_ids_pass_the_contract_as_they_are(tmp_path: Path) -> None:
    control_id_table(tmp_path)
    records = load_dataset_records(
        format="table", root=tmp_path, options={"table": "tracks.csv", "sep": "\t"}
    )
    assert records["track_id"].tolist() == ["ok", *CONTROL_IDS]  # escaped in the manifest
