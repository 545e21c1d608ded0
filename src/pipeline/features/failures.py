"""The failure table of a shard: one row per problem a track ran into while extracted.

``level`` "error" means the track was left out of the store, "warning" that it was stored
but something is worth a look (silent, truncated, decoded by the fallback decoder). Written
with PyArrow alone, so a feature job does not load pandas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["FAILURE_COLUMNS", "write_failures"]

#: Columns of a failure table (a feature set's merged table adds ``shard``).
FAILURE_COLUMNS = ["track_id", "path", "stage", "level", "error"]


def write_failures(path: Path, failures: Sequence[Mapping[str, object]]) -> None:
    """Write a failure table as Parquet, every column a string, even when it is empty.

    Parameters
    ----------
    path : Path
        The ``.parquet`` file (its folder is created).
    failures : sequence of mappings
        One per row, with every key of :data:`FAILURE_COLUMNS` (other keys are ignored).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {
        name: pa.array([str(row[name]) for row in failures], type=pa.string())
        for name in FAILURE_COLUMNS
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
