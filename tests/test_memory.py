"""The driver's freed heap given back before its peak (issue 16, target 5)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.kernel.memory import _malloc_trim, release_free_memory
from pipeline.kernel.run import RunSettings, process_shoot


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is Linux's")
def test_free_pages_in_the_middle_of_the_heap_go_back() -> None:
    assert _malloc_trim() is not None
    # 64 KB blocks come from the heap (under glibc's mmap threshold); every other one freed leaves 64 KB
    # holes between live blocks, which free() alone never returns.
    blocks = [bytearray(b"x" * 65_000) for _ in range(1600)]
    del blocks[::2]
    before = _rss_bytes()
    release_free_memory()
    after = _rss_bytes()
    assert before - after > 20 * 2**20, (before, after)  # about 50 MB of whole free pages
    assert all(b[:1] == b"x" and b[-1:] == b"x" for b in blocks)  # what is in use is untouched


def test_planning_s_cached_curves_are_dropped_before_the_outputs(faces_dir: Path, tmp_path: Path) -> None:
    # The curves planning caches per gain (about 3 MB on a large shoot) are not held through the outputs, the driver's
    # peak: after a run to the plan, none is left, though some were made before it.
    from pipeline.imaging.measure import metering

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(faces_dir / "2008_001009.jpg", shoot)
    metering.balanced(np.full((4, 4, 3), 0.3, np.float32), (1.2, 1.0, 0.8), True)
    metering.exposed(np.full((4, 4, 3), 0.3, np.float32), -1.0, True)
    caches = (metering._balance_ratio, metering._darkening_ratio, metering._encoded_darkening)
    assert metering._balance_ratio.cache_info().currsize and metering._darkening_ratio.cache_info().currsize
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local"))
    metering.exposed(np.full((4, 4, 3), 0.3, np.float32), -1.0, True)  # again: that run dropped them too
    assert metering._darkening_ratio.cache_info().currsize
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local", only="plan"))
    assert [c.cache_info().currsize for c in caches] == [0, 0, 0]
