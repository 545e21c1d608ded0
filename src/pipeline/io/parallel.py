"""Where Dask runs the tasks of a job: local threads by default, or an existing cluster.

Threads suit this pipeline's work (libsndfile, soxr and torch release the GIL; DATA.md
measured 1.76-1.89x on 2 cores). For a very large reduction, point a job at a running Dask
cluster with ``extraction.dask_scheduler: tcp://host:8786`` (or the environment variable
``DASK_SCHEDULER_ADDRESS``); that needs the ``distributed`` package, and the cluster's workers
must see the same files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import dask

from pipeline.errors import ConfigError

__all__ = ["compute", "scheduler_address"]


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
    address = scheduler_address(address)
    if address is None:
        return dask.compute(*tasks, scheduler="threads", num_workers=max(threads, 1))
    try:
        from distributed import Client
    except ImportError as exc:
        raise ConfigError(
            f"dask scheduler {address!r}: using a Dask cluster needs the 'distributed' "
            "package (pip install distributed)"
        ) from exc
    with Client(address) as client:
        return dask.compute(*tasks, scheduler=client)
