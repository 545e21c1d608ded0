"""Render symbolic music (music21 scores, MIDI, MusicXML, ABC) to audio, in-process.

Scores become note events in two steps: :func:`score_notes` reads the notes of a parsed
score in quarter-note time, with the metrical accent (music21 beat strength) of each note;
:func:`note_events` places them in seconds at a tempo, cut (and optionally looped) to a fixed
length, with a velocity that rises with beat strength so that the meter is audible.
:class:`SoundFontRenderer` synthesises the events with a General MIDI SoundFont through
``tinysoundfont``: one channel and program per part, every note switched off, all notes off at
the end, and always exactly ``round(duration_s * sample_rate)`` samples.

Nothing here writes MIDI or calls an external renderer: a hung note once turned such a render
into a 25 GB file. Here the length of the output is fixed before the first sample is made.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.errors import AudioError, ConfigError, PipelineError

__all__ = [
    "DEFAULT_TEMPO_QPM",
    "SCORE_SUFFIXES",
    "ScoreNotes",
    "NoteEvents",
    "SoundFontRenderer",
    "default_soundfont",
    "load_score",
    "score_notes",
    "note_events",
    "score_to_events",
    "get_renderer",
    "render_score",
    "write_flac",
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

_DRUM_CHANNEL = 9  # General MIDI percussion; never given to a pitched part
_CHANNELS = tuple(c for c in range(16) if c != _DRUM_CHANNEL)
_FLUSH_S = 0.1  # audio rendered (and thrown away) after a reset, to let voices die out
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


def default_soundfont() -> Path:
    """Path of the General MIDI SoundFont bundled with ``pretty_midi`` (TimGM6mb, GPL-2)."""
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise ConfigError(f"soundfont: the bundled SoundFont '{path}' is missing")
    return path


def load_score(path: str | Path):
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


def score_notes(score, *, expand_repeats: bool = True) -> ScoreNotes:
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


def _part_notes(part) -> list[tuple[float, float, int, float]]:
    """``(onset_ql, duration_ql, midi, beat_strength)`` of every pitched note of one part.

    Tied notes are merged into one (by hand: music21's ``stripTies`` copies the whole part).
    """
    from music21 import chord, meter, note, stream

    current_ts = part.recurse().getElementsByClass(meter.TimeSignature).first()
    accents: dict[tuple[str, float], float] = {}

    def accent(ts, position: float) -> float:
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

    def pitched(element) -> list[tuple[int, str | None]]:
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
    timed: list[tuple[float, float, object]] = []
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
    score,
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


class SoundFontRenderer:
    """A General MIDI SoundFont synthesiser (tinysoundfont), loaded once and reused.

    Parameters
    ----------
    soundfont : Path or None
        ``.sf2`` file; ``None`` uses :func:`default_soundfont`.
    sample_rate : int
        Rate of the returned audio, in Hz.
    synth_rate : int or None
        Rate the synthesiser runs at; ``None`` renders at ``sample_rate`` directly
        (tinysoundfont supports any rate), otherwise the audio is resampled with soxr.
    max_voices : int
        Polyphony of the synthesiser; the oldest voices are cut beyond it.
    """

    def __init__(
        self,
        *,
        soundfont: str | Path | None = None,
        sample_rate: int = 16000,
        synth_rate: int | None = None,
        max_voices: int = 256,
    ) -> None:
        import tinysoundfont

        if not sample_rate > 0:
            raise ConfigError(f"sample_rate: {sample_rate!r} must be > 0")
        if synth_rate is not None and not synth_rate > 0:
            raise ConfigError(f"synth_rate: {synth_rate!r} must be > 0")
        self.soundfont = Path(soundfont) if soundfont is not None else default_soundfont()
        if not self.soundfont.is_file():
            raise ConfigError(f"soundfont: '{self.soundfont}' does not exist")
        self.sample_rate = int(sample_rate)
        self.synth_rate = int(synth_rate) if synth_rate is not None else self.sample_rate
        self._synth = tinysoundfont.Synth(samplerate=self.synth_rate)
        try:
            self._sfid = self._synth.sfload(str(self.soundfont), max_voices=max_voices)
        except Exception as exc:  # tinysoundfont raises plain exceptions
            raise ConfigError(f"soundfont: cannot load '{self.soundfont}': {exc}") from exc

    def _generate(self, out: np.ndarray) -> None:
        """Fill ``out``, shape (n, 2) float32 C-contiguous, with the synthesiser's output."""
        if out.shape[0]:
            self._synth.generate_simple(out.shape[0], buffer=memoryview(out).cast("B"))

    def _reset(self) -> None:
        """Silence every voice, forget channel settings, and let the quick releases finish."""
        for channel in range(16):
            self._synth.control_change(channel, 123, 0)  # all notes off
            self._synth.control_change(channel, 120, 0)  # all sounds off
        for font in self._synth.soundfonts.values():
            font.reset()
        self._generate(np.zeros((int(_FLUSH_S * self.synth_rate), 2), dtype=np.float32))

    def render(
        self,
        events: NoteEvents,
        *,
        duration_s: float,
        programs: int | Sequence[int] = 0,
        peak: float | None = 0.9,
    ) -> np.ndarray:
        """Synthesise note events to mono audio of a fixed length.

        Parameters
        ----------
        events : NoteEvents
            The notes; part ``p`` plays on its own channel (channel 10, GM drums, is skipped;
            beyond 15 parts channels are shared) with program ``programs[p]``.
        duration_s : float
            Length of the output in seconds.
        programs : int or sequence of int
            General MIDI program (0-based: 0 piano, 40 violin, ...) for all parts, or one per
            part.
        peak : float or None
            Scale the output so its absolute peak is ``peak``; ``None`` or silent output is
            left unscaled.

        Returns
        -------
        np.ndarray, shape (round(duration_s * sample_rate),), float32
        """
        if not duration_s > 0:
            raise ConfigError(f"duration_s: {duration_s!r} must be > 0")
        n_parts = max(events.n_parts, int(events.part.max()) + 1 if events.n_notes else 0, 1)
        if isinstance(programs, int | np.integer):
            programs = [int(programs)] * n_parts
        programs = [int(p) for p in programs]
        if len(programs) < n_parts:
            raise ConfigError(f"programs: {programs!r} gives fewer programs than {n_parts} parts")
        if any(not 0 <= p <= 127 for p in programs):
            raise ConfigError(f"programs: {programs!r} must be General MIDI programs 0-127")

        rate = self.synth_rate
        n_out = int(round(duration_s * self.sample_rate))
        n_synth = int(round(duration_s * rate))
        channel_of_part = [_CHANNELS[p % len(_CHANNELS)] for p in range(n_parts)]

        # events as (sample, kind, channel, key, velocity); kind 0 = off sorts before 1 = on
        # at the same sample, so every note lasts at least one sample and its off comes
        # strictly after its on (an off sorted before its own on would leave the note hanging)
        on_at = np.rint(events.onset_s * rate).astype(np.int64)
        keep = (on_at >= 0) & (on_at < n_synth)
        on_at = on_at[keep]
        off_at = np.rint(events.offset_s[keep] * rate).astype(np.int64)
        off_at = np.minimum(np.maximum(off_at, on_at + 1), n_synth)
        channels = np.asarray(channel_of_part, dtype=np.int64)[events.part[keep].astype(np.int64)]
        pitch, velocity = events.pitch[keep], events.velocity[keep]
        table = np.concatenate(
            [
                np.stack([off_at, np.zeros_like(off_at), channels, pitch, 0 * on_at], 1),
                np.stack([on_at, np.ones_like(on_at), channels, pitch, velocity], 1),
            ]
        ).astype(np.int64)
        table = table[np.lexsort((table[:, 1], table[:, 0]))]

        out = np.zeros((n_synth, 2), dtype=np.float32)
        synth = self._synth
        self._reset()
        try:
            for channel in sorted(set(channel_of_part)):
                part = channel_of_part.index(channel)
                synth.program_select(channel, self._sfid, 0, programs[part])
            pos = 0
            for sample, kind, channel, key, velocity in table.tolist():
                if sample > pos:
                    self._generate(out[pos:sample])
                    pos = sample
                if kind:
                    synth.noteon(channel, key, int(velocity))
                else:
                    synth.noteoff(channel, key)
            self._generate(out[pos:])
        finally:
            self._reset()

        mono = (out[:, 0] + out[:, 1]) * 0.5
        if self.synth_rate != self.sample_rate:
            import soxr

            mono = soxr.resample(mono, self.synth_rate, self.sample_rate, quality="HQ")
        audio = np.zeros(n_out, dtype=np.float32)
        audio[: min(n_out, mono.shape[0])] = mono[:n_out]
        top = float(np.max(np.abs(audio))) if n_out else 0.0
        if peak is not None and top > 1e-6:
            audio *= np.float32(peak / top)
        return audio


@functools.lru_cache(maxsize=4)
def get_renderer(
    *, soundfont: str | Path | None = None, sample_rate: int = 16000
) -> SoundFontRenderer:
    """The process-wide :class:`SoundFontRenderer` for a SoundFont and rate (loaded once)."""
    return SoundFontRenderer(soundfont=soundfont, sample_rate=sample_rate)


def render_score(
    score,
    *,
    duration_s: float,
    sample_rate: int = 16000,
    tempo_qpm: float | None = None,
    programs: int | Sequence[int] = 0,
    loop: bool = False,
    soundfont: str | Path | None = None,
) -> np.ndarray:
    """Render the first ``duration_s`` seconds of a score or score file to mono audio.

    Parameters
    ----------
    score : music21.stream.Stream or str or Path
        A parsed score, or a file for :func:`load_score`.
    duration_s : float
        Length of the output in seconds.
    sample_rate : int
        Rate of the output in Hz.
    tempo_qpm : float or None
        Quarter notes per minute; ``None`` follows the score (``DEFAULT_TEMPO_QPM`` if unmarked).
    programs : int or sequence of int
        General MIDI program for all parts, or one per part.
    loop : bool
        Repeat the score until ``duration_s`` is filled.
    soundfont : str or Path or None
        ``.sf2`` file; ``None`` uses the bundled TimGM6mb.

    Returns
    -------
    np.ndarray, shape (round(duration_s * sample_rate),), float32
        Peak-normalised to 0.9 unless silent.
    """
    events = score_to_events(score, duration_s=duration_s, tempo_qpm=tempo_qpm, loop=loop)
    renderer = get_renderer(
        soundfont=str(soundfont) if soundfont is not None else None, sample_rate=sample_rate
    )
    return renderer.render(events, duration_s=duration_s, programs=programs)


def write_flac(*, path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono audio, shape (n_samples,), to a 16-bit FLAC file (parents created).

    The file is written under a temporary name and renamed, so a crash leaves no partial file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        sf.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, format="FLAC", subtype="PCM_16")
        tmp.replace(path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise AudioError(f"cannot write '{path}': {exc}") from exc
    return path
