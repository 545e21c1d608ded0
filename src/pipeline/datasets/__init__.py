"""Dataset adapters: one module per dataset layout, chosen by the config's ``format``.

Every adapter exposes ``load_records(*, root, options) -> pandas.DataFrame`` with one row per
track and exactly the columns of :data:`RECORD_COLUMNS`:

==============  ==========  ============================================================
column          dtype       values
==============  ==========  ============================================================
``track_id``    str         unique within the dataset
``path``        str         audio file, ``root``-based; existence is not checked here
``tags``        object      list of str, possibly empty
``split``       object      ``"train"``, ``"valid"``, ``"test"`` or None (no official split)
``artist``      object      str or None
``duration_s``  float64     seconds, NaN when the metadata does not give it
==============  ==========  ============================================================

:func:`load_dataset_records` picks the adapter from :data:`ADAPTERS` and checks that
contract, so a faulty adapter or table fails here with a clear message, not in a later stage.

:data:`FORMATS` is the registry of dataset formats: each adapter module declares its
:class:`~pipeline.datasets.formats.DatasetFormat` (config keys it needs, files it reads, or
how it is generated) as ``FORMAT``, and the config validation and the workflow ask
:func:`dataset_format`. Adding a format is its module, one line in :data:`FORMATS`, and its
keys (with their defaults) in the config schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.datasets import fma, gtzan, magnatagatune, mtg_jamendo, table
from pipeline.datasets._common import separators
from pipeline.datasets.formats import Adapter, DatasetFormat
from pipeline.datasets.rendering import demo, scores
from pipeline.errors import ConfigError, printable

__all__ = [
    "ADAPTERS",
    "FORMATS",
    "RECORD_COLUMNS",
    "SPLITS",
    "Adapter",
    "DatasetFormat",
    "dataset_format",
    "load_dataset_records",
    "separators",
    "split_description",
    "validate_records",
]

RECORD_COLUMNS: tuple[str, ...] = ("track_id", "path", "tags", "split", "artist", "duration_s")
SPLITS: tuple[str, ...] = ("train", "valid", "test")


#: Every dataset format by its config name (``format:``).
FORMATS: dict[str, DatasetFormat] = {
    spec.name: spec
    for spec in (
        magnatagatune.FORMAT,
        mtg_jamendo.FORMAT,
        gtzan.FORMAT,
        fma.FORMAT,
        table.FORMAT,
        demo.FORMAT,
        scores.FORMAT,
    )
}

#: The adapters of the formats that are read (generated formats are read as ``table``).
ADAPTERS: dict[str, Adapter] = {
    name: spec.load_records for name, spec in FORMATS.items() if spec.load_records is not None
}


def dataset_format(name: str) -> DatasetFormat:
    """The registered format ``name``.

    Raises
    ------
    ConfigError
        ``name`` is not a format; the message lists the allowed ones.
    """
    if not isinstance(name, str) or name not in FORMATS:
        raise ConfigError(f"unknown dataset format {name!r}; allowed formats are {sorted(FORMATS)}")
    return FORMATS[name]


def _fail(*, format: str, root: Path, problem: str) -> ConfigError:
    """A ConfigError that names the dataset's format and root before the problem."""
    return ConfigError(f"dataset format {format!r} at root '{printable(root)}': {problem}")


def _check_text(*, values: pd.Series, column: str, format: str, root: Path) -> None:
    """Every value a non-empty str; the error names the row by its index label."""
    for label, value in values.items():
        if not isinstance(value, str) or not value:
            raise _fail(
                format=format,
                root=root,
                problem=f"{column} of {label} is {value!r}, expected a non-empty str",
            )


def _optional_text(value: Any) -> Any:
    """NaN/None/pd.NA to None; anything else unchanged."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def validate_records(*, records: pd.DataFrame, format: str, root: Path) -> pd.DataFrame:
    """Check an adapter's table against the record contract and normalise its dtypes.

    Parameters
    ----------
    records : pandas.DataFrame
        An adapter's output.
    format, root
        Only used to name the dataset in error messages.

    Returns
    -------
    pandas.DataFrame
        Shape ``(n_tracks, 6)``, the columns of :data:`RECORD_COLUMNS` in that order with the
        dtypes of the module docstring, index ``0..n_tracks-1``; missing ``split``/``artist``
        values as None.

    Raises
    ------
    ConfigError
        A column is missing or extra, a value has the wrong type, a split is not one of
        :data:`SPLITS`, a track id repeats, or the dataset has no track.
    """
    if not isinstance(records, pd.DataFrame):
        raise _fail(format=format, root=root, problem=f"adapter returned {type(records).__name__}")
    columns = [str(c) for c in records.columns]
    if sorted(columns) != sorted(RECORD_COLUMNS):
        raise _fail(
            format=format,
            root=root,
            problem=f"records have columns {columns}, expected exactly {list(RECORD_COLUMNS)}",
        )
    if records.empty:
        raise _fail(format=format, root=root, problem="the dataset has no tracks")
    records = records.loc[:, list(RECORD_COLUMNS)].reset_index(drop=True)

    _check_text(
        values=records["track_id"].rename(index=lambda i: f"row {i}"),
        column="track_id",
        format=format,
        root=root,
    )
    duplicated = records["track_id"][records["track_id"].duplicated()]
    if len(duplicated):
        raise _fail(
            format=format,
            root=root,
            problem=f"track_id {duplicated.iloc[0]!r} appears more than once; ids must be unique",
        )
    records.index = pd.Index(records["track_id"].tolist(), dtype=object)
    _check_text(
        values=records["path"].rename(index=lambda i: f"track {i!r}"),
        column="path",
        format=format,
        root=root,
    )

    for track_id, tags in records["tags"].items():
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise _fail(
                format=format,
                root=root,
                problem=f"tags of track {track_id!r} are {tags!r}, expected a list of str",
            )

    split = pd.Series(
        [_optional_text(v) for v in records["split"]], index=records.index, dtype=object
    )
    bad_split = ~split.isin([*SPLITS, None])
    if bad_split.any():
        track_id = split.index[bad_split][0]
        raise _fail(
            format=format,
            root=root,
            problem=f"split of track {track_id!r} is {split[track_id]!r}; allowed are "
            f"{list(SPLITS)} or None",
        )

    artist = pd.Series(
        [_optional_text(v) for v in records["artist"]], index=records.index, dtype=object
    )
    for track_id, value in artist.items():
        if value is not None and (not isinstance(value, str) or not value):
            raise _fail(
                format=format,
                root=root,
                problem=f"artist of track {track_id!r} is {value!r}, expected a str or None",
            )

    try:
        duration = pd.to_numeric(records["duration_s"], errors="raise").astype("float64")
    except (TypeError, ValueError) as error:
        raise _fail(
            format=format, root=root, problem=f"duration_s is not numeric: {error}"
        ) from error
    bad_duration = (duration < 0) | duration.isin([math.inf, -math.inf])
    if bad_duration.any():
        track_id = duration.index[bad_duration][0]
        raise _fail(
            format=format,
            root=root,
            problem=f"duration_s of track {track_id!r} is {duration[track_id]!r}; expected "
            "non-negative seconds or NaN",
        )

    out = pd.DataFrame(
        {
            "track_id": pd.Series(records["track_id"].tolist(), dtype="str"),
            "path": pd.Series(records["path"].tolist(), dtype="str"),
            "tags": pd.Series([list(t) for t in records["tags"]], dtype=object),
            "split": pd.Series(split.tolist(), dtype=object),
            "artist": pd.Series(artist.tolist(), dtype=object),
            "duration_s": pd.Series(duration.tolist(), dtype="float64"),
        }
    )
    # what the adapter reports for the manifest summary (``attrs["report"]``: a JSON-able dict)
    out.attrs = dict(records.attrs)
    return out


def split_description(entry: Mapping[str, Any]) -> str:
    """Which split a validated dataset entry uses, in words, for the summary and leaderboard.

    ``lists: train.npy, valid.npy, test.npy`` with ``split_lists``; else the format's
    official split (:attr:`DatasetFormat.split_name`: ``clean (Won et al. 2020)``,
    ``split-0``); else ``drawn (seed N)``, the artist-aware split of the manifest step.
    """
    lists = entry.get("split_lists")
    if isinstance(lists, Mapping) and lists:
        return "lists: " + ", ".join(Path(str(lists[s])).name for s in SPLITS if s in lists)
    spec = FORMATS.get(entry.get("format", ""))
    if spec is not None and spec.split_name is not None:
        name = spec.split_name(entry=entry)
        if name:
            return name
    seed = entry.get("split", {}).get("seed", 0) if isinstance(entry.get("split"), Mapping) else 0
    return f"drawn (seed {seed})"


def load_dataset_records(
    *, format: str, root: Path | str, options: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Load one dataset's track records with the adapter registered for its format.

    Parameters
    ----------
    format : str
        A key of :data:`ADAPTERS`: ``"magnatagatune"``, ``"mtg_jamendo"``, ``"gtzan"`` or
        ``"table"``.
    root : Path or str
        Dataset folder.
    options : Mapping[str, Any], optional
        The dataset's config entry; each adapter reads only its own keys.

    Returns
    -------
    pandas.DataFrame
        Shape ``(n_tracks, 6)``, columns :data:`RECORD_COLUMNS` (see the module docstring).

    Raises
    ------
    ConfigError
        Unknown ``format`` (the message lists the allowed ones), ``options`` not a mapping,
        or any error of the adapter or of the contract check. The message is one line, with
        the characters that do not print (a newline in a parser's message, a control
        character in a path) escaped (:func:`pipeline.errors.printable`).
    """
    if not isinstance(format, str) or format not in ADAPTERS:
        raise ConfigError(
            f"unknown dataset format {format!r}; allowed formats are {sorted(ADAPTERS)}"
        )
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"options of dataset format {format!r} must be a mapping (the config entry), "
            f"got {type(options).__name__}: {options!r}"
        )
    root = Path(root)
    try:
        records = ADAPTERS[format](root=root, options=options)
    except ConfigError as error:
        message = str(error)
        if message.isprintable():
            raise
        raise ConfigError(printable(message)) from error
    return validate_records(records=records, format=format, root=root)
