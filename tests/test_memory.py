"""The driver's freed heap given back before its peak (issue 16, target 5)."""

from __future__ import annotations

import sys

import pytest

from pipeline.kernel.memory import _malloc_trim, release_free_memory


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
