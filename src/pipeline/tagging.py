"""Tagging audio files with a checkpoint: a bounded-memory stream from a file to its tags.

:class:`FileTagger` runs the feature stage's own code path on a new file, with the
checkpoint's settings: :func:`pipeline.audio.iter_windows` decodes, down-mixes and resamples
the file in 60 s blocks and cuts the checkpoint's windows; the extractor rebuilt from
``tagger.features`` (:func:`pipeline.features.make_extractor`) computes a few windows at a
time; the features are rounded to float16 as the stores hold them, so the model sees exactly
what it saw in training and evaluation; :func:`pipeline.data.audio_frames` marks the frames
of a padded tail. Each batch is scored (``predict_windows``, ``embed_windows``) and folded
into the song prediction at once, so raw audio and features are never held for the whole
file. What grows with the length of a file is only its per-window outputs: ``n_tags``
probabilities (and ``D`` embedding values) per window, a few kB per hour.

Song predictions
----------------
How windows become a song prediction depends on the tagger, through the registry
:data:`SONG_AGGREGATORS` (key: ``"mean"`` for taggers with ``aggregation="mean"``, else the
tagger's ``kind``). Each gives what ``tagger.predict_track`` and ``tagger.embed_track`` give on
the whole track's stored windows, in bounded memory:

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
  once, as :func:`pipeline.data.pool_sequence`).
- any other ``aggregation="model"`` kind (fallback ``"buffer"``): the first windows up to the
  checkpoint's ``max_duration_s`` (what the feature stage stored of a long track) are kept
  and passed to ``predict_track``.

Length
------
The feature stage reads at most ``window.max_duration_s`` seconds of a track (900 s by
default). Tagging reads whole files unless ``max_duration_s`` is given, so a one-hour
recording gets a taggram of the whole hour; pass the checkpoint's value to tag exactly what
the feature stage would have stored.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import soundfile as sf

from pipeline.audio import DecodeInfo, WindowSettings, iter_windows
from pipeline.data import audio_frames, hop_frames, middle_block
from pipeline.errors import ConfigError, PipelineError
from pipeline.features import make_extractor
from pipeline.tagger import Tagger

__all__ = [
    "EMBEDDING_WRITERS",
    "SONG_AGGREGATORS",
    "FileTagger",
    "SongAggregator",
    "TagResult",
    "WindowBatch",
    "aggregator_key",
    "expected_windows",
    "register_aggregator",
    "write_embeddings",
    "write_taggram",
]

#: Audio samples per feature batch: 4 reference windows (29.1 s at 16 kHz). Larger batches
#: are slower per window on the CPU; short windows are batched up to :data:`_MAX_BATCH`.
_BATCH_SAMPLES = 4 * 465_600
_MAX_BATCH = 64
#: ``max_duration_s`` that means "the whole file" (about 31 years).
_NO_LIMIT_S = 1e9
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
        The song-level probabilities (see the module docstring for how they are made).
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

    @property
    def n_windows(self) -> int:
        """Windows the file was cut into."""
        return len(self.window_start_s)

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
        Frames of each window that hold audio (:func:`pipeline.data.audio_frames`).
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


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    """float32 probabilities, computed in float64 as the taggers do."""
    return (1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))).astype(np.float32)


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
        self.probs.add(_sigmoid(batch.logits))
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
        song = _sigmoid(self.logits.mean())
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
        """Rows ``start:stop`` the model reads (:func:`pipeline.data.middle_block`)."""
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
    its valid frames), as :func:`pipeline.data.pool_sequence`; the track histogram is the
    frame-weighted mean of those per-window histograms.
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
        return _sigmoid(logits), histogram


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


# --------------------------------------------------------------------------------------------
# The stream
# --------------------------------------------------------------------------------------------


def expected_windows(*, path: str | Path, settings: WindowSettings) -> int | None:
    """Windows :func:`pipeline.audio.iter_windows` will yield, from the file header.

    Parameters
    ----------
    path : str or Path
    settings : WindowSettings

    Returns
    -------
    int or None
        None when the header gives no length. Resampling may round the length by a sample,
        and MP3 headers may be wrong, so this is a plan, not a promise.
    """
    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - any unreadable header just means "unknown"
        return None
    frames, rate = int(info.frames), int(info.samplerate)
    if frames <= 0 or frames >= _UNKNOWN_FRAMES or rate <= 0:
        return None
    frames = min(frames, math.ceil(settings.max_duration_s * rate))
    n = frames if rate == settings.sample_rate else round(frames * settings.sample_rate / rate)
    length, hop = settings.length, settings.hop
    if n < length:
        return 1 if settings.tail == "pad" and n > 0 else 0
    full = (n - length) // hop + 1
    tail = n - full * hop
    padded = settings.tail == "pad" and tail - (length - hop) >= max(
        settings.min_tail_s * settings.sample_rate, 1
    )
    return full + int(padded)


class FileTagger:
    """Tags audio files with one tagger, streaming each file in bounded memory.

    Parameters
    ----------
    tagger : Tagger
        From :func:`pipeline.tagger.load_tagger`.
    embed : bool
        Also compute window and track embeddings.
    max_duration_s : float, optional
        Read at most this many seconds of each file; default the whole file.
    batch_windows : int, optional
        Windows per feature and model call; default 4 windows of 29.1 s at 16 kHz (more for
        shorter windows, at most 64).

    Raises
    ------
    ConfigError
        ``max_duration_s`` or ``batch_windows`` is not positive.
    """

    def __init__(
        self,
        tagger: Tagger,
        *,
        embed: bool = False,
        max_duration_s: float | None = None,
        batch_windows: int | None = None,
    ) -> None:
        if max_duration_s is not None and not max_duration_s > 0:
            raise ConfigError(f"max_duration_s: {max_duration_s!r} must be > 0")
        if batch_windows is not None and batch_windows < 1:
            raise ConfigError(f"batch_windows: {batch_windows!r} must be >= 1")
        self.tagger = tagger
        self.embed = embed
        self.features = tagger.features
        self.window = dataclasses.replace(
            tagger.features.window,
            max_duration_s=_NO_LIMIT_S if max_duration_s is None else float(max_duration_s),
        )
        self.extractor = make_extractor(tagger.features)
        self.batch_windows = batch_windows or max(
            1, min(_MAX_BATCH, _BATCH_SAMPLES // self.window.length)
        )

    def _features(self, audio: list[np.ndarray]) -> np.ndarray:
        """(n, samples) windows -> (n, n_bins, n_frames) float16 features, as stored."""
        return self.extractor(np.stack(audio)).astype(np.float16)

    def _batches(self, path: Path, info: DecodeInfo) -> Iterator[tuple[np.ndarray, list, bool]]:
        """(starts_s, audio windows, last) in batches; the last window is held back until
        the stream ends, so that its batch is known to be the last."""
        pending: list[tuple[float, np.ndarray]] = []
        for start, audio in iter_windows(path=path, settings=self.window, info=info):
            pending.append((start, audio))
            if len(pending) > self.batch_windows:
                batch, pending = pending[: self.batch_windows], pending[self.batch_windows :]
                yield np.array([s for s, _ in batch]), [a for _, a in batch], False
        yield np.array([s for s, _ in pending]), [a for _, a in pending], True

    def _valid(self, starts: np.ndarray, *, duration_s: float | None) -> np.ndarray:
        """Valid frames; ``duration_s`` None: windows known to be full of audio."""
        if duration_s is None:  # not the last window: audio runs at least to its end
            duration_s = starts + self.window.length / self.window.sample_rate
        return audio_frames(starts_s=starts, duration_s=duration_s, features=self.features)

    def tag(self, path: str | Path) -> TagResult:
        """Tag one file.

        Parameters
        ----------
        path : str or Path
            Any file :func:`pipeline.audio.iter_windows` reads (WAV, FLAC, OGG, MP3, ...).

        Returns
        -------
        TagResult

        Raises
        ------
        AudioError
            The file is missing, empty, not audio, or has no usable window.
        PipelineError
            The tagger refused the features.
        """
        t0 = time.perf_counter()
        path = Path(path)
        info = DecodeInfo(path=str(path))
        aggregator = SONG_AGGREGATORS[aggregator_key(self.tagger)](
            self.tagger,
            expected_windows=expected_windows(path=path, settings=self.window),
            embed=self.embed,
        )
        probs: list[np.ndarray] = []
        embeddings: list[np.ndarray] = []
        starts: list[np.ndarray] = []
        row = 0
        duration_s = 0.0
        for batch_starts, audio, last in self._batches(path, info):
            windows = self._features(audio)
            # The store keeps durations as float32: use the same value for the last window.
            duration_s = float(np.float32(info.duration_s))
            valid = self._valid(batch_starts, duration_s=duration_s if last else None)
            logits = self.tagger.predict_windows(windows, valid_frames=valid)
            embedded = (
                self.tagger.embed_windows(windows, valid_frames=valid) if self.embed else None
            )
            aggregator.update(
                WindowBatch(
                    first=row,
                    starts_s=batch_starts,
                    windows=windows,
                    valid=valid,
                    logits=logits,
                    embeddings=embedded,
                    last=last,
                )
            )
            probs.append(_sigmoid(logits))
            starts.append(batch_starts)
            if embedded is not None:
                embeddings.append(np.asarray(embedded, dtype=np.float32))
            row += len(windows)

        def reread(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            return self._reread(path, start=start, stop=stop, duration_s=duration_s)

        song, embedding = aggregator.finish(n_windows=row, reread=reread)
        return TagResult(
            path=str(path),
            tags=list(self.tagger.tags),
            song_probs=np.asarray(song, dtype=np.float32),
            window_probs=np.concatenate(probs),
            window_start_s=np.concatenate(starts).astype(np.float64),
            duration_s=info.duration_s,
            source_sample_rate=info.source_sample_rate,
            channels=info.channels,
            warnings=list(info.warnings),
            embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32),
            window_embeddings=np.concatenate(embeddings) if embeddings else None,
            elapsed_s=time.perf_counter() - t0,
        )

    def _reread(
        self, path: Path, *, start: int, stop: int, duration_s: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features (float16) and valid frames of windows ``start:stop``, decoded again."""
        starts: list[float] = []
        audio: list[np.ndarray] = []
        windows = iter_windows(path=path, settings=self.window)
        try:
            for row, (window_start, window) in enumerate(windows):
                if row >= stop:
                    break
                if row >= start:
                    starts.append(window_start)
                    audio.append(window)
        finally:
            windows.close()
        if len(audio) != stop - start:
            raise PipelineError(
                f"{str(path)!r}: windows {start}:{stop} not found on a second reading "
                f"(got {len(audio)}); the file changed while it was tagged"
            )
        features = np.concatenate(
            [
                self._features(audio[i : i + self.batch_windows])
                for i in range(0, len(audio), self.batch_windows)
            ]
        )
        return features, self._valid(np.asarray(starts), duration_s=duration_s)


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


def write_taggram(
    result: TagResult, *, csv_path: str | Path, png_path: str | Path | None, title: str
) -> None:
    """A file's taggram as CSV (and PNG).

    Parameters
    ----------
    result : TagResult
    csv_path : str or Path
        Columns ``window, start_s`` and one probability column per tag; one row per window
        (n_windows x (2 + n_tags)).
    png_path : str or Path, optional
        :func:`pipeline.report.plot_taggram` of the same probabilities.
    title : str
        Of the plot.
    """
    table = pd.DataFrame(result.window_probs, columns=result.tags)
    table.insert(0, "start_s", result.window_start_s)
    table.insert(0, "window", np.arange(result.n_windows))
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv_path, index=False, float_format="%.6g")
    if png_path is not None:
        from pipeline.report import plot_taggram  # matplotlib and sklearn: only when needed

        plot_taggram(
            probabilities=result.window_probs,
            window_start_s=result.window_start_s,
            tags=result.tags,
            out_png=png_path,
            title=title,
            window_hop_s=None if result.n_windows > 1 else result.duration_s or None,
        )


def _embedding_parts(results: Sequence[TagResult]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Track embeddings (n_files, D), window embeddings (n_windows, D), offsets (n_files+1)."""
    missing = [r.path for r in results if r.embedding is None or r.window_embeddings is None]
    if missing:
        raise PipelineError(f"no embeddings were computed for {missing[:3]!r}")
    tracks = np.stack([r.embedding for r in results]).astype(np.float32)
    windows = np.concatenate([r.window_embeddings for r in results]).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum([r.n_windows for r in results])]).astype(np.int64)
    return tracks, windows, offsets


def _write_npz(results: Sequence[TagResult], path: Path) -> None:
    tracks, windows, offsets = _embedding_parts(results)
    np.savez(
        path,
        path=np.array([r.path for r in results], dtype=str),
        embedding=tracks,
        window_embedding=windows,
        offsets=offsets,
        window_start_s=np.concatenate([r.window_start_s for r in results]),
    )


def _write_parquet(results: Sequence[TagResult], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tracks, windows, offsets = _embedding_parts(results)
    dim = tracks.shape[1]
    paths, levels, positions, starts, rows = [], [], [], [], []
    for k, result in enumerate(results):
        paths.append(result.path)
        levels.append("track")
        positions.append(None)
        starts.append(None)
        rows.append(tracks[k])
        for i in range(result.n_windows):
            paths.append(result.path)
            levels.append("window")
            positions.append(i)
            starts.append(float(result.window_start_s[i]))
            rows.append(windows[offsets[k] + i])
    values = np.stack(rows).reshape(-1) if rows else np.zeros(0, np.float32)
    table = pa.table(
        {
            "path": pa.array(paths, pa.string()),
            "level": pa.array(levels, pa.string()),
            "window": pa.array(positions, pa.int32()),
            "start_s": pa.array(starts, pa.float64()),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(values, pa.float32()), dim),
        }
    )
    pq.write_table(table, path)


#: Suffix of ``--embeddings`` -> writer ``(results, path)``.
#:
#: ``.npz``: ``path`` (n_files,), ``embedding`` (n_files, D), ``window_embedding``
#: (n_windows, D) with file ``k``'s windows at ``offsets[k]:offsets[k+1]``, ``offsets``
#: (n_files + 1,), ``window_start_s`` (n_windows,).
#: ``.parquet``: one row per track (``level="track"``, ``window`` and ``start_s`` null) and one
#: per window (``level="window"``), columns ``path, level, window, start_s, embedding``
#: (fixed-size list of D float32).
EMBEDDING_WRITERS: dict[str, Callable[[Sequence[TagResult], Path], None]] = {
    ".npz": _write_npz,
    ".parquet": _write_parquet,
}


def write_embeddings(results: Sequence[TagResult], *, path: str | Path) -> None:
    """Window and track embeddings of tagged files, in the format of ``path``'s suffix.

    Parameters
    ----------
    results : sequence of TagResult
        Tagged with ``embed=True``.
    path : str or Path
        Ends in a suffix of :data:`EMBEDDING_WRITERS` (``.npz`` or ``.parquet``).

    Raises
    ------
    ConfigError
        Unknown suffix.
    """
    path = Path(path)
    writer = EMBEDDING_WRITERS.get(path.suffix.lower())
    if writer is None:
        raise ConfigError(
            f"embeddings file {str(path)!r}: suffix {path.suffix!r} is not one of "
            f"{sorted(EMBEDDING_WRITERS)}"
        )
    if not results:
        raise PipelineError(f"embeddings file {str(path)!r}: no file was tagged")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer(results, path)
