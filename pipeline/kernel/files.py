"""Durable file writes for everything delivered into the output folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _read_umask() -> int:
    """The process umask, read without changing it where the platform allows.

    ``os.umask`` can only be read by setting it, which races with other
    threads creating files (the review app writes from several); Linux shows
    it in ``/proc/self/status``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: ``0o666`` less the umask."""
    return 0o666 & ~_read_umask()


def write_bytes_atomic(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one.

    The bytes go to a hidden temporary file in the same folder (``os.replace``
    is atomic only within one file system), are flushed to disk with
    ``fsync``, then renamed over ``path``; the folder entry is synced too where
    the platform allows. A crash or a kill mid-write leaves at most a stray
    ``.<name>.*.tmp`` file, never a truncated delivery. The file gets the
    mode a plain write would (``0o666`` less the umask), not the ``0o600`` of
    a temporary file: deliveries are read by other people and services.

    Parameters
    ----------
    path : Path or str
        The destination; its parent folders are created.
    data : bytes

    Returns
    -------
    Path

    Raises
    ------
    OSError
        If the folder cannot be created or the file written (disk full, permissions).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temporary name adds 14 bytes to the file's: cut it so a 255-byte name can still be written.
    stem = path.name.encode("utf-8", "surrogateescape")[:200].decode("utf-8", "ignore")
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if hasattr(os, "fchmod"):  # not on Windows, where mkstemp's mode is not 0o600 anyway
                os.fchmod(f.fileno(), file_mode())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            exc.filename = exc.filename or str(path)
            exc.bytes_to_write = len(data)  # type: ignore[attr-defined] - what a full disk had to take
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path  # Windows cannot open folders; the rename is still atomic there
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return path


def write_json_atomic(path: Path | str, data: object) -> Path:
    """:func:`write_bytes_atomic` of ``data`` as indented UTF-8 JSON."""
    import json

    text = json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))
