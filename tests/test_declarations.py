"""Stages are held to what they declare: reads, writes and the chart they need."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.kernel.declared import UndeclaredAccess, declared_view
from pipeline.kernel.errors import ConfigError
from pipeline.kernel.records import ImageRecord, SourceKind, SourceTask, WorkItem
from pipeline.kernel.run import RunSettings, prepare
from pipeline.kernel.runner import Runner
from pipeline.kernel.stage import RunContext, Stage


def _record() -> ImageRecord:
    return ImageRecord("a.jpg", "0" * 64, 1, "jpeg", SourceKind.RASTER)


class _Meter(Stage):
    name = "meter"
    reads = frozenset({"frame.width", "source_kind"})
    writes = frozenset({"exposure.ev"})

    def process(self, item: WorkItem) -> None:
        item.record.exposure.ev = float(item.record.frame.width or 0) / 1000


def test_declared_reads_and_writes_pass() -> None:
    r = _record()
    r.frame.width = 2000
    view = declared_view(r, _Meter)
    assert view.frame.width == 2000 and view.source_kind is SourceKind.RASTER
    view.exposure.ev = -0.5
    assert r.exposure.ev == -0.5
    assert view.status == "ok" and view.content_hash == "0" * 64  # ingest and bookkeeping are always readable


@pytest.mark.parametrize(
    "touch, words",
    [
        (lambda v: v.frame.height, "reads frame.height"),
        (lambda v: v.exposure.verdict, "reads exposure.verdict"),
        (lambda v: v.colour, "uses colour"),
        (lambda v: v.faces, "reads faces"),
        (lambda v: setattr(v.exposure, "verdict", "ok"), "writes exposure.verdict"),
        (lambda v: setattr(v.frame, "width", 1), "writes frame.width"),
        (lambda v: setattr(v, "preview_path", "x"), "writes preview_path"),
    ],
)
def test_undeclared_access_fails_naming_the_field(touch, words: str) -> None:  # noqa: ANN001
    with pytest.raises(UndeclaredAccess, match=f"stage meter {words}"):
        touch(declared_view(_record(), _Meter))


def test_the_runner_hands_stages_a_checked_record(tmp_path: Path) -> None:
    class Sneaky(_Meter):
        name = "sneaky"

        def process(self, item: WorkItem) -> None:
            item.record.plan.verdict = "accept"  # not declared

    from pipeline.kernel.graph import BoundStage, Graph

    graph = Graph("g", "test", (BoundStage(Sneaky, Sneaky.Params()),))
    task = SourceTask(tmp_path / "a.jpg", "a.jpg", "0" * 64, 1, "jpeg", SourceKind.RASTER)
    checked = RunContext(shoot_dir=tmp_path, out_dir=tmp_path, check_declarations=True)
    with pytest.raises(UndeclaredAccess, match="uses plan without declaring"):
        Runner(graph, checked).run(task)
    unchecked = RunContext(shoot_dir=tmp_path, out_dir=tmp_path, check_declarations=False)
    assert Runner(graph, unchecked).run(task).plan.verdict == "accept"


def test_a_stage_that_needs_a_chart_without_one_is_refused_before_any_work(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import stages

    class Stamp(Stage):
        name = "stamp"
        needs_chart = True

        def process(self, item: WorkItem) -> None:
            self.context.require_chart(self.name)

    monkeypatch.setitem(stages.REGISTRY, Stamp.name, Stamp)
    graph = tmp_path / "g.yaml"
    graph.write_text("schema_version: 1\nname: g\nstages:\n  - stage: decode_raw\n  - stage: stamp\n")
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    with pytest.raises(ConfigError, match=r"\['stamp'\] need a chart .*--chart"):
        prepare(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", graph_path=graph))
    assert not (tmp_path / "out").exists()
    _, context = prepare(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", graph_path=graph, chart="base"))
    assert context.chart is not None and context.chart.name == "base" and len(context.chart_hash) == 64
