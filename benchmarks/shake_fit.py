"""Camera shake on known drags, outside the accuracy benchmark's held-out split, and on published photos.

The equipment corpus (:mod:`benchmarks.equipment_corpus`) has 30 shaken tuning
frames from a few photos; this script drags many more. Sources: the photos of
the accuracy corpus's *tuning* split (never a held-out one: the split is
:func:`benchmarks.accuracy_corpus.assign_splits`, the hash the benchmark uses),
or the photos of ``--photos`` folders. Each is brought to the focus check's
working size (:data:`pipeline.imaging.focus_miss.WORK_LONG_EDGE`), dragged in
linear light by a line of known length (4, 6 and 8 px: a box blur of 1.2-2.3 px
sigma) at known angles, recompressed as a JPEG of quality 92, and judged three ways:

* ``shipped``: :func:`~pipeline.imaging.focus_miss.assess_focus` as the
  pipeline calls it, the main face found by YuNet on the same copy (no EXIF:
  shake is always possible); a shake is a verdict that names "one direction";
* ``median, no face``: :func:`~pipeline.imaging.focus_miss.frame_motion` alone
  (the regions' median, no face witness);
* ``mean (before stop 78)``: the same regions pooled by their mean, as the rule
  was until the median replaced it.

Printed per drag length (0: as published) the frames called shaken by each.
With ``--faces-only`` only photos where YuNet finds a main face are dragged (the
face witness acts on those alone). Nothing is cached; about a second a frame.

    python benchmarks/shake_fit.py [--photos DIR ...] [--faces-only] [--angles ...] [--lengths ...] [--verbose]
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("POSTPROD_OFFLINE", "1")

from benchmarks.accuracy_corpus import assign_splits, build_pool, load_photo, srgb8_to_linear  # noqa: E402
from pipeline.imaging import focus_miss as fm  # noqa: E402
from pipeline.imaging.color import linear_to_srgb, luminance  # noqa: E402

LENGTHS_PX = (4.0, 6.0, 8.0)
ANGLES_DEG = (0.0, 30.0, 60.0, 90.0, 120.0, 150.0)
JPEG_QUALITY = 92
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
RULES = ("shipped", "median, no face", "mean (before stop 78)")


def line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A normalised line of ``length`` px at ``angle_deg`` (0 = horizontal), drawn with bilinear weights."""
    size = int(math.ceil(length)) + 3
    kernel = np.zeros((size, size), np.float32)
    c = (size - 1) / 2
    t = math.radians(angle_deg)
    for s in np.linspace(-length / 2, length / 2, 200):
        x, y = c + s * math.cos(t), c - s * math.sin(t)
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            kernel[y0 + dy, x0 + dx] += w
    return kernel / kernel.sum()


def dragged(linear: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    """``linear`` dragged along a line, then written and read back as an sRGB JPEG (linear again, float32)."""
    moved = linear if length <= 0 else cv2.filter2D(linear, -1, line_kernel(length, angle_deg),
                                                    borderType=cv2.BORDER_REFLECT)
    srgb8 = np.round(np.clip(linear_to_srgb(np.clip(moved, 0.0, 1.0)), 0.0, 1.0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(srgb8).save(buf, format="JPEG", quality=JPEG_QUALITY)
    buf.seek(0)
    return srgb8_to_linear(np.asarray(Image.open(buf).convert("RGB"))).astype(np.float32)


def mean_pooled_motion(grid: fm._GridEdges) -> bool:
    """The shake rule as it was before stop 78: the sharper regions' squared direction blurs pooled by their mean."""
    regions = []
    for r in grid.regions:
        if r.p30 is None or min(r.dir_edges) < fm.MIN_EDGES // 4 or max(r.dir_p50) >= fm._MAX_BLUR:
            continue
        regions.append((r.p30, list(r.dir_p50)))
    if len(regions) < fm.SHARP_REGIONS:
        return False
    regions.sort(key=lambda r: r[0])
    pooled = np.mean([np.square(d) for _, d in regions[: fm.MOTION_REGIONS]], axis=0)
    motion = math.sqrt(max(float(pooled.max() - pooled.min()), 0.0))
    return motion >= fm.MOTION_MIN_PX and fm.drag_misfit(pooled) <= fm.MOTION_MAX_MISFIT


def main_face(detector, linear: np.ndarray) -> fm.FocusSubject | None:  # noqa: ANN001
    """The focus check's main face on this copy (YuNet at 1280 px, as detect_faces runs it), or None."""
    from models.face_detectors import detect_on_proxy

    h, w = linear.shape[:2]
    srgb8 = np.round(np.clip(linear_to_srgb(np.clip(linear, 0.0, 1.0)), 0.0, 1.0) * 255.0).astype(np.uint8)
    return fm.FocusSubject.main_face([(d.box, d.score) for d in detect_on_proxy(detector, srgb8, 1.0, 1280)], w, h)


def judge(linear: np.ndarray, subject: fm.FocusSubject | None) -> dict[str, bool]:
    """The three rules' verdicts on one copy whose main face (:func:`main_face`) is ``subject``: shake or not."""
    verdict = fm.assess_focus(linear, subject)
    luma = luminance(linear)
    gray = fm._encode(luma.copy())  # as assess_focus encodes it (clipping luma's copy in place)
    ys, xs, blur, angle = fm.edge_blur(gray, np.clip(luma, 0.0, 1.0))
    h, w = gray.shape
    grid = fm._GridEdges.of(ys, xs, blur, angle, w, h)
    return {
        "shipped": verdict.missed and "one direction (" in verdict.detail,
        "median, no face": fm._frame_motion(grid)[0],
        "mean (before stop 78)": mean_pooled_motion(grid),
        "face": subject is not None,
    }


def sources(data: Path, folders: list[Path]) -> list[Path]:
    """The photos to drag: the accuracy pool's tuning photos, or every photo of ``folders``."""
    if folders:
        return sorted(p for d in folders for p in d.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    pool = build_pool(data, Path.home() / ".cache" / "postprod" / "accuracy", log=lambda *_: None)
    splits = assign_splits(pool)
    return [s.path for s in pool if splits[s.id] == "tuning" and s.group != "raw"]


def run(paths: list[Path], lengths: tuple[float, ...], angles: tuple[float, ...], faces_only: bool,
        verbose: bool) -> list[dict]:
    from models.face_detectors import get_face_detector

    detector = get_face_detector("yunet")
    rows = []
    for path in paths:
        linear = srgb8_to_linear(load_photo(path, fm.WORK_LONG_EDGE)).astype(np.float32)
        if min(linear.shape[:2]) < fm.MIN_SIDE_PX:
            continue
        as_published = dragged(linear, 0.0, 0.0)
        face = main_face(detector, as_published)
        if faces_only and face is None:
            continue
        for length in (0.0, *lengths):
            for angle in ((0.0,) if length == 0 else angles):
                frame = as_published if length == 0 else dragged(linear, length, angle)
                row = {"photo": path.name, "length": length, "angle": angle,
                       **judge(frame, face if length == 0 else main_face(detector, frame))}
                rows.append(row)
                if verbose:
                    print(row, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| drag (px) | frames | frames with a main face | " + " | ".join(f"shaken: {r}" for r in RULES) + " |",
             "|---|---|---|" + "---|" * len(RULES)]
    for length in sorted({r["length"] for r in rows}):
        sel = [r for r in rows if r["length"] == length]
        cells = [str(sum(r[k] for r in sel)) for k in RULES]
        label = "0 (as published)" if length == 0 else f"{length:g}"
        lines.append(f"| {label} | {len(sel)} | {sum(r['face'] for r in sel)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, action="append", default=[],
                        help="drag these folders' photos instead of the tuning photos (repeatable)")
    parser.add_argument("--faces-only", action="store_true", help="only photos where YuNet finds a main face")
    parser.add_argument("--lengths", type=float, nargs="+", default=list(LENGTHS_PX), help="drag lengths (px)")
    parser.add_argument("--angles", type=float, nargs="+", default=list(ANGLES_DEG), help="drag angles (deg)")
    parser.add_argument("--verbose", action="store_true", help="print every frame's verdicts")
    args = parser.parse_args(argv)
    data = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))
    t0 = time.perf_counter()
    paths = sources(data, args.photos)
    rows = run(paths, tuple(args.lengths), tuple(args.angles), args.faces_only, args.verbose)
    print(table(rows))
    print(f"\n{len({r['photo'] for r in rows})} photos, {len(rows)} frames, {time.perf_counter() - t0:.0f} s "
          f"(MOTION_MIN_PX {fm.MOTION_MIN_PX}, MOTION_MAX_MISFIT {fm.MOTION_MAX_MISFIT}, JPEG quality {JPEG_QUALITY})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
