"""The driver's freed memory given back to the system before its peak.

A run's driver goes through phases (the scan, planning, the outputs' tables)
that each allocate and free many small objects. glibc's malloc keeps the pages
of what was freed in the middle of its heap for reuse instead of handing them
back (only the heap's top is trimmed as it goes), so the driver's resident
memory stays at the highest any phase reached, and that grows with the shoot:
about 4 MB more free heap held at the contact sheets (the driver's peak) on
3,000 images than on 100 (RESULTS.md, target 5). ``malloc_trim(0)`` gives the
whole free pages anywhere in the heap back (``madvise``); the memory stays
mapped and is faulted in again when it is next used.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache
from typing import Callable


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Give the free pages of the C heap back to the system (glibc's ``malloc_trim(0)``).

    A few milliseconds; nothing that is in use moves. Python's own small-object
    arenas are not touched (CPython frees an arena when it is empty).

    Returns
    -------
    bool
        Whether any memory was given back (False where there is no ``malloc_trim``).
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
