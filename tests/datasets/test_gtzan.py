"""The GTZAN adapter (:mod:`pipeline.datasets.gtzan`) on a tiny fixture in the dataset's
exact layout (a folder per genre), with real encoded audio and a corrupt file."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from pipeline.datasets import gtzan, load_dataset_records
from pipeline.errors import ConfigError
from tests.helpers.audio import tone, write_audio
from tests.helpers.datasets import CLIP_S
from tests.helpers.records import assert_contract, assert_decodes


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
    assert_contract(records)

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
            assert_decodes(path, written[track_id])


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


def test_a_file_name_that_is_not_utf8_is_left_out_with_a_warning(tmp_path: Path) -> None:
    """One's own genre folders with a Latin-1 name: the records (and the manifest, UTF-8
    Parquet) could not hold it, so it is left out, named in a warning with the fix."""
    import os

    _write_gtzan(tmp_path)
    blues = os.fsencode(tmp_path / "genres" / "blues")
    (Path(os.fsdecode(blues + b"/caf\xe9.00002.wav"))).write_bytes(b"RIFF")
    records = load_dataset_records(format="gtzan", root=tmp_path, options={})
    assert_contract(records)
    assert len(records) == 5 and records["track_id"].str.startswith("caf").sum() == 0
    [warning] = records.attrs["warnings"]
    assert warning.startswith("GTZAN: 1 audio file(s) left out because their names are not")
    assert "caf\\udce9.00002.wav'" in warning and "convmv" in warning
