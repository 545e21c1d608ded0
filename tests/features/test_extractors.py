"""Log-mel, MFCC and waveform extractors: agreement with librosa, known answers on tones."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.features.extractors import (
    Extractor,
    dct_matrix,
    deltas,
    make_extractor,
)
from pipeline.features.settings import FEATURE_KINDS, FeatureSettings
from pipeline.io.audio import WindowSettings

SR = 16000
WINDOW = WindowSettings(length_s=2.0, hop_s=2.0)  # 32,000 samples: short, not the point here
NATURAL = 1 + WINDOW.length // 256  # 126 centred frames


def _settings(**kwargs) -> FeatureSettings:
    base = {"name": "test", "window": WINDOW, "n_frames": NATURAL}
    return FeatureSettings(**{**base, **kwargs})


def _signals() -> np.ndarray:
    """A batch of two windows: seeded white noise and a 440 Hz tone with a little noise."""
    rng = np.random.default_rng(0)
    n = WINDOW.length
    t = np.arange(n) / SR
    noise = 0.3 * rng.standard_normal(n)
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * t) + 0.01 * rng.standard_normal(n)
    return np.stack([noise, tone]).astype(np.float32)


def _librosa_logmel(y: np.ndarray, *, htk: bool, norm: str | None, n_mels: int = 96) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=SR,
        n_fft=512,
        hop_length=256,
        n_mels=n_mels,
        center=True,
        pad_mode="constant",
        htk=htk,
        norm=norm,
    )
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)


# ---------------------------------------------------------------------------- log-mel


@pytest.mark.parametrize(("mel_scale", "mel_norm"), [("slaney", "slaney"), ("htk", None)])
def test_logmel_matches_librosa(mel_scale: str, mel_norm: str | None) -> None:
    y = _signals()
    extractor = make_extractor(_settings(mel_scale=mel_scale, mel_norm=mel_norm))
    got = extractor(y)
    want = _librosa_logmel(y, htk=mel_scale == "htk", norm=mel_norm)
    assert got.shape == want.shape == (2, 96, NATURAL)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1.5e-3)


def test_logmel_of_mismatched_settings_differs_from_librosa() -> None:
    """The agreement above is not vacuous: slaney vs htk scales differ by whole dB."""
    y = _signals()
    got = make_extractor(_settings(mel_scale="htk", mel_norm=None))(y)
    want = _librosa_logmel(y, htk=False, norm="slaney")
    assert np.abs(got - want).max() > 1.0


def test_top_db_clamps_each_window_like_librosa() -> None:
    y = _signals()
    y[1] *= 1e-3  # the second window is 60 dB quieter: clamping must be per window
    got = make_extractor(_settings(top_db=40.0))(y)
    for k in range(2):
        mel = librosa.feature.melspectrogram(
            y=y[k], sr=SR, n_fft=512, hop_length=256, n_mels=96, center=True, pad_mode="constant"
        )
        want = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=40.0)
        np.testing.assert_allclose(got[k], want, atol=1.5e-3)
        assert got[k].max() - got[k].min() <= 40.0 + 1e-4


def test_batch_equals_one_window_at_a_time() -> None:
    y = np.random.default_rng(5).standard_normal((4, WINDOW.length)).astype(np.float32)
    extractor = make_extractor(_settings(n_mels=32))
    batch = extractor(y)
    for k in range(4):
        np.testing.assert_allclose(batch[k], extractor(y[k : k + 1])[0], atol=1e-4)


def test_one_khz_tone_peaks_in_the_mel_band_of_one_khz() -> None:
    t = np.arange(WINDOW.length) / SR
    y = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)[None]
    for n_mels in (96, 40):
        db = make_extractor(_settings(n_mels=n_mels))(y)[0]
        centres = librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=SR / 2)[1:-1]
        band = int(np.abs(centres - 1000.0).argmin())
        assert int(db.mean(axis=1).argmax()) == band
        # far from the tone (an octave and more away) the energy is much lower
        far = np.abs(np.log2(centres / 1000.0)) > 1
        assert db.mean(axis=1)[band] - db.mean(axis=1)[far].max() > 30


def test_silence_is_the_floor_value() -> None:
    extractor = make_extractor(_settings(n_mels=16))
    db = extractor(np.zeros((1, WINDOW.length), dtype=np.float32))
    assert extractor.floor_db == pytest.approx(-100.0)
    assert np.all(db == np.float32(-100.0))


@pytest.mark.parametrize("delta", [-5, 7])
def test_n_frames_crops_or_pads_with_the_floor(delta: int) -> None:
    y = _signals()
    full = make_extractor(_settings(n_mels=32))(y)
    fixed = make_extractor(_settings(n_mels=32, n_frames=NATURAL + delta))(y)
    assert fixed.shape == (2, 32, NATURAL + delta)
    keep = min(NATURAL, NATURAL + delta)
    np.testing.assert_array_equal(fixed[..., :keep], full[..., :keep])
    if delta > 0:
        assert np.all(fixed[..., NATURAL:] == np.float32(-100.0))


# ---------------------------------------------------------------------------- MFCC


@pytest.mark.parametrize(("n_mfcc", "deltas"), [(20, 0), (13, 1), (20, 2)])
def test_mfcc_and_deltas_match_librosa(n_mfcc: int, deltas: int) -> None:
    y = _signals()
    logmel = make_extractor(_settings())(y)
    extractor = make_extractor(_settings(kind="mfcc", n_mfcc=n_mfcc, deltas=deltas))
    got = extractor(y)
    assert extractor.shape == (n_mfcc * (1 + deltas), NATURAL)
    assert got.shape == (2, *extractor.shape) and got.dtype == np.float32
    mfcc = librosa.feature.mfcc(S=logmel, n_mfcc=n_mfcc)
    scale = np.abs(mfcc).max()
    np.testing.assert_allclose(got[:, :n_mfcc], mfcc, atol=1e-5 * scale)
    for order in range(1, deltas + 1):
        rows = slice(order * n_mfcc, (order + 1) * n_mfcc)
        want = librosa.feature.delta(mfcc, order=order)
        np.testing.assert_allclose(got[:, rows], want, atol=1e-5 * scale)


def test_extractor_shapes() -> None:
    assert make_extractor(_settings(n_mels=64)).shape == (64, NATURAL)
    assert make_extractor(_settings(kind="mfcc", n_mfcc=20, deltas=2)).n_bins == 60
    assert set(FEATURE_KINDS) == {"logmel", "mfcc", "waveform"}
    assert isinstance(make_extractor(_settings()), Extractor)


def test_deltas_with_few_frames_fail_at_settings_or_work() -> None:
    try:
        settings = _settings(kind="mfcc", n_mfcc=13, deltas=1, n_frames=5)
    except ConfigError:
        return
    out = make_extractor(settings)(_signals())
    assert out.shape == (2, 26, 5)


# ---------------------------------------------------------------------------- storage


def test_real_logmel_survives_float16_storage() -> None:
    db = make_extractor(_settings())(_signals())
    assert db.min() >= -100.0 and db.max() <= 40.0
    assert np.abs(db.astype(np.float16).astype(np.float32) - db).max() <= 0.06


# ---------------------------------------------------------------------------- waveform


def test_waveform_kind_stores_the_windows() -> None:
    settings = FeatureSettings(
        name="wave", kind="waveform", window=WindowSettings(length_s=0.5, hop_s=0.5)
    )
    extractor = make_extractor(settings)
    rng = np.random.default_rng(0)
    windows = rng.standard_normal((3, 8000)).astype(np.float32)
    out = extractor(windows)
    assert extractor.shape == (1, 8000)
    assert out.shape == (3, 1, 8000)
    np.testing.assert_array_equal(out[:, 0], windows)


# ---------------------------------------------------------------------------- building blocks


def test_dct_matrix_is_scipys_orthonormal_dct() -> None:
    import scipy.fft

    want = scipy.fft.dct(np.eye(96), type=2, norm="ortho", axis=0)[:20]
    np.testing.assert_allclose(dct_matrix(n_out=20, n_in=96), want, atol=1e-6)


@pytest.mark.parametrize("order", [1, 2])
def test_deltas_are_librosas_on_random_data(order: int) -> None:
    x = np.random.default_rng(order).standard_normal((3, 13, 50)).astype(np.float32)
    got = deltas(x, order=order)
    want = librosa.feature.delta(x, order=order, axis=-1)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # known answer: the first difference of a ramp is its slope everywhere, edges included
    ramp = np.arange(30, dtype=np.float32)[None] * 2.5
    np.testing.assert_allclose(deltas(ramp, order=1), 2.5, atol=1e-5)
    np.testing.assert_allclose(deltas(ramp, order=2), 0.0, atol=1e-5)


def test_feature_job_imports_neither_torch_nor_librosa() -> None:
    """The extraction job's fixed cost: what the rule script imports stays light."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import pipeline.features.extract, pipeline.features.settings\n"
        "print(','.join(m for m in ('torch', 'librosa', 'pandas', 'dask') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_feature_job_runs_without_pandas(tmp_path: Path) -> None:
    """Reading the shard list and writing the failure table import no pandas (0.4 s).

    PyArrow imports pandas lazily when ``pa.array``/``pa.table``/``pq.read_table`` meet
    Python objects; the job, run on a good and a bad file, must not get there.
    """
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq
    import soundfile as sf

    sr = 16000
    t = np.arange(sr * 30) / sr  # one 29.1 s window
    sf.write(tmp_path / "good.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    (tmp_path / "bad.mp3").write_bytes(b"not audio at all" * 100)
    pq.write_table(
        pa.table(
            {
                "track_id": ["good", "bad"],
                "path": [str(tmp_path / "good.wav"), str(tmp_path / "bad.mp3")],
            }
        ),
        tmp_path / "tracks.parquet",
    )
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipeline.features.extract import extract_shard, read_tracks\n"
        "from pipeline.features.settings import FeatureSettings\n"
        f"d = Path({str(tmp_path)!r})\n"
        "s = FeatureSettings(name='logmel')\n"
        "n = extract_shard(tracks=read_tracks(d / 'tracks.parquet'), settings=s,\n"
        "    store_path=d / 's.zarr', failed_path=d / 'f.parquet', threads=2)\n"
        "print(n['n_stored'], n['n_failed'], 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1", "False"]
    failed = pq.ParquetFile(tmp_path / "f.parquet").read().to_pylist()
    assert [(r["track_id"], r["level"]) for r in failed] == [("bad", "error")]
