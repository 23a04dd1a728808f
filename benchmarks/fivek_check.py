"""Exposure of FiveK renders with a known offset: the shared seven, and any others, nothing fitted on the others.

Afifi et al.'s exposure-correction set (mahmoudnafifi/Exposure_Correction, CC BY-NC-SA 4.0, test use only)
renders MIT-Adobe FiveK RAWs at relative exposures of -1.5, -1, 0, +1 and +1.5 EV with Adobe Camera Raw's
look, and names each file by it: ``aNNNN-<name>_N1.5.JPG`` is 1.5 EV under (it needs +1.5), ``_P1`` a stop
over (it needs -1.0), ``_0`` as shot (it needs nothing). The shared data holds seven of them
(``exposure/``), on which postprod's rendered meter was checked since issue 17 (ACCURACY.md's reference row:
"the shared FiveK files within 0.5 EV of their truth"); the repository's ``example_images/`` holds seven more
that no constant has seen. This script runs postprod as the accuracy benchmark does (the default graph up to
the plan, local executor, chart ``base``), the naive baseline (median metering to mid-grey) and, where
``rawtherapee-cli`` is installed, RawTherapee's auto exposure, on every such file of the folders given, and
prints per group (the shared files, the others) how many land within 0.5 EV of their truth, the median
|error|, the wrong signs and each correction. Nothing is fitted here.

    git clone https://github.com/mahmoudnafifi/Exposure_Correction /tmp/ec   # or any folder of such files
    python benchmarks/fivek_check.py --dir /tmp/ec/example_images [--write]

The shared folder (``$POSTPROD_TESTDATA/exposure``) is always read; a file of another folder with the same name
as a shared one counts once, as shared.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import accuracy_baselines as bl  # noqa: E402
from benchmarks._tables import cpu_model  # noqa: E402
from benchmarks.accuracy import (  # noqa: E402
    BASELINE_LONG_EDGE,
    MAIN_CHART,
    SIGN_MIN_EV,
    analysis_graph,
    postprod_decision,
)

OUT = ROOT / "benchmarks" / "FIVEK.md"
CACHE = Path(os.environ.get("POSTPROD_FIVEK_CACHE", Path.home() / ".cache" / "postprod" / "fivek_check"))
#: ``aNNNN-<name>_<N|P><stops>.JPG`` (or ``_0``): the offset the file was rendered at, by its name.
NAME = re.compile(r"^a\d{4}-.+_(?:(?P<sign>[NP])(?P<stops>\d+(?:\.\d+)?)|0)\.jpe?g$", re.IGNORECASE)
#: Within this many EV of the truth counts (issue 17's FiveK target); offsets of SIGN_MIN_EV or more are judged for
#: their sign, as in the accuracy benchmark.
WITHIN_EV = 0.5


def needed_ev(name: str) -> float | None:
    """The correction a FiveK render named ``name`` needs (+1.5 for ``_N1.5``, -1.0 for ``_P1``, 0 for ``_0``);
    None for a name not of that form."""
    m = NAME.match(name)
    if m is None:
        return None
    if m.group("sign") is None:
        return 0.0
    stops = float(m.group("stops"))
    return stops if m.group("sign").upper() == "N" else -stops


@dataclass
class Row:
    path: Path
    shared: bool
    truth: float
    ev: dict[str, float] = field(default_factory=dict)  # system -> correction (EV)


def collect(shared_dir: Path, dirs: list[Path]) -> list[Row]:
    """Every FiveK render of the shared folder and of ``dirs`` (a name met again counts once, as first met)."""
    rows: dict[str, Row] = {}
    for folder, shared in [(shared_dir, True)] + [(d, False) for d in dirs]:
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            truth = needed_ev(path.name)
            if truth is not None and path.name not in rows:
                rows[path.name] = Row(path, shared, truth)
    return list(rows.values())


def run_postprod(rows: list[Row], work: Path) -> None:
    """postprod's correction of each file: the accuracy benchmark's graph and chart, local executor."""
    from charts.loader import load_chart
    from pipeline.kernel.run import RunSettings, process_shoot

    shoot = work / "shoot"
    for folder in (shoot, work / "out"):
        if folder.exists():
            shutil.rmtree(folder)
    shoot.mkdir(parents=True)
    for r in rows:
        shutil.copyfile(r.path, shoot / r.path.name)
    settings = RunSettings(shoot_dir=shoot, out_dir=work / "out", executor="local",
                           graph_path=analysis_graph(work / "graph.yaml"), chart=MAIN_CHART, force=True)
    result = process_shoot(settings)
    target = load_chart(MAIN_CHART).chart.exposure.target_ev
    by_name = {Path(rec.source_path).name: rec for rec in result.records if rec.status == "ok"}
    for r in rows:
        rec = by_name.get(r.path.name)
        if rec is not None:
            r.ev["postprod"] = float(postprod_decision(rec, target).ev)


def run_baselines(rows: list[Row], rawtherapee: bool) -> None:
    """The naive baseline's correction, and RawTherapee's auto exposure (its render against the file)."""
    auto = bl.rawtherapee_cached([r.path for r in rows], CACHE, "auto") if rawtherapee else {}
    for r in rows:
        lin, _ = bl.read_linear_scaled(r.path, BASELINE_LONG_EDGE)
        r.ev["naive"] = bl.naive_exposure_ev(lin, True)
        if r.path in auto:
            after, _ = bl.read_linear_scaled(auto[r.path], BASELINE_LONG_EDGE)
            r.ev["rawtherapee"] = bl.exposure_change_ev(lin, after)


def table(rows: list[Row], systems: list[str]) -> list[str]:
    """One line per group and system: within 0.5 EV, median |error|, wrong signs, the corrections."""
    out = ["| files | system | within 0.5 EV of the truth | median \\|error\\| (EV) | wrong sign (\\|offset\\| >= 0.7) "
           "| corrections (truth) |", "|---|---|---|---|---|---|"]
    for label, group in (("shared (exposure/)", [r for r in rows if r.shared]),
                         ("others (no constant saw them)", [r for r in rows if not r.shared])):
        if not group:
            continue
        for s in systems:
            got = [(r, r.ev[s]) for r in group if s in r.ev]
            if not got:
                continue
            errors = [abs(ev - r.truth) for r, ev in got]
            within = sum(e <= WITHIN_EV + 1e-9 for e in errors)
            signed = [(r, ev) for r, ev in got if abs(r.truth) >= SIGN_MIN_EV]
            wrong = sum(ev * r.truth < 0 for r, ev in signed)
            listed = " ".join(f"{ev:+.2f} ({r.truth:+.1f})" for r, ev in got)
            out.append(f"| {label}, {len(got)} | {s} | {within} of {len(got)} | {statistics.median(errors):.2f} "
                       f"| {wrong} of {len(signed)} | {listed} |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, action="append", default=[], metavar="DIR",
                        help="a folder of FiveK renders named by their offset (repeatable)")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--no-rawtherapee", action="store_true", help="skip RawTherapee's auto exposure")
    parser.add_argument("--write", action="store_true", help=f"write the table to {OUT.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    shared = args.data / "exposure"
    if not shared.is_dir():
        raise SystemExit(f"no shared exposure folder at {shared} (set POSTPROD_TESTDATA)")
    started = time.perf_counter()
    rows = collect(shared, args.dir)
    print(f"{len(rows)} FiveK renders: {sum(r.shared for r in rows)} shared, {sum(not r.shared for r in rows)} others",
          file=sys.stderr)
    run_postprod(rows, CACHE / "work")
    rawtherapee = not args.no_rawtherapee and bl.have_rawtherapee()
    run_baselines(rows, rawtherapee)
    systems = ["postprod"] + (["rawtherapee"] if rawtherapee else []) + ["naive"]
    lines = table(rows, systems)
    print("\n".join(lines))
    if args.write:
        head = [
            "# FiveK renders with a known exposure offset", "",
            "Written by `benchmarks/fivek_check.py` (its docstring says what and why). Truth by name: `_N1.5` needs "
            "+1.5 EV, `_P1` -1.0, and so on; a correction is what the system would apply (postprod: the plan under "
            f"chart `{MAIN_CHART}`, capped at its 2 EV; RawTherapee: its auto exposure's change of the picture; "
            "naive: median metering to mid-grey). The shared files are the reference row of ACCURACY.md; the others "
            "are from the same set and no constant of postprod was fitted or checked on them.", "",
            f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- machine: {cpu_model()}, {os.cpu_count()} CPUs",
            "- command: `python benchmarks/fivek_check.py "
            + " ".join(f"--dir {d.name}" for d in args.dir) + f" --write` ({time.perf_counter() - started:.0f} s)",
            "", ""]
        OUT.write_text("\n".join(head + lines) + "\n")
        print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
