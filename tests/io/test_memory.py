"""keep_freed_memory: malloc reuses freed memory instead of faulting fresh pages in."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.io.memory import keep_freed_memory

#: A job's pattern: arrays of several sizes allocated, touched and freed again and again.
CHILD = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from pipeline.io.memory import keep_freed_memory
    assert keep_freed_memory()
sizes = [465_600, 1_819 * 96, 512 * 512, 3_000_000, 11_000_000]
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    arrays = [np.ones(n, dtype=np.float32) for n in sizes]
    total = sum(float(a[::1024].sum()) for a in arrays)
    del arrays
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_reused_without_page_faults() -> None:
    default, tuned = _faults("default"), _faults("tuned")
    # 20 rounds of ~64 MB: by default the larger arrays are mapped afresh each round (13,000-
    # 23,000 faults measured here, fewer than one per 4 kB page where the kernel maps huge
    # pages); tuned, only the first round's pages fault (about 1,700).
    assert default > 5_000
    assert tuned < default / 5


def test_a_second_call_returns_the_first_answer() -> None:
    first = keep_freed_memory()
    assert keep_freed_memory() is first
    assert first is sys.platform.startswith("linux")
