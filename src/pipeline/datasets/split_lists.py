"""Splits read from list files, for any adapter: reproduce a paper's split row for row.

The config entry's ``split_lists: {train: FILE, valid: FILE, test: FILE}`` names one file per
split (relative to the dataset's ``root`` unless absolute). Each holds audio paths, one per
entry, in one of these forms:

- a text file, one path per line, relative to ``root`` or to any folder below it (GTZAN's
  fault-filtered lists: ``blues/blues.00012.wav``, which lies under ``root/genres/``); blank
  lines and lines starting with ``#`` are skipped; in a line with TABs the last field is the
  path;
- a NumPy ``.npy`` array of strings (the lists of Won et al. 2020,
  ``split/mtat/train.npy``: ``"<row>\\t<folder>/<clip>.mp3"``); the part after the last TAB
  is the path.

An entry names the track whose path, relative to ``root``, equals it or ends with ``/`` and
the entry; when no track matches that way, the entry without its extension is compared with
the paths without theirs (a list of ``.wav`` names against the original ``.au`` files).
Tracks in no list leave the dataset; entries that match no track are counted and the first
ones listed (:func:`apply_split_lists`' report and warning).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError, printable

__all__ = ["LIST_SPLITS", "apply_split_lists", "read_split_list", "split_list_paths"]

#: The splits a ``split_lists`` entry names, all three required.
LIST_SPLITS = ("train", "valid", "test")
EXAMPLES = 5


def split_list_paths(*, root: Path, value: Any) -> dict[str, Path]:
    """The ``split_lists`` option as ``{split: path}``, relative paths under ``root``.

    Raises
    ------
    ConfigError
        ``value`` is not a mapping of exactly ``train``, ``valid`` and ``test`` to paths.
    """
    if not isinstance(value, Mapping) or sorted(value) != sorted(LIST_SPLITS):
        raise ConfigError(
            f"split_lists must map exactly {list(LIST_SPLITS)} to list files, got {value!r}"
        )
    out = {}
    for split in LIST_SPLITS:
        path = value[split]
        if not isinstance(path, str | os.PathLike) or str(path) == "":
            raise ConfigError(f"split_lists.{split} must be a path string, got {path!r}")
        path = Path(path).expanduser()
        out[split] = path if path.is_absolute() else Path(root) / path
    return out


def _normalise(entry: str) -> str:
    """An entry as a relative POSIX path: last TAB field, ``\\`` as ``/``, no ``./`` or ``/``."""
    entry = entry.split("\t")[-1].strip().replace("\\", "/")
    while entry.startswith("./"):
        entry = entry[2:]
    return entry.lstrip("/")


def read_split_list(path: Path) -> list[str]:
    """The entries of one list file (module docstring), in file order.

    Returns
    -------
    list of str
        Relative POSIX paths.

    Raises
    ------
    ConfigError
        The file is missing, not UTF-8 text, or a ``.npy`` file that is not an array of
        strings (object arrays are refused: loading them would run pickled code).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"split list '{printable(str(path))}' not found (option split_lists)")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise ConfigError(
                f"split list '{printable(str(path))}' is not a NumPy array of strings: {error}"
            ) from error
        if array.dtype.kind not in "US":
            raise ConfigError(
                f"split list '{printable(str(path))}' holds {array.dtype} values, expected strings"
            )
        texts = [
            v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.ravel().tolist()
        ]
    else:
        try:
            texts = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as error:
            raise ConfigError(
                f"split list '{printable(str(path))}' is not UTF-8 text: {error}"
            ) from error
        texts = [t for t in texts if t.strip() and not t.lstrip().startswith("#")]
    return [e for e in (_normalise(t) for t in texts) if e]


def _relative(path: str, *, root: str) -> str:
    """``path`` relative to ``root`` as POSIX, or the path itself when outside it."""
    try:
        relative = os.path.relpath(path, root)
    except ValueError:
        return PurePosixPath(path).as_posix()
    if relative.startswith(".."):
        return PurePosixPath(path).as_posix()
    return PurePosixPath(Path(relative).as_posix()).as_posix()


def _stem_path(path: str) -> str:
    pure = PurePosixPath(path)
    return str(pure.with_suffix("")) if pure.suffix else path


class _Matcher:
    """Find the track an entry names: by file name first, then by path suffix."""

    def __init__(self, relative: list[str]) -> None:
        self.relative = relative
        self.by_name: dict[str, list[int]] = {}
        self.by_stem: dict[str, list[int]] = {}
        for position, path in enumerate(relative):
            name = PurePosixPath(path).name
            self.by_name.setdefault(name, []).append(position)
            self.by_stem.setdefault(_stem_path(name), []).append(position)

    @staticmethod
    def _ends_with(path: str, entry: str) -> bool:
        return path == entry or path.endswith("/" + entry)

    def find(self, entry: str, *, source: Path) -> int | None:
        name = PurePosixPath(entry).name
        hits = [i for i in self.by_name.get(name, []) if self._ends_with(self.relative[i], entry)]
        if not hits:
            stem = _stem_path(entry)
            hits = [
                i
                for i in self.by_stem.get(_stem_path(name), [])
                if self._ends_with(_stem_path(self.relative[i]), stem)
            ]
        if len(hits) > 1:
            shown = ", ".join(f"'{printable(self.relative[i])}'" for i in hits[:EXAMPLES])
            raise ConfigError(
                f"split list '{printable(str(source))}': entry '{printable(entry)}' matches "
                f"{len(hits)} tracks ({shown}); write it with more of its folders"
            )
        return hits[0] if hits else None


def apply_split_lists(
    records: pd.DataFrame, *, lists: Mapping[str, Path], root: Path | str
) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """Give each track the split of the list that names it; leave out the others.

    Parameters
    ----------
    records : pd.DataFrame
        An adapter's records (``track_id``, ``path``, ``split``, ...).
    lists : mapping
        ``{split: list file}`` (:func:`split_list_paths`).
    root : Path or str
        The dataset root the entries are relative to (or to a folder below it).

    Returns
    -------
    records : pd.DataFrame
        The listed tracks, in table order, ``split`` from the lists; index ``0..n-1``.
    report : dict
        ``lists`` (split -> file), ``entries`` and ``matched`` (split -> count),
        ``tracks_in_no_list``, ``not_in_dataset`` and ``not_in_dataset_examples``.
    warnings : list of str
        One line when list entries match no track, one when tracks are in no list.

    Raises
    ------
    ConfigError
        A list file cannot be read, an entry matches several tracks, a track is in two
        lists, or no entry matches any track (the lists belong to another dataset or root).
    """
    root = os.path.abspath(str(root))
    relative = [_relative(os.path.abspath(str(p)), root=root) for p in records["path"].astype(str)]
    matcher = _Matcher(relative)
    split_of: dict[int, str] = {}
    list_of: dict[int, Path] = {}
    entries: dict[str, int] = {}
    matched: dict[str, int] = {}
    unknown: list[str] = []
    for split in LIST_SPLITS:
        source = Path(lists[split])
        names = read_split_list(source)
        entries[split] = len(names)
        matched[split] = 0
        for entry in names:
            position = matcher.find(entry, source=source)
            if position is None:
                unknown.append(entry)
                continue
            if position in split_of:
                if split_of[position] == split:
                    continue  # listed twice in one file: harmless
                raise ConfigError(
                    f"track '{printable(relative[position])}' is in two split lists: "
                    f"'{printable(str(list_of[position]))}' ({split_of[position]}) and "
                    f"'{printable(str(source))}' ({split})"
                )
            split_of[position] = split
            list_of[position] = source
            matched[split] += 1
    if not split_of:
        raise ConfigError(
            f"split_lists: none of the {sum(entries.values()):,} entries names a track of the "
            f"dataset (first: {', '.join(repr(e) for e in unknown[:EXAMPLES])}; a track path "
            f"relative to root is e.g. '{printable(relative[0]) if relative else ''}'); do the "
            "lists belong to this dataset and root?"
        )
    empty = [split for split in LIST_SPLITS if matched[split] == 0]
    if empty:
        split = empty[0]
        raise ConfigError(
            f"split_lists.{split}: none of the {entries[split]:,} entries of "
            f"'{printable(str(lists[split]))}' names a track of the dataset, so the {split} "
            "split would be empty"
        )
    keep = sorted(split_of)
    out = records.iloc[keep].copy()
    out["split"] = [split_of[i] for i in keep]
    n_unlisted = len(records) - len(keep)
    report: dict[str, Any] = {
        "lists": {s: printable(str(lists[s])) for s in LIST_SPLITS},
        "entries": entries,
        "matched": matched,
        "tracks_in_no_list": n_unlisted,
        "not_in_dataset": len(unknown),
        "not_in_dataset_examples": [printable(e) for e in unknown[:EXAMPLES]],
    }
    warnings = []
    if unknown:
        warnings.append(
            f"split_lists: {len(unknown):,} list entries name no track of the dataset "
            f"(ignored): {', '.join(repr(printable(e)) for e in unknown[:EXAMPLES])}"
        )
    if n_unlisted:
        warnings.append(
            f"split_lists: {n_unlisted:,} tracks of the dataset are in no list and are left out"
        )
    return out.reset_index(drop=True), report, warnings
