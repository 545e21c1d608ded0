"""Batch tagging of a collection: listing a folder, stable shards, a shard of files into the
collection table (bad files into the failure table), and merging the shards.

The tagger is a network with seeded random weights on the synthetic feature settings
(:func:`tests.helpers.checkpoints.random_network_checkpoint`); the audio is real encoded files.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.collection import (
    AUDIO_PATTERNS,
    FAILURE_COLUMNS,
    TABLE_KEYS,
    list_folder,
    merge_shards,
    shard_tracks,
    tag_files,
)
from pipeline.errors import ConfigError, PipelineError
from pipeline.inference.file_tagger import FileTagger
from pipeline.inference.loading import load_tagger
from pipeline.inference.network import NetworkTagger
from pipeline.io.checkpoint import save_checkpoint
from pipeline.io.progress import INTERVAL_ENV
from pipeline.retrieval.similarity import METADATA_KEY, load_index
from tests.helpers.audio import write_audio, write_music_folder
from tests.helpers.bad_inputs import BAD_AUDIO, call_with_deadline, write_bad_audio
from tests.helpers.checkpoints import random_network_checkpoint
from tests.helpers.config import SCHEMA
from tests.helpers.synthetic import TAGS


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Audio in sub-folders, upper-case suffixes, and files that are not audio."""
    root = tmp_path_factory.mktemp("collection")
    write_audio(root / "b" / "two.flac", duration_s=2.2, freq_hz=300.0)
    write_audio(root / "a.wav", duration_s=1.3, sample_rate=22050, channels=2)
    write_audio(root / "b" / "c" / "THREE.WAV", duration_s=0.5, seed=3)
    (root / "notes.txt").write_text("not audio")
    (root / "b" / "broken.mp3").write_text("not audio either\n" * 20)
    return root


@pytest.fixture(scope="module")
def file_tagger() -> FileTagger:
    return FileTagger(NetworkTagger(random_network_checkpoint()), embed=True)


def test_list_folder_finds_audio_recursively(folder: Path) -> None:
    tracks = list_folder(root=folder)
    assert list(tracks.columns) == ["track_id", "path", "path_os"]
    assert list(tracks["track_id"]) == ["a.wav", "b/broken.mp3", "b/c/THREE.WAV", "b/two.flac"]
    assert list(tracks["path"]) == [str(folder / t) for t in tracks["track_id"]]
    assert list(tracks["path_os"]) == [os.fsencode(p) for p in tracks["path"]]
    flac = list_folder(root=str(folder), patterns=["*.FLAC"])  # patterns in any case
    assert list(flac["track_id"]) == ["b/two.flac"]


def test_default_patterns_are_the_schema_default() -> None:
    schema = SCHEMA["$defs"]["collection"]["properties"]
    assert list(AUDIO_PATTERNS) == schema["patterns"]["default"]
    assert {"*.m4a", "*.wma", "*.aac"} <= set(AUDIO_PATTERNS)  # FFmpeg decodes them


def test_a_file_name_that_is_not_utf8_is_listed_sharded_and_tagged(
    file_tagger: FileTagger, tmp_path: Path
) -> None:
    """An old collection with Latin-1 names: the listing is valid Parquet (UTF-8 text plus
    the name's bytes), the file is opened by its real name and tagged, and its rows show the
    bad byte as an escape."""
    root = tmp_path / "music"
    plain = write_audio(root / "plain.flac", duration_s=1.3)
    latin = Path(os.fsdecode(os.fsencode(root) + b"/caf\xe9.flac"))
    os.rename(write_audio(tmp_path / "latin.flac", duration_s=2.2, freq_hz=300.0), latin)
    listing = tmp_path / "tracks.parquet"
    list_folder(root=root).to_parquet(listing, index=False)  # the list_collection rule
    tracks = shard_tracks(pd.read_parquet(listing), shard=0, n_shards=1)
    assert list(tracks["track_id"]) == ["caf\\udce9.flac", "plain.flac"]
    assert tracks["path_os"].iloc[0] == os.fsencode(latin)
    table, failures = tag_files(tracks=tracks, file_tagger=file_tagger, top=1)
    assert failures.empty
    frame = table.to_pandas()
    assert list(frame["path"]) == [f"{root}/caf\\udce9.flac", str(plain)]
    np.testing.assert_allclose(frame["duration_s"], [2.2, 1.3], atol=1e-3)
    want = file_tagger.tag(latin).song_probs
    np.testing.assert_allclose([frame[t].iloc[0] for t in TAGS], want, atol=1e-6)
    pq.write_table(table, tmp_path / "shard.parquet")  # what tag_collection_shard writes


def test_list_folder_errors(folder: Path) -> None:
    with pytest.raises(ConfigError, match="a.wav.*is not a folder"):
        list_folder(root=folder / "a.wav")
    with pytest.raises(ConfigError, match=r"no file matches \['\*\.opus'\]"):
        list_folder(root=folder, patterns=["*.opus"])


def test_shards_split_the_tracks_stably() -> None:
    tracks = pd.DataFrame(
        {
            "track_id": [f"t{i}" for i in range(60)],
            "path": [f"/m/{i}.wav" for i in range(60)],
            "extra": 0,
        }
    )
    shards = [shard_tracks(tracks, shard=k, n_shards=4) for k in range(4)]
    assert all(list(s.columns) == ["track_id", "path"] for s in shards)
    ids = [t for s in shards for t in s["track_id"]]
    assert sorted(ids) == sorted(tracks["track_id"]) and len(set(ids)) == 60  # a partition
    assert all(len(s) > 0 for s in shards)
    for s in shards:  # input order inside a shard
        assert list(s["track_id"]) == sorted(s["track_id"], key=lambda t: int(t[1:]))
    # a track's shard depends on its id only, not on the other tracks
    alone = shard_tracks(tracks.iloc[::-1].iloc[:7], shard=2, n_shards=4)
    assert set(alone["track_id"]) == set(shards[2]["track_id"]) & set(tracks["track_id"][-7:])


def test_shard_errors() -> None:
    tracks = pd.DataFrame({"track_id": ["a"], "path": ["/a.wav"]})
    with pytest.raises(ConfigError, match=r"shard 4 is not in 0\.\.3"):
        shard_tracks(tracks, shard=4, n_shards=4)
    with pytest.raises(PipelineError, match=r"lacks column\(s\) \['path'\]"):
        shard_tracks(tracks[["track_id"]], shard=0, n_shards=1)


def test_tag_files_writes_good_files_and_records_bad_ones(
    folder: Path, file_tagger: FileTagger
) -> None:
    tracks = list_folder(root=folder)
    table, failures = tag_files(tracks=tracks, file_tagger=file_tagger, top=1)
    assert table.column_names == [*TABLE_KEYS, *TAGS, "embedding"]
    frame = table.to_pandas()
    assert list(frame["track_id"]) == ["a.wav", "b/c/THREE.WAV", "b/two.flac"]
    assert list(failures.columns) == FAILURE_COLUMNS
    assert list(failures["track_id"]) == ["b/broken.mp3"]
    assert "not a readable audio file" in failures["error"].iloc[0]
    np.testing.assert_allclose(frame["duration_s"], [1.3, 0.5, 2.2], atol=1e-3)
    assert table.schema.field("n_windows").type == pa.int32()
    for row, track_id in zip(frame.itertuples(), frame["track_id"], strict=True):
        result = file_tagger.tag(folder / track_id)
        assert row.n_windows == result.n_windows
        assert list(row.top_tags) == [result.top(1)[0][0]]
        np.testing.assert_allclose([getattr(row, t) for t in TAGS], result.song_probs, atol=1e-6)
        np.testing.assert_allclose(row.embedding, result.embedding, atol=1e-6)
    assert table.schema.field("embedding").type.list_size == 32


def test_tag_files_logs_its_progress(
    folder: Path,
    file_tagger: FileTagger,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "1e-9")  # every file is due a line
    caplog.set_level(logging.INFO, logger="pipeline.collection")
    table, failures = tag_files(tracks=list_folder(root=folder), file_tagger=file_tagger, top=1)
    lines = [m for m in caplog.messages if m.startswith("tag: ")]
    assert [line.split(": ")[1].split(" (")[0] for line in lines] == [
        "1/4 files",
        "2/4 files",  # the broken file counts: it is done with
        "3/4 files",
        "4/4 files",
        "4/4 files",
    ]
    hours = sum(table.column("duration_s").to_pylist()) / 3600
    assert f"{hours:.2f} h of audio" in lines[-1] and lines[-1].endswith(", done")


def test_tag_files_without_embeddings_or_good_files(folder: Path, file_tagger: FileTagger) -> None:
    plain = FileTagger(file_tagger.tagger)
    tracks = list_folder(root=folder, patterns=["*.flac"])
    table, failures = tag_files(tracks=tracks, file_tagger=plain, top=0)
    assert "embedding" not in table.column_names and failures.empty
    assert sorted(table.column("top_tags").to_pylist()[0]) == sorted(TAGS)
    bad = pd.DataFrame({"track_id": ["x"], "path": [str(folder / "missing.wav")]})
    empty, failures = tag_files(tracks=bad, file_tagger=file_tagger, top=1)
    assert empty.num_rows == 0 and list(failures["track_id"]) == ["x"]
    assert empty.schema.field("embedding").type.list_size == 32  # the size without a file


def test_tag_names_must_not_clash_with_columns(folder: Path) -> None:
    tagger = NetworkTagger(random_network_checkpoint(tags=["path", "x"]))
    with pytest.raises(PipelineError, match=r"\['path'\] clash"):
        tag_files(tracks=list_folder(root=folder), file_tagger=FileTagger(tagger), top=1)


def test_merge_shards_sorts_and_describes_the_embedding_space(
    folder: Path, file_tagger: FileTagger, tmp_path: Path
) -> None:
    tracks = list_folder(root=folder)
    paths = []
    for k in (1, 0):
        part = tracks.iloc[k::2]
        table, _ = tag_files(tracks=part, file_tagger=file_tagger, top=1)
        paths.append(tmp_path / f"{k}.parquet")
        pq.write_table(table, paths[-1])
    checkpoint = tmp_path / "checkpoint.pt"
    save_checkpoint(random_network_checkpoint(), checkpoint)
    out = tmp_path / "out" / "tags.parquet"
    assert merge_shards(tables=paths, out=out, checkpoint=checkpoint) == 3
    merged = pq.read_table(out)
    assert merged.column("track_id").to_pylist() == ["a.wav", "b/c/THREE.WAV", "b/two.flac"]
    description = json.loads(merged.schema.metadata[METADATA_KEY])
    assert description == {
        "checkpoint": str(checkpoint.resolve()),
        "projection": None,
        "space": "tagger",
    }
    with pytest.raises(PipelineError, match="no shard table"):
        merge_shards(tables=[], out=out, checkpoint=checkpoint)


def test_merge_shards_without_embeddings(
    folder: Path, file_tagger: FileTagger, tmp_path: Path
) -> None:
    plain = FileTagger(file_tagger.tagger)
    table, _ = tag_files(
        tracks=list_folder(root=folder, patterns=["*.wav"]), file_tagger=plain, top=1
    )
    pq.write_table(table, tmp_path / "0.parquet")
    out = tmp_path / "sub" / "tags.parquet"
    assert merge_shards(tables=[tmp_path / "0.parquet"], out=out, checkpoint=tmp_path / "x.pt") == 2
    merged = pq.read_table(out)
    assert METADATA_KEY not in (merged.schema.metadata or {})
    assert merged.column("track_id").to_pylist() == ["a.wav", "b/c/THREE.WAV"]


# --------------------------------------------------------------------------------------------
# A trained tagger (fixture ``checkpoints`` of tests/conftest.py) on another music folder
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def music_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A music folder: real audio in sub-folders, a text file, and a broken 'mp3'
    (:func:`tests.helpers.audio.write_music_folder`)."""
    return write_music_folder(tmp_path_factory.mktemp("music"))


def test_list_folder(music_folder: Path, tmp_path: Path) -> None:
    folder = music_folder
    tracks = list_folder(root=folder)
    assert list(tracks["track_id"]) == ["a/one.wav", "a/two.FLAC", "b/broken.mp3", "b/three.ogg"]
    assert list_folder(root=folder, patterns=["*.wav"])["track_id"].tolist() == ["a/one.wav"]
    with pytest.raises(ConfigError, match="is not a folder"):
        list_folder(root=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="no file matches"):
        list_folder(root=folder, patterns=["*.aiff"])


def test_tag_a_collection_in_shards(
    checkpoints: dict,
    music_folder: Path,
    tmp_path: Path,
) -> None:
    """Shards partition the files; tags equal the tag command's; a broken file is recorded
    and the others are tagged; the merged table is a similarity index."""
    folder = music_folder
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


def test_hostile_files_become_failure_rows_and_never_block(
    file_tagger: FileTagger, tmp_path: Path
) -> None:
    """Every bad audio input of tests/helpers/bad_inputs.py in one shard: the refused ones are
    failure rows naming file and rule (a named pipe does not block the job), the recovered
    ones and the good file are tagged with finite values."""
    bad = write_bad_audio(tmp_path / "bad")
    good = write_audio(tmp_path / "good.wav", duration_s=1.5)
    ids = [*bad, "good"]
    tracks = pd.DataFrame({"track_id": ids, "path": [str(p) for p in [*bad.values(), good]]})
    table, failures = call_with_deadline(
        120, tag_files, tracks=tracks, file_tagger=file_tagger, top=2
    )
    refused = [k for k in bad if BAD_AUDIO[k].outcome == "error"]
    assert list(failures["track_id"]) == refused
    for row in failures.itertuples():
        assert str(bad[row.track_id]) in row.error and BAD_AUDIO[row.track_id].says in row.error
    frame = table.to_pandas()
    assert list(frame["track_id"]) == [k for k in ids if k not in refused]
    assert np.isfinite(frame[TAGS].to_numpy()).all()
    assert np.isfinite(np.stack(frame["embedding"])).all()


def test_list_folder_lists_links_and_pipes_so_they_fail_visibly(tmp_path: Path) -> None:
    """A broken link or a named pipe with an audio name is listed (and fails when tagged),
    never silently left out; a folder with an audio name is not listed."""
    folder = tmp_path / "music"
    write_audio(folder / "good.wav", duration_s=0.5)
    (folder / "gone.flac").symlink_to(folder / "nothing.flac")
    os.mkfifo(folder / "pipe.mp3")
    (folder / "album.mp3").mkdir()
    tracks = list_folder(root=folder)
    assert list(tracks["track_id"]) == ["gone.flac", "good.wav", "pipe.mp3"]
