"""What the benchmark scripts' result tables share: the verdict on a target and the machine they ran on."""

from __future__ import annotations

import platform
from pathlib import Path


def verdict(ok: bool) -> str:
    """``PASS`` or ``MISS``: how every benchmark table and target line marks a target."""
    return "PASS" if ok else "MISS"


def cpu_model() -> str:
    """The processor's model name as /proc/cpuinfo gives it, else what ``platform`` knows, else ``?``."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu
