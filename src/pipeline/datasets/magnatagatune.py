"""MagnaTagATune: ``annotations_final.csv`` with one binary column per tag.

Layout (the files as distributed)::

    root/
      annotations_final.csv        TAB-separated despite its name, fields usually "quoted"
      mp3/0/ ... mp3/f/            the clips, in 16 folders named 0-9 and a-f

The annotation file has a ``clip_id`` column, 188 binary tag columns (``guitar``,
``classical``, ``no voice``, ...) and an ``mp3_path`` column such as
``f/american_bach_soloists-j_s__bach_solo_cantatas-01-bwv54__i_aria-30-59.mp3``.

Conventions
-----------
- ``track_id`` is the ``clip_id`` as a string.
- ``tags`` are all tag columns holding 1, in column order; choosing a vocabulary (top 50)
  happens later, not here.
- ``split`` is the split common in the literature, by the clip's first folder: ``0``-``9``,
  ``a``, ``b`` are train, ``c`` is valid, ``d``, ``e``, ``f`` are test. A clip in any other
  folder gets ``None`` (split assigned later) and a warning.
- ``artist`` is the artist slug: the file name's first ``-``-separated field
  (``american_bach_soloists`` above). MagnaTagATune has no artist column in this file, and
  the slug is what keeps clips of one artist in one split when splits are re-drawn.
- ``duration_s`` is NaN: the file does not give it (clips are about 29.1 s).
- Rows with an empty ``mp3_path`` are skipped and counted in one ``logging`` warning.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from pipeline.datasets._common import option_path
from pipeline.datasets.formats import DatasetFormat
from pipeline.errors import ConfigError

__all__ = ["FORMAT", "load_records", "metadata_files", "split_of_folder"]

logger = logging.getLogger(__name__)

ID_COLUMN = "clip_id"
PATH_COLUMN = "mp3_path"
#: Defaults of the ``annotations`` and ``audio_dir`` options; the config schema gives the
#: same (a test checks that they agree).
DEFAULT_ANNOTATIONS = "annotations_final.csv"
DEFAULT_AUDIO_DIR = "mp3"

_SPLIT_BY_FOLDER: dict[str, str] = {
    **{folder: "train" for folder in "0123456789ab"},
    "c": "valid",
    **{folder: "test" for folder in "def"},
}


def split_of_folder(*, mp3_path: str) -> str | None:
    """Official split of a clip from its first folder.

    Parameters
    ----------
    mp3_path : str
        The ``mp3_path`` field, e.g. ``"f/artist-album-01-title-30-59.mp3"``.

    Returns
    -------
    str or None
        ``"train"`` for folders ``0``-``9``, ``a``, ``b``; ``"valid"`` for ``c``; ``"test"``
        for ``d``, ``e``, ``f``; ``None`` for anything else.
    """
    parts = PurePosixPath(mp3_path).parts
    if len(parts) < 2:
        return None
    return _SPLIT_BY_FOLDER.get(parts[0].lower())


def _artist_of(mp3_path: str) -> str | None:
    """Artist slug: the file name's first ``-``-separated field, or None when empty."""
    artist = PurePosixPath(mp3_path).name.split("-", 1)[0].strip()
    return artist or None


def _annotations(*, root: Path, options: Mapping[str, Any]) -> Path:
    return option_path(
        format="magnatagatune",
        root=root,
        options=options,
        key="annotations",
        default=DEFAULT_ANNOTATIONS,
    )


def metadata_files(*, root: Path, options: Mapping[str, Any]) -> list[Path]:
    """The files :func:`load_records` reads besides the audio: the annotation table."""
    return [_annotations(root=Path(root), options=options)]


def load_records(*, root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    """Read MagnaTagATune's ``annotations_final.csv`` into one row per clip.

    Parameters
    ----------
    root : Path
        Dataset folder.
    options : Mapping[str, Any]
        The dataset's config entry. Keys read here (others are ignored):

        ``annotations`` : str, default ``"annotations_final.csv"``
            The annotation file, relative to ``root`` unless absolute.
        ``audio_dir`` : str, default ``"mp3"``
            Folder the ``mp3_path`` values are relative to, relative to ``root`` unless
            absolute.

    Returns
    -------
    pandas.DataFrame
        Shape ``(n_clips, 6)``, columns ``track_id, path, tags, split, artist, duration_s``
        (see the module docstring for how each is derived).

    Raises
    ------
    ConfigError
        The annotation file is missing or unreadable, lacks ``clip_id`` or ``mp3_path``, a tag
        cell is not 0 or 1, or a ``clip_id`` appears twice.
    """
    root = Path(root)
    annotations = _annotations(root=root, options=options)
    audio_dir = option_path(
        format="magnatagatune",
        root=root,
        options=options,
        key="audio_dir",
        default=DEFAULT_AUDIO_DIR,
    )
    if not annotations.is_file():
        raise ConfigError(
            f"MagnaTagATune annotation file '{annotations}' not found "
            f"(option 'annotations', default {DEFAULT_ANNOTATIONS!r} under root '{root}')"
        )
    try:
        with warnings.catch_warnings():
            # a row longer than the header would silently lose cells: make that an error
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(
                annotations,
                sep="\t",
                dtype=str,
                keep_default_na=False,
                index_col=False,
                encoding="utf-8",
            )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserWarning) as error:
        raise ConfigError(
            f"cannot read MagnaTagATune annotation file '{annotations}' as TAB-separated text: "
            f"{error}"
        ) from error
    table.columns = [str(column).strip() for column in table.columns]
    for required in (ID_COLUMN, PATH_COLUMN):
        if required not in table.columns:
            raise ConfigError(
                f"MagnaTagATune annotation file '{annotations}' has no column {required!r}; "
                f"it needs {ID_COLUMN!r}, {PATH_COLUMN!r} and the tag columns "
                f"(first columns found: {list(table.columns[:5])}; is it TAB-separated?)"
            )
    tag_names = [c for c in table.columns if c not in (ID_COLUMN, PATH_COLUMN)]

    table[ID_COLUMN] = table[ID_COLUMN].str.strip()
    table[PATH_COLUMN] = table[PATH_COLUMN].str.strip()
    has_path = table[PATH_COLUMN] != ""
    n_skipped = int((~has_path).sum())
    if n_skipped:
        logger.warning(
            "MagnaTagATune: skipped %d of %d rows of '%s' with an empty %s",
            n_skipped,
            len(table),
            annotations,
            PATH_COLUMN,
        )
    table = table.loc[has_path]

    ids = table[ID_COLUMN]
    if (ids == "").any():
        line = int(ids.index[ids == ""][0]) + 2  # 1-based, after the header line
        raise ConfigError(
            f"MagnaTagATune annotation file '{annotations}' has an empty clip_id on line {line}"
        )
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise ConfigError(
            f"MagnaTagATune annotation file '{annotations}' lists clip_id "
            f"{duplicated.iloc[0]!r} more than once; clip ids must be unique"
        )

    tag_cells = table[tag_names].apply(lambda column: column.str.strip())
    is_one = tag_cells.isin(["1", "1.0"])
    bad = ~(is_one | tag_cells.isin(["0", "0.0"]))
    if bad.to_numpy().any():
        row, column = next(zip(*bad.to_numpy().nonzero(), strict=True))
        raise ConfigError(
            f"MagnaTagATune annotation file '{annotations}': clip_id {ids.iloc[row]!r}, tag "
            f"column {tag_names[column]!r} holds {tag_cells.iat[row, column]!r}; "
            "allowed are 0 and 1"
        )
    tag_array = is_one.to_numpy()
    tags = [[tag_names[j] for j in row.nonzero()[0]] for row in tag_array]

    mp3_paths = table[PATH_COLUMN].tolist()
    splits = [split_of_folder(mp3_path=p) for p in mp3_paths]
    n_unsplit = sum(split is None for split in splits)
    if n_unsplit:
        logger.warning(
            "MagnaTagATune: %d clips of '%s' are not in a folder 0-9/a-f; their split is None",
            n_unsplit,
            annotations,
        )
    return pd.DataFrame(
        {
            "track_id": pd.Series(ids.tolist(), dtype="str"),
            "path": pd.Series([str(audio_dir / p) for p in mp3_paths], dtype="str"),
            "tags": pd.Series(tags, dtype=object),
            "split": pd.Series(splits, dtype=object),
            "artist": pd.Series([_artist_of(p) for p in mp3_paths], dtype=object),
            "duration_s": pd.Series([math.nan] * len(mp3_paths), dtype="float64"),
        }
    )


FORMAT = DatasetFormat(
    name="magnatagatune",
    requires=("root",),
    load_records=load_records,
    metadata_files=metadata_files,
    paths=(("annotations", "file"), ("audio_dir", "folder")),
)
