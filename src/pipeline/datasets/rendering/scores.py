"""Adapter for a folder of scores (MIDI, MusicXML, ABC): render each to audio, keep its tags.

The user gives a folder and a table naming each score and its tags::

    path,tags,split
    bach/chorale1.mxl,baroque;choral,train
    tunes/reel.abc,irish;fast,test

:func:`render_score_folder` renders every score to a fixed-length mono FLAC with
:mod:`pipeline.datasets.rendering.render` and writes the project's generic track table, so the
rest of the pipeline treats the folder like any audio dataset. A score that cannot be read,
parsed, rendered or written becomes a row of ``failed.csv``; the others go on.

As a dataset format (``format: scores``), :data:`FORMAT` declares what the ``render_scores``
rule reads (the table, :func:`render_inputs`), the config keys that define the rendering (its
params) and where the rendered table is written (``resources/<dataset>/rendered``).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from pipeline.datasets._common import separators
from pipeline.datasets.formats import DatasetFormat
from pipeline.datasets.rendering.render import get_renderer, write_flac
from pipeline.datasets.rendering.score_events import load_score, note_events, score_notes
from pipeline.datasets.table import metadata_files as table_files
from pipeline.errors import ConfigError

__all__ = ["FORMAT", "render_inputs", "render_score_folder"]

_TRACK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_FAILED_COLUMNS = ("path", "stage", "error")


@dataclass(frozen=True, kw_only=True)
class _Job:
    """One score to render."""

    path: str  # as written in the table
    source: str  # absolute file
    target: str  # FLAC to write
    duration_s: float
    sample_rate: int
    tempo_qpm: float | None
    program: int
    loop: bool
    soundfont: str | None


def _render_one(job: _Job) -> tuple[str, str] | None:
    """Render one score; ``None`` on success, else ``(stage, error)``."""
    stage = "read"
    try:
        if not Path(job.source).is_file():
            return stage, f"score '{job.source}' does not exist"
        stage = "parse"
        notes = score_notes(load_score(job.source))
        if notes.n_notes == 0:
            return stage, f"score '{job.source}' holds no pitched notes"
        stage = "render"
        events = note_events(
            notes, duration_s=job.duration_s, tempo_qpm=job.tempo_qpm, loop=job.loop
        )
        renderer = get_renderer(soundfont=job.soundfont, sample_rate=job.sample_rate)
        audio = renderer.render(events, duration_s=job.duration_s, programs=job.program)
        if not np.any(audio):
            return stage, f"score '{job.source}' rendered silent"
        stage = "write"
        write_flac(path=job.target, audio=audio, sample_rate=job.sample_rate)
    except Exception as exc:  # noqa: BLE001 - one bad score must not stop the folder
        return stage, f"{type(exc).__name__}: {exc}"
    return None


def _read_table(path: Path, *, sep: str) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows of the tags table; checks the file and its required columns."""
    if not path.is_file():
        raise ConfigError(f"tags_table: '{path}' does not exist")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=sep)
        columns = [c.strip() for c in reader.fieldnames or []]
        for column in ("path", "tags"):
            if column not in columns:
                raise ConfigError(
                    f"tags_table: '{path}' has no column {column!r} "
                    f"(columns: {columns}, separator {sep!r})"
                )
        rows = [
            {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
            for row in reader
        ]
    return columns, rows


def _sanitise(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_-") or "track"


def _track_ids(rows: list[dict[str, str]], *, table: Path) -> list[str]:
    """Each row's ``track_id``, or one made from its path.

    A made id is the path without suffix, ``/``, ``.`` and odd characters as ``_`` (``a/b.mid`` ->
    ``a_b``); where two paths would give the same id, both keep their suffix (``a_b_mid``).
    """
    stems = [_sanitise(PurePath(r["path"]).with_suffix("").as_posix()) for r in rows]
    clashes = {s for s in stems if stems.count(s) > 1}
    ids: list[str] = []
    seen: dict[str, str] = {}
    for row, stem in zip(rows, stems, strict=True):
        given = row.get("track_id", "")
        if given and not _TRACK_ID.match(given):
            raise ConfigError(
                f"tags_table: '{table}': track_id {given!r} must match {_TRACK_ID.pattern}"
            )
        track_id = given or (_sanitise(row["path"]) if stem in clashes else stem)
        if track_id in seen:
            raise ConfigError(
                f"tags_table: '{table}': track_id {track_id!r} is used by both "
                f"{seen[track_id]!r} and {row['path']!r}; give each row its own track_id"
            )
        seen[track_id] = row["path"]
        ids.append(track_id)
    return ids


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    """Write a table atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def render_score_folder(
    *,
    root: Path,
    tags_table: Path,
    out_dir: Path,
    sep: str = ",",
    tag_sep: str = ";",
    duration_s: float = 30.0,
    sample_rate: int = 16000,
    tempo_qpm: float | None = None,
    program: int = 0,
    workers: int = 1,
    loop: bool = False,
    soundfont: Path | None = None,
) -> Path:
    """Render a folder of scores to audio and write its track table.

    Parameters
    ----------
    root : Path
        Folder the ``path`` column is relative to.
    tags_table : Path
        Table with columns ``path`` (score file: ``.mid``, ``.midi``, ``.xml``,
        ``.musicxml``, ``.mxl``, ``.abc``) and ``tags`` (joined by ``tag_sep``); optional
        ``track_id`` (default: the path without suffix, ``/``, ``.`` and odd characters as
        ``_``; paths that would clash keep their suffix), ``split`` and ``artist``, carried
        into the output.
    out_dir : Path
        Receives ``audio/<track_id>.flac``, ``tracks.csv`` (columns ``track_id, path, tags``,
        then ``artist`` and ``split`` when the input has them, then ``duration_s``; ``path``
        relative to ``out_dir``, tags joined by ``;``) and ``failed.csv`` (columns ``path,
        stage, error``; ``stage`` is ``read``, ``parse``, ``render`` or ``write``).
    sep : str
        Column separator of ``tags_table`` (``"\\t"`` for TSV).
    tag_sep : str
        Separator of the tags inside the ``tags`` column.
    duration_s : float
        Length of every rendered track in seconds: longer scores are cut, shorter ones end
        in silence (or loop, with ``loop=True``).
    sample_rate : int
        Sample rate of the FLAC files in Hz.
    tempo_qpm : float or None
        Tempo for every score in quarter notes per minute; ``None`` follows each score's
        metronome marks (120 where it has none).
    program : int
        General MIDI program (0-based) for every part.
    workers : int
        Processes rendering in parallel (each loads the SoundFont once).
    loop : bool
        Repeat scores shorter than ``duration_s`` until it is filled.
    soundfont : Path or None
        ``.sf2`` file; ``None`` uses the TimGM6mb SoundFont bundled with pretty_midi.

    Returns
    -------
    Path
        The ``tracks.csv`` written.

    Raises
    ------
    ConfigError
        When the table is missing, lacks ``path`` or ``tags``, repeats a ``track_id``, or a
        setting is out of range. Problems of single scores never raise.
    """
    root, tags_table, out_dir = Path(root), Path(tags_table), Path(out_dir)
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ConfigError(f"duration_s: {duration_s!r} must be a finite number of seconds > 0")
    if sample_rate < 1:
        raise ConfigError(f"sample_rate: {sample_rate!r} must be > 0")
    if tempo_qpm is not None and not tempo_qpm > 0:
        raise ConfigError(f"tempo_qpm: {tempo_qpm!r} must be > 0")
    if not 0 <= program <= 127:
        raise ConfigError(f"program: {program!r} must be a General MIDI program 0-127")
    if soundfont is not None and not Path(soundfont).is_file():
        raise ConfigError(f"soundfont: '{soundfont}' does not exist")
    sep, tag_sep = separators(
        options={"sep": sep, "tag_sep": tag_sep}, key="{}", default_sep=",", default_tag_sep=";"
    )

    columns, rows = _read_table(tags_table, sep=sep)
    extra = [c for c in ("artist", "split") if c in columns]
    failed: list[dict[str, str]] = []
    for row in rows:
        if not row.get("path"):
            failed.append({"path": "", "stage": "read", "error": f"empty path in row {row}"})
    rows = [row for row in rows if row.get("path")]
    todo: list[tuple[dict[str, str], str, _Job]] = []
    for row, track_id in zip(rows, _track_ids(rows, table=tags_table), strict=True):
        job = _Job(
            path=row["path"],
            source=str(root / row["path"]),
            target=str(out_dir / "audio" / f"{track_id}.flac"),
            duration_s=float(duration_s),
            sample_rate=int(sample_rate),
            tempo_qpm=tempo_qpm,
            program=int(program),
            loop=loop,
            soundfont=str(soundfont) if soundfont is not None else None,
        )
        todo.append((row, track_id, job))

    jobs = [job for _, _, job in todo]
    if workers > 1 and len(jobs) > 1:
        # fork: rule scripts run as __main__ without a main guard, which spawn would re-run
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            results = list(pool.map(_render_one, jobs, chunksize=1))
    else:
        results = [_render_one(job) for job in jobs]

    n_samples = int(round(duration_s * sample_rate))
    tracks: list[dict[str, str]] = []
    for (row, track_id, job), result in zip(todo, results, strict=True):
        if result is not None:
            failed.append({"path": job.path, "stage": result[0], "error": result[1]})
            continue
        tags = [t.strip() for t in row["tags"].split(tag_sep) if t.strip()]
        track = {"track_id": track_id, "path": f"audio/{track_id}.flac", "tags": ";".join(tags)}
        track.update({c: row.get(c, "") for c in extra})
        track["duration_s"] = f"{n_samples / sample_rate:.6g}"
        tracks.append(track)

    _write_csv(out_dir / "failed.csv", list(_FAILED_COLUMNS), failed)
    _write_csv(out_dir / "tracks.csv", ["track_id", "path", "tags", *extra, "duration_s"], tracks)
    return out_dir / "tracks.csv"


def render_inputs(*, entry: Mapping[str, Any]) -> dict[str, str]:
    """What the ``render_scores`` rule reads besides the scores: ``{"table": <tags table>}``,
    the entry's ``table`` relative to its ``root`` unless absolute.
    """
    [tags_table] = table_files(root=Path(entry["root"]), options=entry)
    return {"table": str(tags_table)}


#: ``format: scores``: rendered by the ``render_scores`` rule into
#: ``resources/<dataset>/rendered/`` from the table (:func:`render_inputs`) and the config keys
#: below (the keyword defaults of :func:`render_score_folder` are the schema's, ``clip_s`` as
#: ``duration_s``; a test checks that they agree).
FORMAT = DatasetFormat(
    name="scores",
    requires=("root", "table"),
    generated_dir="rendered",
    generator_keys=("root", "sep", "tag_sep", "clip_s", "tempo_qpm", "program"),
    generator_inputs=render_inputs,
    paths=(("table", "file"),),
)
