"""Check every audio file of a dataset before any work: found, missing or unreadable.

The manifest step calls :func:`check_audio_files` on every path of the adapter's records
before it builds the manifest, so a dataset whose audio is not where the metadata says (a
wrong ``root``, the other download variant of MTG-Jamendo, a partial download) is named in
one line at once, not after every extraction job has failed every track.

Only ``os.stat`` (and ``os.access``) is called, never ``open``: a million paths take seconds
on a local disk. The stats run on a thread pool (``os.stat`` releases the GIL, and on network
file systems the latency of many stats in flight overlaps).

What the step does with the result (:func:`apply_file_check`):

- every file usable: nothing to report;
- some missing or unreadable, at most ``max_missing_fraction`` of the tracks: a warning with
  the count and the first paths; those tracks leave the manifest and become rows of a failure
  table (``track_id, path, stage, level, error``, stage ``check``), the rest goes on;
- more than ``max_missing_fraction``, or all of them: a :class:`~pipeline.errors.ConfigError`
  naming the dataset, the first missing paths and the likely cause.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError, PipelineError, printable
from pipeline.io.files import stat_file

__all__ = [
    "DEFAULT_MAX_MISSING_FRACTION",
    "FAILURE_COLUMNS",
    "FOUND",
    "MISSING",
    "UNREADABLE",
    "FileCheck",
    "apply_file_check",
    "check_audio_files",
    "stat_paths",
]

#: Status codes of :func:`stat_paths`.
FOUND, MISSING, UNREADABLE = 0, 1, 2
#: The largest fraction of a dataset's tracks whose audio may be missing or unreadable before
#: the manifest step stops (``datasets.<name>.max_missing_fraction`` when absent).
DEFAULT_MAX_MISSING_FRACTION = 0.1
#: The columns of every failure table of the pipeline (the same as the feature stage's).
FAILURE_COLUMNS = ["track_id", "path", "stage", "level", "error"]
#: Paths per thread-pool task: large enough that a task costs far more than its scheduling.
CHUNK = 4096
#: Examples listed in messages and the summary.
EXAMPLES = 5


def _stat_chunk(paths: Sequence[str]) -> np.ndarray:
    """Status code of each path (:data:`FOUND`, :data:`MISSING`, :data:`UNREADABLE`)."""
    out = np.empty(len(paths), dtype=np.int8)
    for position, path in enumerate(paths):
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            out[position] = MISSING
            continue
        except (OSError, ValueError):
            out[position] = UNREADABLE
            continue
        usable = stat.S_ISREG(info.st_mode) and info.st_size > 0 and os.access(path, os.R_OK)
        out[position] = FOUND if usable else UNREADABLE
    return out


def stat_paths(paths: Sequence[str], *, threads: int | None = None) -> np.ndarray:
    """Stat every path in parallel; never opens a file.

    Parameters
    ----------
    paths : sequence of str, length n_paths
    threads : int, optional
        Threads of the pool; default ``min(32, 4 * cpu_count)`` (stats wait on the disk
        more than on the CPU).

    Returns
    -------
    np.ndarray, shape (n_paths,), int8
        :data:`FOUND` (a regular, non-empty, readable file), :data:`MISSING` (no such file)
        or :data:`UNREADABLE` (a directory, an empty file, a special file, no permission).
    """
    paths = list(paths)
    if not paths:
        return np.zeros(0, dtype=np.int8)
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    if len(chunks) == 1:
        return _stat_chunk(chunks[0])
    workers = threads or min(32, 4 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(chunks)))) as pool:
        return np.concatenate(list(pool.map(_stat_chunk, chunks)))


def _reason(path: str) -> str:
    """The one-line reason a path is not usable audio, as :func:`stat_file` words it."""
    try:
        stat_file(path, what="audio")
    except PipelineError as error:
        return str(error)
    return f"audio {printable(repr(path))} changed while it was checked"


@dataclass(frozen=True, kw_only=True)
class FileCheck:
    """The result of :func:`check_audio_files`.

    Attributes
    ----------
    n_checked, n_found : int
        Paths checked, and those that are usable audio files.
    missing, unreadable : list of (str, str, str)
        ``(track_id, path, reason)`` of the paths that do not exist, and of those that exist
        but are not a readable, non-empty regular file; in table order.
    seconds : float
        Wall time of the check.
    """

    n_checked: int
    n_found: int
    missing: list[tuple[str, str, str]] = field(default_factory=list)
    unreadable: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_bad(self) -> int:
        """Tracks whose audio is missing or unreadable."""
        return len(self.missing) + len(self.unreadable)

    @property
    def bad_ids(self) -> set[str]:
        """Track ids of :attr:`missing` and :attr:`unreadable`."""
        return {t for t, _, _ in (*self.missing, *self.unreadable)}

    def failures(self) -> pd.DataFrame:
        """One failure row per bad track: :data:`FAILURE_COLUMNS`, stage ``check``."""
        rows = [
            (printable(t), path, "check", "error", reason)
            for t, path, reason in (*self.missing, *self.unreadable)
        ]
        return pd.DataFrame(rows, columns=FAILURE_COLUMNS).astype(str)

    def summary(self) -> dict[str, Any]:
        """Counts and the first :data:`EXAMPLES` paths of each kind, for JSON."""
        return {
            "checked": self.n_checked,
            "found": self.n_found,
            "missing": len(self.missing),
            "unreadable": len(self.unreadable),
            "seconds": round(self.seconds, 3),
            "missing_examples": [printable(p) for _, p, _ in self.missing[:EXAMPLES]],
            "unreadable_examples": [
                {"path": printable(p), "reason": r} for _, p, r in self.unreadable[:EXAMPLES]
            ],
        }


def check_audio_files(
    *, track_ids: Sequence[str], paths: Sequence[str], threads: int | None = None
) -> FileCheck:
    """Stat every audio path (:func:`stat_paths`) and explain the bad ones.

    Parameters
    ----------
    track_ids, paths : sequence of str, length n_tracks
        Parallel: each track's id and audio path.
    threads : int, optional
        Threads of the pool (:func:`stat_paths`).

    Returns
    -------
    FileCheck
    """
    start = time.perf_counter()
    track_ids, paths = [str(t) for t in track_ids], [str(p) for p in paths]
    codes = stat_paths(paths, threads=threads)
    missing = [
        (track_ids[i], paths[i], _reason(paths[i])) for i in np.flatnonzero(codes == MISSING)
    ]
    unreadable = [
        (track_ids[i], paths[i], _reason(paths[i])) for i in np.flatnonzero(codes == UNREADABLE)
    ]
    return FileCheck(
        n_checked=len(paths),
        n_found=int((codes == FOUND).sum()),
        missing=missing,
        unreadable=unreadable,
        seconds=time.perf_counter() - start,
    )


def _shown(paths: Sequence[str]) -> str:
    return ", ".join(f"'{printable(p)}'" for p in paths[:EXAMPLES])


def apply_file_check(
    records: pd.DataFrame,
    *,
    dataset: str,
    max_missing_fraction: float = DEFAULT_MAX_MISSING_FRACTION,
    hint: str = "",
    threads: int | None = None,
) -> tuple[pd.DataFrame, FileCheck, list[str]]:
    """Check every track's audio; stop, or leave out the bad tracks with a warning.

    Parameters
    ----------
    records : pd.DataFrame
        An adapter's records (``track_id``, ``path``, ...), in table order.
    dataset : str
        How messages name the dataset (``"dataset 'mtat' (magnatagatune, root '/data')"``).
    max_missing_fraction : float
        In [0, 1]: the largest fraction of tracks whose audio may be missing or unreadable.
    hint : str
        The likely cause when files are missing, appended to the message (the format's).
    threads : int, optional
        Threads of the stat pool.

    Returns
    -------
    records : pd.DataFrame
        The tracks whose audio is usable, index ``0..n-1``.
    check : FileCheck
    warnings : list of str
        One line when some tracks were left out; empty otherwise.

    Raises
    ------
    ConfigError
        No track's audio is usable, or the fraction of bad ones exceeds
        ``max_missing_fraction``: one line with the counts, the first bad paths and the hint.
    """
    if not (isinstance(max_missing_fraction, int | float) and 0 <= max_missing_fraction <= 1):
        raise ConfigError(
            f"{dataset}: max_missing_fraction {max_missing_fraction!r} must be a number in [0, 1]"
        )
    check = check_audio_files(
        track_ids=records["track_id"].tolist(), paths=records["path"].tolist(), threads=threads
    )
    if not check.n_bad:
        return records.reset_index(drop=True), check, []
    n = check.n_checked
    first = [p for _, p, _ in (*check.missing, *check.unreadable)]
    counts = f"{len(check.missing):,} of {n:,} audio files are missing"
    if check.unreadable:
        counts += f" and {len(check.unreadable):,} unreadable"
        first_reason = check.unreadable[0][2]
    else:
        first_reason = ""
    cause = f"; {hint}" if hint else ""
    if check.n_found == 0:
        detail = f" (e.g. {first_reason})" if not check.missing else ""
        raise ConfigError(
            f"{dataset}: none of the {n:,} audio files is usable: {counts}{detail}, first "
            f"{_shown(first)}; likely cause: a wrong 'root' (or audio folder option){cause}"
        )
    fraction = check.n_bad / n
    if fraction > max_missing_fraction:
        raise ConfigError(
            f"{dataset}: {counts} ({fraction:.1%}, more than max_missing_fraction "
            f"{max_missing_fraction:g}), first {_shown(first)}; likely cause: a partial "
            f"download or a wrong 'root'{cause}; raise max_missing_fraction to go on without "
            "them"
        )
    kept = records.loc[~records["track_id"].astype(str).isin(check.bad_ids)]
    warning = (
        f"{dataset}: {counts} ({fraction:.2%}); left out of the manifest, listed as failure "
        f"rows (stage 'check'): {_shown(first)}"
    )
    return kept.reset_index(drop=True), check, [warning]
