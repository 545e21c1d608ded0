"""Song-level summaries of a stream of windows, one per tagger kind, in bounded memory: what
:class:`~pipeline.inference.file_tagger.FileTagger` folds each batch of windows into.

How windows become a song prediction depends on the tagger, through the registry
:data:`SONG_AGGREGATORS` (key: :func:`aggregator_key`, ``"mean"`` for taggers with
``aggregation="mean"``, else the tagger's ``kind``; add one with
:func:`register_aggregator`). Each gives what ``tagger.predict_track`` and
``tagger.embed_track`` give on the whole track's stored windows, in bounded memory:

- ``"mean"`` (window networks): running means of the window probabilities and embeddings.
- ``"network"`` (sequence models, e.g. the LSTM) and ``"embedding_sequence"`` (an LSTM on
  a frozen network's window embeddings): the model reads the middle ``max_windows``
  windows of the track, as in validation. The file header's length tells where that block
  lies, so only those windows (float16 features, plus one on each side) are kept; when the
  header is missing or wrong (some MP3s) the block is decoded again in a second pass.
- ``"embedding_classifier"``: a linear classifier on the mean embedding, whose song logit
  is the mean of the window logits: running means.
- ``"bag_of_frames"``: the MLP on the codeword histogram of all the track's frames: running
  sums of each window's histogram weighted by the frames it contributes (overlapping frames
  once, as :func:`pipeline.features.windows.pool_sequence`).
- any other ``aggregation="model"`` kind (fallback ``"buffer"``): the first windows up to the
  checkpoint's ``max_duration_s`` (what the feature stage stored of a long track) are kept
  and passed to ``predict_track``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from pipeline.errors import PipelineError
from pipeline.features.windows import hop_frames, middle_block
from pipeline.inference.registry import Tagger
from pipeline.inference.streaming import Reread, WindowBatch
from pipeline.numeric import sigmoid

__all__ = ["SONG_AGGREGATORS", "SongAggregator", "aggregator_key", "register_aggregator"]


class SongAggregator(Protocol):
    """Folds a track's window batches into its song prediction, in bounded memory."""

    def update(self, batch: WindowBatch) -> None:
        """Take the next batch (batches come in order; the last has ``last=True``)."""
        ...

    def finish(self, *, n_windows: int, reread: Reread) -> tuple[np.ndarray, np.ndarray | None]:
        """Song probabilities (n_tags,) and the track embedding (D,) or None."""
        ...


#: Aggregator key -> factory ``(tagger, *, expected_windows, embed) -> SongAggregator``.
SONG_AGGREGATORS: dict[str, Callable[..., SongAggregator]] = {}


def register_aggregator(key: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a song aggregator factory under ``key`` (see :func:`aggregator_key`)."""

    def add(factory: Callable[..., Any]) -> Callable[..., Any]:
        SONG_AGGREGATORS[key] = factory
        return factory

    return add


def aggregator_key(tagger: Tagger) -> str:
    """``"mean"`` for ``aggregation="mean"`` taggers, else the tagger's ``kind``.

    A kind without a registered aggregator falls back to ``"buffer"``.
    """
    if tagger.aggregation == "mean":
        return "mean"
    key = str(getattr(tagger, "kind", type(tagger).__name__))
    return key if key in SONG_AGGREGATORS else "buffer"


# --------------------------------------------------------------------------------------------
# Aggregators
# --------------------------------------------------------------------------------------------


class _RunningMean:
    """Running sums of window rows (float64), for means over a track."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.count = 0

    def add(self, rows: np.ndarray) -> None:
        sums = np.asarray(rows, dtype=np.float64).sum(axis=0)
        self.total = sums if self.total is None else self.total + sums
        self.count += len(rows)

    def mean(self) -> np.ndarray:
        if self.total is None or self.count == 0:
            raise PipelineError("no windows were scored")
        return (self.total / self.count).astype(np.float32)


@register_aggregator("mean")
class MeanOfWindows:
    """Song probabilities = mean window probability; embedding = mean window embedding."""

    def __init__(self, tagger: Tagger, *, expected_windows: int | None, embed: bool) -> None:
        self.probs = _RunningMean()
        self.embeddings = _RunningMean() if embed else None

    def update(self, batch: WindowBatch) -> None:
        self.probs.add(sigmoid(batch.logits))
        if self.embeddings is not None and batch.embeddings is not None:
            self.embeddings.add(batch.embeddings)

    def finish(self, *, n_windows: int, reread: Reread) -> tuple[np.ndarray, np.ndarray | None]:
        return self.probs.mean(), None if self.embeddings is None else self.embeddings.mean()


@register_aggregator("embedding_classifier")
class MeanOfLogits:
    """A linear classifier on the mean embedding: the song logit is the mean window logit."""

    def __init__(self, tagger: Tagger, *, expected_windows: int | None, embed: bool) -> None:
        self.logits = _RunningMean()
        self.embeddings = _RunningMean() if embed else None

    def update(self, batch: WindowBatch) -> None:
        self.logits.add(batch.logits)
        if self.embeddings is not None and batch.embeddings is not None:
            self.embeddings.add(batch.embeddings)

    def finish(self, *, n_windows: int, reread: Reread) -> tuple[np.ndarray, np.ndarray | None]:
        song = sigmoid(self.logits.mean())
        return song, None if self.embeddings is None else self.embeddings.mean()


@register_aggregator("embedding_sequence")
@register_aggregator("network")
class MiddleBlock:
    """A sequence model's song prediction from the track's middle ``max_windows`` windows.

    For any tagger with a ``max_windows`` attribute whose ``predict_track`` and
    ``embed_track`` read only that block (``NetworkTagger`` of a sequence model,
    ``EmbeddingSequenceTagger``).

    Keeps the float16 features of the block the header's length predicts (and one window on
    each side, for resampling rounding); decodes the block again if the prediction was wrong.
    """

    def __init__(self, tagger: Tagger, *, expected_windows: int | None, embed: bool) -> None:
        self.tagger = tagger
        self.embed = embed
        self.max_windows = int(tagger.max_windows)  # type: ignore[attr-defined]
        if expected_windows is None:
            self.keep = (0, self.max_windows)  # right for tracks of up to max_windows windows
        else:
            lo = max(expected_windows - self.max_windows, 0) // 2
            self.keep = (max(lo - 1, 0), lo + self.max_windows + 1)
        self.rows: list[int] = []
        self.windows: list[np.ndarray] = []
        self.valid: list[int] = []

    def update(self, batch: WindowBatch) -> None:
        for i in range(len(batch.windows)):
            row = batch.first + i
            if self.keep[0] <= row < self.keep[1]:
                self.rows.append(row)
                self.windows.append(batch.windows[i])
                self.valid.append(int(batch.valid[i]))

    def block(self, n_windows: int) -> tuple[int, int]:
        """Rows ``start:stop`` the model reads (:func:`pipeline.features.windows.middle_block`)."""
        return middle_block(n_windows, max_windows=self.max_windows)

    def finish(self, *, n_windows: int, reread: Reread) -> tuple[np.ndarray, np.ndarray | None]:
        start, stop = self.block(n_windows)
        if self.rows and self.rows[0] <= start and stop - 1 <= self.rows[-1]:
            lo = start - self.rows[0]
            windows = np.stack(self.windows[lo : lo + stop - start])
            valid = np.asarray(self.valid[lo : lo + stop - start], dtype=np.int64)
        else:
            windows, valid = reread(start, stop)
        _, song = self.tagger.predict_track(windows, valid_frames=valid)
        embedding = self.tagger.embed_track(windows, valid_frames=valid) if self.embed else None
        return song, embedding


@register_aggregator("bag_of_frames")
class FrameHistogram:
    """Bag of frames: the MLP on the codeword histogram of every frame of the track.

    Each window contributes its first ``min(valid, hop_frames)`` frames (the last window all
    its valid frames), as :func:`pipeline.features.windows.pool_sequence`; the track
    histogram is the frame-weighted mean of those per-window histograms.
    """

    def __init__(self, tagger: Tagger, *, expected_windows: int | None, embed: bool) -> None:
        self.tagger = tagger
        self.hop = hop_frames(tagger.features)
        self.sums: np.ndarray | None = None
        self.frames = 0

    def update(self, batch: WindowBatch) -> None:
        keep = np.minimum(batch.valid, self.hop)
        if batch.last:
            keep[-1] = batch.valid[-1]
        hists = self.tagger.embed_windows(batch.windows, valid_frames=keep)  # (n, K)
        sums = (hists.astype(np.float64) * keep[:, None]).sum(axis=0)
        self.sums = sums if self.sums is None else self.sums + sums
        self.frames += int(keep.sum())

    def finish(self, *, n_windows: int, reread: Reread) -> tuple[np.ndarray, np.ndarray | None]:
        if self.sums is None:
            raise PipelineError("no windows were scored")
        histogram = (self.sums / self.frames).astype(np.float32)  # (K,)
        # The tagger's own MLP on a histogram.
        logits = self.tagger.predict_histograms(histogram[None])[0]  # type: ignore[attr-defined]
        return sigmoid(logits), histogram


@register_aggregator("buffer")
class FirstWindows:
    """Fallback for other song-level models: ``predict_track`` on the first windows.

    Keeps at most the windows of the checkpoint's ``window.max_duration_s`` (what the feature
    stage stores of a long track), as float16 features.
    """

    def __init__(self, tagger: Tagger, *, expected_windows: int | None, embed: bool) -> None:
        self.tagger = tagger
        self.embed = embed
        window = tagger.features.window
        self.limit = max(1, math.ceil(window.max_duration_s / window.hop_s))
        self.windows: list[np.ndarray] = []
        self.valid: list[int] = []

    def update(self, batch: WindowBatch) -> None:
        room = max(self.limit - len(self.windows), 0)
        self.windows.extend(batch.windows[:room])
        self.valid.extend(int(v) for v in batch.valid[:room])

    def finish(self, *, n_windows: int, reread: Reread) -> tuple[np.ndarray, np.ndarray | None]:
        windows, valid = np.stack(self.windows), np.asarray(self.valid, dtype=np.int64)
        _, song = self.tagger.predict_track(windows, valid_frames=valid)
        embedding = self.tagger.embed_track(windows, valid_frames=valid) if self.embed else None
        return song, embedding
