"""``postprod charts``: list, show and validate post-production charts.

Errors are printed as one ``file:line: key: message`` line per bad chart (the
format editors and CI logs link to) and exit with code 2, the CLI's code for
a configuration error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import click

from charts.loader import list_charts, load_chart
from charts.schema import JSON_SCHEMA_PATH, chart_json_schema_text, write_json_schema
from pipeline.kernel.errors import ConfigError, Location
from pipeline.kernel.yamlconf import load_yaml

EXIT_CONFIG = 2


def format_config_error(exc: ConfigError) -> str:
    """One line, ``file:line: key: message``; parts that are unknown are left out."""
    loc = exc.location or Location(None)
    head = str(loc.file) if loc.file else "<chart>"
    if loc.line is not None:
        head += f":{loc.line}"
    parts = [head]
    if loc.key:
        parts.append(loc.key)
    parts.append(" ".join(exc.message.split()))
    return ": ".join(parts)


class ChartConfigError(click.ClickException):
    """One or more invalid charts: one ``file:line: key: message`` line each, exit code 2."""

    exit_code = EXIT_CONFIG

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(format_config_error(e) for e in errors))

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), file=file or sys.stderr)


_search_dir_option = click.option(
    "--search-dir",
    "search_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to look chart names up in (repeatable; default: POSTPROD_CHART_PATH, then the bundled charts).",
)


def _dirs(search_dirs: tuple[Path, ...]) -> list[Path] | None:
    return list(search_dirs) if search_dirs else None


@click.group("charts")
def charts() -> None:
    """Post-production charts: a client's or a specialty's written standard."""


@charts.command("list")
@_search_dir_option
def list_command(search_dirs: tuple[Path, ...]) -> None:
    """List the charts available by name, with what each one extends."""
    entries = list_charts(_dirs(search_dirs))
    if not entries:
        click.echo("no charts found")
        return
    width = max(len(e.name) for e in entries)
    for entry in entries:
        try:
            data = load_yaml(entry.path).data
        except ConfigError as exc:
            click.echo(f"{entry.name:<{width}}  (unreadable: {format_config_error(exc)})")
            continue
        data = data if isinstance(data, dict) else {}
        parent = data.get("extends")
        parent_text = f" [extends {parent}]" if parent else ""
        click.echo(f"{entry.name:<{width}}  {data.get('description', '')}{parent_text}")


@charts.command("show")
@click.argument("name")
@_search_dir_option
def show_command(name: str, search_dirs: tuple[Path, ...]) -> None:
    """Print chart NAME (a name or a path) fully resolved, as YAML that `validate` accepts."""
    try:
        resolved = load_chart(name, _dirs(search_dirs))
    except ConfigError as exc:
        raise ChartConfigError([exc]) from None
    click.echo(resolved.to_yaml(), nl=False)


@charts.command("validate")
@click.argument("paths", nargs=-1, required=True)
@_search_dir_option
def validate_command(paths: tuple[str, ...], search_dirs: tuple[Path, ...]) -> None:
    """Check chart files (and the charts they extend); exit code 2 if any is invalid."""
    errors: list[ConfigError] = []
    for path in paths:
        try:
            resolved = load_chart(Path(path), _dirs(search_dirs))
        except ConfigError as exc:
            errors.append(exc)
            continue
        chain = " -> ".join(p.name for p in resolved.chain)
        click.echo(f"ok: {path} ({chain})")
    if errors:
        raise ChartConfigError(errors)


@charts.command("schema")
@click.option("--write", is_flag=True, help=f"Regenerate the committed {JSON_SCHEMA_PATH.name} instead of printing.")
def schema_command(write: bool) -> None:
    """Print the JSON Schema of a chart file (for editor completion), or regenerate the committed copy."""
    if write:
        click.echo(f"wrote {write_json_schema()}")
    else:
        click.echo(chart_json_schema_text(), nl=False)


@charts.command("learn")
@click.argument("approved", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The chart file to write (.yaml); its folder must exist.")
@click.option("--extends", "parent", default="base", show_default=True,
              help="The chart the learned one extends (a name or a path): every rule, crop and rendition but the "
                   "exposure target comes from it.")
@click.option("--client", default=None, help="The client's name (the chart's client and {client} naming token).")
@click.option("--description", default=None, help="The chart's description [default: says where it was learned].")
@click.option("--executor", type=click.Choice(["auto", "ray", "local"]), default="auto", show_default=True,
              help="How the photos are analysed, as `postprod process --executor`.")
@click.option("--workers", type=int, default=None, help="Parallel workers for the ray executor [default: all CPUs].")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--even-if-worse", is_flag=True,
              help="Write the chart even when, each photo left out of its own key, it would not bring the approved "
                   "photos nearer their target than the --extends chart does.")
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: when stderr is a terminal].")
@_search_dir_option
def learn_command(approved: Path, out_path: Path, parent: str, client: str | None, description: str | None,
                  executor: str, workers: int | None, force: bool, even_if_worse: bool, progress: bool | None,
                  search_dirs: tuple[Path, ...]) -> None:
    """Learn a client's exposure key from APPROVED, a folder of photos the client approved, into a chart.

    The photos are analysed as `postprod process` analyses a shoot (RAW or
    rendered, faces and all; nothing is rendered or exported) and metered
    under the --extends chart. The chart written extends it and sets only
    exposure.target_ev, to the mean of the middle half of the photos'
    readings (a median jumps between two clusters): the plan then leaves
    photos exposed like the client's approved ones as they are (a bright,
    airy brokerage or a candle-lit bistro) and corrects the rest towards
    them. The summary gives, with each photo's target learned from the
    others, how many of them the plan would leave within its tolerance
    before and after. At least 8 photos are needed; a few dozen say more.
    Photos that do not share a key (no client's style, just photographs)
    gain nothing from one: when the learned key would not bring them nearer
    (a smaller median offset, and no fewer within the tolerance) than the
    --extends chart's target, nothing is written and the exit code is 1
    (--even-if-worse writes it).
    """
    import datetime
    import os
    import shutil
    import tempfile

    from charts.learn import MIN_PHOTOS, chart_text, learn_key, summary_lines

    _check_out(out_path, force)
    try:
        resolved = load_chart(parent, _dirs(search_dirs))
    except ConfigError as exc:
        raise ChartConfigError([exc]) from None
    ex = resolved.chart.exposure
    parent_ref = _parent_ref(parent, resolved, out_path)

    work = Path(tempfile.mkdtemp(prefix="postprod-learn-"))
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    try:
        result = _analyse_approved(approved, work, resolved.chain[-1], executor, workers, progress)
        readings = [r.plan.exposure_ev + ex.target_ev for r in result.ok if r.plan.exposure_ev is not None]
        corrected = exposure_corrected(result.ok)  # (the records are read from the folder the re-plan rewrites)
        clipped = sum((r.exposure.clipped_highlights_pct or 0.0) >= CLIPPED_PCT for r in result.ok)
        for path, why in [(r.source_path, r.error) for r in result.failed] + [(s.source_path, s.reason)
                                                                              for s in result.shoot.skipped]:
            click.echo(f"left out: {path}: {why}", err=True)
        try:
            key = learn_key(readings, ex.target_ev, ex.tolerance_ev)
        except ValueError as exc:
            raise click.UsageError(f"{approved}: {exc}") from None
        lines = summary_lines(key, parent)
        if not key.helps and not even_if_worse:
            click.echo("\n".join(lines))
            click.echo(f"no chart written: these photos do not share an exposure key (spread {key.spread:.2f} "
                       f"EV); keyed on them, {parent} would not bring them nearer their target (--even-if-worse "
                       "writes it)", err=True)
            sys.exit(1)
        today = datetime.date.today().isoformat()

        def text(said: list[str]) -> str:
            return chart_text({"exposure": {"target_ev": key.target}}, extends=parent_ref, client=client,
                              learned_from=f"{key.n} photos in {approved}", date=today, lines=said,
                              description=description or f"{parent} with the exposure key of {key.n} approved "
                                                         f"photos ({approved.name}, {today})")

        _write_valid(tmp, text(lines), search_dirs)
        # What the plan itself does to the approved photos, under the parent and the learned chart (every
        # photo's own reading is in the key here: the lines above leave each out).
        after = _analyse_approved(approved, work, tmp, executor, workers, False, only="plan")
        lines.append(f"the plan corrects the exposure of {corrected} of them under {parent}, "
                     f"{exposure_corrected(after.ok)} under the learned chart")
        tmp.write_text(text(lines))
        os.replace(tmp, out_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        tmp.unlink(missing_ok=True)
    click.echo("\n".join(lines))
    if clipped * 2 >= key.n:
        click.echo(f"note: {clipped} of the {key.n} photos clip {CLIPPED_PCT:g} % of their pixels or more at white; "
                   "the meter cannot read how far over a clipped white is, so a look brighter than this one reads "
                   "short (benchmarks/LEARN.md: 1 and 1.5 EV brighter were learned as +0.30 and +0.75)", err=True)
    if key.n < 3 * MIN_PHOTOS:
        click.echo(f"note: {key.n} photos; a few dozen pin the key down better", err=True)
    click.echo(f"wrote {out_path}")


#: An approved photo with this share of its pixels clipped at white or more reads its look short (charts learn).
CLIPPED_PCT = 1.0


def _write_valid(path: Path, text: str, search_dirs: tuple[Path, ...]) -> None:
    """Write a learned chart and load it as a run would (its parent found as the run would find it)."""
    path.write_text(text)
    try:
        load_chart(path, _dirs(search_dirs))
    except ConfigError as exc:
        raise ChartConfigError([exc]) from None


def _check_out(out_path: Path, force: bool) -> None:
    """A learned chart's --out: a YAML file in an existing folder, not replaced without --force."""
    if out_path.suffix.lower() not in (".yaml", ".yml"):
        raise click.UsageError(f"--out {out_path}: a chart file ends in .yaml or .yml")
    if out_path.exists() and not force:
        raise click.UsageError(f"--out {out_path} exists; --force replaces it")
    if not out_path.parent.is_dir():
        raise click.UsageError(f"--out {out_path}: no folder {out_path.parent}")


def _parent_ref(parent: str, resolved: Any, out_path: Path) -> str:
    """How the learned chart names the chart it extends: a name as given, a path relative to the new chart."""
    import os

    if "/" in parent or parent.endswith((".yaml", ".yml")):
        return os.path.relpath(resolved.chain[-1], out_path.parent.resolve())
    return parent


def exposure_corrected(records: Any) -> int:
    """How many of ``records`` the plan gives an exposure correction."""
    return sum(any(str(op.kind) == "exposure" for op in r.operations) for r in records)


def _analyse_approved(approved: Path, work: Path, chart: Path, executor: str, workers: int | None,
                      progress: bool | None, only: str | None = None) -> Any:
    """Run the default graph's analysis and plan (nothing rendered or exported) on ``approved`` into ``work``."""
    import yaml
    from tqdm import tqdm

    from pipeline.cli.common import ConfigProblem
    from pipeline.kernel.graph import default_graph_path
    from pipeline.kernel.run import RunSettings, process_shoot

    graph_path = work / "graph.yaml"
    if not graph_path.exists():
        graph = yaml.safe_load(default_graph_path().read_text())
        graph["name"], graph["description"] = "learn", "The default graph's analysis and plan (charts learn)."
        graph["stages"] = [s for s in graph["stages"]
                           if s["stage"] not in ("inspect_equipment", "write_preview", "render", "export")]
        graph_path.write_text(yaml.safe_dump(graph, sort_keys=False))
    # Every approved file is read, a RAW+JPEG pair's JPEG too (what was approved may be either), and one a
    # sidecar says was rejected (it was approved since).
    settings = RunSettings(shoot_dir=approved, out_dir=work / "out", executor=executor, workers=workers,
                           graph_path=graph_path, chart=str(chart), only=only, force=only is not None,
                           raw_jpeg_pairs="both", photographer_rejects="process", photographer_picks="all")
    bar = tqdm(unit="img", desc="analysing", file=sys.stderr, dynamic_ncols=True,
               disable=None if progress is None else not progress)

    def on_phase(name: str, n: int) -> None:
        if name != "plan_retouch" and n:
            bar.reset(total=n)

    try:
        return process_shoot(settings, on_phase=on_phase, on_record=lambda _r: bar.update(1),
                             on_executor=lambda text: click.echo(f"executor: {text}", err=True) if only is None
                             else None)
    except ConfigError as exc:  # a model that cannot be had, a graph or setting `process` would refuse too
        raise ConfigProblem(exc) from None
    finally:
        bar.close()


@charts.command("learn-from-reviews")
@click.argument("outs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The chart file to write (.yaml); its folder must exist.")
@click.option("--extends", "parent", default=None,
              help="The chart the learned one extends [default: the chart the OUT folders were processed under].")
@click.option("--client", default=None, help="The client's name (the chart's client and {client} naming token).")
@click.option("--description", default=None, help="The chart's description [default: says where it was learned].")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--even-if-worse", is_flag=True,
              help="Write what was learned even when, each correction left out of its own target, it would not "
                   "bring the plan's corrections nearer what the reviewers wanted.")
@_search_dir_option
def learn_from_reviews_command(outs: tuple[Path, ...], out_path: Path, parent: str | None, client: str | None,
                               description: str | None, force: bool, even_if_worse: bool,
                               search_dirs: tuple[Path, ...]) -> None:
    """Learn a chart's exposure and warmth from what retouchers did to its corrections in OUT folders.

    Every exposure and white-balance correction a reviewer decided in the
    review app (accepted as planned, changed, marked done, or rejected: the
    image as shot) says where that image wanted the chart's target; pending
    ones say nothing. The chart written extends the folders' chart (or
    --extends) and moves exposure.target_ev, and the white balance's warm
    target (policy warm, warm_shift_mired 0-100), by the middle half's mean
    of what the reviewers changed: if they keep adding a third of a stop,
    or warming every correction by 20 mired, so does the next plan. Each
    is learned from at least 8 decided corrections, and is written only
    when, each correction judged against the target the others give, it
    brings the plan nearer what the reviewers wanted (a smaller median
    change and no fewer within the chart's tolerance); when neither is,
    nothing is written and the exit code is 1. A chart cannot ask for a
    cool white: reviewers who cool the corrections teach nothing there.
    """
    import datetime
    import os
    import sqlite3

    from charts.learn import (
        EXPOSURE_TARGET,
        MIN_PHOTOS,
        TARGET_RANGE_EV,
        TARGET_STEP_EV,
        WARM_SHIFT,
        chart_text,
        learn_key,
        review_lines,
        reviewed_readings,
    )
    from charts.schema import WhiteBalancePolicy
    from pipeline.kernel.outdir import read_identity
    from pipeline.outputs.decisions import reviewed_amounts

    _check_out(out_path, force)
    if parent is None:
        names = {getattr(read_identity(o), "chart", None) for o in outs}
        if len(names) != 1 or None in names:
            raise click.UsageError("the OUT folders were not processed under one known chart "
                                   f"({', '.join(sorted(str(n) for n in names))}): say which with --extends")
        (parent,) = names  # type: ignore[assignment]
    try:
        resolved = load_chart(str(parent), _dirs(search_dirs))
    except ConfigError as exc:
        raise ChartConfigError([exc]) from None
    ex, wb = resolved.chart.exposure, resolved.chart.white_balance
    warm = wb.warm_shift_mired if wb.policy is WhiteBalancePolicy.WARM else 0.0
    learnable = [("exposure", "ev", EXPOSURE_TARGET, ex.target_ev, ex.tolerance_ev, TARGET_RANGE_EV, TARGET_STEP_EV)]
    if wb.policy is not WhiteBalancePolicy.AS_SHOT:
        learnable.append(("white-balance", "mired_shift", WARM_SHIFT, warm, wb.tolerance_mired, (0.0, 100.0), 1.0))
    sections: dict[str, dict] = {}
    lines: list[str] = []
    decided = 0
    for what, param, setting, base, tolerance, bounds, step in learnable:
        try:
            amounts = [a for o in outs for a in reviewed_amounts(o, kind=what.replace("-", "_"), param=param)]
        except (OSError, sqlite3.Error) as exc:
            raise click.ClickException(f"cannot read the reviews of {', '.join(str(o) for o in outs)}: {exc}") from None
        decided += len(amounts)
        try:
            key = learn_key(reviewed_readings(amounts, base), base, tolerance, step=step, bounds=bounds)
        except ValueError:
            lines.append(f"{len(amounts)} {what} correction(s) decided: {setting.name} needs at least {MIN_PHOTOS}")
            continue
        counts = {"accepted as planned": sum(s != "rejected" and w == p for _, p, w, s in amounts),
                  "changed": sum(s != "rejected" and w != p for _, p, w, s in amounts),
                  "rejected": sum(s == "rejected" for _, p, w, s in amounts)}
        lines += review_lines(key, str(parent), counts, what, setting)
        if key.helps or even_if_worse:
            if setting is EXPOSURE_TARGET:
                sections["exposure"] = {"target_ev": key.target}
            else:
                sections["white_balance"] = {"policy": "warm" if key.target > 0 else "neutral",
                                             "warm_shift_mired": key.target}
        else:
            lines.append(f"  not learned: a target learned from these would not bring the plan nearer what the "
                         f"reviewers wanted ({setting.name} stays {setting.fmt.format(base)})")
    click.echo("\n".join(lines))
    if not decided:
        raise click.UsageError(f"no exposure or white-balance correction was decided in the review of "
                               f"{', '.join(str(o) for o in outs)}; learning a target needs at least {MIN_PHOTOS}")
    if not sections:
        click.echo("no chart written: nothing the reviewers did would move the plan nearer what they wanted "
                   "(--even-if-worse writes it)", err=True)
        sys.exit(1)
    today = datetime.date.today().isoformat()
    folders = ", ".join(o.name for o in outs) if len(outs) <= 3 else f"{len(outs)} shoots"
    text = chart_text(sections, extends=_parent_ref(str(parent), resolved, out_path), client=client,
                      learned_from=f"the reviews of {len(outs)} output folder(s) ({folders})", date=today, lines=lines,
                      description=description or f"{parent} as its reviewers corrected it ({folders}, {today})")
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    try:
        _write_valid(tmp, text, search_dirs)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"wrote {out_path}")
