"""FMA (Free Music Archive): ``fma_metadata/tracks.csv`` and ``fma_<subset>/AAA/AAABBB.mp3``.

Layout (the archives of the dataset's repository, unpacked side by side)::

    root/
      fma_metadata/tracks.csv     comma-separated, a two-row column header, then a row
                                  holding only "track_id"; quoted cells may span lines
      fma_metadata/genres.csv     genre_id,#tracks,parent,title,top_level
      fma_small/000/000002.mp3    track id zero-padded to 6 digits, folder = its first 3
      fma_medium/ ... fma_large/ ... fma_full/ ...

``tracks.csv`` is a pandas table with two column levels, written by ``DataFrame.to_csv``:
the first header row names the group (``album``, ``artist``, ``set``, ``track``), the second
the field (``split``, ``subset``, ``genre_top``, ``genres_all``, ...), and the third row is
the index's name, ``track_id``, with empty cells after it. It is read as
``pd.read_csv(path, index_col=0, header=[0, 1])`` reads it, cells kept as text.

Conventions
-----------
- Only the tracks of the chosen ``subset`` (``set/subset``; the subsets are nested: small
  within medium within large, and full holds every track, untrimmed): ``small`` keeps
  ``subset == small``, ``medium`` keeps small and medium, ``large`` and ``full`` keep all.
- ``track_id`` is the zero-padded id (``000002``), ``path`` is
  ``audio_dir/000/000002.mp3`` (``audio_dir`` defaults to ``fma_<subset>``).
- ``split`` is the official ``set/split``: ``training``, ``validation``, ``test`` give
  ``train``, ``valid``, ``test``; an empty cell gives None (drawn later).
- ``tags``: with ``genre_tags: top`` the top-level genre (``track/genre_top``, e.g.
  ``Hip-Hop``; empty for many tracks of large and full: they get no tag); with ``all`` every
  genre of the track and its ancestors (``track/genres_all``, a list such as ``[21, 811]``),
  as their ``genres.csv`` titles.
- ``artist`` is ``artist/id``; ``duration_s`` is ``track/duration`` for ``full`` (whole
  tracks) and NaN for the 30 s clips of the other subsets.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.datasets._common import option_path
from pipeline.datasets.formats import DatasetFormat
from pipeline.errors import ConfigError

__all__ = [
    "FORMAT",
    "GENRE_TAGS",
    "SUBSETS",
    "audio_relative_path",
    "load_records",
    "metadata_files",
    "read_tracks",
]

#: The ``subset`` option's values, and the ``set/subset`` values each one keeps.
SUBSETS: dict[str, tuple[str, ...]] = {
    "small": ("small",),
    "medium": ("small", "medium"),
    "large": ("small", "medium", "large"),
    "full": ("small", "medium", "large"),
}
#: The ``genre_tags`` option's values.
GENRE_TAGS = ("top", "all")
#: Defaults of the options; the config schema gives the same (a test checks that they agree).
DEFAULT_SUBSET = "small"
DEFAULT_METADATA_DIR = "fma_metadata"
DEFAULT_GENRE_TAGS = "top"
SPLITS = {"training": "train", "validation": "valid", "test": "test"}
#: The columns read from tracks.csv: (group, field).
COLUMNS = {
    "subset": ("set", "subset"),
    "split": ("set", "split"),
    "genre_top": ("track", "genre_top"),
    "genres_all": ("track", "genres_all"),
    "duration": ("track", "duration"),
    "artist": ("artist", "id"),
}
_GENRE_ID = re.compile(r"\d+")


def audio_relative_path(track_id: int) -> str:
    """``AAA/AAABBB.mp3``: the id zero-padded to 6 digits, in the folder of its first 3."""
    padded = f"{track_id:06d}"
    return f"{padded[:3]}/{padded}.mp3"


def _choice(options: Mapping[str, Any], *, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = options.get(key, default)
    if value not in allowed:
        raise ConfigError(f"fma option {key!r} is {value!r}; allowed are {list(allowed)}")
    return str(value)


def _metadata_dir(*, root: Path, options: Mapping[str, Any]) -> Path:
    return option_path(
        format="fma", root=root, options=options, key="metadata_dir", default=DEFAULT_METADATA_DIR
    )


def metadata_files(*, root: Path, options: Mapping[str, Any]) -> list[Path]:
    """The files :func:`load_records` reads besides the audio: tracks.csv, genres.csv."""
    folder = _metadata_dir(root=Path(root), options=options)
    return [folder / "tracks.csv", folder / "genres.csv"]


def read_tracks(path: Path) -> pd.DataFrame:
    """``tracks.csv`` as text cells, one row per track, the columns of :data:`COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        Index: the integer track ids; columns ``subset, split, genre_top, genres_all,
        duration, artist`` (str, empty where the file has nothing).

    Raises
    ------
    ConfigError
        The file is missing, cannot be parsed with its two header rows, lacks one of the
        columns of :data:`COLUMNS`, or a track id is not an integer.
    """
    if not path.is_file():
        raise ConfigError(f"FMA metadata file '{path}' not found (option 'metadata_dir')")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            table = pd.read_csv(
                path,
                index_col=0,
                header=[0, 1],
                dtype=str,
                keep_default_na=False,
                encoding="utf-8",
            )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise ConfigError(
            f"cannot read FMA metadata file '{path}' as a CSV with two header rows "
            f"(group, field): {error}"
        ) from error
    missing = [f"{g}/{f}" for g, f in COLUMNS.values() if (g, f) not in table.columns]
    if missing:
        raise ConfigError(
            f"FMA metadata file '{path}' has no column {', '.join(missing)}; expected the "
            "two header rows of fma_metadata/tracks.csv (first row e.g. 'set', 'track', "
            "second row e.g. 'subset', 'genre_top')"
        )
    out = pd.DataFrame({name: table[column] for name, column in COLUMNS.items()})
    ids = pd.Series(out.index.astype(str), index=out.index).str.strip()
    bad = ~ids.str.fullmatch(r"\d+")
    if bad.any():
        raise ConfigError(
            f"FMA metadata file '{path}': track id {ids[bad].iloc[0]!r} is not an integer "
            "(is the third header row, 'track_id', there?)"
        )
    out.index = pd.Index(ids.astype(int).tolist(), name="track_id")
    return out.apply(lambda column: column.str.strip())


def _genre_titles(path: Path) -> dict[str, str]:
    """``genres.csv``: genre id (as text) to title."""
    if not path.is_file():
        raise ConfigError(f"FMA metadata file '{path}' not found (option 'metadata_dir')")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (ValueError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read FMA genres file '{path}': {error}") from error
    for column in ("genre_id", "title"):
        if column not in table.columns:
            raise ConfigError(
                f"FMA genres file '{path}' has no column {column!r} (expected genre_id, "
                f"#tracks, parent, title, top_level; found {list(table.columns)})"
            )
    return dict(zip(table["genre_id"].str.strip(), table["title"].str.strip(), strict=True))


def load_records(*, root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    """Read FMA's ``tracks.csv`` (and ``genres.csv``), one row per track of the subset.

    Parameters
    ----------
    root : Path
        Dataset folder, the one holding ``fma_metadata/`` and ``fma_<subset>/``.
    options : Mapping[str, Any]
        The dataset's config entry. Keys read here (others are ignored):

        ``subset`` : {"small", "medium", "large", "full"}, default ``"small"``
        ``metadata_dir`` : str, default ``"fma_metadata"``
            Folder of tracks.csv and genres.csv, relative to ``root`` unless absolute.
        ``audio_dir`` : str, default ``"fma_<subset>"``
            Folder of the ``AAA/AAABBB.mp3`` files, relative to ``root`` unless absolute.
        ``genre_tags`` : {"top", "all"}, default ``"top"``
            The top-level genre, or every genre with its ancestors (module docstring).

    Returns
    -------
    pandas.DataFrame
        Shape ``(n_tracks, 6)``, columns ``track_id, path, tags, split, artist, duration_s``,
        sorted by track id; ``attrs["report"]`` holds the subset, tag kind and counts.

    Raises
    ------
    ConfigError
        A metadata file is missing or malformed, an option is not allowed, a ``set/split``
        or ``set/subset`` cell holds an unknown value, a genre id is not in genres.csv.
    """
    root = Path(root)
    subset = _choice(options, key="subset", allowed=tuple(SUBSETS), default=DEFAULT_SUBSET)
    genre_tags = _choice(options, key="genre_tags", allowed=GENRE_TAGS, default=DEFAULT_GENRE_TAGS)
    folder = _metadata_dir(root=root, options=options)
    audio_dir = option_path(
        format="fma", root=root, options=options, key="audio_dir", default=f"fma_{subset}"
    )
    tracks_csv = folder / "tracks.csv"
    tracks = read_tracks(tracks_csv)

    unknown_subset = ~tracks["subset"].isin([*SUBSETS["large"], ""])
    if unknown_subset.any():
        raise ConfigError(
            f"FMA metadata file '{tracks_csv}': track {tracks.index[unknown_subset][0]} has "
            f"set/subset {tracks['subset'][unknown_subset].iloc[0]!r}; expected small, "
            "medium or large"
        )
    kept = tracks.loc[tracks["subset"].isin(SUBSETS[subset])].sort_index()
    if kept.empty:
        raise ConfigError(
            f"FMA metadata file '{tracks_csv}' has no track of subset {subset!r} (set/subset)"
        )
    unknown_split = ~kept["split"].isin([*SPLITS, ""])
    if unknown_split.any():
        raise ConfigError(
            f"FMA metadata file '{tracks_csv}': track {kept.index[unknown_split][0]} has "
            f"set/split {kept['split'][unknown_split].iloc[0]!r}; expected training, "
            "validation or test"
        )

    if genre_tags == "top":
        tags = [[g] if g else [] for g in kept["genre_top"]]
    else:
        titles = _genre_titles(folder / "genres.csv")
        tags = []
        for track_id, cell in kept["genres_all"].items():
            row = []
            for genre_id in _GENRE_ID.findall(cell):
                if genre_id not in titles:
                    raise ConfigError(
                        f"FMA metadata file '{tracks_csv}': track {track_id} has genre id "
                        f"{genre_id} in track/genres_all, which genres.csv does not list"
                    )
                row.append(titles[genre_id])
            tags.append(list(dict.fromkeys(row)))

    if subset == "full":
        durations = [
            float(d) if re.fullmatch(r"\d+(\.\d*)?", d) else math.nan for d in kept["duration"]
        ]
    else:
        durations = [math.nan] * len(kept)
    ids = kept.index.tolist()
    frame = pd.DataFrame(
        {
            "track_id": pd.Series([f"{i:06d}" for i in ids], dtype="str"),
            "path": pd.Series([str(audio_dir / audio_relative_path(i)) for i in ids], dtype="str"),
            "tags": pd.Series(tags, dtype=object),
            "split": pd.Series([SPLITS.get(s) for s in kept["split"]], dtype=object),
            "artist": pd.Series([a or None for a in kept["artist"]], dtype=object),
            "duration_s": pd.Series(durations, dtype="float64"),
        }
    )
    frame.attrs["report"] = {
        "subset": subset,
        "genre_tags": genre_tags,
        "tracks_in_metadata": len(tracks),
        "tracks_in_subset": len(kept),
        "tracks_without_genre": sum(not t for t in tags),
        "tracks_without_split": int((kept["split"] == "").sum()),
    }
    return frame


def split_name(*, entry: Mapping[str, Any]) -> str:
    """The official split of the entry's subset (``fma_small official split``)."""
    return f"fma_{entry.get('subset', DEFAULT_SUBSET)} official split (set/split)"


FORMAT = DatasetFormat(
    name="fma",
    requires=("root",),
    load_records=load_records,
    metadata_files=metadata_files,
    paths=(("metadata_dir", "folder"), ("audio_dir", "folder")),
    missing_hint="audio is read at <root>/fma_<subset>/AAA/AAABBB.mp3 (option audio_dir); "
    "is fma_<subset>.zip unpacked there, and is it the archive of the chosen subset?",
    split_name=split_name,
)
