"""The driver's records on disk: what goes in comes out, edits made while iterating are kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.kernel.record_store import STORE_DIR, RecordStore
from pipeline.kernel.records import SourceKind, SourceTask, Verdict


def record(name: str):  # noqa: ANN201
    task = SourceTask(path=Path(f"/shoot/{name}"), source_path=name, content_hash=f"{abs(hash(name)):064x}",
                      file_size=10, format="jpeg", source_kind=SourceKind.RASTER, seq=1, stem=name)
    return task.new_record()


def test_put_get_and_replace(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, ["a.jpg", "b.jpg"])
    assert "a.jpg" not in store and store.get("a.jpg") is None and len(store) == 0
    a = record("a.jpg")
    a.exposure.ev = 0.25
    store.put("a.jpg", a)
    got = store.get("a.jpg")
    assert got == a and got is not a
    a.exposure.ev = -1.0
    assert store.get("a.jpg").exposure.ev == 0.25  # a copy was kept, not the object
    store.put("a.jpg", a)
    assert store.get("a.jpg").exposure.ev == -1.0
    assert store.keys() == ["a.jpg"] and len(store) == 1


def test_a_view_reads_lazily_and_keeps_what_a_loop_changes(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, [f"{i}.jpg" for i in range(5)])
    for i in range(5):
        store.put(f"{i}.jpg", record(f"{i}.jpg"))
    view = store.view([f"{i}.jpg" for i in range(5)], editable=True)
    assert len(view) == 5 and view[2].source_path == "2.jpg" and [r.source_path for r in view[1:3]] == ["1.jpg", "2.jpg"]
    view[0].plan.verdict = Verdict.REJECT  # a copy: not kept
    assert store.get("0.jpg").plan.verdict is None
    for r in view:  # as the planning stage edits the list it is handed
        if r.source_path != "3.jpg":
            r.plan.verdict = Verdict.ACCEPT
    assert [store.get(f"{i}.jpg").plan.verdict for i in range(5)] == [Verdict.ACCEPT] * 3 + [None, Verdict.ACCEPT]
    for r in view:
        r.plan.verdict = Verdict.FLAG
        break  # a loop left early keeps the record it was on
    assert store.get("0.jpg").plan.verdict is Verdict.FLAG and store.get("1.jpg").plan.verdict is Verdict.ACCEPT
    with pytest.raises(KeyError):
        list(store.view(["missing.jpg"]))
    for r in store.view(["1.jpg"]):  # a plain view reads only
        r.plan.verdict = Verdict.REJECT
    assert store.get("1.jpg").plan.verdict is Verdict.ACCEPT


def test_the_scratch_file_goes_with_the_store(tmp_path: Path) -> None:
    folder = tmp_path / STORE_DIR
    (folder).mkdir(parents=True)
    (folder / "records.stale.bin").write_bytes(b"x")  # a killed run's
    store = RecordStore(tmp_path, ["a.jpg"])
    store.put("a.jpg", record("a.jpg"))
    assert [p.name for p in folder.iterdir()] != ["records.stale.bin"] and len(list(folder.iterdir())) == 1
    store.close()
    assert not folder.exists()
