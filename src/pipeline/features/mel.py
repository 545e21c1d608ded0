"""The mel filterbank the log-mel extractor builds (Slaney or HTK scale, Slaney or no
normalisation: the filters of ``librosa.filters.mel``, built with NumPy alone).

Its own module, below ``settings`` and ``extractors``: the feature settings check which of its
filters are empty, and the extractor applies them.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["mel_edges", "mel_filterbank"]


def _hz_to_mel(f: np.ndarray | float, *, htk: bool) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    linear = f / f_sp
    return np.where(
        f >= min_log_hz,
        min_log_hz / f_sp + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep,
        linear,
    )


def _mel_to_hz(m: np.ndarray, *, htk: bool) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_edges(*, n_mels: int, fmin: float, fmax: float, htk: bool = False) -> np.ndarray:
    """The filters' edges in Hz: ``n_mels + 2`` points evenly spaced on the mel scale from
    ``fmin`` to ``fmax`` (``librosa.mel_frequencies``); filter ``i`` rises from edge ``i``,
    peaks at edge ``i + 1`` and falls to zero at edge ``i + 2``.

    Returns
    -------
    np.ndarray, shape (n_mels + 2,), float64
    """
    mels = np.linspace(
        float(_hz_to_mel(np.float64(fmin), htk=htk)),
        float(_hz_to_mel(np.float64(fmax), htk=htk)),
        n_mels + 2,
    )
    return _mel_to_hz(mels, htk=htk)


def mel_filterbank(
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular mel filters, as ``librosa.filters.mel`` builds them.

    Parameters
    ----------
    sample_rate : int
    n_fft, n_mels : int
    fmin, fmax : float
        Hz; ``fmax`` None is ``sample_rate / 2``.
    htk : bool
        HTK mel scale instead of Slaney's.
    norm : {"slaney", None}
        Slaney's area normalisation (each filter divided by its width in Hz / 2).

    Returns
    -------
    np.ndarray, shape (n_mels, 1 + n_fft // 2), float32
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    fftfreqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    mel_f = mel_edges(n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    if norm == "slaney":
        weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None].astype(np.float32)
    return weights
