"""A rendered source's darkening against the truth: over-exposed JPEG twins darkened back onto their 0 EV twin.

The accuracy benchmark's corpus (its cache, ``POSTPROD_ACCURACY_CACHE``; built by ``benchmarks/accuracy.py``) has
JPEG twins of each photo developed at -2..+2 EV by one curve. Each twin developed 1 EV over or more is darkened by
its offset, as the renderer darkens a rendered source, and compared with the twin developed at 0 EV, in 8-bit sRGB
codes:

- **each pixel alone**: :func:`~pipeline.imaging.measure.metering.darken_display_referred` without a base (the
  renderer before RENDER_VERSION 6): the curve sets every pixel's level from its own;
- **detail kept**: with :func:`~pipeline.imaging.measure.metering.split_level`, as the renderer does now: the
  curve sets the base, and the fine detail keeps its displayed contrast where the curve steepens;
- **plain display gain** (a diagnostic): the gain on the display light, as a RAW's pixels take it.

Rows: the mean |error|; the error of the fine detail (the picture less its Gaussian blur of 2 px); and the noise
(standard deviation of that detail) over the areas the truth shows smooth and bright (its detail under 1 code
within 4 px, its level over 150), beside the truth's own. Medians over the twins of each split; nothing is fitted
here (:data:`~pipeline.imaging.measure.metering.DETAIL_RADIUS_PX` and
:data:`~pipeline.imaging.measure.metering.DETAIL_CODES` were set before, and ``--radius``/``--codes`` show others).

The corpus's JPEG twins are developed by RawTherapee's film-like curve, the one the darkening's camera-like curve
was fitted on.
``--darktable`` also develops the corpus's DNG twins (1-2 EV over and at 0 EV) by ``darktable-cli``'s default
pipeline, a curve nothing was fitted on, into the cache (``darktable/``, a few minutes the first time), and
compares them the same way.

    python benchmarks/darken_detail.py [--split held_out|tuning|both] [--darktable] [--radius PX] [--codes CODES]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._tables import cpu_model, print_columns  # noqa: E402
from pipeline.imaging.color import linear_to_srgb, srgb_to_linear  # noqa: E402
from pipeline.imaging.measure import metering  # noqa: E402

CACHE = Path(os.environ.get("POSTPROD_ACCURACY_CACHE", Path.home() / ".cache" / "postprod" / "accuracy"))
#: Twins developed at least this far over (EV) are darkened: under a stop the curve barely steepens.
MIN_OFFSET_EV = 1.0


def codes(display_linear: np.ndarray) -> np.ndarray:
    return linear_to_srgb(np.clip(display_linear, 0.0, 1.0)) * 255.0


def detail(picture: np.ndarray) -> np.ndarray:
    grey = picture.mean(axis=2).astype(np.float32)
    return grey - cv2.GaussianBlur(grey, (0, 0), 2.0)


def twins(split: str, domain: str = "jpg", develop: Callable[[dict], Path] | None = None
          ) -> list[tuple[str, float, Path, Path]]:
    """(id, offset, over twin, 0 EV twin) of the corpus's exposure twins of ``split`` developed over: its rendered
    twins (``domain`` ``jpg``), or its DNG twins (``raw``) each developed by ``develop`` (item -> JPEG)."""
    manifest = CACHE / "corpus" / "manifest.json"
    if not manifest.is_file():
        raise SystemExit(f"no accuracy corpus at {manifest}: run benchmarks/accuracy.py first")
    items = {i["id"]: i for i in json.loads(manifest.read_text())["items"]}
    path = develop or (lambda item: CACHE / "corpus" / item["file"])
    out = []
    for iid, item in sorted(items.items()):
        if item["split"] != split or item["set"] != "exposure" or f"_{domain}_ev+" not in iid:
            continue
        needed = float(item["truth"]["ev"])
        reference = items.get(iid.rsplit("_ev", 1)[0] + "_ev+0.0")
        if needed <= -MIN_OFFSET_EV and reference is not None:
            out.append((iid, needed, path(item), path(reference)))
    return out


def darktable_jpeg(item: dict) -> Path:
    """The corpus DNG ``item`` developed by ``darktable-cli``'s default pipeline (cached in the corpus's cache)."""
    dng = CACHE / "corpus" / item["file"]
    out_dir = CACHE / "darktable"
    jpg = out_dir / (dng.stem + ".jpg")
    if not jpg.is_file():
        out_dir.mkdir(exist_ok=True)
        tmp = out_dir / (dng.stem + ".tmp.jpg")
        subprocess.run(["darktable-cli", str(dng), str(tmp), "--core", "--configdir", str(out_dir / "config"),
                        "--library", ":memory:"], check=True, capture_output=True, timeout=600)
        tmp.replace(jpg)
    return jpg


def measure(over: Path, reference: Path, needed: float) -> dict[str, tuple[float, float, float]] | None:
    """Each way's (mean error, detail error, smooth-area noise) and the truth's noise; None if the sizes differ."""
    x = srgb_to_linear(cv2.imread(str(over))[..., ::-1] / np.float32(255.0))
    truth = cv2.imread(str(reference))[..., ::-1].astype(np.float32)
    if x.shape != truth.shape:
        return None
    gain = 2.0**needed
    split = metering.split_level(metering.encoded_level(x))
    ways = {"each pixel alone": codes(metering.darken_display_referred(x, gain)),
            "detail kept": codes(metering.darken_display_referred(x, gain, split=split)),
            "plain display gain": codes(x * np.float32(gain))}
    smooth = (cv2.GaussianBlur(np.abs(detail(truth)), (0, 0), 4.0) < 1.0) & (truth.max(axis=2) > 150)
    noise = (lambda a: float(detail(a)[smooth].std())) if smooth.sum() > 100 else (lambda a: float("nan"))
    out = {name: (float(np.abs(a - truth).mean()), float(np.abs(detail(a) - detail(truth)).mean()), noise(a))
           for name, a in ways.items()}
    out["truth"] = (0.0, 0.0, noise(truth))
    return out


def median(values: list[float]) -> float:
    kept = [v for v in values if v == v]
    return statistics.median(kept) if kept else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("held_out", "tuning", "both"), default="both")
    parser.add_argument("--darktable", action="store_true", help="also the DNG twins developed by darktable-cli")
    parser.add_argument("--radius", type=int, default=metering.DETAIL_RADIUS_PX, help="the base's box radius (px)")
    parser.add_argument("--codes", type=float, default=metering.DETAIL_CODES, help="the base's regularisation (codes)")
    args = parser.parse_args()
    metering.DETAIL_RADIUS_PX, metering.DETAIL_CODES = args.radius, args.codes
    start = time.perf_counter()
    print(f"darken_detail: {cpu_model()}, radius {args.radius} px, {args.codes:g} codes, corpus {CACHE}")
    sets = [("JPEG twins developed by RawTherapee", twins)]
    if args.darktable:
        if shutil.which("darktable-cli") is None:
            raise SystemExit("--darktable needs darktable-cli (apt-get install darktable)")
        sets.append(("DNG twins developed by darktable-cli", lambda split: twins(split, "raw", darktable_jpeg)))
    for (name, pairs), split in itertools.product(sets, ("held_out", "tuning") if args.split == "both"
                                                  else (args.split,)):
        rows = [m for _, needed, over, ref in pairs(split) if (m := measure(over, ref, needed)) is not None]
        table = {}
        for way in ("each pixel alone", "detail kept", "plain display gain", "truth"):
            table[way] = {
                "mean absolute error (codes)": f"{median([r[way][0] for r in rows]):.2f}" if way != "truth" else "—",
                "detail, absolute error (codes)": f"{median([r[way][1] for r in rows]):.2f}" if way != "truth" else "—",
                "noise where the truth is smooth and bright (codes)": f"{median([r[way][2] for r in rows]):.2f}",
            }
        print_columns(f"{split}: {len(rows)} {name} {MIN_OFFSET_EV:g}-2 EV over, darkened by their offset, against "
                      "the 0 EV twin (medians)", table)
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
