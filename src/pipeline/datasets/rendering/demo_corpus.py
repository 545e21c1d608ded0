"""The demo dataset's tunes: candidates drawn from the music21 corpus, and their score tags.

Four collections bundled with music21 are read: Bach's four-part chorales (``bach``,
polyphonic), O'Neill's *Music of Ireland* (``irish``) and the German and Chinese songs of the
Essen folk-song collection (``german``, ``chinese``; all three monophonic).
:func:`ordered_candidates` lists a collection's tunes in a seeded order (ABC tunes with their
meters taking turns); :func:`analyse` parses one and derives the tags its score gives:

- texture: ``monophonic`` / ``polyphonic`` (one part or several);
- meter: ``duple`` (2/4, 4/4, 2/2), ``triple`` (3/4, 3/8), ``compound`` (6/8, 9/8, 12/8); other
  meters stay untagged (ABC tunes in other meters, or that change meter, are not candidates);
- mode: ``major`` / ``minor`` only where the declared key, a Krumhansl-Kessler estimate
  (music21 ``analyze('key')``) and the final (lowest final) note agree, and the melody is not
  pentatonic, see :func:`mode_tag`.

Each candidate's ``artist`` is the grouping key for artist-aware splits. It keeps likely
near-duplicates together while leaving each collection many groups: ``bach-bwv<N>`` (one
work: a cantata's chorale, or one of the chorales BWV 250-438), ``essen-<file>-<code>`` (the
Essen song code without its variant letter, so ``E0001``, ``E0001A`` and ``E0001B``, variants
of one song, share a group), ``oneills-<first>-<last>`` (blocks of 25 consecutive tune
numbers of O'Neill's book; the book's duplicated transcriptions of one tune number are read
once). One chorale melody harmonised in two works (different BWV numbers) is not grouped.

The clips themselves (instrument, tempo, rendering) are made by
:mod:`pipeline.datasets.rendering.demo`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.datasets.rendering.score_events import ScoreNotes, score_notes

__all__ = [
    "METER_TAGS",
    "SOURCES",
    "AbcTune",
    "Analysis",
    "Candidate",
    "analyse",
    "is_anhemitonic",
    "meter_tag",
    "mode_tag",
    "ordered_candidates",
    "split_abc_tunes",
]

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
_ARTIST_BLOCK = 25
_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11, "H": 11}
_MAJOR_SHARPS = {0: 0, 7: 1, 2: 2, 9: 3, 4: 4, 11: 5, 6: 6, 1: -5, 8: -4, 3: -3, 10: -2, 5: -1}


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
class Candidate:
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
class Analysis:
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


def _bach_candidates(root: Path) -> list[Candidate]:
    out = []
    for path in sorted((root / "bach").glob("bwv*.mxl")):
        match = re.fullmatch(r"bwv(\d+)(\.\d+)?", path.stem)  # no alternative versions
        if not match or int(match.group(1)) >= 1000 or match.group(1) == "846":
            continue
        out.append(
            Candidate(
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
) -> Candidate | None:
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
    return Candidate(
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


def _irish_candidates(root: Path) -> list[Candidate]:
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


def _essen_candidates(root: Path, source: str) -> list[Candidate]:
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


def ordered_candidates(source: str, rng: np.random.Generator) -> list[Candidate]:
    """All candidates of a collection in a seeded order, meters taking turns (ABC)."""
    root = _corpus_root()
    if source == "bach":
        cands = _bach_candidates(root)
        return [cands[i] for i in rng.permutation(len(cands))]
    cands = _irish_candidates(root) if source == "irish" else _essen_candidates(root, source)
    groups: dict[str, list[Candidate]] = {}
    for cand in cands:
        groups.setdefault(meter_tag(cand.meter or "") or "", []).append(cand)
    queues = [[g[i] for i in rng.permutation(len(g))] for _, g in sorted(groups.items())]
    ordered: list[Candidate] = []
    for turn in range(max((len(q) for q in queues), default=0)):
        ordered.extend(q[turn] for q in queues if turn < len(q))
    return ordered


def analyse(cand: Candidate) -> Analysis | str:
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
        return Analysis(
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
