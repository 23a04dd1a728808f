"""Atomic writes: deliveries synced to disk, the journal (work savings only) not."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipeline.kernel import files
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


def test_the_journal_is_not_synced_and_a_cut_short_entry_is_redone(tmp_path: Path, fsyncs: list[int]) -> None:
    task = SourceTask(path=tmp_path / "a.jpg", source_path="a.jpg", content_hash="ab" * 32, file_size=1,
                      format="jpeg", source_kind=SourceKind.RASTER, seq=1, stem="a")
    journal = Journal(tmp_path)
    journal.put(0, task.content_hash, "key", task.new_record())
    assert fsyncs == []
    assert journal.get(0, task.content_hash, "key", tmp_path) is not None
    entry = journal._path(0, task.content_hash)
    entry.write_bytes(entry.read_bytes()[:40])  # what a power cut could leave of an unsynced file
    assert journal.get(0, task.content_hash, "key", tmp_path) is None
