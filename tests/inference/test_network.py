"""The network tagger: window and sequence models from ``kind="network"`` checkpoints, crops
scored as in validation, padding read as the band mean.

Trained checkpoints come from the ``trained`` fixture; the unit tests use networks with seeded
random weights (:func:`tests.helpers.checkpoints.random_network_checkpoint`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from pipeline.errors import PipelineError
from pipeline.evaluation.predict import predict_split
from pipeline.features.settings import FeatureSettings
from pipeline.features.windows import audio_frames, crop_starts
from pipeline.inference.loading import load_tagger
from pipeline.inference.network import NetworkTagger, sequence_steps, window_logits
from pipeline.io.checkpoint import load_checkpoint, save_checkpoint
from pipeline.models import build_model
from tests.helpers.checkpoints import random_network_checkpoint
from tests.helpers.synthetic import FLOOR, N_BINS, N_FRAMES


def _track(data: dict, split: str = "test", position: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stored windows and valid frames of one track."""
    row = data["index"][data["index"]["split"] == split].iloc[position]
    group = zarr.open_group(row["store"], mode="r")
    windows = group["windows"][row["start"] : row["stop"]]
    valid = audio_frames(
        starts_s=group["window_start_s"][row["start"] : row["stop"]],
        duration_s=row["duration_s"],
        features=FeatureSettings.from_dict(data["features"]),
    )
    return windows, valid


def test_reloaded_tagger_predicts_identically(trained: dict, tmp_path: Path) -> None:
    copy = tmp_path / "copy.pt"
    save_checkpoint(load_checkpoint(trained["fcn"]), copy)
    a, b = load_tagger(trained["fcn"]), load_tagger(copy)
    windows, valid = _track(trained, position=1)
    for method in ("predict_windows", "embed_windows", "embed_track"):
        out_a = getattr(a, method)(windows, valid_frames=valid)
        out_b = getattr(b, method)(windows, valid_frames=valid)
        np.testing.assert_array_equal(out_a, out_b)
    window_probs, song = a.predict_track(windows, valid_frames=valid)
    assert window_probs is not None and window_probs.shape == (len(windows), 2)
    np.testing.assert_allclose(song, window_probs.mean(axis=0), rtol=1e-6)
    logits = a.predict_windows(windows, valid_frames=valid)
    np.testing.assert_allclose(window_probs, 1 / (1 + np.exp(-logits)), rtol=1e-5)
    assert a.embed_windows(windows, valid_frames=valid).shape == (len(windows), 32)
    assert a.embed_track(windows, valid_frames=valid).shape == (32,)
    assert a.aggregation == "mean" and a.tags == trained["tags"]
    assert a.features == FeatureSettings.from_dict(trained["features"])


def test_sequence_tagger(trained: dict) -> None:
    tagger = load_tagger(trained["lstm"])
    assert isinstance(tagger, NetworkTagger) and tagger.aggregation == "model"
    windows, valid = _track(trained, position=2)
    window_probs, song = tagger.predict_track(windows, valid_frames=valid)
    assert window_probs is None and song.shape == (2,) and ((song > 0) & (song < 1)).all()
    assert tagger.predict_windows(windows, valid_frames=valid).shape == (len(windows), 2)
    assert tagger.embed_track(windows, valid_frames=valid).shape == (8,)
    songs, window_table = predict_split(
        checkpoint=trained["lstm"], index=trained["index"], split="test"
    )
    assert window_table.empty and list(window_table.columns) == [
        "track_id",
        "window",
        "start_s",
        *trained["tags"],
    ]
    row = songs.set_index("track_id").loc[
        trained["index"].query("split == 'test'").iloc[2]["track_id"]
    ]
    np.testing.assert_allclose(row[trained["tags"]].to_numpy(float), song, rtol=1e-6)


def test_tagger_refuses_windows_of_the_wrong_shape(trained: dict) -> None:
    tagger = load_tagger(trained["fcn"])
    with pytest.raises(PipelineError, match=r"\(3, 16, 50\)"):
        tagger.predict_windows(np.zeros((3, 16, 50), np.float16))


def _random_windows(n: int, *, seed: int) -> np.ndarray:
    """Seeded float16 dB windows, shape (n, 16, 64)."""
    rng = np.random.default_rng(seed)
    return rng.normal(-60.0, 6.0, size=(n, N_BINS, N_FRAMES)).astype(np.float16)


def test_sequence_steps() -> None:
    assert sequence_steps(n_frames=64, pool_frames=8, max_windows=2) == 16
    assert sequence_steps(n_frames=65, pool_frames=8, max_windows=2) == 18  # ceil per window
    assert sequence_steps(n_frames=1819, pool_frames=16, max_windows=1) == 114
    assert sequence_steps(n_frames=64, pool_frames=8, max_windows=0) == 1


def test_window_logits_of_whole_windows_are_the_model() -> None:
    torch.manual_seed(0)
    model = build_model("fcn", n_tags=3, n_bins=N_BINS, n_frames=N_FRAMES).eval()
    x = torch.randn(5, N_BINS, N_FRAMES)
    kwargs = {"valid_frames": None, "crop_frames": None, "eval_chunks": 4}
    with torch.no_grad():
        torch.testing.assert_close(window_logits(model, x, **kwargs, batch_size=2), model(x))
        torch.testing.assert_close(
            window_logits(model, x, **kwargs, embed=True, batch_size=16), model.embed(x)
        )
        # a crop as long as the window is the whole window
        torch.testing.assert_close(
            window_logits(model, x, **{**kwargs, "crop_frames": N_FRAMES}), model(x)
        )


def test_window_logits_of_crops_average_probabilities_inside_the_audio() -> None:
    """Each window: the logit of the mean probability of 3 evenly spaced 32-frame crops that
    end inside its audio frames (a window with less audio than one crop: all crops at 0)."""
    torch.manual_seed(0)
    model = build_model("fcn", n_tags=3, n_bins=N_BINS, n_frames=32).eval()
    x = torch.randn(3, N_BINS, N_FRAMES)
    valid = np.array([64, 40, 10])
    starts = crop_starts(valid_frames=valid, crop_frames=32, n_chunks=3)
    assert starts.tolist() == [[0, 16, 32], [0, 4, 8], [0, 0, 0]]
    with torch.no_grad():
        crops = [[model(x[i : i + 1, :, s : s + 32])[0] for s in starts[i]] for i in range(3)]
        crop_embeddings = [
            [model.embed(x[i : i + 1, :, s : s + 32])[0] for s in starts[i]] for i in range(3)
        ]
        probs = torch.stack([torch.sigmoid(torch.stack(c).double()).mean(0) for c in crops])
        expected = torch.logit(probs).float()
        got = window_logits(model, x, valid_frames=valid, crop_frames=32, eval_chunks=3)
        embedded = window_logits(
            model, x, valid_frames=valid, crop_frames=32, eval_chunks=3, embed=True
        )
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        embedded, torch.stack([torch.stack(e).mean(0) for e in crop_embeddings])
    )


def test_padding_is_read_as_the_band_mean() -> None:
    """Frames after ``valid_frames`` count as the band mean (0 once normalised), whatever
    their stored values."""
    tagger = NetworkTagger(random_network_checkpoint(crop_frames=None))
    windows = _random_windows(2, seed=1)
    floor, mean = windows.copy(), windows.copy()
    floor[:, :, 40:] = FLOOR
    mean[:, :, 40:] = -60.0  # the checkpoint's band mean
    valid = np.array([40, 40])
    for method in ("predict_windows", "embed_windows"):
        padded = getattr(tagger, method)(floor, valid_frames=valid)
        np.testing.assert_allclose(padded, getattr(tagger, method)(mean), atol=1e-5)
        assert not np.allclose(padded, getattr(tagger, method)(floor), atol=1e-3)


def test_sequence_tagger_reads_the_middle_windows() -> None:
    tagger = NetworkTagger(random_network_checkpoint("lstm", max_windows=2))
    assert tagger.aggregation == "model" and tagger.input_kind == "sequence"
    windows = _random_windows(5, seed=2)
    _, song = tagger.predict_track(windows)
    _, middle = tagger.predict_track(windows[1:3])  # middle_block(5, max_windows=2)
    np.testing.assert_allclose(song, middle, atol=1e-6)
    np.testing.assert_allclose(tagger.embed_track(windows), tagger.embed_track(windows[1:3]))
    _, first = tagger.predict_track(windows[:2])
    assert not np.allclose(song, first, atol=1e-4)
    # the taggram scores each window as a one-window track
    per_window = tagger.predict_windows(windows)
    for i in range(5):
        logits = tagger.predict_windows(windows[i : i + 1])
        np.testing.assert_allclose(per_window[i], logits[0], atol=1e-5)
        _, one = tagger.predict_track(windows[i : i + 1])
        np.testing.assert_allclose(1 / (1 + np.exp(-logits[0])), one, atol=1e-6)


def test_bad_checkpoints_and_inputs_are_errors() -> None:
    with pytest.raises(PipelineError, match="input_kind 'sequence' but architecture 'fcn'"):
        NetworkTagger({**random_network_checkpoint(), "input_kind": "sequence"})
    tagger = NetworkTagger(random_network_checkpoint())
    with pytest.raises(PipelineError, match=r"no windows to tag \(shape \(0, \.\.\.\)\)"):
        tagger.predict_windows(np.zeros((0, N_BINS, N_FRAMES), np.float16))
    with pytest.raises(PipelineError, match=r"valid_frames of shape \(3,\) does not match 2"):
        tagger.predict_windows(_random_windows(2, seed=0), valid_frames=np.array([1, 2, 3]))
    with pytest.raises(PipelineError, match=r"\(16, 64\)"):
        tagger.embed_track(np.zeros((N_BINS, N_FRAMES), np.float16))
