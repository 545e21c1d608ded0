"""The extractor's mel filterbank: the filters of librosa.filters.mel, built with NumPy."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from pipeline.features.mel import mel_filterbank


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax", "htk", "norm"),
    [
        (16000, 512, 96, 0.0, None, False, "slaney"),
        (22050, 2048, 128, 30.0, 11000.0, False, "slaney"),
        (16000, 512, 40, 0.0, 8000.0, True, None),
        (44100, 1024, 64, 100.0, None, True, "slaney"),
    ],
)
def test_mel_filterbank_is_librosas(sr, n_fft, n_mels, fmin, fmax, htk, norm) -> None:
    got = mel_filterbank(
        sample_rate=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm
    )
    want = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm
    )
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9 * float(want.max()))
