"""Feature sets computed from fixed-length windows: log-mel and MFCC (+ deltas).

The log-mel front end is ``torch.stft`` plus a librosa mel filterbank, which matches
``librosa.feature.melspectrogram`` + ``power_to_db`` (tested) at about twice its speed. The
settings travel with every store and checkpoint, and :func:`make_extractor` rebuilds the same
function from them, so training and inference never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import librosa
import numpy as np
import scipy.fft
import torch

from pipeline.audio import WindowSettings
from pipeline.errors import ConfigError

__all__ = ["FeatureSettings", "Extractor", "make_extractor", "FEATURE_KINDS"]


@dataclass(frozen=True, kw_only=True)
class FeatureSettings:
    """Everything that determines a feature set's arrays.

    Parameters
    ----------
    name : str
        The feature set's name in ``config.yaml`` (e.g. ``"logmel"``).
    kind : str
        One of :data:`FEATURE_KINDS` (``"logmel"``, ``"mfcc"``, ``"waveform"``; the latter
        stores the resampled mono windows and ignores the spectral settings).
    window : WindowSettings
        Sample rate, window length and hop, tail policy.
    n_fft, hop_length : int
        STFT size and hop in samples (reference: 512 and 256 at 16 kHz).
    n_mels : int
        Mel bands (reference: 96).
    fmin, fmax : float
        Mel filterbank range in Hz; ``fmax`` ``None`` means ``sample_rate / 2``.
    mel_scale : {"slaney", "htk"}
    mel_norm : {"slaney", None}
    top_db : float or None
        Clamp each window at ``max - top_db`` dB; ``None`` keeps the full range.
    amin : float
        Power floor before the logarithm (``10 log10(amin)`` dB is the lowest value).
    n_frames : int
        Frames per window. ``1 + length // hop_length`` is what centred frames give
        (1,819 for 465,600 samples at hop 256); other values crop or pad at the end with
        the floor value.
    n_mfcc : int
        MFCC coefficients (``kind="mfcc"`` only).
    deltas : int
        0, 1 or 2: append first / second order deltas (``kind="mfcc"`` only).
    """

    name: str
    kind: str = "logmel"
    window: WindowSettings = field(default_factory=WindowSettings)
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 96
    fmin: float = 0.0
    fmax: float | None = None
    mel_scale: Literal["slaney", "htk"] = "slaney"
    mel_norm: Literal["slaney"] | None = "slaney"
    top_db: float | None = None
    amin: float = 1e-10
    n_frames: int = 1819
    n_mfcc: int = 20
    deltas: int = 0

    def __post_init__(self) -> None:
        if self.kind == "waveform":
            # A waveform "frame" is a sample: frame-based rules (audio frames, crops) then
            # count samples. The spectral settings do not apply.
            object.__setattr__(self, "hop_length", 1)
            object.__setattr__(self, "n_frames", self.window.length)
        if self.kind not in FEATURE_KINDS:
            raise ConfigError(
                f"features.{self.name}.kind: {self.kind!r} is not one of {sorted(FEATURE_KINDS)}"
            )
        if self.mel_scale not in ("slaney", "htk"):
            raise ConfigError(
                f"features.{self.name}.mel_scale: {self.mel_scale!r} is not one of "
                "['slaney', 'htk']"
            )
        if self.deltas not in (0, 1, 2):
            raise ConfigError(f"features.{self.name}.deltas: {self.deltas!r} is not 0, 1 or 2")
        if self.top_db is not None and self.top_db < 0:
            raise ConfigError(f"features.{self.name}.top_db: {self.top_db!r} must be >= 0")
        if self.kind == "mfcc" and self.deltas and self.n_frames < 9:
            raise ConfigError(
                f"features.{self.name}.n_frames: {self.n_frames} must be >= 9 when deltas > 0"
            )
        if self.kind == "mfcc" and not 0 < self.n_mfcc <= self.n_mels:
            raise ConfigError(
                f"features.{self.name}.n_mfcc: {self.n_mfcc!r} must be in 1..n_mels={self.n_mels}"
            )

    @property
    def sample_rate(self) -> int:
        """Sample rate of the audio the features are computed from."""
        return self.window.sample_rate

    @property
    def natural_n_frames(self) -> int:
        """Frames that centred STFT frames give for one window."""
        return 1 + self.window.length // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable settings (store attributes, checkpoints)."""
        out = asdict(self)
        out["window"] = self.window.to_dict()
        return out

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any], *, name: str | None = None) -> FeatureSettings:
        """Build settings from a config entry or from :meth:`to_dict` output.

        Parameters
        ----------
        settings : mapping
            Keys of this class; ``window`` a mapping of :class:`WindowSettings` keys;
            ``sample_rate`` may be given at the top level (config style).
        name : str, optional
            Overrides ``settings["name"]``.
        """
        settings = dict(settings)
        name = name or settings.pop("name", None)
        settings.pop("name", None)
        if not name:
            raise ConfigError("feature settings need a name")
        window = dict(settings.pop("window", {}) or {})
        if "sample_rate" in settings:
            window["sample_rate"] = settings.pop("sample_rate")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(
                f"features.{name}: unknown key(s) {unknown}; allowed: {sorted(known - {'name'})}"
            )
        allowed = {f.name for f in fields(WindowSettings)}
        unknown = sorted(set(window) - allowed)
        if unknown:
            raise ConfigError(
                f"features.{name}.window: unknown key(s) {unknown}; allowed: {sorted(allowed)}"
            )
        try:
            window_settings = WindowSettings(**window)
        except ConfigError as exc:
            raise ConfigError(f"features.{name}.{exc}") from exc
        return cls(name=name, window=window_settings, **settings)


class Extractor:
    """Log-mel (and optionally MFCC) of a batch of windows, as configured.

    Build one per job with :func:`make_extractor`; it caches the filterbank and the STFT
    window. Call it on 1 to 4 windows at a time (larger batches are slower per window on the
    CPU, as the intermediate spectrogram falls out of cache).
    """

    def __init__(self, settings: FeatureSettings) -> None:
        self.settings = settings
        s = settings
        mel_basis = librosa.filters.mel(
            sr=s.sample_rate,
            n_fft=s.n_fft,
            n_mels=s.n_mels,
            fmin=s.fmin,
            fmax=s.fmax,
            htk=s.mel_scale == "htk",
            norm=s.mel_norm,
        )
        self._mel_basis_t = torch.from_numpy(np.ascontiguousarray(mel_basis.T, dtype=np.float32))
        self._stft_window = torch.hann_window(s.n_fft, periodic=True)
        self.floor_db = float(10.0 * np.log10(s.amin))
        self._dct: torch.Tensor | None = None
        if s.kind == "mfcc":
            dct = scipy.fft.dct(np.eye(s.n_mels), type=2, norm="ortho", axis=0)[: s.n_mfcc]
            self._dct = torch.from_numpy(dct.astype(np.float32))

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
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
            # Centred frames with constant (zero) padding, as librosa's default; framing by
            # hand and a real FFT is faster on the CPU than torch.stft's strided layout.
            half = s.n_fft // 2
            frames = torch.nn.functional.pad(x, (half, half)).unfold(-1, s.n_fft, s.hop_length)
            spec = torch.fft.rfft(frames * self._stft_window)  # (n, frames, 1 + n_fft // 2)
            power = spec.real.square_() + spec.imag.square_()
            mel = torch.matmul(power, self._mel_basis_t)  # (n, frames, n_mels)
            db = 10.0 * torch.log10(torch.clamp_min_(mel, s.amin))
            if s.top_db is not None:
                peak = db.amax(dim=(-2, -1), keepdim=True)
                db = torch.maximum(db, peak - s.top_db)
            out = db.transpose(-1, -2).contiguous().numpy()
        return _fix_frames(out, n_frames=s.n_frames, fill=self.floor_db)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Features of a batch of windows.

        Parameters
        ----------
        windows : np.ndarray, shape (n_windows, n_samples), float32

        Returns
        -------
        np.ndarray, shape (n_windows, n_bins, n_frames), float32
        """
        db = self.log_mel(windows)
        if self._dct is None:
            return db
        mfcc = np.matmul(self._dct.numpy(), db)
        parts = [mfcc]
        for order in range(1, self.settings.deltas + 1):
            parts.append(librosa.feature.delta(mfcc, order=order, axis=-1))
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


#: Feature kinds and the extractor class that computes each.
FEATURE_KINDS: dict[str, Callable[[FeatureSettings], Extractor]] = {
    "logmel": Extractor,
    "mfcc": Extractor,
    "waveform": WaveformExtractor,
}


def make_extractor(settings: FeatureSettings) -> Extractor:
    """The extractor for a feature set's kind."""
    return FEATURE_KINDS[settings.kind](settings)
