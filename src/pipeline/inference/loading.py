"""Load any checkpoint kind as a :class:`~pipeline.inference.registry.Tagger`."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import PipelineError

# Every tagger kind registers itself with @register_tagger when its module is imported; add
# new kinds here.
from pipeline.inference import bag_of_frames, embedding, network, sequence, zero_shot  # noqa: F401
from pipeline.inference.registry import TAGGER_KINDS, Tagger
from pipeline.io.checkpoint import load_checkpoint

__all__ = ["load_tagger"]


def load_tagger(path: Path, *, device: str = "cpu") -> Tagger:
    """Load a checkpoint as a tagger.

    Parameters
    ----------
    path : Path
        A checkpoint written by :func:`pipeline.io.checkpoint.save_checkpoint`.
    device : str
        Torch device for network taggers (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

    Returns
    -------
    Tagger

    Raises
    ------
    PipelineError
        The file is not a readable checkpoint, or its kind has no registered tagger.
    """
    checkpoint = load_checkpoint(Path(path))
    kind = checkpoint["kind"]
    if kind not in TAGGER_KINDS:
        raise PipelineError(
            f"checkpoint {str(path)!r} is of kind {kind!r}; known kinds: {sorted(TAGGER_KINDS)}"
        )
    return TAGGER_KINDS[kind](checkpoint, device)
