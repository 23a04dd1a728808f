"""Pushes on rendered sources against known truth: is a JPEG developed under delivered as it should have been?

The accuracy benchmark judges the plan's *number* (``exposure_ev``, EV of scene light); this judges the
*pixels* the renderer delivers. Every photo of the accuracy pool (not its RAWs) is taken back to scene light
through the benchmark's camera curve (the numpy emulation of RawTherapee's film curve,
:func:`~benchmarks.accuracy_corpus.film_curve_inverse`) and developed again at 0 EV (the truth) and at -0.7,
-1.0, -1.5 and -2.0 EV (the under-exposed twins), saved as JPEG. ``--darktable N`` also develops ``N`` photos of
each split by ``darktable-cli``'s default pipeline (the scene light written as a DNG at each offset), a look
nothing was fitted on: the camera-like curve the meter and the push read is RawTherapee's.

Each twin is pushed through :func:`pipeline.imaging.render.render_frame` two ways, side by side in one run:

- ``display gain``: a gain of ``2**ev`` on the twin's display light, highlights rolled off by the renderer's
  shoulder (what postprod delivered before render version 8);
- ``scene push``: the display gain that moves the twin's level (the median of its brightest channel) as ``ev``
  moves scene light through the camera-like curve
  (:func:`~pipeline.imaging.measure.metering.display_push_ev`), the same shoulder: what postprod delivers now;

each by two amounts: the twin's true offset (the renderer alone, the meter's error left out) and the
correction postprod's plan makes of it, as a user runs it (the analysis graph, chart ``base``; every twin,
0 EV included, a darkening rendered alike both ways): the end-to-end result.

Printed per converter, amount and split (the accuracy benchmark's ``tuning`` and ``held_out``): the delivered
key's error against the truth's (log2 of the median luminance, display light, EV; + = brighter than the
truth), the mean absolute difference in 8-bit sRGB codes, and new clipped pixels (any channel at 255,
delivered minus the truth, percentage points). Nothing here is fitted.

    python benchmarks/rendered_push.py [--no-wallpapers] [--long-edge 1000] [--darktable N] [--write]

``--write`` writes the tables to ``benchmarks/RENDERED_PUSH.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_CACHE, MAIN_CHART, analysis_graph  # noqa: E402
from benchmarks.accuracy_corpus import (  # noqa: E402
    assign_splits,
    build_pool,
    film_curve_inverse,
    film_curve_render,
    load_photo,
    save_jpeg,
    srgb8_to_linear,
    to_srgb8,
    write_dng,
)
from benchmarks.highlights import clipped_share  # noqa: E402
from benchmarks.rendered_detail import darktable_develop  # noqa: E402
from pipeline.imaging.render import Adjustments, render_frame  # noqa: E402

OFFSETS_EV = (-0.7, -1.0, -1.5, -2.0)
PUSHES = ("display gain", "scene push")
RENDERED_PUSH_MD = ROOT / "benchmarks" / "RENDERED_PUSH.md"


def key_log2(srgb8: np.ndarray) -> float:
    """log2 of the median display-linear luminance of an 8-bit sRGB picture."""
    lin = srgb8_to_linear(srgb8)
    y = lin @ np.array([0.2126, 0.7152, 0.0722])
    return float(np.log2(max(float(np.median(y)), 1e-6)))


def pushed(twin8: np.ndarray, ev: float, push: str) -> np.ndarray:
    """The twin pushed by ``ev`` EV as postprod's renderer delivers it (sRGB, 8 bits, no sharpening)."""
    rgb = srgb8_to_linear(twin8).astype(np.float32)
    h, w = rgb.shape[:2]
    adjust = (Adjustments(exposure_ev=ev) if push == "display gain"
              else Adjustments(exposure_ev=ev, display_referred=True))
    return render_frame(rgb, w, h, adjust, (0.0, 0.0, float(w), float(h)), (w, h), "srgb", 0.0, 8)


def film_twin(scene: np.ndarray, offset: float) -> np.ndarray:
    """The scene developed at ``offset`` EV by the corpus's film curve, 8-bit sRGB."""
    return to_srgb8(film_curve_render(scene * 2.0**offset))


def darktable_twin(scene: np.ndarray, offset: float) -> np.ndarray:
    """The scene written as a DNG at ``offset`` EV and developed by darktable-cli's default pipeline, 8-bit sRGB."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        dng, jpg = Path(tmp, "twin.dng"), Path(tmp, "twin.jpg")
        write_dng(dng, scene * 2.0**offset)
        darktable_develop(dng, jpg, Path(tmp, "config"))
        with Image.open(jpg) as im:
            return np.asarray(im.convert("RGB"))


def make_twins(photos: list, splits: dict, develop, tag: str, shoot: Path, long_edge: int) -> list[dict]:  # noqa: ANN001
    """Each photo developed at 0 EV and at each offset, written as JPEG (quality 95) into ``shoot``."""
    out = []
    for n, src in enumerate(photos, 1):
        print(f"\r{tag} {n}/{len(photos)} {src.id[:50]:50s}", end="", file=sys.stderr, flush=True)
        scene = film_curve_inverse(srgb8_to_linear(load_photo(src.path, long_edge)))
        for offset in (0.0, *OFFSETS_EV):
            name = f"{tag}__{src.id.replace('/', '_')}__{offset:+.1f}.jpg"
            save_jpeg(shoot / name, develop(scene, offset), quality=95)
            out.append({"name": name, "split": splits[src.id], "source": src.id, "develop": tag, "offset": offset})
    print(file=sys.stderr)
    return out


def planned(shoot: Path, work: Path) -> dict[str, float]:
    """postprod's exposure correction of each twin, as a user runs it (the analysis graph, chart ``base``)."""
    from pipeline.kernel.run import RunSettings, process_shoot

    settings = RunSettings(shoot_dir=shoot, out_dir=work / "out", executor="local",
                           graph_path=analysis_graph(work / "graph.yaml"), chart=MAIN_CHART, force=True)
    ev = {}
    for r in process_shoot(settings).records:
        if r.status == "ok":
            ops = {op.op_id: op for op in r.operations}
            ev[r.source_path] = float(ops["exposure"].params["ev"]) if "exposure" in ops else 0.0
    return ev


def read8(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def score(twins: list[dict], evs: dict[str, float], shoot: Path) -> list[tuple]:
    """(split, develop, given, offset, push, key error, mean |d|, new clipped) for each twin, push and given
    correction: ``truth`` (the twin's offset, under-exposed twins only) and ``plan`` (postprod's, every twin)."""
    rows = []
    truths = {(t["develop"], t["source"]): read8(shoot / t["name"]) for t in twins if t["offset"] == 0.0}
    for t in twins:
        truth = truths[(t["develop"], t["source"])]
        twin = read8(shoot / t["name"])
        given = [("plan", evs.get(t["name"]))] + ([("truth", -t["offset"])] if t["offset"] < 0 else [])
        for label, ev in given:
            if ev is None:
                continue
            for push in PUSHES:
                out = pushed(twin, ev, push)
                diff = float(np.mean(np.abs(out.astype(np.int16) - truth.astype(np.int16))))
                rows.append((t["split"], t["develop"], label, t["offset"], push, key_log2(out) - key_log2(truth), diff,
                             clipped_share(out) - clipped_share(truth)))
    return rows


def table(rows: list[tuple], split: str, develop: str, given: str) -> list[str]:
    sel = [r for r in rows if r[0] == split and r[1] == develop and r[2] == given]
    if not sel:
        return []
    lines = [f"### {split} split, {develop}, pushed by the {'true offset' if given == 'truth' else 'plan'}", "",
             "| offset (EV) | twins | " + " | ".join(f"{p}: key error (EV; median, 95th pct of \\|.\\|)" for p in PUSHES)
             + " | " + " | ".join(f"{p}: mean \\|d\\| (sRGB codes)" for p in PUSHES)
             + " | " + " | ".join(f"{p}: max new clipped (pp)" for p in PUSHES) + " |",
             "|---|---|" + "---|" * (3 * len(PUSHES))]
    for offset in (*sorted({r[3] for r in sel}, reverse=True), None):
        by = {p: [r for r in sel if r[4] == p and (offset is None or r[3] == offset)] for p in PUSHES}
        n = len(by[PUSHES[0]])
        keys = [f"{np.median([r[5] for r in by[p]]):+.2f}, {np.percentile([abs(r[5]) for r in by[p]], 95):.2f}"
                for p in PUSHES]
        codes = [f"{np.mean([r[6] for r in by[p]]):.1f}" for p in PUSHES]
        clip = [f"{max(r[7] for r in by[p]):.2f}" for p in PUSHES]
        label = "all" if offset is None else f"{offset:+.1f}"
        lines.append(f"| {label} | {n} | " + " | ".join(keys + codes + clip) + " |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the accuracy benchmark's cache (wallpapers)")
    parser.add_argument("--no-wallpapers", action="store_true", help="leave Debian's wallpaper photos out of the pool")
    parser.add_argument("--long-edge", type=int, default=1000, help="the photos' long edge (default 1000 px)")
    parser.add_argument("--darktable", type=int, default=0, metavar="N",
                        help="also N photos of each split developed by darktable-cli (needs darktable)")
    parser.add_argument("--write", action="store_true", help=f"write the tables to {RENDERED_PUSH_MD.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    pool = build_pool(args.data, args.cache, log=lambda _m: None, wallpapers=not args.no_wallpapers)
    splits = assign_splits(pool)
    photos = [s for s in pool if s.group != "raw"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shoot = work / "shoot"
        shoot.mkdir()
        twins = make_twins(photos, splits, film_twin, "film", shoot, args.long_edge)
        if args.darktable:
            some = [s for split in ("held_out", "tuning") for s in [p for p in photos if splits[p.id] == split][: args.darktable]]
            twins += make_twins(some, splits, darktable_twin, "darktable", shoot, args.long_edge)
        evs = planned(shoot, work)
        rows = score(twins, evs, shoot)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = ["## Pushes on rendered sources (benchmarks/rendered_push.py)", "",
             f"{time.strftime('%Y-%m-%d %H:%M')}; {platform.machine()}, Python {platform.python_version()}; "
             f"{len(photos)} photos at {args.long_edge} px, {len(twins)} twins; {time.perf_counter() - start:.0f} s; peak RSS {peak:.0f} MB; "
             f"`python benchmarks/rendered_push.py{' --write' if args.write else ''}`. "
             "Key error: delivered minus truth, log2 of the median display luminance (+ = brighter).", ""]
    for develop in ("film", "darktable"):
        for given in ("truth", "plan"):
            for split in ("held_out", "tuning"):
                lines += table(rows, split, develop, given)
    text = "\n".join(lines)
    print(text)
    if args.write:
        RENDERED_PUSH_MD.write_text(text + "\n")
        print(f"wrote {RENDERED_PUSH_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
