"""The white balance read off a ColorChecker in the frame, against the four scene cues, on the shared data.

Prints one table:

- each real chart frame of the shared data (``raw/``, and ``wb/pairs``'s wrong-preset rendering): whether the
  chart is found, the light its greys read, and the four cues' reading of the same frame;
- the truth: the light on neutral 8 and 6.5 in boxes drawn by eye (:data:`EYE_DRAWN_GREYS`), not by the
  detector;
- casts of -120..+120 mired injected into each chart RAW's light (the proxy, linear camera light, times a
  black body's colour, as the accuracy corpus injects them): the error of the chart's reading and of the
  cues' against the light the frame then shows (the eye-drawn truth times the injected light);
- ``wb/pairs``: log2 R/B of the base chart's correction against the truth of labels.csv (+2.13);
- charts placed small: the chart frames scaled to 8-20 % of the width of other photos, found or not;
- false charts: frames without a chart (the shared photos and RAWs, the accuracy pool's Debian wallpapers
  when cached) in which one is found;
- time: the chart search per proxy, and the colour measure with and without it, in one run.

Nothing here is tuned: the chart module's tolerances are physical (its docstring).

Usage: ``python benchmarks/colour_checker.py [--data ../shared/data] [--write]`` (``--write``: also
benchmarks/COLOUR_CHECKER.md).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from charts.loader import load_chart  # noqa: E402
from pipeline.imaging.decode import decode_proxy  # noqa: E402
from pipeline.imaging.measure.colour import white_balance_cast  # noqa: E402
from pipeline.imaging.measure.colour_checker import find_colour_checker  # noqa: E402
from pipeline.imaging.measure.metering import inverse_tone_curve  # noqa: E402
from pipeline.imaging.white_balance import cast_mired, light_rgb  # noqa: E402
from pipeline.kernel.records import ImageRecord, OperationKind, SourceKind  # noqa: E402
from pipeline.planning.plan import plan_image  # noqa: E402

CHART_RAWS = ("Canon_PowerShot_G2_CRW_0304.CRW", "Canon_PowerShot_S40_CRW_0101.CRW",
              "Kodak_DC120_DC120IMG_P003911.KDC", "tinydng_colorchart.dng")
PAIR = "pairs/Canon1DsMkIII_0087_F_P.input.png"
PAIR_TRUTH_LOG2_RB = 2.13
CASTS_MIRED = (-120.0, -80.0, -40.0, -20.0, 20.0, 40.0, 80.0, 120.0)
RAW_SUFFIXES = (".crw", ".kdc", ".dng", ".raw", ".nef", ".cr2")
#: The truth: boxes inside the chart's neutral 8 and neutral 6.5 patches of each chart frame, drawn by eye on a
#: grid over the proxy (x0, y0, x1, y1 as fractions of its width and height), not by the detector. The light
#: is their pixels' median, as a retoucher's dropper on them reads it.
EYE_DRAWN_GREYS = {
    "Canon_PowerShot_G2_CRW_0304.CRW": ((0.25, 0.71, 0.32, 0.81), (0.39, 0.71, 0.47, 0.81)),
    "Canon_PowerShot_S40_CRW_0101.CRW": ((0.25, 0.68, 0.33, 0.78), (0.38, 0.68, 0.46, 0.78)),
    "Kodak_DC120_DC120IMG_P003911.KDC": ((0.13, 0.61, 0.20, 0.69), (0.24, 0.61, 0.30, 0.69)),
    "tinydng_colorchart.dng": ((0.455, 0.775, 0.485, 0.825), (0.515, 0.775, 0.55, 0.825)),
    "Canon1DsMkIII_0087_F_P.input.png": ((0.435, 0.89, 0.465, 0.91), (0.49, 0.89, 0.52, 0.91)),
}


def proxy(path: Path) -> tuple[np.ndarray, bool]:
    """The analysis proxy of ``path`` and whether it is a rendered source."""
    raw = path.suffix.lower() in RAW_SUFFIXES
    rgb = decode_proxy(path, SourceKind.RAW if raw else SourceKind.RASTER, 1600, 200_000_000).rgb
    return rgb, not raw


def eye_drawn_light(rgb: np.ndarray, rendered: bool, boxes: tuple) -> np.ndarray:
    """The light on the eye-drawn grey boxes (:data:`EYE_DRAWN_GREYS`): each box's median, unit green, their
    log mean; a rendered source's in its scene light, as the colour measure reads it."""
    h, w = rgb.shape[:2]
    logs = []
    for x0, y0, x1, y1 in boxes:
        median = np.median(rgb[round(y0 * h):round(y1 * h), round(x0 * w):round(x1 * w)].reshape(-1, 3), axis=0)
        if rendered:
            median = np.asarray(inverse_tone_curve(median), dtype=np.float64)
        logs.append(np.log(median / median[1]))
    return np.exp(np.mean(logs, axis=0))


def base_correction_log2_rb(rgb: np.ndarray, rendered: bool) -> float:
    """log2 R/B of the gains the base chart's plan applies to a frame measured as postprod measures it."""
    cast = white_balance_cast(rgb, rendered=rendered)
    row = dict(source_path="a.png", content_hash="0" * 64, file_size=1, format="png", source_kind=SourceKind.RASTER,
               width=rgb.shape[1], height=rgb.shape[0], exposure_ev=0.0, sharpness=100.0, lines_found=0,
               phash="0" * 16, clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0,
               clipped_shadows_pct_b=0.0, wb_cast_a=cast.a, wb_cast_b=cast.b,
               wb_temperature_shift_k=cast.temperature_shift_k, wb_cast_mired=cast.mired, wb_tint=cast.tint,
               wb_uncertainty_mired=cast.uncertainty_mired, wb_colour_checker=cast.colour_checker)
    ops = plan_image(ImageRecord.from_row(row, faces=[]), load_chart("base").chart)
    wb = next((o for o in ops if o.kind is OperationKind.WHITE_BALANCE and "gains" in o.params), None)
    return 0.0 if wb is None else math.log2(wb.params["gains"][0] / wb.params["gains"][2])


def placed_recall(data: Path) -> str:
    """How often a chart is found when it is a small part of the frame: the two Canon chart frames, scaled to
    a share of the width of six shared photos (1600 px) and pasted in at their median brightness."""
    charts = [proxy(data / "raw" / n)[0] for n in CHART_RAWS[:2]]
    scenes = [proxy(p)[0] for p in sorted((data / "exposure").glob("*.[jJ][pP][gG]"))[:6]]
    found = []
    for share in (0.08, 0.10, 0.12, 0.15, 0.20):
        hits = 0
        for k, scene in enumerate(scenes):
            for chart in charts:
                frame = cv2.resize(scene, (1600, round(1600 * scene.shape[0] / scene.shape[1])))
                w = round(1600 * share)
                small = cv2.resize(chart, (w, round(w * chart.shape[0] / chart.shape[1])), interpolation=cv2.INTER_AREA)
                small = small * (np.median(frame) / np.median(small))
                y, x = frame.shape[0] // 3, 200 + 100 * k
                frame[y:y + small.shape[0], x:x + small.shape[1]] = small[: frame.shape[0] - y]
                hits += find_colour_checker(frame) is not None
        found.append(f"{share:.0%} of the width: {hits} of {2 * len(scenes)}")
    return "; ".join(found)


def timed(fn, *args, **kw):  # noqa: ANN001, ANN201
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--write", nargs="?", const=ROOT / "benchmarks" / "COLOUR_CHECKER.md", type=Path, default=None,
                        metavar="PATH", help="also write the table as Markdown (default benchmarks/COLOUR_CHECKER.md)")
    args = parser.parse_args()
    data: Path = args.data
    rows: list[tuple[str, str]] = []
    frames = [data / "raw" / n for n in CHART_RAWS] + [data / "wb" / PAIR]
    chart_err: list[float] = []
    cue_err: list[float] = []
    search_s: list[float] = []
    with_s: list[float] = []
    without_s: list[float] = []
    for path in frames:
        rgb, rendered = proxy(path)
        checker, dt = timed(find_colour_checker, rgb, rendered=rendered)
        search_s.append(dt)
        cues = white_balance_cast(rgb, rendered=rendered, look_for_chart=False)
        light = eye_drawn_light(rgb, rendered, EYE_DRAWN_GREYS[path.name])
        truth = cast_mired(light)
        if checker is None:
            rows.append((path.name, f"no chart found; truth {truth:+.0f} mired, the four cues read {cues.mired:+.0f}"))
            continue
        rows.append((path.name, f"truth {truth:+.0f} mired: the chart read {cast_mired(checker.light):+.0f} "
                                f"(+-{checker.uncertainty_mired:.0f}), the four cues {cues.mired:+.0f}"))
        if rendered:  # already 174 mired blue and clipping: a cast on top is no photograph (the pair row reads it)
            continue
        for shift in CASTS_MIRED:
            cast_rgb = (rgb * light_rgb(shift)).astype(np.float32)
            truth = cast_mired(light * light_rgb(shift))
            on_chart = find_colour_checker(cast_rgb, rendered=rendered)
            chart_err.append(math.inf if on_chart is None else abs(cast_mired(on_chart.light) - truth))
            cue = white_balance_cast(cast_rgb, rendered=rendered, look_for_chart=False)
            cue_err.append(math.inf if cue is None else abs(cue.mired - truth))
    n = len(chart_err)
    rows.append((f"injected casts ({n}: {len(CASTS_MIRED)} per chart RAW)",
                 f"median |error| chart {statistics.median(chart_err):.1f} mired (max {max(chart_err):.1f}), "
                 f"four cues {statistics.median(cue_err):.1f} (max {max(cue_err):.1f}); read past 10 mired: chart "
                 f"{sum(e > 10 for e in chart_err)}, cues {sum(e > 10 for e in cue_err)}"))
    pair_rgb, _ = proxy(data / "wb" / PAIR)
    got = base_correction_log2_rb(pair_rgb, rendered=True)
    rows.append(("wb/pairs: base chart's correction, log2 R/B", f"{got:+.2f} against a truth of "
                                                               f"{PAIR_TRUTH_LOG2_RB:+.2f} (|error| "
                                                               f"{abs(got - PAIR_TRUTH_LOG2_RB):.2f}, target 0.5)"))
    others = [data / "raw" / n for n in ("Canon_PowerShot_G2_CRW_0305.CRW", "Canon_PowerShot_S40_CRW_0113.CRW",
                                         "Kodak_DC50_DC50IMG_DC0008L.KDC", "Kodak_DC120_DC120IMG_P003908.KDC")]
    others += sorted((data / "exposure").glob("*.[jJ][pP][gG]")) + sorted((data / "wb").glob("*.jpg"))
    others += sorted((data / "faces").rglob("*.jpg"))
    wallpapers = Path(os.environ.get("POSTPROD_ACCURACY_CACHE", Path.home() / ".cache" / "postprod" / "accuracy"))
    others += sorted((wallpapers / "debian_wallpapers").glob("*.jpg"))
    false = []
    for path in others:
        rgb, rendered = proxy(path)
        checker, dt = timed(find_colour_checker, rgb, rendered=rendered)
        search_s.append(dt)
        _, dt_with = timed(white_balance_cast, rgb, rendered=rendered)
        _, dt_without = timed(white_balance_cast, rgb, rendered=rendered, look_for_chart=False)
        with_s.append(dt_with)
        without_s.append(dt_without)
        if checker is not None:
            false.append(path.name)
    rows.append((f"frames without a chart ({len(others)})", f"chart found in {len(false)}" +
                 (f": {', '.join(false)}" if false else "")))
    rows.append(("time per 1600 px proxy (median)",
                 f"chart search {1000 * statistics.median(search_s):.0f} ms; colour measure "
                 f"{1000 * statistics.median(with_s):.0f} ms with it, {1000 * statistics.median(without_s):.0f} ms "
                 f"without ({statistics.median(with_s) / statistics.median(without_s):.2f}x)"))
    rows.append(("charts placed small in other photos (found)", placed_recall(data)))
    width = max(len(k) for k, _ in rows)
    print(f"{'':{width}}  ColorChecker white balance (benchmarks/colour_checker.py)")
    for k, v in rows:
        print(f"{k:{width}}  {v}")
    if args.write:
        cmd = "python benchmarks/colour_checker.py --write"
        machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        table = "\n".join(f"| {k} | {v} |".replace("|error|", "\\|error\\|") for k, v in rows)
        args.write.write_text(
            f"# White balance from a ColorChecker in the frame: measured\n\n{date.today().isoformat()}, {machine}, "
            f"`{cmd}`. What each row is: the docstring of `benchmarks/colour_checker.py`. The truth of the chart "
            f"frames is the light on neutral 8 and 6.5 in boxes drawn by eye, not by the detector.\n\n"
            f"| | |\n|---|---|\n{table}\n", encoding="utf-8")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
