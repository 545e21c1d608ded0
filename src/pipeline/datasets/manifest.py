"""The manifest: one table per dataset of tracks, tags, splits and shards.

Columns of ``manifest.parquet``: ``track_id, path, duration_s, tags (list, vocabulary tags
only), split, artist, shard``. Shards are assigned by a stable hash of ``track_id``, so adding
a track never moves another one; each shard's track list is rewritten only when its content
changed, so Snakemake re-extracts only the shards that really changed.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.datasets import SPLITS, load_dataset_records
from pipeline.errors import ConfigError
from pipeline.io.files import write_json

__all__ = [
    "SPLITS",
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
) -> pd.Series:
    """Keep official splits; give the other tracks a deterministic, artist-aware split.

    All tracks of one artist (or, without an artist, the track alone) land in the same split,
    drawn from a stable hash of the artist and the seed: adding tracks never moves others.

    Parameters
    ----------
    records : pd.DataFrame
        Columns ``track_id``, ``split`` (None where not official), ``artist`` (None allowed).
    seed : int
    valid_fraction, test_fraction : float
        Expected fractions of groups in the validation and test splits.

    Returns
    -------
    pd.Series of str, aligned with ``records``
    """
    if not 0 <= valid_fraction < 1 or not 0 <= test_fraction < 1:
        raise ConfigError(
            f"split fractions: valid={valid_fraction!r}, test={test_fraction!r} must be in [0, 1)"
        )
    if valid_fraction + test_fraction >= 1:
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
    return split.astype(str)


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
) -> tuple[pd.DataFrame, list[str]]:
    """Turn an adapter's records into the manifest and its tag vocabulary.

    Parameters
    ----------
    records : pd.DataFrame
        An adapter's output (see :mod:`pipeline.datasets`).
    n_shards : int
        Number of shards; fixed in config so that adding tracks never re-shuffles shards.
    top_n, min_count : int
        Vocabulary size and minimum tag frequency (counted over all tracks).
    drop_untagged : bool
        Leave out tracks with no vocabulary tag.
    seed, valid_fraction, test_fraction
        The split of tracks without an official split (:func:`assign_splits`).

    Returns
    -------
    manifest : pd.DataFrame
        Sorted by ``track_id``.
    vocabulary : list of str
    """
    vocabulary = tag_vocabulary(records["tags"], top_n=top_n, min_count=min_count)
    known = set(vocabulary)
    out = pd.DataFrame(
        {
            "track_id": records["track_id"].astype(str),
            "path": records["path"].astype(str),
            "duration_s": pd.to_numeric(records["duration_s"], errors="coerce").astype(float),
            "tags": [sorted(set(t) & known, key=vocabulary.index) for t in records["tags"]],
            "split": assign_splits(
                records, seed=seed, valid_fraction=valid_fraction, test_fraction=test_fraction
            ),
            "artist": records["artist"].astype(object).where(records["artist"].notna(), None),
        }
    )
    if drop_untagged:
        out = out[out["tags"].map(len) > 0]
    out["shard"] = assign_shards(out["track_id"], n_shards=n_shards)
    out = out.sort_values("track_id", kind="stable").reset_index(drop=True)
    return out, vocabulary


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


def write_vocabulary(manifest: pd.DataFrame, vocabulary: list[str], *, path: Path) -> None:
    """Write the vocabulary with its per-split positive counts as JSON."""
    counts = {
        split: Counter(t for row in manifest.loc[manifest["split"] == split, "tags"] for t in row)
        for split in SPLITS
    }
    payload = {
        "tags": vocabulary,
        "counts": {tag: {s: counts[s].get(tag, 0) for s in SPLITS} for tag in vocabulary},
        "n_tracks": {s: int((manifest["split"] == s).sum()) for s in SPLITS},
    }
    write_json(payload, path)


def make_manifest(
    *,
    entry: Mapping[str, Any],
    root: Path,
    manifest_path: Path,
    vocabulary_path: Path,
    shard_dir: Path,
    format: str | None = None,
) -> dict[str, Any]:
    """The manifest step of one dataset: read it, split, shard, and write all outputs.

    Parameters
    ----------
    entry : mapping
        The dataset's validated config entry (adapter options, ``shards``, ``vocabulary``,
        ``split``): the schema's defaults filled in, as :func:`pipeline.config.validate_config`
        returns it.
    root : Path
        Folder the adapter reads.
    manifest_path, vocabulary_path : Path
        Where ``manifest.parquet`` and ``vocabulary.json`` go.
    shard_dir : Path
        Folder of the per-shard track lists (rewritten only where changed).
    format : str, optional
        Adapter to use instead of ``entry["format"]`` (generated datasets are read as tables).

    Returns
    -------
    dict
        Counts: ``n_tracks``, per split, ``n_tags``, ``changed_shards``.
    """
    records = load_dataset_records(format=format or entry["format"], root=root, options=entry)
    vocab_cfg, split_cfg = entry["vocabulary"], entry["split"]
    n_shards = int(entry["shards"])
    manifest, vocabulary = build_manifest(
        records,
        n_shards=n_shards,
        top_n=vocab_cfg["top_n"],
        min_count=vocab_cfg["min_count"],
        drop_untagged=vocab_cfg["drop_untagged"],
        seed=split_cfg["seed"],
        valid_fraction=split_cfg["valid_fraction"],
        test_fraction=split_cfg["test_fraction"],
    )
    Path(manifest_path).parent.mkdir(parents=True, exist_ok=True)
    manifest.to_parquet(manifest_path, index=False)
    write_vocabulary(manifest, vocabulary, path=vocabulary_path)
    changed = write_shard_lists(manifest, shard_dir=shard_dir, n_shards=n_shards)
    summary = {
        "n_tracks": len(manifest),
        **{f"n_{s}": int((manifest["split"] == s).sum()) for s in SPLITS},
        "n_tags": len(vocabulary),
        "changed_shards": changed,
    }
    log.info("manifest %s: %s", manifest_path, summary)
    return summary
