"""The failure table of a shard: one row per problem a track ran into while extracted.

``level`` "error" means the track was left out of the store, "warning" that it was stored
but something is worth a look (silent, truncated, decoded by the fallback decoder). Written
with PyArrow alone, so a feature job does not load pandas (0.3-0.4 s of its fixed cost):
``pa.array`` and ``pa.table`` on Python lists ask pyarrow's lazy pandas shim whether the input
is a pandas object, which imports pandas, so the columns are built from their buffers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import utf8_safe

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

    columns = [_string_array([str(row[name]) for row in failures]) for name in FAILURE_COLUMNS]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays(columns, names=FAILURE_COLUMNS), path)


def _string_array(values: Sequence[str]) -> Any:
    """A ``pyarrow.StringArray`` built from its offset and data buffers (no pandas import).

    A file name that is not UTF-8 is written escaped (:func:`pipeline.errors.utf8_safe`).
    """
    import numpy as np
    import pyarrow as pa

    encoded = [utf8_safe(v).encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)  # a failure table is far below 2 GB
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return pa.StringArray.from_buffers(
        len(encoded), pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(encoded))
    )
