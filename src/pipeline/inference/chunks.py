"""Taggrams at a model's own time resolution.

A model trained on crops shorter than a stored window (the short-chunk CNNs of Won et al.
2020, a musicnn-style model with ``train.crop_frames``) scores each chunk of ``crop_frames``
frames on its own; its tagger then offers ``chunk_frames`` and ``predict_chunks``
(:class:`pipeline.inference.network.NetworkTagger`). :func:`chunk_taggram` turns those chunk
predictions into a taggram with time stamps in seconds of the track; taggers without a finer
resolution (``chunk_resolution(tagger) is None``) keep one column per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import PipelineError
from pipeline.features.settings import FeatureSettings
from pipeline.inference.registry import Tagger
from pipeline.numeric import sigmoid

__all__ = ["ChunkTaggram", "chunk_resolution", "chunk_seconds", "chunk_taggram", "merge_chunks"]


def chunk_resolution(tagger: Tagger) -> int | None:
    """The tagger's chunk length in frames, or None when it scores whole windows only."""
    frames = getattr(tagger, "chunk_frames", None)
    return None if frames is None or not hasattr(tagger, "predict_chunks") else int(frames)


def chunk_seconds(features: FeatureSettings, frames: int) -> float:
    """The duration of ``frames`` feature frames, in seconds (a waveform frame is a sample)."""
    return frames * features.hop_length / features.sample_rate


@dataclass(frozen=True, kw_only=True)
class ChunkTaggram:
    """Chunk probabilities of a few windows of one track.

    Attributes
    ----------
    probs : np.ndarray, shape (n_chunks, n_tags), float32
    window : np.ndarray, shape (n_chunks,), int64
        The window of each chunk, counted from the track's first window.
    start_s : np.ndarray, shape (n_chunks,), float64
        Start of each chunk in the track, in seconds.
    chunk_s : float
        Length of a chunk in seconds.
    """

    probs: np.ndarray
    window: np.ndarray
    start_s: np.ndarray
    chunk_s: float


def chunk_taggram(
    tagger: Tagger,
    windows: np.ndarray,
    *,
    valid_frames: np.ndarray,
    window_start_s: np.ndarray,
    first_window: int = 0,
) -> ChunkTaggram:
    """Chunk probabilities of windows, with their time in the track.

    Parameters
    ----------
    tagger : Tagger
        With a chunk resolution (:func:`chunk_resolution` is not None).
    windows : np.ndarray, shape (n_windows, n_bins, n_frames)
        Stored (raw dB) features of consecutive windows of one track.
    valid_frames : np.ndarray, shape (n_windows,)
    window_start_s : np.ndarray, shape (n_windows,)
        Start of each window in the track, seconds.
    first_window : int
        Position of the first of these windows in the track.

    Returns
    -------
    ChunkTaggram
        ``start_s = window_start_s[window] + start_frame * hop_length / sample_rate``.
    """
    frames = chunk_resolution(tagger)
    if frames is None:
        raise PipelineError(f"tagger {type(tagger).__name__} has no chunk resolution")
    logits, window, start = tagger.predict_chunks(  # type: ignore[attr-defined]
        windows, valid_frames=valid_frames
    )
    step = chunk_seconds(tagger.features, 1)
    starts = np.asarray(window_start_s, dtype=np.float64)[window] + start * step
    return ChunkTaggram(
        probs=sigmoid(logits),
        window=np.asarray(window, dtype=np.int64) + first_window,
        start_s=starts,
        chunk_s=chunk_seconds(tagger.features, frames),
    )


def merge_chunks(parts: list[ChunkTaggram]) -> ChunkTaggram:
    """The chunks of a whole track, in time order, from consecutive parts.

    Where windows overlap (``window.hop_s < length_s``), a chunk that starts no later than
    one already kept is dropped, so that start times increase: each moment of the track is
    shown by the first chunk that covers it.
    """
    if not parts:
        raise PipelineError("no chunks to merge")
    probs = np.concatenate([p.probs for p in parts])
    window = np.concatenate([p.window for p in parts])
    start_s = np.concatenate([p.start_s for p in parts])
    earlier = np.maximum.accumulate(np.r_[-np.inf, start_s[:-1]])  # latest start before each
    keep = start_s > earlier
    return ChunkTaggram(
        probs=probs[keep], window=window[keep], start_s=start_s[keep], chunk_s=parts[0].chunk_s
    )
