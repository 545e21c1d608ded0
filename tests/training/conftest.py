"""Fixtures of the training tests."""

from __future__ import annotations

import pytest

from tests.helpers.synthetic import build_synthetic


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """40 synthetic tracks in two stores (:func:`tests.helpers.synthetic.build_synthetic`)."""
    return build_synthetic(tmp_path_factory.mktemp("synthetic"))
