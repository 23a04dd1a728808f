"""The decode kept from analysis for the render: same pixels, bounded disk, gone after the run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from render_cases import task_for

from charts.loader import load_chart
from pipeline.kernel import decode_cache
from pipeline.kernel.records import WorkItem
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.kernel.stage import RunContext
from stages.decode_raw import DecodeRaw
from stages.render import Render

CRW = "Canon_PowerShot_G2_CRW_0304.CRW"  # 2312x1720: the proxy comes from a full-size decode


def test_put_take_and_budget(tmp_path: Path) -> None:
    a = np.arange(2 * 3 * 3, dtype=np.uint16).reshape(2, 3, 3)
    assert decode_cache.put(tmp_path, "abc", True, a, budget_bytes=1 << 20)
    assert decode_cache.take(tmp_path, "abc", False) is None  # the full decode was not kept
    got = decode_cache.take(tmp_path, "abc", True)
    np.testing.assert_array_equal(got, a)
    assert decode_cache.take(tmp_path, "abc", True) is None  # taken: removed
    # The budget counts what is already there.
    assert decode_cache.put(tmp_path, "one", True, a, budget_bytes=a.nbytes)
    assert not decode_cache.put(tmp_path, "two", True, a, budget_bytes=a.nbytes + 10)
    decode_cache.clear(tmp_path)
    assert not (tmp_path / decode_cache.CACHE_DIR).exists()
    with pytest.raises(ValueError, match="uint16"):
        decode_cache.put(tmp_path, "x", True, a.astype(np.float32), budget_bytes=1 << 20)


def _render(path: Path, out: Path, cache_mb: int) -> tuple[WorkItem, bool]:
    chart = load_chart("base")  # one 2048 px rendition: needs the full decode of a 2312 px file
    context = RunContext(shoot_dir=path.parent, out_dir=out, chart=chart, shoot_id="s")
    task = task_for(path)
    item = WorkItem(task=task, record=task.new_record())
    DecodeRaw(DecodeRaw.Params(render_cache_mb=cache_mb), context).process(item)
    kept = decode_cache.cache_path(out, task.content_hash, half_size=False).is_file()
    item.artifacts.clear()  # as after planning: the render starts from the record alone
    Render(Render.Params(), context).process(item)
    return item, kept


def test_render_from_the_kept_decode_is_identical(raw_dir: Path, tmp_path: Path) -> None:
    path = raw_dir / CRW
    cached, kept = _render(path, tmp_path / "cached", cache_mb=4096)
    fresh, kept_none = _render(path, tmp_path / "fresh", cache_mb=0)
    assert kept and not kept_none
    # Taken by the render: nothing left behind.
    assert not decode_cache.cache_path(tmp_path / "cached", cached.task.content_hash, False).exists()
    a, b = cached.artifacts["renditions"], fresh.artifacts["renditions"]
    assert a.keys() == b.keys() == {"web"}
    np.testing.assert_array_equal(a["web"], b["web"])


def test_a_decode_the_render_will_not_want_is_not_kept(raw_dir: Path, tmp_path: Path) -> None:
    # A 1080 px rendition of a 2312 px file needs only the half-size decode; analysis made the full one.
    small = tmp_path / "small.yaml"
    small.write_text("schema_version: 2\nextends: base\nrenditions:\n  web: {long_edge_px: 1080}\n")
    context = RunContext(shoot_dir=raw_dir, out_dir=tmp_path / "out",
                         chart=load_chart(small), shoot_id="s")
    task = task_for(raw_dir / CRW)
    DecodeRaw(DecodeRaw.Params(), context).process(WorkItem(task=task, record=task.new_record()))
    assert not (tmp_path / "out" / decode_cache.CACHE_DIR).exists()


def test_a_finished_run_leaves_no_kept_decodes(raw_dir: Path, tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / CRW, shoot / CRW)
    out = tmp_path / "out"
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local"))
    assert [r.status for r in result.records] == ["ok"]
    assert result.records[0].exports
    assert not (out / decode_cache.CACHE_DIR).exists()


def test_held_in_memory_when_the_executor_runs_render_in_this_process(tmp_path: Path) -> None:
    a = np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3)
    decode_cache.hold_in_memory(4 * a.nbytes)
    try:
        assert decode_cache.put(tmp_path, "mem", True, a, budget_bytes=1 << 20)
        assert not decode_cache.cache_path(tmp_path, "mem", True).exists()  # no trip through a file
        big = np.zeros((4, 10, 3), np.uint16)  # above a quarter of the memory budget: on disk
        assert decode_cache.put(tmp_path, "big", True, big, budget_bytes=1 << 20)
        assert decode_cache.cache_path(tmp_path, "big", True).is_file()
        for key in ("m2", "m3", "m4"):
            assert decode_cache.put(tmp_path, key, True, a, budget_bytes=1 << 20)
        assert decode_cache.put(tmp_path, "disk", True, a, budget_bytes=1 << 20)  # past the memory budget
        assert decode_cache.cache_path(tmp_path, "disk", True).is_file()
        assert decode_cache.take(tmp_path, "mem", True) is a
        assert decode_cache.take(tmp_path, "mem", True) is None
        np.testing.assert_array_equal(decode_cache.take(tmp_path, "disk", True), a)
        assert not decode_cache.put(tmp_path, "none", True, a, budget_bytes=0)  # render_cache_mb 0: never kept
        decode_cache.put(tmp_path, "left", True, a, budget_bytes=1 << 20)
        decode_cache.clear(tmp_path)
        assert decode_cache.take(tmp_path, "left", True) is None
    finally:
        decode_cache.hold_in_memory(0)


def test_local_run_keeps_decodes_in_memory_with_identical_exports(raw_dir: Path, tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / CRW, shoot / CRW)
    exports = {}
    for budget in (0, 1 << 30):
        from pipeline.executors import local

        before = local.MEMORY_CACHE_BYTES
        local.MEMORY_CACHE_BYTES = budget
        try:
            out = tmp_path / f"out{budget}"
            result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="base"))
        finally:
            local.MEMORY_CACHE_BYTES = before
        (record,) = result.ok
        exports[budget] = [(e.path, e.sha256) for e in record.exports]
        assert not (out / decode_cache.CACHE_DIR).exists()
    assert exports[0] == exports[1 << 30] and exports[0]


def test_the_cache_takes_at_most_a_share_of_the_free_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.zeros((100, 100, 3), np.uint16)  # 60 kB
    real = shutil.disk_usage

    def small_disk(path):  # noqa: ANN001 - 200 kB free, whatever the machine has
        usage = real(path)
        return type(usage)(usage.total, usage.total - 200_000, 200_000)

    monkeypatch.setattr(decode_cache.shutil, "disk_usage", small_disk)
    # A quarter of 200 kB: one 60 kB entry does not fit, however large the budget.
    assert not decode_cache.put(tmp_path, "one", True, a, budget_bytes=4 << 30)
    assert decode_cache.put(tmp_path, "one", True, a[:50], budget_bytes=4 << 30)  # 30 kB
    assert not decode_cache.put(tmp_path, "two", True, a[:50], budget_bytes=4 << 30)  # 60 kB of (200 + 30) / 4
