"""Feature settings: the reference window, round trips through dicts and JSON, errors that
name the bad key, and settings that would make features useless (mel range, empty mel
filters, hop, non-finite windows)."""

from __future__ import annotations

import json
import math
import warnings

import librosa
import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.features.settings import FeatureSettings, empty_mel_filters
from pipeline.features.windows import audio_frames
from pipeline.io.audio import WindowSettings

SR = 16000
WINDOW = WindowSettings(length_s=2.0, hop_s=2.0)
NATURAL = 1 + WINDOW.length // 256  # 126 centred frames


def _settings(**kwargs) -> FeatureSettings:
    base = {"name": "test", "window": WINDOW, "n_frames": NATURAL}
    return FeatureSettings(**{**base, **kwargs})


def test_natural_n_frames_of_the_reference_window() -> None:
    settings = FeatureSettings(name="ref")
    assert settings.window.length == 465_600
    assert settings.natural_n_frames == settings.n_frames == 1819
    assert settings.sample_rate == SR


def test_settings_round_trip_through_dict_and_json() -> None:
    settings = FeatureSettings(
        name="mf",
        kind="mfcc",
        window=WindowSettings(length_s=3.0, hop_s=1.5, tail="drop", min_tail_s=1.0),
        n_mels=64,
        fmin=30.0,
        fmax=7000.0,
        mel_scale="htk",
        mel_norm=None,
        top_db=80.0,
        n_frames=188,
        n_mfcc=24,
        deltas=2,
    )
    plain = json.loads(json.dumps(settings.to_dict()))
    assert plain["window"]["sample_rate"] == SR and plain["name"] == "mf"
    assert FeatureSettings.from_dict(plain) == settings
    assert FeatureSettings.from_dict(plain, name="other").name == "other"


def test_from_dict_reads_config_style_sample_rate() -> None:
    settings = FeatureSettings.from_dict(
        {"kind": "logmel", "sample_rate": 22050, "window": {"length_s": 1.0, "hop_s": 1.0}},
        name="lm",
    )
    assert settings.sample_rate == 22050 and settings.window.length == 22050
    assert settings.name == "lm"


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"kind": "chroma"}, "features.bad.kind"),
        ({"kind": "mfcc", "n_mels": 40, "n_mfcc": 41}, "features.bad.n_mfcc"),
        ({"kind": "mfcc", "n_mfcc": 0}, "features.bad.n_mfcc"),
        ({"kind": "logmel", "mel_scale": "bark"}, "features.bad.mel_scale"),
        ({"kind": "mfcc", "deltas": 3}, "features.bad.deltas"),
        ({"kind": "logmel", "n_mel": 96}, "n_mel"),
    ],
)
def test_bad_settings_raise_config_error_naming_the_key(entry: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        FeatureSettings.from_dict(entry, name="bad")


def test_unknown_key_error_lists_allowed_keys() -> None:
    with pytest.raises(ConfigError) as err:
        FeatureSettings.from_dict({"kind": "logmel", "hop": 256}, name="lm")
    assert "'hop'" in str(err.value) and "hop_length" in str(err.value)


def test_from_dict_needs_a_name() -> None:
    with pytest.raises(ConfigError, match="name"):
        FeatureSettings.from_dict({"kind": "logmel"})


def test_unknown_window_key_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="lenght_s"):
        FeatureSettings.from_dict({"kind": "logmel", "window": {"lenght_s": 2.0}}, name="lm")


def test_negative_top_db_is_rejected() -> None:
    with pytest.raises(ConfigError, match="top_db"):
        _settings(top_db=-10.0)


def test_waveform_frames_are_samples() -> None:
    settings = FeatureSettings.from_dict(
        {
            "kind": "waveform",
            "n_frames": 1819,
            "hop_length": 256,
            "window": {"length_s": 2.0, "hop_s": 2.0},
        },
        name="wave",
    )
    assert (settings.hop_length, settings.n_frames) == (1, 32000)
    # 1.5 s of audio in a 2 s window: 24,000 samples hold audio.
    valid = audio_frames(starts_s=np.array([0.0]), duration_s=1.5, features=settings)
    assert abs(int(valid[0]) - 24000) <= 1


# ---------------------------------------------------------------------------- useless settings


def _librosa_empty(**kwargs) -> int:
    """Empty rows of librosa's own filterbank, the one the extractor uses."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        basis = librosa.filters.mel(**kwargs)
    return int((basis.sum(axis=1) == 0).sum())


@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize(
    ("sr", "fmin", "fmax"),
    [
        (16000, 0.0, None),
        (16000, 0.0, 8000.0),
        (22050, 20.0, 11025.0),
        (8000, 1000.0, 3000.0),
        (44100, 30.0, 16000.0),
        (16000, 7990.0, 8000.0),
        (16000, 500.0, 1000.0),
    ],
)
def test_empty_mel_filters_agrees_with_librosa(sr: int, fmin: float, fmax, htk: bool) -> None:
    for n_fft in (16, 64, 100, 250, 256, 500, 511, 512, 1000, 1024, 2048):
        for n_mels in (1, 8, 24, 40, 64, 96, 128, 256, 512):
            got = empty_mel_filters(
                sample_rate=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk
            )
            want = _librosa_empty(
                sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm="slaney"
            )
            assert got == want, (n_fft, n_mels)


def test_the_reference_settings_have_no_empty_filter() -> None:
    assert empty_mel_filters(sample_rate=16000, n_fft=512, n_mels=96, fmax=8000.0) == 0
    # n_fft 16 leaves 82 of 96 bands at the floor, which librosa only warns about
    assert empty_mel_filters(sample_rate=16000, n_fft=16, n_mels=96) == 82


def _message(**kwargs) -> str:
    with pytest.raises(ConfigError) as err:
        _settings(**kwargs)
    return str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"fmin": 9000.0, "fmax": 8000.0}, "features.test.fmin: 9000 Hz must be below fmax (8000"),
        ({"fmin": 8000.0}, "features.test.fmin: 8000 Hz must be below fmax (8000"),
        ({"fmax": 11025.0}, "features.test.fmax: 11025.0 Hz is above sample_rate / 2"),
        ({"fmin": -1.0}, "features.test.fmin: -1.0 must be a number >= 0 Hz"),
        ({"fmin": math.nan}, "features.test.fmin: nan"),
        ({"fmax": math.inf}, "features.test.fmax: inf"),
        ({"fmax": math.nan}, "features.test.fmax: nan must be a number of Hz or null"),
        ({"hop_length": 513}, "features.test.hop_length: 513 must be <= n_fft (512)"),
        ({"amin": math.inf}, "features.test.amin: inf must be a finite number > 0"),
        ({"amin": 0.0}, "features.test.amin: 0.0"),
        ({"top_db": math.inf}, "features.test.top_db: inf must be a finite number"),
        ({"top_db": math.nan}, "features.test.top_db: nan"),
    ],
)
def test_impossible_mel_settings(kwargs: dict, says: str) -> None:
    message = _message(**kwargs)
    assert says in message, message
    if "fmin" in says or "fmax" in says:
        assert "allowed: 0 <= fmin < fmax <= sample_rate / 2 = 8000 Hz" in message


def test_too_small_n_fft_names_what_works() -> None:
    message = _message(n_fft=16, hop_length=16)
    assert message.startswith("features.test.n_fft: 16 is too small for n_mels 96: 82 of the 96")
    smallest = int(message.split("the smallest n_fft that works is ")[1].split(",")[0])
    largest = int(message.split("works with n_fft 16 is ")[1])
    librosa_kwargs = {"sr": SR, "fmin": 0.0, "fmax": 8000.0, "htk": False, "norm": "slaney"}
    assert _librosa_empty(n_fft=smallest, n_mels=96, **librosa_kwargs) == 0
    assert all(_librosa_empty(n_fft=n, n_mels=96, **librosa_kwargs) for n in range(16, smallest))
    assert _librosa_empty(n_fft=16, n_mels=largest, **librosa_kwargs) == 0
    assert _librosa_empty(n_fft=16, n_mels=largest + 1, **librosa_kwargs) > 0
    _settings(n_fft=smallest, hop_length=16)  # and the settings then pass
    _settings(n_fft=16, hop_length=16, n_mels=largest)


def test_mfcc_gets_the_same_checks_and_waveform_none() -> None:
    assert "features.test.fmax" in _message(kind="mfcc", fmax=9000.0)
    waveform = _settings(kind="waveform", n_fft=16, fmin=9000.0, fmax=8000.0)
    assert waveform.n_frames == WINDOW.length


@pytest.mark.parametrize(
    ("window", "key"),
    [
        ({"max_duration_s": math.inf}, "max_duration_s: inf must be a finite number of seconds"),
        ({"length_s": math.inf}, "length_s: inf must be a finite number of seconds > 0"),
        ({"min_tail_s": math.inf}, "min_tail_s: inf must be a finite number of seconds >= 0"),
        ({"min_tail_s": math.nan}, "min_tail_s: nan"),
        ({"min_tail_s": -1.0}, "min_tail_s: -1.0"),
    ],
)
def test_non_finite_windows_are_refused(window: dict, key: str) -> None:
    settings = WindowSettings(**{"length_s": 2.0, "hop_s": 2.0, **window})
    message = _message(window=settings, name="test")
    assert message.startswith(f"features.test.window.{key}"), message


def test_from_dict_names_the_feature_set_for_window_errors() -> None:
    entry = {"kind": "logmel", "window": {"max_duration_s": math.inf}}
    with pytest.raises(ConfigError, match=r"^features\.lm\.window\.max_duration_s: inf"):
        FeatureSettings.from_dict(entry, name="lm")
