"""Atomic writes: a temporary file in the same folder, fsync, then a rename.

A reader (or a run killed half-way) never sees half a file: the name points
at the old content or at the complete new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(data: Any, path: Path) -> None:
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n"
    write_bytes_atomic(text.encode("utf-8"), path)
