"""The feature index of one feature set: one row per stored track across its shard stores
(:func:`build_index`), the shards' failure tables gathered in one (:func:`collect_failures`),
both written with a summary (:func:`write_feature_index`), and the tracks of one split
(:func:`split_tracks`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import PipelineError
from pipeline.features.failures import FAILURE_COLUMNS
from pipeline.io.files import write_json
from pipeline.io.store import FeatureStore

__all__ = [
    "build_index",
    "collect_failures",
    "write_feature_index",
    "INDEX_COLUMNS",
    "split_tracks",
    "FAILURE_COLUMNS",
]

log = logging.getLogger(__name__)

INDEX_COLUMNS = [
    "track_id",
    "store",
    "track",
    "start",
    "stop",
    "n_windows",
    "duration_s",
    "split",
    "tags",
]


def build_index(*, stores: Sequence[Path], manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per stored track: where its windows are, with its split and tags.

    Parameters
    ----------
    stores : sequence of Path
        The feature set's shard stores.
    manifest : pd.DataFrame
        The dataset's manifest (``track_id``, ``split``, ``tags``).

    Returns
    -------
    pd.DataFrame
        :data:`INDEX_COLUMNS`; ``store`` is the store path, ``track`` the track's position in
        it and ``start:stop`` its rows of the store's ``windows`` array.
    """
    parts = []
    for path in stores:
        idx = FeatureStore(Path(path)).index()
        offsets = idx["offsets"]
        parts.append(
            pd.DataFrame(
                {
                    "track_id": idx["track_id"].astype(str),
                    "store": str(path),
                    "track": np.arange(len(idx["track_id"]), dtype=np.int64),
                    "start": offsets[:-1],
                    "stop": offsets[1:],
                    "n_windows": np.diff(offsets),
                    "duration_s": idx["duration_s"].astype(float),
                }
            )
        )
    index = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=INDEX_COLUMNS)
    meta = manifest[["track_id", "split", "tags"]]
    index = index.drop(columns=["split", "tags"], errors="ignore").merge(
        meta, on="track_id", how="left", validate="one_to_one"
    )
    unknown = index["split"].isna()
    if unknown.any():
        raise PipelineError(
            f"{int(unknown.sum())} stored tracks are not in the manifest, e.g. "
            f"{index.loc[unknown, 'track_id'].iloc[0]!r}: re-run the feature extraction"
        )
    return index[INDEX_COLUMNS].sort_values("track_id", kind="stable").reset_index(drop=True)


def collect_failures(paths: Sequence[Path]) -> pd.DataFrame:
    """All shards' failure tables in one, with a ``shard`` column."""
    parts = [pd.read_parquet(p).assign(shard=Path(p).name.split(".")[0]) for p in paths]
    if not parts:
        return pd.DataFrame(columns=[*FAILURE_COLUMNS, "shard"])
    return pd.concat(parts, ignore_index=True)


def write_feature_index(
    *,
    manifest_path: Path,
    stores: Sequence[Path],
    failed: Sequence[Path],
    index_path: Path,
    failed_path: Path,
    summary_path: Path,
) -> dict[str, Any]:
    """Write a feature set's index, its failures (CSV, for people) and a summary.

    Returns
    -------
    dict
        The summary: tracks in the manifest, stored, failed, warnings, windows, and the
        number of failures per stage.
    """
    manifest = pd.read_parquet(manifest_path)
    index = build_index(stores=stores, manifest=manifest)
    index.to_parquet(index_path, index=False)
    failures = collect_failures(failed)
    failures.to_csv(failed_path, index=False)
    errors = failures[failures["level"] == "error"]
    summary = {
        "n_tracks": len(manifest),
        "n_stored": len(index),
        "n_failed": len(errors),
        "n_warnings": int((failures["level"] == "warning").sum()),
        "n_windows": int(index["n_windows"].sum()),
        "failed_by_stage": {str(k): int(v) for k, v in errors["stage"].value_counts().items()},
        "stored_by_split": {str(k): int(v) for k, v in index["split"].value_counts().items()},
    }
    write_json(summary, summary_path)
    log.info(
        "%s: %d of %d tracks stored, %d failed, %d warnings (details: %s)",
        index_path.parent,
        summary["n_stored"],
        summary["n_tracks"],
        summary["n_failed"],
        summary["n_warnings"],
        failed_path,
    )
    if summary["n_failed"]:
        log.warning("%d tracks failed; see %s", summary["n_failed"], failed_path)
    return summary


def split_tracks(index: pd.DataFrame, *, split: str) -> pd.DataFrame:
    """The tracks of one split that have stored windows, in index order.

    Raises
    ------
    PipelineError
        The index lacks a needed column, or the split has no stored window.
    """
    missing = sorted({"track_id", "store", "start", "stop", "split", "tags"} - set(index))
    if missing:
        raise PipelineError(f"the feature index lacks column(s) {missing}")
    tracks = index[(index["split"] == split) & (index["stop"] > index["start"])]
    if tracks.empty:
        raise PipelineError(f"no stored windows in split {split!r} of the feature index")
    return tracks.reset_index(drop=True)
