"""pipeline.io.parallel: local threads, and a running Dask cluster named by address."""

from __future__ import annotations

import dask
import pytest

from pipeline.errors import ConfigError
from pipeline.io.parallel import compute, scheduler_address


def _square(x: int) -> int:
    return x * x


def test_threads_keep_order() -> None:
    tasks = [dask.delayed(_square)(i) for i in range(20)]
    assert compute(tasks, threads=2) == tuple(i * i for i in range(20))


def test_address_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://example:8786")
    assert scheduler_address(None) == "tcp://example:8786"
    assert scheduler_address("tcp://other:1") == "tcp://other:1"
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS")
    assert scheduler_address(None) is None


def test_running_cluster_by_address() -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        tasks = [dask.delayed(_square)(i) for i in range(5)]
        assert compute(tasks, address=cluster.scheduler_address) == (0, 1, 4, 9, 16)


def test_missing_distributed_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_distributed(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "distributed":
            raise ImportError("no distributed")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(ConfigError, match="distributed"):
        compute([dask.delayed(_square)(2)], address="tcp://nowhere:1")
