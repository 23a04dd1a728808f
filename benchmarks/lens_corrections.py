"""Lens profile corrections against known truth: real photos drawn through real lenses' measured profiles.

Each photo (the shared data's photographs and scikit-image's) is drawn through lensfun's reverse model of a
lens on the body it was profiled on: bowed by its distortion, darkened in the corners by its vignetting, its
colours scaled apart by its chromatic aberration, as that lens would have drawn it, and written as that body's
DNG with the lens named as the camera names it in EXIF. postprod then plans it (its lens rule finds the
profile from those names, as for a real file) and renders it at full size, with the chart's lens corrections
on and off. The truth is the photo itself:

- distortion left: local shifts against the photo (phase correlation of 96 px patches over the frame), less
  the one scale about the centre that the correction zooms by to fill the frame; the 95th percentile, px;
- vignetting left: the corners' brightness against the centre, delivered over the photo's (1 = none left);
- chromatic aberration left: the same photo in grey (its three colours one picture) drawn through the same
  lens: the median shift of red and blue against green along the frame's edges, px (the mosaic and LibRaw's
  demosaic leave about 0.04 px on a grey picture drawn without any).

Nothing in postprod is fitted on these: the profiles are lensfun's, the photos are not used elsewhere for it.

    python benchmarks/lens_corrections.py [--write]   # writes benchmarks/LENS.md
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import lensfunpy
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._tables import cpu_model  # noqa: E402
from charts.loader import load_chart  # noqa: E402
from pipeline.imaging.color import srgb_to_linear  # noqa: E402
from pipeline.imaging.dng import write_dng_from_linear_rgb  # noqa: E402
from pipeline.imaging.lens_profile import _lens_of, find_profile  # noqa: E402
from pipeline.kernel.ingest import sniff_format  # noqa: E402
from pipeline.kernel.records import SourceTask, WorkItem  # noqa: E402
from pipeline.kernel.stage import RunContext  # noqa: E402
from pipeline.planning.rules.lens import plan_lens_corrections  # noqa: E402
from pipeline.planning.state import PlanState  # noqa: E402
from stages import REGISTRY  # noqa: E402

LENS_MD = ROOT / "benchmarks" / "LENS.md"
SIZE = (1536, 1024)  # the DNGs' size: a 3:2 frame (portrait photos are cropped to it)


@dataclass(frozen=True)
class Lens:
    """A lens as a camera's files name it (LibRaw's make and model, EXIF's lens), and the frame's settings."""

    make: str
    model: str
    lens: str
    focal_mm: float
    aperture: float


LENSES = (
    Lens("Canon", "EOS 450D", "EF-S10-22mm f/3.5-4.5 USM", 10.0, 4.0),  # an ultra-wide zoom wide open: barrel
    Lens("Nikon", "D750", "AF-S Nikkor 24-70mm f/2.8G ED", 24.0, 2.8),
    Lens("Sony", "ILCE-7M3", "FE 24-105mm F4 G OSS", 24.0, 4.0),
    Lens("Olympus", "E-M5", "M.Zuiko Digital ED 12-40mm F2.8 PRO", 12.0, 2.8),
    Lens("Canon", "EOS 5D Mark II", "EF70-200mm f/2.8L IS II USM", 200.0, 2.8),  # a telephoto: pincushion
)

CHART = """\
schema_version: 2
lens: {{distortion: {on}, vignetting: {on}, chromatic_aberration: {on}}}
white_balance: {{policy: as_shot}}
exposure: {{raw_tone_curve: linear}}  # delivered in scene light: brightness read as the lens let it through
renditions:
  full: {{format: png, bit_depth: 16, sharpen_amount: 0}}
"""


def photos(testdata: Path) -> dict[str, np.ndarray]:
    """The photos, as 8-bit sRGB at :data:`SIZE` (cropped to 3:2 about their centre)."""
    import skimage.data

    found: dict[str, Image.Image] = {}
    for folder in ("exposure", "wb"):
        for path in sorted((testdata / folder).glob("*.jp*g")) + sorted((testdata / folder).glob("*.JPG")):
            found[path.stem] = Image.open(path).convert("RGB")
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        found[f"skimage {name}"] = Image.fromarray(getattr(skimage.data, name)())
    out = {}
    for name, im in found.items():
        w, h = im.size
        if min(w, h) < 400:
            continue
        cw, ch = (w, round(w * 2 / 3)) if w * 2 / 3 <= h else (round(h * 3 / 2), h)
        box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)
        out[name] = np.asarray(im.crop(box).resize(SIZE, Image.Resampling.LANCZOS))
    return out


def drawn_through(truth: np.ndarray, lens: Lens) -> np.ndarray:
    """``truth`` (linear RGB at :data:`SIZE`) as ``lens`` would draw it: lensfun's reverse model of its distortion,
    chromatic aberration (each colour its own map) and vignetting."""
    w, h = SIZE
    camera, profile_lens = _lens_of(find_profile(lens.make, lens.model, lens.lens, lens.focal_mm, lens.aperture,
                                                 chromatic_aberration=True).profile)
    mod = lensfunpy.Modifier(profile_lens, camera.crop_factor, w, h)
    mod.initialize(lens.focal_mm, lens.aperture, 1000.0, scale=1.0, pixel_format=np.float32, reverse=True,
                   flags=int(lensfunpy.ModifyFlags.DISTORTION | lensfunpy.ModifyFlags.TCA
                             | lensfunpy.ModifyFlags.VIGNETTING))
    sub = mod.apply_subpixel_geometry_distortion()
    drawn = np.dstack([cv2.remap(np.ascontiguousarray(truth[..., c]), sub[..., c, 0], sub[..., c, 1],
                                 cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT) for c in range(3)])
    mod.apply_color_modification(drawn)
    return drawn


def write_shot(path: Path, drawn: np.ndarray, lens: Lens) -> Path:
    """The drawn picture as the DNG of the lens's body, naming it as that camera does."""
    return write_dng_from_linear_rgb(path, np.clip(drawn, 0.0, 1.0), white_balance=(1.0, 1.0, 1.0),
                                     make=lens.make, model=f"{lens.make} {lens.model}", lens_model=lens.lens,
                                     focal_length=lens.focal_mm, f_number=lens.aperture, exposure_time=1 / 60, iso=200)


def distortion_left(truth: np.ndarray, delivered: np.ndarray) -> tuple[float, float]:
    """(95th percentile of the local shifts left once one scale about the centre is fitted, px; the corners'
    brightness over the centre's, delivered / truth)."""
    h, w = truth.shape[:2]
    lt, lo = (np.log(a.mean(axis=2) + 1e-3).astype(np.float32) for a in (truth, delivered))
    p = 96
    window = cv2.createHanningWindow((p, p), cv2.CV_32F)
    places, shifts = [], []
    for cy in np.linspace(p, h - p, 7):
        for cx in np.linspace(p, w - p, 10):
            y0, x0 = int(cy - p / 2), int(cx - p / 2)
            a, b = lt[y0:y0 + p, x0:x0 + p], lo[y0:y0 + p, x0:x0 + p]
            if a.std() < 0.05:
                continue
            (dx, dy), response = cv2.phaseCorrelate(a, b, window)
            if response > 0.2:
                places.append((cx - w / 2, cy - h / 2))
                shifts.append((dx, dy))
    if len(places) < 12:
        return float("nan"), float("nan")
    places_a, shifts_a = np.array(places), np.array(shifts)
    k = float((places_a * shifts_a).sum() / (places_a * places_a).sum())  # one scale about the centre
    left = np.hypot(*(shifts_a - k * places_a).T)

    def corners(img: np.ndarray) -> float:
        g = img.mean(axis=2)
        centre = g[h // 2 - 50:h // 2 + 50, w // 2 - 50:w // 2 + 50].mean()
        return float(np.mean([g[:100, :100].mean(), g[:100, -100:].mean(), g[-100:, :100].mean(),
                              g[-100:, -100:].mean()]) / centre)

    return float(np.percentile(left, 95)), corners(delivered) / corners(truth)


def colour_offsets(img: np.ndarray) -> float:
    """The median shift (px) of red and blue against green over patches along the frame's edges (phase correlation
    of their log images): the chromatic aberration left in a picture whose colours are one grey picture."""
    h, w = img.shape[:2]
    p = 128
    window = cv2.createHanningWindow((p, p), cv2.CV_32F)
    logs = [np.log(img[..., c] + 1e-3).astype(np.float32) for c in range(3)]
    shifts = []
    for cy in (p // 2 + 8, h // 2, h - p // 2 - 8):
        for cx in np.linspace(p // 2 + 8, w - p // 2 - 8, 9).astype(int):
            if cy == h // 2 and 0.2 * w < cx < 0.8 * w:
                continue  # the centre, where no lens fringes
            y0, x0 = cy - p // 2, cx - p // 2
            g = logs[1][y0:y0 + p, x0:x0 + p]
            if g.std() < 0.05:
                continue
            for c in (0, 2):
                shifts.append(np.hypot(*cv2.phaseCorrelate(g, logs[c][y0:y0 + p, x0:x0 + p], window)[0]))
    return float(np.median(shifts)) if len(shifts) >= 10 else float("nan")


def delivered(dng: Path, chart_file: Path, out: Path) -> tuple[np.ndarray, bool, float]:
    """``dng`` planned (its lens rule) and rendered full size under the chart: linear RGB, whether the lens was
    corrected, and the render and export's seconds."""
    chart = load_chart(chart_file)
    context = RunContext(shoot_dir=dng.parent, out_dir=out, chart=chart, shoot_id="lens")
    data = dng.read_bytes()
    fmt, kind = sniff_format(data[:65536], dng.suffix)
    task = SourceTask(path=dng, source_path=dng.name, content_hash=hashlib.sha256(data).hexdigest(),
                      file_size=len(data), format=fmt, source_kind=kind, seq=1, stem=dng.stem)
    item = WorkItem(task=task, record=task.new_record())
    decode, render, export = (REGISTRY[name] for name in ("decode_raw", "render", "export"))
    decode(decode.Params(), context).process(item)
    item.record.operations = plan_lens_corrections(item.record, chart.chart, PlanState(faces_that_count=()))
    start = time.perf_counter()
    render(render.Params(), context).process(item)
    export(export.Params(), context).process(item)
    seconds = time.perf_counter() - start
    png = out / item.record.exports[0].path
    pixels = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float32) / 65535
    return srgb_to_linear(pixels), bool(item.record.operations), seconds


def run(testdata: Path) -> list[dict]:
    rows = []
    pictures = photos(testdata)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        charts = {}
        for on in (True, False):
            charts[on] = tmp / f"chart_{on}.yaml"
            charts[on].write_text(CHART.format(on="true" if on else "false"), encoding="utf-8")
        for lens in LENSES:
            for name, srgb in pictures.items():
                truth = srgb_to_linear(srgb.astype(np.float32) / 255) * np.float32(0.8)
                grey = np.dstack([truth.mean(axis=2)] * 3)
                row = {"lens": lens, "photo": name}
                for kind, picture in (("colour", truth), ("grey", grey)):
                    shot = tmp / "shot" / f"{kind}.dng"
                    shot.parent.mkdir(exist_ok=True)
                    write_shot(shot, drawn_through(picture, lens), lens)
                    for on in (True, False):
                        pixels, corrected, seconds = delivered(shot, charts[on], tmp / f"out_{kind}_{on}")
                        if kind == "colour":
                            row[f"shift_{on}"], row[f"corners_{on}"] = distortion_left(truth, pixels)
                            row[f"seconds_{on}"] = seconds
                            row[f"matched_{on}"] = corrected
                        else:
                            row[f"fringes_{on}"] = colour_offsets(pixels)
                rows.append(row)
                print(f"{lens.lens[:34]:34} {name[:30]:30} shift {row['shift_True']:.2f} / {row['shift_False']:.2f} px"
                      f"  corners {row['corners_True']:.3f} / {row['corners_False']:.3f}"
                      f"  fringes {row['fringes_True']:.3f} / {row['fringes_False']:.3f} px", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    def med(key: str, lens: Lens | None = None) -> float:
        vals = [r[key] for r in rows if (lens is None or r["lens"] == lens) and np.isfinite(r[key])]
        return float(np.median(vals)) if vals else float("nan")

    lines = ["| lens (as the file names it), focal length, aperture | photos | matched | distortion left, 95th pct "
             "(px): corrected / not | corners' brightness vs the photo's: corrected / not | chromatic aberration "
             "left (px): corrected / not | render + export (s): corrected / not |",
             "|---|---|---|---|---|---|---|"]
    for lens in LENSES + (None,):
        mine = [r for r in rows if lens is None or r["lens"] == lens]
        name = ("all" if lens is None
                else f"{lens.make} {lens.model}, {lens.lens}, {lens.focal_mm:g} mm f/{lens.aperture:g}")
        matched = sum(r["matched_True"] for r in mine)
        pairs = [f"{med(f'{key}_True', lens):.{digits}f} / {med(f'{key}_False', lens):.{digits}f}"
                 for key, digits in (("shift", 2), ("corners", 3), ("fringes", 3), ("seconds", 2))]
        lines.append(f"| {name} | {len(mine)} | {matched} of {len(mine)} | " + " | ".join(pairs) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--testdata", type=Path,
                    default=Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--write", nargs="?", const=LENS_MD, type=Path, default=None, metavar="PATH",
                    help=f"write the table to PATH (default {LENS_MD.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    rows = run(args.testdata)
    text = table(rows)
    print(text)
    if args.write:
        head = (
            "# Lens profile corrections against known truth\n\n"
            "Written by `benchmarks/lens_corrections.py --write`: real photos drawn through real lenses' measured\n"
            "profiles (lensfun's reverse model: distortion, chromatic aberration, vignetting), written as the DNG of\n"
            "the body each lens was profiled on and named as that camera names it; planned and rendered full size\n"
            "(1536 x 1024) by postprod with the chart's lens corrections on and off. Medians over the photos. See\n"
            "the script's docstring for the measures.\n\n"
            f"- date: {time.strftime('%Y-%m-%d %H:%M')}\n"
            f"- machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"lensfunpy {lensfunpy.__version__}\n"
            f"- command: `python benchmarks/lens_corrections.py --write`: {time.perf_counter() - start:.0f} s\n\n"
        )
        args.write.write_text(head + text + "\n", encoding="utf-8")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
