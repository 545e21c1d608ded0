"""The demo dataset: a tiny deterministic build, balanced draws, argument checks."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import soundfile as sf

from pipeline.datasets.rendering import demo
from pipeline.datasets.rendering.demo import INSTRUMENTS, build_demo_dataset
from pipeline.errors import ConfigError

_ALL_TAGS = set(INSTRUMENTS) | {
    "monophonic",
    "polyphonic",
    "duple",
    "triple",
    "compound",
    "major",
    "minor",
    "slow",
    "fast",
    "bach",
    "irish",
    "german",
    "chinese",
}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_tiny_build_is_deterministic_and_well_formed(tmp_path: Path) -> None:
    first = build_demo_dataset(out_dir=tmp_path / "a", n_clips=8, clip_s=5.0, seed=3)
    second = build_demo_dataset(out_dir=tmp_path / "b", n_clips=8, clip_s=5.0, seed=3, workers=2)
    assert first.read_text() == second.read_text()
    assert sorted(p.name for p in (tmp_path / "a" / "audio").iterdir()) == sorted(
        p.name for p in (tmp_path / "b" / "audio").iterdir()
    )

    rows = _read(first)
    assert len(rows) == 8
    assert list(rows[0]) == ["track_id", "path", "tags", "artist", "duration_s"]
    sources = [r["tags"].split(";")[0] for r in rows]
    assert sorted(sources) == sorted(["bach", "irish", "german", "chinese"] * 2)
    for row in rows:
        tags = row["tags"].split(";")
        assert set(tags) <= _ALL_TAGS
        assert len(set(tags) & set(INSTRUMENTS)) == 1
        assert len(set(tags) & {"slow", "fast"}) == 1
        assert ("polyphonic" in tags) == ("bach" in tags)
        assert row["artist"]
        data, rate = sf.read(tmp_path / "a" / row["path"])
        assert rate == 16000 and data.shape == (5 * 16000,)
        assert 0.8 < abs(data).max() <= 0.91
        assert float(row["duration_s"]) == 5.0
    assert "GPL" in (tmp_path / "a" / "LICENSE.md").read_text()
    assert len(_read(tmp_path / "a" / "provenance.csv")) == 8


def test_another_seed_draws_other_clips(tmp_path: Path) -> None:
    slots_a = demo._slots(n_clips=40, seed=0)
    slots_b = demo._slots(n_clips=40, seed=1)
    assert [s.instrument for s in slots_a] != [s.instrument for s in slots_b]
    counts = {name: sum(s.instrument == name for s in slots_a) for name in INSTRUMENTS}
    assert set(counts.values()) == {5}
    assert sum(s.tempo == "slow" for s in slots_a) == 20


def test_bad_arguments_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_clips"):
        build_demo_dataset(out_dir=tmp_path, n_clips=0)
    with pytest.raises(ConfigError, match="clip_s"):
        build_demo_dataset(out_dir=tmp_path, clip_s=-1.0)
