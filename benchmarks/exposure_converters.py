"""Exposure of rendered sources developed by a converter nothing was fitted on: the accuracy corpus's DNG exposure
twins developed by RawTherapee's film curve and by darktable-cli's default pipeline, metered by postprod.

The rendered meter reads a JPEG's scene light through the camera-like tone curve
(:data:`~pipeline.imaging.measure.metering.TONE_CURVE_VALUES`), fitted on the tuning split's JPEG twins, which
RawTherapee's film curve developed; the accuracy benchmark's rendered rows are twins developed by that same
converter. A photographer's JPEG comes from a camera's or another converter's curve. Here the same DNG twins
(-2..+2 EV, and 0 EV, from the accuracy corpus: ``benchmarks/accuracy.py`` builds it) are also developed by
``darktable-cli``'s default pipeline (its filmic/sigmoid look, cached in the corpus cache's ``darktable/``, a few
minutes the first time), and both sets are processed by postprod as a user runs it (the default graph up to the
plan, chart ``base``, local executor).

Rows, per converter and split:

- the needed correction's |error| against the truth (minus the injected offset; the photo as published is the
  truth, ``ACCURACY.md``'s "How the truth is made"): median, 95th percentile, within 0.3 EV, and wrong signs
  where the offset is 0.7 EV or more;
- the correction of the 0 EV twins (truth 0): how far the converter's own look moves the meter;
- the |error| relative to the source's 0 EV twin through the same converter: whether the meter follows an
  offset, whatever the converter's look;
- the twins developed a stop or more over that are left as shot: a converter whose highlights roll off below
  white (darktable's) keeps them under the clipping that tells the plan a picture is over rather than bright
  by intent (:func:`~pipeline.planning.rules.exposure.bright_by_intent`), and its shoulder compresses what the
  meter reads of the push.

The naive baseline (median metering to mid-grey) is beside postprod on the same files. Nothing is fitted here.

    python benchmarks/exposure_converters.py [--split held_out|tuning|both] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import accuracy_baselines as bl  # noqa: E402
from benchmarks._tables import cpu_model  # noqa: E402
from benchmarks.accuracy import MAIN_CHART, NO_HARM_EV, SIGN_MIN_EV, analysis_graph, postprod_decision  # noqa: E402
from benchmarks.rendered_detail import CACHE, darktable_jpeg  # noqa: E402

OUT = ROOT / "benchmarks" / "EXPOSURE_CONVERTERS.md"
CONVERTERS = {"rawtherapee_film": "RawTherapee's film curve (the meter's curve was fitted on its tuning twins)",
              "darktable": "darktable-cli's default pipeline (nothing fitted on it)"}


def twins(split: str) -> list[dict]:
    """The corpus's DNG exposure twins of ``split`` (0 EV included), each with its RawTherapee-developed twin."""
    manifest = CACHE / "corpus" / "manifest.json"
    if not manifest.is_file():
        raise SystemExit(f"no accuracy corpus at {manifest}: run benchmarks/accuracy.py first")
    items = {i["id"]: i for i in json.loads(manifest.read_text())["items"]}
    out = []
    for iid, item in sorted(items.items()):
        if item["split"] == split and item["set"] in ("exposure", "original") and "_raw_ev" in iid:
            developed = items.get(iid.replace("_raw_ev", "_jpg_ev"))
            if developed is not None:
                out.append({**item, "rawtherapee_film": CACHE / "corpus" / developed["file"]})
    return out


def develop(items: list[dict], log) -> None:  # noqa: ANN001
    """Each twin's darktable-cli development (one at a time: darktable locks its configuration folder)."""
    t = time.perf_counter()
    for n, item in enumerate(items, 1):
        item["darktable"] = darktable_jpeg(item)
        if n % 50 == 0:
            log(f"  darktable-cli: {n} of {len(items)} ({time.perf_counter() - t:.0f} s)")


def metered(items: list[dict], work: Path, log) -> dict[tuple[str, str], tuple[float, float]]:  # noqa: ANN001
    """(item id, converter) -> (postprod's correction, the naive baseline's) for every developed twin."""
    from charts.loader import load_chart
    from pipeline.kernel.run import RunSettings, process_shoot

    shoot = work / "shoot"
    for folder in (shoot, work / "out"):  # analysed afresh: a journal kept would answer for older code
        if folder.exists():
            shutil.rmtree(folder)
    shoot.mkdir(parents=True)
    names = {}
    for item in items:
        for conv in CONVERTERS:
            name = f"{item['id']}__{conv}.jpg"
            try:
                os.link(item[conv], shoot / name)
            except OSError:
                shutil.copyfile(item[conv], shoot / name)
            names[name] = (item["id"], conv)
    t = time.perf_counter()
    settings = RunSettings(shoot_dir=shoot, out_dir=work / "out", executor="local",
                           graph_path=analysis_graph(work / "graph.yaml"), chart=MAIN_CHART, force=True)
    result = process_shoot(settings)
    log(f"  postprod: {len(result.records)} images in {time.perf_counter() - t:.0f} s")
    target = load_chart(MAIN_CHART).chart.exposure.target_ev
    out = {}
    for r in result.records:
        if r.source_path in names and r.status == "ok":
            naive = bl.naive_exposure_ev(bl.read_linear(shoot / r.source_path), True)
            out[names[r.source_path]] = (float(postprod_decision(r, target).ev), naive)
    (work / "metered.json").write_text(json.dumps([[*k, *v] for k, v in sorted(out.items())]))  # for a closer look
    return out


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "—"


def rows(items: list[dict], got: dict[tuple[str, str], tuple[float, float]], conv: str, system: int
         ) -> dict[str, str]:
    """The table's rows for one converter and one system (0: postprod, 1: naive)."""
    zero = {i["source"]: got.get((i["id"], conv)) for i in items if abs(float(i["truth"]["ev"])) < 1e-9}
    errors, relative, signs, base, over = [], [], [0, 0], [], [0, 0]
    for i in items:
        g = got.get((i["id"], conv))
        if g is None:
            continue
        truth, ev = float(i["truth"]["ev"]), g[system]
        errors.append(abs(ev - truth))
        if truth <= -1.0 + 1e-9:  # developed a stop or more over: darkened at all?
            over[0] += 1
            over[1] += ev == 0.0
        if abs(truth) < 1e-9:
            base.append(ev)
        elif zero.get(i["source"]) is not None:
            relative.append(abs((ev - zero[i["source"]][system]) - truth))
        if abs(truth) >= SIGN_MIN_EV:
            signs[0] += 1
            signs[1] += ev * truth < 0
    if not errors:
        return {}
    within = sum(e <= NO_HARM_EV + 1e-9 for e in errors)
    return {
        "twins metered": str(len(errors)),
        "median \\|error\\| (EV)": _median(errors),
        "95th percentile \\|error\\| (EV)": f"{np.percentile(errors, 95):.2f}",
        f"within {NO_HARM_EV} EV of the truth": f"{within} ({within / len(errors):.0%})",
        f"wrong sign where \\|offset\\| >= {SIGN_MIN_EV}": f"{signs[1]} of {signs[0]}",
        "0 EV twins: median correction (truth 0)": _median(base) if base else "—",
        f"0 EV twins: \\|correction\\| <= {NO_HARM_EV}": (f"{sum(abs(b) <= NO_HARM_EV + 1e-9 for b in base)} of "
                                                          f"{len(base)}"),
        "median \\|error\\| relative to the 0 EV twin (EV)": _median(relative),
        "twins developed 1 EV or more over left as shot": f"{over[1]} of {over[0]}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("held_out", "tuning", "both"), default="both")
    parser.add_argument("--write", action="store_true", help=f"write the tables to {OUT.relative_to(ROOT)}")
    args = parser.parse_args()
    if shutil.which("darktable-cli") is None:
        raise SystemExit("needs darktable-cli (apt-get install darktable)")
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    splits = ("held_out", "tuning") if args.split == "both" else (args.split,)
    started = time.perf_counter()
    tables = []
    for split in splits:
        items = twins(split)
        log(f"{split}: {len(items)} DNG twins")
        develop(items, log)
        got = metered(items, CACHE / "converters" / split, log)
        columns = {f"{name} ({conv})": rows(items, got, conv, system) for conv in CONVERTERS
                   for system, name in ((0, "postprod"), (1, "naive"))}
        names = list(dict.fromkeys(r for col in columns.values() for r in col))
        lines = [f"### {split.replace('_', '-')} split\n", "| row | " + " | ".join(columns) + " |",
                 "|---|" + "---|" * len(columns)]
        lines += [f"| {r} | " + " | ".join(c.get(r, "—") for c in columns.values()) + " |" for r in names]
        tables.append("\n".join(lines))
        print("\n" + tables[-1], flush=True)
    head = (f"# Exposure of rendered sources by converter\n\nWritten by `benchmarks/exposure_converters.py` "
            f"(its docstring says what and why).\n\n- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n"
            f"- machine: {cpu_model()}, {os.cpu_count()} CPUs\n- command: `python benchmarks/exposure_converters.py"
            f" --write` ({(time.perf_counter() - started) / 60:.0f} min)\n- converters: "
            + "; ".join(f"`{k}`: {v}" for k, v in CONVERTERS.items()) + "\n\n"
            "The RawTherapee columns are the twins of ACCURACY.md's rendered rows. The darktable columns are the same "
            "DNG twins through a look the meter's curve was not fitted to: the 0 EV twins' rows show how far that "
            "look alone moves the plan (its truth is still the photo as published), the last row whether the plan "
            "follows an offset under it. The naive baseline is median metering to mid-grey on the same files.\n")
    if args.write:
        OUT.write_text(head + "\n" + "\n\n".join(tables) + "\n")
        log(f"wrote {OUT}")


if __name__ == "__main__":
    main()
