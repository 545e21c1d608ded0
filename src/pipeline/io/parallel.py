"""Where the tasks of a job run: local threads by default, or an existing Dask cluster.

Two ways to run them: :func:`compute` (Dask delayed tasks, all results at once: reductions
such as the band statistics) and :func:`stream` (a function over items, results handed back
in order *while* later items are computed, with a bounded number in flight: the feature
extraction, whose main thread writes the store as results arrive). :func:`stream` runs on a
``concurrent.futures`` thread pool locally (what Dask's threaded scheduler is underneath,
without its import, its graph per round and the barrier at the end of each round) and on a
Dask cluster through ``distributed``'s executor when an address is given.

Threads suit this pipeline's work (libsndfile, soxr and torch release the GIL; DATA.md
measured 1.76-1.89x on 2 cores). For a very large reduction, point a job at a running Dask
cluster with ``extraction.dask_scheduler: tcp://host:8786`` (or the environment variable
``DASK_SCHEDULER_ADDRESS``); that needs the ``distributed`` package, and the cluster's workers
must see the same files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, TypeVar

from pipeline.errors import ConfigError

__all__ = ["compute", "one_blas_thread", "scheduler_address", "stream"]

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit NumPy's BLAS to one thread while the block runs (when threadpoolctl is installed).

    The feature extractor's products are small: a BLAS thread pool only contends with the
    caller's own threads (a job's thread pool, torch's intra-op threads) for the cores.
    Entering costs about 1 ms: use it around a job or a file, not a window.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def scheduler_address(address: str | None = None) -> str | None:
    """The Dask scheduler to use: ``address``, else ``$DASK_SCHEDULER_ADDRESS``, else None."""
    return address or os.environ.get("DASK_SCHEDULER_ADDRESS") or None


def compute(tasks: Sequence[Any], *, threads: int = 1, address: str | None = None) -> tuple:
    """Compute Dask delayed tasks, in order.

    Parameters
    ----------
    tasks : sequence of dask.delayed objects
    threads : int
        Local threads (the rule's ``threads``) when no cluster is named.
    address : str, optional
        A running Dask scheduler (``tcp://host:port``); see :func:`scheduler_address`.

    Returns
    -------
    tuple
        The tasks' results, in the order given.
    """
    import dask  # lazy: jobs that only stream never load it

    address = scheduler_address(address)
    if address is None:
        return dask.compute(*tasks, scheduler="threads", num_workers=max(threads, 1))
    with _client(address) as client:
        return dask.compute(*tasks, scheduler=client)


@contextmanager
def _client(address: str) -> Iterator[Any]:
    try:
        from distributed import Client
    except ImportError as exc:
        raise ConfigError(
            f"dask scheduler {address!r}: using a Dask cluster needs the 'distributed' "
            "package (pip install distributed)"
        ) from exc
    with Client(address) as client:
        yield client


@contextmanager
def _executor(threads: int, address: str | None) -> Iterator[Executor]:
    address = scheduler_address(address)
    if address is None:
        with ThreadPoolExecutor(max(threads, 1), thread_name_prefix="pipeline") as pool:
            yield pool
        return
    with _client(address) as client:
        yield client.get_executor()


def stream(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    threads: int = 1,
    address: str | None = None,
    ahead: int | None = None,
) -> Iterator[R]:
    """``func(item)`` for every item, yielded in the order of ``items`` as they complete.

    New items are submitted whenever any running one finishes (no rounds, no barrier), so a
    long item never leaves the other threads idle; at most ``ahead`` items are computed or
    held beyond the next one to yield, which bounds memory. The consumer runs in the caller's
    thread while the pool keeps computing, so its work (a store write) overlaps the compute.

    Parameters
    ----------
    func : callable
        Should not raise for an item it can report on (failures are values, e.g. a failed
        track); an exception is re-raised as soon as it is seen.
    items : sequence
    threads : int
        Local threads, when no cluster is named.
    address : str, optional
        A running Dask scheduler (see :func:`scheduler_address`).
    ahead : int, optional
        Items in flight or waiting to be yielded; default ``4 * threads + 2`` (at least 2,
        so one thread never waits while the consumer works).

    Yields
    ------
    The results, in the order of ``items``.
    """
    limit = max(ahead if ahead is not None else 4 * max(threads, 1) + 2, 2)
    with _executor(threads, address) as pool:
        running: dict[Future, int] = {}
        done: dict[int, R] = {}
        next_submit = next_yield = 0
        try:
            while next_yield < len(items):
                while next_submit < len(items) and next_submit - next_yield < limit:
                    running[pool.submit(func, items[next_submit])] = next_submit
                    next_submit += 1
                if next_yield not in done:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        done[running.pop(future)] = future.result()
                while next_yield in done:
                    yield done.pop(next_yield)
                    next_yield += 1
        finally:
            for future in running:
                future.cancel()
