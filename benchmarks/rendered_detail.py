"""A rendered source's darkening and white balance against the truth: JPEG twins corrected back onto their 0 EV,
uncast twin, fine detail kept or steepened.

The accuracy benchmark's corpus (its cache, ``POSTPROD_ACCURACY_CACHE``; built by ``benchmarks/accuracy.py``) has
JPEG twins of each photo developed at -2..+2 EV, and under injected colour casts, by one curve. Near white both
corrections move tones through the inverse of the curve's shoulder, which is steep: the source's noise, its JPEG
blocks and its 8-bit steps come out stronger than they were seen, unless the correction is read at the level's
base (:func:`~pipeline.imaging.measure.metering.split_level`). Compared with the twin developed at 0 EV without a
cast, in 8-bit sRGB codes:

- **darkening**: each twin developed 1 EV over or more, darkened by its offset
  (:func:`~pipeline.imaging.measure.metering.darken_display_referred`);
- **white balance**: each cast twin, balanced
  (:func:`~pipeline.imaging.measure.metering.balance_display_referred`) by the gains that bring its mid-tones
  onto the uncast twin's in the camera-like curve's scene light (the truth's gains, not the plan's estimate:
  what is measured is how the gains are applied).

Ways: **each pixel alone** (the renderer before RENDER_VERSION 6 for the darkening, 7 for the balance): the
correction read at each pixel's own level; **detail kept** (the renderer now): read at the level's base, the fine
detail keeping its displayed contrast; **plain display gain** (a diagnostic): the gain on the display light, as a
RAW's pixels take it.

Rows: the mean |error|; the error of the fine detail (the picture less its Gaussian blur of 2 px: of its grey for
the darkening, of its chroma, red and blue less green, for the balance); and the noise (standard deviation of
that detail) over the areas the truth shows smooth and bright (its detail under 1 code within 4 px, its level
over 150), beside the truth's own. Medians over the twins of each split; nothing is fitted here
(:data:`~pipeline.imaging.measure.metering.DETAIL_RADIUS_PX` and
:data:`~pipeline.imaging.measure.metering.DETAIL_CODES` were set before, and ``--radius``/``--codes`` show others).

The corpus's JPEG twins are developed by RawTherapee's film-like curve, the one the camera-like curve was fitted
on. ``--darktable`` also develops the corpus's DNG twins by ``darktable-cli``'s default pipeline, a curve nothing
was fitted on, into the cache (``darktable/``, a few minutes the first time), and compares them the same way.

    python benchmarks/rendered_detail.py [--split held_out|tuning|both] [--darktable] [--radius PX] [--codes CODES]
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
#: The display-linear levels (every channel, both twins) whose scene light sets a cast twin's gains.
MID_TONES = (0.03, 0.6)
WAYS = ("each pixel alone", "detail kept", "plain display gain")


def codes(display_linear: np.ndarray) -> np.ndarray:
    return linear_to_srgb(np.clip(display_linear, 0.0, 1.0)) * 255.0


def detail(plane: np.ndarray) -> np.ndarray:
    plane = plane.astype(np.float32)
    return plane - cv2.GaussianBlur(plane, (0, 0), 2.0)


def grey_detail(picture: np.ndarray) -> list[np.ndarray]:
    return [detail(picture.mean(axis=2))]


def chroma_detail(picture: np.ndarray) -> list[np.ndarray]:
    return [detail(picture[..., c] - picture[..., 1]) for c in (0, 2)]


def twins(split: str, kind: str, domain: str = "jpg", develop: Callable[[dict], Path] | None = None
          ) -> list[tuple[str, dict, Path, Path]]:
    """(id, truth, twin, reference twin) of the corpus's ``kind`` twins of ``split``: exposure twins developed
    over (``exposure``) or cast twins (``cast``), each with its 0 EV uncast twin; its rendered twins (``domain``
    ``jpg``), or its DNG twins (``raw``) each developed by ``develop`` (item -> JPEG)."""
    manifest = CACHE / "corpus" / "manifest.json"
    if not manifest.is_file():
        raise SystemExit(f"no accuracy corpus at {manifest}: run benchmarks/accuracy.py first")
    items = {i["id"]: i for i in json.loads(manifest.read_text())["items"]}
    path = develop or (lambda item: CACHE / "corpus" / item["file"])
    marker = f"_{domain}_ev+" if kind == "exposure" else f"_{domain}_cast"
    out = []
    for iid, item in sorted(items.items()):
        if item["split"] != split or item["set"] != kind or marker not in iid:
            continue
        reference = items.get(iid.split(f"_{domain}_")[0] + f"_{domain}_ev+0.0")
        if reference is not None and (kind == "cast" or float(item["truth"]["ev"]) <= -MIN_OFFSET_EV):
            out.append((iid, item["truth"], path(item), path(reference)))
    return out


def darktable_jpeg(item: dict) -> Path:
    """The corpus DNG ``item`` developed by ``darktable-cli``'s default pipeline (cached in the corpus's cache)."""
    dng = CACHE / "corpus" / item["file"]
    out_dir = CACHE / "darktable"
    jpg = out_dir / (dng.stem + ".jpg")
    if not jpg.is_file():
        out_dir.mkdir(exist_ok=True)
        tmp = out_dir / (dng.stem + ".tmp.jpg")
        darktable_develop(dng, tmp, out_dir / "config")
        tmp.replace(jpg)
    return jpg


def darktable_develop(dng: Path, jpg: Path, config: Path) -> None:
    """``dng`` developed to ``jpg`` by ``darktable-cli``'s default pipeline (its configuration in ``config``)."""
    subprocess.run(["darktable-cli", str(dng), str(jpg), "--core", "--configdir", str(config),
                    "--library", ":memory:"], check=True, capture_output=True, timeout=600)


def cast_gains(twin: np.ndarray, reference: np.ndarray) -> np.ndarray | None:
    """The per-channel gains that bring ``twin``'s mid-tones onto ``reference``'s in the camera-like curve's
    scene light (medians of the log ratio; display-linear inputs); None without mid-tones in both."""
    lo, hi = MID_TONES
    mid = ((twin.min(axis=2) > lo) & (twin.max(axis=2) < hi) & (reference.min(axis=2) > lo)
           & (reference.max(axis=2) < hi))
    if mid.sum() < 1000:
        return None
    ratio = np.log(metering.inverse_tone_curve(reference[mid])) - np.log(metering.inverse_tone_curve(twin[mid]))
    return np.exp(np.median(ratio, axis=0)).astype(np.float32)


def corrected(kind: str, x: np.ndarray, truth: dict, reference: np.ndarray) -> dict[str, np.ndarray] | None:
    """Each way's correction of the display-linear twin ``x`` (sRGB codes); None if a cast twin has no gains."""
    split = metering.split_level(metering.encoded_level(x))
    if kind == "exposure":
        gain = 2.0 ** float(truth["ev"])
        return {"each pixel alone": codes(metering.darken_display_referred(x, gain)),
                "detail kept": codes(metering.darken_display_referred(x, gain, split=split)),
                "plain display gain": codes(x * np.float32(gain))}
    gains = cast_gains(x, reference)
    if gains is None:
        return None
    return {"each pixel alone": codes(metering.balance_display_referred(x, gains)),
            "detail kept": codes(metering.balance_display_referred(x, gains, split=split)),
            "plain display gain": codes(x * gains)}


def measure(kind: str, twin: Path, reference: Path, truth: dict) -> dict[str, tuple[float, float, float]] | None:
    """Each way's (mean error, detail error, smooth-area noise) and the truth's noise; None if the sizes differ."""
    x = srgb_to_linear(cv2.imread(str(twin))[..., ::-1] / np.float32(255.0))
    ref = cv2.imread(str(reference))[..., ::-1].astype(np.float32)
    if x.shape != ref.shape:
        return None
    ways = corrected(kind, x, truth, srgb_to_linear(ref / np.float32(255.0)))
    if ways is None:
        return None
    fine = grey_detail if kind == "exposure" else chroma_detail
    smooth = (cv2.GaussianBlur(np.abs(detail(ref.mean(axis=2))), (0, 0), 4.0) < 1.0) & (ref.max(axis=2) > 150)

    def noise(a: np.ndarray) -> float:
        return float(np.sqrt(np.mean([d[smooth].var() for d in fine(a)]))) if smooth.sum() > 100 else float("nan")

    truth_fine = fine(ref)
    out = {name: (float(np.abs(a - ref).mean()),
                  float(np.mean([np.abs(d - t).mean() for d, t in zip(fine(a), truth_fine, strict=True)])), noise(a))
           for name, a in ways.items()}
    out["truth"] = (0.0, 0.0, noise(ref))
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
    print(f"rendered_detail: {cpu_model()}, radius {args.radius} px, {args.codes:g} codes, corpus {CACHE}")
    sources = [("JPEG twins developed by RawTherapee", "jpg", None)]
    if args.darktable:
        if shutil.which("darktable-cli") is None:
            raise SystemExit("--darktable needs darktable-cli (apt-get install darktable)")
        sources.append(("DNG twins developed by darktable-cli", "raw", darktable_jpeg))
    steps = {"exposure": f"{MIN_OFFSET_EV:g}-2 EV over, darkened by their offset",
             "cast": "under a cast, balanced by the truth's gains"}
    splits = ("held_out", "tuning") if args.split == "both" else (args.split,)
    for (name, domain, develop), kind, split in itertools.product(sources, steps, splits):
        rows = [m for _, truth, twin, ref in twins(split, kind, domain, develop)
                if (m := measure(kind, twin, ref, truth)) is not None]
        what = "grey" if kind == "exposure" else "chroma"
        table = {way: {"mean absolute error (codes)": f"{median([r[way][0] for r in rows]):.2f}",
                       f"{what} detail, absolute error (codes)": f"{median([r[way][1] for r in rows]):.2f}"}
                 for way in WAYS}
        for way in (*WAYS, "truth"):
            table.setdefault(way, {})[f"{what} noise where the truth is smooth and bright (codes)"] = (
                f"{median([r[way][2] for r in rows]):.2f}")
        print_columns(f"{split}: {len(rows)} {name} {steps[kind]}, against the 0 EV uncast twin (medians)", table)
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
