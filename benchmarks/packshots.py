"""Packshots on white: real subjects cut out and set on a white sweep at known exposures, planned by postprod.

An e-commerce packshot or a high-key portrait is lit so that its backdrop is
pure white (marketplaces ask for 255, 255, 255) while the subject is exposed for
itself. The truth is made, never read off a converter: each cut-out (a photo
with its alpha matte, ``*.png`` in ``--cutouts``; by default scikit-image's
coffee cup inside a drawn ellipse) has its subject's light multiplied by
``2**ev`` (:data:`OFFSETS_EV`, linear light), is composited on white with its
own matte, and subject and sweep are lit by a neutral, a warm or a cool light
(:data:`LIGHTS`), as a JPEG. The twin at 0 is the subject as photographed; the one at
``ev`` needs ``-ev`` more than it (relative truth: the originals' own exposure is
whatever their photographer chose).

It runs postprod's analysis and plan (chart ``base``, as
``benchmarks/do_no_harm.py`` does) and prints, over the twins:

- backdrop found: the manifest's ``exposure_backdrop_pct`` above 0;
- darkened: any darkening applied by the renderer (a darkening of 0.5 EV
  takes 255 to 186: the backdrop greys unless the plan whitens it, which the
  delivered table below counts);
- the subjects under (``ev`` < 0): the correction's error against the relative
  truth, ``|(c(ev) - c(0)) + ev|``, median, and how many were left as shot;
- the subjects over (``ev`` > 0): the same error, and how many were darkened or
  left as shot with an ``exposure_bright`` flag;
- the white balance: the shift's error against the light (a correction of minus
  its mired is right), and how many are within 10 mired;
- beside postprod, a naive meter of the whole frame (its median luminance to
  sRGB's middle grey) and grey world, as ``benchmarks/accuracy.py``'s naive baseline;
- the picture delivered: each twin rendered with its plan by this checkout's
  renderer (:func:`delivered`, 800 px, as the exports are), the share of the
  sweep (away from the subject's matte by 3 % of the frame) at 254 or more in
  every channel, and the subject's pixels at 254 or more in a channel (blown),
  against the same count on the twin as shot;
- the crops: the twins planned again under ``social_media`` (4:5, 1:1 and 9:16
  crops; ``--only plan``), how many crops cut the subject (its matte's box,
  less than 99 % of it inside the crop), and how many are padded beyond the
  frame; beside the largest centred crop of each aspect (naive).

Cut-outs with real mattes: ``danielgatis/rembg``'s ``examples/*.out.png``
(animals, cars, people; its ``plants-1`` matte keeps 1 % and is skipped) are
the set the README reports. The rule
(:func:`pipeline.imaging.measure.exposure.white_backdrop`) was written on them
and the cup, so they are no independent test of it: its 5 % bound on the
subject's clipping sits between their subjects as photographed (0-3.7 %) and
the accuracy corpus's scenes developed over (5.1-84 %). What checks it
independently is that corpus: no backdrop is found in its 1,053 items, and
every figure of ACCURACY.md is unchanged.

``--falloff EV`` lights the sweep unevenly: its light falls off from the
frame's centre as the square of the distance, EV darker at the corners (one
light on a wide sweep); the sweep's truth is still white.

    python benchmarks/packshots.py [--cutouts DIR] [--work DIR] [--before CHECKOUT] [--falloff EV]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.do_no_harm import decisions, run  # noqa: E402

#: The subject's exposure against the photo's, in EV of linear light.
OFFSETS_EV = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0)
#: The light on subject and sweep alike, before any white balance, in mired from daylight (D65) on the
#: Planckian locus: neutral, warmer and cooler (the sweep is blown in its brightest channel).
LIGHTS = {"neutral": 0.0, "warm": 45.0, "cool": -45.0}
#: The naive baseline's target: sRGB's middle grey (0.214 linear), as the accuracy benchmark's.
NAIVE_MIDDLE = 0.214


def coffee_cup() -> np.ndarray:
    """scikit-image's coffee cup cut out of its table by a drawn ellipse: RGBA float32 (sRGB-encoded colour,
    alpha 0 or 1)."""
    from skimage import data

    rgb8 = data.coffee()
    h, w = rgb8.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    cup = ((xx - w * 0.45) / (w * 0.33)) ** 2 + ((yy - h * 0.45) / (h * 0.42)) ** 2 < 1
    return np.dstack([rgb8 / 255.0, cup]).astype(np.float32)


def cutouts(folder: Path | None) -> dict[str, np.ndarray]:
    """Name -> RGBA float32 (sRGB-encoded colour, linear alpha) of each cut-out, at most 1600 px long."""
    from PIL import Image

    if folder is None:
        return {"coffee": coffee_cup()}
    out = {}
    for path in sorted(folder.glob("*.png")):
        im = Image.open(path).convert("RGBA")
        im.thumbnail((1600, 1600))
        rgba = np.asarray(im).astype(np.float32) / 255
        if rgba[..., 3].mean() >= 0.02:  # a matte that kept something
            out[path.stem.split(".")[0]] = rgba
    return out


def on_white(rgba: np.ndarray, ev: float = 0.0, shift_mired: float = 0.0, falloff_ev: float = 0.0) -> np.ndarray:
    """A cut-out set on a white sweep, sRGB 8 bits: its subject's light times ``2**ev``, subject and sweep lit by a
    light ``shift_mired`` from daylight on the Planckian locus (the sweep blown in its brightest channel). A drawn
    mask's edge (alpha 0 or 1) is softened as a lens softens it; a real matte keeps its own. ``falloff_ev``: the
    sweep's light falls off from the frame's centre as the square of the distance, this many EV at the corners
    (one light on a wide sweep), the subject's light left as it is."""
    import cv2

    from pipeline.imaging.color import linear_to_srgb, srgb_to_linear
    from pipeline.imaging.white_balance import light_rgb

    alpha = rgba[..., 3:]
    if set(np.unique(alpha)) <= {0.0, 1.0}:
        alpha = cv2.GaussianBlur(alpha[..., 0], (0, 0), 1.5)[..., None]
    gains = (light_rgb(shift_mired) / light_rgb(shift_mired).max()).astype(np.float32)
    sweep = sweep_light(alpha.shape[0], alpha.shape[1], falloff_ev)[..., None]
    lit = (srgb_to_linear(rgba[..., :3]) * np.float32(2.0**ev) * alpha + (1 - alpha) * sweep) * gains
    return (linear_to_srgb(np.clip(lit, 0, 1)) * 255 + 0.5).astype(np.uint8)


def sweep_light(height: int, width: int, falloff_ev: float) -> np.ndarray:
    """A sweep's light over a ``width`` x ``height`` frame, (H, W) float32: 1 at the centre, falling off as the square
    of the distance to ``falloff_ev`` EV darker at the corners (one light on a wide sweep)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    corners = ((2 * x / width - 1) ** 2 + (2 * y / height - 1) ** 2) / 2  # 0 at the centre, 1 at the corners
    return np.exp2(-np.float32(falloff_ev) * corners)


def make_twins(cuts: dict[str, np.ndarray], shoot: Path, falloff_ev: float = 0.0) -> dict[str, tuple[str, float]]:
    """Each cut-out on white at every offset under every light, as JPEGs in ``shoot`` (the sweep falling off by
    ``falloff_ev`` at the corners: :func:`on_white`); file name -> (cut-out and light, offset)."""
    from PIL import Image

    shoot.mkdir(parents=True, exist_ok=True)
    truth = {}
    for name, rgba in cuts.items():
        for tint, shift in LIGHTS.items():
            for ev in OFFSETS_EV:
                file = f"{name}_{tint}_ev{ev:+.1f}.jpg"
                Image.fromarray(on_white(rgba, ev, shift, falloff_ev)).save(shoot / file, quality=95)
                truth[file] = (f"{name}_{tint}", ev)
    return truth


def naive_correction(path: Path) -> float:
    """The naive meter's correction (EV): the whole frame's median luminance to sRGB's middle grey."""
    from PIL import Image

    from pipeline.imaging.color import srgb_to_linear

    rgb = srgb_to_linear(np.asarray(Image.open(path).convert("RGB")).astype(np.float32) / 255)
    median = float(np.median(rgb @ np.float32([0.2126, 0.7152, 0.0722])))
    return float(np.log2(NAIVE_MIDDLE / max(median, 1e-6)))


def naive_mired(path: Path) -> float:
    """The naive white balance's shift (mired, + = warmer): grey world, as the accuracy benchmark's baseline."""
    from PIL import Image

    from pipeline.imaging.color import srgb_to_linear
    from pipeline.imaging.white_balance import cast_mired

    rgb = srgb_to_linear(np.asarray(Image.open(path).convert("RGB")).astype(np.float32) / 255)
    return -cast_mired(rgb.reshape(-1, 3).mean(axis=0).astype(np.float64))


#: Long edge of the pictures :func:`delivered` renders.
DELIVERED_LONG_EDGE = 800


def delivered(out: Path, shoot: Path, file: str) -> np.ndarray:
    """The twin ``file`` as postprod delivers it under the plan in ``out`` (its instructions), rendered whole by this
    checkout's renderer at :data:`DELIVERED_LONG_EDGE`, sRGB 8 bits."""
    import json

    from PIL import Image

    from pipeline.imaging.color import srgb_to_linear
    from pipeline.imaging.render import adjustments_from_operations, preview_size, render_frame
    from pipeline.outputs.instructions import instruction_name, operation_from_doc

    doc = json.loads((out / "instructions" / instruction_name(file)).read_text())
    rgb = srgb_to_linear(np.asarray(Image.open(shoot / file).convert("RGB")).astype(np.float32) / 255)
    h, w = rgb.shape[:2]
    adjustments = adjustments_from_operations([operation_from_doc(o) for o in doc["operations"]],
                                              display_referred=True)
    return render_frame(rgb, w, h, adjustments, (0.0, 0.0, float(w), float(h)),
                        preview_size(w, h, DELIVERED_LONG_EDGE), "srgb", 0.0, 8)


def matte_of(cuts: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The alpha matte of a twin's cut-out (``name``: the cut-out and its light, as :func:`make_twins` names it)."""
    return cuts[name.rsplit("_", 1)[0]][..., 3]


def sweep_and_subject(picture: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of a picture on white, ``(N, 3)`` each: its sweep (away from the subject's matte by 3 % of the
    frame) and its subject (where the matte is whole)."""
    import cv2

    matte = cv2.resize(alpha, picture.shape[1::-1], interpolation=cv2.INTER_AREA)
    reach = max(3, int(0.03 * max(picture.shape[:2])))
    near = cv2.dilate((matte > 0.02).astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    return picture[near == 0], picture[matte > 0.98]


def delivered_rows(truth: dict[str, tuple[str, float]], cuts: dict[str, np.ndarray],
                   outs: dict[str, Path], shoot: Path) -> list[str]:
    """The table of the pictures delivered: the sweep white, the subject blown, beside the twins as shot."""
    from PIL import Image

    def counts(picture_of) -> tuple[float, float, int]:
        white, blown, n = 0.0, 0.0, 0
        for f, (name, _) in truth.items():
            sweep, subject = sweep_and_subject(picture_of(f), matte_of(cuts, name))
            white += float((sweep.min(axis=1) >= 254).mean())
            blown += float((subject.max(axis=1) >= 254).mean())
            n += 1
        return white / n * 100, blown / n * 100, n

    def as_shot(f: str) -> np.ndarray:
        im = Image.open(shoot / f).convert("RGB")
        im.thumbnail((DELIVERED_LONG_EDGE, DELIVERED_LONG_EDGE))
        return np.asarray(im)

    rows = ["| pictures | sweep white (254+ in every channel; mean share) | subject blown (254+ in a channel; mean "
            "share) | twins |", "|---|---|---|---|"]
    for label, picture_of in [("as shot", as_shot)] + [
            (f"{label}, delivered", lambda f, out=out: delivered(out, shoot, f)) for label, out in outs.items()]:
        white, blown, n = counts(picture_of)
        rows.append(f"| {label} | {white:.1f} % | {blown:.2f} % | {n} |")
    return rows


#: The chart the crops are planned under (its crops: 4:5, 1:1, 9:16).
CROPS_CHART = "social_media"


def crop_rows(truth: dict[str, tuple[str, float]], cuts: dict[str, np.ndarray], outs: dict[str, Path]) -> list[str]:
    """The table of the crops under :data:`CROPS_CHART` (``outs``: each system's plan under it): crops that cut the
    subject's matte, crops padded beyond the frame, beside the largest centred crop of each aspect."""
    import json

    from charts.loader import load_chart
    from pipeline.imaging.geometry import kept_share, place_crop
    from pipeline.outputs.instructions import instruction_name

    def subject(name: str) -> tuple[float, float, float, float]:
        ys, xs = np.nonzero(matte_of(cuts, name) > 0.5)
        return float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())

    aspects = [c.ratio for c in load_chart(CROPS_CHART).chart.crops]
    rows = ["| crops under social_media (4:5, 1:1, 9:16) | crops cutting the subject | crops padded beyond the frame "
            "| crops |", "|---|---|---|---|"]
    for label, out in outs.items():
        cut = padded = n = 0
        for f, (name, _) in truth.items():
            doc = json.loads((out / "instructions" / instruction_name(f)).read_text())
            for o in (o for o in doc["operations"] if o["kind"] == "crop"):
                cut += kept_share(tuple(o["params"]["box"]), 0.0, subject(name)) < 0.99
                padded += bool(o["params"].get("pad_rgb"))
                n += 1
        rows.append(f"| {label} | {cut} | {padded} | {n} |")
    cut = n = 0
    for f, (name, _) in truth.items():
        h, w = matte_of(cuts, name).shape
        for ratio in aspects:
            cut += kept_share(place_crop(w, h, ratio), 0.0, subject(name)) < 0.99
            n += 1
    rows.append(f"| naive (the largest centred crop) | {cut} | 0 | {n} |")
    return rows


def report(truth: dict[str, tuple[str, float]], outs: dict[str, Path], shoot: Path) -> list[str]:
    """The table's rows: postprod (and any checkout it is compared with) against the naive meter."""
    import pyarrow.parquet as pq

    systems, backdrop, photos = [], {}, {}
    for label, out in outs.items():
        manifest = pq.read_table(out / "manifest.parquet")
        backdrop[label] = {r["source_path"]: r.get("exposure_backdrop_pct") or 0.0 for r in manifest.select(
            [c for c in ("source_path", "exposure_backdrop_pct") if c in manifest.column_names]).to_pylist()}
        photos[label] = {p.name: p for p in decisions(out)}
        systems.append((label, {f: photos[label][f].ev for f in truth if f in photos[label]}))
    systems.append(("naive", {f: naive_correction(shoot / f) for f in truth}))
    rows = []
    for label, corr in systems:
        at0 = {name: corr.get(f) for f, (name, ev) in truth.items() if ev == 0.0}
        under = [(f, name, ev) for f, (name, ev) in truth.items() if ev < 0 and f in corr and at0.get(name) is not None]
        over = [(f, name, ev) for f, (name, ev) in truth.items() if ev > 0 and f in corr]
        errs = [abs((corr[f] - at0[name]) + ev) for f, name, ev in under]
        over_errs = [abs((corr[f] - at0[name]) + ev) for f, name, ev in over if at0.get(name) is not None]
        darkened = sum(corr[f] < 0 for f in corr)
        mired = {f: photos[label][f].mired for f in corr} if label in photos else {
            f: naive_mired(shoot / f) for f in corr}
        wb_errs = [abs(mired[f] + LIGHTS[name.rsplit("_", 1)[1]]) for f, (name, _) in truth.items() if f in mired]
        found = sum(backdrop[label].get(f, 0) > 0 for f in corr) if label in backdrop else "—"
        flagged = sum("exposure_bright" in photos[label][f].flags for f, _, _ in over) if label in photos else "—"
        rows.append(
            f"| {label} | {found} of {len(corr)} | {darkened} of {len(corr)} | {statistics.median(errs):.2f} "
            f"(n={len(errs)}) | {sum(abs(corr[f]) < 1e-9 for f, _, _ in under)} of {len(under)}"
            f" | {statistics.median(over_errs):.2f} (n={len(over_errs)})"
            f" | {sum(corr[f] < 0 for f, _, _ in over)} of {len(over)} | {flagged} of {len(over)}"
            f" | {statistics.median(wb_errs):.1f} | {sum(e <= 10 for e in wb_errs)} of {len(wb_errs)} |")
    return ["| system | backdrop found | darkened (greys the backdrop unless whitened) | subjects under: median "
            "error vs truth (EV) | subjects under left as shot | subjects over: median error vs truth (EV) | "
            "subjects over darkened | subjects over flagged exposure_bright | white balance: median error vs the "
            "light (mired) | within 10 mired |",
            "|---|---|---|---|---|---|---|---|---|---|", *rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cutouts", type=Path, help="a folder of cut-outs (RGBA PNGs); default: scikit-image's cup")
    ap.add_argument("--work", type=Path, help="keep the twins and the analysis here (default: a temporary folder)")
    ap.add_argument("--before", type=Path, metavar="CHECKOUT",
                    help="also plan the same twins with another checkout's code (a before/after in one run)")
    ap.add_argument("--falloff", type=float, default=0.0, metavar="EV",
                    help="the sweep's light falls off this many EV towards the corners (default 0: evenly lit)")
    args = ap.parse_args(argv)
    if args.before and not (args.before / "pipeline" / "cli").is_dir():
        ap.error(f"--before {args.before}: not a checkout of postprod (no pipeline/cli in it)")
    with tempfile.TemporaryDirectory(prefix="postprod-packshots-") as tmp:
        work = args.work or Path(tmp)
        cuts = cutouts(args.cutouts)
        truth = make_twins(cuts, work / "shoot", args.falloff)
        outs = {"postprod": run(work / "shoot", "base", work / "now")}
        if args.before:
            outs[f"postprod at {args.before.name}"] = run(work / "shoot", "base", work / "before",
                                                          checkout=args.before.resolve())
        print(f"{len(cuts)} cut-outs x {len(OFFSETS_EV)} exposures x {len(LIGHTS)} lights ({', '.join(LIGHTS)}) on "
              f"white ({', '.join(cuts)}), the sweep {args.falloff:g} EV darker in the corners, chart base:")
        print("\n".join(report(truth, outs, work / "shoot")))
        print()
        print("\n".join(delivered_rows(truth, cuts, outs, work / "shoot")))
        # The same analyses planned again under a chart with crops (after the pictures above: this re-plans them).
        replanned = {label: run(work / "shoot", CROPS_CHART, out.parent, only_plan=True,
                                checkout=args.before.resolve() if label != "postprod" else ROOT)
                     for label, out in outs.items()}
        print()
        print("\n".join(crop_rows(truth, cuts, replanned)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
