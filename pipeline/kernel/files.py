"""Durable file writes for everything delivered into the output folder."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO


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


def temp_prefix(path: Path) -> str:
    """The prefix of ``path``'s temporary file: hidden, and short enough for a 255-byte name to be written.

    The temporary name adds 14 bytes to the file's, so the name is cut to 200 bytes of UTF-8.
    """
    stem = path.name.encode("utf-8", "surrogateescape")[:200].decode("utf-8", "ignore")
    return f".{stem}."


def write_bytes_atomic(path: Path | str, data: bytes, durable: bool = True, sync_folder: bool = True) -> Path:
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
    durable : bool
        False for files that only save work (the run's journal): no ``fsync``
        (1-4 ms each on this VM), still atomic by the rename; one lost in a
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
    return _replace_atomically(Path(path), (data,), len(data), durable, sync_folder)


def _replace_atomically(path: Path, chunks: Iterable[bytes], size: int | None, durable: bool,
                        sync_folder: bool) -> Path:
    """Write ``chunks`` through :func:`atomic_file`: the one implementation of
    :func:`write_bytes_atomic` and :func:`write_chunks_atomic`."""
    with atomic_file(path, durable, sync_folder, size) as f:
        for chunk in chunks:
            f.write(chunk)
    return path


@contextlib.contextmanager
def atomic_file(path: Path | str, durable: bool = True, sync_folder: bool = True,
                size: int | None = None) -> Iterator[BinaryIO]:
    """A binary file to write whose content replaces ``path`` whole when the block ends.

    What :func:`write_bytes_atomic` does, for writers that want a file object
    (a Parquet writer streaming row batches): a hidden temporary file beside
    ``path``, flushed, given a plain file's mode, ``fsync``-ed when ``durable``,
    renamed over ``path``. An exception in the block removes the temporary
    file and leaves ``path`` as it was.

    Parameters
    ----------
    path : Path or str
        The destination; its parent folders are created.
    durable, sync_folder : bool
        As in :func:`write_bytes_atomic`.
    size : int, optional
        The bytes to be written, when known: set on an ``OSError`` as ``bytes_to_write``
        for a full disk's message.

    Raises
    ------
    OSError
        If the folder cannot be created or the file written; its ``filename`` names ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if hasattr(os, "fchmod"):  # not on Windows, where mkstemp's mode is not 0o600 anyway
                os.fchmod(f.fileno(), file_mode())
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            exc.filename = exc.filename or str(path)
            if size is not None:
                exc.bytes_to_write = size  # type: ignore[attr-defined] - what a full disk had to take
        raise
    if durable and sync_folder:
        sync_folders([path.parent])


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


def write_chunks_atomic(path: Path | str, chunks: Iterable[bytes]) -> Path:
    """:func:`write_bytes_atomic` of the concatenated ``chunks``, never all in memory at once.

    Raises
    ------
    OSError
        If the folder cannot be created or the file written.
    """
    return _replace_atomically(Path(path), chunks, None, durable=True, sync_folder=True)


def make_durable(files: Iterable[Path], anchor: Path) -> None:
    """Flush to disk files written without ``fsync`` (:func:`write_bytes_atomic` with ``durable=False``).

    One ``syncfs`` of the file system that holds ``anchor`` where Linux has it:
    one flush however many files (an ``fsync`` costs 2-7 ms on this VM's disk,
    and every image writes six files), and it reaches files other processes
    wrote (a Ray worker's exports) as the driver's own. Elsewhere, or when it
    fails, each file and then each of their folders once is ``fsync``-ed. A
    ``syncfs`` also waits for what other processes left unwritten on that file
    system (on a shared machine, 0.1-1.8 s now and then): the journal calls
    this from a thread of its own, so the run goes on meanwhile.
    Files that are gone are passed over (a later write replaced them, and was
    flushed by its own writer or is in this batch under its own name).

    Parameters
    ----------
    files : iterable of Path
        The files, renamed into place already.
    anchor : Path
        A folder on their file system (the output folder).

    Raises
    ------
    OSError
        If a file cannot be flushed (an I/O error; a full disk on a delayed allocation).
    """
    syncfs = _syncfs()
    if syncfs is not None:
        try:
            fd = os.open(anchor, os.O_RDONLY)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                if syncfs(fd) == 0:  # type: ignore[operator]
                    return
            finally:
                os.close(fd)
    folders: list[Path] = []
    for path in files:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        folders.append(Path(path).parent)
    sync_folders(folders)


def _syncfs() -> object | None:
    """Linux's ``syncfs(fd)`` (one flush of a whole file system), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


class AtomicBatch:
    """Many files written atomically and durably together (a run's instructions and sidecars).

    Each file goes to a temporary name beside its destination; :meth:`commit`
    flushes them all to disk, renames them into place and syncs their folders,
    so a reader sees every file old or whole, as with
    :func:`write_bytes_atomic`. The flush is one ``syncfs`` of the file system
    where Linux has it (1-45 ms, against 2-7 ms for each ``fsync`` on this
    VM's disk: 20,000 files took 70 s one by one), else an ``fsync`` a file.
    Leaving the ``with`` block by an exception removes the temporary files.
    """

    #: Fewer files than this are synced one by one. A file system flush cost about 30-70 fsyncs when this was
    #: first measured (others' writes were being flushed too); 9 files of 20 KB, 15 times alternating on this
    #: VM's ext4 disk (2026-11-30, load 4-8): one syncfs 4.1 ms median (1.0-44.9), an fsync each and the
    #: folder's 44.5 ms (18-87).
    SYNCFS_FROM = 8

    def __init__(self) -> None:
        self._pending: list[tuple[str, Path]] = []

    def __enter__(self) -> AtomicBatch:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    def write(self, path: Path | str, data: bytes) -> Path:
        """Write ``data`` under a temporary name beside ``path`` (renamed at :meth:`commit`).

        Raises
        ------
        OSError
            If the folder cannot be created or the file written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
        self._pending.append((tmp, path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), file_mode())
        return path

    def commit(self) -> None:
        """Flush every file, rename each into place, sync the folders.

        Raises
        ------
        OSError
            If a file cannot be synced or renamed (the others stay as they were).
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        syncfs = _syncfs() if len(pending) >= self.SYNCFS_FROM else None
        flushed = False
        if syncfs is not None:
            fd = os.open(pending[0][1].parent, os.O_RDONLY)
            try:
                flushed = syncfs(fd) == 0  # type: ignore[operator]
            finally:
                os.close(fd)
        try:
            if not flushed:
                for tmp, _ in pending:
                    fd = os.open(tmp, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            for tmp, path in pending:
                os.replace(tmp, path)
        except BaseException:
            for tmp, _ in pending:
                Path(tmp).unlink(missing_ok=True)
            raise
        sync_folders(sorted({path.parent for _, path in pending}))

    def abort(self) -> None:
        """Remove the temporary files of everything not committed."""
        pending, self._pending = self._pending, []
        for tmp, _ in pending:
            Path(tmp).unlink(missing_ok=True)
