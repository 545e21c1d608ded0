"""Fixtures shared across the test folders.

Session-scoped fixtures are built once per test run: trained checkpoints take seconds and
are read, never changed, by the tests that use them. Non-fixture helpers live in
``tests/helpers/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# The helpers' own assertions (tests.helpers.records, tests.helpers.cli) explain a failure
# as a test's do; this must come before any helper is imported.
pytest.register_assert_rewrite("tests.helpers")

from tests.helpers.audio import tone, write_audio  # noqa: E402
from tests.helpers.checkpoints import train_checkpoints, train_fcn_and_lstm  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """Tiny models: one torch thread is faster, and fairer on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A checkpoint of each tagger kind (:data:`tests.helpers.checkpoints.KINDS`), trained
    briefly on 24 synthetic tracks (:func:`tests.helpers.checkpoints.train_checkpoints`)."""
    return train_checkpoints(tmp_path_factory.mktemp("tagging"))


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A crop-trained FCN and an LSTM on 40 synthetic tracks, three and two epochs
    (:func:`tests.helpers.checkpoints.train_fcn_and_lstm`)."""
    return train_fcn_and_lstm(tmp_path_factory.mktemp("tagger"))


@pytest.fixture(scope="session")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real encoded files: rates, channels and lengths the synthetic model never saw."""
    folder = tmp_path_factory.mktemp("audio")
    low = tone(duration_s=5.3, sample_rate=44100, freq_hz=180.0, channels=2, seed=1)
    return {
        "wav": write_audio(folder / "stereo.wav", data=low, sample_rate=44100),
        "flac": write_audio(folder / "mono.flac", duration_s=3.4, freq_hz=3000.0),
        "ogg": write_audio(folder / "rate.ogg", duration_s=2.5, sample_rate=22050, seed=2),
        "mp3": write_audio(folder / "clip.mp3", duration_s=2.2, sample_rate=44100, seed=3),
        "short": write_audio(folder / "short.wav", duration_s=0.4, freq_hz=200.0),
    }


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny random-weight CLAP and HuBERT-style model saved to directories
    (:mod:`tests.helpers.encoders`); skipped when the ``encoders`` extra is not installed."""
    pytest.importorskip("transformers")
    from tests.helpers.encoders import tiny_clap, tiny_hubert

    root = tmp_path_factory.mktemp("encoders")
    return {"clap": tiny_clap(root / "clap"), "hubert": tiny_hubert(root / "hubert")}
