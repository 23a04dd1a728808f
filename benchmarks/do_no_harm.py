"""Do no harm on photos nothing was tuned on: what postprod would change in pictures already right as they are.

The truth is the photos themselves. Published or approved photographs (a
client's past deliveries, a public-domain collection, a photographer's
portfolio) are taken as right as delivered, as the accuracy benchmark takes its
published photos (``benchmarks/accuracy.py``'s "do no harm" rows). This script
runs postprod's analysis and plan on a folder of them (the default graph up to
the plan: nothing is rendered or exported) and counts what the plan would do to
them anyway:

- exposure: corrections within 0.3 EV (the accuracy benchmark's do-no-harm
  bar), and of 1 EV or more (a stop: what a retoucher sees at a glance);
- white balance: shifts within the chart's tolerance, and of 50 mired or more,
  with and without a colour flag for a retoucher;
- straightening applied by the renderer, proposed to a person, and told a retoucher;
- faces given a lift (the renderer's, or told a retoucher): in a photo right as it is, every lift is on a
  face as it was meant to look (the decision a retoucher trusts least);
- photos sent to a retoucher for anything.

It prints one line per photo (the big changes first) and the table. Nothing
in it is fitted: it is a check, to run on photos of a client's kind before
trusting a chart with their shoots, and on new photos before calling a rule
right (the immich-app/test-assets collection, public domain, was one).

    python benchmarks/do_no_harm.py FOLDER [--chart base] [--work DIR] [--report PATH [--about TEXT]]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import COLOUR_CHECKS, analysis_graph, machine  # noqa: E402

#: The accuracy benchmark's do-no-harm bar, and what a retoucher sees at a glance (its diagnostic rows).
NO_HARM_EV, BIG_EV = 0.3, 1.0
BIG_MIRED = 50.0


@dataclass
class Photo:
    """What the plan would do to one photo."""

    name: str
    ev: float = 0.0  # exposure correction the renderer applies (+ = brighter)
    proposed_ev: float = 0.0  # an exposure correction proposed to a person, the renderer's once accepted
    proposed_mired: float = 0.0  # a white-balance correction proposed to a person, the same
    proposed_lift: float = 0.0  # a backlit frame's shadows lift proposed to a person, the same (EV)
    mired: float = 0.0  # white-balance shift the renderer applies (+ = warmer)
    angle: float | None = None  # straightening angle, applied, proposed or told
    angle_applied: bool = False
    angle_proposed: bool = False  # proposed to a person, the renderer's once accepted (straighten.confirm_turns)
    flags: list[str] = field(default_factory=list)  # the checks a retoucher is sent to
    lifts: list[float] = field(default_factory=list)  # faces given a lift, applied or told a retoucher (EV)

    @property
    def colour_flagged(self) -> bool:
        return any(f in COLOUR_CHECKS for f in self.flags)


def decisions(out: Path) -> list[Photo]:
    """The plan's decisions per decoded photo of an output folder (its manifest and instruction tables)."""
    import pyarrow.parquet as pq

    photos = {r["source_path"]: Photo(r["source_path"]) for r in pq.read_table(
        out / "manifest.parquet", columns=["source_path", "status"]).to_pylist() if r["status"] == "ok"}
    for r in pq.read_table(out / "instructions.parquet",
                           columns=["source_path", "kind", "params_json", "applied_by"]).to_pylist():
        p = photos.get(r["source_path"])
        if p is None:
            continue
        params = json.loads(r["params_json"] or "{}")
        renderer = r["applied_by"] == "renderer"
        if r["kind"] == "exposure" and renderer:
            p.ev += float(params.get("ev", 0.0))
        elif r["kind"] == "exposure" and params.get("render_on_accept"):
            p.proposed_ev += float(params.get("ev", 0.0))
        elif r["kind"] == "white_balance" and renderer:
            p.mired += float(params.get("mired_shift", 0.0))
        elif r["kind"] == "white_balance" and params.get("render_on_accept"):
            p.proposed_mired += float(params.get("mired_shift", 0.0))
        elif r["kind"] == "lift_shadows":
            p.proposed_lift += float(params.get("ev", 0.0))
        elif r["kind"] == "straighten":
            p.angle, p.angle_applied = float(params.get("angle_deg", 0.0)), renderer
            p.angle_proposed = bool(params.get("render_on_accept"))
        elif r["kind"] == "brighten_face":
            p.lifts.append(float(params.get("ev", 0.0)))
        elif r["kind"] in ("flag", "reject"):
            p.flags.append(str(params.get("check", r["kind"])))
    return sorted(photos.values(), key=lambda p: p.name)


def table(photos: list[Photo], tolerance_mired: float) -> list[str]:
    """The counts, as Markdown rows."""
    n = len(photos)

    def row(label: str, k: int) -> str:
        return f"| {label} | {k} of {n} ({100 * k / max(n, 1):.0f} %) |"

    return [
        "| what the plan would do to photos right as they are | photos |", "|---|---|",
        row(f"exposure left within {NO_HARM_EV} EV (the accuracy benchmark's do-no-harm bar)",
            sum(abs(p.ev) <= NO_HARM_EV + 1e-9 for p in photos)),
        row(f"exposure changed by {BIG_EV:g} EV or more", sum(abs(p.ev) >= BIG_EV - 1e-9 for p in photos)),
        row("an exposure change proposed to a person, not applied (the renderer's once accepted)",
            sum(p.proposed_ev != 0.0 for p in photos)),
        row(f"white balance left within the chart's {tolerance_mired:g} mired",
            sum(abs(p.mired) <= tolerance_mired + 1e-9 for p in photos)),
        row(f"white balance shifted by {BIG_MIRED:g} mired or more, no colour flag",
            sum(abs(p.mired) >= BIG_MIRED - 1e-9 and not p.colour_flagged for p in photos)),
        row(f"white balance shifted by {BIG_MIRED:g} mired or more, flagged",
            sum(abs(p.mired) >= BIG_MIRED - 1e-9 and p.colour_flagged for p in photos)),
        row("a white-balance change proposed to a person, not applied (the renderer's once accepted)",
            sum(p.proposed_mired != 0.0 for p in photos)),
        row("a lift of a backlit frame's shadows proposed to a person (the renderer's once accepted)",
            sum(p.proposed_lift != 0.0 for p in photos)),
        row("turned by the renderer", sum(p.angle is not None and p.angle_applied for p in photos)),
        row("a straightening proposed to a person, not applied (the renderer's once accepted)",
            sum(p.angle is not None and p.angle_proposed for p in photos)),
        row("a straightening told a retoucher by hand",
            sum(p.angle is not None and not p.angle_applied and not p.angle_proposed for p in photos)),
        row("a face given a lift (applied, or told a retoucher)", sum(bool(p.lifts) for p in photos)),
        row("sent to a retoucher for anything (a flag)", sum(bool(p.flags) for p in photos)),
    ]


def lines(photos: list[Photo]) -> list[str]:
    """One line per photo, the largest change first."""
    def size(p: Photo) -> float:
        return max(abs(p.ev) / BIG_EV, abs(p.mired) / BIG_MIRED)

    out = []
    for p in sorted(photos, key=size, reverse=True):
        how = "applied" if p.angle_applied else "proposed" if p.angle_proposed else "told"
        turn = "" if p.angle is None else f"  turn {p.angle:+.2f} deg {how}"
        flags = f"  flags: {', '.join(sorted(set(p.flags)))}" if p.flags else ""
        proposed = f" ({p.proposed_ev:+.2f} proposed)" if p.proposed_ev else ""
        white = f" ({p.proposed_mired:+.0f} proposed)" if p.proposed_mired else ""
        lift = f"  shadows {p.proposed_lift:+.2f} EV proposed" if p.proposed_lift else ""
        lift += f"  faces lifted {', '.join(f'{ev:+.2f}' for ev in p.lifts)} EV" if p.lifts else ""
        out.append(f"  {p.name[:48]:48s} exposure {p.ev:+5.2f} EV{proposed}  white {p.mired:+6.1f} mired{white}{lift}"
                   f"{turn}{flags}")
    return out


def postprod(*args: str, checkout: Path = ROOT) -> subprocess.CompletedProcess:
    """The postprod CLI of this checkout (or another's, for a before/after in one run), as a user runs it, its
    output captured."""
    path = os.pathsep.join([str(checkout), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "PYTHONPATH": path}
    # -P: ``python -m`` would put the working directory ahead of PYTHONPATH (this checkout's code, run from here).
    return subprocess.run([sys.executable, "-P", "-m", "pipeline.cli", *args], env=env, capture_output=True,
                          text=True)


def run(folder: Path, chart: str, work: Path, only_plan: bool = False, checkout: Path = ROOT) -> Path:
    """postprod's analysis and plan of ``folder`` into ``work/out`` (local executor, nothing exported);
    ``only_plan``: re-plan what an earlier run into ``work`` analysed, under ``chart``; ``checkout``: the code
    that runs (this one by default)."""
    work.mkdir(parents=True, exist_ok=True)
    graph = analysis_graph(work / "graph.yaml")
    out = work / "out"
    done = postprod("process", str(folder), "--out", str(out), "--graph", str(graph), "--chart", chart,
                    "--executor", "local", "--force", "--no-progress", "-q", *(["--only", "plan"] if only_plan else []),
                    checkout=checkout)
    if done.returncode not in (0, 3):  # 3: some files failed (counted out, named in the manifest)
        raise SystemExit(f"postprod process exited {done.returncode}:\n{done.stderr[-2000:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="photos right as they are (published, approved, delivered)")
    ap.add_argument("--chart", default="base", help="chart name or YAML path (default base)")
    ap.add_argument("--work", type=Path, help="keep the analysis here (default: a temporary folder)")
    ap.add_argument("--report", type=Path, help="also write the table and the lines as Markdown to this file")
    ap.add_argument("--about", default="", help="with --report: a paragraph on where the photos come from")
    args = ap.parse_args(argv)
    from charts.loader import load_chart

    tolerance = load_chart(args.chart).chart.white_balance.tolerance_mired
    with tempfile.TemporaryDirectory(prefix="postprod-no-harm-") as tmp:
        work = args.work or Path(tmp)
        photos = decisions(run(args.folder.resolve(), args.chart, work))
        print(f"{len(photos)} photos of {args.folder} under chart {args.chart}:")
        print("\n".join(lines(photos)))
        print()
        print("\n".join(table(photos, tolerance)))
    if args.report:
        command = (f"python benchmarks/do_no_harm.py {args.folder} --chart {args.chart} --report {args.report}"
                   + (" --about TEXT" if args.about else ""))
        write_report(args.report, photos, tolerance, args, command)
    return 0


def write_report(path: Path, photos: list[Photo], tolerance: float, args: argparse.Namespace, command: str) -> None:
    """The table and the per-photo lines as Markdown, with when, where and how they were made (atomic write)."""
    m = machine()
    text = "\n".join([
        "# Do no harm on photos nothing was tuned on", "",
        "Written by `benchmarks/do_no_harm.py --report`: what postprod's plan would change in photos taken as right "
        "as they are (the default graph up to the plan, nothing rendered). Nothing in postprod was fitted on them.",
        *(["", args.about] if args.about else []), "",
        f"- date: {m['date']}", f"- machine: {m['cpu']}, Python {m['python']}",
        f"- postprod: commit {m['postprod commit']}, code hash {m['code hash']}",
        f"- command: `{command}`", f"- photos: {len(photos)} decoded, chart `{args.chart}`", "",
        *table(photos, tolerance), "", "Each photo, the largest change first:", "", "```",
        *lines(photos), "```", "",
    ])
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    raise SystemExit(main())
