"""The shoot's records in the driver, kept out of its memory.

A run holds one :class:`~pipeline.kernel.records.ImageRecord` per image from
the scan to the outputs. As Python objects they take 5-10 KB each (measure
groups, faces, operations, exports), so a 10,000-image shoot grew the driver
by about 100 MB. Here each record is pickled into one file of the run's state
folder as it arrives (appended, never rewritten in place) and only its offset
stays in memory (two integers in flat arrays: no Python object an image, so
putting a record again allocates nothing that outlives the call and
fragments the driver's heap); readers get a fresh object per read. A
:class:`RecordView` is a sequence of records read one at a time; an editable
one keeps a window of the records it handed out and saves those that were
changed (the planning stage indexes the records it is handed and edits them in
place).

The file lives in ``OUT/.postprod/records/`` for the run and is removed by
:meth:`RecordStore.close`; it is not the journal (which is JSON, keyed for
reuse across runs) but a scratch space of this process.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import weakref
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

from pipeline.kernel.records import ImageRecord

#: Inside the output folder's state directory.
STORE_DIR = Path(".postprod") / "records"


class RecordStore:
    """Records by source path, on disk; ``None`` for an image without a record yet.

    Parameters
    ----------
    out_dir : Path
        The run's output folder (the file goes into its state directory).
    keys : iterable of str
        The images' source paths, in the shoot's order.
    folder : Path, optional
        Where the scratch file goes, instead of ``out_dir / STORE_DIR`` (a second store of the same run).

    Raises
    ------
    OSError
        If the scratch file cannot be created.
    """

    def __init__(self, out_dir: Path, keys: Iterable[str], folder: Path | None = None) -> None:
        folder = Path(folder) if folder is not None else Path(out_dir) / STORE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("records.*.bin"):  # of a run killed before it could remove its own
            stale.unlink(missing_ok=True)
        fd, name = tempfile.mkstemp(prefix="records.", suffix=".bin", dir=folder)
        self._fd = fd
        self._path = Path(name)
        self._end = 0
        # Where each key's record is (offset, size; size -1: none yet), by the key's position. The key
        # strings are the caller's (the shoot's task names), held once; a put replaces two integers in
        # place, so the store's memory is fixed by its keys and does not churn with every put.
        self._index: dict[str, int] = {}
        self._keys: list[str] = []
        self._offset = array("q")
        self._size = array("q")
        for key in keys:
            self._slot(key)
        # Removed when the store goes (the last view of a run's result), or at the interpreter's exit.
        self._finalizer = weakref.finalize(self, _remove, fd, self._path)

    def _slot(self, key: str) -> int:
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self._keys)
            self._keys.append(key)
            self._offset.append(0)
            self._size.append(-1)
        return i

    def __contains__(self, key: str) -> bool:
        i = self._index.get(key)
        return i is not None and self._size[i] >= 0

    def __len__(self) -> int:
        return sum(1 for s in self._size if s >= 0)

    def keys(self) -> list[str]:
        """Source paths with a record, in the order they were first named (the store's own key strings)."""
        return [k for k, s in zip(self._keys, self._size) if s >= 0]

    def key(self, key: str) -> str:
        """The store's own string for ``key`` (one named at creation or put): a caller that keeps keys
        for the whole run keeps these, not the copies each record read back carries."""
        i = self._index.get(key)
        return key if i is None else self._keys[i]

    def put(self, key: str, record: ImageRecord) -> None:
        """Keep ``record`` as the record of ``key`` (replacing any earlier one)."""
        self._put_blob(key, zlib.compress(pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL), 1))

    def _put_blob(self, key: str, blob: bytes) -> None:
        os.pwrite(self._fd, blob, self._end)
        i = self._slot(key)
        self._offset[i], self._size[i] = self._end, len(blob)
        self._end += len(blob)

    def _blob(self, key: str) -> bytes | None:
        i = self._index.get(key)
        if i is None or self._size[i] < 0:
            return None
        return os.pread(self._fd, self._size[i], self._offset[i])

    def get(self, key: str) -> ImageRecord | None:
        """A fresh copy of the record of ``key`` (None when it has none)."""
        blob = self._blob(key)
        return None if blob is None else pickle.loads(zlib.decompress(blob))

    def view(self, keys: Sequence[str], editable: bool = False) -> RecordView:
        """The records of ``keys`` (each must have one), as a lazy sequence (see :class:`RecordView`)."""
        return RecordView(self, list(keys), editable)

    def close(self) -> None:
        """Remove the scratch file (the records are gone)."""
        self._finalizer()
        self._fd = -1


def _remove(fd: int, path: Path) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass


class RecordView(Sequence[ImageRecord]):
    """Records of a :class:`RecordStore` read one at a time.

    A plain view hands out fresh copies: changing one changes nothing stored.
    An ``editable`` view is a window onto the store for a consumer that edits
    records in place (the planning stage, which indexes them; carry_reviews,
    which loops over them): the last :data:`WINDOW` records it handed out stay
    in memory, the same object for the same index, and each is saved back if
    it was changed when it leaves the window and at :meth:`flush`, which the
    owner calls when the consumer is done. A record changed after
    :data:`WINDOW` other records were asked for would be lost: consumers
    change the record they hold, not one they met long before.
    """

    #: Records an editable view keeps out at once.
    WINDOW = 256

    def __init__(self, store: RecordStore, keys: list[str], editable: bool = False) -> None:
        self._store = store
        self._keys = keys
        self._editable = editable
        self._out: OrderedDict[int, tuple[bytes, ImageRecord]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def keys(self) -> list[str]:
        """The source paths of the records, in the view's order."""
        return list(self._keys)

    @overload
    def __getitem__(self, i: int) -> ImageRecord: ...

    @overload
    def __getitem__(self, i: slice) -> list[ImageRecord]: ...

    def __getitem__(self, i: int | slice) -> ImageRecord | list[ImageRecord]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self._keys))[i]  # negative indices, IndexError
        if self._editable and i in self._out:
            self._out.move_to_end(i)
            return self._out[i][1]
        blob = self._store._blob(self._keys[i])
        if blob is None:
            raise KeyError(f"no record for {self._keys[i]}")
        before = zlib.decompress(blob)
        record: ImageRecord = pickle.loads(before)
        if self._editable:
            self._out[i] = (before, record)
            while len(self._out) > self.WINDOW:
                self._save(*self._out.popitem(last=False))
        return record

    def __iter__(self) -> Iterator[ImageRecord]:
        for i in range(len(self._keys)):
            yield self[i]
        if self._editable:
            self.flush()

    def _save(self, i: int, held: tuple[bytes, ImageRecord]) -> None:
        before, record = held
        after = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        if after != before:
            self._store._put_blob(self._keys[i], zlib.compress(after, 1))

    def flush(self) -> None:
        """Save every record this view holds out that was changed (an editable view's consumer is done)."""
        while self._out:
            self._save(*self._out.popitem(last=False))
