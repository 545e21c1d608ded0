"""The one checkpoint format: a plain dict that ``torch.load(weights_only=True)`` reads.

A checkpoint alone is enough to tag a new file: it carries the feature settings (including
the window), the train split's band statistics, the tag vocabulary and the model's
architecture, hyper-parameters and weights. Every value is a tensor, list, dict, str, int,
float, bool or None, so loading never unpickles code.

Keys of every checkpoint (``format_version`` 1):

==================  ==========================================================================
``format_version``  1
``kind``            which tagger reads it (:data:`pipeline.inference.registry.TAGGER_KINDS`):
``"network"``
``tags``            the vocabulary, in output order
``features``        ``FeatureSettings.to_dict()`` of the feature set it was trained on
``stats``           ``{"mean": [...], "std": [...]}``, per band, train split
==================  ==========================================================================

and of ``kind="network"`` (:func:`network_checkpoint`): ``architecture``, ``hparams``,
``train_config``, ``input_kind`` (``"window"`` or ``"sequence"``), ``crop_frames`` (int or
None), ``pool_frames``, ``eval_chunks``, ``max_windows``, ``state_dict`` and ``selection``
(``{"criterion", "epoch", "value"}``: how this epoch was chosen). Other kinds add their own
keys next to the common ones.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import PipelineError

__all__ = [
    "FORMAT_VERSION",
    "COMMON_KEYS",
    "NETWORK_KEYS",
    "network_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "save_torch",
    "check_plain",
    "plain",
]

#: The checkpoint format this code writes and the newest it reads.
FORMAT_VERSION = 1

#: Keys every checkpoint has.
COMMON_KEYS = ("format_version", "kind", "tags", "features", "stats")

#: Further keys of a ``kind="network"`` checkpoint.
NETWORK_KEYS = (
    "architecture",
    "hparams",
    "train_config",
    "input_kind",
    "crop_frames",
    "pool_frames",
    "eval_chunks",
    "max_windows",
    "state_dict",
    "selection",
)

_SCALARS = (str, int, float, bool, type(None))


def check_plain(value: Any, *, where: str = "checkpoint") -> None:
    """Raise PipelineError unless ``value`` holds only tensors, lists, dicts and scalars.

    Tuples are refused (one container type keeps checkpoints easy to compare and to write
    as JSON; :func:`network_checkpoint` turns them into lists). Dict keys must be strings,
    or ints as in optimizer states.
    """
    if isinstance(value, (torch.Tensor, *_SCALARS)):
        return
    if isinstance(value, list):
        for k, item in enumerate(value):
            check_plain(item, where=f"{where}[{k}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise PipelineError(f"{where}: key {key!r} is not a str or int")
            check_plain(item, where=f"{where}[{key!r}]")
        return
    raise PipelineError(
        f"{where}: {type(value).__name__} {value!r:.80} is not a tensor, list, dict, "
        "str, int, float, bool or None"
    )


def network_checkpoint(
    *,
    architecture: str,
    hparams: Mapping[str, Any],
    train_config: Mapping[str, Any],
    tags: Sequence[str],
    features: Mapping[str, Any],
    stats: Mapping[str, Any],
    input_kind: str,
    crop_frames: int | None,
    pool_frames: int,
    eval_chunks: int,
    max_windows: int,
    state_dict: Mapping[str, torch.Tensor],
    selection: Mapping[str, Any],
) -> dict[str, Any]:
    """A ``kind="network"`` checkpoint dict (see the module docstring).

    Tensors of ``state_dict`` are detached and moved to the CPU; ``stats`` keeps only
    ``mean`` and ``std``.
    """
    return {
        "format_version": FORMAT_VERSION,
        "kind": "network",
        "architecture": str(architecture),
        "hparams": plain(dict(hparams)),
        "train_config": plain(dict(train_config)),
        "tags": [str(t) for t in tags],
        "features": plain(dict(features)),
        "stats": {
            "mean": [float(v) for v in stats["mean"]],
            "std": [float(v) for v in stats["std"]],
        },
        "input_kind": str(input_kind),
        "crop_frames": None if crop_frames is None else int(crop_frames),
        "pool_frames": int(pool_frames),
        "eval_chunks": int(eval_chunks),
        "max_windows": int(max_windows),
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in state_dict.items()},
        "selection": plain(dict(selection)),
    }


def plain(value: Any) -> Any:
    """Tuples -> lists and mappings -> dicts with str keys, recursively: what a checkpoint
    may hold (config dataclasses' ``asdict`` may hold tuples)."""
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def save_torch(payload: Mapping[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(dict(payload), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_checkpoint(checkpoint: Mapping[str, Any], path: Path) -> None:
    """Check a checkpoint dict and write it atomically.

    Parameters
    ----------
    checkpoint : mapping
        With at least :data:`COMMON_KEYS` (and :data:`NETWORK_KEYS` for ``kind="network"``).
    path : Path

    Raises
    ------
    PipelineError
        A key is missing, or a value is not a tensor, list, dict or scalar.
    """
    _check_keys(checkpoint, path=path)
    check_plain(dict(checkpoint), where=f"checkpoint {str(path)!r}")
    save_torch(checkpoint, path)


def load_checkpoint(path: Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` and check its format.

    Parameters
    ----------
    path : Path
    map_location : str or torch.device
        Where the tensors go.

    Returns
    -------
    dict

    Raises
    ------
    PipelineError
        The file is missing, is not a checkpoint of this pipeline, lacks keys, or was
        written in a newer format than this code reads. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise PipelineError(
            f"{str(path)!r} is not a checkpoint (torch.load failed: {exc})"
        ) from exc
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise PipelineError(
            f"{str(path)!r} is not a checkpoint of this pipeline (no format_version)"
        )
    version = payload["format_version"]
    if not isinstance(version, int) or version < 1:
        raise PipelineError(f"{str(path)!r}: format_version {version!r} is not valid")
    if version > FORMAT_VERSION:
        raise PipelineError(
            f"{str(path)!r} has checkpoint format {version}, newer than this code reads "
            f"({FORMAT_VERSION}): update the pipeline"
        )
    _check_keys(payload, path=path)
    return payload


def _check_keys(checkpoint: Mapping[str, Any], *, path: Path) -> None:
    required = list(COMMON_KEYS)
    if checkpoint.get("kind") == "network":
        required += NETWORK_KEYS
    missing = [k for k in required if k not in checkpoint]
    if missing:
        raise PipelineError(f"checkpoint {str(path)!r} lacks key(s) {missing}")
