"""Durable file writes for everything delivered into the output folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_bytes_atomic(path: Path | str, data: bytes, durable: bool = True, sync_folder: bool = True) -> Path:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one.

    The bytes go to a hidden temporary file in the same folder (``os.replace``
    is atomic only within one file system), are flushed to disk with
    ``fsync``, then renamed over ``path``; the folder entry is synced too where
    the platform allows. A crash or a kill mid-write leaves at most a stray
    ``.<name>.*.tmp`` file, never a truncated delivery.

    Parameters
    ----------
    path : Path or str
        The destination; its parent folders are created.
    data : bytes
    durable : bool
        False for files that only save work (the run's journal): no ``fsync``
        (3-4 ms each here); the rename keeps them atomic, and one lost in a
        power cut is redone.
    sync_folder : bool
        False when the caller writes many files into a folder and syncs it
        once afterwards (:func:`sync_folders`).

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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable and sync_folder:
        sync_folders([path.parent])
    return path


def sync_folders(folders: Iterable[Path]) -> None:
    """``fsync`` each folder once, making the renames into it durable (best effort)."""
    for folder in dict.fromkeys(folders):
        try:
            dir_fd = os.open(folder, os.O_RDONLY)
        except OSError:
            continue  # Windows cannot open folders; the rename is still atomic there
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)


def write_json_atomic(path: Path | str, data: object, durable: bool = True, sync_folder: bool = True) -> Path:
    """:func:`write_bytes_atomic` of ``data`` as indented UTF-8 JSON."""
    import json

    text = json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), durable, sync_folder)
