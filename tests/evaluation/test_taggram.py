"""Taggram files of a tagged file: per-window (or per-chunk, for crop models) probabilities as
CSV and PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.evaluation.taggram import write_taggram
from pipeline.inference.file_tagger import FileTagger
from pipeline.inference.loading import load_tagger
from pipeline.inference.network import NetworkTagger
from pipeline.inference.streaming import TagResult
from tests.helpers.checkpoints import random_network_checkpoint
from tests.helpers.images import PNG_SIGNATURE, is_png


def test_taggram_files(checkpoints: dict, audio: dict[str, Path], tmp_path: Path) -> None:
    """The crop-trained fcn's taggram is at its own resolution: one row per chunk."""
    file_tagger = FileTagger(load_tagger(checkpoints["fcn"]), embed=True, chunks=True)
    result = file_tagger.tag(audio["wav"])
    assert result.chunk_probs is not None and result.chunk_s is not None
    write_taggram(result, csv_path=tmp_path / "t.csv", png_path=tmp_path / "t.png", title="t")
    table = pd.read_csv(tmp_path / "t.csv")
    assert list(table.columns) == ["window", "chunk", "start_s", "end_s", *result.tags]
    assert table[result.tags].shape == (len(result.chunk_probs), len(result.tags))
    assert len(table) > result.n_windows
    np.testing.assert_allclose(table[result.tags].to_numpy(), result.chunk_probs, atol=1e-5)
    np.testing.assert_allclose(table["start_s"], result.chunk_start_s, atol=1e-5)
    end = np.minimum(result.chunk_start_s + result.chunk_s, result.duration_s)
    np.testing.assert_allclose(table["end_s"], end, atol=1e-5)
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG_SIGNATURE


def test_window_model_taggram_files(audio: dict[str, Path], tmp_path: Path) -> None:
    """A model that scores whole windows keeps one row per window."""
    tagger = NetworkTagger(random_network_checkpoint(crop_frames=None))
    result = FileTagger(tagger).tag(audio["wav"])
    write_taggram(result, csv_path=tmp_path / "t.csv", png_path=tmp_path / "t.png", title="t")
    table = pd.read_csv(tmp_path / "t.csv")
    assert list(table.columns) == ["window", "start_s", *result.tags]
    assert table[result.tags].shape == (result.n_windows, len(result.tags))
    np.testing.assert_allclose(table[result.tags].to_numpy(), result.window_probs, atol=1e-5)
    assert is_png(tmp_path / "t.png")


def _result(window_probs: list[list[float]], *, hop_s: float = 2.0) -> TagResult:
    probs = np.asarray(window_probs, np.float32)
    return TagResult(
        path="x.wav",
        tags=["calm", "loud"],
        song_probs=probs.mean(axis=0),
        window_probs=probs,
        window_start_s=np.arange(len(probs)) * hop_s,
        duration_s=hop_s * len(probs) - 0.5,
        source_sample_rate=16000,
        channels=1,
    )


def test_csv_rows_are_windows_in_order(tmp_path: Path) -> None:
    result = _result([[0.125, 0.875], [0.5, 0.25], [1.0, 0.0]])
    out = tmp_path / "deep" / "folder" / "x.csv"
    write_taggram(result, csv_path=out, png_path=None, title="x")
    assert out.read_text().splitlines() == [
        "window,start_s,calm,loud",
        "0,0,0.125,0.875",
        "1,2,0.5,0.25",
        "2,4,1,0",
    ]
    assert list(out.parent.iterdir()) == [out]  # no PNG without a png_path


def test_one_window_taggram_is_drawn(tmp_path: Path) -> None:
    result = _result([[0.3, 0.7]], hop_s=29.1)
    write_taggram(result, csv_path=tmp_path / "one.csv", png_path=tmp_path / "one.png", title="1")
    assert len(pd.read_csv(tmp_path / "one.csv")) == 1
    assert is_png(tmp_path / "one.png")
