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
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq


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


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_exports(out_dir: Path, table_name: str = "exports.parquet") -> int:
    """Check every row of ``out_dir/exports.parquet`` against its file.

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
    root = out_dir.resolve()
    # ParquetFile, not read_table: the same table from one file, without importing pyarrow.dataset (0.1-0.25 s).
    with pq.ParquetFile(root / table_name) as table:
        rows = table.read(columns=["source_path", "path", "bytes", "sha256"]).to_pylist()
    problems: list[str] = []
    shared = Counter(r["path"] for r in rows)
    for path, n in sorted(shared.items()):
        if n > 1:
            sources = ", ".join(repr(r["source_path"]) for r in rows if r["path"] == path)
            problems.append(f"{path}: {n} rows point at this one file (from {sources})")
    folded: dict[str, set[str]] = {}
    for path in shared:
        folded.setdefault(path.casefold(), set()).add(path)
    for paths in folded.values():
        if len(paths) > 1:
            problems.append(f"{', '.join(sorted(paths))}: differ only in case (one file on a case-insensitive disk)")
    for r in rows:
        if shared[r["path"]] > 1:
            continue
        path = (root / r["path"]).resolve()
        if not path.is_relative_to(root):
            problems.append(f"{r['path']}: outside the output folder (from {r['source_path']!r})")
        elif not path.is_file():
            problems.append(f"{r['path']}: missing (from {r['source_path']!r})")
        elif path.stat().st_size != r["bytes"]:
            problems.append(f"{r['path']}: {path.stat().st_size} bytes, the table says {r['bytes']} "
                            f"(from {r['source_path']!r})")
        elif file_sha256(path) != r["sha256"]:
            problems.append(f"{r['path']}: its SHA-256 is not the table's (from {r['source_path']!r})")
    if problems:
        raise ExportMismatchError(problems)
    return len(rows)
