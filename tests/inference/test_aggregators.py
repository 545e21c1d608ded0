"""Song aggregators of the file stream: each equals its tagger's ``predict_track`` and
``embed_track`` on the whole track, whatever the batches.

Trained checkpoints come from the ``checkpoints`` fixture; the unit tests use taggers with
seeded random weights (:mod:`tests.helpers.checkpoints`) on seeded random windows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.features.extract import extract_track
from pipeline.features.extractors import make_extractor
from pipeline.features.windows import audio_frames, hop_frames
from pipeline.inference.aggregators import SONG_AGGREGATORS, aggregator_key, register_aggregator
from pipeline.inference.bag_of_frames import BagOfFramesTagger
from pipeline.inference.loading import load_tagger
from pipeline.inference.network import NetworkTagger
from pipeline.inference.streaming import WindowBatch
from pipeline.numeric import sigmoid
from tests.helpers.checkpoints import (
    KINDS,
    random_bag_of_frames_checkpoint,
    random_network_checkpoint,
)
from tests.helpers.synthetic import FLOOR, N_BINS, N_FRAMES, SETTINGS


def _windows(n: int, *, seed: int, last_valid: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Seeded float16 dB windows (n, 16, 64) and valid frames; the last one a padded tail."""
    rng = np.random.default_rng(seed)
    windows = rng.normal(-60.0, 6.0, size=(n, N_BINS, N_FRAMES))
    windows[-1, :, last_valid:] = FLOOR
    valid = np.full(n, N_FRAMES, dtype=np.int64)
    valid[-1] = last_valid
    return windows.astype(np.float16), valid


def _feed(aggregator, tagger, windows: np.ndarray, valid: np.ndarray, sizes: list[int]) -> None:
    """The windows to an aggregator in batches of ``sizes``, as FileTagger does."""
    first = 0
    for size in sizes:
        w, v = windows[first : first + size], valid[first : first + size]
        aggregator.update(
            WindowBatch(
                first=first,
                starts_s=np.arange(first, first + size) * SETTINGS.window.hop_s,
                windows=w,
                valid=v,
                logits=tagger.predict_windows(w, valid_frames=v),
                embeddings=tagger.embed_windows(w, valid_frames=v),
                last=first + size == len(windows),
            )
        )
        first += size
    assert first == len(windows)


class _Reread:
    """What FileTagger's second decoding pass gives: rows ``start:stop`` of the track."""

    def __init__(self, windows: np.ndarray, valid: np.ndarray) -> None:
        self.windows, self.valid = windows, valid
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append((start, stop))
        return self.windows[start:stop], self.valid[start:stop]


def test_aggregators_are_chosen_by_registry(checkpoints: dict) -> None:
    keys = {kind: aggregator_key(load_tagger(checkpoints[kind])) for kind in KINDS}
    assert keys == {
        "fcn": "mean",
        "lstm": "network",
        "bag_of_frames": "bag_of_frames",
        "embedding_svm": "embedding_classifier",
        "embedding_lstm": "embedding_sequence",
    }
    assert {
        "mean",
        "network",
        "bag_of_frames",
        "embedding_classifier",
        "embedding_sequence",
        "buffer",
    } <= set(SONG_AGGREGATORS)


def test_unknown_song_models_fall_back_to_the_first_windows(
    checkpoints: dict, audio: dict[str, Path]
) -> None:
    tagger = load_tagger(checkpoints["lstm"])
    aggregator = SONG_AGGREGATORS["buffer"](tagger, expected_windows=None, embed=False)
    assert aggregator.limit == int(np.ceil(900 / tagger.features.window.hop_s))
    windows, valid, _ = _stored_track_from_file(tagger, audio["wav"])
    aggregator.update(
        WindowBatch(
            first=0,
            starts_s=np.zeros(len(windows)),
            windows=windows,
            valid=valid,
            logits=tagger.predict_windows(windows, valid_frames=valid),
            embeddings=None,
            last=True,
        )
    )
    song, embedding = aggregator.finish(n_windows=len(windows), reread=None)
    np.testing.assert_array_equal(song, tagger.predict_track(windows, valid_frames=valid)[1])
    assert embedding is None
    # a long track: only the first `limit` windows are kept, however many batches follow
    capped = SONG_AGGREGATORS["buffer"](tagger, expected_windows=None, embed=True)
    capped.limit = 4
    for first in (0, 3):
        capped.update(
            WindowBatch(
                first=first,
                starts_s=np.zeros(3),
                windows=windows[first : first + 3],
                valid=valid[first : first + 3],
                logits=np.zeros((3, 2)),
                embeddings=None,
                last=first == 3,
            )
        )
    assert len(capped.windows) == 4
    song, embedding = capped.finish(n_windows=6, reread=None)
    _, expected = tagger.predict_track(windows[:4], valid_frames=valid[:4])
    np.testing.assert_array_equal(song, expected)
    assert embedding.shape == (8,)


def _stored_track_from_file(tagger, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the feature stage computes for one file (extract_track), with valid frames."""
    result = extract_track(track_id="t", path=str(path), extractor=make_extractor(tagger.features))
    valid = audio_frames(
        starts_s=result.starts_s, duration_s=result.duration_s, features=tagger.features
    )
    return result.windows, valid, result.starts_s


@pytest.mark.parametrize("sizes", [[5], [2, 2, 1], [1, 1, 1, 1, 1]])
def test_mean_of_windows_equals_predict_track(sizes: list[int]) -> None:
    tagger = NetworkTagger(random_network_checkpoint())
    windows, valid = _windows(5, seed=1)
    aggregator = SONG_AGGREGATORS["mean"](tagger, expected_windows=5, embed=True)
    _feed(aggregator, tagger, windows, valid, sizes)
    song, embedding = aggregator.finish(n_windows=5, reread=_Reread(windows, valid))
    _, expected = tagger.predict_track(windows, valid_frames=valid)
    np.testing.assert_allclose(song, expected, atol=1e-6)
    np.testing.assert_allclose(
        embedding, tagger.embed_track(windows, valid_frames=valid), atol=1e-5
    )
    silent = SONG_AGGREGATORS["mean"](tagger, expected_windows=None, embed=False)
    _feed(silent, tagger, windows, valid, sizes)
    assert silent.finish(n_windows=5, reread=_Reread(windows, valid))[1] is None
    with pytest.raises(PipelineError, match="no windows"):
        SONG_AGGREGATORS["mean"](tagger, expected_windows=0, embed=False).finish(
            n_windows=0, reread=_Reread(windows, valid)
        )


def test_mean_of_logits_is_not_the_mean_of_probabilities() -> None:
    """A linear classifier on the mean embedding: sigmoid of the mean logit."""
    tagger = NetworkTagger(random_network_checkpoint())
    aggregator = SONG_AGGREGATORS["embedding_classifier"](tagger, expected_windows=2, embed=True)
    logits = np.array([[0.0, 4.0], [2.0, -4.0]])
    embeddings = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    for first in (0, 1):
        aggregator.update(
            WindowBatch(
                first=first,
                starts_s=np.array([float(first)]),
                windows=np.zeros((1, N_BINS, N_FRAMES), np.float16),
                valid=np.array([N_FRAMES]),
                logits=logits[first : first + 1],
                embeddings=embeddings[first : first + 1],
                last=first == 1,
            )
        )
    song, embedding = aggregator.finish(n_windows=2, reread=_Reread(np.zeros(0), np.zeros(0)))
    np.testing.assert_allclose(song, sigmoid(np.array([1.0, 0.0])), atol=1e-7)
    assert not np.allclose(song, sigmoid(logits).mean(axis=0))
    np.testing.assert_allclose(embedding, [2.0, 2.0, 2.0])


@pytest.mark.parametrize(
    ("expected", "rereads"),
    [(7, []), (None, [(2, 5)]), (3, [(2, 5)]), (8, [])],
)
def test_middle_block_keeps_the_predicted_block_or_decodes_it_again(
    expected: int | None, rereads: list[tuple[int, int]]
) -> None:
    """A sequence model reading the middle 3 of 7 windows (rows 2:5): the header's length
    says which windows to keep (and one on each side); a wrong guess costs a second pass."""
    tagger = NetworkTagger(random_network_checkpoint("lstm", max_windows=3))
    windows, valid = _windows(7, seed=2)
    aggregator = SONG_AGGREGATORS[aggregator_key(tagger)](
        tagger, expected_windows=expected, embed=True
    )
    assert aggregator_key(tagger) == "network"
    _feed(aggregator, tagger, windows, valid, [3, 3, 1])
    assert len(aggregator.windows) <= 3 + 2
    reread = _Reread(windows, valid)
    song, embedding = aggregator.finish(n_windows=7, reread=reread)
    assert reread.calls == rereads
    _, whole = tagger.predict_track(windows, valid_frames=valid)
    np.testing.assert_allclose(song, whole, atol=1e-6)
    np.testing.assert_allclose(
        embedding, tagger.embed_track(windows, valid_frames=valid), atol=1e-6
    )


@pytest.mark.parametrize("sizes", [[4], [3, 1], [1, 2, 1]])
def test_frame_histogram_equals_the_whole_track_histogram(sizes: list[int]) -> None:
    """Bag of frames: overlapping frames (hop 63 of 64) count once, the tail's padding never."""
    tagger = BagOfFramesTagger(random_bag_of_frames_checkpoint())
    assert hop_frames(tagger.features) == 63 and aggregator_key(tagger) == "bag_of_frames"
    windows, valid = _windows(4, seed=3)
    aggregator = SONG_AGGREGATORS["bag_of_frames"](tagger, expected_windows=4, embed=True)
    _feed(aggregator, tagger, windows, valid, sizes)
    song, histogram = aggregator.finish(n_windows=4, reread=_Reread(windows, valid))
    np.testing.assert_allclose(
        histogram, tagger.embed_track(windows, valid_frames=valid), atol=1e-6
    )
    np.testing.assert_allclose(
        song, tagger.predict_track(windows, valid_frames=valid)[1], atol=1e-6
    )
    assert histogram.sum() == pytest.approx(1.0)


def test_kinds_without_an_aggregator_fall_back_to_the_buffer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window_model = NetworkTagger(random_network_checkpoint())
    sequence_model = NetworkTagger(random_network_checkpoint("lstm"))
    assert aggregator_key(window_model) == "mean" and aggregator_key(sequence_model) == "network"
    monkeypatch.delitem(SONG_AGGREGATORS, "network")
    assert aggregator_key(sequence_model) == "buffer"

    @register_aggregator("network")
    class Again:
        pass

    assert SONG_AGGREGATORS["network"] is Again and aggregator_key(sequence_model) == "network"
