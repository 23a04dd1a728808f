"""Pushes on rendered sources against known truth: is a JPEG developed under delivered as it should have been?

The accuracy benchmark judges the plan's *number* (``exposure_ev``, EV of scene light); this judges the
*pixels* the renderer delivers for it. For every photo of the accuracy pool (not its RAWs), the photo is
taken back to scene light through the benchmark's camera curve (the numpy emulation of RawTherapee's film
curve, :func:`~benchmarks.accuracy_corpus.film_curve_inverse`), developed again at 0 EV (the truth) and at
-0.7, -1.0, -1.5 and -2.0 EV (the under-exposed twins, 8-bit sRGB as a JPEG stores them), and each twin is
pushed by exactly its offset through :func:`pipeline.imaging.render.render_frame`, so that the meter's own
error plays no part. Two pushes side by side, in one run:

- ``display gain``: the push as a gain of ``2**ev`` on the twin's display light, highlights rolled off by the
  renderer's shoulder (what postprod delivered before render version 8);
- ``scene push``: the display gain that moves the twin's level (the median of its brightest channel) as ``ev``
  moves scene light (:func:`~pipeline.imaging.measure.metering.display_push_ev`), the same shoulder: what
  postprod delivers since render version 8.

Printed per split (the accuracy benchmark's: ``tuning``, ``held_out``): the delivered key's error against
the truth's (log2 of the median luminance, display light, EV; + = brighter than the truth), the mean
absolute difference in 8-bit sRGB codes, and new clipped pixels (any channel at 255, delivered minus the
truth, percentage points). Nothing here is fitted: the push is read off the camera-like curve the meter
already uses.

    python benchmarks/rendered_push.py [--no-wallpapers] [--long-edge 1000] [--write]

``--write`` writes the tables to ``benchmarks/RENDERED_PUSH.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_CACHE  # noqa: E402
from benchmarks.accuracy_corpus import (  # noqa: E402
    assign_splits,
    build_pool,
    film_curve_inverse,
    film_curve_render,
    load_photo,
    srgb8_to_linear,
    to_srgb8,
)
from pipeline.imaging.render import Adjustments, render_frame  # noqa: E402

OFFSETS_EV = (-0.7, -1.0, -1.5, -2.0)
PUSHES = ("display gain", "scene push")
RENDERED_PUSH_MD = ROOT / "benchmarks" / "RENDERED_PUSH.md"


def key_log2(srgb8: np.ndarray) -> float:
    """log2 of the median display-linear luminance of an 8-bit sRGB picture."""
    lin = srgb8_to_linear(srgb8)
    y = lin @ np.array([0.2126, 0.7152, 0.0722])
    return float(np.log2(max(float(np.median(y)), 1e-6)))


def clipped_pct(srgb8: np.ndarray) -> float:
    return 100.0 * float(np.mean(np.any(srgb8 >= 255, axis=2)))


def pushed(twin8: np.ndarray, ev: float, push: str) -> np.ndarray:
    """The twin pushed by ``ev`` EV as postprod's renderer delivers it (sRGB, 8 bits, no sharpening)."""
    rgb = srgb8_to_linear(twin8).astype(np.float32)
    h, w = rgb.shape[:2]
    adjust = (Adjustments(exposure_ev=ev) if push == "display gain"
              else Adjustments(exposure_ev=ev, display_referred=True))
    return render_frame(rgb, w, h, adjust, (0.0, 0.0, float(w), float(h)), (w, h), "srgb", 0.0, 8)


def measure(photo8: np.ndarray) -> list[tuple[float, str, float, float, float]]:
    """(offset, push, key error EV, mean |d code|, new clipped pp) for each offset and push of one photo."""
    scene = film_curve_inverse(srgb8_to_linear(photo8))
    truth = to_srgb8(film_curve_render(scene))
    truth_key, truth_clipped = key_log2(truth), clipped_pct(truth)
    rows = []
    for offset in OFFSETS_EV:
        twin = to_srgb8(film_curve_render(scene * 2.0**offset))
        for push in PUSHES:
            out = pushed(twin, -offset, push)
            diff = float(np.mean(np.abs(out.astype(np.int16) - truth.astype(np.int16))))
            rows.append((offset, push, key_log2(out) - truth_key, diff, clipped_pct(out) - truth_clipped))
    return rows


def table(rows: list[tuple[str, float, str, float, float, float]], split: str) -> list[str]:
    lines = [f"### {split} split", "",
             "| offset (EV) | photos | " + " | ".join(f"{p}: key error (EV; median, 95th pct of \\|.\\|)" for p in PUSHES)
             + " | " + " | ".join(f"{p}: mean \\|d\\| (sRGB codes)" for p in PUSHES)
             + " | " + " | ".join(f"{p}: max new clipped (pp)" for p in PUSHES) + " |",
             "|---|---|" + "---|" * (3 * len(PUSHES))]
    for offset in (*OFFSETS_EV, None):
        sel = [r for r in rows if r[0] == split and (offset is None or r[1] == offset)]
        by = {p: [r for r in sel if r[2] == p] for p in PUSHES}
        n = len(by[PUSHES[0]])
        if not n:
            continue
        keys = [f"{np.median([r[3] for r in by[p]]):+.2f}, {np.percentile([abs(r[3]) for r in by[p]], 95):.2f}"
                for p in PUSHES]
        codes = [f"{np.mean([r[4] for r in by[p]]):.1f}" for p in PUSHES]
        clip = [f"{max(r[5] for r in by[p]):.2f}" for p in PUSHES]
        label = "all" if offset is None else f"{offset:+.1f}"
        lines.append(f"| {label} | {n} | " + " | ".join(keys + codes + clip) + " |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the accuracy benchmark's cache (wallpapers)")
    parser.add_argument("--no-wallpapers", action="store_true", help="leave Debian's wallpaper photos out of the pool")
    parser.add_argument("--long-edge", type=int, default=1000, help="the photos' long edge (default 1000 px)")
    parser.add_argument("--write", action="store_true", help=f"write the tables to {RENDERED_PUSH_MD.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    pool = build_pool(args.data, args.cache, log=lambda _m: None, wallpapers=not args.no_wallpapers)
    splits = assign_splits(pool)
    rows = []
    photos = [s for s in pool if s.group != "raw"]
    for n, src in enumerate(photos, 1):
        print(f"\r{n}/{len(photos)} {src.id[:60]:60s}", end="", file=sys.stderr, flush=True)
        rows += [(splits[src.id], *r) for r in measure(load_photo(src.path, args.long_edge))]
    print(file=sys.stderr)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = ["## Pushes on rendered sources (benchmarks/rendered_push.py)", "",
             f"{time.strftime('%Y-%m-%d %H:%M')}; {platform.machine()}, Python {platform.python_version()}; "
             f"{len(photos)} photos at {args.long_edge} px; {time.perf_counter() - start:.0f} s; peak RSS {peak:.0f} MB; "
             f"`python benchmarks/rendered_push.py{' --write' if args.write else ''}`. "
             "Key error: delivered minus truth, log2 of the median display luminance (+ = brighter).", ""]
    for split in ("held_out", "tuning"):
        lines += table(rows, split)
    text = "\n".join(lines)
    print(text)
    if args.write:
        RENDERED_PUSH_MD.write_text(text + "\n")
        print(f"wrote {RENDERED_PUSH_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
