"""Rendering scores to audio: known pitches, exact lengths, no hanging notes, audible meter."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.datasets.rendering.render import SoundFontRenderer, get_renderer, render_score
from pipeline.datasets.rendering.score_events import NoteEvents, note_events, score_notes
from pipeline.errors import ConfigError
from tests.helpers.scores import simple_score

SR = 16000


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
    y = render_score(simple_score(["A4"], ql=4.0), duration_s=2.0, tempo_qpm=120, programs=program)
    assert y.shape == (2 * SR,) and y.dtype == np.float32
    assert abs(_peak_hz(y[: SR // 2 * 3]) - 440.0) < 6.0
    assert np.max(np.abs(y)) == pytest.approx(0.9, abs=1e-3)


@pytest.mark.parametrize(
    ("duration_s", "sample_rate"), [(1.0, 16000), (1.2345, 16000), (0.77, 22050)]
)
def test_output_length_is_exact(duration_s: float, sample_rate: int) -> None:
    y = render_score(simple_score(["C4", "E4"]), duration_s=duration_s, sample_rate=sample_rate)
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
    notes = score_notes(simple_score(["A4"] * 8, ts="4/4"))
    np.testing.assert_allclose(notes.beat_strength, [1, 0.25, 0.5, 0.25] * 2)
    events = note_events(notes, duration_s=4.0, tempo_qpm=120)
    assert events.velocity[0] > events.velocity[2] > events.velocity[1]
    y = get_renderer(sample_rate=SR).render(events, duration_s=4.0, programs=19)
    beat = SR // 2
    rms = [float(np.sqrt(np.mean(y[i * beat : i * beat + beat // 2] ** 2))) for i in range(8)]
    assert min(rms[0], rms[4]) > 1.3 * max(rms[1], rms[3], rms[5], rms[7])


def test_each_part_gets_its_program() -> None:
    events = _events([0.0, 0.0], [1.0, 1.0], [60, 64], part=[0, 1])
    renderer = get_renderer(sample_rate=SR)
    both = renderer.render(events, duration_s=1.0, programs=[0, 40])
    same = renderer.render(events, duration_s=1.0, programs=[0, 0])
    assert not np.allclose(both, same)
    with pytest.raises(ConfigError, match="programs"):
        renderer.render(events, duration_s=1.0, programs=[0])


def test_bad_settings_raise_config_error() -> None:
    notes = score_notes(simple_score(["C4"]))
    with pytest.raises(ConfigError, match="duration_s"):
        note_events(notes, duration_s=0.0)
    with pytest.raises(ConfigError, match="tempo_qpm"):
        note_events(notes, duration_s=1.0, tempo_qpm=-5)
    with pytest.raises(ConfigError, match="nope.sf2"):
        SoundFontRenderer(soundfont="nope.sf2")
