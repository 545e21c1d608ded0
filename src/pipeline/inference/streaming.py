"""What streams through file tagging: the per-file result (:class:`TagResult`), a batch of
feature windows with the tagger's outputs (:class:`WindowBatch`), the :data:`Reread`
callback that decodes windows again, the batch sizes, and :func:`expected_windows`, the
number of windows a file will give, read from its header."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from pipeline.errors import PipelineError
from pipeline.io.audio import WindowSettings
from pipeline.io.files import stat_file

__all__ = ["TagResult", "WindowBatch", "expected_windows"]

#: Audio samples per feature batch: 4 reference windows (29.1 s at 16 kHz). Larger batches
#: are slower per window on the CPU; short windows are batched up to :data:`MAX_BATCH`.
BATCH_SAMPLES = 4 * 465_600
MAX_BATCH = 64
#: ``max_duration_s`` that means "the whole file" (about 31 years).
NO_LIMIT_S = 1e9
#: Header frame counts above this are libsndfile's "unknown length".
_UNKNOWN_FRAMES = 1 << 60


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class TagResult:
    """Tags of one file.

    Attributes
    ----------
    path : str
    tags : list of str
        The vocabulary, in output order.
    song_probs : np.ndarray, shape (n_tags,), float32
        The song-level probabilities (:mod:`pipeline.inference.aggregators` says how they
        are made).
    window_probs : np.ndarray, shape (n_windows, n_tags), float32
        The taggram: each window's probabilities (``sigmoid(predict_windows)``).
    window_start_s : np.ndarray, shape (n_windows,), float64
    duration_s : float
        Decoded duration in seconds (up to ``max_duration_s``).
    source_sample_rate, channels : int
        Of the file, before down-mixing and resampling.
    warnings : list of str
        From decoding (silent, truncated, header longer than the data).
    embedding : np.ndarray, shape (D,), or None
        The track embedding (``embed_track``), when asked for.
    window_embeddings : np.ndarray, shape (n_windows, D), or None
    elapsed_s : float
        Wall time of decoding, features and model.
    chunk_probs : np.ndarray, shape (n_chunks, n_tags), float32, or None
        The taggram at the model's own resolution, for models that score chunks shorter
        than a window (:mod:`pipeline.inference.chunks`); None for the others.
    chunk_start_s : np.ndarray, shape (n_chunks,), float64, or None
        Start of each chunk in the file, seconds (increasing).
    chunk_window : np.ndarray, shape (n_chunks,), int64, or None
        The window each chunk lies in.
    chunk_s : float or None
        Length of a chunk, seconds.
    """

    path: str
    tags: list[str]
    song_probs: np.ndarray
    window_probs: np.ndarray
    window_start_s: np.ndarray
    duration_s: float
    source_sample_rate: int
    channels: int
    warnings: list[str] = field(default_factory=list)
    embedding: np.ndarray | None = None
    window_embeddings: np.ndarray | None = None
    elapsed_s: float = 0.0
    chunk_probs: np.ndarray | None = None
    chunk_start_s: np.ndarray | None = None
    chunk_window: np.ndarray | None = None
    chunk_s: float | None = None

    @property
    def n_windows(self) -> int:
        """Windows the file was cut into."""
        return len(self.window_start_s)

    def taggram(self) -> tuple[np.ndarray, np.ndarray, float | None]:
        """The taggram at the finest resolution the model has.

        Returns
        -------
        probs : np.ndarray, shape (n_columns, n_tags)
            Chunk probabilities when the model scores chunks, else window probabilities.
        start_s : np.ndarray, shape (n_columns,)
            Start of each column in the file, seconds.
        column_s : float or None
            Length of a chunk; None for windows (each spans to the next window's start).
        """
        if self.chunk_probs is not None and self.chunk_start_s is not None:
            return self.chunk_probs, self.chunk_start_s, self.chunk_s
        return self.window_probs, self.window_start_s, None

    def check_finite(self) -> None:
        """Refuse probabilities that are NaN or infinite (they are never printed as tags).

        Raises
        ------
        PipelineError
            Naming the file and how many of its windows are not finite.
        """
        windows = np.asarray(self.window_probs, dtype=np.float64)  # (n_windows, n_tags)
        bad = np.logical_not(np.isfinite(windows).reshape(len(windows), -1).all(axis=1))
        chunks = np.zeros(1) if self.chunk_probs is None else np.asarray(self.chunk_probs)
        if (
            bad.any()
            or not np.isfinite(np.asarray(self.song_probs, dtype=np.float64)).all()
            or not np.isfinite(chunks.astype(np.float64)).all()
        ):
            raise PipelineError(
                f"{str(self.path)!r}: the model's probabilities are not finite (NaN or "
                f"infinity) in {int(bad.sum())} of {bad.size} windows: not tagged"
            )

    def track_embedding(self) -> np.ndarray:
        """The track embedding, shape (D,).

        Raises
        ------
        PipelineError
            No embedding was computed (the file was tagged without ``embed=True``).
        """
        if self.embedding is None:
            raise PipelineError(f"{self.path!r}: no embedding was computed")
        return self.embedding

    def top(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` most probable tags, most probable first (ties: vocabulary order).

        ``n <= 0`` or ``n >= n_tags`` gives every tag.
        """
        order = np.argsort(-self.song_probs.astype(np.float64), kind="stable")
        if 0 < n < len(order):
            order = order[:n]
        return [(self.tags[i], float(self.song_probs[i])) for i in order]

    def to_record(self, *, top: int) -> dict[str, Any]:
        """A JSON-serialisable summary (the ``--json`` object of a tagged file)."""
        best = self.top(top)
        return {
            "path": self.path,
            "ok": True,
            "error": None,
            "warnings": list(self.warnings),
            "duration_s": round(float(self.duration_s), 6),
            "n_windows": self.n_windows,
            "sample_rate": int(self.source_sample_rate),
            "channels": int(self.channels),
            "tags": [tag for tag, _ in best],
            "probabilities": [p for _, p in best],
        }


@dataclass(frozen=True, kw_only=True)
class WindowBatch:
    """A few consecutive windows of one track, their features and the tagger's outputs.

    Attributes
    ----------
    first : int
        Position of the first window in the track.
    starts_s : np.ndarray, shape (n,)
    windows : np.ndarray, shape (n, n_bins, n_frames), float16
        Features as the stores hold them.
    valid : np.ndarray, shape (n,), int64
        Frames of each window that hold audio (:func:`pipeline.features.windows.audio_frames`).
    logits : np.ndarray, shape (n, n_tags)
        ``predict_windows``.
    embeddings : np.ndarray, shape (n, D), or None
        ``embed_windows``, when embeddings were asked for.
    last : bool
        The batch ends with the track's last window.
    """

    first: int
    starts_s: np.ndarray
    windows: np.ndarray
    valid: np.ndarray
    logits: np.ndarray
    embeddings: np.ndarray | None
    last: bool


#: ``reread(start, stop)``: features (float16) and valid frames of windows ``start:stop`` of
#: the track, decoded again (for aggregators whose windows were not kept).
Reread = Callable[[int, int], tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------------------------
# The stream
# --------------------------------------------------------------------------------------------


def expected_windows(*, path: str | Path, settings: WindowSettings) -> int | None:
    """Windows :func:`pipeline.io.audio.iter_windows` will yield, from the file header.

    Parameters
    ----------
    path : str or Path
    settings : WindowSettings

    Returns
    -------
    int or None
        None when the header gives no length, or the path is not a regular non-empty file
        (it is checked with ``os.stat`` first: a named pipe is never opened here). Resampling
        may round the length by a sample, and MP3 headers may be wrong, so this is a plan,
        not a promise.
    """
    try:
        stat_file(path, what="audio")
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - any unreadable header just means "unknown"
        return None
    frames, rate = int(info.frames), int(info.samplerate)
    if frames <= 0 or frames >= _UNKNOWN_FRAMES or rate <= 0:
        return None
    frames = min(frames, math.ceil(settings.max_duration_s * rate))
    n = frames if rate == settings.sample_rate else round(frames * settings.sample_rate / rate)
    length, hop = settings.length, settings.hop
    min_tail = max(settings.min_tail_s * settings.sample_rate, 1)
    if n < length:
        return 1 if settings.tail == "pad" and n >= min_tail else 0
    full = (n - length) // hop + 1
    tail = n - full * hop
    padded = settings.tail == "pad" and tail - (length - hop) >= min_tail
    return full + int(padded)
