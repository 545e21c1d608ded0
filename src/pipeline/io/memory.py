"""How a compute job's process allocates memory: :func:`keep_freed_memory`.

Every array a job frees and allocates again (a decoded file, an FFT block, a batch of
activations) is, by glibc's default, handed back to the kernel when it is large (``mmap``
above 128 kB-32 MB, or a heap top above the trim threshold) and taken again as fresh pages,
each costing a page fault when first touched. On the machines measured here that is a third of
a log-mel feature job's CPU time and up to half of a CNN training step's
(``benchmarks/README.md``). Raising both thresholds once per process lets malloc reuse what
was freed: the same arithmetic, fewer faults; the process keeps (up to the trim threshold) the
memory it already used at its peak.
"""

from __future__ import annotations

import ctypes
import logging
import sys

__all__ = ["keep_freed_memory"]

log = logging.getLogger(__name__)

#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

#: Allocations below this size come from the heap and are reused, not mapped afresh.
MMAP_THRESHOLD_BYTES = 256 << 20
#: Freed memory at the top of the heap is returned to the kernel only above this.
TRIM_THRESHOLD_BYTES = 1 << 30

_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Have malloc keep and reuse freed memory in this process (glibc's ``mallopt``).

    Called once at the start of every rule script (:func:`pipeline.io.files.rule_errors`)
    and command; later calls return at once. Elsewhere than on glibc (macOS, musl) it does
    nothing.

    Returns
    -------
    bool
        Whether the thresholds are set.
    """
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if sys.platform.startswith("linux"):
        try:
            mallopt = ctypes.CDLL(None).mallopt  # the process's C library
        except (OSError, AttributeError):  # pragma: no cover - a libc without mallopt (musl)
            return False
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        _tuned = bool(
            mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
            and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
        )
        if not _tuned:  # pragma: no cover - a glibc that refuses the values
            log.debug("mallopt refused the thresholds; malloc keeps its defaults")
    return _tuned
