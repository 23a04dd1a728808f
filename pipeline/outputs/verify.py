"""Check the delivery after writing it: every exports.parquet row is a file on disk with its SHA-256.

Names are unique by construction (:func:`charts.naming.safe_stems`), but a
delivery is what a client is paid for: if two rows ever named one file, or a
file were changed between its encode and the end of the run (another process,
a full disk that cut it short), the run must not end with exit code 0 and a
table that lies. This reads the table back, as a client's tooling would, and
hashes every file it lists.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

#: Rows of the exports table read at a time.
BATCH_ROWS = 1024


class ExportMismatchError(RuntimeError):
    """``exports.parquet`` and the files on disk disagree; the message names the files.

    Parameters
    ----------
    problems : list of str
        One line per file: which path, and what is wrong with it.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        super().__init__(
            f"{len(problems)} delivered file(s) do not match exports.parquet (nothing was overwritten on "
            f"purpose: this is a bug or another process writing into the output folder):\n  {shown}"
        )


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "little")


def _repeated(values: array) -> set[int]:
    """The values that occur more than once."""
    if len(values) < 2:
        return set()
    ordered = np.sort(np.frombuffer(values, dtype=np.uint64))
    return set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())


def verify_exports(out_dir: Path, table_name: str = "exports.parquet") -> int:
    """Check every row of ``out_dir/exports.parquet`` against its file.

    The table is read a batch of rows at a time, twice: first each path's
    64-bit digest (and its case-folded path's), to find the paths two rows
    share and those that differ only in case; then every row's file. The
    whole table is never in memory as Python objects (a row is about 0.6 KB
    of them, 20,000 rows at 10,000 images with two renditions), so the
    driver's peak does not grow with the shoot here; the digests flag
    suspects only, and the names are compared as strings before anything is
    reported.

    Parameters
    ----------
    out_dir : Path
        The output folder.
    table_name : str
        The exports table, relative to ``out_dir``.

    Returns
    -------
    int
        The number of files checked.

    Raises
    ------
    ExportMismatchError
        Naming every file that two or more rows point at (or whose paths differ
        only in case), that is missing,
        that lies outside the output folder, or whose size or SHA-256 is not
        the table's.
    """
    root = str(out_dir.resolve())
    table = pq.ParquetFile(os.path.join(root, table_name))
    paths, folded = array("Q"), array("Q")
    for batch in table.iter_batches(BATCH_ROWS, columns=["path"]):
        for path in batch.column(0).to_pylist():
            paths.append(_digest(path))
            folded.append(_digest(path.casefold()))
    shared_digests, folded_digests = _repeated(paths), _repeated(folded)
    n_rows = len(paths)
    del paths, folded
    # The suspects' names, as strings: a digest that two names share by chance is no problem.
    suspects: dict[str, list[dict[str, Any]]] = {}
    folds: dict[str, set[str]] = {}
    problems: list[str] = []
    for batch in table.iter_batches(BATCH_ROWS, columns=["source_path", "path", "bytes", "sha256"]):
        for r in batch.to_pylist():
            if folded_digests and _digest(r["path"].casefold()) in folded_digests:
                folds.setdefault(r["path"].casefold(), set()).add(r["path"])
            if shared_digests and _digest(r["path"]) in shared_digests:
                suspects.setdefault(r["path"], []).append(r)  # checked below, once its rows are all known
            elif problem := _file_problem(root, r):
                problems.append(problem)
    shared: list[str] = []
    for path, rows in sorted(suspects.items()):
        if len(rows) > 1:
            shared.append(f"{path}: {len(rows)} rows point at this one file "
                          f"(from {', '.join(repr(r['source_path']) for r in rows)})")
        elif problem := _file_problem(root, rows[0]):
            problems.append(problem)
    shared += [f"{', '.join(sorted(names))}: differ only in case (one file on a case-insensitive disk)"
               for names in folds.values() if len(names) > 1]
    problems = shared + problems
    if problems:
        raise ExportMismatchError(problems)
    return n_rows


def _file_problem(root: str, r: dict[str, Any]) -> str | None:
    """What is wrong with one row's file, or None (``root``: the resolved output folder).

    Plain strings, not :class:`~pathlib.Path`: pathlib interns every part of
    every path it parses, and 20,000 export names going through the
    interpreter's table of interned strings made it rebuild (a few MB at once).
    """
    path = os.path.realpath(os.path.join(root, r["path"]))
    if path != root and not path.startswith(root.rstrip(os.sep) + os.sep):
        return f"{r['path']}: outside the output folder (from {r['source_path']!r})"
    if not os.path.isfile(path):
        return f"{r['path']}: missing (from {r['source_path']!r})"
    size = os.stat(path).st_size
    if size != r["bytes"]:
        return f"{r['path']}: {size} bytes, the table says {r['bytes']} (from {r['source_path']!r})"
    if file_sha256(path) != r["sha256"]:
        return f"{r['path']}: its SHA-256 is not the table's (from {r['source_path']!r})"
    return None
