"""Scores to note events (:mod:`pipeline.datasets.rendering.score_events`): beat strengths of
the meter, tempo and metronome marks in seconds, cuts and loops, merged ties, and loading
ABC, MusicXML and MIDI files."""

from __future__ import annotations

import numpy as np
import pytest
from music21 import meter, note, stream, tempo, tie

from pipeline.datasets.rendering.score_events import (
    load_score,
    note_events,
    score_notes,
    score_to_events,
)
from pipeline.errors import PipelineError
from tests.helpers.scores import simple_score


def test_triple_meter_accents_first_beat() -> None:
    notes = score_notes(simple_score(["C5"] * 6, ts="3/4"))
    assert notes.beat_strength[0] == 1.0 and notes.beat_strength[3] == 1.0
    assert notes.beat_strength[1] < 1.0 and notes.beat_strength[2] < 1.0


def test_tempo_places_notes_in_seconds() -> None:
    events = score_to_events(simple_score(["C4", "D4", "E4"]), duration_s=10.0, tempo_qpm=60)
    np.testing.assert_allclose(events.onset_s, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(events.offset_s, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(events.pitch, [60, 62, 64])


def test_metronome_marks_are_followed_when_no_tempo_is_given() -> None:
    score = simple_score(["C4"] * 4)
    score.parts[0].insert(0, tempo.MetronomeMark(number=60))
    score.parts[0].insert(2, tempo.MetronomeMark(number=120))
    events = score_to_events(score, duration_s=10.0)
    np.testing.assert_allclose(events.onset_s, [0.0, 1.0, 2.0, 2.5])


def test_duration_cuts_and_loop_fills() -> None:
    notes = score_notes(simple_score(["C4", "D4"]))  # 2 quarters = 1 s at 120 qpm
    cut = note_events(notes, duration_s=0.75, tempo_qpm=120)
    np.testing.assert_allclose(cut.offset_s, [0.5, 0.75])
    looped = note_events(notes, duration_s=3.0, tempo_qpm=120, loop=True)
    np.testing.assert_allclose(looped.onset_s, np.arange(6) * 0.5)
    assert looped.offset_s.max() <= 3.0


def test_ties_are_merged_and_parts_kept() -> None:
    part = stream.Part()
    first, second = note.Note("G4", quarterLength=2), note.Note("G4", quarterLength=2)
    first.tie, second.tie = tie.Tie("start"), tie.Tie("stop")
    part.append([meter.TimeSignature("4/4"), first, second, note.Note("A4")])
    score = stream.Score([part, simple_score(["C3"]).parts[0]])
    notes = score_notes(score)
    assert notes.n_parts == 2
    g = notes.pitch == 67
    assert g.sum() == 1 and notes.duration_ql[g][0] == 4.0
    assert set(notes.part.tolist()) == {0, 1}


def test_load_score_reads_abc_musicxml_and_midi(tmp_path) -> None:
    abc = tmp_path / "tune.abc"
    abc.write_text("X:1\nT:t\nM:3/4\nL:1/4\nK:C\nA B c | d e f |]\n")
    xml = simple_score(["A4", "B4"]).write("musicxml", fp=tmp_path / "s.musicxml")
    mid = simple_score(["A4", "B4"]).write("midi", fp=tmp_path / "s.mid")
    assert score_notes(load_score(abc)).pitch.tolist() == [69, 71, 72, 74, 76, 77]
    for path in (xml, mid):
        assert score_notes(load_score(path)).pitch.tolist() == [69, 71]


def test_load_score_errors_quote_the_path(tmp_path) -> None:
    with pytest.raises(PipelineError, match="missing.mid"):
        load_score(tmp_path / "missing.mid")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(PipelineError, match="x.txt"):
        load_score(tmp_path / "x.txt")
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd garbage")
    with pytest.raises(PipelineError, match="bad.mid"):
        load_score(bad)
