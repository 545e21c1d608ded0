"""Fixtures of the feature-stage tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.feature_stores import build_stores, store_settings


@pytest.fixture(autouse=True)
def _local_dask(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask runs on local threads, whatever cluster the environment names."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], pd.DataFrame]:
    """The stores and manifest of :func:`tests.helpers.feature_stores.build_stores`."""
    return build_stores(tmp_path_factory.mktemp("stores"), store_settings())
