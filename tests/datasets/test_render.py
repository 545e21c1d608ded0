"""Rendering scores to audio: known pitches, exact lengths, no hanging notes, audible meter."""

from __future__ import annotations

import numpy as np
import pytest
from music21 import meter, note, stream, tempo, tie

from pipeline.datasets.rendering.render import SoundFontRenderer, get_renderer, render_score
from pipeline.datasets.rendering.score_events import (
    NoteEvents,
    load_score,
    note_events,
    score_notes,
    score_to_events,
)
from pipeline.errors import ConfigError, PipelineError

SR = 16000


def _score(pitches: list[str], *, ql: float = 1.0, ts: str = "4/4", parts: int = 1):
    """A score of repeated notes, one part per entry of ``parts``."""
    score = stream.Score()
    for _ in range(parts):
        part = stream.Part()
        part.append(meter.TimeSignature(ts))
        for name in pitches:
            part.append(note.Note(name, quarterLength=ql))
        score.insert(0, part)
    return score


def _events(onsets, offsets, pitches, *, velocity=100, part=None) -> NoteEvents:
    n = len(onsets)
    return NoteEvents(
        onset_s=np.asarray(onsets, float),
        offset_s=np.asarray(offsets, float),
        pitch=np.asarray(pitches, np.int16),
        velocity=np.full(n, velocity, np.int16),
        part=np.zeros(n, np.int16) if part is None else np.asarray(part, np.int16),
        n_parts=1 if part is None else int(max(part)) + 1,
    )


def _peak_hz(y: np.ndarray, sr: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * sr / len(y))


@pytest.mark.parametrize("program", [0, 40, 73])
def test_a4_renders_near_440_hz(program: int) -> None:
    y = render_score(_score(["A4"], ql=4.0), duration_s=2.0, tempo_qpm=120, programs=program)
    assert y.shape == (2 * SR,) and y.dtype == np.float32
    assert abs(_peak_hz(y[: SR // 2 * 3]) - 440.0) < 6.0
    assert np.max(np.abs(y)) == pytest.approx(0.9, abs=1e-3)


@pytest.mark.parametrize(
    ("duration_s", "sample_rate"), [(1.0, 16000), (1.2345, 16000), (0.77, 22050)]
)
def test_output_length_is_exact(duration_s: float, sample_rate: int) -> None:
    y = render_score(_score(["C4", "E4"]), duration_s=duration_s, sample_rate=sample_rate)
    assert y.shape == (int(round(duration_s * sample_rate)),)


def test_resampled_synthesis_keeps_length_and_pitch() -> None:
    renderer = SoundFontRenderer(sample_rate=SR, synth_rate=44100)
    y = renderer.render(_events([0.0], [1.0], [69]), duration_s=1.5)
    assert y.shape == (int(1.5 * SR),)
    assert abs(_peak_hz(y[: SR // 2 * 1]) - 440.0) < 6.0


def test_silence_after_last_note_off() -> None:
    renderer = get_renderer(sample_rate=SR)
    y = renderer.render(_events([0.0], [0.5], [60]), duration_s=3.0, programs=19)  # organ
    assert np.max(np.abs(y[: SR // 2])) > 0.5
    assert np.max(np.abs(y[2 * SR :])) < 1e-3


def test_notes_shorter_than_a_sample_still_end() -> None:
    renderer = get_renderer(sample_rate=SR)
    tiny = _events([0.5, 0.5], [0.5, 0.50001], [60, 64])
    y = renderer.render(tiny, duration_s=3.0, programs=19, peak=None)
    assert np.max(np.abs(y[int(0.5 * SR) : int(0.6 * SR)])) > 0.0
    assert np.max(np.abs(y[int(1.5 * SR) :])) < 1e-4


def test_notes_cut_at_the_end_do_not_leak_into_the_next_render() -> None:
    renderer = get_renderer(sample_rate=SR)
    held = _events([0.0, 0.0], [10.0, 10.0], [48, 55])  # would sound past the end
    renderer.render(held, duration_s=1.0, programs=19)
    late = renderer.render(_events([0.8], [0.9], [72]), duration_s=1.0, programs=19, peak=None)
    assert np.max(np.abs(late[: int(0.7 * SR)])) == 0.0
    assert np.max(np.abs(late[int(0.8 * SR) :])) > 0.0


def test_silent_events_render_zeros() -> None:
    y = get_renderer(sample_rate=SR).render(_events([], [], []), duration_s=0.5)
    assert y.shape == (SR // 2,) and not np.any(y)


def test_downbeats_are_louder() -> None:
    notes = score_notes(_score(["A4"] * 8, ts="4/4"))
    np.testing.assert_allclose(notes.beat_strength, [1, 0.25, 0.5, 0.25] * 2)
    events = note_events(notes, duration_s=4.0, tempo_qpm=120)
    assert events.velocity[0] > events.velocity[2] > events.velocity[1]
    y = get_renderer(sample_rate=SR).render(events, duration_s=4.0, programs=19)
    beat = SR // 2
    rms = [float(np.sqrt(np.mean(y[i * beat : i * beat + beat // 2] ** 2))) for i in range(8)]
    assert min(rms[0], rms[4]) > 1.3 * max(rms[1], rms[3], rms[5], rms[7])


def test_triple_meter_accents_first_beat() -> None:
    notes = score_notes(_score(["C5"] * 6, ts="3/4"))
    assert notes.beat_strength[0] == 1.0 and notes.beat_strength[3] == 1.0
    assert notes.beat_strength[1] < 1.0 and notes.beat_strength[2] < 1.0


def test_tempo_places_notes_in_seconds() -> None:
    events = score_to_events(_score(["C4", "D4", "E4"]), duration_s=10.0, tempo_qpm=60)
    np.testing.assert_allclose(events.onset_s, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(events.offset_s, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(events.pitch, [60, 62, 64])


def test_metronome_marks_are_followed_when_no_tempo_is_given() -> None:
    score = _score(["C4"] * 4)
    score.parts[0].insert(0, tempo.MetronomeMark(number=60))
    score.parts[0].insert(2, tempo.MetronomeMark(number=120))
    events = score_to_events(score, duration_s=10.0)
    np.testing.assert_allclose(events.onset_s, [0.0, 1.0, 2.0, 2.5])


def test_duration_cuts_and_loop_fills() -> None:
    notes = score_notes(_score(["C4", "D4"]))  # 2 quarters = 1 s at 120 qpm
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
    score = stream.Score([part, _score(["C3"]).parts[0]])
    notes = score_notes(score)
    assert notes.n_parts == 2
    g = notes.pitch == 67
    assert g.sum() == 1 and notes.duration_ql[g][0] == 4.0
    assert set(notes.part.tolist()) == {0, 1}


def test_each_part_gets_its_program() -> None:
    events = _events([0.0, 0.0], [1.0, 1.0], [60, 64], part=[0, 1])
    renderer = get_renderer(sample_rate=SR)
    both = renderer.render(events, duration_s=1.0, programs=[0, 40])
    same = renderer.render(events, duration_s=1.0, programs=[0, 0])
    assert not np.allclose(both, same)
    with pytest.raises(ConfigError, match="programs"):
        renderer.render(events, duration_s=1.0, programs=[0])


def test_load_score_reads_abc_musicxml_and_midi(tmp_path) -> None:
    abc = tmp_path / "tune.abc"
    abc.write_text("X:1\nT:t\nM:3/4\nL:1/4\nK:C\nA B c | d e f |]\n")
    xml = _score(["A4", "B4"]).write("musicxml", fp=tmp_path / "s.musicxml")
    mid = _score(["A4", "B4"]).write("midi", fp=tmp_path / "s.mid")
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


def test_bad_settings_raise_config_error() -> None:
    notes = score_notes(_score(["C4"]))
    with pytest.raises(ConfigError, match="duration_s"):
        note_events(notes, duration_s=0.0)
    with pytest.raises(ConfigError, match="tempo_qpm"):
        note_events(notes, duration_s=1.0, tempo_qpm=-5)
    with pytest.raises(ConfigError, match="nope.sf2"):
        SoundFontRenderer(soundfont="nope.sf2")
