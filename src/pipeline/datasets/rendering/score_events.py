"""Symbolic music (music21 scores, MIDI, MusicXML, ABC) to note events in seconds.

Scores become note events in two steps: :func:`score_notes` reads the notes of a parsed
score in quarter-note time, with the metrical accent (music21 beat strength) of each note;
:func:`note_events` places them in seconds at a tempo, cut (and optionally looped) to a fixed
length, with a velocity that rises with beat strength so that the meter is audible.
:mod:`pipeline.datasets.rendering.render` synthesises the events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ConfigError, PipelineError

__all__ = [
    "DEFAULT_TEMPO_QPM",
    "SCORE_SUFFIXES",
    "ScoreNotes",
    "NoteEvents",
    "load_score",
    "score_notes",
    "note_events",
    "score_to_events",
]

#: Tempo used when neither the caller nor the score gives one, in quarter notes per minute.
DEFAULT_TEMPO_QPM = 120.0

#: Score file suffixes understood by :func:`load_score`, and the music21 format of each.
SCORE_SUFFIXES = {
    ".mid": "midi",
    ".midi": "midi",
    ".xml": "musicxml",
    ".musicxml": "musicxml",
    ".mxl": "musicxml",
    ".abc": "abc",
}

_MAX_NOTES = 2_000_000  # guards looping a tiny score into an absurd number of notes


@dataclass(frozen=True, kw_only=True)
class ScoreNotes:
    """The notes of a score in quarter-note time.

    Parameters
    ----------
    onset_ql, duration_ql : np.ndarray, shape (n_notes,), float64
        Start and length of each note in quarter notes from the start of the score.
    pitch : np.ndarray, shape (n_notes,), int16
        MIDI key number, 0-127.
    beat_strength : np.ndarray, shape (n_notes,), float32
        Metrical accent in [0, 1]: 1 on a downbeat, smaller on weaker beats.
    part : np.ndarray, shape (n_notes,), int16
        Index of the part (voice/instrument) each note belongs to.
    n_parts : int
        Number of parts of the score, including parts without notes.
    length_ql : float
        Length of the score in quarter notes (the period when it is looped).
    tempo_marks : tuple of (float, float)
        ``(offset_ql, quarter_notes_per_minute)`` of each metronome mark, by offset.
    """

    onset_ql: np.ndarray
    duration_ql: np.ndarray
    pitch: np.ndarray
    beat_strength: np.ndarray
    part: np.ndarray
    n_parts: int
    length_ql: float
    tempo_marks: tuple[tuple[float, float], ...] = ()

    @property
    def n_notes(self) -> int:
        """Number of notes."""
        return int(self.pitch.shape[0])

    def duration_s(self, *, tempo_qpm: float | None = None) -> float:
        """Length of the score in seconds at ``tempo_qpm`` (or its own tempo marks)."""
        return float(_ql_to_seconds(np.array([self.length_ql]), self, tempo_qpm)[0])


@dataclass(frozen=True, kw_only=True)
class NoteEvents:
    """Notes placed in time, ready to synthesise.

    Parameters
    ----------
    onset_s, offset_s : np.ndarray, shape (n_notes,), float64
        Note-on and note-off times in seconds; ``offset_s > onset_s`` for every note.
    pitch : np.ndarray, shape (n_notes,), int16
        MIDI key number, 0-127.
    velocity : np.ndarray, shape (n_notes,), int16
        MIDI velocity, 1-127.
    part : np.ndarray, shape (n_notes,), int16
        Part index; each part gets its own channel and program.
    n_parts : int
        Number of parts (at least ``part.max() + 1``).
    """

    onset_s: np.ndarray
    offset_s: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    part: np.ndarray
    n_parts: int

    @property
    def n_notes(self) -> int:
        """Number of notes."""
        return int(self.pitch.shape[0])


def load_score(path: str | Path) -> Any:
    """Parse a score file with music21.

    Parameters
    ----------
    path : str or Path
        A MIDI (``.mid``, ``.midi``), MusicXML (``.xml``, ``.musicxml``, ``.mxl``) or ABC
        (``.abc``) file. An ABC file holding several tunes yields its first tune.

    Returns
    -------
    music21.stream.Score

    Raises
    ------
    PipelineError
        When the file is missing, has an unknown suffix, cannot be parsed or holds no score.
    """
    from music21 import converter, stream

    path = Path(path)
    fmt = SCORE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise PipelineError(
            f"score '{path}': suffix {path.suffix!r} is not one of {sorted(SCORE_SUFFIXES)}"
        )
    if not path.is_file():
        raise PipelineError(f"score '{path}' does not exist")
    try:
        parsed = converter.parseFile(path, format=fmt, forceSource=True, storePickle=False)
    except Exception as exc:  # music21 raises many types for bad input
        raise PipelineError(f"cannot parse score '{path}': {type(exc).__name__}: {exc}") from exc
    if isinstance(parsed, stream.Opus):
        scores = list(parsed.scores)
        if not scores:
            raise PipelineError(f"score '{path}' holds no score")
        parsed = scores[0]
    if not isinstance(parsed, stream.Stream):
        raise PipelineError(f"score '{path}' parsed to {type(parsed).__name__}, not a stream")
    return parsed


def score_notes(score: Any, *, expand_repeats: bool = True) -> ScoreNotes:
    """Read the notes of a music21 score in quarter-note time, with their beat strength.

    Ties are merged, grace notes and unpitched (percussion) notes are dropped, chords give one
    note per pitch.

    Parameters
    ----------
    score : music21.stream.Stream
        A Score (one part per ``score.parts``) or any stream (read as one part).
    expand_repeats : bool
        Play repeats out (music21 ``expandRepeats``); a score whose repeats cannot be
        expanded is read as written.

    Returns
    -------
    ScoreNotes
    """
    from music21 import repeat, stream, tempo

    if isinstance(score, stream.Opus):
        scores = list(score.scores)
        if not scores:
            raise PipelineError("score: the Opus holds no score")
        score = scores[0]
    if expand_repeats and score.recurse().getElementsByClass(repeat.RepeatMark).first():
        try:
            score = score.expandRepeats()
        except Exception:  # unbalanced repeats are common: play as written
            pass
    parts = list(score.parts) if isinstance(score, stream.Score) else []
    if not parts:
        parts = [score]

    onsets: list[float] = []
    durations: list[float] = []
    pitches: list[int] = []
    strengths: list[float] = []
    part_ids: list[int] = []
    for index, part in enumerate(parts):
        for onset, dur, midi, strength in _part_notes(part):
            onsets.append(onset)
            durations.append(dur)
            pitches.append(midi)
            strengths.append(strength)
            part_ids.append(index)

    marks: dict[float, float] = {}
    for mark in score.recurse().getElementsByClass(tempo.MetronomeMark):
        qpm = mark.getQuarterBPM()
        if qpm is None or not qpm > 0:
            continue
        try:
            offset = float(mark.getOffsetInHierarchy(score))
        except Exception:  # noqa: BLE001 - a mark outside the hierarchy: ignore it
            continue
        marks.setdefault(offset, float(qpm))
    length = float(score.highestTime)
    if onsets:
        length = max(length, max(o + d for o, d in zip(onsets, durations, strict=True)))
    return ScoreNotes(
        onset_ql=np.asarray(onsets, dtype=np.float64),
        duration_ql=np.asarray(durations, dtype=np.float64),
        pitch=np.asarray(pitches, dtype=np.int16),
        beat_strength=np.asarray(strengths, dtype=np.float32),
        part=np.asarray(part_ids, dtype=np.int16),
        n_parts=len(parts),
        length_ql=length,
        tempo_marks=tuple(sorted(marks.items())),
    )


def _part_notes(part: Any) -> list[tuple[float, float, int, float]]:
    """``(onset_ql, duration_ql, midi, beat_strength)`` of every pitched note of one part.

    Tied notes are merged into one (by hand: music21's ``stripTies`` copies the whole part).
    """
    from music21 import chord, meter, note, stream

    current_ts = part.recurse().getElementsByClass(meter.TimeSignature).first()
    accents: dict[tuple[str, float], float] = {}

    def accent(ts: Any, position: float) -> float:
        if ts is None:
            return 0.5
        key = (ts.ratioString, position)
        if key not in accents:
            try:
                weight = ts.getAccentWeight(
                    position, forcePositionMatch=True, permitMeterModulus=True
                )
            except Exception:  # position outside the bar: weakest
                weight = 0.0
            accents[key] = float(weight)
        return accents[key]

    def pitched(element: Any) -> list[tuple[int, str | None]]:
        """``(midi, tie type)`` of each pitch of a note or chord; none for grace/percussion."""
        if element.duration.isGrace or element.duration.quarterLength <= 0:
            return []
        if isinstance(element, note.Note):
            return [(element.pitch.midi, element.tie.type if element.tie else None)]
        if isinstance(element, chord.Chord):
            out = []
            for p in element.pitches:
                tie = element.getTie(p)
                out.append((p.midi, tie.type if tie else None))
            return out
        return []  # unpitched percussion

    # (onset, element) for every note, in time order
    timed: list[tuple[float, float, Any]] = []
    measures = list(part.getElementsByClass(stream.Measure))
    if measures:
        for measure in measures:
            if measure.timeSignature is not None:
                current_ts = measure.timeSignature
            start = float(measure.getOffsetInHierarchy(part))
            padding = float(measure.paddingLeft or 0.0)
            for element in measure.recurse().notes:
                local = float(element.getOffsetInHierarchy(measure))
                timed.append((start + local, accent(current_ts, local + padding), element))
    else:
        flat = part.flatten()
        bar = float(current_ts.barDuration.quarterLength) if current_ts is not None else 4.0
        for element in flat.notes:
            onset = float(element.getOffsetInHierarchy(flat))
            timed.append((onset, accent(current_ts, onset % bar), element))
    timed.sort(key=lambda item: item[0])

    notes: list[list] = []  # [onset, duration, midi, strength]
    tied: dict[int, int] = {}  # midi -> index in notes of the note a tie continues
    for onset, strength, element in timed:
        dur = float(element.duration.quarterLength)
        for midi, tie in pitched(element):
            if not 0 <= midi <= 127:
                continue
            if tie in ("continue", "stop") and midi in tied:
                held = notes[tied[midi]]
                held[1] = max(held[1], onset + dur - held[0])
                if tie == "stop":
                    del tied[midi]
                continue
            notes.append([onset, dur, midi, strength])
            if tie == "start":
                tied[midi] = len(notes) - 1
            else:
                tied.pop(midi, None)
    return [(o, d, m, s) for o, d, m, s in notes]


def _ql_to_seconds(ql: np.ndarray, notes: ScoreNotes, tempo_qpm: float | None) -> np.ndarray:
    """Map quarter-note positions, shape (n,), to seconds with a fixed or piecewise tempo."""
    if tempo_qpm is not None:
        return ql * (60.0 / tempo_qpm)
    marks = list(notes.tempo_marks)
    if not marks or marks[0][0] > 0:
        first = marks[0][1] if marks else DEFAULT_TEMPO_QPM
        marks.insert(0, (0.0, first))
    starts = np.array([m[0] for m in marks])
    sec_per_ql = np.array([60.0 / m[1] for m in marks])
    # seconds at the start of each tempo segment
    seg_s = np.concatenate([[0.0], np.cumsum(np.diff(starts) * sec_per_ql[:-1])])
    k = np.clip(np.searchsorted(starts, ql, side="right") - 1, 0, len(starts) - 1)
    return seg_s[k] + (ql - starts[k]) * sec_per_ql[k]


def note_events(
    notes: ScoreNotes,
    *,
    duration_s: float,
    tempo_qpm: float | None = None,
    loop: bool = False,
    min_velocity: int = 40,
    max_velocity: int = 120,
) -> NoteEvents:
    """Place score notes in time: the first ``duration_s`` seconds at a tempo.

    Parameters
    ----------
    notes : ScoreNotes
        The notes, from :func:`score_notes`.
    duration_s : float
        Length kept, in seconds; notes starting later are dropped, notes still sounding are
        cut at ``duration_s``.
    tempo_qpm : float or None
        Tempo in quarter notes per minute; ``None`` follows the score's metronome marks
        (``DEFAULT_TEMPO_QPM`` where it has none).
    loop : bool
        Repeat the score end to end until ``duration_s`` is filled.
    min_velocity, max_velocity : int
        Velocity of the weakest (beat strength 0) and strongest (1, a downbeat) notes;
        velocity is linear in beat strength in between.

    Returns
    -------
    NoteEvents
    """
    if not duration_s > 0:
        raise ConfigError(f"duration_s: {duration_s!r} must be > 0")
    if tempo_qpm is not None and not tempo_qpm > 0:
        raise ConfigError(f"tempo_qpm: {tempo_qpm!r} must be > 0")
    if not 1 <= min_velocity <= max_velocity <= 127:
        raise ConfigError(
            f"velocity: min_velocity={min_velocity!r}, max_velocity={max_velocity!r} must "
            "satisfy 1 <= min_velocity <= max_velocity <= 127"
        )
    onset = _ql_to_seconds(notes.onset_ql, notes, tempo_qpm)
    offset = _ql_to_seconds(notes.onset_ql + notes.duration_ql, notes, tempo_qpm)
    strength = np.clip(np.nan_to_num(notes.beat_strength, nan=0.5), 0.0, 1.0)
    velocity = np.rint(min_velocity + (max_velocity - min_velocity) * strength).astype(np.int16)
    pitch, part = notes.pitch, notes.part

    period = notes.duration_s(tempo_qpm=tempo_qpm)
    if loop and notes.n_notes and period > 0 and period < duration_s:
        repeats = math.ceil(duration_s / period)
        if repeats * notes.n_notes > _MAX_NOTES:
            raise ConfigError(
                f"loop: a score of {period:.3f} s looped to {duration_s!r} s would need "
                f"{repeats * notes.n_notes} notes (at most {_MAX_NOTES})"
            )
        shift = np.repeat(np.arange(repeats) * period, notes.n_notes)
        onset = np.tile(onset, repeats) + shift
        offset = np.tile(offset, repeats) + shift
        velocity, pitch, part = (np.tile(a, repeats) for a in (velocity, pitch, part))

    keep = onset < duration_s
    onset, offset = onset[keep], np.minimum(offset[keep], duration_s)
    offset = np.maximum(offset, np.minimum(onset + 1e-3, duration_s))
    order = np.lexsort((pitch[keep], onset))
    return NoteEvents(
        onset_s=onset[order],
        offset_s=offset[order],
        pitch=pitch[keep][order].astype(np.int16),
        velocity=velocity[keep][order].astype(np.int16),
        part=part[keep][order].astype(np.int16),
        n_parts=notes.n_parts,
    )


def score_to_events(
    score: Any,
    *,
    duration_s: float,
    tempo_qpm: float | None = None,
    loop: bool = False,
    min_velocity: int = 40,
    max_velocity: int = 120,
) -> NoteEvents:
    """Note events of the first ``duration_s`` seconds of a score or score file.

    Parameters
    ----------
    score : music21.stream.Stream or str or Path
        A parsed score, or a file for :func:`load_score`.
    duration_s, tempo_qpm, loop, min_velocity, max_velocity
        As in :func:`note_events`.

    Returns
    -------
    NoteEvents
    """
    if isinstance(score, str | Path):
        score = load_score(score)
    return note_events(
        score_notes(score),
        duration_s=duration_s,
        tempo_qpm=tempo_qpm,
        loop=loop,
        min_velocity=min_velocity,
        max_velocity=max_velocity,
    )
