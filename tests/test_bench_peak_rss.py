"""The benchmark's exact driver peak (benchmarks/run.py): the kernel's high-water mark, reset per set."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.run import own_peak_rss_mb, reset_own_peak_rss


def test_peak_rss_sees_a_transient_that_is_gone_and_resets():
    if not reset_own_peak_rss():
        pytest.skip("this kernel does not let a process reset its VmHWM (/proc/self/clear_refs)")
    base = own_peak_rss_mb()
    # 256 MB touched, then freed: a peak no sampler need see. The mark is the resident set at the reset,
    # and the process may hold less by the time the block is touched (another thread of a test worker
    # freeing memory: 76 MB of a 96 MB block seen once), hence the margin.
    block = np.ones(256 * 2**20, dtype=np.uint8)
    del block
    transient = own_peak_rss_mb()
    assert base is not None and transient is not None
    assert transient - base >= 160
    assert reset_own_peak_rss()
    after = own_peak_rss_mb()
    assert after is not None and after < transient - 160
