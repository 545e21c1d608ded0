"""The manifest: one table per dataset of tracks, tags, splits and shards.

Columns of ``manifest.parquet``: ``track_id, path, duration_s, tags (list, vocabulary tags
only), split, artist, shard``. Shards are assigned by a stable hash of ``track_id``, so adding
a track never moves another one; each shard's track list is rewritten only when its content
changed, so Snakemake re-extracts only the shards that really changed.

What the manifest step checks in the adapter's records (:func:`check_records`; each finding
is a warning in the log and a section of the summary in ``vocabulary.json``, with its count
and the first examples):

- **The same audio file under several track ids** (the same path after
  ``os.path.realpath``, or the same device and inode: symbolic and hard links, ``..``):
  by default (``duplicate_audio: keep_first``) only the first of them in table order is kept;
  with ``keep_all`` every one is kept, and all of them share the split of the first, official
  split or not. Either way one audio file never lands in two splits.
- **Audio paths outside the dataset's root** (after resolving links and ``..``): allowed
  (audio on another disk), listed.
- **Track ids with characters that do not print** (Unicode categories Cc and Cf, such as a
  newline or the right-to-left override U+202E, and other non-printable characters): the id
  is escaped as :func:`pipeline.errors.printable` does (``a\\u202eb``), so logs, tables
  and reports show what is there; the audio path is left as it is. An escaped id that equals
  another track's id is a ConfigError.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.datasets import SPLITS, dataset_format, load_dataset_records, split_description
from pipeline.datasets.file_check import DEFAULT_MAX_MISSING_FRACTION, apply_file_check
from pipeline.datasets.split_lists import apply_split_lists, split_list_paths
from pipeline.errors import ConfigError, printable
from pipeline.io.files import write_json

__all__ = [
    "SPLITS",
    "DUPLICATE_AUDIO",
    "RecordChecks",
    "audio_file_keys",
    "check_records",
    "make_manifest",
    "stable_unit",
    "assign_shards",
    "assign_splits",
    "tag_vocabulary",
    "build_manifest",
    "write_shard_lists",
    "shard_name",
    "write_vocabulary",
]

log = logging.getLogger(__name__)

SHARD_COLUMNS = ["track_id", "path"]

#: What the manifest may do with an audio file listed under several track ids (the config's
#: ``datasets.<name>.duplicate_audio``; absent means ``keep_first``).
DUPLICATE_AUDIO: tuple[str, ...] = ("keep_first", "keep_all")
#: Examples listed per finding in the log and the summary.
EXAMPLES = 5


def shard_name(shard: int) -> str:
    """The file stem of a shard: zero-padded to four digits (``0007``)."""
    return f"{shard:04d}"


def stable_unit(keys: Iterable[str], *, salt: str = "") -> np.ndarray:
    """A deterministic number in [0, 1) per key, the same on every machine and run.

    Parameters
    ----------
    keys : iterable of str
    salt : str
        Mixed into the hash (e.g. a seed), so different salts give independent numbers.

    Returns
    -------
    np.ndarray, shape (n_keys,), float64
    """
    out = []
    for key in keys:
        digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
        # 53 bits: exactly representable, so the value stays strictly below 1.
        out.append((int.from_bytes(digest, "little") >> 11) / 2.0**53)
    return np.asarray(out, dtype=np.float64)


def assign_shards(track_ids: Iterable[str], *, n_shards: int) -> np.ndarray:
    """Shard of each track from a stable hash of its id.

    Returns
    -------
    np.ndarray, shape (n_tracks,), int64, values in ``0 .. n_shards - 1``
    """
    if n_shards < 1:
        raise ConfigError(f"shards: {n_shards!r} must be >= 1")
    return np.floor(stable_unit(track_ids, salt="shard") * n_shards).astype(np.int64)


def assign_splits(
    records: pd.DataFrame,
    *,
    seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    same_file_groups: list[list[int]] | None = None,
) -> pd.Series:
    """Keep official splits; give the other tracks a deterministic, artist-aware split.

    All tracks of one artist (or, without an artist, the track alone) land in the same split,
    drawn from a stable hash of the artist and the seed: adding tracks never moves others.
    Tracks whose audio is the same file (:func:`audio_file_keys`) all take the split of the
    first of them in table order, official or drawn, so one file is never in two splits.

    Parameters
    ----------
    records : pd.DataFrame
        Columns ``track_id``, ``split`` (None where not official), ``artist`` (None allowed).
    seed : int
    valid_fraction, test_fraction : float
        Expected fractions of groups in the validation and test splits.
    same_file_groups : list of list of int, optional
        The positions of the tracks that share an audio file, when already known (none
        after :func:`check_records` under ``keep_first``); None finds them.

    Returns
    -------
    pd.Series of str, aligned with ``records``
    """
    if not 0 <= valid_fraction < 1 or not 0 <= test_fraction < 1:
        raise ConfigError(
            f"split fractions: valid={valid_fraction!r}, test={test_fraction!r} must be in [0, 1)"
        )
    if not valid_fraction + test_fraction < 1:
        raise ConfigError(
            f"split fractions: valid + test = {valid_fraction + test_fraction:g} must be < 1"
        )
    split = records["split"].astype(object).where(records["split"].notna(), None)
    missing = split.isna()
    if missing.any():
        artist = records["artist"].astype(object)
        groups = np.where(
            artist.notna() & (artist.astype(str) != ""),
            "artist:" + artist.astype(str),
            "track:" + records["track_id"].astype(str),
        )[missing.to_numpy()]
        u = stable_unit(groups, salt=f"split-{seed}")
        cut = test_fraction + valid_fraction
        drawn = np.where(u < test_fraction, "test", np.where(u < cut, "valid", "train"))
        split = split.copy()
        split[missing] = drawn
    split = split.astype(str)
    if same_file_groups is None:
        same_file_groups = _same_file_groups(records["path"])
    for group in same_file_groups:
        split.iloc[group[1:]] = split.iloc[group[0]]
    return split


def audio_file_keys(paths: Iterable[str]) -> list[str]:
    """One key per audio path, equal for two paths exactly when they name the same file.

    An existing file's key is its device and inode (so symbolic links, hard links and ``..``
    all resolve to it); a path that cannot be read is keyed by its ``os.path.realpath``.
    Only ``stat`` is called: no file is opened.

    Returns
    -------
    list of str, one per path
    """
    keys = []
    for path in paths:
        try:
            info = os.stat(path)  # follows links and ".." as the kernel does
        except (OSError, ValueError):
            keys.append(f"path:{os.path.realpath(path)}")
        else:
            keys.append(f"inode:{info.st_dev}:{info.st_ino}")
    return keys


def _same_file_groups(paths: Iterable[str]) -> list[list[int]]:
    """Positions of the paths that name one file, groups of two or more, each in order."""
    positions: dict[str, list[int]] = {}
    for position, key in enumerate(audio_file_keys(paths)):
        positions.setdefault(key, []).append(position)
    return [group for group in positions.values() if len(group) > 1]


def _real_path(path: str, *, folders: dict[str, str]) -> str:
    """``os.path.realpath(path)``, resolving each folder once (``folders`` caches them).

    A path with ``..`` or whose last part is a link is resolved in full; otherwise only its
    folder is (one ``lstat`` per path instead of one per path component).
    """
    absolute = os.path.abspath(path)
    head, name = os.path.split(absolute)
    if ".." in path.replace("\\", "/").split("/") or not name or os.path.islink(absolute):
        return os.path.realpath(path)
    if head not in folders:
        folders[head] = os.path.realpath(head)
    return os.path.join(folders[head], name)


def _inside(path: str, *, root: str, folders: dict[str, str] | None = None) -> bool:
    """Whether the resolved ``path`` lies under the resolved folder ``root``."""
    real = _real_path(path, folders={} if folders is None else folders)
    try:
        return os.path.commonpath([real, root]) == root
    except ValueError:  # different drives, or relative against absolute
        return False


@dataclass(frozen=True, kw_only=True)
class RecordChecks:
    """What :func:`check_records` found in a dataset's records, and what it did.

    Attributes
    ----------
    duplicate_audio : {"keep_first", "keep_all"}
        The policy applied to :attr:`same_file`.
    same_file : list of (str, list of str)
        Per audio file listed under several track ids: its path (as the first of them writes
        it) and the track ids, in table order; under ``keep_first`` only the first is kept.
    split_overridden : list of str
        Under ``keep_all``: tracks whose official split was replaced by that of the first
        track of their file (filled in by :func:`build_manifest`).
    outside_root : list of (str, str)
        ``(track_id, path)`` of the tracks whose audio lies outside ``root``.
    root : str or None
        The resolved dataset root the paths were compared with (None: not checked).
    escaped_ids : list of (str, str)
        ``(track id as read, track id in the manifest)`` of the ids that held characters
        that do not print.
    """

    duplicate_audio: str = "keep_first"
    same_file: list[tuple[str, list[str]]] = field(default_factory=list)
    split_overridden: list[str] = field(default_factory=list)
    outside_root: list[tuple[str, str]] = field(default_factory=list)
    root: str | None = None
    escaped_ids: list[tuple[str, str]] = field(default_factory=list)

    @property
    def left_out(self) -> list[str]:
        """Track ids left out as the second or later track of an audio file."""
        if self.duplicate_audio != "keep_first":
            return []
        return [track_id for _, ids in self.same_file for track_id in ids[1:]]

    def summary(self) -> dict[str, Any]:
        """Counts and the first :data:`EXAMPLES` examples of each finding, for JSON."""
        return {
            "duplicate_audio": {
                "policy": self.duplicate_audio,
                "files": len(self.same_file),
                "tracks_left_out": len(self.left_out),
                "splits_overridden": len(self.split_overridden),
                "examples": [
                    {"path": printable(path), "track_ids": [printable(t) for t in ids]}
                    for path, ids in self.same_file[:EXAMPLES]
                ],
            },
            "outside_root": {
                "root": None if self.root is None else printable(self.root),
                "tracks": len(self.outside_root),
                "examples": [
                    {"track_id": printable(t), "path": printable(path)}
                    for t, path in self.outside_root[:EXAMPLES]
                ],
            },
            "escaped_track_ids": {
                "tracks": len(self.escaped_ids),
                "examples": [escaped for _, escaped in self.escaped_ids[:EXAMPLES]],
            },
        }

    def warnings(self) -> list[str]:
        """One line per finding: its count and first examples (nothing when all is well)."""
        lines = []
        if self.same_file:
            shown = "; ".join(
                f"'{printable(path)}' as " + ", ".join(repr(printable(t)) for t in ids)
                for path, ids in self.same_file[:EXAMPLES]
            )
            done = (
                f"kept the first of each (table order), left out {len(self.left_out)} tracks"
                if self.duplicate_audio == "keep_first"
                else "kept all (duplicate_audio: keep_all), each file's tracks in one split"
                + (
                    f"; {len(self.split_overridden)} official splits overridden"
                    if self.split_overridden
                    else ""
                )
            )
            lines.append(
                f"{len(self.same_file)} audio files are listed under more than one track id; "
                f"{done}: {shown}"
            )
        if self.outside_root:
            shown = ", ".join(f"'{printable(path)}'" for _, path in self.outside_root[:EXAMPLES])
            lines.append(
                f"{len(self.outside_root)} tracks have their audio outside the dataset root "
                f"'{printable(self.root)}' (allowed): {shown}"
            )
        if self.escaped_ids:
            shown = ", ".join(escaped for _, escaped in self.escaped_ids[:EXAMPLES])
            lines.append(
                f"{len(self.escaped_ids)} track ids hold characters that do not print "
                f"(control or format characters); escaped in the manifest: {shown}"
            )
        return lines


def check_records(
    records: pd.DataFrame,
    *,
    duplicate_audio: str = "keep_first",
    root: str | Path | None = None,
) -> tuple[pd.DataFrame, RecordChecks]:
    """Escape track ids that do not print, apply the duplicate-audio policy, list paths
    outside the root (module docstring).

    Parameters
    ----------
    records : pd.DataFrame
        An adapter's records (:mod:`pipeline.datasets`), in table order.
    duplicate_audio : {"keep_first", "keep_all"}
        ``keep_first`` keeps only the first track (in table order) of an audio file listed
        under several track ids; ``keep_all`` keeps every one (:func:`assign_splits` puts
        them in one split).
    root : str or Path, optional
        The dataset's root; None skips the outside-root check.

    Returns
    -------
    records : pd.DataFrame
        The records to build the manifest from: ids escaped, duplicates left out under
        ``keep_first``; index ``0..n-1``.
    checks : RecordChecks

    Raises
    ------
    ConfigError
        ``duplicate_audio`` is not one of :data:`DUPLICATE_AUDIO`, or an escaped track id
        equals another track's id.
    """
    if duplicate_audio not in DUPLICATE_AUDIO:
        raise ConfigError(
            f"duplicate_audio: {duplicate_audio!r} is not one of {list(DUPLICATE_AUDIO)}"
        )
    records = records.reset_index(drop=True)
    ids = [str(t) for t in records["track_id"]]
    escaped_ids = [(t, printable(t)) for t in ids if not t.isprintable()]
    if escaped_ids:
        mapping = dict(escaped_ids)
        ids = [mapping.get(t, t) for t in ids]
        seen: set[str] = set()
        for track_id in ids:
            if track_id in seen:
                raise ConfigError(
                    f"track id {track_id!r}: two tracks have this id once characters that do "
                    "not print are escaped; give them distinct ids"
                )
            seen.add(track_id)
        records = records.assign(track_id=pd.Series(ids, dtype="str"))

    paths = [str(p) for p in records["path"]]
    groups = _same_file_groups(paths)
    same_file = [(paths[g[0]], [ids[i] for i in g]) for g in groups]
    if duplicate_audio == "keep_first":
        drop = sorted(i for g in groups for i in g[1:])
        records = records.drop(index=drop).reset_index(drop=True)

    outside: list[tuple[str, str]] = []
    real_root = None
    if root is not None:
        real_root = os.path.realpath(root)
        folders: dict[str, str] = {}
        outside = [
            (str(t), str(path))
            for t, path in zip(records["track_id"], records["path"], strict=True)
            if not _inside(str(path), root=real_root, folders=folders)
        ]
    checks = RecordChecks(
        duplicate_audio=duplicate_audio,
        same_file=same_file,
        outside_root=outside,
        root=real_root,
        escaped_ids=escaped_ids,
    )
    return records, checks


def tag_vocabulary(tags: pd.Series, *, top_n: int = 50, min_count: int = 1) -> list[str]:
    """The ``top_n`` most frequent tags with at least ``min_count`` tracks.

    Ties are broken by tag name, so the vocabulary is deterministic.

    Parameters
    ----------
    tags : pd.Series of list of str
    """
    counts = Counter(t for row in tags for t in set(row))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [t for t, c in ranked if c >= min_count][:top_n]


def build_manifest(
    records: pd.DataFrame,
    *,
    n_shards: int,
    top_n: int = 50,
    min_count: int = 1,
    drop_untagged: bool = False,
    seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    duplicate_audio: str = "keep_first",
    root: str | Path | None = None,
) -> tuple[pd.DataFrame, list[str], RecordChecks]:
    """Turn an adapter's records into the manifest and its tag vocabulary.

    Parameters
    ----------
    records : pd.DataFrame
        An adapter's output (see :mod:`pipeline.datasets`), in table order.
    n_shards : int
        Number of shards; fixed in config so that adding tracks never re-shuffles shards.
    top_n, min_count : int
        Vocabulary size and minimum tag frequency (counted over the kept tracks).
    drop_untagged : bool
        Leave out tracks with no vocabulary tag.
    seed, valid_fraction, test_fraction
        The split of tracks without an official split (:func:`assign_splits`).
    duplicate_audio : {"keep_first", "keep_all"}
        What to do with an audio file listed under several track ids (:func:`check_records`).
    root : str or Path, optional
        The dataset's root, to list the audio paths outside it; None skips that check.

    Returns
    -------
    manifest : pd.DataFrame
        Sorted by ``track_id``.
    vocabulary : list of str
    checks : RecordChecks
        What :func:`check_records` found; each finding is also logged as a warning.
    """
    records, checks = check_records(records, duplicate_audio=duplicate_audio, root=root)
    vocabulary = tag_vocabulary(records["tags"], top_n=top_n, min_count=min_count)
    known = set(vocabulary)
    split = assign_splits(
        records,
        seed=seed,
        valid_fraction=valid_fraction,
        test_fraction=test_fraction,
        # keep_first left one track per audio file: no group to look for again
        same_file_groups=[] if duplicate_audio == "keep_first" else None,
    )
    official = records["split"].astype(object).where(records["split"].notna(), None)
    overridden = [
        str(t)
        for t, given, final in zip(records["track_id"], official, split, strict=True)
        if given is not None and given != final
    ]
    checks = replace(checks, split_overridden=overridden)
    for line in checks.warnings():
        log.warning("%s", line)
    out = pd.DataFrame(
        {
            "track_id": records["track_id"].astype(str),
            "path": records["path"].astype(str),
            "duration_s": pd.to_numeric(records["duration_s"], errors="coerce").astype(float),
            "tags": [sorted(set(t) & known, key=vocabulary.index) for t in records["tags"]],
            "split": split,
            "artist": records["artist"].astype(object).where(records["artist"].notna(), None),
        }
    )
    if drop_untagged:
        out = out[out["tags"].map(len) > 0]
    out["shard"] = assign_shards(out["track_id"], n_shards=n_shards)
    out = out.sort_values("track_id", kind="stable").reset_index(drop=True)
    return out, vocabulary, checks


def write_shard_lists(manifest: pd.DataFrame, *, shard_dir: Path, n_shards: int) -> list[int]:
    """Write ``{shard_dir}/{shard:04d}.parquet`` (track_id, path), only where content changed.

    Unchanged files keep their modification time, so Snakemake leaves their features alone.
    Shard files beyond ``n_shards`` (from an earlier, larger setting) are removed.

    Returns
    -------
    list of int
        The shards whose list was (re)written.
    """
    shard_dir = Path(shard_dir)
    shard_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    by_shard = dict(tuple(manifest.groupby("shard", sort=True)))
    for shard in range(n_shards):
        part = by_shard.get(shard, manifest.iloc[:0])
        table = part[SHARD_COLUMNS].sort_values("track_id").reset_index(drop=True)
        path = shard_dir / f"{shard_name(shard)}.parquet"
        if path.exists():
            try:
                if pd.read_parquet(path).equals(table):
                    continue
            except (OSError, ValueError):
                pass  # unreadable: rewrite it
        table.to_parquet(path, index=False)
        changed.append(shard)
    for stale in shard_dir.glob("*.parquet"):
        if not stale.stem.isdigit() or int(stale.stem) >= n_shards:
            stale.unlink()
    return changed


def write_vocabulary(
    manifest: pd.DataFrame,
    vocabulary: list[str],
    *,
    path: Path,
    checks: RecordChecks | None = None,
) -> None:
    """Write the vocabulary with its per-split positive counts as JSON.

    Keys: ``tags``, ``counts`` (tag -> split -> tracks), ``n_tracks`` (split -> tracks) and,
    with ``checks``, ``checks``: :meth:`RecordChecks.summary` (duplicate audio files, paths
    outside the root, escaped track ids: counts and first examples).
    """
    counts = {
        split: Counter(t for row in manifest.loc[manifest["split"] == split, "tags"] for t in row)
        for split in SPLITS
    }
    payload: dict[str, Any] = {
        "tags": vocabulary,
        "counts": {tag: {s: counts[s].get(tag, 0) for s in SPLITS} for tag in vocabulary},
        "n_tracks": {s: int((manifest["split"] == s).sum()) for s in SPLITS},
    }
    if checks is not None:
        payload["checks"] = checks.summary()
    write_json(payload, path)


def make_manifest(
    *,
    entry: Mapping[str, Any],
    root: Path,
    manifest_path: Path,
    vocabulary_path: Path,
    shard_dir: Path,
    format: str | None = None,
    dataset: str | None = None,
    summary_path: Path | None = None,
    failed_path: Path | None = None,
) -> dict[str, Any]:
    """The manifest step of one dataset: read it, check every audio file, split, shard, and
    write all outputs.

    Order: the adapter's records; the ``split_lists`` when given
    (:mod:`pipeline.datasets.split_lists`: tracks in no list leave); every audio path stat-ed
    (:mod:`pipeline.datasets.file_check`: all missing, or more than
    ``max_missing_fraction``, stops here; fewer leave the manifest as failure rows); then
    the checks of :func:`build_manifest`, the vocabulary, splits and shards.

    Parameters
    ----------
    entry : mapping
        The dataset's validated config entry (adapter options, ``shards``, ``vocabulary``,
        ``split``, optional ``split_lists`` and ``max_missing_fraction``): the schema's
        defaults filled in, as :func:`pipeline.config.validate_config` returns it.
    root : Path
        Folder the adapter reads.
    manifest_path, vocabulary_path : Path
        Where ``manifest.parquet`` and ``vocabulary.json`` go.
    shard_dir : Path
        Folder of the per-shard track lists (rewritten only where changed).
    format : str, optional
        Adapter to use instead of ``entry["format"]`` (generated datasets are read as tables).
    dataset : str, optional
        The dataset's config name, for messages and the summary.
    summary_path : Path, optional
        Where the manifest summary (the returned dict, JSON) goes.
    failed_path : Path, optional
        Where the failure table of the tracks whose audio is missing or unreadable goes
        (Parquet, ``track_id, path, stage, level, error``; written even when empty).

    Returns
    -------
    dict
        ``dataset``, ``format``, ``root``, ``split_name`` (:func:`split_description`),
        ``n_tracks``, per split, ``n_tags``, ``changed_shards``, ``files`` (found / missing /
        unreadable counts and first paths), ``split_lists`` (when given), ``adapter`` (what
        the adapter reports: audio variant, tracks in no split file, ...), ``warnings`` and
        ``checks`` (:meth:`RecordChecks.summary`, also written into ``vocabulary.json``).

    Raises
    ------
    ConfigError
        The adapter's errors; no audio file usable, or more than ``max_missing_fraction`` of
        them missing (one line naming the dataset, the first paths and the likely cause).
    """
    read_format = format or entry["format"]
    records = load_dataset_records(format=read_format, root=root, options=entry)
    adapter_report = dict(records.attrs.get("report", {}))
    name = dataset or "dataset"
    label = f"dataset '{printable(name)}' (format {entry['format']!r}, root '{printable(root)}')"
    warnings: list[str] = [str(w) for w in records.attrs.get("warnings", [])]

    lists_report = None
    if entry.get("split_lists"):
        lists = split_list_paths(root=Path(root), value=entry["split_lists"])
        records, lists_report, found = apply_split_lists(records, lists=lists, root=root)
        warnings += found

    spec = dataset_format(entry["format"])
    records, file_check, found = apply_file_check(
        records,
        dataset=label,
        max_missing_fraction=float(entry.get("max_missing_fraction", DEFAULT_MAX_MISSING_FRACTION)),
        hint=spec.missing_hint,
    )
    warnings += found
    for line in warnings:
        log.warning("%s", line)

    vocab_cfg, split_cfg = entry["vocabulary"], entry["split"]
    n_shards = int(entry["shards"])
    manifest, vocabulary, checks = build_manifest(
        records,
        n_shards=n_shards,
        top_n=vocab_cfg["top_n"],
        min_count=vocab_cfg["min_count"],
        drop_untagged=vocab_cfg["drop_untagged"],
        seed=split_cfg["seed"],
        valid_fraction=split_cfg["valid_fraction"],
        test_fraction=split_cfg["test_fraction"],
        duplicate_audio=entry.get("duplicate_audio", "keep_first"),
        root=root,
    )
    Path(manifest_path).parent.mkdir(parents=True, exist_ok=True)
    manifest.to_parquet(manifest_path, index=False)
    write_vocabulary(manifest, vocabulary, path=vocabulary_path, checks=checks)
    changed = write_shard_lists(manifest, shard_dir=shard_dir, n_shards=n_shards)
    if failed_path is not None:
        Path(failed_path).parent.mkdir(parents=True, exist_ok=True)
        file_check.failures().to_parquet(failed_path, index=False)
    summary: dict[str, Any] = {
        "dataset": name,
        "format": entry["format"],
        "root": printable(str(root)),
        "split_name": split_description(entry),
        "n_tracks": len(manifest),
        **{f"n_{s}": int((manifest["split"] == s).sum()) for s in SPLITS},
        "n_tags": len(vocabulary),
        "changed_shards": changed,
        "files": file_check.summary(),
        "split_lists": lists_report,
        "adapter": adapter_report,
        "warnings": warnings,
        "checks": checks.summary(),
    }
    if summary_path is not None:
        write_json(summary, summary_path)
    log.info("manifest %s: %s", printable(manifest_path), summary)
    return summary
