"""What a dataset format declares: its adapter, the config keys it needs, the files it reads.

Each adapter module (:mod:`pipeline.datasets.magnatagatune`, ``mtg_jamendo``, ``gtzan``,
``table``, and the generated formats :mod:`pipeline.datasets.rendering.demo` and
``rendering.scores``) ends with one :class:`DatasetFormat`, ``FORMAT``; the registry in
:mod:`pipeline.datasets` collects them. The workflow asks the registry, never the format
names: adding a format is its module, one line in the registry and its keys in the config
schema (``workflow/schemas/config.schema.yaml``, the one source of defaults).

Two kinds of format exist:

- *read* formats have ``load_records``: the manifest step reads ``entry["root"]`` with it, and
  re-runs when one of ``metadata_files`` changes (never the audio files: the DAG must not
  grow with the number of tracks);
- *generated* formats are built by a rule of their own into ``resources/<dataset>/...`` (the
  ``generator_keys`` of the config entry are that rule's params, ``generator_inputs`` its
  input files) as a generic track table, :data:`GENERATED_TABLE`, which the manifest step
  reads with the ``table`` adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

__all__ = [
    "GENERATED_TABLE",
    "Adapter",
    "DatasetFormat",
    "ManifestSource",
]

#: The table a generated format writes into its folder, and how the ``table`` adapter reads it
#: (comma-separated, tags joined by ``;``, columns ``track_id, path, tags, ...``).
GENERATED_TABLE: dict[str, str] = {"table": "tracks.csv", "sep": ",", "tag_sep": ";"}


class Adapter(Protocol):
    """A dataset adapter's ``load_records`` function."""

    def __call__(self, *, root: Path, options: Mapping[str, Any]) -> pd.DataFrame: ...


@dataclass(frozen=True, kw_only=True)
class ManifestSource:
    """What the manifest step of a dataset reads.

    Attributes
    ----------
    format : str
        The adapter that reads it (generated datasets are read as ``table``).
    root : str
        The folder the adapter reads.
    options : dict
        Adapter options (the dataset's config entry, plus the table options of
        :data:`GENERATED_TABLE` for generated datasets).
    files : list of str
        Metadata files whose change re-runs the manifest step (audio files are not listed:
        the DAG must not grow with the number of tracks).
    """

    format: str
    root: str
    options: dict[str, Any]
    files: list[str]


@dataclass(frozen=True, kw_only=True)
class DatasetFormat:
    """One dataset format, as the config validation and the workflow see it.

    Give ``load_records`` and ``metadata_files`` for a read format, ``generated_dir`` (and
    ``generator_keys``, ``generator_inputs``) for a generated one.

    Attributes
    ----------
    name : str
        The config's ``format`` value.
    requires : tuple of str
        Keys the config entry must give besides ``format`` (the schema cannot say which keys
        each format needs without unreadable error messages).
    load_records : Adapter or None
        Read formats: the adapter, ``load_records(root=..., options=...)``.
    metadata_files : callable or None
        Read formats: ``metadata_files(root=..., options=...) -> list[Path]``, the files
        ``load_records`` reads besides the audio.
    generated_dir : str or None
        Generated formats: the folder, under the dataset's ``resources/<dataset>``, that the
        generating rule writes (``""`` for that folder itself).
    generator_keys : tuple of str
        Generated formats: the config keys that define the generated data, passed (in this
        order) as params to the rule that generates it, so that a change re-generates it.
    generator_inputs : callable or None
        Generated formats: ``generator_inputs(entry=...) -> dict`` of the files the
        generating rule reads (name -> path); None when it reads none.
    paths : tuple of (str, str)
        ``(config key, "file" or "folder")`` of the entry's path keys (relative to ``root``
        unless absolute; a key set to null is skipped) that must exist before any job runs.
        With ``root`` (when the format requires it) they are checked when the DAG is built
        (:meth:`required_paths`), so a missing dataset is named by its config key. Files that
        a rule generates are never listed.
    missing_hint : str
        Read formats: the likely cause, besides a wrong ``root``, when audio files are
        missing (the other download variant, an audio folder option), appended to the
        manifest step's message (:mod:`pipeline.datasets.file_check`).
    split_name : callable or None
        ``split_name(entry=...) -> str``: the official split a validated entry selects
        (``"clean (Won et al. 2020)"``, ``"split-0"``), stated in the manifest summary and the
        leaderboard; None when the format has no official split.
    """

    name: str
    requires: tuple[str, ...]
    load_records: Adapter | None = None
    metadata_files: Callable[..., list[Path]] | None = None
    generated_dir: str | None = None
    generator_keys: tuple[str, ...] = ()
    generator_inputs: Callable[..., dict[str, str]] | None = None
    paths: tuple[tuple[str, str], ...] = ()
    missing_hint: str = ""
    split_name: Callable[..., str] | None = None

    def __post_init__(self) -> None:
        read = self.load_records is not None and self.metadata_files is not None
        if read == (self.generated_dir is not None):
            raise TypeError(
                f"dataset format {self.name!r}: give load_records and metadata_files (a read "
                "format) or generated_dir (a generated format)"
            )

    def required_paths(self, *, entry: Mapping[str, Any]) -> list[tuple[str, Path, str]]:
        """The folders and files a validated config entry needs before any job runs.

        Returns
        -------
        list of (str, Path, str)
            ``(config key, path, "file" or "folder")``: ``root`` first when the format
            requires it, then :attr:`paths` resolved against ``root``, in declared order.
        """
        if "root" not in self.requires:
            return []
        root = Path(entry["root"])
        out = [("root", root, "folder")]
        for key, kind in self.paths:
            value = entry.get(key)
            if value is None:
                continue
            path = Path(value).expanduser()
            out.append((key, path if path.is_absolute() else root / path, kind))
        return out

    def manifest_source(self, *, entry: Mapping[str, Any], dataset_dir: str) -> ManifestSource:
        """What the manifest step reads for a validated config entry of this format.

        Parameters
        ----------
        entry : Mapping[str, Any]
            The dataset's validated config entry.
        dataset_dir : str
            The dataset's folder of generated inputs, ``resources/<dataset>``.
        """
        if self.generated_dir is None:
            assert self.metadata_files is not None  # checked in __post_init__
            files = self.metadata_files(root=Path(entry["root"]), options=entry)
            return ManifestSource(
                format=self.name,
                root=entry["root"],
                options=dict(entry),
                files=[str(path) for path in [*files, *_split_list_files(entry)]],
            )
        folder = f"{dataset_dir}/{self.generated_dir}" if self.generated_dir else dataset_dir
        lists = _split_list_files({**entry, "root": folder})
        return ManifestSource(
            format="table",
            root=folder,
            options={**entry, **GENERATED_TABLE},
            files=[f"{folder}/{GENERATED_TABLE['table']}", *map(str, lists)],
        )


def _split_list_files(entry: Mapping[str, Any]) -> list[Path]:
    """The ``split_lists`` files of an entry (relative to its ``root`` unless absolute), so
    that editing a list re-runs the manifest step."""
    lists = entry.get("split_lists")
    if not isinstance(lists, Mapping):
        return []
    root = Path(str(entry.get("root", ".")))
    out = []
    for value in lists.values():
        path = Path(str(value)).expanduser()
        out.append(path if path.is_absolute() else root / path)
    return out
