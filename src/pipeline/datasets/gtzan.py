"""GTZAN: one folder per genre, ``genres/<genre>/<genre>.000NN.wav``.

Layout::

    root/
      genres/blues/blues.00000.wav ... genres/rock/rock.00099.wav

(the original release has ``.au`` files, the common re-packagings ``.wav``; the Kaggle copy
uses ``genres_original/``, set ``genres_dir`` for it).

Conventions
-----------
- ``track_id`` is the file stem (``blues.00000``), ``tags`` is ``[<genre folder name>]``.
- ``split`` is ``None``: GTZAN has no official split; one is assigned later.
- ``artist`` is ``None`` and ``duration_s`` is NaN: GTZAN gives neither.
- Only files directly inside a genre folder with one of ``extensions`` count; hidden files
  (such as macOS ``._blues.00000.wav``) and other files are ignored. Known faulty files
  (``jazz.00054`` does not decode) are listed like any other and fail later, per track, in
  feature extraction.
- A file whose path is not valid UTF-8 (a Latin-1 name in a folder of one's own music) is
  left out with a warning naming it: the manifest, a Parquet table, holds UTF-8 text only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.datasets.formats import DatasetFormat
from pipeline.errors import ConfigError, printable, utf8_safe

__all__ = ["FORMAT", "load_records", "metadata_files"]

#: Defaults of the ``genres_dir`` and ``extensions`` options; the config schema gives the same
#: (a test checks that they agree).
DEFAULT_GENRES_DIR = "genres"
DEFAULT_EXTENSIONS = ("wav", "au")


def _extensions(options: Mapping[str, Any]) -> frozenset[str]:
    """The ``extensions`` option as lower-case suffixes with a leading dot."""
    value = options.get("extensions", DEFAULT_EXTENSIONS)
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(v, str) and v.strip(".") for v in value)
    ):
        raise ConfigError(
            f"gtzan option 'extensions' must be a non-empty list of file extensions such as "
            f"['wav', 'au'], got {value!r}"
        )
    return frozenset("." + v.strip().lstrip(".").lower() for v in value)


def _genres_dir(*, root: Path, options: Mapping[str, Any]) -> Path:
    value = options.get("genres_dir", DEFAULT_GENRES_DIR)
    if not isinstance(value, str | os.PathLike) or str(value) == "":
        raise ConfigError(
            f"gtzan option 'genres_dir' must be a non-empty path string, got {value!r}"
        )
    genres_dir = Path(value).expanduser()
    return genres_dir if genres_dir.is_absolute() else root / genres_dir


def metadata_files(*, root: Path, options: Mapping[str, Any]) -> list[Path]:
    """What :func:`load_records` lists besides the audio: the genre folders, sorted (a
    folder's modification time changes when a file is added or removed), or the genres
    folder itself while it holds none.
    """
    genres_dir = _genres_dir(root=Path(root), options=options)
    folders = sorted(p for p in genres_dir.iterdir() if p.is_dir()) if genres_dir.is_dir() else []
    return folders or [genres_dir]


def load_records(*, root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    """List GTZAN's genre folders, one row per audio file.

    Parameters
    ----------
    root : Path
        Dataset folder, the one that holds ``genres/``.
    options : Mapping[str, Any]
        The dataset's config entry. Keys read here (others are ignored):

        ``genres_dir`` : str, default ``"genres"``
            Folder of the genre folders, relative to ``root`` unless absolute.
        ``extensions`` : list of str, default ``["wav", "au"]``
            Audio file extensions to list (case-insensitive, with or without the dot).

    Returns
    -------
    pandas.DataFrame
        Shape ``(n_files, 6)``, columns ``track_id, path, tags, split, artist, duration_s``,
        sorted by genre then file name.

    Raises
    ------
    ConfigError
        ``genres_dir`` is missing or holds no audio file with the given extensions, or two
        files share a stem (e.g. ``blues.00000.wav`` and ``blues.00000.au``).
    """
    root = Path(root)
    genres_dir = _genres_dir(root=root, options=options)
    extensions = _extensions(options)
    if not genres_dir.is_dir():
        raise ConfigError(
            f"GTZAN genres folder '{genres_dir}' not found (option 'genres_dir', default "
            f"{DEFAULT_GENRES_DIR!r} under root '{root}')"
        )

    path_of: dict[str, Path] = {}
    genre_of: dict[str, str] = {}
    genre_dirs = sorted(
        (d for d in genres_dir.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.name,
    )
    not_utf8: list[Path] = []
    for genre_dir in genre_dirs:
        files = sorted(genre_dir.iterdir(), key=lambda f: f.name)
        for file in files:
            if file.name.startswith(".") or file.suffix.lower() not in extensions:
                continue
            if not file.is_file():
                continue
            if utf8_safe(file) != str(file):
                not_utf8.append(file)
                continue
            track_id = file.stem
            if track_id in path_of:
                raise ConfigError(
                    f"GTZAN track id {track_id!r} (the file stem) is used twice: "
                    f"'{path_of[track_id]}' and '{file}'; remove one or narrow 'extensions'"
                )
            path_of[track_id] = file
            genre_of[track_id] = genre_dir.name
    if not path_of:
        raise ConfigError(
            f"GTZAN genres folder '{genres_dir}' holds no audio file with extension "
            f"{sorted(extensions)} inside a genre folder (expected "
            f"'{genres_dir}/<genre>/<genre>.00000.wav'); check 'genres_dir' and 'extensions'"
        )

    n = len(path_of)
    frame = pd.DataFrame(
        {
            "track_id": pd.Series(list(path_of), dtype="str"),
            "path": pd.Series([str(p) for p in path_of.values()], dtype="str"),
            "tags": pd.Series([[genre] for genre in genre_of.values()], dtype=object),
            "split": pd.Series([None] * n, dtype=object),
            "artist": pd.Series([None] * n, dtype=object),
            "duration_s": pd.Series([math.nan] * n, dtype="float64"),
        }
    )
    if not_utf8:
        shown = ", ".join(f"'{printable(p)}'" for p in not_utf8[:5])
        frame.attrs["warnings"] = [
            f"GTZAN: {len(not_utf8)} audio file(s) left out because their names are not valid "
            f"UTF-8 (the manifest holds UTF-8 text): {shown}; rename them, e.g. "
            "`convmv -f latin1 -t utf8 -r --notest <genres folder>`"
        ]
    return frame


FORMAT = DatasetFormat(
    name="gtzan",
    requires=("root",),
    load_records=load_records,
    metadata_files=metadata_files,
    paths=(("genres_dir", "folder"),),
)
