"""Metric learning for retrieval: a projection of track embeddings in which cosine similarity
follows tag overlap, trained with a triplet loss (:func:`train_projection`, in the one training
loop :func:`pipeline.training.loop.fit`), applied with :func:`project`, and saved and loaded
as a plain dict (:func:`save_projection`, :func:`load_projection`). The method is described in
:mod:`pipeline.retrieval.metrics`."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline.errors import ConfigError, PipelineError, check_int
from pipeline.io.checkpoint import check_plain, load_torch_file, save_torch
from pipeline.retrieval.metrics import OVERSAMPLE, check_matrix, check_retrieval, retrieval_metrics
from pipeline.training.loop import fit

__all__ = [
    "HISTORY_COLUMNS",
    "PROJECTION_KIND",
    "PROJECTION_KEYS",
    "TripletConfig",
    "train_projection",
    "project",
    "save_projection",
    "load_projection",
]

log = logging.getLogger(__name__)

#: Columns of the history of :func:`train_projection`.
HISTORY_COLUMNS = ["epoch", "loss", "valid_map_at_k", "n_triplets"]

#: ``kind`` of a projection dict.
PROJECTION_KIND = "triplet_projection"

#: Keys of a projection dict.
PROJECTION_KEYS = ("kind", "config", "input_dim", "mean", "std", "state_dict", "selection")


# ---------------------------------------------------------------------------------------------
# Metric learning
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TripletConfig:
    """How a triplet projection is trained.

    Parameters
    ----------
    dim : int
        Output dimensions.
    hidden : int
        Width of the hidden layer (ReLU); 0 is a linear projection.
    margin : float
        Triplet margin, in cosine distance (> 0).
    epochs : int
        Most epochs (each mines new triplets).
    batch_size : int
        Triplets per optimizer step.
    lr : float
        Adam's learning rate (> 0).
    weight_decay : float
        Adam's L2 penalty (>= 0).
    triplets_per_anchor : int
        Triplets mined per anchor track and epoch.
    patience : int
        Stop after this many epochs without a better valid MAP@k.
    seed : int
        Seeds the weights, the mining and the batch order.
    """

    dim: int = 64
    hidden: int = 128
    margin: float = 0.2
    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    triplets_per_anchor: int = 4
    patience: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("dim", "epochs", "batch_size", "triplets_per_anchor", "patience"):
            check_int(f"triplet.{key}", getattr(self, key), minimum=1)
        check_int("triplet.hidden", self.hidden, minimum=0)
        check_int("triplet.seed", self.seed, minimum=0)
        for key in ("margin", "lr"):
            _config_number(key, getattr(self, key), positive=True)
        _config_number("weight_decay", self.weight_decay, positive=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain settings (projection dicts, summaries)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> TripletConfig:
        """Build from a config entry; unknown keys are a ConfigError naming them."""
        if not isinstance(settings, Mapping):
            raise ConfigError(f"triplet: expected a mapping of settings, got {settings!r:.80}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in set(settings) - known)
        if unknown:
            raise ConfigError(f"triplet: unknown key(s) {unknown}; allowed: {sorted(known)}")
        return cls(**settings)


def _config_number(key: str, value: Any, *, positive: bool) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise ConfigError(
            f"triplet.{key}: {value!r} must be a number {'>' if positive else '>='} 0"
        )


class _Projector(nn.Module):
    """Standardised input -> MLP (or linear map) -> unit-norm output."""

    def __init__(self, *, input_dim: int, hidden: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        if hidden > 0:
            self.net = nn.Sequential(
                nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim)
            )
        else:
            self.net = nn.Sequential(nn.Linear(input_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_dim) -> (B, dim), rows of unit L2 norm."""
        return nn.functional.normalize(self.net(x), dim=1)


def train_projection(
    *,
    train_embeddings: np.ndarray,
    train_tags: Sequence[Sequence[str]],
    valid_embeddings: np.ndarray,
    valid_tags: Sequence[Sequence[str]],
    config: TripletConfig,
    k: int = 20,
    relevance_threshold: float = 0.5,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Learn a projection of embeddings in which cosine similarity follows tag overlap.

    Inputs are standardised with the train split's per-dimension mean and std (kept in the
    projection). Each epoch mines ``triplets_per_anchor`` triplets per train track with at
    least one tag: candidate positives share a random tag of the anchor, candidate negatives
    are random tracks, a pair is ordered so that ``Jaccard(a, p) > Jaccard(a, n)`` (ties are
    dropped), and among ``4 * triplets_per_anchor`` candidates the semi-hard ones
    (``d(a, p) < d(a, n) < d(a, p) + margin`` under the current projection) come first, then
    the hard ones, then the rest. The loss is ``mean(max(0, margin + d(a, p) - d(a, n)))``
    with cosine distance, optimised with Adam. After each epoch the valid split's MAP@k
    (:func:`retrieval_metrics`) is computed; the best epoch's weights are kept and training
    stops after ``patience`` epochs without improvement. The run is a function of
    ``config.seed`` (torch's global random state is restored afterwards).

    Parameters
    ----------
    train_embeddings : np.ndarray, shape (n, D)
    train_tags : sequence of sequences of str, length n
    valid_embeddings : np.ndarray, shape (m, D)
    valid_tags : sequence of sequences of str, length m
    config : TripletConfig
    k : int
        Cut-off of the valid MAP@k.
    relevance_threshold : float
        Relevance threshold of the valid MAP@k.

    Returns
    -------
    projection : dict
        ``kind`` (``"triplet_projection"``), ``config`` (``config.to_dict()``),
        ``input_dim``, ``mean`` and ``std`` (lists of D floats), ``state_dict`` (CPU tensors)
        and ``selection`` (``{"criterion", "epoch", "valid_map_at_k"}``). Only tensors, lists,
        dicts and scalars: :func:`save_projection` writes it.
    history : pd.DataFrame
        One row per epoch with :data:`HISTORY_COLUMNS` (``loss`` is the mean triplet loss).

    Raises
    ------
    PipelineError
        Inputs are malformed, the train tags give no triplet, or no valid track has a
        relevant neighbour (MAP@k could not select an epoch).
    """
    if not isinstance(config, TripletConfig):
        raise PipelineError(f"config must be a TripletConfig, got {type(config).__name__}")
    train_x, train_hot = check_retrieval(
        embeddings=train_embeddings, tags=train_tags, k=k, relevance_threshold=relevance_threshold
    )
    valid_x, _ = check_retrieval(
        embeddings=valid_embeddings, tags=valid_tags, k=k, relevance_threshold=relevance_threshold
    )
    if valid_x.shape[1] != train_x.shape[1]:
        raise PipelineError(
            f"valid_embeddings have {valid_x.shape[1]} dimensions but train_embeddings "
            f"{train_x.shape[1]}"
        )
    mean = train_x.astype(np.float64).mean(axis=0)
    std = train_x.astype(np.float64).std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)

    def valid_map(model: _Projector) -> float:
        out = _embed(model, valid_x, mean=mean, std=std)
        return float(
            retrieval_metrics(
                embeddings=out, tags=valid_tags, k=k, relevance_threshold=relevance_threshold
            )["map_at_k"]
        )

    baseline = retrieval_metrics(
        embeddings=(valid_x - mean) / std,
        tags=valid_tags,
        k=k,
        relevance_threshold=relevance_threshold,
    )
    if baseline["n_queries"] == 0:
        raise PipelineError(
            f"no valid track has a neighbour with tag overlap >= {relevance_threshold}: "
            "MAP@k cannot choose an epoch (lower relevance_threshold or use more tracks)"
        )
    log.info(
        "triplet projection: %d train, %d valid tracks; valid MAP@%d of the standardised "
        "input %.4f",
        len(train_x),
        len(valid_x),
        k,
        baseline["map_at_k"],
    )

    rng = np.random.default_rng(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = _Projector(input_dim=train_x.shape[1], hidden=config.hidden, dim=config.dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    x = torch.from_numpy(((train_x - mean) / std).astype(np.float32))
    miner = _TripletMiner(train_hot)
    n_triplets = 0

    def batches(epoch: int) -> list[torch.Tensor]:
        """The epoch's triplets, mined with the current projection, shuffled, in batches."""
        nonlocal n_triplets
        current = _embed(model, train_x, mean=mean, std=std)
        triplets = miner.mine(
            rng=rng,
            embeddings=current,
            per_anchor=config.triplets_per_anchor,
            margin=config.margin,
        )
        if len(triplets) == 0:
            raise PipelineError(
                "train_tags give no triplet: no track has two others with different tag "
                "overlaps to it"
            )
        triplets = triplets[rng.permutation(len(triplets))]
        n_triplets = len(triplets)
        return [
            torch.from_numpy(triplets[start : start + config.batch_size])  # (B, 3)
            for start in range(0, len(triplets), config.batch_size)
        ]

    def batch_loss(batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        anchor, positive, negative = (model(x[batch[:, j]]) for j in range(3))  # (B, dim)
        d_ap = 1.0 - (anchor * positive).sum(dim=1)
        d_an = 1.0 - (anchor * negative).sum(dim=1)
        return torch.relu(config.margin + d_ap - d_an).mean(), float(len(batch))

    state = fit(
        model=model,
        optimizer=optimizer,
        epochs=config.epochs,
        batches=batches,
        batch_loss=batch_loss,
        validate=lambda epoch: {"valid_map_at_k": valid_map(model), "n_triplets": n_triplets},
        monitor="valid_map_at_k",
        patience=config.patience,
        name="triplet projection",
    )
    best = state.best
    assert best is not None  # at least one epoch ran
    rows = [
        {
            "epoch": row["epoch"],
            "loss": row["train_loss"],
            "valid_map_at_k": row["valid_map_at_k"],
            "n_triplets": row["n_triplets"],
        }
        for row in state.history
    ]
    projection = {
        "kind": PROJECTION_KIND,
        "config": config.to_dict(),
        "input_dim": int(train_x.shape[1]),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "state_dict": best.state_dict,
        "selection": {
            "criterion": f"best valid MAP@{k} (tag Jaccard >= {relevance_threshold})",
            "epoch": int(best.epoch),
            "valid_map_at_k": float(best.value),
        },
    }
    return projection, pd.DataFrame(rows, columns=HISTORY_COLUMNS)


class _TripletMiner:
    """Draws (anchor, positive, negative) train indices ordered by tag overlap."""

    def __init__(self, multi_hot: np.ndarray) -> None:
        self.multi_hot = multi_hot  # (n, V) bool
        self.sizes = multi_hot.sum(axis=1)
        tracks, tag_ids = np.nonzero(multi_hot)  # sorted by track
        self.track_ptr = np.concatenate([[0], np.cumsum(self.sizes)])
        self.track_tag_ids = tag_ids
        by_tag = np.argsort(tag_ids, kind="stable")
        self.tag_members = tracks[by_tag]
        self.tag_ptr = np.concatenate([[0], np.cumsum(multi_hot.sum(axis=0))])
        self.anchors = np.flatnonzero(self.sizes > 0)

    def mine(
        self, *, rng: np.random.Generator, embeddings: np.ndarray, per_anchor: int, margin: float
    ) -> np.ndarray:
        """Triplets of one epoch.

        Parameters
        ----------
        rng : np.random.Generator
        embeddings : np.ndarray, shape (n, dim)
            Current unit-norm outputs of the train tracks (to prefer semi-hard negatives).
        per_anchor : int
        margin : float

        Returns
        -------
        np.ndarray, shape (n_triplets, 3), int64
            Columns anchor, positive, negative with ``Jaccard(a, p) > Jaccard(a, n)``.
        """
        n = len(self.multi_hot)
        n_candidates = per_anchor * OVERSAMPLE
        anchor = np.repeat(self.anchors, n_candidates).reshape(-1, n_candidates)  # (A, C)
        # Positive candidates: a track holding a random tag of the anchor.
        which = (rng.random(anchor.shape) * self.sizes[anchor]).astype(np.int64)
        tag = self.track_tag_ids[self.track_ptr[anchor] + which]
        count = self.tag_ptr[tag + 1] - self.tag_ptr[tag]
        positive = self.tag_members[
            self.tag_ptr[tag] + (rng.random(anchor.shape) * count).astype(np.int64)
        ]
        negative = rng.integers(0, n, size=anchor.shape)
        j_pos = self._pair_jaccard(anchor, positive)
        j_neg = self._pair_jaccard(anchor, negative)
        swap = j_neg > j_pos
        positive, negative = np.where(swap, negative, positive), np.where(swap, positive, negative)
        valid = (j_pos != j_neg) & (positive != anchor) & (negative != anchor)

        anchor_out = embeddings[self.anchors]  # (A, dim)
        d_ap = 1.0 - np.einsum("ad,acd->ac", anchor_out, embeddings[positive])
        d_an = 1.0 - np.einsum("ad,acd->ac", anchor_out, embeddings[negative])
        violation = margin + d_ap - d_an
        # 0: semi-hard, 1: hard (negative closer than positive), 2: easy (no loss), 9: invalid.
        category = np.where(violation <= 0, 2, np.where(d_an > d_ap, 0, 1))
        key = np.where(valid, category, 9) + 0.5 * rng.random(anchor.shape)
        chosen = np.argsort(key, axis=1)[:, :per_anchor]  # (A, per_anchor)
        keep = np.take_along_axis(valid, chosen, axis=1).ravel()
        out = np.stack(
            [
                np.take_along_axis(anchor, chosen, axis=1).ravel(),
                np.take_along_axis(positive, chosen, axis=1).ravel(),
                np.take_along_axis(negative, chosen, axis=1).ravel(),
            ],
            axis=1,
        )
        return out[keep].astype(np.int64)

    def _pair_jaccard(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Jaccard of the tag sets of tracks ``i`` and ``j`` (same shapes), in chunks."""
        flat_i, flat_j = i.ravel(), j.ravel()
        out = np.zeros(len(flat_i), dtype=np.float64)
        step = max(1, 2**24 // max(self.multi_hot.shape[1], 1))
        for start in range(0, len(flat_i), step):
            a, b = flat_i[start : start + step], flat_j[start : start + step]
            inter = (self.multi_hot[a] & self.multi_hot[b]).sum(axis=1)
            union = self.sizes[a] + self.sizes[b] - inter
            out[start : start + step] = np.divide(
                inter, union, out=np.zeros(len(a)), where=union > 0
            )
        return out.reshape(i.shape)


def _embed(model: _Projector, x: np.ndarray, *, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(n, D) raw embeddings -> (n, dim) float32 unit-norm outputs, in blocks, no grad."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), 8192):
            block = ((x[start : start + 8192] - mean) / std).astype(np.float32)
            out.append(model(torch.from_numpy(block)).numpy())
    if not out:
        return np.zeros((0, model.dim), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def project(*, projection: Mapping[str, Any], embeddings: np.ndarray) -> np.ndarray:
    """Apply a trained projection.

    Parameters
    ----------
    projection : mapping
        From :func:`train_projection` or :func:`load_projection`.
    embeddings : np.ndarray, shape (n, D)
        ``D`` must be the projection's ``input_dim``.

    Returns
    -------
    np.ndarray, shape (n, dim), float32
        Unit-norm rows.

    Raises
    ------
    PipelineError
        ``projection`` is not a triplet projection, or ``D`` differs from its ``input_dim``.
    """
    _check_projection(projection, where="projection")
    embeddings = check_matrix(embeddings, name="embeddings")
    input_dim = int(projection["input_dim"])
    if embeddings.shape[1] != input_dim:
        raise PipelineError(
            f"embeddings have {embeddings.shape[1]} dimensions but the projection expects "
            f"input_dim={input_dim}"
        )
    config = TripletConfig.from_dict(projection["config"])
    model = _Projector(input_dim=input_dim, hidden=config.hidden, dim=config.dim)
    try:
        model.load_state_dict(projection["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise PipelineError(f"projection state_dict does not fit its config: {exc}") from exc
    mean = np.asarray(projection["mean"], dtype=np.float64)
    std = np.asarray(projection["std"], dtype=np.float64)
    if mean.shape != (input_dim,) or std.shape != (input_dim,):
        raise PipelineError(
            f"projection mean {mean.shape} and std {std.shape} must both have shape ({input_dim},)"
        )
    return _embed(model, embeddings, mean=mean, std=std)


def save_projection(projection: Mapping[str, Any], path: Path | str) -> None:
    """Check a projection dict and write it atomically with ``torch.save``.

    Raises
    ------
    PipelineError
        A key is missing, ``kind`` is wrong, or a value is not a tensor, list, dict or scalar.
    """
    path = Path(path)
    _check_projection(projection, where=f"projection for {str(path)!r}")
    check_plain(dict(projection), where=f"projection {str(path)!r}")
    save_torch(projection, path)


def load_projection(path: Path | str) -> dict[str, Any]:
    """Read a projection with ``torch.load(weights_only=True)`` (tensors on the CPU).

    Raises
    ------
    PipelineError
        The file is missing, cannot be read, or is not a triplet projection; the message
        names the file.
    """
    path = Path(path)
    payload = load_torch_file(path, what="projection")
    _check_projection(payload, where=repr(str(path)))
    return payload


def _check_projection(projection: Any, *, where: str) -> None:
    if not isinstance(projection, Mapping) or projection.get("kind") != PROJECTION_KIND:
        kind = projection.get("kind") if isinstance(projection, Mapping) else None
        raise PipelineError(
            f"{where} is not a {PROJECTION_KIND!r} (kind is {kind!r}, "
            f"type {type(projection).__name__})"
        )
    missing = [key for key in PROJECTION_KEYS if key not in projection]
    if missing:
        raise PipelineError(f"{where} lacks key(s) {missing}")
