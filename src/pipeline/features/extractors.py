"""The extractors that turn fixed-length audio windows into feature windows, one per feature
kind: :class:`Extractor` (log-mel, and MFCC + deltas), :class:`WaveformExtractor` (the mono
samples themselves, for waveform models), and :func:`make_extractor`, which picks one from a
feature set's settings.

The log-mel front end is NumPy framing, ``scipy.fft.rfft`` and a mel filterbank built here
(:func:`mel_filterbank`, librosa's ``filters.mel`` to float32 rounding), which matches
``librosa.feature.melspectrogram`` + ``power_to_db`` (tested) at about twice its speed and as
fast as the ``torch.stft`` version it replaced, without importing torch or librosa: a
feature job starts in well under a second. MFCCs are an orthonormal DCT-II of the log-mel
(``librosa.feature.mfcc``), deltas a Savitzky-Golay derivative over 9 frames with polynomial
edges (``librosa.feature.delta``; :func:`deltas`), both tested against librosa. The
settings travel with every store and checkpoint, and :func:`make_extractor` rebuilds the same
function from them, so training and inference never drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import numpy as np
import scipy.fft

from pipeline.features.mel import mel_filterbank
from pipeline.features.settings import ENCODER_KIND, FEATURE_KINDS, FeatureSettings

__all__ = ["EXTRACTORS", "Extractor", "make_extractor", "mel_filterbank", "dct_matrix", "deltas"]


def dct_matrix(*, n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II (``scipy.fft.dct(norm="ortho")``), first ``n_out`` rows.

    Returns
    -------
    np.ndarray, shape (n_out, n_in), float32
    """
    k = np.arange(n_out, dtype=np.float64)[:, None]
    n = np.arange(n_in, dtype=np.float64)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis.astype(np.float32)


def _delta_filters(*, width: int, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Savitzky-Golay derivative filters: centre (width,), left/right edges (width // 2, width).

    The ``order``-th derivative of the least-squares polynomial of degree ``order`` fitted to
    ``width`` consecutive frames, evaluated at the centre (interior frames) or, for the first
    and last ``width // 2`` frames, at their own position in the first or last ``width``
    frames (scipy's ``savgol_filter(mode="interp")``, which ``librosa.feature.delta`` uses).
    """
    half = width // 2
    t = np.arange(width, dtype=np.float64)
    powers = np.arange(order + 1)
    fit = np.linalg.pinv(t[:, None] ** powers[None, :])  # (order + 1, width)

    def at(t0: float) -> np.ndarray:
        coef = np.zeros(order + 1)
        for j in range(order, order + 1):  # the fit has degree ``order``: one term survives
            coef[j] = math.factorial(j) / math.factorial(j - order) * t0 ** (j - order)
        return coef @ fit  # (width,)

    centre = at(float(half))
    left = np.stack([at(float(t0)) for t0 in range(half)])
    right = np.stack([at(float(t0)) for t0 in range(width - half, width)])
    return centre, left, right


def deltas(x: np.ndarray, *, order: int, width: int = 9) -> np.ndarray:
    """Delta features along the last axis, as ``librosa.feature.delta(x, order=order)``.

    Parameters
    ----------
    x : np.ndarray, shape (..., n_frames), n_frames >= ``width``
    order : int
        1 or 2.
    width : int
        Odd number of frames of the local fit.

    Returns
    -------
    np.ndarray, shape (..., n_frames), float32
    """
    centre, left, right = _delta_filters(width=width, order=order)
    half, n = width // 2, x.shape[-1]
    xf = np.asarray(x, dtype=np.float64)
    out = np.empty(xf.shape, dtype=np.float64)
    inner = out[..., half : n - half]
    inner[...] = 0.0
    for k in range(width):
        inner += centre[k] * xf[..., k : n - width + 1 + k]
    out[..., :half] = xf[..., :width] @ left.T
    out[..., n - half :] = xf[..., n - width :] @ right.T
    return out.astype(np.float32)


#: Frames per block of the log-mel computation (temporaries of ~1 MB stay in cache).
_FRAMES_PER_BLOCK = 512

#: Mel filters per product with the power spectrum (see :func:`_mel_groups`).
_MELS_PER_GROUP = 16


def _mel_groups(mel_basis: np.ndarray, *, size: int) -> list[tuple[int, int, int, int, np.ndarray]]:
    """The filterbank as products over the FFT bins each group of filters covers.

    A mel filter is non-zero on a few neighbouring bins, so consecutive filters are grouped
    and each group is multiplied with only the bins where one of its filters is non-zero:
    the same sums as the dense product (the skipped terms are exact zeros), at a fifth of its
    multiplications for 96 bands over 257 bins.

    Parameters
    ----------
    mel_basis : np.ndarray, shape (n_mels, n_bins)
    size : int
        Filters per group.

    Returns
    -------
    list of (first filter, stop filter, first bin, stop bin, weights)
        ``weights`` of shape (stop filter - first filter, stop bin - first bin), float32
        contiguous; an all-zero group has an empty bin range.
    """
    groups = []
    for g0 in range(0, mel_basis.shape[0], size):
        g1 = min(g0 + size, mel_basis.shape[0])
        used = np.flatnonzero(mel_basis[g0:g1].any(axis=0))
        lo, hi = (int(used[0]), int(used[-1]) + 1) if len(used) else (0, 0)
        weights = np.ascontiguousarray(mel_basis[g0:g1, lo:hi], dtype=np.float32)
        groups.append((g0, g1, lo, hi, weights))
    return groups


class Extractor:
    """Log-mel (and optionally MFCC) of a batch of windows, as configured.

    Build one per job with :func:`make_extractor`; it caches the filterbank and the STFT
    window. Call it on 1 to 4 windows at a time (larger batches are slower per window on the
    CPU, as the intermediate spectrogram falls out of cache). Thread-safe: several threads
    may call one extractor.
    """

    def __init__(self, settings: FeatureSettings) -> None:
        self.settings = settings
        s = settings
        mel_basis = mel_filterbank(
            sample_rate=s.sample_rate,
            n_fft=s.n_fft,
            n_mels=s.n_mels,
            fmin=s.fmin,
            fmax=s.fmax,
            htk=s.mel_scale == "htk",
            norm=s.mel_norm,
        )
        self._mel_groups = _mel_groups(mel_basis, size=_MELS_PER_GROUP)
        self.n_mels = int(mel_basis.shape[0])
        # periodic Hann, as torch.hann_window(periodic=True) and librosa's STFT
        n = np.arange(s.n_fft, dtype=np.float64)
        self._stft_window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / s.n_fft)).astype(np.float32)
        self.floor_db = float(10.0 * np.log10(s.amin))
        self._dct: np.ndarray | None = None
        if s.kind == "mfcc":
            self._dct = dct_matrix(n_out=s.n_mfcc, n_in=s.n_mels)

    @property
    def n_bins(self) -> int:
        """Rows of one feature window (mel bands, or MFCCs times 1 + deltas)."""
        s = self.settings
        return s.n_mels if s.kind == "logmel" else s.n_mfcc * (1 + s.deltas)

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of one feature window, ``(n_bins, n_frames)``."""
        return self.n_bins, self.settings.n_frames

    def log_mel(self, windows: np.ndarray) -> np.ndarray:
        """Log-mel power in dB.

        Parameters
        ----------
        windows : np.ndarray, shape (n_windows, n_samples), float32

        Returns
        -------
        np.ndarray, shape (n_windows, n_mels, n_frames), float32
        """
        s = self.settings
        x = np.asarray(windows, dtype=np.float32)
        # Centred frames with constant (zero) padding, as librosa's default.
        half = s.n_fft // 2
        padded = np.pad(x, ((0, 0), (half, half)))
        frames = np.lib.stride_tricks.sliding_window_view(padded, s.n_fft, axis=-1)
        frames = frames[:, :: s.hop_length]  # (n, frames, n_fft), a view
        n, n_frames = frames.shape[:2]
        mel = np.empty((n, self.n_mels, n_frames), dtype=np.float32)
        # Blocks of frames: the temporaries stay in cache (3x faster than whole windows),
        # and every frame sees the same operations, so the result does not depend on it.
        block = min(_FRAMES_PER_BLOCK, n_frames)
        tapered = np.empty((block, s.n_fft), dtype=np.float32)
        power = np.empty((block, s.n_fft // 2 + 1), dtype=np.float32)
        for k in range(n):
            for lo in range(0, n_frames, block):
                hi = min(lo + block, n_frames)
                m = hi - lo
                np.multiply(frames[k, lo:hi], self._stft_window, out=tapered[:m])
                spec = scipy.fft.rfft(tapered[:m], axis=-1)  # complex64
                # |X|^2 = re^2 + im^2 with the same roundings as on .real/.imag, but the
                # squares are one contiguous pass over the spectrum's own memory
                parts = spec.view(np.float32)  # (frames, 2 * bins): re, im interleaved
                np.multiply(parts, parts, out=parts)
                np.add(parts[:, 0::2], parts[:, 1::2], out=power[:m])  # (frames, bins)
                for g0, g1, b0, b1, weights in self._mel_groups:  # (bands, frames) directly
                    if b1 > b0:
                        np.matmul(weights, power[:m, b0:b1].T, out=mel[k, g0:g1, lo:hi])
                    else:
                        mel[k, g0:g1, lo:hi] = 0.0
        np.maximum(mel, np.float32(s.amin), out=mel)
        db = np.log10(mel, out=mel)
        db *= np.float32(10.0)
        # float32 log10 may round 1 ulp below the floor (-100.00001 for silence): clamp
        np.maximum(db, np.float32(self.floor_db), out=db)
        if s.top_db is not None:
            peak = db.max(axis=(-2, -1), keepdims=True)
            np.maximum(db, peak - np.float32(s.top_db), out=db)
        return _fix_frames(db, n_frames=s.n_frames, fill=self.floor_db)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Features of a batch of windows.

        Parameters
        ----------
        windows : np.ndarray, shape (n_windows, n_samples), float32

        Returns
        -------
        np.ndarray, shape (n_windows, n_bins, n_frames), float32
        """
        return self.from_log_mel(self.log_mel(windows))

    def from_log_mel(self, db: np.ndarray) -> np.ndarray:
        """This set's features from log-mel windows (the identity for ``logmel``).

        Parameters
        ----------
        db : np.ndarray, shape (n_windows, n_mels, n_frames)

        Returns
        -------
        np.ndarray, shape (n_windows, n_bins, n_frames), float32
        """
        if self._dct is None:
            return np.asarray(db, dtype=np.float32)
        mfcc = np.matmul(self._dct, np.asarray(db, dtype=np.float32))
        parts = [mfcc]
        for order in range(1, self.settings.deltas + 1):
            parts.append(deltas(mfcc, order=order))
        return np.concatenate(parts, axis=-2).astype(np.float32, copy=False)


def _fix_frames(x: np.ndarray, *, n_frames: int, fill: float) -> np.ndarray:
    """Crop or pad the last axis to ``n_frames`` (padding with ``fill``)."""
    have = x.shape[-1]
    if have == n_frames:
        return x
    if have > n_frames:
        return x[..., :n_frames]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n_frames - have)]
    return np.pad(x, pad, constant_values=fill)


class WaveformExtractor(Extractor):
    """The windows themselves, for waveform models (e.g. Lee et al.'s sample-level CNN).

    One row per window: shape (n_windows, 1, n_samples), stored float16 like other sets.
    """

    def __init__(self, settings: FeatureSettings) -> None:
        self.settings = settings
        self.floor_db = 0.0

    @property
    def n_bins(self) -> int:
        """One row: the mono waveform."""
        return 1

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of one window, ``(1, window length in samples)``."""
        return 1, self.settings.window.length

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Windows as (n_windows, 1, n_samples) float32."""
        return np.asarray(windows, dtype=np.float32)[:, None, :]


#: Feature kind -> the extractor class that computes it; one entry per kind of
#: :data:`~pipeline.features.settings.FEATURE_KINDS`.
EXTRACTORS: dict[str, Callable[[FeatureSettings], Extractor]] = {
    "logmel": Extractor,
    "mfcc": Extractor,
    "waveform": WaveformExtractor,
}


def make_extractor(settings: FeatureSettings) -> Extractor:
    """The extractor for a feature set's kind (a pretrained encoder's: its model loaded)."""
    if settings.kind == ENCODER_KIND:
        # Imported here: an encoder needs torch and transformers; a log-mel job imports
        # neither (its fixed cost, benchmarks/README.md).
        from pipeline.features.encoder import EncoderExtractor

        return cast(Extractor, EncoderExtractor(settings))
    return EXTRACTORS[settings.kind](settings)


if set(EXTRACTORS) != set(FEATURE_KINDS):  # pragma: no cover  (a kind without extractor)
    raise ImportError(f"extractors {sorted(EXTRACTORS)} do not match kinds {FEATURE_KINDS}")
