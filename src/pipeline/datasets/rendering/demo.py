"""The embedded demo dataset: clips rendered from the music21 corpus, with tags audible by design.

:func:`build_demo_dataset` draws tunes from four collections bundled with music21, Bach's
four-part chorales (``bach``, polyphonic), O'Neill's *Music of Ireland* (``irish``) and the
German and Chinese songs of the Essen folk-song collection (``german``, ``chinese``; all three
monophonic). Each clip gets one General MIDI instrument and one tempo drawn from the seed, and
is rendered in-process (:mod:`pipeline.datasets.rendering.render`) to a fixed-length mono FLAC.
Tags:

- instrument: ``piano organ violin flute trumpet clarinet guitar marimba`` (one per clip);
- texture: ``monophonic`` / ``polyphonic`` (one part or several);
- meter: ``duple`` (2/4, 4/4, 2/2), ``triple`` (3/4, 3/8), ``compound`` (6/8, 9/8, 12/8); other
  meters stay untagged (ABC tunes in other meters, or that change meter, are not drawn);
  velocity follows beat strength so downbeats are louder;
- mode: ``major`` / ``minor`` only where the declared key, a Krumhansl-Kessler estimate
  (music21 ``analyze('key')``) and the final (lowest final) note agree, and the melody is not
  pentatonic, see :func:`mode_tag`;
- tempo: ``slow`` / ``fast`` from two separated ranges of beats per minute (the beat is a
  quarter note in simple meters and a dotted quarter in 3/8 and compound meters), see
  ``TEMPO_BPM``;
- source collection: ``bach``, ``irish``, ``german``, ``chinese``.

Instruments are dealt evenly over all clips and slow/fast evenly within each collection, and
ABC tunes are drawn with their meters taking turns, so that tags are balanced and as little
tied to one another as the collections allow (``polyphonic`` is ``bach`` by construction).

``artist`` in ``tracks.csv`` is the grouping key for artist-aware splits. It keeps likely
near-duplicates together while leaving each collection many groups: ``bach-bwv<N>`` (one
work: a cantata's chorale, or one of the chorales BWV 250-438), ``essen-<file>-<code>`` (the
Essen song code without its variant letter, so ``E0001``, ``E0001A`` and ``E0001B``, variants
of one song, share a group), ``oneills-<first>-<last>`` (blocks of 25 consecutive tune
numbers of O'Neill's book; the book's duplicated transcriptions of one tune number are read
once). One chorale melody harmonised in two works (different BWV numbers) is not grouped.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from pipeline.datasets.rendering.render import (
    ScoreNotes,
    get_renderer,
    note_events,
    score_notes,
    write_flac,
)
from pipeline.errors import ConfigError, PipelineError

__all__ = [
    "INSTRUMENTS",
    "METER_TAGS",
    "SOURCES",
    "TEMPO_BPM",
    "AbcTune",
    "build_demo_dataset",
    "is_anhemitonic",
    "meter_tag",
    "mode_tag",
    "split_abc_tunes",
]

log = logging.getLogger(__name__)

#: The instrument tags and their General MIDI programs (0-based), chosen to sound distinct.
INSTRUMENTS: dict[str, int] = {
    "piano": 0,
    "organ": 19,
    "violin": 40,
    "trumpet": 56,
    "clarinet": 71,
    "flute": 73,
    "guitar": 24,
    "marimba": 12,
}

#: Time signature (as written, ``C`` = 4/4, ``C|`` = 2/2) to meter tag.
METER_TAGS: dict[str, str] = {
    "2/4": "duple",
    "4/4": "duple",
    "2/2": "duple",
    "3/4": "triple",
    "3/8": "triple",
    "6/8": "compound",
    "9/8": "compound",
    "12/8": "compound",
}

#: Tempo ranges in beats per minute, by beat unit: ``simple`` beats are quarter notes,
#: ``dotted`` beats are dotted quarters (3/8 and compound meters). The slow and fast ranges
#: are separated by more than an octave of tempo in quarter notes per minute.
TEMPO_BPM: dict[str, dict[str, tuple[float, float]]] = {
    "simple": {"slow": (55.0, 80.0), "fast": (130.0, 180.0)},
    "dotted": {"slow": (40.0, 55.0), "fast": (95.0, 120.0)},
}

#: Collections in build order; clips are shared out evenly, the first ones take any remainder.
SOURCES: tuple[str, ...] = ("bach", "irish", "german", "chinese")

_ESSEN_FILES = {
    "german": (
        "altdeu10",
        "altdeu20",
        "boehme10",
        "boehme20",
        "erk5",
        "erk10",
        "erk20",
        "erk30",
        "fink0",
        "kinder0",
        "zuccal0",
    ),
    "chinese": ("han1", "han2"),
}
_ESSEN_ORIGIN = {"german": "Deutschland", "chinese": "China"}
_MIN_SCORE_S = 8.0  # a tune shorter than this at its drawn tempo is skipped (others loop)
_PARTS = {"bach": 4, "irish": 1, "german": 1, "chinese": 1}
_ARTIST_BLOCK = 25
_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11, "H": 11}
_MAJOR_SHARPS = {0: 0, 7: 1, 2: 2, 9: 3, 4: 4, 11: 5, 6: 6, 1: -5, 8: -4, 3: -3, 10: -2, 5: -1}
_TAG_ORDER = ("source", "texture", "meter", "mode", "tempo", "instrument")


# ----------------------------------------------------------------------------- tags


def meter_tag(time_signature: str) -> str | None:
    """Meter tag of a time signature.

    Parameters
    ----------
    time_signature : str
        As written in ABC or music21's ``ratioString``: ``"3/4"``, ``"C"``, ``"C|"``.

    Returns
    -------
    str or None
        ``"duple"``, ``"triple"``, ``"compound"``, or ``None`` for any other meter.
    """
    text = time_signature.strip().replace(" ", "")
    text = {"C": "4/4", "C|": "2/2"}.get(text, text)
    return METER_TAGS.get(text)


def mode_tag(
    *,
    estimate_tonic: int,
    estimate_mode: str,
    estimate_sharps: int,
    final_pitch_class: int | None,
    declared_mode: str | None,
    declared_tonic: int | None = None,
    declared_sharps: int | None = None,
    anhemitonic: bool = False,
) -> str | None:
    """``"major"`` / ``"minor"`` where declared key, key estimate and final note agree.

    Parameters
    ----------
    estimate_tonic, estimate_mode, estimate_sharps
        Krumhansl-Kessler estimate: tonic pitch class (0 = C), ``"major"``/``"minor"``, and
        the sharps (negative: flats) of its key signature.
    final_pitch_class : int or None
        Pitch class of the last (lowest last) note; must be the estimated tonic.
    declared_mode : str or None
        ``"major"`` / ``"minor"`` when the score declares its mode (ABC ``K:Gm``, a MusicXML
        key with a mode): the estimate must have that mode and ``declared_tonic``. ``None``
        when the mode is not declared: the estimate must then agree with what is declared,
        ``declared_tonic`` (the Essen ``K:`` field names the tonic only) and/or
        ``declared_sharps`` (a MusicXML key signature without a mode). Anything else
        (``"modal"``: dorian, mixolydian, ...) gives no tag.
    declared_tonic, declared_sharps : int or None
        Declared tonic pitch class, and declared key signature.
    anhemitonic : bool
        The melody has no semitone between its main pitch classes (pentatonic): no tag.

    Returns
    -------
    str or None
    """
    if anhemitonic or estimate_mode not in ("major", "minor"):
        return None
    tonic = estimate_tonic % 12
    if final_pitch_class is None or final_pitch_class % 12 != tonic:
        return None
    if declared_mode in ("major", "minor"):
        agree = declared_mode == estimate_mode and declared_tonic == tonic
        return estimate_mode if agree else None
    if declared_mode is not None or (declared_tonic is None and declared_sharps is None):
        return None
    if declared_tonic is not None and declared_tonic != tonic:
        return None
    if declared_sharps is not None and declared_sharps != estimate_sharps:
        return None
    return estimate_mode


def is_anhemitonic(notes: ScoreNotes, *, min_share: float = 0.03) -> bool:
    """Whether no two main pitch classes of the notes lie a semitone apart (pentatonic).

    Parameters
    ----------
    notes : ScoreNotes
        The notes; each pitch class is weighted by its total duration.
    min_share : float
        Pitch classes holding less than this share of the total duration (passing and
        ornamental notes) are ignored.

    Returns
    -------
    bool
    """
    weights = np.bincount(notes.pitch % 12, weights=notes.duration_ql, minlength=12)
    if not weights.sum() > 0:
        return False
    main = weights / weights.sum() >= min_share
    return not bool(np.any(main & np.roll(main, -1)))


# ----------------------------------------------------------------------------- ABC index


@dataclass(frozen=True, kw_only=True)
class AbcTune:
    """One tune of an ABC file, read without music21.

    Parameters
    ----------
    index : int
        1-based position of the tune in its file.
    number : int or None
        The ``X:`` reference number.
    text : str
        The tune, from its ``X:`` line to the line before the next ``X:``.
    fields : dict of str to str
        First value of each header field (``T``, ``M``, ``K``, ``O``, ``R``, ``N``, ...).
    meter_changes : bool
        Whether the body holds a meter field (``M:`` line or inline ``[M:...]``).
    """

    index: int
    number: int | None
    text: str
    fields: dict[str, str]
    meter_changes: bool


def split_abc_tunes(text: str) -> list[AbcTune]:
    """Split the text of an ABC file into tunes and read each header.

    Parameters
    ----------
    text : str
        Contents of an ABC file.

    Returns
    -------
    list of AbcTune
        In file order; text before the first ``X:`` is dropped.
    """
    tunes: list[AbcTune] = []
    chunks = re.split(r"(?m)^(?=X:)", text)
    for chunk in chunks:
        if not chunk.startswith("X:"):
            continue
        fields: dict[str, str] = {}
        meter_changes = False
        in_body = False
        for line in chunk.splitlines():
            match = re.match(r"^([A-Za-z]):\s*(.*?)\s*$", line)
            if not in_body and match:
                fields.setdefault(match.group(1), match.group(2))
                in_body = match.group(1) == "K"
            elif in_body and (line.startswith("M:") or "[M:" in line):
                meter_changes = True
        number_text = fields.get("X", "").strip()
        tunes.append(
            AbcTune(
                index=len(tunes) + 1,
                number=int(number_text) if number_text.isdigit() else None,
                text=chunk,
                fields=fields,
                meter_changes=meter_changes,
            )
        )
    return tunes


def _abc_key(value: str) -> tuple[int | None, str | None, int | None]:
    """``(tonic pitch class, mode, sharps)`` of an ABC ``K:`` value; mode may be ``"modal"``."""
    match = re.match(r"^\s*([A-Ha-h])\s*([#b]?)\s*([A-Za-z]*)", value)
    if not match:
        return None, "modal", None
    tonic = (_PITCH_CLASS[match.group(1).upper()] + {"#": 1, "b": -1, "": 0}[match.group(2)]) % 12
    word = match.group(3).lower()
    if word in ("", "maj", "major", "ion", "ionian"):
        mode = "major"
    elif word in ("m", "min", "minor", "aeo", "aeolian"):
        mode = "minor"
    else:
        return tonic, "modal", None
    relative = tonic if mode == "major" else (tonic + 3) % 12
    return tonic, mode, _MAJOR_SHARPS[relative]


# ----------------------------------------------------------------------------- candidates


@dataclass(frozen=True, kw_only=True)
class _Candidate:
    """A score that may become a clip; everything needed to parse and tag it."""

    source: str
    track_id: str
    artist: str
    origin: str  # corpus-relative file, and tune number for ABC
    title: str
    abc: str | None = None
    path: str | None = None
    meter: str | None = None
    declared_mode: str | None = None
    declared_tonic: int | None = None
    declared_sharps: int | None = None


@dataclass(frozen=True, kw_only=True)
class _Analysis:
    """What parsing a candidate yields: its notes and its score-derived tags."""

    notes: ScoreNotes
    n_parts: int
    time_signature: str | None
    meter: str | None
    mode: str | None
    key_estimate: str


def _corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def _block(number: int) -> str:
    first = (number - 1) // _ARTIST_BLOCK * _ARTIST_BLOCK + 1
    return f"{first:04d}-{first + _ARTIST_BLOCK - 1:04d}"


def _bach_candidates(root: Path) -> list[_Candidate]:
    out = []
    for path in sorted((root / "bach").glob("bwv*.mxl")):
        match = re.fullmatch(r"bwv(\d+)(\.\d+)?", path.stem)  # no alternative versions
        if not match or int(match.group(1)) >= 1000 or match.group(1) == "846":
            continue
        out.append(
            _Candidate(
                source="bach",
                track_id="bach-" + path.stem.replace(".", "_"),
                artist=f"bach-bwv{int(match.group(1))}",
                origin=f"bach/{path.name}",
                title=path.stem,
                path=str(path),
            )
        )
    return out


def _abc_candidate(
    *, source: str, tune: AbcTune, origin: str, track_id: str, artist: str, tonic_only: bool
) -> _Candidate | None:
    meter = tune.fields.get("M", "")
    if meter_tag(meter) is None or tune.meter_changes or "K" not in tune.fields:
        return None
    tonic, mode, sharps = _abc_key(tune.fields["K"])
    if tonic is None:
        return None
    if tonic_only:  # Essen K: fields name the tonic, not the mode (nor the signature)
        if mode != "major":
            return None
        mode, sharps = None, None
    return _Candidate(
        source=source,
        track_id=track_id,
        artist=artist,
        origin=origin,
        title=tune.fields.get("T", ""),
        abc=tune.text,
        meter=meter,
        declared_mode=mode,
        declared_tonic=tonic,
        declared_sharps=sharps,
    )


def _irish_candidates(root: Path) -> list[_Candidate]:
    out, seen = [], set()
    for path in sorted((root / "oneills1850").glob("*.abc")):
        for tune in split_abc_tunes(path.read_text(encoding="utf-8", errors="replace")):
            if tune.number is None or tune.number in seen:
                continue  # the book holds some tune numbers twice, in two transcriptions
            seen.add(tune.number)
            cand = _abc_candidate(
                source="irish",
                tune=tune,
                origin=f"oneills1850/{path.name}#X{tune.number}",
                track_id=f"irish-oneills-{tune.number:04d}",
                artist=f"oneills-{_block(tune.number)}",
                tonic_only=False,
            )
            if cand is not None:
                out.append(cand)
    return out


def _essen_candidates(root: Path, source: str) -> list[_Candidate]:
    out = []
    for stem in _ESSEN_FILES[source]:
        path = root / "essenFolksong" / f"{stem}.abc"
        for tune in split_abc_tunes(path.read_text(encoding="utf-8", errors="replace")):
            if _ESSEN_ORIGIN[source] not in tune.fields.get("O", ""):
                continue
            code = re.match(r"[A-Z]+\d+", tune.fields.get("N", ""))
            group = code.group(0) if code else _block(tune.index)
            cand = _abc_candidate(
                source=source,
                tune=tune,
                origin=f"essenFolksong/{stem}.abc#{tune.index}",
                track_id=f"{source}-{stem}-{tune.index:04d}",
                artist=f"essen-{stem}-{group}",
                tonic_only=True,
            )
            if cand is not None:
                out.append(cand)
    return out


def _ordered_candidates(source: str, rng: np.random.Generator) -> list[_Candidate]:
    """All candidates of a collection in a seeded order, meters taking turns (ABC)."""
    root = _corpus_root()
    if source == "bach":
        cands = _bach_candidates(root)
        return [cands[i] for i in rng.permutation(len(cands))]
    cands = _irish_candidates(root) if source == "irish" else _essen_candidates(root, source)
    groups: dict[str, list[_Candidate]] = {}
    for cand in cands:
        groups.setdefault(meter_tag(cand.meter or "") or "", []).append(cand)
    queues = [[g[i] for i in rng.permutation(len(g))] for _, g in sorted(groups.items())]
    ordered = []
    for turn in range(max((len(q) for q in queues), default=0)):
        ordered.extend(q[turn] for q in queues if turn < len(q))
    return ordered


def _analyse(cand: _Candidate) -> _Analysis | str:
    """Parse a candidate and derive its score tags; an error becomes its message."""
    from music21 import converter, key, meter

    try:
        if cand.abc is not None:
            score = converter.parse(cand.abc, format="abc")
        else:
            score = converter.parseFile(cand.path, forceSource=True, storePickle=False)
        notes = score_notes(score)
        if notes.n_notes == 0:
            return "no notes"
        estimate = score.analyze("key")
        time_sig = cand.meter
        declared_mode, declared_tonic = cand.declared_mode, cand.declared_tonic
        declared_sharps = cand.declared_sharps
        if cand.abc is None:
            ratios = {
                ts.ratioString for ts in score.recurse().getElementsByClass(meter.TimeSignature)
            }
            time_sig = ratios.pop() if len(ratios) == 1 else None
            first_key = score.recurse().getElementsByClass(key.KeySignature).first()
            if first_key is not None:
                declared_sharps = int(first_key.sharps)
                if isinstance(first_key, key.Key) and first_key.mode in ("major", "minor"):
                    declared_mode = first_key.mode
                    declared_tonic = first_key.tonic.pitchClass
        ends = notes.onset_ql + notes.duration_ql
        final = notes.pitch[ends >= ends.max() - 1e-6]
        return _Analysis(
            notes=notes,
            n_parts=notes.n_parts,
            time_signature=time_sig,
            meter=meter_tag(time_sig) if time_sig else None,
            mode=mode_tag(
                estimate_tonic=estimate.tonic.pitchClass,
                estimate_mode=estimate.mode,
                estimate_sharps=int(estimate.sharps),
                final_pitch_class=int(final.min()) % 12,
                declared_mode=declared_mode,
                declared_tonic=declared_tonic,
                declared_sharps=declared_sharps,
                anhemitonic=is_anhemitonic(notes),
            ),
            key_estimate=f"{estimate.tonic.name} {estimate.mode}",
        )
    except Exception as exc:  # noqa: BLE001 - a bad tune is skipped, never fatal
        return f"{type(exc).__name__}: {exc}"


# ----------------------------------------------------------------------------- slots


@dataclass(frozen=True, kw_only=True)
class _Slot:
    """A clip to fill: its collection, instrument and tempo, drawn before any parsing."""

    source: str
    instrument: str
    tempo: str  # "slow" / "fast"
    tempo_u: float  # position inside the tempo range, in [0, 1)


def _slots(*, n_clips: int, seed: int) -> list[_Slot]:
    """Clips per collection (even shares), instruments balanced overall, tempi per source."""
    rng = np.random.default_rng([seed, 0])
    counts = [n_clips // len(SOURCES) + (i < n_clips % len(SOURCES)) for i in range(len(SOURCES))]
    names = list(INSTRUMENTS)
    instruments = np.resize(np.arange(len(names)), n_clips)[rng.permutation(n_clips)]
    slots, k = [], 0
    for source, count in zip(SOURCES, counts, strict=True):
        tempi = np.resize(np.array(["slow", "fast"]), count)[rng.permutation(count)]
        for j in range(count):
            slots.append(
                _Slot(
                    source=source,
                    instrument=names[int(instruments[k])],
                    tempo=str(tempi[j]),
                    tempo_u=float(rng.random()),
                )
            )
            k += 1
    return slots


def _tempo_qpm(slot: _Slot, time_signature: str | None) -> float:
    """Quarter notes per minute of a slot's tempo in a meter (dotted beats in 3/8, x/8)."""
    text = (time_signature or "").replace(" ", "")
    dotted = text == "3/8" or meter_tag(text) == "compound"
    lo, hi = TEMPO_BPM["dotted" if dotted else "simple"][slot.tempo]
    return (lo + slot.tempo_u * (hi - lo)) * (1.5 if dotted else 1.0)


# ----------------------------------------------------------------------------- workers


def _render_clip(task: tuple[str, ScoreNotes, float, int, float, int]) -> str | None:
    """Render one clip to FLAC; returns an error message or ``None``."""
    path, notes, tempo_qpm, program, clip_s, sample_rate = task
    events = note_events(notes, duration_s=clip_s, tempo_qpm=tempo_qpm, loop=True)
    audio = get_renderer(sample_rate=sample_rate).render(
        events, duration_s=clip_s, programs=program
    )
    if not np.any(audio):
        return f"clip '{path}' rendered silent"
    write_flac(path=path, audio=audio, sample_rate=sample_rate)
    return None


def _mapper(workers: int) -> tuple[Callable, ProcessPoolExecutor | None]:
    if workers <= 1:
        return map, None
    # fork: rule scripts run as __main__ without a main guard, which spawn would re-run
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"))
    return (lambda fn, items: pool.map(fn, items, chunksize=1)), pool


# ----------------------------------------------------------------------------- build


def _tags(slot: _Slot, analysis: _Analysis) -> list[str]:
    by_kind = {
        "source": slot.source,
        "texture": "polyphonic" if analysis.n_parts > 1 else "monophonic",
        "meter": analysis.meter,
        "mode": analysis.mode,
        "tempo": slot.tempo,
        "instrument": slot.instrument,
    }
    return [by_kind[k] for k in _TAG_ORDER if by_kind[k]]


def _fill_slots(
    *,
    slots: Sequence[_Slot],
    candidates: dict[str, list[_Candidate]],
    analyse: Callable[[Iterable[_Candidate]], Iterable[_Analysis | str]],
    clip_s: float,
) -> list[tuple[_Slot, _Candidate, _Analysis, float]]:
    """Give each slot the first unused candidate (in seeded order) that parses and fits.

    Candidates are parsed in batches (in parallel); the choice depends only on the seeded
    order and each candidate's own parse, so it is the same for any number of workers.
    """
    min_s = min(_MIN_SCORE_S, clip_s)
    chosen = []
    for source, cands in candidates.items():
        own = [s for s in slots if s.source == source]
        parsed: list[_Analysis | str] = []
        used: set[int] = set()
        pending = own
        while pending:
            batch = cands[len(parsed) : len(parsed) + math.ceil(len(pending) * 1.3) + 4]
            if not batch:
                break
            parsed.extend(analyse(batch))
            still = []
            for slot in pending:
                pick = _first_fit(slot=slot, parsed=parsed, used=used, min_s=min_s)
                if pick is None:
                    still.append(slot)
                    continue
                used.add(pick[0])
                chosen.append((slot, cands[pick[0]], parsed[pick[0]], pick[1]))
            pending = still
        if pending:
            log.warning("demo: found %d of %d %s clips", len(own) - len(pending), len(own), source)
    return chosen


def _first_fit(
    *, slot: _Slot, parsed: Sequence[_Analysis | str], used: set[int], min_s: float
) -> tuple[int, float] | None:
    """Index and tempo of the first unused parsed candidate that suits ``slot``, if any."""
    for i, analysis in enumerate(parsed):
        if i in used or isinstance(analysis, str) or analysis.n_parts != _PARTS[slot.source]:
            continue
        qpm = _tempo_qpm(slot, analysis.time_signature)
        if analysis.notes.duration_s(tempo_qpm=qpm) >= min_s:
            return i, qpm
    return None


def build_demo_dataset(
    *,
    out_dir: Path,
    n_clips: int = 200,
    clip_s: float = 20.0,
    sample_rate: int = 16000,
    seed: int = 0,
    workers: int = 1,
) -> Path:
    """Build the demo dataset from the music21 corpus: FLAC clips and a tag table.

    Parameters
    ----------
    out_dir : Path
        Output folder; receives ``audio/<track_id>.flac``, ``tracks.csv`` (columns
        ``track_id, path, tags, artist, duration_s``; ``path`` relative to ``out_dir``, tags
        joined by ``;``), ``provenance.csv`` (source file, tune, title, tempo, program and key
        estimate of each clip) and ``LICENSE.md``. Stale files in it are not removed.
    n_clips : int
        Number of clips, shared evenly between ``SOURCES``.
    clip_s : float
        Length of every clip in seconds (tunes shorter than that are looped; tunes shorter
        than ``min(8 s, clip_s)`` at their drawn tempo are skipped).
    sample_rate : int
        Sample rate of the clips in Hz.
    seed : int
        Seeds the choice of tunes, instruments and tempi; the same seed gives the same table
        and audio.
    workers : int
        Processes used to parse and render (each loads the SoundFont once).

    Returns
    -------
    Path
        The ``tracks.csv`` written.
    """
    if n_clips < 1:
        raise ConfigError(f"n_clips: {n_clips!r} must be >= 1")
    if not clip_s > 0:
        raise ConfigError(f"clip_s: {clip_s!r} must be > 0")
    if sample_rate < 8000:
        raise ConfigError(f"sample_rate: {sample_rate!r} must be >= 8000")
    out_dir = Path(out_dir)
    slots = _slots(n_clips=n_clips, seed=seed)
    candidates = {
        source: _ordered_candidates(source, np.random.default_rng([seed, 1, k]))
        for k, source in enumerate(SOURCES)
    }
    mapper, pool = _mapper(workers)
    try:
        chosen = _fill_slots(
            slots=slots,
            candidates=candidates,
            analyse=lambda batch: list(mapper(_analyse, batch)),
            clip_s=clip_s,
        )
        tasks = [
            (
                str(out_dir / "audio" / f"{cand.track_id}.flac"),
                analysis.notes,
                qpm,
                INSTRUMENTS[slot.instrument],
                clip_s,
                sample_rate,
            )
            for slot, cand, analysis, qpm in chosen
        ]
        errors = [e for e in mapper(_render_clip, tasks) if e is not None]
    finally:
        if pool is not None:
            pool.shutdown()
    if errors:
        raise PipelineError(f"demo: {len(errors)} clips failed to render, first: {errors[0]}")
    if not chosen:
        raise PipelineError(f"demo: no clip could be built in '{out_dir}'")

    n_samples = int(round(clip_s * sample_rate))
    tracks, provenance = [], []
    for slot, cand, analysis, qpm in sorted(chosen, key=lambda c: c[1].track_id):
        tracks.append(
            {
                "track_id": cand.track_id,
                "path": f"audio/{cand.track_id}.flac",
                "tags": ";".join(_tags(slot, analysis)),
                "artist": cand.artist,
                "duration_s": f"{n_samples / sample_rate:.6g}",
            }
        )
        provenance.append(
            {
                "track_id": cand.track_id,
                "origin": cand.origin,
                "title": cand.title,
                "tempo_qpm": f"{qpm:.2f}",
                "program": INSTRUMENTS[slot.instrument],
                "key_estimate": analysis.key_estimate,
            }
        )
    _write_csv(out_dir / "tracks.csv", tracks)
    _write_csv(out_dir / "provenance.csv", provenance)
    (out_dir / "LICENSE.md").write_text(_LICENSE, encoding="utf-8")
    return out_dir / "tracks.csv"


def _write_csv(path: Path, rows: list[dict]) -> None:
    """Write rows (dicts with the same keys) to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


_LICENSE = """\
# Licence notes for the demo dataset

This folder was generated by `pipeline.datasets.rendering.demo.build_demo_dataset` from scores
bundled with the
`music21` package and a General MIDI SoundFont bundled with `pretty_midi`. The rendered audio
inherits the terms of both. Do not commit the generated audio to a repository.

- **Scores.** The works (J. S. Bach's chorales, the tunes of O'Neill's *Music of Ireland*
  (1903), the songs of the Essen folk-song collection) are in the public domain. The
  encodings are distributed with music21 by permission of their encoders (the O'Neill ABC
  transcriptions name their transcribers in their `Z:` fields); music21's
  `corpus/license.txt` notes that some may not be used commercially.
- **Essen folk-song collection** (`german`, `chinese` clips): permission was given for
  *non-commercial* distribution and use in music21 (Ewa Dahlig-Turek; ABC encodings by
  Seymour Shlien). See `music21/corpus/essenFolksong/license.txt`. Use these clips for
  research and testing only.
- **SoundFont.** TimGM6mb.sf2 (Tim Brechbill), shipped inside the `pretty_midi` wheel, is
  licensed under the GNU General Public License, version 2 (GPL-2.0).
- **Rendering.** Audio synthesised in-process with `tinysoundfont` (MIT).

`provenance.csv` names the corpus file and tune of every clip.
"""
