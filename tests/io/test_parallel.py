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


def test_stream_keeps_order_and_bounds_what_is_in_flight() -> None:
    import threading
    import time

    from pipeline.io.parallel import stream

    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def slow_square(x: int) -> int:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02 if x % 3 else 0.05)
        with lock:
            state["now"] -= 1
        return x * x

    got = []
    for value in stream(slow_square, list(range(30)), threads=2, ahead=5):
        got.append(value)
    assert got == [i * i for i in range(30)]
    assert state["peak"] == 2  # two threads busy, never more


def test_stream_has_no_barrier_behind_a_long_item() -> None:
    """While item 0 runs long, the other thread works through the items behind it."""
    import threading
    import time

    from pipeline.io.parallel import stream

    finished_while_long: list[int] = []
    long_done = threading.Event()

    def work(x: int) -> int:
        if x == 0:
            time.sleep(0.5)
            long_done.set()
        elif not long_done.is_set():
            finished_while_long.append(x)
        return x

    assert list(stream(work, list(range(12)), threads=2, ahead=12)) == list(range(12))
    assert len(finished_while_long) == 11


def test_stream_on_a_running_cluster() -> None:
    distributed = pytest.importorskip("distributed")
    from pipeline.io.parallel import stream

    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        got = list(stream(_square, list(range(7)), address=cluster.scheduler_address))
    assert got == [i * i for i in range(7)]
