"""MTG-Jamendo: ``autotagging*.tsv`` with a variable number of tags per row.

Layout (as in the dataset's repository plus the downloaded audio)::

    root/
      autotagging_top50tags.tsv
      splits/split-0/autotagging_top50tags-train.tsv
      splits/split-0/autotagging_top50tags-validation.tsv
      splits/split-0/autotagging_top50tags-test.tsv
      audio/14/214.mp3 ...

Each TSV starts with the header ``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS``; in the
rows, every field after ``DURATION`` is one tag (``genre---rock``, ``instrument---piano``,
``mood/theme---happy``), so rows have different lengths and are parsed line by line.

Conventions
-----------
- ``track_id`` is ``TRACK_ID`` (``track_0000214``), ``artist`` is ``ARTIST_ID``,
  ``duration_s`` is ``DURATION``; ``path`` is ``audio_dir / PATH``.
- Tag names are kept as in the file, category prefix included (``genre---rock``).
- ``split`` is the split file a track is listed in (``-validation`` gives ``"valid"``). The
  split files are named after the main TSV (``<stem of tsv>-train.tsv`` and so on) and lie in
  ``splits/split-0`` .. ``split-4``: the split is the ``splits_dir`` option. Tracks in none
  of the three files (the moodtheme subset has 504) are counted and, by default
  (``unsplit_tracks: leave_out``), left out; ``assign`` keeps them with split ``None``, so
  the manifest step draws an artist-aware split for them.

Audio variants
--------------
The download script gives the audio as ``--type audio`` (320 kbps MP3, ``NN/ID.mp3``, the
name in ``PATH``) or ``--type audio-low`` (mono LAME V2, ``NN/ID.low.mp3``). With
``audio_variant: auto`` (the default) the adapter stats both names of up to
:data:`DETECT_TRACKS` tracks spread over the TSV and takes the variant found more often
(``full`` on a tie or when neither is found, so the manifest step's file check names the
``PATH`` as written); ``full`` or ``low`` forces one. The choice and the counts are in
``attrs["report"]`` (the manifest summary's ``adapter``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.datasets._common import option_path, parse_duration
from pipeline.datasets.formats import DatasetFormat
from pipeline.errors import ConfigError

__all__ = [
    "AUDIO_VARIANTS",
    "DETECT_TRACKS",
    "FORMAT",
    "UNSPLIT_TRACKS",
    "audio_path",
    "detect_audio_variant",
    "load_records",
    "metadata_files",
    "read_tsv",
    "split_name",
]

logger = logging.getLogger(__name__)

HEADER = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION")
#: Defaults of the ``tsv``, ``audio_dir`` and ``splits_dir`` options; the config schema gives
#: the same (a test checks that they agree).
DEFAULT_TSV = "autotagging_top50tags.tsv"
DEFAULT_AUDIO_DIR = "audio"
DEFAULT_SPLITS_DIR = "splits/split-0"
SPLIT_FILES = {"train": "train", "validation": "valid", "test": "test"}
#: The ``audio_variant`` option's values (absent means ``auto``) and ``unsplit_tracks``'s
#: (absent means ``leave_out``).
AUDIO_VARIANTS = ("auto", "full", "low")
UNSPLIT_TRACKS = ("leave_out", "assign")
#: Tracks whose two file names ``auto`` stats.
DETECT_TRACKS = 64


def audio_path(*, audio_dir: Path, relative: str, variant: str) -> Path:
    """The audio file of a ``PATH`` value in one download variant.

    ``full`` is ``PATH`` itself (``14/214.mp3``); ``low`` inserts ``.low`` before the
    extension (``14/214.low.mp3``), as the download script's ``audio-low`` names its files.
    """
    if variant == "low":
        stem, dot, extension = relative.rpartition(".")
        relative = f"{stem}.low.{extension}" if dot else f"{relative}.low"
    return audio_dir / relative


def detect_audio_variant(*, audio_dir: Path, relatives: list[str]) -> tuple[str, dict[str, int]]:
    """Which download variant is on disk, from up to :data:`DETECT_TRACKS` tracks.

    Parameters
    ----------
    audio_dir : Path
    relatives : list of str
        The ``PATH`` values of the TSV, in order.

    Returns
    -------
    variant : {"full", "low"}
        The variant with more files found; ``full`` on a tie (none found included).
    found : dict
        ``{"full": n, "low": n, "checked": n}``.
    """
    step = max(1, len(relatives) // DETECT_TRACKS)
    sample = relatives[::step][:DETECT_TRACKS]
    found = {
        variant: sum(
            os.path.isfile(audio_path(audio_dir=audio_dir, relative=r, variant=variant))
            for r in sample
        )
        for variant in ("full", "low")
    }
    variant = "low" if found["low"] > found["full"] else "full"
    return variant, {**found, "checked": len(sample)}


def _choice(options: Mapping[str, Any], *, key: str, allowed: tuple[str, ...]) -> str:
    value = options.get(key, allowed[0])
    if value not in allowed:
        raise ConfigError(f"mtg_jamendo option {key!r} is {value!r}; allowed are {list(allowed)}")
    return str(value)


def split_name(*, entry: Mapping[str, Any]) -> str:
    """The split a config entry selects: its split folder's name (``split-0``), or ``""``
    (no official split) when ``splits_dir`` is null."""
    value = entry.get("splits_dir", DEFAULT_SPLITS_DIR)
    return "" if value is None else Path(str(value)).name


def _tag_prefixes(options: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The ``tag_prefixes`` option as a tuple, or None when absent (keep every tag)."""
    value = options.get("tag_prefixes")
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f"mtg_jamendo option 'tag_prefixes' must be a list of non-empty strings such as "
            f"['genre---', 'mood/theme---'], got {value!r}"
        )
    return tuple(value)


def read_tsv(*, path: Path) -> list[tuple[int, list[str]]]:
    """Read an MTG-Jamendo TSV into its data rows.

    Parameters
    ----------
    path : Path
        An ``autotagging*.tsv`` file (main file or split file).

    Returns
    -------
    list of (int, list of str)
        ``(line number, fields)`` per non-empty data row, header excluded; ``fields`` has at
        least the five fixed columns, then the tags.

    Raises
    ------
    ConfigError
        The file is missing, is not UTF-8, its header does not start with ``TRACK_ID
        ARTIST_ID ALBUM_ID PATH DURATION``, or a row has fewer than five fields.
    """
    if not path.is_file():
        raise ConfigError(f"MTG-Jamendo file '{path}' not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"MTG-Jamendo file '{path}' is not UTF-8 text: {error}") from error
    lines = text.splitlines()
    header = lines[0].rstrip("\r").split("\t") if lines else []
    for position, column in enumerate(HEADER):
        if position >= len(header) or header[position].strip() != column:
            raise ConfigError(
                f"MTG-Jamendo file '{path}' has no column {column!r} at position {position + 1} "
                f"of its header; the header must start with {' '.join(HEADER)} "
                f"(found {header[: len(HEADER)]!r})"
            )
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.rstrip("\r").split("\t")]
        if len(fields) < len(HEADER):
            raise ConfigError(
                f"MTG-Jamendo file '{path}', line {number}: {len(fields)} TAB-separated fields, "
                f"need at least {len(HEADER)} ({' '.join(HEADER)}): {line!r}"
            )
        rows.append((number, fields))
    return rows


def _read_splits(*, splits_dir: Path, stem: str) -> dict[str, str]:
    """Map track id to split from ``<stem>-train/-validation/-test.tsv``."""
    if not splits_dir.is_dir():
        raise ConfigError(
            f"MTG-Jamendo splits folder '{splits_dir}' not found (option 'splits_dir', default "
            f"{DEFAULT_SPLITS_DIR!r} under root); set 'splits_dir: null' to use no official split"
        )
    split_of: dict[str, str] = {}
    file_of: dict[str, Path] = {}
    for suffix, split in SPLIT_FILES.items():
        path = splits_dir / f"{stem}-{suffix}.tsv"
        if not path.is_file():
            raise ConfigError(
                f"MTG-Jamendo split file '{path}' not found; the splits folder must hold "
                f"{', '.join(f'{stem}-{s}.tsv' for s in SPLIT_FILES)}"
            )
        for _, fields in read_tsv(path=path):
            track_id = fields[0]
            if track_id in split_of and split_of[track_id] != split:
                raise ConfigError(
                    f"MTG-Jamendo track {track_id!r} is listed in two split files: "
                    f"'{file_of[track_id]}' and '{path}'"
                )
            split_of[track_id] = split
            file_of[track_id] = path
    return split_of


def _tsv(*, root: Path, options: Mapping[str, Any]) -> Path:
    return option_path(
        format="mtg_jamendo", root=root, options=options, key="tsv", default=DEFAULT_TSV
    )


def _splits_dir(*, root: Path, options: Mapping[str, Any]) -> Path | None:
    """The ``splits_dir`` option; None when it is null (no official split)."""
    if "splits_dir" in options and options["splits_dir"] is None:
        return None
    return option_path(
        format="mtg_jamendo",
        root=root,
        options=options,
        key="splits_dir",
        default=DEFAULT_SPLITS_DIR,
    )


def metadata_files(*, root: Path, options: Mapping[str, Any]) -> list[Path]:
    """The files :func:`load_records` reads besides the audio: the main TSV, then those of
    its split files that exist (sorted by name; a missing one fails in :func:`load_records`).
    """
    root = Path(root)
    tsv = _tsv(root=root, options=options)
    splits_dir = _splits_dir(root=root, options=options)
    if splits_dir is None:
        return [tsv]
    splits = (splits_dir / f"{tsv.stem}-{suffix}.tsv" for suffix in SPLIT_FILES)
    return [tsv, *sorted((path for path in splits if path.is_file()), key=str)]


def load_records(*, root: Path, options: Mapping[str, Any]) -> pd.DataFrame:
    """Read an MTG-Jamendo ``autotagging*.tsv`` and its split files, one row per track.

    Parameters
    ----------
    root : Path
        Dataset folder.
    options : Mapping[str, Any]
        The dataset's config entry. Keys read here (others are ignored):

        ``tsv`` : str, default ``"autotagging_top50tags.tsv"``
            The main TSV, relative to ``root`` unless absolute.
        ``audio_dir`` : str, default ``"audio"``
            Folder the ``PATH`` values are relative to, relative to ``root`` unless absolute.
        ``splits_dir`` : str or None, default ``"splits/split-0"``
            Folder of ``<tsv stem>-train.tsv``, ``-validation.tsv``, ``-test.tsv``, relative
            to ``root`` unless absolute; ``None`` means no official split (all ``None``).
        ``tag_prefixes`` : list of str, optional
            Keep only tags starting with one of these (e.g. ``["genre---"]``); tracks left
            without tags stay, with ``tags == []``.
        ``audio_variant`` : {"auto", "full", "low"}, default ``"auto"``
            The download variant of the audio (module docstring).
        ``unsplit_tracks`` : {"leave_out", "assign"}, default ``"leave_out"``
            Tracks in no split file: left out, or kept with split ``None``.

    Returns
    -------
    pandas.DataFrame
        Shape ``(n_tracks, 6)``, columns ``track_id, path, tags, split, artist, duration_s``.

    Raises
    ------
    ConfigError
        A TSV or split file is missing or malformed, an option has the wrong type, a track id
        appears twice in the main TSV or in two split files.
    """
    root = Path(root)
    tsv = _tsv(root=root, options=options)
    audio_dir = option_path(
        format="mtg_jamendo", root=root, options=options, key="audio_dir", default=DEFAULT_AUDIO_DIR
    )
    prefixes = _tag_prefixes(options)
    forced = _choice(options, key="audio_variant", allowed=AUDIO_VARIANTS)
    unsplit = _choice(options, key="unsplit_tracks", allowed=UNSPLIT_TRACKS)
    splits_dir = _splits_dir(root=root, options=options)
    split_of = {} if splits_dir is None else _read_splits(splits_dir=splits_dir, stem=tsv.stem)

    records: dict[str, list[Any]] = {c: [] for c in ("track_id", "path", "tags", "artist")}
    durations: list[float] = []
    line_of: dict[str, int] = {}
    for number, fields in read_tsv(path=tsv):
        track_id, artist_id, _album_id, relative, duration = fields[: len(HEADER)]
        if not track_id or not relative:
            raise ConfigError(f"MTG-Jamendo file '{tsv}', line {number}: empty TRACK_ID or PATH")
        if track_id in line_of:
            raise ConfigError(
                f"MTG-Jamendo file '{tsv}' lists TRACK_ID {track_id!r} twice "
                f"(lines {line_of[track_id]} and {number}); track ids must be unique"
            )
        line_of[track_id] = number
        tags = [tag for tag in fields[len(HEADER) :] if tag]
        if prefixes is not None:
            tags = [tag for tag in tags if tag.startswith(prefixes)]
        records["track_id"].append(track_id)
        records["path"].append(relative)
        records["tags"].append(list(dict.fromkeys(tags)))
        records["artist"].append(artist_id or None)
        durations.append(
            parse_duration(
                text=duration, where=f"MTG-Jamendo file '{tsv}', line {number}", column="DURATION"
            )
        )

    n_unknown = len(split_of.keys() - line_of.keys())
    if n_unknown:
        logger.warning(
            "MTG-Jamendo: %d track ids of the split files are not in '%s' and are ignored",
            n_unknown,
            tsv,
        )
    report: dict[str, Any] = {"tsv": tsv.name}
    if forced == "auto":
        variant, found = detect_audio_variant(audio_dir=audio_dir, relatives=records["path"])
        report["audio_variant"] = {"chosen": variant, "detected_from": found}
    else:
        variant = forced
        report["audio_variant"] = {"chosen": variant, "forced": True}
    if variant == "low" or forced == "auto":
        logger.info("MTG-Jamendo: audio variant %r (%s)", variant, report["audio_variant"])
    frame = pd.DataFrame(
        {
            "track_id": pd.Series(records["track_id"], dtype="str"),
            "path": pd.Series(
                [
                    str(audio_path(audio_dir=audio_dir, relative=r, variant=variant))
                    for r in records["path"]
                ],
                dtype="str",
            ),
            "tags": pd.Series(records["tags"], dtype=object),
            "split": pd.Series([split_of.get(t) for t in records["track_id"]], dtype=object),
            "artist": pd.Series(records["artist"], dtype=object),
            "duration_s": pd.Series(durations, dtype="float64"),
        }
    )
    warnings: list[str] = []
    if splits_dir is not None:
        unsplit_ids = frame.loc[frame["split"].isna(), "track_id"].tolist()
        report["split_dir"] = splits_dir.name
        report["tracks_in_no_split_file"] = len(unsplit_ids)
        report["tracks_in_no_split_file_examples"] = unsplit_ids[:5]
        report["unsplit_tracks"] = unsplit
        if unsplit_ids:
            done = "left out" if unsplit == "leave_out" else "given a drawn split"
            warnings.append(
                f"MTG-Jamendo: {len(unsplit_ids):,} tracks of '{tsv.name}' are in none of the "
                f"split files of '{splits_dir}' and are {done} (unsplit_tracks: {unsplit}), "
                f"e.g. {', '.join(unsplit_ids[:5])}"
            )
            if unsplit == "leave_out":
                frame = frame.loc[frame["split"].notna()].reset_index(drop=True)
    frame.attrs["report"] = report
    frame.attrs["warnings"] = warnings
    return frame


FORMAT = DatasetFormat(
    name="mtg_jamendo",
    requires=("root",),
    load_records=load_records,
    metadata_files=metadata_files,
    paths=(("tsv", "file"), ("splits_dir", "folder"), ("audio_dir", "folder")),
    missing_hint="PATH values (NN/ID.mp3) are read under <root>/<audio_dir> (default audio); "
    "the audio-low download names its files NN/ID.low.mp3: audio_variant auto detects it, "
    "full or low forces one; the audio of another TSV (raw_30s vs autotagging_moodtheme) "
    "may not have been downloaded",
    split_name=split_name,
)
