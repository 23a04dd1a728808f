"""Atomic writes: deliveries synced to disk; an image's files flushed in groups before its journal entry."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest

from pipeline.kernel import files
from pipeline.kernel import journal as journal_module
from pipeline.kernel.journal import Journal
from pipeline.kernel.records import SourceKind, SourceTask


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(files.os, "fsync", counting)
    return calls


def test_a_delivery_is_synced_with_its_folder(tmp_path: Path, fsyncs: list[int]) -> None:
    files.write_bytes_atomic(tmp_path / "a" / "x.jpg", b"data")
    assert (tmp_path / "a" / "x.jpg").read_bytes() == b"data"
    assert len(fsyncs) == 2  # the file, then the folder holding its new name


def test_many_files_share_one_folder_sync(tmp_path: Path, fsyncs: list[int]) -> None:
    for i in range(5):
        files.write_json_atomic(tmp_path / f"{i}.json", {"i": i}, sync_folder=False)
    files.sync_folders([tmp_path, tmp_path])
    assert len(fsyncs) == 5 + 1
    assert json.loads((tmp_path / "3.json").read_text()) == {"i": 3}


def _task(tmp_path: Path, name: str = "a") -> SourceTask:
    return SourceTask(path=tmp_path / f"{name}.jpg", source_path=f"{name}.jpg",
                      content_hash=hashlib.sha256(name.encode()).hexdigest(), file_size=1, format="jpeg",
                      source_kind=SourceKind.RASTER, seq=1, stem=name)


def test_the_journal_is_not_synced_and_a_cut_short_entry_is_redone(tmp_path: Path, fsyncs: list[int]) -> None:
    task = _task(tmp_path)
    journal = Journal(tmp_path)
    journal.put(0, task.content_hash, "key", task.new_record())
    assert journal.get(0, task.content_hash, "key", tmp_path) is None  # held for its group's commit
    journal.commit()
    assert fsyncs == []
    assert journal.get(0, task.content_hash, "key", tmp_path) is not None
    entry = Path(journal._path(0, task.content_hash))
    entry.write_bytes(entry.read_bytes()[:40])  # what a power cut could leave of an unsynced file
    assert journal.get(0, task.content_hash, "key", tmp_path) is None


def test_an_entry_is_written_only_after_its_files_are_flushed(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = [_task(tmp_path, n) for n in ("a", "b", "c")]
    journal = Journal(tmp_path)
    flushed: list[tuple[list[Path], list[bool]]] = []

    def make_durable(paths: object, anchor: Path) -> None:
        seen = [os.path.exists(journal._path(0, t.content_hash)) for t in tasks]
        flushed.append((list(paths), seen))  # type: ignore[call-overload]

    monkeypatch.setattr(journal_module, "make_durable", make_durable)
    monkeypatch.setattr(journal, "COMMIT_EVERY", 2)
    for t in tasks:
        files.write_bytes_atomic(tmp_path / "exports" / f"{t.stem}.jpg", b"jpeg", durable=False)
        journal.put(0, t.content_hash, "key", t.new_record(), [f"exports/{t.stem}.jpg"])
    journal.commit()  # the third, and waits for the group of two committed in the background
    assert [[os.path.basename(p) for p in paths] for paths, _ in flushed] == [["a.jpg", "b.jpg"], ["c.jpg"]]
    assert [seen for _, seen in flushed] == [[False, False, False], [True, True, False]]
    assert all(journal.get(0, t.content_hash, "key", tmp_path) is not None for t in tasks)
    assert journal.held == 0


def test_a_failed_group_commit_is_raised_and_its_entries_are_not_written(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(paths: object, anchor: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module, "make_durable", full_disk)
    journal = Journal(tmp_path)
    monkeypatch.setattr(journal, "COMMIT_AFTER_S", 0.0)
    task = _task(tmp_path)
    journal.put(0, task.content_hash, "key", task.new_record(), ["exports/a.jpg"])  # committed in the background
    with pytest.raises(OSError, match="No space"):
        journal.commit()
    assert journal.get(0, task.content_hash, "key", tmp_path) is None  # the rerun redoes the image
    assert journal.held == 0


def test_unsynced_files_are_flushed_once_each_with_their_folders(tmp_path: Path, fsyncs: list[int],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [tmp_path / "exports" / f"{i}.jpg" for i in range(4)] + [tmp_path / "previews" / "p.jpg"]
    for p in paths:
        files.write_bytes_atomic(p, b"x", durable=False)
    assert fsyncs == []
    monkeypatch.setattr(files, "_syncfs", lambda: None)  # where Linux's syncfs is missing
    files.make_durable([*paths, tmp_path / "gone.jpg"], tmp_path)
    assert len(fsyncs) == 5 + 2  # each file, each folder once; a file that is gone is passed over


@pytest.mark.parametrize("count", [3, 60])  # one fsync a file; one flush of the file system
def test_a_batch_of_files_appears_whole_at_commit(tmp_path: Path, count: int) -> None:
    with files.AtomicBatch() as batch:
        for i in range(count):
            batch.write(tmp_path / "sub" / f"{i}.json", json.dumps({"i": i}).encode())
        assert not list((tmp_path / "sub").glob("*.json"))  # nothing visible before the commit
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == sorted(f"{i}.json" for i in range(count))
    assert json.loads((tmp_path / "sub" / f"{count - 1}.json").read_text()) == {"i": count - 1}


def test_a_failed_batch_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with files.AtomicBatch() as batch:
            batch.write(tmp_path / "a.json", b"{}")
            raise RuntimeError("the run failed")
    assert list(tmp_path.iterdir()) == []


def test_parquet_written_by_batches_is_the_table(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from pipeline.kernel.schema import EXPORTS_SCHEMA, to_table, write_parquet_rows

    rows = [{"source_path": f"{i}.jpg", "rendition": "web", "path": f"exports/{i}.jpg", "width": i, "height": 2 * i,
             "bytes": 10 * i, "format": "jpeg", "sha256": f"{i:064x}", "stale": False} for i in range(25)]
    assert write_parquet_rows(iter(rows), EXPORTS_SCHEMA, tmp_path / "e.parquet", {"shoot": "s"}, batch_rows=7) == 25
    got = pq.read_table(tmp_path / "e.parquet")
    want = to_table(rows, EXPORTS_SCHEMA, {"shoot": "s"})
    assert got.equals(want.cast(got.schema))
    assert got.schema.metadata[b"postprod.shoot"] == b"s"
    assert write_parquet_rows(iter([]), EXPORTS_SCHEMA, tmp_path / "empty.parquet") == 0
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0
    with pytest.raises(KeyError):
        write_parquet_rows(iter([{"nope": 1}]), EXPORTS_SCHEMA, tmp_path / "bad.parquet")
    assert not list(tmp_path.glob(".*.tmp"))


def test_parquet_cut_short_keeps_the_old_file(tmp_path: Path, fsyncs: list[int]) -> None:
    """A Parquet write that fails mid-stream (rows that stop with an error) leaves the previous file whole."""
    import pyarrow.parquet as pq

    from pipeline.kernel.schema import EXPORTS_SCHEMA, write_parquet_rows

    def rows(n: int, fail_at: int | None = None):
        for i in range(n):
            if i == fail_at:
                raise RuntimeError("worker died")
            yield {"source_path": f"{i}.jpg", "rendition": "web", "path": f"exports/{i}.jpg", "width": i,
                   "height": i, "bytes": i, "format": "jpeg", "sha256": f"{i:064x}", "stale": False}

    target = tmp_path / "exports.parquet"
    assert write_parquet_rows(rows(5), EXPORTS_SCHEMA, target) == 5
    assert fsyncs, "a delivered Parquet file is synced to disk"
    with pytest.raises(RuntimeError, match="worker died"):
        write_parquet_rows(rows(5000, fail_at=3000), EXPORTS_SCHEMA, target, batch_rows=100)
    assert pq.read_table(target).num_rows == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports.parquet"]
    assert target.stat().st_mode & 0o777 == files.file_mode()
