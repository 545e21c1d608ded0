"""A generic CSV/TSV table of audio paths and tags, for catalogues and personal collections.

Example (``tracks.csv``, comma-separated, tags joined with ``;``)::

    path,tags,split,artist,duration_s
    songs/intro.flac,piano;calm,train,Ada,31.5
    songs/café.ogg,,test,,
    /data/other/x.mp3,rock,,,

Conventions
-----------
- ``path`` (column ``path_column``) is relative to the table file's folder unless absolute.
- ``tags`` (column ``tags_column``) is split on ``tag_sep``; names are stripped, empty names
  dropped, duplicates removed (first kept). An empty cell gives ``[]``.
- Optional columns: ``track_id`` (default, and for empty cells: the path as written without
  its extension, ``songs/intro``), ``split`` (``train``, ``valid``, ``test``; ``validation``
  and ``val`` read as ``valid``; empty gives ``None``), ``artist`` (empty gives ``None``),
  ``duration_s`` (seconds; empty gives NaN). Other columns are ignored.
- The file is read as UTF-8 (a byte-order mark is tolerated), so non-ASCII names work.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import pandas as pd

from pipeline.datasets._common import parse_duration, separators
from pipeline.datasets.formats import DatasetFormat
from pipeline.errors import ConfigError

__all__ = ["FORMAT", "load_records", "metadata_files"]

#: Defaults of the ``sep``, ``tag_sep``, ``path_column`` and ``tags_column`` options; the
#: config schema gives the same (a test checks that they agree).
DEFAULT_SEP = ","
DEFAULT_TAG_SEP = ";"
DEFAULT_PATH_COLUMN = "path"
DEFAULT_TAGS_COLUMN = "tags"

SPLIT_NAMES = {
    "train": "train",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "test": "test",
}


def _text_option(*, options: Mapping[str, Any], key: str, default: str) -> str:
    """A column-name option (``path_column``, ``tags_column``) as a non-empty string."""
    value = options.get(key, default)
    if not isinstance(value, str) or value == "":
        raise ConfigError(f"table option {key!r} must be a non-empty string, got {value!r}")
    return value


def _track_id_from_path(written: str) -> str:
    """Default track id: the path as written, without its extension, with ``/`` kept."""
    path = PurePosixPath(written)
    return str(path.with_suffix("")) if path.name else written


def _table(*, root: Path, options: Mapping[str, Any]) -> Path:
    """The ``table`` option, a required path, relative to ``root`` unless absolute."""
    if "table" not in options or options["table"] in (None, ""):
        raise ConfigError(
            "table option 'table' is required: the CSV/TSV file of audio paths and tags, "
            f"relative to root '{root}' unless absolute"
        )
    value = options["table"]
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(f"table option 'table' must be a path string, got {value!r}")
    table = Path(value).expanduser()
    return table if table.is_absolute() else root / table


def metadata_files(*, root: Path, options: Mapping[str, Any]) -> list[Path]:
    """The files :func:`load_records` reads besides the audio: the table."""
    return [_table(root=Path(root), options=options)]


def load_records(*, root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    """Read a CSV/TSV table of ``path, tags`` (plus optional columns), one row per track.

    Parameters
    ----------
    root : Path
        Dataset folder; ``table`` is relative to it unless absolute.
    options : Mapping[str, Any]
        The dataset's config entry. Keys read here (others are ignored):

        ``table`` : str, required
            The table file.
        ``sep`` : str, default ``","``
            Column separator, one character; ``"\\t"`` for TSV.
        ``tag_sep`` : str, default ``";"``
            Separator between the tags of one cell, one character, not ``sep``.
        ``path_column`` : str, default ``"path"``
            Column of audio paths, relative to the table's folder unless absolute.
        ``tags_column`` : str, default ``"tags"``
            Column of tags.

    Returns
    -------
    pandas.DataFrame
        Shape ``(n_rows, 6)``, columns ``track_id, path, tags, split, artist, duration_s``,
        in table order.

    Raises
    ------
    ConfigError
        ``table`` is not set or not found, the table lacks the path or tags column, a path
        cell is empty, a ``split`` or ``duration_s`` cell is invalid, or a track id repeats.
    """
    root = Path(root)
    table = _table(root=root, options=options)
    sep, tag_sep = separators(
        options=options,
        key="table option '{}'",
        default_sep=DEFAULT_SEP,
        default_tag_sep=DEFAULT_TAG_SEP,
    )
    path_column = _text_option(options=options, key="path_column", default=DEFAULT_PATH_COLUMN)
    tags_column = _text_option(options=options, key="tags_column", default=DEFAULT_TAGS_COLUMN)
    if not table.is_file():
        raise ConfigError(f"table file '{table}' not found (option 'table')")

    try:
        with warnings.catch_warnings():
            # a row longer than the header would silently lose cells: make that an error
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                table,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                index_col=False,
                encoding="utf-8-sig",
            )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserWarning) as error:
        raise ConfigError(
            f"cannot read table '{table}' as UTF-8 text with separator {sep!r}: {error}"
        ) from error
    frame.columns = [str(column).strip() for column in frame.columns]
    for key, column in (("path_column", path_column), ("tags_column", tags_column)):
        if column not in frame.columns:
            raise ConfigError(
                f"table '{table}' has no column {column!r} (option {key!r}); columns found: "
                f"{list(frame.columns)} with separator {sep!r}"
            )

    base = table.parent
    records: dict[str, list[Any]] = {c: [] for c in ("track_id", "path", "tags", "split")}
    records["artist"], durations = [], []
    line_of: dict[str, int] = {}
    for position, row in enumerate(frame.to_dict(orient="records")):
        line = position + 2  # 1-based, after the header line
        written = row[path_column].strip()
        if not written:
            raise ConfigError(f"table '{table}', line {line}: empty {path_column!r} cell")
        track_id = row.get("track_id", "").strip() or _track_id_from_path(written)
        if track_id in line_of:
            raise ConfigError(
                f"table '{table}': track id {track_id!r} appears twice (lines "
                f"{line_of[track_id]} and {line}); give rows distinct 'track_id' values"
            )
        line_of[track_id] = line
        split_text = row.get("split", "").strip()
        split = SPLIT_NAMES.get(split_text.lower()) if split_text else None
        if split_text and split is None:
            raise ConfigError(
                f"table '{table}', line {line}: split {split_text!r} is not one of "
                "'train', 'valid', 'test' (or empty for none)"
            )
        tags = [tag.strip() for tag in row[tags_column].split(tag_sep)]
        path = PurePath(written)
        records["track_id"].append(track_id)
        records["path"].append(str(path if path.is_absolute() else base / written))
        records["tags"].append(list(dict.fromkeys(tag for tag in tags if tag)))
        records["split"].append(split)
        records["artist"].append(row.get("artist", "").strip() or None)
        durations.append(
            parse_duration(
                text=row.get("duration_s", "").strip(),
                where=f"table '{table}', line {line}",
                column="duration_s",
            )
        )

    return pd.DataFrame(
        {
            "track_id": pd.Series(records["track_id"], dtype="str"),
            "path": pd.Series(records["path"], dtype="str"),
            "tags": pd.Series(records["tags"], dtype=object),
            "split": pd.Series(records["split"], dtype=object),
            "artist": pd.Series(records["artist"], dtype=object),
            "duration_s": pd.Series(durations, dtype="float64"),
        }
    )


FORMAT = DatasetFormat(
    name="table",
    requires=("root", "table"),
    load_records=load_records,
    metadata_files=metadata_files,
    paths=(("table", "file"),),
)
