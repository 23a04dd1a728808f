"""One shoot in, one output folder out.

The graph runs in segments: image-scope stages in workers (analysis; then
render and export), shoot-scope stages in the driver (planning). After each
image segment the driver journals the record under a key made of everything
that went into it (code version, the segment's stages and parameters, the
chart, the incoming record); a rerun reuses every journalled result whose key
still matches and whose files are all there, so a run killed half-way
finishes without redoing or duplicating work. Outputs are written through a
temporary file and a rename: a reader never sees half a file.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from charts.loader import ResolvedChart, load_chart
from pipeline.executors import EXECUTORS, choose_executor, make_executor
from pipeline.kernel import decode_cache
from pipeline.kernel.declared import declared_view
from pipeline.kernel.errors import ConfigError, Location
from pipeline.kernel.graph import Graph, load_graph
from pipeline.kernel.ingest import Shoot, scan_shoot
from pipeline.kernel.journal import Journal, journal_key
from pipeline.kernel.record_store import RecordStore
from pipeline.kernel.records import ImageRecord, SourceTask, Status
from pipeline.kernel.stage import RunContext
from pipeline.outputs.shoot import (  # noqa: F401 - the output folder's names, re-exported for callers
    CONTACT_DIR,
    EXPORTS_NAME,
    FACES_NAME,
    INSTRUCTIONS_NAME,
    MANIFEST_NAME,
    REPORT_NAME,
    SUMMARY_NAME,
    write_contact_sheets,
    write_outputs,
)


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs, validated before any image is touched.

    Attributes
    ----------
    chart : str or Path, optional
        Chart name or YAML path; the plan stage's default chart when omitted.
    shoot_id : str, optional
        The ``{shoot}`` naming token and IPTC job id; the shoot folder's name by default.
    only : str, optional
        ``"plan"``: re-plan an analysed shoot from its journal, no pixels decoded.
    """

    shoot_dir: Path
    out_dir: Path
    executor: str = "auto"
    workers: int | None = None
    ray_address: str | None = None
    graph_path: Path | None = None
    device: str = "cpu"
    chart: str | Path | None = None
    shoot_id: str | None = None
    only: str | None = None


@dataclass
class RunResult:
    """What a run did. ``records`` may be a lazy sequence (:class:`~pipeline.kernel.record_store.RecordView`):
    every pass over it reads the records again, none stays in memory."""

    out_dir: Path
    records: Sequence[ImageRecord]
    shoot: Shoot
    seconds: float
    reused: int = 0
    executor: str = ""

    @property
    def failed(self) -> list[ImageRecord]:
        return [r for r in self.records if r.status is Status.FAILED and r.duplicate_of is None]

    @property
    def ok(self) -> list[ImageRecord]:
        return [r for r in self.records if r.status is Status.OK and r.duplicate_of is None]

    def summary(self) -> dict[str, Any]:
        ok = faces = with_faces = exports = files = 0
        failed: list[dict[str, Any]] = []
        verdicts: Counter[str] = Counter()
        for r in self.records:  # one pass: the records are read, counted and let go
            files += 1
            if r.duplicate_of is not None:
                continue
            if r.status is Status.FAILED:
                failed.append({"source_path": r.source_path, "error": r.error})
            elif r.status is Status.OK:
                ok += 1
                if r.plan.verdict:
                    verdicts[str(r.plan.verdict)] += 1
                faces += r.plan.faces_to_brighten or 0
                with_faces += 1 if r.plan.faces_to_brighten else 0
                exports += len(r.exports)
        return {
            "shoot": str(self.shoot.root),
            "out": str(self.out_dir),
            "files": files,
            "processed": len(self.shoot.tasks),
            "reused_from_earlier_run": self.reused,
            "ok": ok,
            "failed": failed,
            "duplicates": [{"source_path": d.source_path, "duplicate_of": d.duplicate_of} for d in self.shoot.duplicates],
            "skipped": [{"source_path": s.source_path, "reason": s.reason} for s in self.shoot.skipped],
            "skipped_by_reason": dict(Counter(s.reason for s in self.shoot.skipped)),
            "verdicts": dict(verdicts),
            "faces_to_brighten": faces,
            "images_with_faces_to_brighten": with_faces,
            "exports": exports,
            "executor": self.executor,
            "seconds": round(self.seconds, 3),
        }


def check_out_dir(shoot_dir: Path, out_dir: Path) -> None:
    """The output folder must not be inside the shoot (it would be ingested next time) nor contain it."""
    shoot, out = shoot_dir.resolve(), out_dir.resolve()
    if out == shoot or shoot in out.parents:
        raise ConfigError("the output folder must be outside the shoot folder", Location(str(out_dir), key="--out"))
    if out in shoot.parents:
        raise ConfigError("the output folder must not contain the shoot folder", Location(str(out_dir), key="--out"))


def resolve_chart(graph: Graph, chart: str | Path | None) -> ResolvedChart | None:
    """The run's chart: ``--chart``, else the plan stage's default; None when neither names one.

    Raises
    ------
    ConfigError
        Naming the chart file, line and key of the first problem.
    """
    plan = next((s for s in graph.stages if s.name == "plan_retouch"), None)
    ref = chart or (plan.params.chart if plan is not None else None)
    return load_chart(ref) if ref is not None else None


def prepare(settings: RunSettings) -> tuple[Graph, RunContext]:
    """Validate graph, chart and settings; raises ConfigError before any work."""
    graph = load_graph(settings.graph_path)
    if not settings.shoot_dir.is_dir():
        raise ConfigError("shoot folder not found", Location(str(settings.shoot_dir), key="SHOOT"))
    check_out_dir(settings.shoot_dir, settings.out_dir)
    if settings.workers is not None and settings.workers < 1:
        raise ConfigError("must be at least 1", Location(None, key="--workers"))
    if settings.executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{settings.executor}' (choose from {', '.join(EXECUTORS)})",
                          Location(None, key="--executor"))
    if settings.only not in (None, "plan"):
        raise ConfigError(f"unknown value '{settings.only}' (only 'plan' is supported)", Location(None, key="--only"))
    chart = resolve_chart(graph, settings.chart)
    if chart is None:
        needing = [s.name for s in graph.stages if s.cls.needs_chart]
        if needing:
            raise ConfigError(f"stages {needing} need a chart and the graph names none: pass --chart NAME",
                              Location(None, key="--chart"))
    context = RunContext(
        shoot_dir=settings.shoot_dir.resolve(),
        out_dir=settings.out_dir.resolve(),
        device=settings.device,
        chart=chart,
        shoot_id=settings.shoot_id or settings.shoot_dir.resolve().name,
    )
    for bound in graph.stages:
        bound.build(context).preflight()
    return graph, context


def process_shoot(
    settings: RunSettings,
    on_phase: Callable[[str, int], None] | None = None,
    on_record: Callable[[ImageRecord], None] | None = None,
    on_executor: Callable[[str], None] | None = None,
) -> RunResult:
    """Process a shoot folder into the output folder.

    ``on_executor`` hears which executor runs the shoot and why, before any
    image is processed (``auto`` decides from the shoot, :func:`choose_executor`).

    Raises
    ------
    ConfigError
        On an invalid graph, chart or setting (before any image is processed),
        and with ``only="plan"`` when some images were never analysed.
    """
    start = time.perf_counter()
    graph, context = prepare(settings)
    shoot = scan_shoot(settings.shoot_dir)
    choice = choose_executor(settings.executor, settings.workers, settings.ray_address, shoot.tasks)
    if on_executor:
        on_executor(str(choice))
    context.out_dir.mkdir(parents=True, exist_ok=True)
    sweep_temp_files(context.out_dir)
    journal = Journal(context.out_dir)
    tasks = shoot.tasks
    # Records live on disk between the segments, not in the driver's memory (flat in the shoot's size).
    records = RecordStore(context.out_dir, (t.source_path for t in tasks))
    reused = 0
    segments = graph.segments()
    if settings.only == "plan":
        # Keep the analysis, drop everything after the planning stage.
        cut = next((i for i, s in enumerate(segments) if s.scope == "shoot"), len(segments))
        segments = segments[: cut + 1]
    executor = None
    after_plan = False
    try:
        for index, segment in enumerate(segments):
            if segment.scope == "shoot":
                if on_phase:
                    on_phase(segment.stages[0].name, 0)
                stage = segment.stages[0].build(context)
                present = [t.source_path for t in tasks if t.source_path in records]
                if context.check_declarations:  # the tests: every record at once, behind its declared view
                    loaded = [records.get(k) for k in present]
                    stage.process_shoot([declared_view(r, stage) for r in loaded])
                    for k, r in zip(present, loaded):
                        records.put(k, r)  # type: ignore[arg-type]
                else:
                    stage.process_shoot(records.view(present, editable=True))
                carry_reviews(records.view(present, editable=True), context.out_dir)
                after_plan = True
                continue
            todo: list[tuple[SourceTask, str]] = []
            for task in tasks:
                rec = records.get(task.source_path)
                if rec is not None and rec.status is Status.FAILED:
                    continue
                key = journal_key(segment, context, task, rec, after_plan)
                done = journal.get(index, task.content_hash, key, context.out_dir)
                if done is not None:
                    done.source_path = task.source_path
                    records.put(task.source_path, done)
                    reused += 1
                else:
                    todo.append((task, key))
            if settings.only == "plan" and todo:
                missing = ", ".join(t.source_path for t, _ in todo[:5])
                raise ConfigError(
                    f"{len(todo)} image(s) were never analysed ({missing}...): run `postprod process` without --only first",
                    Location(None, key="--only"),
                )
            if on_phase:
                on_phase("+".join(s.name for s in segment.stages), len(todo))
            if not todo:
                continue
            if executor is None:
                executor = make_executor(choice.name, settings.workers, settings.ray_address)
            keys = {t.source_path: k for t, k in todo}
            by_hash = {t.source_path: t.content_hash for t, _ in todo}
            first = index == 0
            for record in executor.map(segment, context, [t for t, _ in todo],
                                       None if first else records.view([t.source_path for t, _ in todo])):
                records.put(record.source_path, record)
                journal.put(index, by_hash[record.source_path], keys[record.source_path], record)
                if on_record:
                    on_record(record)
        # Kept after a crash (a resumed run can use them), gone after a finished one.
        decode_cache.clear(context.out_dir)
    finally:
        if executor is not None:
            executor.close()
    for dup in shoot.duplicates:
        original = records.get(dup.duplicate_of)
        if original is not None:
            records.put(dup.source_path, replace(
                original, source_path=dup.source_path, duplicate_of=dup.duplicate_of, stage_seconds={},
                exports=[], operations=list(original.operations),
            ))
    ordered = records.view(sorted(records.keys()))
    result = RunResult(context.out_dir, ordered, shoot, time.perf_counter() - start, reused, str(choice))
    write_outputs(result.records, result.summary(), graph.name, context)
    return result


def sweep_temp_files(out: Path) -> int:
    """Remove the temporary files of writes a killed run left half-done (``.<name>.*.tmp``)."""
    n = 0
    if out.is_dir():
        for p in out.rglob(".*.tmp"):
            if p.is_file():
                p.unlink(missing_ok=True)
                n += 1
    return n


def carry_reviews(records: Iterable[ImageRecord], out: Path) -> None:
    """Keep reviewers' decisions across a re-plan: status, who, when, comment, and
    the parameters they changed (which replace the plan's, so a rerun renders them)."""
    from pipeline.outputs.instructions import instruction_name

    for r in records:
        if not r.operations:
            continue
        reviews = _previous_reviews(out / "instructions" / instruction_name(r.source_path))
        for op in r.operations:
            review = reviews.get(op.op_id)
            if review:
                op.review = review
                op.params = {**op.params, **(review.get("params") or {})}


def _previous_reviews(path: Path) -> dict[str, dict[str, Any]]:
    """Reviewers' decisions in an earlier instructions file, by operation id (kept across re-plans)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for op in doc.get("operations", []):
        review = op.get("review") or {}
        if review.get("status", "pending") != "pending" or review.get("comment") or review.get("params"):
            out[op["op_id"]] = review
    return out
