"""`postprod charts learn` against known truth: a client's look learned from some photos, judged on others.

A client whose deliveries sit away from photographs in general (a brokerage's
bright, airy rooms; a bistro's candle-lit tables) gets every photo "corrected"
towards the average by a chart that does not know the look. `charts learn`
reads the look off photos the client approved. Whether that works is measured
here on the accuracy corpus (``benchmarks/accuracy.py``, which must have run:
its cache holds the files), whose truth is known:

- a *look* is one of the corpus's exposure offsets: the client's approved photos
  are published photos developed that many EV brighter or darker (the rendered
  twins, RawTherapee's film curve);
- the split's sources that have a twin at that offset are halved, alternately by
  name: the first half's twins at the look are the approved folder `charts
  learn` reads; the second half are the client's new shoots;
- every rendered twin of those new-shoot sources (at the look, which needs
  nothing, and at the other offsets, which need the difference from it) is
  planned under the base chart and under the learned one, with the CLI a user
  runs (the default graph up to the plan).

Nothing is fitted here; the held-out split is the default. Prints one table:

    python benchmarks/learn_key.py [--split held_out] [--looks -1.5 -1 1 1.5] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_CACHE, machine  # noqa: E402
from benchmarks.do_no_harm import NO_HARM_EV, decisions, postprod, run  # noqa: E402

LEARN_MD = ROOT / "benchmarks" / "LEARN.md"
#: Looks a client's photos may have: far enough from photographs in general to matter, and offsets at which
#: at least 16 held-out sources have a twin (8 approved, 8 new).
LOOKS_EV = (-1.5, -1.0, 1.0, 1.5)


def link(items: list[dict], corpus: Path, folder: Path) -> None:
    folder.mkdir(parents=True)
    for i in items:
        src = corpus / i["file"]
        os.link(src, folder / f"{i['id']}{src.suffix}")


def planned(folder: Path, work: Path, chart: str, only_plan: bool) -> dict[str, float]:
    """Exposure correction (EV, + = brighter) the plan gives each file of ``folder`` under ``chart``."""
    return {Path(p.name).stem: p.ev for p in decisions(run(folder, chart, work, only_plan))}


def one_look(look: float, twins: dict[str, dict[float, dict]], corpus: Path, work: Path) -> dict:
    """Learn the look from half the sources that have it; plan the other half's twins under base and learned."""
    sources = sorted(s for s, by_ev in twins.items() if look in by_ev)
    approved, new = sources[0::2], sources[1::2]
    link([twins[s][look] for s in approved], corpus, work / "approved")
    chart = work / "learned.yaml"
    done = postprod("charts", "learn", str(work / "approved"), "--out", str(chart), "--extends", "base", "--even-if-worse",
               "--executor", "local", "--no-progress")
    if done.returncode != 0:
        raise SystemExit(f"postprod charts learn exited {done.returncode}:\n{done.stderr[-2000:]}{done.stdout}")
    target = float(re.search(r"target_ev: (-?[\d.]+)", chart.read_text())[1])
    within = re.search(r"within the [\d.]+ EV tolerance (\d+) -> (\d+) of (\d+)", done.stdout)
    frames = [i for s in new for i in twins[s].values()]
    link(frames, corpus, work / "frames")
    base = planned(work / "frames", work / "plan", "base", only_plan=False)
    learned = planned(work / "frames", work / "plan", str(chart), only_plan=True)
    at = [i for i in frames if i["truth"]["ev"] == look]
    off = [i for i in frames if i["truth"]["ev"] != look]

    def need(i: dict) -> float:  # what a frame needs to look like the client's approved photos
        return i["truth"]["ev"] - look

    return {
        "look": look, "approved": len(approved), "new": len(new), "target": target,
        "loo": (int(within[1]), int(within[2]), int(within[3])) if within else None,
        "at_n": len(at),
        "at_within": [sum(abs(d[i["id"]]) <= NO_HARM_EV + 1e-9 for i in at) for d in (base, learned)],
        "off_n": len(off),
        "off_median": [float(np.median([abs(d[i["id"]] - need(i)) for i in off])) for d in (base, learned)],
        "off_sign": [sum(d[i["id"]] * need(i) < 0 for i in off if abs(need(i)) >= 0.7) for d in (base, learned)],
        "off_big": sum(abs(need(i)) >= 0.7 for i in off),
    }


def table(rows: list[dict]) -> list[str]:
    out = ["| look (EV the approved photos were developed away from published) | approved / new-shoot sources | "
           "learned target_ev | approved, each left out: within tolerance (base -> learned) | new frames at the look "
           f"left within {NO_HARM_EV} EV (base -> learned) | new frames off the look: median \\|error\\| EV (base -> "
           "learned) | ... wrong sign where the need is >= 0.7 EV |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        loo = f"{r['loo'][0]} -> {r['loo'][1]} of {r['loo'][2]}" if r["loo"] else "—"
        out.append(f"| {-r['look']:+.1f} | {r['approved']} / {r['new']} | {r['target']:+.2f} | {loo} | "
                   f"{r['at_within'][0]} -> {r['at_within'][1]} of {r['at_n']} | "
                   f"{r['off_median'][0]:.2f} -> {r['off_median'][1]:.2f} (n={r['off_n']}) | "
                   f"{r['off_sign'][0]} -> {r['off_sign'][1]} of {r['off_big']} |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="held_out", choices=("held_out", "tuning"))
    ap.add_argument("--looks", type=float, nargs="+", default=list(LOOKS_EV),
                    help="the corpus offsets (truth EV: - = developed brighter) a client's look is made of")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the accuracy benchmark's cache")
    ap.add_argument("--write", action="store_true", help=f"write the table to {LEARN_MD.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    manifest = args.cache / "corpus" / "manifest.json"
    if not manifest.is_file():
        ap.error(f"no accuracy corpus in {args.cache}: run `python benchmarks/accuracy.py` first")
    corpus = manifest.parent
    items = json.loads(manifest.read_text())["items"]
    twins: dict[str, dict[float, dict]] = {}
    for i in items:
        if (i["split"] == args.split and i["domain"] == "rendered" and i.get("render") != "published"
                and i["set"] in ("exposure", "original")):
            twins.setdefault(i["source"], {})[float(i["truth"]["ev"])] = i
    start = time.perf_counter()
    rows = []
    for look in args.looks:
        with tempfile.TemporaryDirectory(prefix="learn-key-") as tmp:
            work = Path(tmp)
            rows.append(one_look(look, twins, corpus, work))
        print(f"  look {-look:+.1f} EV: target {rows[-1]['target']:+.2f} ({time.perf_counter() - start:.0f} s)",
              flush=True)
    lines = table(rows)
    print("\n".join(lines))
    if args.write:
        m = machine()
        head = ["# `postprod charts learn` against known truth", "",
                "Written by `benchmarks/learn_key.py` (see its docstring for how the truth is made). A client's look is",
                "published photos developed a known number of EV brighter (+) or darker (-); `charts learn` reads it",
                "off half the sources that have a twin at that offset, and every twin of the other half is planned",
                "under `base` and under the learned chart. A frame at the look needs nothing; one off it needs the",
                "difference. Errors in EV of scene light; the accuracy corpus's split, nothing fitted on it.", "",
                f"- date: {m['date']}; machine: {m['cpu']}, Python {m['python']}",
                f"- postprod: commit {m['postprod commit']}, code hash {m['code hash']}",
                f"- command: `python benchmarks/learn_key.py --split {args.split} --looks "
                + " ".join(f"{v:g}" for v in args.looks) + f" --write`: {(time.perf_counter() - start) / 60:.0f} min",
                ""]
        tmp_md = LEARN_MD.with_name(f".{LEARN_MD.name}.tmp")
        tmp_md.write_text("\n".join(head + lines) + "\n")
        os.replace(tmp_md, LEARN_MD)
        print(f"wrote {LEARN_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
