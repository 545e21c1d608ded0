"""The settings of a feature set (``FeatureSettings``): they travel with every store and
checkpoint.

Settings that would make the features useless are refused when they are built (so when the
config is validated, when the DAG is built, and in library use), each with a
:class:`~pipeline.errors.ConfigError` naming the key and what is allowed:

- durations of the window (``length_s``, ``hop_s``, ``min_tail_s``, ``max_duration_s``) that
  are not finite numbers (``.inf`` or ``.nan`` in YAML);
- a mel range outside ``0 <= fmin < fmax <= sample_rate / 2`` (bands above the Nyquist
  frequency hold no signal);
- ``hop_length > n_fft`` (frames would skip samples);
- an ``n_fft`` too small for ``n_mels`` bands: a mel filter that covers no FFT bin is a band
  that is always at the floor (:func:`empty_mel_filters` counts them exactly as the
  extractor's filterbank has them; the message gives the smallest ``n_fft`` and the
  largest ``n_mels`` that work).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np

from pipeline.errors import ConfigError
from pipeline.features.mel import mel_edges, mel_filterbank
from pipeline.io.audio import WindowSettings

__all__ = [
    "FEATURE_KINDS",
    "ENCODER_KIND",
    "EncoderSettings",
    "FeatureSettings",
    "empty_mel_filters",
    "check_window",
]

#: The feature kinds a feature set may name (each has an extractor in
#: :mod:`pipeline.features.extractors`).
FEATURE_KINDS = ("logmel", "mfcc", "waveform")

#: The kind of a feature set computed by a frozen pretrained encoder
#: (:mod:`pipeline.features.encoder`); its windows are ``(n_layers, dim)`` embeddings.
ENCODER_KIND = "encoder"

#: How an encoder's frames are pooled over time inside a stored window.
ENCODER_POOLINGS = ("mean", "mean+std")


@dataclass(frozen=True, kw_only=True)
class EncoderSettings:
    """The pretrained encoder of a ``kind: encoder`` feature set.

    Parameters
    ----------
    model : str
        A Hugging Face model id (``m-a-p/MERT-v1-95M``, ``laion/larger_clap_music``) found in
        the local cache, or a local directory holding ``config.json`` and the weights.
    revision : str
        The pinned revision (commit hash, tag or branch) of a Hub model; ignored for a local
        directory.
    layers : list of int or None
        Hidden states kept (0 is the input to the first transformer layer of a
        HuBERT/MERT model; negative values count from the end); None keeps all. A CLAP model
        has one "layer": its projected audio embedding.
    pooling : {"mean", "mean+std"}
        Pooling over time inside a window; ``mean+std`` concatenates the standard deviation
        (``dim`` doubles).
    chunk_s : float
        The encoder sees chunks of this many seconds (the chunks cover the window; the last
        one ends at the window's end); their pooled statistics are combined into the window's,
        so memory is bounded by the chunk, not by the window or the track.
    batch_size : int
        Chunks per forward pass.
    licence : str or None
        The weights' licence; None reads it from the model card (``license:`` of its
        README) or a table of known models.
    n_layers, dim : int
        Filled in from the model at extraction (0 before): rows and columns of one stored
        window.
    """

    model: str
    revision: str = "main"
    layers: tuple[int, ...] | None = None
    pooling: str = "mean"
    chunk_s: float = 5.0
    batch_size: int = 8
    licence: str | None = None
    n_layers: int = 0
    dim: int = 0

    def __post_init__(self) -> None:
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(v) for v in self.layers))
        if self.pooling not in ENCODER_POOLINGS:
            raise ConfigError(
                f"encoder.pooling: {self.pooling!r} is not one of {list(ENCODER_POOLINGS)}"
            )
        if not (_finite(self.chunk_s) and self.chunk_s > 0):
            raise ConfigError(f"encoder.chunk_s: {self.chunk_s!r} must be a number of seconds > 0")
        if self.batch_size < 1:
            raise ConfigError(f"encoder.batch_size: {self.batch_size!r} must be >= 1")
        if not self.model:
            raise ConfigError("encoder.model: a Hugging Face id or a local directory is needed")

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable settings."""
        out = asdict(self)
        out["layers"] = None if self.layers is None else list(self.layers)
        return out

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any], *, key: str) -> EncoderSettings:
        """Settings from a config entry (``layers: all`` is None) or :meth:`to_dict` output."""
        settings = dict(settings)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(f"{key}: unknown key(s) {unknown}; allowed: {sorted(known)}")
        if settings.get("layers") == "all":
            settings["layers"] = None
        try:
            return cls(**settings)
        except ConfigError as exc:
            raise ConfigError(f"{key}.{str(exc).removeprefix('encoder.')}") from exc


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
    encoder: EncoderSettings | None = None

    def __post_init__(self) -> None:
        check_window(self.window, key=f"features.{self.name}.window")
        if self.kind == ENCODER_KIND:
            if self.encoder is None:
                raise ConfigError(f"features.{self.name}: kind encoder needs an encoder: entry")
            # A window is (n_layers, dim): a "frame" is one embedding dimension, all of them
            # hold audio; the spectral settings do not apply.
            object.__setattr__(self, "hop_length", 1)
            object.__setattr__(self, "n_frames", max(self.encoder.dim, 1))
            return
        if self.encoder is not None:
            raise ConfigError(
                f"features.{self.name}.encoder: applies to kind encoder only (kind {self.kind!r})"
            )
        if self.kind == "waveform":
            # A waveform "frame" is a sample: frame-based rules (audio frames, crops) then
            # count samples. The spectral settings do not apply.
            object.__setattr__(self, "hop_length", 1)
            object.__setattr__(self, "n_frames", self.window.length)
        if self.kind not in FEATURE_KINDS:
            raise ConfigError(
                f"features.{self.name}.kind: {self.kind!r} is not one of "
                f"{sorted([*FEATURE_KINDS, ENCODER_KIND])}"
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
        if self.kind in ("logmel", "mfcc"):
            self._check_spectrum()

    def _check_spectrum(self) -> None:
        """The STFT and mel settings of the log-mel front end (module docstring)."""
        key = f"features.{self.name}"
        if self.top_db is not None and not _finite(self.top_db):
            raise ConfigError(f"{key}.top_db: {self.top_db!r} must be a finite number >= 0 or null")
        if not (_finite(self.amin) and self.amin > 0):
            raise ConfigError(f"{key}.amin: {self.amin!r} must be a finite number > 0")
        nyquist = self.sample_rate / 2
        fmax = nyquist if self.fmax is None else self.fmax
        allowed = f"allowed: 0 <= fmin < fmax <= sample_rate / 2 = {nyquist:g} Hz"
        if not (_finite(self.fmin) and self.fmin >= 0):
            raise ConfigError(f"{key}.fmin: {self.fmin!r} must be a number >= 0 Hz; {allowed}")
        if not _finite(fmax):
            raise ConfigError(f"{key}.fmax: {fmax!r} must be a number of Hz or null; {allowed}")
        if fmax > nyquist:
            raise ConfigError(
                f"{key}.fmax: {fmax!r} Hz is above sample_rate / 2 (sample_rate "
                f"{self.sample_rate}), where no band holds signal; {allowed}"
            )
        if not self.fmin < fmax:
            raise ConfigError(
                f"{key}.fmin: {self.fmin:g} Hz must be below fmax ({fmax:g} Hz); {allowed}"
            )
        mel: dict[str, Any] = {
            "sample_rate": self.sample_rate,
            "fmin": float(self.fmin),
            "fmax": float(fmax),
            "htk": self.mel_scale == "htk",
            "norm": self.mel_norm,
        }
        empty = empty_mel_filters(n_fft=self.n_fft, n_mels=self.n_mels, **mel)
        if empty:
            n_fft = _smallest_n_fft(n_fft=self.n_fft, n_mels=self.n_mels, **mel)
            n_mels = _largest_n_mels(n_fft=self.n_fft, n_mels=self.n_mels, **mel)
            raise ConfigError(
                f"{key}.n_fft: {self.n_fft} is too small for n_mels {self.n_mels}: {empty} of "
                f"the {self.n_mels} mel filters ({self.fmin:g} to {fmax:g} Hz, "
                f"{self.mel_scale}) would cover no FFT bin and stay empty; "
                + (
                    f"the smallest n_fft that works is {n_fft}"
                    if n_fft
                    else f"no n_fft up to {_MAX_N_FFT} works"
                )
                + (
                    f", the largest n_mels that works with n_fft {self.n_fft} is {n_mels}"
                    if n_mels
                    else f", and no n_mels works with n_fft {self.n_fft}"
                )
            )
        if self.hop_length > self.n_fft:
            raise ConfigError(
                f"{key}.hop_length: {self.hop_length} must be <= n_fft ({self.n_fft}); a longer "
                "hop skips samples between frames"
            )

    @property
    def sample_rate(self) -> int:
        """Sample rate of the audio the features are computed from."""
        return self.window.sample_rate

    @property
    def natural_n_frames(self) -> int:
        """Frames that centred STFT frames give for one window."""
        return 1 + self.window.length // self.hop_length

    def log_mel_settings(self) -> dict[str, Any]:
        """The settings that determine the log-mel this set is computed from.

        Two sets with equal log-mel settings see the same log-mel windows; an MFCC set is
        a function of them (:meth:`derives_from`).
        """
        out = self.to_dict()
        for key in ("name", "kind", "n_mfcc", "deltas"):
            out.pop(key)
        return out

    def derives_from(self, source: FeatureSettings) -> bool:
        """Whether this set can be computed from ``source``'s stored windows: an MFCC set
        from a log-mel set with the same log-mel settings (decoding each file once)."""
        return (
            self.kind == "mfcc"
            and source.kind == "logmel"
            and self.log_mel_settings() == source.log_mel_settings()
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable settings (store attributes, checkpoints)."""
        out = asdict(self)
        out["window"] = self.window.to_dict()
        if self.encoder is None:
            del out["encoder"]  # the settings of other kinds stay as they were
        else:
            out["encoder"] = self.encoder.to_dict()
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
        if settings.get("encoder") is not None:
            settings["encoder"] = EncoderSettings.from_dict(
                settings["encoder"], key=f"features.{name}.encoder"
            )
        return cls(name=name, window=window_settings, **settings)


def check_window(window: WindowSettings, *, key: str) -> None:
    """Refuse window durations that are not finite (``.inf``/``.nan`` in YAML).

    Parameters
    ----------
    window : WindowSettings
    key : str
        The config key of the window (``features.logmel.window``), named in the message.

    Raises
    ------
    ConfigError
        ``length_s``, ``hop_s`` or ``max_duration_s`` is not a finite number > 0, or
        ``min_tail_s`` is not a finite number >= 0.
    """
    for name in ("length_s", "hop_s", "max_duration_s"):
        value = getattr(window, name)
        if not (_finite(value) and value > 0):
            raise ConfigError(f"{key}.{name}: {value!r} must be a finite number of seconds > 0")
    value = window.min_tail_s
    if not (_finite(value) and value >= 0):
        raise ConfigError(f"{key}.min_tail_s: {value!r} must be a finite number of seconds >= 0")


def _finite(value: Any) -> bool:
    """A real number (not a bool) that is neither infinite nor NaN."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------------------------
# Empty mel filters
# --------------------------------------------------------------------------------------------

#: Largest n_fft searched for the "smallest n_fft that works" of a message.
_MAX_N_FFT = 2**20


def _filter_status(
    *, sample_rate: int, n_fft: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which filters surely cover an FFT bin, and which surely cover none.

    Filter ``i`` of librosa's filterbank is non-zero exactly at the bins strictly between
    ``edges[i]`` and ``edges[i + 2]``. The test here keeps a margin far above the rounding
    differences between :func:`~pipeline.features.mel.mel_edges` and librosa, so "sure"
    answers are librosa's; a bin within the margin of an edge leaves a filter in neither set.

    Parameters
    ----------
    n_fft : np.ndarray, shape (n_candidates,), int
    edges : np.ndarray, shape (n_mels + 2,)

    Returns
    -------
    filled, empty : np.ndarray, shape (n_candidates, n_mels), bool
    """
    n_fft = np.asarray(n_fft, dtype=np.float64)[:, None]
    spacing = sample_rate / n_fft  # Hz between bins
    last = np.floor(n_fft / 2)  # the highest bin, at sample_rate / 2
    low, high = edges[None, :-2], edges[None, 2:]
    margin = 1e-9 * max(float(edges[-1]), 1.0)
    # the first bin above low + margin, and the first above low - margin; bin 0 (0 Hz) is
    # never strictly above low >= fmin >= 0
    inner = np.maximum(np.floor((low + margin) / spacing) + 1, 1)
    outer = np.maximum(np.floor((low - margin) / spacing) + 1, 1)
    filled = (inner <= last) & (inner * spacing < high - margin)
    empty = (outer > last) | (outer * spacing >= high + margin)
    return filled, empty


def _filterbank_empty(
    *, sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm: Any
) -> int:
    """Empty rows of the filterbank the extractor builds (:func:`mel_filterbank`)."""
    basis = mel_filterbank(
        sample_rate=sample_rate,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=norm,
    )
    return int(np.count_nonzero(basis.sum(axis=1) == 0))


@functools.lru_cache(maxsize=256)
def empty_mel_filters(
    *,
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> int:
    """How many rows of the mel filterbank the extractor builds are all zero.

    The count is that of the extractor's own filterbank (:func:`mel_filterbank`, the filters
    of ``librosa.filters.mel``): an exact bin-by-filter test decides the usual settings
    without building the filters, and the filterbank itself decides every case within
    rounding of a filter's edge.

    Parameters
    ----------
    sample_rate : int
        Hz.
    n_fft, n_mels : int
    fmin, fmax : float
        The mel range in Hz, ``0 <= fmin < fmax <= sample_rate / 2``; ``fmax`` None is
        ``sample_rate / 2``.
    htk : bool
        The HTK mel scale instead of Slaney's.
    norm : {"slaney", None}
        The filters' normalisation (it does not change which rows are empty).

    Returns
    -------
    int
        Empty filters, 0 to ``n_mels``; each is a band that is always at the floor value.
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    edges = mel_edges(n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)
    filled, empty = _filter_status(sample_rate=sample_rate, n_fft=np.array([n_fft]), edges=edges)
    if bool(np.all(filled | empty)):
        return int(np.count_nonzero(empty))
    return _filterbank_empty(
        sample_rate=sample_rate,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=norm,
    )


def _smallest_n_fft(
    *, sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm: Any
) -> int | None:
    """The smallest n_fft above ``n_fft`` whose filterbank has no empty filter, or None."""
    edges = mel_edges(n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk)
    block = 4096
    for start in range(n_fft + 1, _MAX_N_FFT + 1, block):
        candidates = np.arange(start, min(start + block, _MAX_N_FFT + 1))
        filled, empty = _filter_status(sample_rate=sample_rate, n_fft=candidates, edges=edges)
        for row in np.flatnonzero(~empty.any(axis=1)):
            candidate = int(candidates[row])
            if filled[row].all() or not _filterbank_empty(
                sample_rate=sample_rate,
                n_fft=candidate,
                n_mels=n_mels,
                fmin=fmin,
                fmax=fmax,
                htk=htk,
                norm=norm,
            ):
                return candidate
    return None


def _largest_n_mels(
    *, sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm: Any
) -> int | None:
    """The largest n_mels below ``n_mels`` without an empty filter at ``n_fft``, or None."""
    for candidate in range(n_mels - 1, 0, -1):
        if not empty_mel_filters.__wrapped__(
            sample_rate=sample_rate,
            n_fft=n_fft,
            n_mels=candidate,
            fmin=fmin,
            fmax=fmax,
            htk=htk,
            norm=norm,
        ):
            return candidate
    return None
