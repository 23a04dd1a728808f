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


def is_out_of_space(exc: BaseException) -> bool:
    """Whether an error is a full disk (or an exhausted quota)."""
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class OutOfSpace(Exception):
    """The output folder's disk is full: the run stops (exit code 1) with what it needs.

    Finished work is kept (journal, exports); temporary files are removed.

    Parameters
    ----------
    folder : str
        The output folder.
    free_bytes : int or None
        Free space on its disk when the write failed.
    needed_bytes : int or None
        An estimate of the space the rest of the run needs.
    path : str or None
        The file whose write failed.
    write_bytes : int or None
        The size of that write.
    """

    def __init__(self, folder: str, free_bytes: int | None = None, needed_bytes: int | None = None,
                 path: str | None = None, write_bytes: int | None = None) -> None:
        # All in args: the error travels back from a Ray worker by pickle.
        super().__init__(folder, free_bytes, needed_bytes, path, write_bytes)
        self.folder, self.free_bytes, self.needed_bytes = folder, free_bytes, needed_bytes
        self.path, self.write_bytes = path, write_bytes

    def __str__(self) -> str:
        def mb(n: int) -> str:
            return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"

        facts = []
        if self.free_bytes is not None:
            facts.append(f"{mb(self.free_bytes)} free")
        if self.path:
            facts.append(f"writing {Path(self.path).name}" + (f", {mb(self.write_bytes)}" if self.write_bytes else ""))
        need = (f"this run needs about {mb(self.needed_bytes)} more: free that much" if self.needed_bytes
                else "free some space")
        return (f"no space left on the disk holding {self.folder}" + (f" ({'; '.join(facts)})" if facts else "")
                + f"; {need} or choose an --out on a larger disk, then run again: finished work is kept")

    @classmethod
    def from_oserror(cls, exc: OSError, folder: Path | str) -> OutOfSpace:
        import shutil

        try:
            free: int | None = shutil.disk_usage(folder).free
        except OSError:
            free = None
        path = exc.filename if isinstance(exc.filename, str) else None
        return cls(str(folder), free, None, path, getattr(exc, "bytes_to_write", None))


class ClusterLost(Exception):
    """The Ray cluster a run used is gone (its raylet or GCS stopped): the run stops, exit code 1.

    Finished work is journalled; a rerun resumes it.
    """
