"""The settings of a feature set (``FeatureSettings``): they travel with every store and
checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from pipeline.errors import ConfigError
from pipeline.io.audio import WindowSettings

__all__ = ["FEATURE_KINDS", "FeatureSettings"]

#: The feature kinds a feature set may name (each has an extractor in
#: :mod:`pipeline.features.extractors`).
FEATURE_KINDS = ("logmel", "mfcc", "waveform")


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
