"""A shard embedded by a pretrained encoder: the same store layout and failure table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.features.extract import extract_shard
from pipeline.features.settings import FeatureSettings
from pipeline.io.store import FeatureStore
from tests.helpers.audio import write_audio
from tests.helpers.encoders import TINY_RATE, encoder_features


def test_shard_store_holds_layers_by_dim_float16_with_model_attributes(tiny_encoders, tmp_path):
    paths = [
        write_audio(tmp_path / "a.wav", duration_s=4.5, sample_rate=TINY_RATE, seed=1),
        write_audio(tmp_path / "b.flac", duration_s=2.0, sample_rate=22050, freq_hz=220, seed=2),
    ]
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    tracks = pd.DataFrame(
        {"track_id": ["a", "b", "bad"], "path": [*map(str, paths), str(tmp_path / "bad.wav")]}
    )
    settings = FeatureSettings.from_dict(encoder_features(tiny_encoders["hubert"]), name="enc")
    summary = extract_shard(
        tracks=tracks,
        settings=settings,
        store_path=tmp_path / "0.zarr",
        failed_path=tmp_path / "0.failed.parquet",
        attrs={"dataset": "tiny", "shard": "0"},
    )
    assert summary["n_stored"] == 2 and summary["n_failed"] == 1
    store = FeatureStore(tmp_path / "0.zarr")
    windows = np.asarray(store.windows[:])
    assert windows.dtype == np.float16 and windows.shape == (summary["n_windows"], 4, 32)
    assert np.isfinite(windows.astype(np.float32)).all()
    attrs = store.attrs
    assert attrs["encoder"]["model"] == str(tiny_encoders["hubert"])
    assert attrs["encoder"]["licence"] == "cc-by-nc-4.0"
    assert attrs["features"]["encoder"]["dim"] == 32
    stored = FeatureSettings.from_dict(attrs["features"])
    assert stored.n_frames == 32 and stored.encoder.n_layers == 4
    failed = pd.read_parquet(tmp_path / "0.failed.parquet")
    assert list(failed.loc[failed["level"] == "error", "track_id"]) == ["bad"]
    # a track's windows are those the extractor gives for its decoded audio
    idx = store.index()
    assert list(idx["track_id"]) == ["a", "b"]
    assert np.diff(idx["offsets"]).tolist() == [3, 1]  # 4.5 s: 2 windows + a 0.5 s tail
