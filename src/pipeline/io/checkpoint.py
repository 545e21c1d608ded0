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
import re
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import PipelineError
from pipeline.io.files import file_problem, printable

__all__ = [
    "FORMAT_VERSION",
    "COMMON_KEYS",
    "NETWORK_KEYS",
    "network_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_torch_file",
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
        One line that names the file: it does not exist, is a directory, a named pipe or a
        device (refused before it is opened), is empty, is not a torch file, is a damaged or
        truncated one, holds pickled code (never loaded: only plain values are), holds
        something other than a dict with the checkpoint's keys (the missing keys are named),
        or was written in a newer format than this code reads.
    """
    path = Path(path)
    payload = load_torch_file(path, what="checkpoint", map_location=map_location)
    name = str(path)
    if not isinstance(payload, dict):
        raise PipelineError(
            f"{name!r} is not a checkpoint of this pipeline: it holds a "
            f"{type(payload).__name__}, not a dict with keys {list(COMMON_KEYS)}"
        )
    missing = [k for k in COMMON_KEYS if k not in payload]
    if "format_version" in missing:
        found = ", ".join(printable(repr(k)) for k in list(payload)[:8]) or "none"
        raise PipelineError(
            f"{name!r} is not a checkpoint of this pipeline: it lacks key(s) {missing} "
            f"(its keys: {found}{', ...' if len(payload) > 8 else ''})"
        )
    version = payload["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PipelineError(f"{name!r}: format_version {printable(repr(version))} is not valid")
    if version > FORMAT_VERSION:
        raise PipelineError(
            f"{name!r} has checkpoint format {version}, newer than this code reads "
            f"({FORMAT_VERSION}): update the pipeline"
        )
    _check_keys(payload, path=path)
    return payload


#: The first bytes of the files ``torch.save`` writes: a zip archive (the default since
#: PyTorch 1.6), or the legacy format, which starts with a pickled magic number.
_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")

#: Refusals of torch's weights-only unpickler that mean "the file holds pickled objects
#: other than plain values" (code that would run if it were loaded).
_CODE_REFUSALS = re.compile(
    r"GLOBAL (\S+)|Trying to call reduce|Can only build|Can only create new object"
)


def load_torch_file(
    path: Path | str, *, what: str = "checkpoint", map_location: str | torch.device = "cpu"
) -> Any:
    """``torch.load(weights_only=True)`` of a file, with one-line errors naming it.

    The path is checked with :func:`pipeline.io.files.file_problem` first (a directory, a
    named pipe or a device is never opened), then its first bytes: only a zip archive or
    torch's legacy header reaches ``torch.load``. The messages never repeat PyTorch's advice
    to load with ``weights_only=False``: a file that holds pickled code is refused, and its
    code is never run.

    Parameters
    ----------
    path : Path or str
    what : str
        What the file should be (``"checkpoint"``, ``"projection"``), for the messages.
    map_location : str or torch.device

    Returns
    -------
    Any
        What the file holds (tensors, lists, dicts and scalars only).

    Raises
    ------
    PipelineError
        ``'P' is not a <what> (not a torch file)``, ``(a damaged or truncated torch file)``,
        ``(a zip archive, but not a torch file)``, ``'P' holds pickled code (module.Class),
        which is not loaded``, ``'P' is a TorchScript archive``, or a problem of
        :func:`~pipeline.io.files.file_problem`.
    """
    path = Path(path)
    name = str(path)
    problem = file_problem(path, what=what)
    if problem is not None:
        raise PipelineError(problem)
    try:
        with path.open("rb") as f:
            head = f.read(len(_LEGACY_MAGIC))
    except OSError as exc:
        raise PipelineError(f"{what} {name!r} cannot be read: {exc.strerror or exc}") from None
    is_zip = head.startswith(_ZIP_MAGIC)
    if not is_zip and not head.startswith(_LEGACY_MAGIC):
        raise PipelineError(f"{name!r} is not a {what} (not a torch file)")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error says it
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        refusal = _CODE_REFUSALS.search(str(exc))
        if refusal is None:
            raise PipelineError(
                f"{name!r} is not a {what} (a damaged or truncated torch file)"
            ) from None
        code = f" ({printable(refusal.group(1))})" if refusal.group(1) else ""
        raise PipelineError(
            f"{name!r} holds pickled code{code}, which is not loaded: it is not a {what} of "
            "this pipeline, whose files hold only tensors and plain values"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any error of parsing bytes that are not a checkpoint
        # (a truncated zip archive raises OSError "Invalid argument", random bytes IndexError)
        if "TorchScript" in str(exc):
            raise PipelineError(
                f"{name!r} is a TorchScript archive (code), not a {what} of this pipeline"
            ) from None
        if is_zip and zipfile.is_zipfile(path):
            raise PipelineError(
                f"{name!r} is not a {what} (a zip archive, but not a torch file)"
            ) from None
        raise PipelineError(
            f"{name!r} is not a {what} (a damaged or truncated torch file)"
        ) from None


def _check_keys(checkpoint: Mapping[str, Any], *, path: Path) -> None:
    required = list(COMMON_KEYS)
    if checkpoint.get("kind") == "network":
        required += NETWORK_KEYS
    missing = [k for k in required if k not in checkpoint]
    if missing:
        raise PipelineError(f"checkpoint {str(path)!r} lacks key(s) {missing}")
