"""Errors sorted by where they come from.

* :class:`ConfigError`: a chart, graph or run setting is wrong. Raised before any
  image is processed; names the file, the line and the key.
* :class:`InputError`: one source file cannot be processed (corrupt, truncated,
  unsupported, decompression bomb). The executor turns it into a row with
  ``status="failed"`` and the rest of the shoot goes on.
* Anything else is a programming error and propagates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """Where in a configuration file a problem sits."""

    file: Path | str | None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        if not self.file:
            return f"setting '{self.key}'" if self.key else "configuration"
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where}, key '{self.key}'" if self.key else where


class ConfigError(Exception):
    """A configuration (chart, graph, run settings) is invalid.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    location : Location, optional
        File, line and key of the offending value.
    """

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class InputError(Exception):
    """A source file cannot be processed; becomes a failed manifest row."""
