"""What the benchmark scripts' result tables share: the verdict on a target, the machine they ran on, a column table."""

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


def print_columns(title: str, table: dict[str, dict[str, str]]) -> None:
    """Print ``table`` (column label -> row name -> cell) as a Markdown table under ``### title``.

    Rows appear in the order the columns first name them; a cell a column lacks is ``—``.
    """
    rows = list(dict.fromkeys(r for col in table.values() for r in col))
    print(f"\n### {title}\n\n| row | " + " | ".join(table) + " |\n|---|" + "---|" * len(table))
    for row in rows:
        print(f"| {row} | " + " | ".join(col.get(row, "—") for col in table.values()) + " |")
