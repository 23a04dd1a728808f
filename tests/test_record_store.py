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
    a.exposure.meter_ev = 0.25
    store.put("a.jpg", a)
    got = store.get("a.jpg")
    assert got == a and got is not a
    a.exposure.meter_ev = -1.0
    assert store.get("a.jpg").exposure.meter_ev == 0.25  # a copy was kept, not the object
    store.put("a.jpg", a)
    assert store.get("a.jpg").exposure.meter_ev == -1.0
    assert store.keys() == ["a.jpg"] and len(store) == 1


def test_a_view_reads_lazily_and_keeps_what_its_reader_changes(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, [f"{i}.jpg" for i in range(5)])
    for i in range(5):
        store.put(f"{i}.jpg", record(f"{i}.jpg"))
    keys = [f"{i}.jpg" for i in range(5)]
    plain = store.view(keys)
    assert len(plain) == 5 and plain[2].source_path == "2.jpg" and [r.source_path for r in plain[1:3]] == ["1.jpg", "2.jpg"]
    plain[0].plan.verdict = Verdict.REJECT  # a copy: not kept
    for r in plain:
        r.plan.verdict = Verdict.REJECT
    assert all(store.get(k).plan.verdict is None for k in keys)
    # An editable view, as the planning stage uses it: indexed, edited in place, flushed at the end.
    view = store.view(keys, editable=True)
    assert view[3] is view[3]  # the same object while it is out
    for i in range(5):
        view[i].plan.verdict = Verdict.ACCEPT if i != 3 else None
    view[-1].plan.faces_to_brighten = 2
    assert store.get("0.jpg").plan.verdict is None  # not saved before the flush
    view.flush()
    assert [store.get(k).plan.verdict for k in keys] == [Verdict.ACCEPT] * 3 + [None, Verdict.ACCEPT]
    assert store.get("4.jpg").plan.faces_to_brighten == 2
    # As carry_reviews uses it: a loop, saved when the loop ends.
    for r in store.view(keys, editable=True):
        r.plan.verdict = Verdict.FLAG
    assert all(store.get(k).plan.verdict is Verdict.FLAG for k in keys)
    # A window of records: the oldest out is saved when it leaves it.
    small = store.view(keys, editable=True)
    small.WINDOW = 2
    small[0].plan.verdict = Verdict.REJECT
    small[1], small[2]
    assert store.get("0.jpg").plan.verdict is Verdict.REJECT
    with pytest.raises(KeyError):
        store.view(["missing.jpg"])[0]
    with pytest.raises(IndexError):
        plain[5]


def test_a_run_without_declaration_checks_plans_and_delivers(raw_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests' declared views hand planning a list; a real run hands it the store's editable view.
    import shutil

    from pipeline.kernel.run import RunSettings, process_shoot

    monkeypatch.delenv("POSTPROD_CHECK_DECLARATIONS", raising=False)
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for name in ("Canon_PowerShot_G2_CRW_0304.CRW", "Kodak_DC120_DC120IMG_P003908.KDC"):
        shutil.copy(raw_dir / name, shoot / name)
    out = tmp_path / "out"
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="social_media"))
    assert len(result.ok) == 2
    for r in result.ok:
        assert r.plan.verdict is not None and r.operations and r.exports, r.source_path
        assert (out / "instructions").is_dir()
    assert sorted(p.name for p in (out / "instructions").iterdir()) == sorted(
        f"{p.name}.json" for p in shoot.iterdir())


def test_the_scratch_file_goes_with_the_store(tmp_path: Path) -> None:
    folder = tmp_path / STORE_DIR
    (folder).mkdir(parents=True)
    (folder / "records.stale.bin").write_bytes(b"x")  # a killed run's
    store = RecordStore(tmp_path, ["a.jpg"])
    store.put("a.jpg", record("a.jpg"))
    assert [p.name for p in folder.iterdir()] != ["records.stale.bin"] and len(list(folder.iterdir())) == 1
    store.close()
    assert not folder.exists()


def test_putting_again_keeps_one_slot_and_the_stores_own_key(tmp_path: Path) -> None:
    # The driver keeps a store's bookkeeping for the whole run: a put for a known key overwrites two integers
    # in place and keeps the key string the store was named (not the copy each record read back carries).
    name = "".join(["a", ".jpg"])  # not the literal, so a copy below is another object
    store = RecordStore(tmp_path, [name])
    for exposure in (0.25, -1.0, 0.5):
        copy = "".join(["a.", "jpg"])
        assert copy == name and copy is not name
        rec = record(copy)
        rec.exposure.meter_ev = exposure
        store.put(copy, rec)
    assert len(store._keys) == len(store._offset) == len(store._size) == 1
    assert store.keys()[0] is name and store.key("a.jpg") is name
    assert store.get("a.jpg").exposure.meter_ev == 0.5
    store.put("b.jpg", record("b.jpg"))  # a key not named up front gets a slot of its own
    assert store.keys() == ["a.jpg", "b.jpg"] and "b.jpg" in store and "c.jpg" not in store
    assert store.key("c.jpg") == "c.jpg" and store.get("c.jpg") is None
