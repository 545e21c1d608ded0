"""Similarity search: an embedding index of a collection and the nearest tracks of new files.

An index is a Parquet table with one row per track (``track_id``, ``path``, ``split``,
``tags``, ``embedding``: L2-normalised, fixed-size list of D float32) whose schema metadata
(key ``pipeline.retrieval.similarity``) names how its embeddings were made:

- ``checkpoint``: the tagger whose ``embed_track`` gave them (absolute path when written);
- ``projection``: a metric-learning projection
(:func:`pipeline.retrieval.metric_learning.save_projection`)
  applied after it, or null for the tagger's own embedding space;
- ``space``: ``"tagger"`` or ``"triplet"``.

A new file is embedded the same way (:class:`pipeline.inference.file_tagger.FileTagger` with
``embed=True``, then the projection) and compared by cosine similarity
(:func:`pipeline.retrieval.metrics.nearest`). The batch-tagging table of a collection
(:mod:`pipeline.collection`) carries the same metadata, so it is an index too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import PipelineError
from pipeline.evaluation.predict import embedding_matrix
from pipeline.numeric import l2_normalise
from pipeline.retrieval.metric_learning import (
    load_projection,
    project,
)
from pipeline.retrieval.metrics import nearest

__all__ = [
    "METADATA_KEY",
    "SimilarityIndex",
    "build_index",
    "index_metadata",
    "load_index",
    "write_with_metadata",
]

#: Schema metadata key of an index's description.
METADATA_KEY = b"pipeline.similarity"


def index_metadata(*, checkpoint: str | Path, projection: str | Path | None) -> dict[str, Any]:
    """The description stored with an index (absolute paths)."""
    return {
        "checkpoint": str(Path(checkpoint).resolve()),
        "projection": None if projection is None else str(Path(projection).resolve()),
        "space": "tagger" if projection is None else "triplet",
    }


def _normalised(matrix: np.ndarray) -> np.ndarray:
    """Rows of unit L2 norm, (n, D) -> (n, D) float32, normalised in the input's dtype (unlike
    :func:`pipeline.retrieval.metrics.cosine_similarity`, which casts first); zero rows stay
    zero."""
    return l2_normalise(matrix).astype(np.float32)


def build_index(
    *,
    embeddings: pd.DataFrame,
    manifest: pd.DataFrame,
    checkpoint: str | Path,
    projection: str | Path | None,
    out: str | Path,
) -> int:
    """Write the similarity index of a dataset.

    Parameters
    ----------
    embeddings : pd.DataFrame
        From :func:`pipeline.evaluation.predict.embed_tracks`: ``track_id, split, tags, embedding``.
    manifest : pd.DataFrame
        The dataset's manifest (``track_id``, ``path``): where each track's audio is.
    checkpoint : str or Path
        The checkpoint that made ``embeddings``.
    projection : str or Path, optional
        A metric-learning projection to apply (the index is then in its space).
    out : str or Path
        The ``.parquet`` to write.

    Returns
    -------
    int
        Tracks in the index.
    """

    matrix = embedding_matrix(embeddings)  # (n, D)
    if projection is not None:
        matrix = project(projection=load_projection(projection), embeddings=matrix)
    matrix = _normalised(matrix)
    paths = manifest.set_index(manifest["track_id"].astype(str))["path"]
    ids = embeddings["track_id"].astype(str)
    unknown = sorted(set(ids) - set(paths.index))
    if unknown:
        raise PipelineError(f"{len(unknown)} embedded track(s) not in the manifest: {unknown[:3]}")
    table = pa.table(
        {
            "track_id": pa.array(ids.tolist(), pa.string()),
            "path": pa.array(paths.loc[ids].astype(str).tolist(), pa.string()),
            "split": pa.array(embeddings["split"].astype(str).tolist(), pa.string()),
            "tags": pa.array([list(t) for t in embeddings["tags"]], pa.list_(pa.string())),
            "embedding": pa.FixedSizeListArray.from_arrays(
                pa.array(matrix.reshape(-1), pa.float32()), matrix.shape[1]
            ),
        }
    )
    write_with_metadata(
        table, out=out, metadata=index_metadata(checkpoint=checkpoint, projection=projection)
    )
    return table.num_rows


def write_with_metadata(table: pa.Table, *, out: str | Path, metadata: Mapping[str, Any]) -> None:
    """Write a Parquet table with an index description in its schema metadata."""
    existing = dict(table.schema.metadata or {})
    existing[METADATA_KEY] = json.dumps(dict(metadata)).encode()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(existing), out)


@dataclass(frozen=True, kw_only=True)
class SimilarityIndex:
    """A loaded index.

    Attributes
    ----------
    path : Path
    table : pd.DataFrame
        Every column but ``embedding``; ``tags`` are the true tags of a dataset's index, the
        predicted ``top_tags`` of a tagged collection.
    matrix : np.ndarray, shape (n_tracks, D), float32
        L2-normalised embeddings.
    checkpoint : Path
    projection : Path or None
    space : str
    projector : dict or None
        The loaded projection (read once, when the index is loaded).
    """

    path: Path
    table: pd.DataFrame
    matrix: np.ndarray
    checkpoint: Path
    projection: Path | None
    space: str
    projector: dict[str, Any] | None = None

    def to_space(self, embeddings: np.ndarray) -> np.ndarray:
        """Tagger embeddings (m, D_tagger) -> this index's space (m, D), L2-normalised."""
        if self.projector is not None:
            embeddings = project(projection=self.projector, embeddings=embeddings)
        return _normalised(np.asarray(embeddings, dtype=np.float32))

    def search(self, queries: np.ndarray, *, k: int) -> list[pd.DataFrame]:
        """The ``k`` nearest tracks of each query (already in this index's space).

        Parameters
        ----------
        queries : np.ndarray, shape (m, D)
        k : int

        Returns
        -------
        list of pd.DataFrame
            Per query: ``rank`` (1 = nearest), ``similarity`` (cosine), then the index's
            columns (``track_id``, ``path``, ...), nearest first.
        """
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.matrix.shape[1]:
            raise PipelineError(
                f"query embeddings of shape {queries.shape} do not match index "
                f"{str(self.path)!r} of dimension {self.matrix.shape[1]}"
            )
        order, scores = nearest(index=self.matrix, queries=queries, k=k)
        out = []
        for rows, sims in zip(order, scores, strict=True):
            found = self.table.iloc[rows].reset_index(drop=True)
            found.insert(0, "similarity", sims.astype(np.float64))
            found.insert(0, "rank", np.arange(1, len(rows) + 1))
            out.append(found)
        return out


def load_index(path: str | Path, *, checkpoint: str | Path | None = None) -> SimilarityIndex:
    """Read an index (or a collection table) written with its description.

    Parameters
    ----------
    path : str or Path
    checkpoint : str or Path, optional
        Use this checkpoint instead of the one the index names (e.g. after moving files).

    Raises
    ------
    PipelineError
        The file is missing, not Parquet, or has no ``embedding`` column or description.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"similarity index {str(path)!r} does not exist")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        message = f"similarity index {str(path)!r} is not a Parquet file: {exc}"
        raise PipelineError(message) from None
    meta = (table.schema.metadata or {}).get(METADATA_KEY)
    if meta is None or not {"embedding", "track_id"} <= set(table.column_names):
        raise PipelineError(
            f"{str(path)!r} is not a similarity index (build one with the similarity_index "
            "rule, or tag a collection)"
        )
    described = json.loads(meta)
    if table.num_rows == 0:
        raise PipelineError(f"similarity index {str(path)!r} has no tracks")
    column = table.column("embedding").combine_chunks()
    dim = column.type.list_size
    matrix = _normalised(column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim))
    frame = table.drop(["embedding"]).to_pandas()
    if "tags" not in frame and "top_tags" in frame:  # a tagged collection: predicted tags
        frame["tags"] = frame["top_tags"]
    projection = described.get("projection")
    return SimilarityIndex(
        path=path,
        table=frame,
        matrix=matrix,
        checkpoint=Path(checkpoint) if checkpoint else Path(described["checkpoint"]),
        projection=Path(projection) if projection else None,
        space=described.get("space", "tagger"),
        projector=load_projection(projection) if projection else None,
    )


# --------------------------------------------------------------------------------------------
# Retrieval evaluation (rules metric_learning, evaluate_retrieval, retrieval_table)
# --------------------------------------------------------------------------------------------
