"""The embedded demo dataset: clips rendered from the music21 corpus, with tags audible by design.

:func:`build_demo_dataset` shares the clips out evenly between the four collections of
:mod:`pipeline.datasets.rendering.demo_corpus` (``bach``, ``irish``, ``german``, ``chinese``),
gives each clip one General MIDI instrument and one tempo drawn from the seed, fills it with
the first suitable tune of its collection's seeded order, and renders it in-process
(:mod:`pipeline.datasets.rendering.render`) to a fixed-length mono FLAC. Tags:

- instrument: ``piano organ violin flute trumpet clarinet guitar marimba`` (one per clip);
- texture, meter and mode: read from the score (:mod:`~pipeline.datasets.rendering.demo_corpus`);
  velocity follows beat strength so downbeats are louder;
- tempo: ``slow`` / ``fast`` from two separated ranges of beats per minute (the beat is a
  quarter note in simple meters and a dotted quarter in 3/8 and compound meters), see
  ``TEMPO_BPM``;
- source collection: ``bach``, ``irish``, ``german``, ``chinese``.

Instruments are dealt evenly over all clips and slow/fast evenly within each collection, and
ABC tunes are drawn with their meters taking turns, so that tags are balanced and as little
tied to one another as the collections allow (``polyphonic`` is ``bach`` by construction).
``artist`` in ``tracks.csv`` is the tune's grouping key for artist-aware splits.

As a dataset format (``format: demo``), :data:`FORMAT` declares the config keys that define
the clips (the params of the ``build_demo_dataset`` rule) and where the table is written.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from pipeline.datasets.formats import DatasetFormat
from pipeline.datasets.rendering.demo_corpus import (
    SOURCES,
    Analysis,
    Candidate,
    analyse,
    meter_tag,
    ordered_candidates,
)
from pipeline.datasets.rendering.render import get_renderer, write_flac
from pipeline.datasets.rendering.score_events import ScoreNotes, note_events
from pipeline.errors import ConfigError, PipelineError

__all__ = [
    "FORMAT",
    "INSTRUMENTS",
    "TEMPO_BPM",
    "build_demo_dataset",
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

#: Tempo ranges in beats per minute, by beat unit: ``simple`` beats are quarter notes,
#: ``dotted`` beats are dotted quarters (3/8 and compound meters). The slow and fast ranges
#: are separated by more than an octave of tempo in quarter notes per minute.
TEMPO_BPM: dict[str, dict[str, tuple[float, float]]] = {
    "simple": {"slow": (55.0, 80.0), "fast": (130.0, 180.0)},
    "dotted": {"slow": (40.0, 55.0), "fast": (95.0, 120.0)},
}

_MIN_SCORE_S = 8.0  # a tune shorter than this at its drawn tempo is skipped (others loop)
_PARTS = {"bach": 4, "irish": 1, "german": 1, "chinese": 1}
_TAG_ORDER = ("source", "texture", "meter", "mode", "tempo", "instrument")


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


def _tags(slot: _Slot, analysis: Analysis) -> list[str]:
    by_kind: dict[str, str | None] = {
        "source": slot.source,
        "texture": "polyphonic" if analysis.n_parts > 1 else "monophonic",
        "meter": analysis.meter,
        "mode": analysis.mode,
        "tempo": slot.tempo,
        "instrument": slot.instrument,
    }
    return [tag for k in _TAG_ORDER if (tag := by_kind[k])]


def _fill_slots(
    *,
    slots: Sequence[_Slot],
    candidates: dict[str, list[Candidate]],
    analyse: Callable[[Iterable[Candidate]], Iterable[Analysis | str]],
    clip_s: float,
) -> list[tuple[_Slot, Candidate, Analysis, float]]:
    """Give each slot the first unused candidate (in seeded order) that parses and fits.

    Candidates are parsed in batches (in parallel); the choice depends only on the seeded
    order and each candidate's own parse, so it is the same for any number of workers.
    """
    min_s = min(_MIN_SCORE_S, clip_s)
    chosen = []
    for source, cands in candidates.items():
        own = [s for s in slots if s.source == source]
        parsed: list[Analysis | str] = []
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
                analysis = parsed[pick[0]]
                assert not isinstance(analysis, str)  # _first_fit skips failed parses
                chosen.append((slot, cands[pick[0]], analysis, pick[1]))
            pending = still
        if pending:
            log.warning("demo: found %d of %d %s clips", len(own) - len(pending), len(own), source)
    return chosen


def _first_fit(
    *, slot: _Slot, parsed: Sequence[Analysis | str], used: set[int], min_s: float
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
        source: ordered_candidates(source, np.random.default_rng([seed, 1, k]))
        for k, source in enumerate(SOURCES)
    }
    mapper, pool = _mapper(workers)
    try:
        chosen = _fill_slots(
            slots=slots,
            candidates=candidates,
            analyse=lambda batch: list(mapper(analyse, batch)),
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
bundled with the `music21` package and a General MIDI SoundFont bundled with `pretty_midi`. The
rendered audio inherits the terms of both. Do not commit the generated audio to a repository.

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

#: ``format: demo``: built by the ``build_demo_dataset`` rule into ``resources/<dataset>/``
#: from the config keys ``n_clips``, ``clip_s`` and ``seed`` (the keyword defaults of
#: :func:`build_demo_dataset` are the schema's; a test checks that they agree).
FORMAT = DatasetFormat(
    name="demo",
    requires=(),
    generated_dir="",
    generator_keys=("n_clips", "clip_s", "seed"),
)
