"""The benchmark's exact driver peak (benchmarks/run.py): the kernel's high-water mark, reset per set."""

from __future__ import annotations

import gc
import mmap

import numpy as np
import pytest

from benchmarks.run import own_peak_rss_mb, reset_own_peak_rss


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def test_peak_rss_sees_a_transient_that_is_gone_and_resets():
    gc.collect()
    if not reset_own_peak_rss():
        pytest.skip("this kernel does not let a process reset its VmHWM (/proc/self/clear_refs)")
    # 256 MB touched, then freed: a peak no sampler need see. Counted from the resident set just before the
    # block, not from the mark at the reset: a test worker may free memory in between (a fresh-clone CI run's
    # worker held 1171 MB at the reset and about 920 MB when the block was touched, so the mark rose 6 MB).
    # The block is fresh anonymous memory, each page touched once: a block from the heap can be memory the
    # worker freed earlier and still holds (a full-suite run's worker once saw its mark not move at all).
    before = _rss_mb()
    block = mmap.mmap(-1, 256 * 2**20)
    pages = np.frombuffer(block, dtype=np.uint8)
    pages[::mmap.PAGESIZE] = 1
    del pages
    block.close()
    transient = own_peak_rss_mb()
    assert transient is not None
    assert transient - before >= 160
    assert reset_own_peak_rss()
    after = own_peak_rss_mb()
    assert after is not None and after < transient - 160
