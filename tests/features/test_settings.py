"""Feature settings: the reference window, round trips through dicts and JSON, and errors
that name the bad key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.features.settings import FeatureSettings
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
