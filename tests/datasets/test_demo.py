"""The demo dataset: tag rules on known answers, and a tiny deterministic build."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pipeline.datasets.rendering import demo
from pipeline.datasets.rendering.demo import (
    INSTRUMENTS,
    build_demo_dataset,
    is_anhemitonic,
    meter_tag,
    mode_tag,
    split_abc_tunes,
)
from pipeline.datasets.rendering.render import ScoreNotes
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


@pytest.mark.parametrize(
    ("ts", "tag"),
    [
        ("2/4", "duple"),
        ("C", "duple"),
        ("C|", "duple"),
        (" 4/4", "duple"),
        ("3/4", "triple"),
        ("3/8", "triple"),
        ("6/8", "compound"),
        ("12/8", "compound"),
        ("5/4", None),
        ("4/2", None),
        ("none", None),
    ],
)
def test_meter_tag(ts: str, tag: str | None) -> None:
    assert meter_tag(ts) == tag


def test_mode_tag_needs_declared_key_estimate_and_final_note_to_agree() -> None:
    g_major = {"estimate_tonic": 7, "estimate_mode": "major", "estimate_sharps": 1}
    e_minor = {"estimate_tonic": 4, "estimate_mode": "minor", "estimate_sharps": 1}
    # declared mode (ABC K:G / K:Em)
    assert mode_tag(**g_major, final_pitch_class=7, declared_mode="major", declared_tonic=7) == (
        "major"
    )
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode="minor", declared_tonic=4) == (
        "minor"
    )
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode="major", declared_tonic=7) is None
    assert mode_tag(**g_major, final_pitch_class=2, declared_mode="major", declared_tonic=7) is None
    assert mode_tag(**g_major, final_pitch_class=7, declared_mode="modal") is None
    # tonic only (Essen K: field): the estimate's tonic must match
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode=None, declared_tonic=4) == (
        "minor"
    )
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode=None, declared_tonic=7) is None
    # signature only (MusicXML key without mode): the estimate's signature must match
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode=None, declared_sharps=1) == (
        "minor"
    )
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode=None, declared_sharps=0) is None
    assert (
        mode_tag(**e_minor, final_pitch_class=None, declared_mode=None, declared_sharps=1) is None
    )
    # nothing declared, or a pentatonic melody: no tag
    assert mode_tag(**e_minor, final_pitch_class=4, declared_mode=None) is None
    kwargs = {"final_pitch_class": 7, "declared_mode": "major", "declared_tonic": 7}
    assert mode_tag(**g_major, **kwargs, anhemitonic=True) is None


def test_pentatonic_melodies_are_anhemitonic() -> None:
    def notes(midis, durations=None):
        n = len(midis)
        return ScoreNotes(
            onset_ql=np.arange(n, dtype=float),
            duration_ql=np.ones(n) if durations is None else np.asarray(durations, float),
            pitch=np.asarray(midis, np.int16),
            beat_strength=np.ones(n, np.float32),
            part=np.zeros(n, np.int16),
            n_parts=1,
            length_ql=float(n),
        )

    assert is_anhemitonic(notes([60, 62, 64, 67, 69, 72]))  # C D E G A
    assert not is_anhemitonic(notes([60, 62, 64, 65, 67]))  # C D E F G
    # a short passing F (1 % of the time) does not make a pentatonic tune diatonic
    assert is_anhemitonic(notes([60, 62, 64, 65, 67], [30, 30, 20, 1, 19]))


def test_split_abc_tunes_reads_headers_and_meter_changes() -> None:
    text = (
        "% a comment\n"
        "X: 7\nT: One\nM: 3/4\nL: 1/8\nK:Gm\nGABc d2 | [M:2/4] d2 c2 |]\n\n"
        "X:8\nT: Two\nO: China, Shaanxi\nM: 6/8\nK: D\nM: 3/8\ndef |]\n"
        "X:9\nT: Three\nM: 2/4\nK: F\nFA c2 | f4 |]\n"
    )
    tunes = split_abc_tunes(text)
    assert [t.number for t in tunes] == [7, 8, 9]
    assert [t.index for t in tunes] == [1, 2, 3]
    assert tunes[0].fields["K"] == "Gm" and tunes[0].fields["M"] == "3/4"
    assert tunes[1].fields["O"] == "China, Shaanxi"
    assert [t.meter_changes for t in tunes] == [True, True, False]
    assert tunes[2].text.startswith("X:9") and "f4" in tunes[2].text


def test_abc_key_field() -> None:
    assert demo._abc_key("Gm") == (7, "minor", -2)
    assert demo._abc_key("D") == (2, "major", 2)
    assert demo._abc_key("F#m") == (6, "minor", 3)
    assert demo._abc_key("Dmix")[1] == "modal"


def test_a_three_four_tune_is_tagged_triple_and_major() -> None:
    abc = (
        "X:1\nT:Waltz\nM:3/4\nL:1/4\nK:C\n"
        "C E G | c G E | F A c | G3 | E G c | B d G | C E G | C3 |]\n"
    )
    tune = split_abc_tunes(abc)[0]
    cand = demo._abc_candidate(
        source="german",
        tune=tune,
        origin="test",
        track_id="german-test-0001",
        artist="essen-test",
        tonic_only=True,
    )
    analysis = demo._analyse(cand)
    assert not isinstance(analysis, str), analysis
    assert analysis.meter == "triple"
    assert analysis.mode == "major"
    assert analysis.n_parts == 1


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
