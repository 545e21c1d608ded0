"""Taggrams at a model's own resolution (:mod:`pipeline.inference.chunks`): a crop model on a
synthetic signal gives ``ceil(audio frames / chunk)`` columns per window, at the right time
stamps; a whole-window model keeps one column per window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.inference.chunks import (
    ChunkTaggram,
    chunk_resolution,
    chunk_seconds,
    chunk_taggram,
    merge_chunks,
)
from pipeline.inference.file_tagger import FileTagger
from pipeline.inference.network import NetworkTagger
from tests.helpers.audio import write_audio
from tests.helpers.checkpoints import random_network_checkpoint
from tests.helpers.synthetic import SETTINGS

FRAME_S = 256 / 16000  # one hop of the synthetic feature settings
WINDOW_S = 63 * FRAME_S  # 1.008 s, 64 frames


def test_resolution_of_crop_and_whole_window_models() -> None:
    assert chunk_resolution(NetworkTagger(random_network_checkpoint(crop_frames=32))) == 32
    assert chunk_resolution(NetworkTagger(random_network_checkpoint(crop_frames=None))) is None
    assert chunk_resolution(NetworkTagger(random_network_checkpoint("lstm"))) is None
    assert chunk_seconds(SETTINGS, 32) == pytest.approx(0.512)


@pytest.mark.parametrize(
    ("duration_s", "starts_s"),
    [
        # 2 full windows (2 chunks each) + a 0.484 s tail: 32 frames of audio, one chunk
        (2.5, [0.0, 0.512, WINDOW_S, WINDOW_S + 0.512, 2 * WINDOW_S]),
        # a 0.684 s tail: 44 frames, ceil(44 / 32) = 2 chunks, the last ending with the audio
        (2.7, [0.0, 0.512, WINDOW_S, WINDOW_S + 0.512, 2 * WINDOW_S, 2 * WINDOW_S + 12 * FRAME_S]),
    ],
)
def test_a_chunk_model_tags_a_file_at_its_resolution(
    tmp_path: Path, duration_s: float, starts_s: list[float]
) -> None:
    tagger = NetworkTagger(random_network_checkpoint(crop_frames=32, eval_chunks=2))
    path = write_audio(tmp_path / "tone.wav", duration_s=duration_s, freq_hz=300.0)
    result = FileTagger(tagger, batch_windows=2, chunks=True).tag(path)  # chunks across batches
    assert result.n_windows == 3
    assert result.chunk_start_s is not None and result.chunk_probs is not None
    np.testing.assert_allclose(result.chunk_start_s, starts_s, atol=1e-9)
    assert result.chunk_probs.shape == (len(starts_s), len(result.tags))
    assert result.chunk_window.tolist() == [0, 0, 1, 1, 2, 2][: len(starts_s)]
    assert result.chunk_s == pytest.approx(0.512)
    # a full window's two evaluation crops are its two chunks: its probability is their mean
    for window in (0, 1):
        chunks = result.chunk_probs[result.chunk_window == window]
        np.testing.assert_allclose(chunks.mean(axis=0), result.window_probs[window], atol=1e-5)
    probs, starts, column_s = result.taggram()
    assert probs is result.chunk_probs and starts is result.chunk_start_s and column_s == 0.512


def test_a_whole_window_model_keeps_one_column_per_window(tmp_path: Path) -> None:
    tagger = NetworkTagger(random_network_checkpoint(crop_frames=None))
    result = FileTagger(tagger, chunks=True).tag(write_audio(tmp_path / "t.wav", duration_s=2.5))
    assert result.chunk_probs is None and result.chunk_start_s is None
    probs, starts, column_s = result.taggram()
    assert probs is result.window_probs and column_s is None
    np.testing.assert_allclose(starts, [0.0, WINDOW_S, 2 * WINDOW_S])
    with pytest.raises(PipelineError, match="whole windows only"):
        tagger.predict_chunks(np.zeros((1, 16, 64), np.float16))


def test_chunk_taggram_of_stored_windows_counts_and_times() -> None:
    tagger = NetworkTagger(random_network_checkpoint(crop_frames=24))
    windows = np.random.default_rng(0).normal(-60, 4, size=(2, 16, 64)).astype(np.float16)
    taggram = chunk_taggram(
        tagger,
        windows,
        valid_frames=np.array([64, 30]),
        window_start_s=np.array([10.0, 11.008]),
        first_window=5,
    )
    # ceil(64 / 24) = 3 chunks (0, 24, 40), ceil(30 / 24) = 2 chunks (0, 6)
    assert taggram.window.tolist() == [5, 5, 5, 6, 6]
    np.testing.assert_allclose(
        taggram.start_s,
        [10.0, 10.0 + 24 * FRAME_S, 10.0 + 40 * FRAME_S, 11.008, 11.008 + 6 * FRAME_S],
    )
    assert taggram.probs.shape == (5, 2) and ((taggram.probs > 0) & (taggram.probs < 1)).all()
    assert taggram.chunk_s == pytest.approx(24 * FRAME_S)
    with pytest.raises(PipelineError, match="no chunk resolution"):
        chunk_taggram(
            NetworkTagger(random_network_checkpoint(crop_frames=None)),
            windows,
            valid_frames=np.array([64, 30]),
            window_start_s=np.zeros(2),
        )


def test_merging_overlapping_windows_keeps_increasing_times() -> None:
    def part(starts: list[float], window: int) -> ChunkTaggram:
        n = len(starts)
        return ChunkTaggram(
            probs=np.full((n, 1), window, np.float32),
            window=np.full(n, window),
            start_s=np.array(starts),
            chunk_s=0.5,
        )

    merged = merge_chunks([part([0.0, 0.5, 0.9], 0), part([0.5, 1.0, 1.4], 1)])
    assert merged.start_s.tolist() == [0.0, 0.5, 0.9, 1.0, 1.4]
    assert merged.window.tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(PipelineError, match="no chunks"):
        merge_chunks([])


def test_chunks_only_when_asked(tmp_path: Path) -> None:
    """Chunk scoring runs the model again: off by default (batch tagging has no taggram)."""
    tagger = NetworkTagger(random_network_checkpoint(crop_frames=32))
    result = FileTagger(tagger).tag(write_audio(tmp_path / "t.wav", duration_s=2.5))
    assert result.chunk_probs is None and result.taggram()[2] is None
