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

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from pipeline import __version__
from pipeline.executors import make_executor
from pipeline.kernel import decode_cache
from pipeline.kernel.errors import ConfigError, Location
from pipeline.kernel.files import write_bytes_atomic, write_json_atomic
from pipeline.kernel.graph import Graph, load_graph
from pipeline.kernel.ingest import Shoot, scan_shoot
from pipeline.kernel.records import ImageRecord, SourceTask, Status, record_from_json, record_to_json
from pipeline.kernel.schema import MANIFEST_SCHEMA, to_table, write_parquet_atomic
from pipeline.kernel.stage import RunContext

MANIFEST_NAME = "manifest.parquet"
FACES_NAME = "faces.parquet"
INSTRUCTIONS_NAME = "instructions.parquet"
EXPORTS_NAME = "exports.parquet"
SUMMARY_NAME = "summary.json"
REPORT_NAME = "report.html"
CONTACT_DIR = "contact_sheets"
STATE_DIR = ".postprod"


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
    follow_external_symlinks : bool
        Include files that symbolic links in the shoot point at outside it (trusted local use only).
    """

    shoot_dir: Path
    out_dir: Path
    executor: str = "ray"
    workers: int | None = None
    ray_address: str | None = None
    graph_path: Path | None = None
    device: str = "cpu"
    chart: str | Path | None = None
    shoot_id: str | None = None
    only: str | None = None
    follow_external_symlinks: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    out_dir: Path
    records: list[ImageRecord]
    shoot: Shoot
    seconds: float
    reused: int = 0

    @property
    def failed(self) -> list[ImageRecord]:
        return [r for r in self.records if r.status is Status.FAILED and r.duplicate_of is None]

    @property
    def ok(self) -> list[ImageRecord]:
        return [r for r in self.records if r.status is Status.OK and r.duplicate_of is None]

    def summary(self) -> dict[str, Any]:
        ok = self.ok
        return {
            "shoot": str(self.shoot.root),
            "out": str(self.out_dir),
            "files": len(self.records),
            "processed": len(self.shoot.tasks),
            "reused_from_earlier_run": self.reused,
            "ok": len(ok),
            "failed": [{"source_path": r.source_path, "error": r.error} for r in self.failed],
            "duplicates": [{"source_path": d.source_path, "duplicate_of": d.duplicate_of} for d in self.shoot.duplicates],
            "skipped": [{"source_path": s.source_path, "reason": s.reason} for s in self.shoot.skipped],
            "skipped_by_reason": dict(Counter(s.reason for s in self.shoot.skipped)),
            "verdicts": dict(Counter(str(r.verdict) for r in ok if r.verdict)),
            "faces_to_brighten": sum(r.faces_to_brighten or 0 for r in ok),
            "images_with_faces_to_brighten": sum(1 for r in ok if r.faces_to_brighten),
            "exports": sum(len(r.exports) for r in ok),
            "seconds": round(self.seconds, 3),
        }


def check_out_dir(shoot_dir: Path, out_dir: Path) -> None:
    """The output folder must not be inside the shoot (it would be ingested next time) nor contain it."""
    shoot, out = shoot_dir.resolve(), out_dir.resolve()
    if out == shoot or shoot in out.parents:
        raise ConfigError("the output folder must be outside the shoot folder", Location(str(out_dir), key="--out"))
    if out in shoot.parents:
        raise ConfigError("the output folder must not contain the shoot folder", Location(str(out_dir), key="--out"))


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


def segment_spec(graph: Graph) -> list[Any]:
    return [[s.name, s.cls.version, s.params.model_dump(mode="json") if hasattr(s.params, "model_dump") else None]
            for s in graph.stages]


def chart_options(graph: Graph, chart: str | Path | None) -> dict[str, Any]:
    """The resolved chart (``--chart``, else the plan stage's default) as run options.

    Raises
    ------
    ConfigError
        Naming the chart file, line and key of the first problem.
    """
    plan = next((s for s in graph.stages if s.name == "plan_retouch"), None)
    ref = chart or (plan.params.chart if plan is not None else None)
    if ref is None:
        return {}
    from charts.loader import load_chart

    resolved = load_chart(ref)
    return {"chart": resolved, "chart_name": resolved.name,
            "chart_hash": _digest(resolved.chart.model_dump(mode="json"))}


def prepare(settings: RunSettings) -> tuple[Graph, RunContext]:
    """Validate graph, chart and settings; raises ConfigError before any work."""
    graph = load_graph(settings.graph_path)
    if not settings.shoot_dir.is_dir():
        raise ConfigError("shoot folder not found", Location(str(settings.shoot_dir), key="SHOOT"))
    check_out_dir(settings.shoot_dir, settings.out_dir)
    if settings.workers is not None and settings.workers < 1:
        raise ConfigError("must be at least 1", Location(None, key="--workers"))
    if settings.only not in (None, "plan"):
        raise ConfigError(f"unknown value '{settings.only}' (only 'plan' is supported)", Location(None, key="--only"))
    options = {**settings.options, **chart_options(graph, settings.chart)}
    options.setdefault("shoot_id", settings.shoot_id or settings.shoot_dir.resolve().name)
    context = RunContext(
        shoot_dir=settings.shoot_dir.resolve(),
        out_dir=settings.out_dir.resolve(),
        device=settings.device,
        options=options,
    )
    for bound in graph.stages:
        bound.build(context).preflight()
    return graph, context


class Journal:
    """Per-segment results of earlier runs, keyed by what went into them."""

    def __init__(self, out_dir: Path) -> None:
        self.root = out_dir / STATE_DIR / "journal"

    def _path(self, segment: int, content_hash: str) -> Path:
        return self.root / f"segment{segment}" / f"{content_hash}.json"

    def get(self, segment: int, content_hash: str, key: str, out_dir: Path) -> ImageRecord | None:
        path = self._path(segment, content_hash)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if entry.get("key") != key:
            return None
        record = record_from_json(entry["record"])
        for e in record.exports:  # a file deleted or cut short since: redo the image
            p = out_dir / e.path
            if not p.is_file() or p.stat().st_size != e.bytes:
                return None
        return record

    def put(self, segment: int, content_hash: str, key: str, record: ImageRecord) -> None:
        write_json_atomic(self._path(segment, content_hash), {"key": key, "record": record_to_json(record)})


def _key(graph: Graph, context: RunContext, task: SourceTask, record: ImageRecord | None, after_plan: bool) -> str:
    """What a segment's result depends on. Analysis (before planning) does not
    depend on the chart, so changing charts re-plans without re-analysing."""
    incoming = None
    if record is not None:
        incoming = record_to_json(record)
        incoming.pop("stage_seconds", None)
    chart_hash = context.options.get("chart_hash") if after_plan else None
    shoot_id = context.options.get("shoot_id") if after_plan else None
    naming = (task.seq, task.stem) if after_plan else None
    return _digest(__version__, segment_spec(graph), chart_hash, shoot_id, task.content_hash, naming, incoming)


def process_shoot(
    settings: RunSettings,
    on_phase: Callable[[str, int], None] | None = None,
    on_record: Callable[[ImageRecord], None] | None = None,
) -> RunResult:
    """Process a shoot folder into the output folder.

    Raises
    ------
    ConfigError
        On an invalid graph, chart or setting (before any image is processed),
        and with ``only="plan"`` when some images were never analysed.
    """
    start = time.perf_counter()
    graph, context = prepare(settings)
    shoot = scan_shoot(settings.shoot_dir, follow_external_symlinks=settings.follow_external_symlinks)
    context.out_dir.mkdir(parents=True, exist_ok=True)
    sweep_temp_files(context.out_dir)
    journal = Journal(context.out_dir)
    tasks = shoot.tasks
    records: dict[str, ImageRecord | None] = {t.source_path: None for t in tasks}
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
            ordered = [records[t.source_path] for t in tasks]
            if segment.scope == "shoot":
                if on_phase:
                    on_phase(segment.stages[0].name, 0)
                stage = segment.stages[0].build(context)
                stage.process_shoot([r for r in ordered if r is not None])
                carry_reviews([r for r in ordered if r is not None], context.out_dir)
                after_plan = True
                continue
            todo: list[tuple[SourceTask, ImageRecord | None, str]] = []
            for task, rec in zip(tasks, ordered):
                if rec is not None and rec.status is Status.FAILED:
                    continue
                key = _key(segment, context, task, rec, after_plan)
                done = journal.get(index, task.content_hash, key, context.out_dir)
                if done is not None:
                    done.source_path = task.source_path
                    records[task.source_path] = done
                    reused += 1
                else:
                    todo.append((task, rec, key))
            if settings.only == "plan" and todo:
                missing = ", ".join(t.source_path for t, _, _ in todo[:5])
                raise ConfigError(
                    f"{len(todo)} image(s) were never analysed ({missing}...): run `postprod process` without --only first",
                    Location(None, key="--only"),
                )
            if on_phase:
                on_phase("+".join(s.name for s in segment.stages), len(todo))
            if not todo:
                continue
            if executor is None:
                executor = make_executor(settings.executor, settings.workers, settings.ray_address)
            keys = {t.source_path: k for t, _, k in todo}
            by_hash = {t.source_path: t.content_hash for t, _, _ in todo}
            first = index == 0
            for record in executor.map(segment, context, [t for t, _, _ in todo],
                                       None if first else [r for _, r, _ in todo]):
                records[record.source_path] = record
                journal.put(index, by_hash[record.source_path], keys[record.source_path], record)
                if on_record:
                    on_record(record)
        # Kept after a crash (a resumed run can use them), gone after a finished one.
        decode_cache.clear(context.out_dir)
    finally:
        if executor is not None:
            executor.close()
    final = {k: v for k, v in records.items() if v is not None}
    for dup in shoot.duplicates:
        original = final[dup.duplicate_of]
        final[dup.source_path] = replace(
            original, source_path=dup.source_path, duplicate_of=dup.duplicate_of, stage_seconds={},
            exports=[], operations=list(original.operations),
        )
    ordered = [final[k] for k in sorted(final)]
    result = RunResult(context.out_dir, ordered, shoot, time.perf_counter() - start, reused)
    write_outputs(result, graph, context)
    return result


def write_outputs(result: RunResult, graph: Graph, context: RunContext) -> None:
    """Manifest, faces, instructions (JSON, Parquet, XMP), exports table, summary."""
    from pipeline.kernel.schema import EXPORTS_SCHEMA, FACES_SCHEMA, export_rows, face_rows
    from pipeline.outputs.instructions import (
        INSTRUCTIONS_SCHEMA,
        instruction_doc,
        instruction_name,
        instruction_rows,
        xmp_sidecar,
    )
    from pipeline.outputs.verify import verify_exports

    out = context.out_dir
    records = result.records
    meta = {"graph": graph.name, "shoot": str(result.shoot.root), "chart": context.options.get("chart_name"),
            "chart_hash": context.options.get("chart_hash"), "shoot_id": context.options.get("shoot_id")}
    write_parquet_atomic(to_table((r.to_row() for r in records), MANIFEST_SCHEMA, meta), out / MANIFEST_NAME)
    originals = [r for r in records if r.duplicate_of is None]
    write_parquet_atomic(to_table(face_rows(originals), FACES_SCHEMA, meta), out / FACES_NAME)
    write_parquet_atomic(to_table(export_rows(originals), EXPORTS_SCHEMA, meta), out / EXPORTS_NAME)
    verify_exports(out, EXPORTS_NAME)  # every row's file is on disk with its SHA-256, else ExportMismatchError
    planned = [r for r in originals if r.status is Status.OK and r.verdict is not None]
    rows: list[dict[str, Any]] = []
    for r in planned:
        path = out / "instructions" / instruction_name(r.source_path)
        doc = instruction_doc(r, context.options.get("chart_name") or "", context.options.get("chart_hash") or "")
        write_json_atomic(path, doc)
        write_bytes_atomic(out / doc["xmp"], xmp_sidecar(doc).encode("utf-8"))
        rows += instruction_rows(doc)
    if planned:
        write_parquet_atomic(to_table(rows, INSTRUCTIONS_SCHEMA, meta), out / INSTRUCTIONS_NAME)
    write_contact_sheets(originals, out)
    summary = result.summary()
    write_json_atomic(out / SUMMARY_NAME, summary)
    from pipeline.outputs.report import render_report

    html_text = render_report(records, summary, context.options.get("chart_name"))
    write_bytes_atomic(out / REPORT_NAME, html_text.encode("utf-8"))


#: Images per contact sheet: 6 x 10 cells, about 1900 x 3400 px (20 MB while drawn) however large the shoot.
CONTACT_PAGE = 60


def write_contact_sheets(records: list[ImageRecord], out: Path, page: int = CONTACT_PAGE) -> list[Path]:
    """``contact_sheets/<rendition>.jpg``: every delivered file of a rendition, ``page`` to a sheet.

    A rendition with more files gets numbered sheets, ``<rendition>-001.jpg``
    and on: one sheet for a whole shoot would grow the driver's memory with
    the shoot (300 MB at 1,000 images) and pass JPEG's 65,500 px limit near
    1,200. Sheets of an earlier run that this one does not rewrite are removed.
    """
    from pipeline.outputs.contact_sheet import contact_sheet

    by_rendition: dict[str, list[tuple[Path, str]]] = {}
    for r in records:
        for e in r.exports:
            caption = f"{PurePosixPath(r.source_path).name} [{r.verdict}]" if r.verdict else r.source_path
            by_rendition.setdefault(e.rendition, []).append((out / e.path, caption))
    folder = out / CONTACT_DIR
    written: list[Path] = []
    for rendition, items in sorted(by_rendition.items()):
        pages = [items[i : i + page] for i in range(0, len(items), page)]
        for n, chunk in enumerate(pages, 1):
            name = f"{rendition}.jpg" if len(pages) == 1 else f"{rendition}-{n:03d}.jpg"
            written.append(contact_sheet([p for p, _ in chunk], [c for _, c in chunk], folder / name))
        stale = [folder / f"{rendition}.jpg", *folder.glob(f"{rendition}-[0-9][0-9][0-9].jpg")]
        for p in stale:
            if p not in written:
                p.unlink(missing_ok=True)
    return written


def sweep_temp_files(out: Path) -> int:
    """Remove the temporary files of writes a killed run left half-done (``.<name>.*.tmp``)."""
    n = 0
    if out.is_dir():
        for p in out.rglob(".*.tmp"):
            if p.is_file():
                p.unlink(missing_ok=True)
                n += 1
    return n


def carry_reviews(records: list[ImageRecord], out: Path) -> None:
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
