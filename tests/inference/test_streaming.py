"""What streams through file tagging: the window count from a file's header, and the
per-file result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.features.settings import FeatureSettings
from pipeline.inference.streaming import TagResult, expected_windows
from pipeline.io.audio import WindowSettings, iter_windows
from tests.helpers.audio import write_audio


def test_expected_windows_match_the_stream(checkpoints: dict, audio: dict[str, Path]) -> None:
    window = FeatureSettings.from_dict(checkpoints["features"]).window
    for name, path in audio.items():
        actual = sum(1 for _ in iter_windows(path=path, settings=window))
        assert expected_windows(path=path, settings=window) == actual, name
    drop = WindowSettings(length_s=1.0, hop_s=0.5, tail="drop")
    assert expected_windows(path=audio["flac"], settings=drop) == sum(
        1 for _ in iter_windows(path=audio["flac"], settings=drop)
    )
    assert expected_windows(path=audio["wav"].with_name("missing.wav"), settings=window) is None


def test_top_tags_are_ordered() -> None:
    result = TagResult(
        path="x.wav",
        tags=["a", "b", "c", "d"],
        song_probs=np.array([0.2, 0.9, 0.5, 0.9], np.float32),
        window_probs=np.zeros((1, 4), np.float32),
        window_start_s=np.zeros(1),
        duration_s=1.0,
        source_sample_rate=16000,
        channels=1,
    )
    assert [t for t, _ in result.top(3)] == ["b", "d", "c"]  # ties in vocabulary order
    assert [t for t, _ in result.top(0)] == ["b", "d", "c", "a"]
    assert len(result.top(10)) == 4
    record = result.to_record(top=2)
    assert record["tags"] == ["b", "d"] and record["probabilities"] == pytest.approx([0.9, 0.9])
    assert json.loads(json.dumps(record)) == record


@pytest.mark.parametrize(
    ("file", "window", "n"),
    [
        ({"duration_s": 2.5}, {}, 3),  # 2 whole windows and a 0.5 s tail
        ({"duration_s": 2.5}, {"min_tail_s": 0.6}, 2),  # the tail is too short
        ({"duration_s": 2.5}, {"tail": "drop"}, 2),
        ({"duration_s": 2.5}, {"hop_s": 0.5}, 4),  # the last window ends with the file
        ({"duration_s": 2.5, "sample_rate": 8000}, {}, 3),  # resampled
        ({"duration_s": 2.5, "sample_rate": 44100, "channels": 2}, {}, 3),
        ({"duration_s": 2.5}, {"max_duration_s": 1.5}, 2),  # 1 window and a 0.5 s tail
        ({"duration_s": 0.4}, {}, 1),  # shorter than a window: padded
        ({"duration_s": 0.4}, {"tail": "drop"}, 0),
    ],
)
def test_expected_windows_of_known_lengths(
    tmp_path: Path, file: dict, window: dict, n: int
) -> None:
    path = write_audio(tmp_path / "x.wav", **file)
    settings = WindowSettings(**{"length_s": 1.0, "hop_s": 1.0, "min_tail_s": 0.3, **window})
    assert expected_windows(path=path, settings=settings) == n
    if n:  # what the stream then yields
        assert sum(1 for _ in iter_windows(path=path, settings=settings)) == n


def test_expected_windows_of_unreadable_files_are_unknown(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio\n" * 100)
    settings = WindowSettings(length_s=1.0, hop_s=1.0)
    assert expected_windows(path=text, settings=settings) is None
    assert expected_windows(path=tmp_path / "missing.flac", settings=settings) is None
    assert expected_windows(path=tmp_path, settings=settings) is None


def test_result_record_and_window_count() -> None:
    result = TagResult(
        path="a/b.flac",
        tags=["x", "y"],
        song_probs=np.array([0.25, 0.75], np.float32),
        window_probs=np.zeros((3, 2), np.float32),
        window_start_s=np.array([0.0, 1.0, 2.0]),
        duration_s=2.123456789,
        source_sample_rate=np.int64(44100),
        channels=2,
        warnings=["silent"],
    )
    assert result.n_windows == 3
    assert result.embedding is None and result.window_embeddings is None
    assert result.to_record(top=1) == {
        "path": "a/b.flac",
        "ok": True,
        "error": None,
        "warnings": ["silent"],
        "duration_s": 2.123457,
        "n_windows": 3,
        "sample_rate": 44100,
        "channels": 2,
        "tags": ["y"],
        "probabilities": [0.75],
    }
    assert type(result.to_record(top=1)["sample_rate"]) is int
