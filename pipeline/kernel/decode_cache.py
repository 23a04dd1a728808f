"""Decodes kept from analysis to render, so a RAW file is decoded once per run where it can be.

The analysis proxy is cut from a LibRaw decode: half size for a large
sensor, full size for a small one. After planning, the render decodes the
file again at the size its largest rendition needs, and that is often the
very same decode: a 2048 px JPEG from a 24 MP file needs the half-size one,
anything from a 4 MP file the full one. The decode stage therefore leaves
its array here (16-bit ``.npy`` in the output folder's state directory, under
a disk budget) when the chart says the render will want it, and the render
takes it (reads and deletes it) instead of decoding again. It is the same
LibRaw call on the same bytes, so the exports are the same.

Entries are named by content hash and decode size, written through a
temporary file and a rename, and usable by any worker of the run (they
share the output folder) and by a resumed run; :func:`clear` removes the
folder when the run is done.

An executor that runs the render in the very process that decoded
(the local one) turns on :func:`hold_in_memory`: entries then stay in that
process's memory, under their own budget, and go to disk only past it,
saving the write and the read (30-70 ms for a 24 MP half-size decode).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

#: Relative to the output folder; inside the run's state directory.
CACHE_DIR = Path(".postprod") / "decoded"
#: The most of the disk's free space (counting what the cache holds) the cache may take: the
#: deliveries need the rest. A 4 GB budget on a 60 MB disk once filled it before the exports came.
FREE_SPACE_SHARE = 0.25


class _MemoryTier:
    """Decodes kept in this process, by cache path, within a byte budget."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.budget = 0
        self.entries: dict[Path, np.ndarray] = {}

    def used(self) -> int:
        return sum(a.nbytes for a in self.entries.values())


_memory = _MemoryTier()


def hold_in_memory(budget_bytes: int) -> None:
    """Keep up to ``budget_bytes`` of decodes in this process's memory instead of on disk (0: none).

    For executors whose render runs in the process that decoded (entries in
    memory are invisible to other processes). 0 also forgets what is held
    (an executor closing after a failed run: the render will decode again).

    Raises
    ------
    ValueError
        If ``budget_bytes`` is negative.
    """
    if budget_bytes < 0:
        raise ValueError(f"budget must be >= 0 bytes, got {budget_bytes}")
    with _memory.lock:
        _memory.budget = budget_bytes
        if budget_bytes == 0:
            _memory.entries.clear()


def entry_name(content_hash: str, orientation: int | None = None) -> str:
    """The name a file's decodes are kept under: its content hash, and the turn its XMP gives it where it gives one
    (the same bytes developed in another turn are another picture: a run that stopped leaves its entries for the
    next, and the photographer may have turned the frame in between)."""
    return content_hash if orientation is None else f"{content_hash}.o{orientation}"


def cache_path(out_dir: Path, content_hash: str, half_size: bool) -> Path:
    """Where the ``half_size`` (or full) LibRaw decode of a file with ``content_hash`` is kept."""
    return Path(out_dir) / CACHE_DIR / f"{content_hash}.{'half' if half_size else 'full'}.npy"


def _used_bytes(folder: Path) -> int:
    try:
        with os.scandir(folder) as it:
            return sum(e.stat().st_size for e in it if e.is_file())
    except FileNotFoundError:
        return 0


def put(out_dir: Path, content_hash: str, half_size: bool, rgb16: np.ndarray, budget_bytes: int) -> bool:
    """Keep a decode for the render, unless that would take the folder above its budget.

    The budget is the smaller of ``budget_bytes`` and :data:`FREE_SPACE_SHARE`
    of the disk's free space (plus what the cache already holds), so the
    cache never takes the room the exports need.

    Parameters
    ----------
    out_dir : Path
        The run's output folder.
    content_hash : str
        The source file's SHA-256.
    half_size : bool
        Whether ``rgb16`` is LibRaw's half-size decode.
    rgb16 : ndarray, uint16, (H, W, 3)
        :func:`pipeline.imaging.decode.decode_raw_linear`'s output, as is.
    budget_bytes : int
        Largest total size of the folder (several workers may each overshoot
        it by one entry), before the free-space bound.

    Returns
    -------
    bool
        Whether the decode was kept.

    Raises
    ------
    ValueError
        If ``rgb16`` is not a uint16 (H, W, 3) array.
    """
    if rgb16.dtype != np.uint16 or rgb16.ndim != 3 or rgb16.shape[2] != 3:
        raise ValueError(f"expected a uint16 (H, W, 3) decode, got {rgb16.dtype} {rgb16.shape}")
    path = cache_path(out_dir, content_hash, half_size)
    with _memory.lock:
        # A large decode (a 100 MP file's 150 MB) goes to disk: in memory it would crowd the render's own.
        fits = rgb16.nbytes <= _memory.budget // 4 and _memory.used() + rgb16.nbytes <= _memory.budget
        if fits and rgb16.nbytes <= budget_bytes:
            _memory.entries[path] = rgb16
            return True
    folder = path.parent
    used = _used_bytes(folder)
    try:
        free = shutil.disk_usage(next(p for p in (folder, *folder.parents) if p.exists())).free
    except OSError:
        return False
    if used + rgb16.nbytes > min(budget_bytes, FREE_SPACE_SHARE * (free + used)):
        return False
    # No fsync: a cache entry lost in a crash only costs a decode, and the
    # rename still keeps readers from a half-written file.
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.ascontiguousarray(rgb16), allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return False  # a full disk, or the folder swept by take() meanwhile: the render decodes again
    return True


def take(out_dir: Path, content_hash: str, half_size: bool) -> np.ndarray | None:
    """The kept decode, removed from the cache; None when there is none (or it is unreadable)."""
    path = cache_path(out_dir, content_hash, half_size)
    with _memory.lock:
        held = _memory.entries.pop(path, None)
    if held is not None:
        return held
    try:
        rgb16 = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    finally:
        path.unlink(missing_ok=True)
        _remove_if_empty(path.parent)
    if rgb16.dtype != np.uint16 or rgb16.ndim != 3 or rgb16.shape[2] != 3:
        return None
    return rgb16


def _remove_if_empty(folder: Path) -> None:
    # The last entry taken leaves no empty state folders behind in the output.
    for f in (folder, folder.parent) if folder.name == CACHE_DIR.name else (folder,):
        try:
            f.rmdir()
        except OSError:
            return


def clear(out_dir: Path) -> None:
    """Remove every kept decode (the end of a run)."""
    folder = Path(out_dir) / CACHE_DIR
    with _memory.lock:
        for path in [p for p in _memory.entries if p.parent == folder]:
            del _memory.entries[path]
    shutil.rmtree(folder, ignore_errors=True)
    _remove_if_empty((Path(out_dir) / CACHE_DIR).parent)
