"""Tagging audio files with a checkpoint: :class:`FileTagger`, a bounded-memory stream from a
file to its tags.

:class:`FileTagger` runs the feature stage's own code path on a new file, with the
checkpoint's settings: :func:`pipeline.io.audio.iter_windows` decodes, down-mixes and
resamples the file in 60 s blocks and cuts the checkpoint's windows; the extractor rebuilt
from ``tagger.features`` (:func:`pipeline.features.extractors.make_extractor`) computes a few
windows at a time; the features are rounded to float16 as the stores hold them, so the model
sees exactly what it saw in training and evaluation; :func:`pipeline.features.windows.audio_frames`
marks the frames of a padded tail. Each batch is scored (``predict_windows``,
``embed_windows``) and folded into the song prediction at once by the tagger's song
aggregator (:mod:`pipeline.inference.aggregators`), so raw audio and features are never held
for the whole file. What grows with the length of a file is only its per-window outputs:
``n_tags`` probabilities (and ``D`` embedding values) per window, a few kB per hour. The
result is a :class:`~pipeline.inference.streaming.TagResult`.

Length
------
The feature stage reads at most ``window.max_duration_s`` seconds of a track (900 s by
default). Tagging reads whole files unless ``max_duration_s`` is given, so a one-hour
recording gets a taggram of the whole hour; pass the checkpoint's value to tag exactly what
the feature stage would have stored.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline.errors import AudioError, ConfigError, PipelineError
from pipeline.features.extractors import make_extractor
from pipeline.features.windows import audio_frames
from pipeline.inference.aggregators import SONG_AGGREGATORS, aggregator_key
from pipeline.inference.chunks import ChunkTaggram, chunk_resolution, chunk_taggram, merge_chunks
from pipeline.inference.registry import Tagger
from pipeline.inference.streaming import (
    BATCH_SAMPLES,
    MAX_BATCH,
    NO_LIMIT_S,
    TagResult,
    WindowBatch,
    expected_windows,
)
from pipeline.io.audio import DecodeInfo, iter_windows
from pipeline.io.parallel import one_blas_thread
from pipeline.io.store import nonfinite_windows
from pipeline.numeric import sigmoid, to_float16

__all__ = ["FileTagger"]


class FileTagger:
    """Tags audio files with one tagger, streaming each file in bounded memory.

    Parameters
    ----------
    tagger : Tagger
        From :func:`pipeline.inference.loading.load_tagger`.
    embed : bool
        Also compute window and track embeddings.
    max_duration_s : float, optional
        Read at most this many seconds of each file; default the whole file.
    batch_windows : int, optional
        Windows per feature and model call; default 4 windows of 29.1 s at 16 kHz (more for
        shorter windows, at most 64).
    chunks : bool
        Also compute the taggram at the model's own resolution (``TagResult.chunk_probs``)
        when the model scores chunks shorter than a window
        (:func:`pipeline.inference.chunks.chunk_resolution`); it runs the model once more
        per chunk, so it is off unless a taggram is wanted.

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
        chunks: bool = False,
    ) -> None:
        if max_duration_s is not None and not max_duration_s > 0:
            raise ConfigError(f"max_duration_s: {max_duration_s!r} must be > 0")
        if batch_windows is not None and batch_windows < 1:
            raise ConfigError(f"batch_windows: {batch_windows!r} must be >= 1")
        self.tagger = tagger
        self.embed = embed
        self.chunks = chunks and chunk_resolution(tagger) is not None
        self.features = tagger.features
        self.window = dataclasses.replace(
            tagger.features.window,
            max_duration_s=NO_LIMIT_S if max_duration_s is None else float(max_duration_s),
        )
        self.extractor = make_extractor(tagger.features)
        self.batch_windows = batch_windows or max(
            1, min(MAX_BATCH, BATCH_SAMPLES // self.window.length)
        )

    def _features(self, audio: list[np.ndarray], *, path: Path) -> np.ndarray:
        """(n, samples) windows -> (n, n_bins, n_frames) float16 features, as stored.

        Raises
        ------
        AudioError
            A feature is NaN or infinite as float16 (the stores refuse such windows too).
        """
        features = to_float16(self.extractor(np.stack(audio)))
        bad = np.flatnonzero(nonfinite_windows(features))
        if len(bad):
            raise AudioError(
                f"{str(path)!r}: the features of {len(bad)} window(s) hold NaN or infinity "
                "as float16; the file is not tagged"
            )
        return features

    def _batches(
        self, path: Path, info: DecodeInfo
    ) -> Iterator[tuple[np.ndarray, list[np.ndarray], bool]]:
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
        end: np.ndarray | float
        if duration_s is None:  # not the last window: audio runs at least to its end
            end = starts + self.window.length / self.window.sample_rate
        else:
            end = duration_s
        return audio_frames(starts_s=starts, duration_s=end, features=self.features)

    def tag(self, path: str | Path) -> TagResult:
        """Tag one file.

        Parameters
        ----------
        path : str or Path
            Any file :func:`pipeline.io.audio.iter_windows` reads (WAV, FLAC, OGG, MP3, ...).

        Returns
        -------
        TagResult

        Raises
        ------
        AudioError
            The file is not a regular non-empty file, not audio, holds absurd samples or
            sample rate, changed while it was read, or has no usable window
            (:func:`pipeline.io.audio.iter_windows` lists the rules).
        PipelineError
            The tagger refused the features.
        """
        t0 = time.perf_counter()
        path = Path(path)
        # No file check here: expected_windows and the decoder (iter_windows) each check the
        # path with stat_file before anything opens it, so a named pipe never blocks.
        info = DecodeInfo(path=str(path))
        with one_blas_thread():  # BLAS threads would contend with torch's for the cores
            result = self._tag(path, info=info, t0=t0)
        result.check_finite()
        return result

    def _tag(self, path: Path, *, info: DecodeInfo, t0: float) -> TagResult:
        """The body of :meth:`tag`: decode, features, model, aggregation."""
        aggregator = SONG_AGGREGATORS[aggregator_key(self.tagger)](
            self.tagger,
            expected_windows=expected_windows(path=path, settings=self.window),
            embed=self.embed,
        )
        probs: list[np.ndarray] = []
        chunks: list[ChunkTaggram] = []
        embeddings: list[np.ndarray] = []
        starts: list[np.ndarray] = []
        row = 0
        duration_s = 0.0
        for batch_starts, audio, last in self._batches(path, info):
            windows = self._features(audio, path=path)
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
            probs.append(sigmoid(logits))
            if self.chunks:  # the taggram at the model's own resolution
                chunks.append(
                    chunk_taggram(
                        self.tagger,
                        windows,
                        valid_frames=valid,
                        window_start_s=batch_starts,
                        first_window=row,
                    )
                )
            starts.append(batch_starts)
            if embedded is not None:
                embeddings.append(np.asarray(embedded, dtype=np.float32))
            row += len(windows)

        def reread(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            return self._reread(path, start=start, stop=stop, duration_s=duration_s)

        song, embedding = aggregator.finish(n_windows=row, reread=reread)
        taggram = merge_chunks(chunks) if chunks else None
        result = TagResult(
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
            chunk_probs=None if taggram is None else taggram.probs,
            chunk_start_s=None if taggram is None else taggram.start_s,
            chunk_window=None if taggram is None else taggram.window,
            chunk_s=None if taggram is None else taggram.chunk_s,
        )
        return result

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
                self._features(audio[i : i + self.batch_windows], path=path)
                for i in range(0, len(audio), self.batch_windows)
            ]
        )
        return features, self._valid(np.asarray(starts), duration_s=duration_s)
