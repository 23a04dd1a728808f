"""The ``postprod`` command line.

Exit codes: 0 every file succeeded; 3 the run finished but some files failed
(see the summary and ``manifest.parquet``); 2 usage or configuration error
(nothing was processed); 1 an unexpected internal error.
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
from pipeline.kernel.errors import ConfigError

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_CONFIG = 2
EXIT_FILES_FAILED = 3


class ConfigProblem(click.ClickException):
    """A configuration error, shown without a traceback, exit code 2."""

    exit_code = EXIT_CONFIG

    def __init__(self, exc: ConfigError) -> None:
        super().__init__(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="postprod")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """postprod: measure every image of a shoot, apply the client's chart, write
    retouch instructions and standardized exports.

    Exit codes: 0 all files ok, 3 some files failed, 2 usage or configuration
    error, 1 internal error.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("shoot", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if missing; must be outside the shoot).")
@click.option("--chart", default=None,
              help="Chart name (see `postprod charts list`) or YAML path [default: the graph's, 'base'].")
@click.option("--shoot-id", default=None, help="Shoot id for names and metadata [default: the shoot folder's name].")
@click.option("--only", type=click.Choice(["plan"]), default=None,
              help="plan: re-plan an analysed shoot after a chart change, without decoding any pixels.")
@click.option("--executor", type=click.Choice(["auto", "ray", "local"]), default="auto", show_default=True,
              help="auto: in this process when the shoot is small enough to finish before Ray would start, Ray "
              "for larger shoots, with --workers N > 1 or a cluster address (the choice is printed); ray: parallel "
              "workers (embedded local Ray or --ray-address); local: in-process, one image at a time (debugging).")
@click.option("--workers", type=int, default=None,
              help="Parallel workers for the ray executor [default: all CPUs]; with auto, more than 1 picks Ray.")
@click.option("--ray-address", envvar="RAY_ADDRESS", default=None,
              help="Run on an existing Ray cluster (also read from RAY_ADDRESS); default: start a local Ray.")
@click.option("--graph", "graph_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Stage graph YAML [default: the bundled configs/default.yaml].")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Where detectors run; cuda falls back to cpu with a warning when unavailable.")
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: when stderr is a terminal].")
def process(shoot: Path, out_dir: Path, chart: str | None, shoot_id: str | None, only: str | None, executor: str,
            workers: int | None, ray_address: str | None, graph_path: Path | None, device: str,
            progress: bool | None) -> None:
    """Process the SHOOT folder into the --out folder.

    Writes manifest.parquet (one row per input file, with status and error),
    faces.parquet, instructions/ (JSON per image), instructions.parquet, xmp/
    (Camera Raw sidecars), the exports and summary.json, then prints a
    summary. Corrupt or unsupported files become failed rows; the rest of the
    shoot is processed. Rerunning into the same folder reuses finished work.
    """
    from tqdm import tqdm

    from pipeline.kernel.run import RunSettings, process_shoot

    settings = RunSettings(shoot_dir=shoot, out_dir=out_dir, executor=executor, workers=workers,
                           ray_address=ray_address, graph_path=graph_path, device=device, chart=chart,
                           shoot_id=shoot_id, only=only)
    bars: list[tqdm] = []
    disable = None if progress is None else not progress

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
    finally:
        while bars:
            bars.pop().close()
    _print_summary(result.summary())
    sys.exit(EXIT_FILES_FAILED if result.failed else EXIT_OK)


def _print_summary(s: dict) -> None:
    echo = click.echo
    if not s["files"] and not s["skipped"]:
        echo(f"no files found in {s['shoot']}")
    echo(f"processed {s['processed']} files in {s['seconds']:.1f} s: {s['ok']} ok, {len(s['failed'])} failed, "
         f"{len(s['duplicates'])} duplicates, {len(s['skipped'])} skipped")
    if s["failed"]:
        echo("failed:")
        for f in s["failed"]:
            echo(f"  {f['source_path']}: {f['error']}")
    if s["duplicates"]:
        echo("duplicates (processed once):")
        for d in s["duplicates"]:
            echo(f"  {d['source_path']} = {d['duplicate_of']}")
    if s.get("verdicts"):
        echo("plan: " + ", ".join(f"{n} {v}" for v, n in sorted(s["verdicts"].items()))
             + f"; {s['faces_to_brighten']} faces to brighten in {s['images_with_faces_to_brighten']} images"
             + (f"; {s['exports']} files exported" if s.get("exports") else ""))
    if s.get("reused_from_earlier_run"):
        echo(f"reused from an earlier run: {s['reused_from_earlier_run']} image-steps")
    if s["skipped_by_reason"]:
        echo("skipped: " + ", ".join(f"{n} {reason}" for reason, n in sorted(s["skipped_by_reason"].items())))
    echo(f"outputs: {s['out']}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chart", default=None, help="Chart to plan with [default: the graph's, 'base'].")
@click.option("--graph", "graph_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Stage graph YAML [default: the bundled one].")
def inspect(file: Path, chart: str | None, graph_path: Path | None) -> None:
    """Print one file's metadata, measurements, faces and plan as JSON (nothing is written)."""
    from pipeline.kernel.graph import load_graph
    from pipeline.kernel.ingest import hash_file, sniff_format
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
    data's real camera RAWs and group photos when that folder exists."""
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
    from pipeline.cli.review import review

    main.add_command(models)
    main.add_command(review)
    main.add_command(charts)


_attach_groups()


def run() -> None:  # pragma: no cover - console entry point
    main()


if __name__ == "__main__":  # pragma: no cover
    main()
