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

Splits (option ``split_scheme``)
--------------------------------
- ``folders`` (default): every clip, by folder as above. The published counts (MARBLE):
  18,706 / 1,825 / 5,329 = 25,860 clips; the file has 25,863 rows, and three of its mp3
  files are empty (0 bytes), which the manifest step's file check leaves out with a failure
  row each.
- ``clean``: the split of Won et al. 2020 ("Evaluation of CNN-based automatic music tagging
  models") and most later papers: the 50 most frequent tags over all clips (ties broken by
  name), only the clips with at least one of them, tags limited to those 50, the same
  folders. The published counts: 15,247 / 1,529 / 4,332 = 21,108 clips. The adapter reports
  the clips left out in ``attrs["report"]`` (the manifest summary's ``adapter``). Won's
  lists (``split/mtat/*.npy``; their README) also left out the clips with less than 29.1 s
  of audio, which this rule keeps (the window is padded): give those lists as
  ``split_lists`` to reproduce the split row for row.

These numbers are the published ones: the real ``annotations_final.csv`` cannot be downloaded
where this code is tested, so the tests check the rules (top-50 by frequency, at least one
tag, folders) on fixtures in the file's exact layout, not these totals.
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

__all__ = [
    "CLEAN_TOP_N",
    "FORMAT",
    "SPLIT_SCHEMES",
    "load_records",
    "metadata_files",
    "split_name",
    "split_of_folder",
]

logger = logging.getLogger(__name__)

ID_COLUMN = "clip_id"
PATH_COLUMN = "mp3_path"
#: Defaults of the ``annotations`` and ``audio_dir`` options; the config schema gives the
#: same (a test checks that they agree).
DEFAULT_ANNOTATIONS = "annotations_final.csv"
DEFAULT_AUDIO_DIR = "mp3"
#: The ``split_scheme`` option's values; absent means ``folders``.
SPLIT_SCHEMES = ("folders", "clean")
#: Tags of the clean split (Won et al. 2020): the most frequent 50.
CLEAN_TOP_N = 50

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


def _split_scheme(options: Mapping[str, Any]) -> str:
    value = options.get("split_scheme", "folders")
    if value not in SPLIT_SCHEMES:
        raise ConfigError(
            f"magnatagatune option 'split_scheme' is {value!r}; allowed are {list(SPLIT_SCHEMES)}"
        )
    return str(value)


def split_name(*, entry: Mapping[str, Any]) -> str:
    """The split a config entry selects, in words (the manifest summary, the leaderboard)."""
    if _split_scheme(entry) == "clean":
        return "clean (Won et al. 2020: top-50 tags, folders 0-b/c/d-f)"
    return "folders (0-b/c/d-f, all clips)"


def _top_tags(tags: list[list[str]], *, n: int) -> list[str]:
    """The ``n`` tags on most clips, ties broken by name."""
    counts: dict[str, int] = {}
    for row in tags:
        for tag in row:
            counts[tag] = counts.get(tag, 0) + 1
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


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
        ``split_scheme`` : {"folders", "clean"}, default ``"folders"``
            Every clip, or the clean split of Won et al. 2020 (module docstring).

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
    scheme = _split_scheme(options)
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
    ids_list = ids.tolist()
    report: dict[str, Any] = {"split_scheme": scheme, "rows": len(ids_list)}
    if scheme == "clean":
        top = _top_tags(tags, n=CLEAN_TOP_N)
        known = set(top)
        tags = [[t for t in row if t in known] for row in tags]
        keep = [i for i, row in enumerate(tags) if row]
        report["top_tags"] = top
        report["clips_without_top_tag"] = len(tags) - len(keep)
        ids_list = [ids_list[i] for i in keep]
        mp3_paths = [mp3_paths[i] for i in keep]
        tags = [tags[i] for i in keep]
        splits = [splits[i] for i in keep]
    report["clips"] = {s: sum(split == s for split in splits) for s in ("train", "valid", "test")}
    frame = pd.DataFrame(
        {
            "track_id": pd.Series(ids_list, dtype="str"),
            "path": pd.Series([str(audio_dir / p) for p in mp3_paths], dtype="str"),
            "tags": pd.Series(tags, dtype=object),
            "split": pd.Series(splits, dtype=object),
            "artist": pd.Series([_artist_of(p) for p in mp3_paths], dtype=object),
            "duration_s": pd.Series([math.nan] * len(mp3_paths), dtype="float64"),
        }
    )
    frame.attrs["report"] = report
    return frame


FORMAT = DatasetFormat(
    name="magnatagatune",
    requires=("root",),
    load_records=load_records,
    metadata_files=metadata_files,
    paths=(("annotations", "file"), ("audio_dir", "folder")),
    missing_hint="the clips must lie at <root>/<audio_dir>/<mp3_path> (audio_dir defaults to "
    "mp3: the folders 0-f of the joined mp3.zip.001-003 unpacked into <root>/mp3/)",
    split_name=split_name,
)
