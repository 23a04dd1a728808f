"""The ``postprod`` command line.

Exit codes: 0 every file succeeded; 3 the run finished but some files failed
(see the summary and ``manifest.parquet``); 2 usage or configuration error
(nothing was processed); 1 an unexpected internal error; 130 interrupted
(Ctrl-C; a rerun resumes).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import click

from pipeline import __version__
from pipeline.cli.common import (
    EXIT_CONFIG,
    EXIT_FILES_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ConfigProblem,
    PostprodGroup,
    is_quiet,
    set_verbosity,
)
from pipeline.kernel.errors import ClusterLost, ConfigError, OutOfSpace
from pipeline.kernel.sidecars import LABEL_PICKS, PHOTOGRAPHER_PICKS, valid_picks


class _PicksParam(click.ParamType):
    """``--photographer-picks``: one of :data:`~pipeline.kernel.sidecars.PHOTOGRAPHER_PICKS`, or ``label:NAME``."""

    name = "[" + "|".join(PHOTOGRAPHER_PICKS) + "|label:NAME]"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.name

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if valid_picks(value):
            return str(value)
        self.fail(f"{value!r} is not one of {', '.join(PHOTOGRAPHER_PICKS)} or label:NAME (a colour label: "
                  "label:Green)", param, ctx)


__all__ = ["EXIT_CONFIG", "EXIT_FILES_FAILED", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "main", "run"]


class RunStopped(click.ClickException):
    """The machine stopped the run (a full disk, a lost Ray cluster): exit code 1, no traceback."""

    exit_code = EXIT_INTERNAL


class InternalProblem(click.ClickException):
    """An error that is postprod's (or another process's) fault, not the input's: exit code 1, no traceback."""

    exit_code = EXIT_INTERNAL


@click.group(cls=PostprodGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="postprod")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors; the exit code tells the outcome.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """postprod: measure every image of a shoot, apply the client's chart, write
    retouch instructions and standardized exports.

    Exit codes: 0 all files ok, 3 some files failed, 2 usage or configuration
    error, 1 internal error, 130 interrupted (rerun to resume). -v and -q are
    accepted after the command name too.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    set_verbosity(ctx, verbose, quiet)


@main.command()
@click.argument("shoot", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if missing; must be outside the shoot).")
@click.option("--chart", default=None,
              help="Chart name (see `postprod charts list`) or YAML path [default: the graph's, 'base'].")
@click.option("--shoot-id", default=None, help="Shoot id for names and metadata [default: the shoot folder's name].")
@click.option("--only", type=click.Choice(["plan", "render"]), default=None,
              help="plan: re-plan an analysed shoot after a chart change, without decoding any pixels; "
                   "render: re-render exactly the images whose review decisions changed (see `postprod render`).")
@click.option("--executor", type=click.Choice(["auto", "ray", "local"]), default="auto", show_default=True,
              help="auto: in this process when the shoot is small enough to finish before Ray would start, Ray "
              "for larger shoots, with --workers or a cluster address (the choice is printed); ray: parallel "
              "workers (embedded local Ray or --ray-address); local: in-process, one image at a time on every CPU "
              "(--threads; debugging, small shoots).")
@click.option("--workers", type=int, default=None,
              help="Parallel workers for the ray executor [default: all CPUs]; with auto, asking for them picks Ray.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for each image's work when it runs in this process (local, or auto on a small shoot) "
                   "[default: every CPU this process may use]; Ray's workers take one CPU each.")
@click.option("--ray-address", envvar="RAY_ADDRESS", default=None,
              help="Run on an existing Ray cluster (also read from RAY_ADDRESS); default: start a local Ray.")
@click.option("--graph", "graph_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Stage graph YAML [default: the bundled configs/default.yaml].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where detectors run: auto is cuda when onnxruntime-gpu and an NVIDIA GPU are there, else cpu; "
                   "cuda falls back to cpu with a warning when unavailable.")
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: when stderr is a terminal].")
@click.option("--force", is_flag=True,
              help="Replace the deliveries of another shoot or chart in --out instead of refusing (exit 2).")
@click.option("--wait", is_flag=True,
              help="Wait for another run writing into --out to finish instead of refusing (exit 2).")
@click.option("--photographer", default=None,
              help="Who shot this shoot: written on every frame (wins over --photographers and EXIF Artist).")
@click.option("--photographers", "photographers_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Body register, YAML or CSV (body,photographer[,from,until]): which camera body each "
                   "photographer had, and when; frames of bodies it does not list fall back to EXIF Artist.")
@click.option("--follow-external-symlinks", is_flag=True,
              help="Include files and folders that symbolic links in the shoot point at outside it. For a trusted "
                   "local shoot only: an uploaded one could link to any file this account can read.")
@click.option("--raw-jpeg-pairs", type=click.Choice(["raw", "both"]), default=None,
              help="A camera's JPEG (or HEIF) beside its RAW of the same name (RAW+JPEG shooting): raw develops the "
                   "RAW alone and skips the JPEG, one frame and one delivery, as Lightroom imports the pair (the "
                   "JPEG is developed in its place only if the RAW fails); both "
                   "develops and delivers each file on its own [default: what the --out folder's last run used, "
                   "else raw].")
@click.option("--photographer-rejects", type=click.Choice(["skip", "process"]), default=None,
              help="A frame the photographer rejected before uploading, in its XMP sidecar or a JPEG's or DNG's "
                   "own XMP (Lightroom Classic 13.2+'s reject flag, xmpDM:pick -1; Bridge's xmp:Rating -1; "
                   "digiKam's rejected pick label): skip leaves it out, counted; process develops it. Picks (also "
                   "Photo Mechanic's tag), stars, colour labels and keywords are kept either way [default: what "
                   "the --out folder's last run used, else skip].")
@click.option("--photographer-picks", type=_PicksParam(), default=None,
              help="only: where the photographer picked frames in their XMP (Lightroom's P flag, Photo Mechanic's "
                   "tag, digiKam's accepted pick label), develop the picks alone, the other frames skipped and "
                   "counted (a shoot with no pick is developed whole, and the summary says so); 1-5: the frames "
                   "rated that many stars or more (in an XMP, or in the camera) and the picks; label:NAME: the "
                   "frames with that colour label (label:Green, label:Select) and the picks; all: every frame "
                   "[default: what the --out folder's last run used, else all].")
@click.option("--dry-run", is_flag=True,
              help="Check the settings and the chart, then list what would be processed and what would be skipped "
                   "and why; nothing is decoded or written.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout (the progress bar stays on stderr).")
def process(shoot: Path, out_dir: Path, chart: str | None, shoot_id: str | None, only: str | None, executor: str,
            workers: int | None, threads: int | None, ray_address: str | None, graph_path: Path | None,
            device: str,
            progress: bool | None, force: bool, wait: bool, photographer: str | None, photographers_file: Path | None,
            follow_external_symlinks: bool, raw_jpeg_pairs: str | None, photographer_rejects: str | None,
            photographer_picks: str | None, dry_run: bool, as_json: bool) -> None:
    """Process the SHOOT folder into the --out folder.

    Writes manifest.parquet (one row per input file, with status and error),
    faces.parquet, instructions/ (JSON per image), instructions.parquet, xmp/
    (Camera Raw settings for Lightroom: sidecars for RAWs, copies with the
    settings inside for DNG/JPEG/TIFF/PNG), the exports, equipment.parquet
    (sensor dust, hot/dead/stuck photosites and focus misses per camera body),
    operators.parquet (per photographer), report.html and summary.json, then prints a
    summary. Corrupt or unsupported files become failed rows; the rest of the
    shoot is processed. Rerunning into the same folder reuses finished work;
    one run at a time writes into a folder, and a folder holds one shoot under
    one chart (--force replaces it).
    """
    from tqdm import tqdm

    from pipeline.kernel.run import RunSettings, process_shoot
    from pipeline.outputs.verify import ExportMismatchError

    _exit_on_sigterm()

    settings = RunSettings(shoot_dir=shoot, out_dir=out_dir, executor=executor, workers=workers, threads=threads,
                           ray_address=ray_address, graph_path=graph_path, device=device, chart=chart,
                           shoot_id=shoot_id, only=only, force=force, wait=wait, photographer=photographer,
                           photographers_file=photographers_file, follow_external_symlinks=follow_external_symlinks,
                           raw_jpeg_pairs=raw_jpeg_pairs, photographer_rejects=photographer_rejects,
                           photographer_picks=photographer_picks)
    quiet = is_quiet()
    if dry_run:
        try:
            plan = dry_run_summary(settings)
        except ConfigError as exc:
            raise ConfigProblem(exc) from None
        if as_json:
            click.echo(json.dumps(plan, indent=2, ensure_ascii=False))
        elif not quiet:
            _print_dry_run(plan)
        sys.exit(EXIT_OK)
    bars: list[tqdm] = []
    disable = True if quiet else (None if progress is None else not progress)

    phases = iter(["analysing", "rendering", "finishing"])

    def on_phase(name: str, n: int) -> None:
        if bars:
            bars.pop().close()
        if name == "plan_retouch":
            return
        desc = next(phases, name)
        if n:
            bars.append(tqdm(total=n, unit="img", desc=desc, disable=disable, file=sys.stderr, dynamic_ncols=True))

    def on_record(record) -> None:  # noqa: ANN001
        if bars:
            bars[-1].update(1)
            if record.status == "failed":
                bars[-1].set_postfix_str(f"failed: {record.source_path}", refresh=False)

    try:
        result = process_shoot(settings, on_phase=on_phase, on_record=on_record,
                               on_executor=lambda text: click.echo(f"executor: {text}", err=True))
    except ConfigError as exc:
        raise ConfigProblem(exc) from None
    except (OutOfSpace, ClusterLost) as exc:  # the machine, not the input or a bug: no traceback
        raise RunStopped(str(exc)) from None
    except ExportMismatchError as exc:
        raise InternalProblem(str(exc)) from None
    finally:
        while bars:
            bars.pop().close()
    if as_json:
        click.echo(json.dumps(result.summary(), indent=2, ensure_ascii=False))
    elif not quiet:
        _print_summary(result.summary())
    sys.exit(EXIT_FILES_FAILED if result.failed else EXIT_OK)


def _exit_on_sigterm() -> None:
    """SIGTERM (``kill``, a service manager, ``timeout``) ends the run as Ctrl-C does: through the
    ``finally`` blocks that release the output folder and shut the embedded Ray down, instead of
    leaving its processes behind."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def dry_run_summary(settings: object) -> dict:
    """What ``process`` would do with ``settings``: graph, chart and settings checked, the shoot walked.

    Nothing is decoded and nothing is written (the output folder is not created).

    Raises
    ------
    ConfigError
        As ``process`` would, before any work.
    """
    from pipeline.kernel.ingest import scan_shoot
    from pipeline.kernel.outdir import pairs_policy, picks_policy, read_identity, rejects_policy
    from pipeline.kernel.run import prepare

    graph, context = prepare(settings)  # type: ignore[arg-type]
    earlier = read_identity(context.out_dir)
    pairs = pairs_policy(context.out_dir, settings.raw_jpeg_pairs, earlier)  # type: ignore[attr-defined]
    rejects = rejects_policy(context.out_dir, settings.photographer_rejects, earlier)  # type: ignore[attr-defined]
    picks = picks_policy(context.out_dir, settings.photographer_picks, earlier)  # type: ignore[attr-defined]
    shoot = scan_shoot(settings.shoot_dir, follow_external_symlinks=settings.follow_external_symlinks,  # type: ignore[attr-defined]
                       pairs=pairs, rejects=rejects, picks=picks)
    return {
        "dry_run": True,
        "shoot": str(shoot.root),
        "out": str(context.out_dir),
        "chart": context.chart_name,
        "stages": [s.name for s in graph.stages],
        "would_process": [{"source_path": t.source_path, "format": t.format, "kind": str(t.source_kind),
                           "bytes": t.file_size, "export_stem": t.stem,
                           **({"turned_by_xmp": t.orientation} if _turned(t) else {})} for t in shoot.tasks],
        "duplicates": [{"source_path": d.source_path, "duplicate_of": d.duplicate_of} for d in shoot.duplicates],
        "skipped": [{"source_path": s.source_path, "reason": s.reason} for s in shoot.skipped],
        "skipped_by_reason": dict(Counter(s.reason for s in shoot.skipped)),
        "photographer_picks": picks,
        "photographer_picked": shoot.picked,
    }


def _turned(task: object) -> bool:
    """Whether a RAW's XMP turns it (the decode would develop it in another turn than the file's: its header read,
    nothing decoded)."""
    orientation = getattr(task, "orientation", None)
    if orientation is None:
        return False
    from pipeline.imaging.decode import develop_flip, open_raw
    from pipeline.kernel.errors import InputError

    try:
        with open_raw(task.path) as raw:  # type: ignore[attr-defined]
            return develop_flip(raw, orientation) is not None
    except (InputError, OSError):
        return False  # (the run says what is wrong with the file)


def _print_dry_run(plan: dict) -> None:
    echo = click.echo
    echo(f"dry run: nothing decoded or written; chart {plan['chart']}, out {plan['out']}")
    echo(f"would process {len(plan['would_process'])} files:")
    for t in plan["would_process"]:
        turn = f", turned to orientation {t['turned_by_xmp']} by its XMP" if t.get("turned_by_xmp") else ""
        echo(f"  {_printable(t['source_path'])} ({t['format']}, {t['bytes']} bytes{turn}) -> {t['export_stem']}")
    if plan["duplicates"]:
        echo("duplicates (would be processed once):")
        for d in plan["duplicates"]:
            echo(f"  {_printable(d['source_path'])} = {_printable(d['duplicate_of'])}")
    if plan["skipped"]:
        echo("would skip:")
        for s in plan["skipped"]:
            echo(f"  {_printable(s['source_path'])}: {s['reason']}")
    _echo_no_picks(plan)


def _count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one: "1 image", "0 faces"."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _echo_no_picks(s: dict) -> None:
    """Say that a shoot asked to be developed by its picks has none (and is developed whole)."""
    picks = s.get("photographer_picks", "all")
    if picks != "all" and not s.get("photographer_picked"):
        what = ("picked (a P flag, a tag)" if picks == "only" else f"picked or rated {picks} stars or more"
                if picks.isdigit() else f"picked or labelled {picks[len(LABEL_PICKS):].strip()}")
        click.echo(f"--photographer-picks {picks}: no frame is {what}: every frame developed")


def _printable(text: str) -> str:
    """A file name on one terminal line: control characters (a newline in a name) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _print_summary(s: dict) -> None:
    echo = click.echo
    if not s["files"] and not s["skipped"]:
        echo(f"no files found in {s['shoot']}")
    echo(f"processed {s['processed']} files in {s['seconds']:.1f} s: {s['ok']} ok, {len(s['failed'])} failed, "
         f"{len(s['duplicates'])} duplicates, {len(s['skipped'])} skipped")
    if s["failed"]:
        echo("failed:")
        for f in s["failed"]:
            echo(f"  {_printable(f['source_path'])}: {f['error']}")
            if f.get("developed_instead"):
                echo(f"    its camera JPEG {_printable(f['developed_instead'])} was developed in its place "
                     "(the RAW+JPEG pair's other file)")
            elif f.get("pair_jpeg_skipped"):
                echo(f"    its camera JPEG {_printable(f['pair_jpeg_skipped'])} was skipped as its RAW+JPEG pair: "
                     "--raw-jpeg-pairs both develops it")
    if s.get("turned_by_xmp"):
        n = s["turned_by_xmp"]
        whose = f"{n} RAWs developed in the turn their" if n != 1 else "1 RAW developed in the turn its"
        echo(f"photographer's turns: {whose} XMP states (tiff:Orientation), not the file's own")
    if s.get("photographer_culling"):
        n = s["photographer_culling"]
        frames = f"{n} frames" if n != 1 else "1 frame"
        echo(f"photographer's culling: {frames} rated, labelled or tagged (in an XMP, or in the camera; kept in the "
             "instructions and XMP until a reviewer decides)")
    _echo_no_picks(s)
    if s["duplicates"]:
        echo("duplicates (processed once):")
        for d in s["duplicates"]:
            echo(f"  {_printable(d['source_path'])} = {_printable(d['duplicate_of'])}")
    if s.get("verdicts"):
        merged = s.get("merged_into_brackets") or 0
        echo("plan: " + ", ".join(f"{n} {v}" + (f" ({merged} merged into their brackets)" if v == "reject" and merged
                                                 else "") for v, n in sorted(s["verdicts"].items()))
             + f"; {_count(s['faces_to_brighten'], 'face')} to brighten in "
               f"{_count(s['images_with_faces_to_brighten'], 'image')}"
             + (f"; {_count(s['faces_blurred'], 'face')} blurred in {_count(s['images_with_faces_blurred'], 'image')}"
                if s.get("faces_blurred") else "")
             + (f"; {_count(s['red_eyes'], 'red eye')} taken out in {_count(s['images_with_red_eyes'], 'image')}"
                if s.get("red_eyes") else "")
             + (f"; {s['exports']} files exported" if s.get("exports") else ""))
    if s.get("delivered_smaller"):
        n = s["images_delivered_smaller"]
        counts = ", ".join(f"{k} {name}" for name, k in sorted(s["delivered_smaller"].items()))
        echo(f"delivered smaller than asked: {counts} (in {n} image{'s' if n != 1 else ''}; the originals are too "
             "small to fill the box within the chart's max_upscale: the crops' reasons give the sizes)")
    if s.get("to_confirm"):
        n = s["images_to_confirm"]
        echo("to confirm: " + ", ".join(f"{k} {kind.replace('_', ' ')}" for kind, k in sorted(s["to_confirm"].items()))
             + f" (in {n} image{'s' if n != 1 else ''}; proposed, not applied until accepted: `postprod review OUT`, "
             "filter 'to confirm')")
    if s.get("replanned_not_rendered"):
        n = s["replanned_not_rendered"]
        echo(f"{n} image{'s' if n > 1 else ''} to deliver have no exports: re-planned differently, not rendered "
             "(--only plan); run `postprod process` again without --only to render them")
    if s.get("decisions_not_rendered"):
        n = len(s["decisions_not_rendered"])
        echo(f"review decisions made during this run on {n} image{'s' if n > 1 else ''} are in the instructions "
             "but not yet in the exports: run `postprod process` again to render them")
    if s.get("equipment"):
        e = s["equipment"]
        names = {"dust": ("dust spot", "dust spots"), "hot_pixel": ("hot photosite", "hot photosites"),
                 "dead_pixel": ("dead photosite", "dead photosites"), "stuck_pixel": ("stuck photosite", "stuck photosites"),
                 "focus_miss": ("focus miss", "focus misses")}
        echo("equipment: " + ", ".join(f"{n} {names.get(k, (k, k))[n > 1]}" for k, n in sorted(e.items()))
             + " (equipment.parquet, report.html)")
    if s.get("lens_corrections"):
        lens = s["lens_corrections"]
        done = sum(lens["corrected"].values())
        parts = [f"{done} frame{'s' if done != 1 else ''} corrected from their profiles ("
                 + ", ".join(f"{name}: {n}" for name, n in sorted(lens["corrected"].items())) + ")"] if done else []
        parts += [f"{n} not: {why}" for why, n in sorted(lens["not_corrected"].items(), key=lambda kv: -kv[1])]
        echo("lens: " + _printable("; ".join(parts)))  # (the lens names are the files' own text)
    if s.get("keystones"):
        n = s["keystones"]
        whose = "frame's" if n == 1 else "frames'"
        echo(f"keystone: {n} {whose} converging verticals undone")
    if s.get("reused_from_earlier_run"):
        echo(f"reused from an earlier run: {s['reused_from_earlier_run']} image-steps")
    if s["skipped_by_reason"]:
        echo("skipped: " + ", ".join(f"{n} {reason}" for reason, n in sorted(s["skipped_by_reason"].items())))
    echo(f"outputs: {s['out']}")


@main.command()
@click.argument("out_dir", metavar="OUT", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--shoot", "shoot_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The shoot folder, when it moved since processing [default: the one in manifest.parquet].")
@click.option("--executor", type=click.Choice(["ray", "local"]), default="local", show_default=True,
              help="local: in-process (quickest for a few images); ray: parallel workers.")
@click.option("--workers", type=int, default=None, help="Parallel workers for the ray executor [default: all CPUs].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for each image's work with the local executor [default: every CPU this process may use].")
@click.option("--graph", "graph_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The stage graph the folder was processed with [default: the bundled one].")
def render(out_dir: Path, shoot_dir: Path | None, executor: str, workers: int | None, threads: int | None,
           graph_path: Path | None) -> None:
    """Re-render the exports of OUT whose review decisions changed.

    After `postprod review` (changed amounts, crops, rejected corrections),
    renders again exactly the images whose exports are stale, with the chart
    the folder was processed with; every other export, and the analysis, are
    reused. Same as `postprod process SHOOT --out OUT --only render`.
    """
    from pipeline.kernel.run import RunSettings, process_shoot
    from pipeline.outputs.shoot import RUN_CHART_DIR, read_run_settings

    try:
        shoot, shoot_id, chart = read_run_settings(out_dir)
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from None
    if chart is None:
        raise click.UsageError(f"{out_dir / RUN_CHART_DIR} holds no chart: run `postprod process` into {out_dir} "
                               "again (with --chart), then render")
    settings = RunSettings(shoot_dir=shoot_dir or shoot, out_dir=out_dir, executor=executor, workers=workers,
                           threads=threads, graph_path=graph_path, chart=chart, shoot_id=shoot_id, only="render")
    try:
        result = process_shoot(settings)
    except ConfigError as exc:
        raise ConfigProblem(exc) from None
    names = result.rendered
    click.echo(f"re-rendered {len(names)} image(s) in {result.seconds:.1f} s"
               + (": " + ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") if names else
                  " (every export was up to date)"))
    sys.exit(EXIT_FILES_FAILED if result.failed else EXIT_OK)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chart", default=None, help="Chart to plan with [default: the graph's, 'base'].")
@click.option("--graph", "graph_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Stage graph YAML [default: the bundled one].")
def inspect(file: Path, chart: str | None, graph_path: Path | None) -> None:
    """Print one file's metadata, measurements, faces and plan as JSON (nothing is written)."""
    from pipeline.kernel.graph import load_graph
    from pipeline.kernel.ingest import file_culling, hash_file, sniff_format
    from pipeline.kernel.records import MANIFEST_COLUMNS, SourceTask, Status, record_to_json
    from pipeline.kernel.run import resolve_chart
    from pipeline.kernel.runner import Runner
    from pipeline.kernel.stage import RunContext

    with tempfile.TemporaryDirectory() as tmp:
        try:
            graph = load_graph(graph_path)
            # Measure and plan only: nothing after the plan (rendering), nothing that writes files.
            names = [s.name for s in graph.stages]
            last_plan = max((i for i, s in enumerate(graph.stages) if s.cls.scope == "shoot"), default=len(names))
            graph = graph.subset({s.name for s in graph.stages[: last_plan + 1] if not s.cls.writes_files})
            context = RunContext(shoot_dir=file.resolve().parent, out_dir=Path(tmp),
                                 chart=resolve_chart(graph, chart), shoot_id=file.resolve().parent.name)
            for bound in graph.stages:
                bound.build(context).preflight()
        except ConfigError as exc:
            raise ConfigProblem(exc) from None
        digest, head = hash_file(file)
        fmt, kind = sniff_format(head, file.suffix)
        task = SourceTask(path=file.resolve(), source_path=file.name, content_hash=digest,
                          file_size=file.stat().st_size, format=fmt, source_kind=kind, seq=1, stem=file.stem)
        record = None
        for segment in graph.segments():
            if segment.scope == "shoot":
                if record.status is Status.OK:
                    segment.stages[0].build(context).process_shoot([record])
            else:
                record = Runner(segment, context).run(task, record)
    # The manifest's columns, flat, then the side tables (faces, operations).
    nested = record_to_json(record)
    data = {c.name: (nested[c.group][c.attr] if c.group else nested[c.attr]) for c in MANIFEST_COLUMNS}
    data.update({k: nested[k] for k in ("faces", "operations", "exports")})
    # The photographer's culling as a run's scan reads it (a sidecar beside the file, its XMP, the camera's stars).
    culling = file_culling(file.resolve(), head)
    data["photographer_culling"] = None if culling is None else {
        "rating": culling.rating, "label": culling.label, "keywords": list(culling.keywords), "flag": culling.flag,
        "rejected": culling.rejected, "read_from": culling.source}
    lens = context.chart.chart.lens if context.chart is not None else None
    if (lens is not None and lens.asked and record.status == "ok"
            and not any(o["kind"] == "lens_correction" for o in data["operations"])):
        from pipeline.planning.rules.lens import why_lens_left

        data["lens_not_corrected"] = why_lens_left(record, lens)  # what the chart asked, and why not
    click.echo(json.dumps(data, indent=2, default=str))
    sys.exit(EXIT_OK if record.status == "ok" else EXIT_FILES_FAILED)


@main.command()
@click.option("--graph", "graph_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Stage graph YAML [default: the bundled one].")
def describe(graph_path: Path | None) -> None:
    """Print the stage graph: each stage's inputs, outputs, resources and parameters."""
    from pipeline.kernel.graph import describe as describe_graph
    from pipeline.kernel.graph import load_graph

    try:
        click.echo(describe_graph(load_graph(graph_path)))
    except ConfigError as exc:
        raise ConfigProblem(exc) from None


@main.command()
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=Path("demo/shoot"),
              show_default=True, help="Where to build the demo shoot.")
@click.option("--shared-raw", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of real RAW files to add [default: $POSTPROD_TESTDATA/raw or ../shared/data/raw].")
def demo_shoot(dest: Path, shared_raw: Path | None) -> None:
    """Build the demo shoot: real photos written as real DNG files, plus the shared
    data's real camera RAWs and group photos when that folder exists (one of them
    photographed with a shade over three faces: faces to brighten)."""
    from pipeline.cli.demo import build_demo_shoot

    if shared_raw is None:
        base = Path(os.environ.get("POSTPROD_TESTDATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
        shared_raw = base / "raw"
    faces = shared_raw.parent / "faces" / "pascal_voc"
    files = build_demo_shoot(dest, shared_raw if shared_raw.is_dir() else None, faces if faces.is_dir() else None)
    kinds = Counter(p.suffix.lower() for p in files)
    click.echo(f"demo shoot: {dest} ({len(files)} files: " + ", ".join(f"{n} {k or 'other'}" for k, n in sorted(kinds.items())) + ")")


def _attach_groups() -> None:
    from pipeline.cli.charts import charts
    from pipeline.cli.models import models
    from pipeline.cli.operators import operators
    from pipeline.cli.review import review

    main.add_command(models)
    main.add_command(operators)
    main.add_command(review)
    main.add_command(charts)


_attach_groups()


def run() -> None:  # pragma: no cover - console entry point
    main()


if __name__ == "__main__":  # pragma: no cover
    main()
