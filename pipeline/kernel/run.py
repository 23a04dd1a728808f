"""One shoot in, one output folder out.

The graph runs in segments: image-scope stages in workers (analysis; then
render and export), shoot-scope stages in the driver (planning). After each
image segment the driver journals the record under a key made of everything
that went into it (code version, the segment's stages and parameters, the
chart, the incoming record); a rerun reuses every journalled result whose key
still matches and whose files are all there, so a run killed half-way
finishes without redoing or duplicating work. Outputs are written through a
temporary file and a rename: a reader never sees half a file.

A run holds its output folder (:mod:`pipeline.kernel.outdir`): it checks the
folder can be written before any work, takes ``OUT/.postprod/lock`` for its
whole length, and refuses a folder made for another shoot or chart unless
told to replace it. Failures that a rerun could change (a killed worker, an
I/O error) are retried and never journalled; a file's own failures are
(:mod:`pipeline.kernel.runner`). A full disk stops the run with what it needs.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from charts.loader import ResolvedChart, load_chart
from charts.schema import AcceptanceAction, Chart, LensRules
from pipeline.equipment.photographers import load_register
from pipeline.executors import EXECUTORS, choose_executor, make_executor, usable_cpus
from pipeline.imaging.measure.metering import release_curves
from pipeline.kernel import decode_cache
from pipeline.kernel.declared import declared_view
from pipeline.kernel.errors import ClusterLost, ConfigError, Location, OutOfSpace, is_out_of_space
from pipeline.kernel.graph import Graph, load_graph
from pipeline.kernel.ingest import Shoot, scan_shoot
from pipeline.kernel.interrupt import handle_interrupts, stop_if_interrupted
from pipeline.kernel.journal import Journal, journal_key
from pipeline.kernel.outdir import (
    PAIRS_NAME,
    PICKS_NAME,
    REJECTS_NAME,
    FolderIdentity,
    RunLock,
    check_identity,
    check_writable,
    pairs_policy,
    picks_policy,
    read_identity,
    record_folder_choice,
    rejects_policy,
    set_aside_reviews,
)
from pipeline.kernel.record_store import RecordStore
from pipeline.kernel.records import (
    RETRIED_FAILURES,
    ImageRecord,
    OperationKind,
    SourceKind,
    SourceTask,
    Status,
    Verdict,
    awaiting_decision,
    renderer_applies,
)
from pipeline.kernel.schema import use_system_memory_pool
from pipeline.kernel.stage import RunContext
from pipeline.outputs import decisions
from pipeline.outputs.shoot import (  # noqa: F401 - the output folder's names, re-exported for callers
    CONTACT_DIR,
    EXPORTS_NAME,
    FACES_NAME,
    INSTRUCTIONS_NAME,
    MANIFEST_NAME,
    REPORT_NAME,
    SUMMARY_NAME,
    image_files,
    remove_stale_outputs,
    write_contact_sheets,
    write_outputs,
)
from pipeline.planning.operations import check_operation
from pipeline.planning.plan import verdict_of
from pipeline.planning.rules.crops import rejudge_crop_flags
from pipeline.planning.rules.lens import why_lens_left

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs, validated before any image is touched.

    Attributes
    ----------
    threads : int, optional
        Threads for each image's work with the in-process executor (OpenCV, the face detector, the parts of a
        stage run beside each other: :mod:`pipeline.kernel.beside`); None: every CPU this process may use. Ray's
        workers take one CPU each, whatever this says.
    device : str
        Where the detectors run: ``"auto"`` (CUDA when onnxruntime-gpu and an NVIDIA GPU are there, else the
        CPU: :func:`models.face_detectors.resolve_device`), ``"cpu"`` or ``"cuda"``.
    chart : str or Path, optional
        Chart name or YAML path; the plan stage's default chart when omitted.
    shoot_id : str, optional
        The ``{shoot}`` naming token and IPTC job id; the shoot folder's name by default.
    only : str, optional
        ``"plan"``: re-plan an analysed shoot from its journal, no pixels decoded.
        ``"render"``: re-plan from the journal and re-render exactly the images
        whose render inputs (operations, reviewers' amounts and rejections) changed
        since their exports were made; nothing is analysed again.
    force : bool
        Replace the deliveries of another shoot or chart in ``out_dir`` instead of refusing.
    wait : bool
        Wait for another run holding ``out_dir`` to finish instead of refusing.
    photographer : str, optional
        Who shot the shoot (``--photographer``); wins over the register and EXIF Artist.
    photographers_file : Path, optional
        The body register (``--photographers``, YAML or CSV): which body each photographer had, and when.
    follow_external_symlinks : bool
        Include files that symbolic links in the shoot point at outside it (trusted local use only).
    raw_jpeg_pairs : str, optional
        ``"raw"``: the camera's JPEG (or HEIF) beside a RAW of the same name is skipped, the RAW developed alone;
        ``"both"``: each is developed (:func:`~pipeline.kernel.ingest.raw_jpeg_pairs`). None: what the output
        folder's last run used, else ``"raw"``, or ``"both"`` in a folder an earlier version delivered into
        (:func:`~pipeline.kernel.outdir.pairs_policy`).
    photographer_rejects : str, optional
        ``"skip"``: a frame the photographer rejected in its XMP, a sidecar or its own (``xmp:Rating`` -1), is
        skipped and counted; ``"process"``: it is developed, and its instructions say it was rejected
        (:mod:`pipeline.kernel.sidecars`). None: what the output folder's last run used, else ``"skip"``, or
        ``"process"`` in a folder an earlier version delivered into (:func:`~pipeline.kernel.outdir.rejects_policy`).
    photographer_picks : str, optional
        ``"only"``: where the photographer picked frames in their XMP (Lightroom's P, Photo Mechanic's tag), the
        others are skipped and counted; ``"1"`` to ``"5"``: so are the frames rated fewer stars, not picked, and
        with ``"label:NAME"`` those without that colour label (:func:`~pipeline.kernel.sidecars.is_pick`); ``"all"``:
        every frame is developed. None: what the output
        folder's last run used, else ``"all"`` (:func:`~pipeline.kernel.outdir.picks_policy`).
    """

    shoot_dir: Path
    out_dir: Path
    executor: str = "auto"
    workers: int | None = None
    ray_address: str | None = None
    threads: int | None = None
    graph_path: Path | None = None
    device: str = "auto"
    chart: str | Path | None = None
    shoot_id: str | None = None
    only: str | None = None
    force: bool = False
    wait: bool = False
    photographer: str | None = None
    photographers_file: Path | None = None
    follow_external_symlinks: bool = False
    raw_jpeg_pairs: str | None = None
    photographer_rejects: str | None = None
    photographer_picks: str | None = None


@dataclass
class RunResult:
    """What a run did. ``records`` may be a lazy sequence (:class:`~pipeline.kernel.record_store.RecordView`):
    every pass over it reads the records again, none stays in memory."""

    out_dir: Path
    records: Sequence[ImageRecord]
    shoot: Shoot
    seconds: float
    reused: int = 0
    rendered: list[str] = field(default_factory=list)  # images rendered by this run (not reused)
    # Images whose review decisions arrived after their render (their exports do not show them yet).
    decisions_not_rendered: list[str] = field(default_factory=list)
    executor: str = ""
    # Re-planned only (``only="plan"``): an image to deliver without exports had its plan changed, not rendered.
    plan_only: bool = False
    # Findings of equipment.parquet by kind (dust, hot_pixel, ..., focus_miss).
    equipment: dict[str, int] = field(default_factory=dict)
    # The chart's lens corrections, when it asks for one: the summary counts the frames corrected by lens, and
    # why the others were not.
    lens_rules: LensRules | None = None
    # What the run developed of a shoot the photographer picked frames in (``--photographer-picks``).
    photographer_picks: str = "all"
    # The chart's renditions that fill an exact box (name -> width, height): the summary counts the files delivered
    # smaller than their box (an original too small to fill it within ``max_upscale``).
    rendition_boxes: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def failed(self) -> list[ImageRecord]:
        return [r for r in self.records if r.status is Status.FAILED and r.duplicate_of is None]

    @property
    def ok(self) -> list[ImageRecord]:
        return [r for r in self.records if r.status is Status.OK and r.duplicate_of is None]

    def summary(self) -> dict[str, Any]:
        ok = faces = with_faces = exports = files = without_exports = merged = 0
        failed: list[dict[str, Any]] = []
        verdicts: Counter[str] = Counter()
        to_confirm: Counter[str] = Counter()  # corrections proposed to a person, not decided yet, by kind
        images_to_confirm = keystones = turned = images_smaller = 0
        smaller: Counter[str] = Counter()  # files delivered under their rendition's box, by rendition
        blurred = images_blurred = red_eyes = images_red_eyes = 0  # privacy blurs and red eyes the renderer applies
        lens_done: Counter[str] = Counter()  # frames whose lens was corrected, by lens
        lens_left: Counter[str] = Counter()  # RAW frames it was not, by why
        for r in self.records:  # one pass: the records are read, counted and let go
            files += 1
            if r.duplicate_of is not None:
                continue
            if r.status is Status.FAILED:
                skipped_jpeg = self.shoot.pair_tasks.get(r.source_path)
                failed.append({"source_path": r.source_path, "error": r.error, "failure": r.failure and str(r.failure),
                               "pair_jpeg_skipped": skipped_jpeg and skipped_jpeg.source_path,
                               "developed_instead": self.shoot.stand_ins.get(r.source_path)})
            elif r.status is Status.OK:
                ok += 1
                if r.plan.verdict:
                    verdicts[str(r.plan.verdict)] += 1
                faces += r.plan.faces_to_brighten or 0
                with_faces += 1 if r.plan.faces_to_brighten else 0
                exports += len(r.exports)
                # Each side against the box's, the box turned with a crop turned to the picture (either way round).
                under = [e.rendition for e in r.exports if (box := self.rendition_boxes.get(e.rendition))
                         and (min(e.width, e.height) < min(box) or max(e.width, e.height) < max(box))]
                smaller.update(under)
                images_smaller += bool(under)
                without_exports += not r.exports and r.plan.verdict is not Verdict.REJECT
                merged += any(op.params.get("check") == "bracket" for op in r.operations)
                turned += bool(r.frame.turned_by_xmp)
                applied = [op for op in r.operations if renderer_applies(op.applied_by, op.params, op.review)]
                blurs = sum(op.kind is OperationKind.BLUR_FACE for op in applied)
                eyes = sum(len(op.params["eyes"]) for op in applied if op.kind is OperationKind.RED_EYE)
                blurred, images_blurred = blurred + blurs, images_blurred + bool(blurs)
                red_eyes, images_red_eyes = red_eyes + eyes, images_red_eyes + bool(eyes)
                pending = [str(op.kind) for op in r.operations if awaiting_decision(op.params, op.review)]
                to_confirm.update(pending)
                images_to_confirm += bool(pending)
                keystones += any(op.kind is OperationKind.STRAIGHTEN and op.params.get("keystone")
                                 and renderer_applies(op.applied_by, op.params, op.review) for op in r.operations)
                lens = next((op for op in r.operations if op.kind is OperationKind.LENS_CORRECTION), None)
                if lens is not None:
                    lens_done[str(lens.params["lens_model"])] += 1
                elif self.lens_rules is not None and r.source_kind is SourceKind.RAW:
                    lens_left[why_lens_left(r, self.lens_rules)] += 1
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
            # Frames whose culling (stars, label, keywords, a reject developed anyway) came from their XMP.
            "photographer_culling": len(self.shoot.culling),
            # Frames the photographer picked, and what the run developed of the shoot (every frame, or the picks).
            "photographer_picked": self.shoot.picked,
            "photographer_picks": self.photographer_picks,
            # Frames developed in the turn their XMP states (the photographer turned them while culling).
            "turned_by_xmp": turned,
            "verdicts": dict(verdicts),
            # Of the rejected: the frames of exposure brackets delivered merged into their middle frame.
            "merged_into_brackets": merged,
            "faces_to_brighten": faces,
            "images_with_faces_to_brighten": with_faces,
            # Faces the renderer blurs for privacy, red eyes it takes the red out of (and in how many images).
            "faces_blurred": blurred,
            "images_with_faces_blurred": images_blurred,
            "red_eyes": red_eyes,
            "images_with_red_eyes": images_red_eyes,
            # Corrections proposed to a person (the renderer's once accepted in the review), by kind.
            "to_confirm": dict(to_confirm),
            "images_to_confirm": images_to_confirm,
            "exports": exports,
            # Files delivered smaller than their rendition's box (the original too small to fill it), by rendition.
            "delivered_smaller": dict(smaller),
            "images_delivered_smaller": images_smaller,
            "replanned_not_rendered": without_exports if self.plan_only else 0,
            "rendered": len(self.rendered),
            "decisions_not_rendered": list(self.decisions_not_rendered),
            "executor": self.executor,
            "equipment": dict(self.equipment),
            # Lens profile corrections (the chart's lens section): frames corrected by lens, RAW frames not by why.
            "lens_corrections": ({"corrected": dict(lens_done), "not_corrected": dict(lens_left)}
                                 if lens_done or lens_left else {}),
            # Frames whose converging verticals the renderer undoes (a straightening's keystone).
            "keystones": keystones,
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
    if settings.only not in (None, "plan", "render"):
        raise ConfigError(f"unknown value '{settings.only}' ('plan' or 'render')", Location(None, key="--only"))
    chart = resolve_chart(graph, settings.chart)
    if chart is None:
        needing = [s.name for s in graph.stages if s.cls.needs_chart]
        if needing:
            raise ConfigError(f"stages {needing} need a chart and the graph names none: pass --chart NAME",
                              Location(None, key="--chart"))
    if settings.photographer is not None and not settings.photographer.strip():
        raise ConfigError("is empty: give the photographer's name", Location(None, key="--photographer"))
    register = load_register(settings.photographers_file) if settings.photographers_file is not None else None
    from models.face_detectors import resolve_device

    device, why = resolve_device(settings.device)
    log.info("device: %s (%s)", device, why)
    context = RunContext(
        shoot_dir=settings.shoot_dir.resolve(),
        out_dir=settings.out_dir.resolve(),
        device=device,
        chart=chart,
        shoot_id=settings.shoot_id or settings.shoot_dir.resolve().name,
        photographer=settings.photographer,
        photographer_register=register,
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
        On an invalid graph, chart or setting, an output folder that cannot
        be written, is held by another run (:class:`~pipeline.kernel.outdir.FolderBusy`)
        or holds another shoot's or chart's deliveries (before any image is
        processed); and with ``only="plan"`` when some images were never analysed.
    OutOfSpace
        When the output folder's disk fills up; finished work is kept.
    KeyboardInterrupt
        On Ctrl-C, also one that something swallowed where it landed (:mod:`pipeline.kernel.interrupt`):
        at the next image at the latest; finished work is kept.
    """
    start = time.perf_counter()
    graph, context = prepare(settings)
    check_writable(context.out_dir)
    lock = RunLock(context.out_dir)
    lock.acquire(wait=settings.wait)
    try:
        wanted = FolderIdentity(str(context.shoot_dir), context.shoot_id, context.chart_name, context.chart_hash)
        before = read_identity(context.out_dir)  # (read before check_identity records this run's)
        other_shoot = before is not None and (before.shoot_dir, before.shoot_id) != (wanted.shoot_dir, wanted.shoot_id)
        pairs = pairs_policy(context.out_dir, settings.raw_jpeg_pairs, None if other_shoot else before)
        replaced = check_identity(context.out_dir, wanted, settings.force)  # (raises for another shoot unless forced)
        if replaced is not None and other_shoot:
            set_aside_reviews(context.out_dir)
        rejects = rejects_policy(context.out_dir, settings.photographer_rejects, None if other_shoot else before)
        record_folder_choice(context.out_dir, PAIRS_NAME, pairs)
        picks = picks_policy(context.out_dir, settings.photographer_picks, None if other_shoot else before)
        record_folder_choice(context.out_dir, REJECTS_NAME, rejects)
        record_folder_choice(context.out_dir, PICKS_NAME, picks)
        settings = replace(settings, raw_jpeg_pairs=pairs, photographer_rejects=rejects, photographer_picks=picks)
        try:
            with handle_interrupts():
                result = _process(settings, graph, context, start, on_phase, on_record, on_executor)
                stop_if_interrupted()  # pressed but swallowed after the last image: still an interrupted run
                return result
        except OSError as exc:
            if is_out_of_space(exc):  # the driver's own writes: journal, manifest, sheets
                raise OutOfSpace.from_oserror(exc, context.out_dir) from None
            raise
    finally:
        lock.release()


def _flag_stand_ins(shoot: Shoot, records: RecordStore) -> None:
    """Each camera JPEG developed in its failed RAW's place (:meth:`~pipeline.kernel.ingest.Shoot.stand_in`) is
    flagged, with why: a retoucher finishing it has the camera's development, not the RAW's latitude."""
    for raw, jpeg in shoot.stand_ins.items():
        record, failed = records.get(jpeg), records.get(raw)
        if record is None or record.status is not Status.OK or failed is None:
            continue
        record.operations = record.operations + check_operation(
            AcceptanceAction.FLAG, "raw_failed",
            f"developed from the camera's JPEG: its RAW {raw} could not be developed ({failed.error})", None, None,
            raw=raw)
        record.plan.verdict = verdict_of(record.operations)
        records.put(jpeg, record)


def _failed_for_good(record: ImageRecord | None) -> bool:
    """Whether an image failed on its content (a rerun fails it the same way), not on the machine."""
    return (record is not None and record.status is Status.FAILED
            and record.failure not in RETRIED_FAILURES)


def _process(settings: RunSettings, graph: Graph, context: RunContext, start: float,
             on_phase: Callable[[str, int], None] | None,
             on_record: Callable[[ImageRecord], None] | None,
             on_executor: Callable[[str], None] | None = None) -> RunResult:
    use_system_memory_pool()  # the driver's tables: freed batches go back (see its docstring)
    shoot = scan_shoot(settings.shoot_dir, follow_external_symlinks=settings.follow_external_symlinks,
                       pairs=settings.raw_jpeg_pairs or "raw", rejects=settings.photographer_rejects or "skip",
                       picks=settings.photographer_picks or "all")
    choice = choose_executor(settings.executor, settings.workers, settings.ray_address, shoot.tasks)
    if choice.name == "local":  # how many CPUs its images get, said with the choice
        threads = settings.threads or usable_cpus()
        choice = replace(choice, reason=f"{choice.reason}; {threads} thread{'s' if threads != 1 else ''} an image")
    if on_executor:
        on_executor(str(choice))
    sweep_temp_files(context.out_dir)
    journal = Journal(context.out_dir)
    tasks = shoot.tasks
    # Records live on disk between the segments, not in the driver's memory (flat in the shoot's size).
    records = RecordStore(context.out_dir, (t.source_path for t in tasks))
    reused = 0
    segments = graph.segments()
    cut = next((i for i, s in enumerate(segments) if s.scope == "shoot"), len(segments))
    plan_params: dict[tuple[str, str], dict[str, Any]] = {}
    executor = None
    after_plan = False
    rendered: list[str] = []

    def run_images(index: int, segment: Graph, batch: list[SourceTask]) -> None:
        """Segment ``index`` (one image at a time) over ``batch``: from the journal where it holds the image's
        result, else through the executor."""
        nonlocal executor, reused
        todo: list[tuple[SourceTask, str]] = []
        for task in batch:
            rec = records.get(task.source_path)
            if rec is not None and rec.status is Status.FAILED:
                continue
            key = journal_key(segment, context, task, rec, after_plan)
            done = journal.get(index, task.content_hash, key, context.out_dir)
            if done is not None:
                done.source_path = task.source_path
                if after_plan and rec is not None:
                    # The key ignores who reviewed, when, comments and accept/done (no pixel
                    # changes with them): the record goes on with the reviews as they stand now.
                    done.operations = rec.operations
                records.put(task.source_path, done)
                reused += 1
            else:
                todo.append((task, key))
        if settings.only in ("plan", "render") and todo and index < cut:
            missing = ", ".join(t.source_path for t, _ in todo[:5])
            raise ConfigError(
                f"{len(todo)} image(s) were never analysed ({missing}...): run `postprod process` without --only first",
                Location(None, key="--only"),
            )
        if after_plan:
            rendered.extend(t.source_path for t, _ in todo if t.source_path not in rendered)
        if on_phase:
            on_phase("+".join(s.name for s in segment.stages), len(todo))
        if not todo:
            return
        if executor is None:
            executor = make_executor(choice.name, settings.workers, settings.ray_address, settings.threads)
        keys = {t.source_path: k for t, k in todo}
        by_hash = {t.source_path: t.content_hash for t, _ in todo}
        first = index == 0
        for record in executor.map(segment, context, [t for t, _ in todo],
                                   None if first else records.view([t.source_path for t, _ in todo])):
            records.put(record.source_path, record)
            if record.failure not in RETRIED_FAILURES:  # retried by the next run
                journal.put(index, by_hash[record.source_path], keys[record.source_path], record,
                            image_files(record))
            if on_record:
                on_record(record)
        journal.commit()  # the segment's last group: planning and the next segment start from a whole journal
        # The last segment's would live on through the outputs (the driver's peak): a journal key
        # and a few references an image, about 0.3 KB, 3 MB at 10,000 images.
        del todo, keys, by_hash

    try:
        for index, segment in enumerate(segments):
            if segment.scope == "shoot":
                # A RAW of a RAW+JPEG pair that cannot be read: its camera JPEG is analysed in its place.
                failed = [t.source_path for t in tasks if t.source_path in shoot.pair_tasks
                          and _failed_for_good(records.get(t.source_path))]
                stand_ins = [t for t in map(shoot.stand_in, failed) if t is not None]
                for earlier, analysis in enumerate(segments[:index] if stand_ins else []):
                    run_images(earlier, analysis, stand_ins)
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
                    planned = records.view(present, editable=True)
                    stage.process_shoot(planned)
                    planned.flush()
                _flag_stand_ins(shoot, records)
                release_curves()  # planning's cached curves: the outputs hold the driver's peak
                plan_params = carry_reviews(records.view(present, editable=True), context.out_dir,
                                             context.chart.chart if context.chart is not None else None)
                after_plan = True
                if settings.only == "plan":
                    # Keep the analysis, and the exports still made from this very plan; render nothing.
                    reused += _exports_of_this_plan(segments, index + 1, tasks, records, journal, context)
                    break
                continue
            run_images(index, segment, tasks)
        # Kept after a crash (a resumed run can use them), gone after a finished one.
        decode_cache.clear(context.out_dir)
    except (OutOfSpace, ClusterLost) as exc:
        if executor is not None:
            executor.close()  # first: workers killed mid-image must stop writing before the sweep
            executor = None
        _commit_what_is_finished(journal)
        _remove_unfinished_exports(context.out_dir, records)
        if isinstance(exc, ClusterLost):
            raise
        decode_cache.clear(context.out_dir)  # the room it takes is the first the run can give back
        free = OutOfSpace.from_oserror(OSError(), context.out_dir).free_bytes  # what is free now, after the sweep
        raise OutOfSpace(str(context.out_dir), free, _space_needed(tasks, records, exc.write_bytes),
                         exc.path, exc.write_bytes) from None
    finally:
        if executor is not None:
            executor.close()
        if journal.held:  # stopped by an error or an interrupt: keep the images that were finished
            _commit_what_is_finished(journal)
    for dup in shoot.duplicates:
        original = records.get(dup.duplicate_of)
        if original is not None:
            records.put(dup.source_path, replace(
                original, source_path=dup.source_path, duplicate_of=dup.duplicate_of, stage_seconds={},
                exports=[], operations=list(original.operations),
            ))
    ordered = records.view(sorted(records.keys()))
    lens = context.chart.chart.lens if context.chart is not None else None
    result = RunResult(context.out_dir, ordered, shoot, time.perf_counter() - start, reused, rendered=rendered,
                       executor=str(choice), plan_only=settings.only == "plan",
                       lens_rules=lens if lens is not None and lens.asked else None,
                       photographer_picks=settings.photographer_picks or "all",
                       rendition_boxes={} if context.chart is None else
                       {name: r.box for name, r in context.chart.chart.renditions.items() if r.box is not None})
    summary = result.summary()
    # A re-render with no photographer options keeps who shot each frame as the folder names it.
    keep_photographers = settings.only == "render" and settings.photographer is None \
        and settings.photographers_file is None
    write_outputs(result.records, summary, graph.name, context, plan_params, keep_photographers, shoot.culling)
    result.decisions_not_rendered = summary["decisions_not_rendered"]
    result.equipment = summary.get("equipment", {})
    return result


def _commit_what_is_finished(journal: Journal) -> None:
    """Journal the finished images of a run that is stopping, as far as the disk lets it (a full disk may
    refuse): whatever is not journalled is redone by the next run."""
    try:
        journal.commit()
    except OSError:
        pass


def _exports_of_this_plan(segments: list[Graph], first: int, tasks: list[SourceTask],
                          records: RecordStore, journal: Journal, context: RunContext) -> int:
    """``--only plan``: take from the journal the render of each image whose plan did not change.

    An image whose operations (or chart) changed keeps no exports: the ones
    on disk show the old plan and the end of the run removes them.
    Returns the number of journal entries used.
    """
    used = 0
    for task in tasks:
        rec: ImageRecord | None = records.get(task.source_path)
        planned = rec
        for index in range(first, len(segments)):
            if rec is None or rec.status is Status.FAILED:
                break
            done = journal.get(index, task.content_hash, journal_key(segments[index], context, task, rec, True),
                               context.out_dir)
            if done is not None:
                done.source_path = task.source_path
                if planned is not None:
                    done.operations = planned.operations  # the reviews as they stand now (they change no pixel)
                used += 1
            rec = done
        if rec is not None:  # every later segment found (or the image failed in one): its result stands
            records.put(task.source_path, rec)
    return used


def _remove_unfinished_exports(out: Path, records: RecordStore) -> list[str]:
    """After a stopped run: remove exports neither the last finished run's table nor this run's finished
    images list (a worker killed between an image's renditions leaves some of them)."""
    import pyarrow.parquet as pq

    try:
        keep = set(pq.read_table(out / EXPORTS_NAME, columns=["path"]).column("path").to_pylist())
    except (OSError, ValueError, KeyError):
        keep = set()
    keep |= {e.path for r in records.view(records.keys()) for e in r.exports}
    return remove_stale_outputs(out, keep, folders=("exports",))


def _space_needed(tasks: list[SourceTask], records: RecordStore, failed_write: int | None) -> int | None:
    """About how many bytes the images not yet exported will take, from the ones that were.

    Before any image is delivered the one measure at hand is the write that
    failed (one file of one image): a lower bound.
    """
    done = [sum(e.bytes for e in r.exports) for r in records.view(records.keys()) if r.exports]
    left = [t for t in tasks if (r := records.get(t.source_path)) is None or (r.status is Status.OK and not r.exports)]
    if not left:
        return failed_write
    per_image = max(sum(done) / len(done) if done else 0, failed_write or 0)
    if not per_image:
        return None
    return int(per_image * len(left) * 1.1) + (16 << 20)  # and the manifest, sheets, previews


def sweep_temp_files(out: Path) -> int:
    """Remove the temporary files of writes a killed run left half-done (``.<name>.*.tmp``)."""
    n = 0
    if out.is_dir():
        for p in out.rglob(".*.tmp"):
            if p.is_file():
                p.unlink(missing_ok=True)
                n += 1
    return n


def carry_reviews(records: Iterable[ImageRecord], out: Path,
                  chart: Chart | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Put reviewers' decisions (:mod:`pipeline.outputs.decisions`) on a new plan's operations.

    Status, who, when, comment, and the parameters they changed, which
    replace the plan's so the render uses them; and the operations a reviewer
    added (a scene's exposure or white balance on a frame the plan left
    alone), when the new plan does not make them itself. With the run's
    ``chart``, the flags of a crop a reviewer moved, resized, turned or
    rejected are judged again on its new frame
    (:func:`~pipeline.planning.rules.crops.rejudge_crop_flags`).

    Returns
    -------
    dict
        The plan's own parameters by (source path, operation id) of the
        operations an edit replaced them on (and the reviewers' own
        operations): the end of the run merges the decisions again (some may
        have been made since) and needs them. An operation not named keeps
        the plan's parameters; naming every one held 2-3 KB an image in the
        driver until the end of the run.
    """
    with decisions.transaction(out) as con:
        reviews = decisions.read(con)
    planned: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        mine = reviews.get(r.source_path, {})
        if not mine:
            continue
        for op in r.operations:
            review = mine.get(op.op_id)
            if decisions.is_decided(review):
                planned[(r.source_path, op.op_id)] = dict(op.params)
                op.review = review
                op.params = {**op.params, **(review.get("params") or {})}
        if r.status is Status.OK:  # and the operations a reviewer added that the plan does not make
            for op in decisions.reviewers_operations(mine, {o.op_id for o in r.operations}):
                planned[(r.source_path, op.op_id)] = {}
                r.operations.append(op)
        if chart is not None and rejudge_crop_flags(r, chart):
            r.plan.verdict = verdict_of(r.operations)
    return planned
