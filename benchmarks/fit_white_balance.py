"""Compare the white-balance cues and fit the estimate's uncertainty on the accuracy corpus's tuning split.

The cue set and ``SPREAD_TO_UNCERTAINTY`` of :mod:`pipeline.imaging.measure.colour`
are checked and fitted by this script. It reads only the tuning split's
unperturbed originals and cast twins (the corpus manifest says which), so the
held-out split stays a test of them (``benchmarks/accuracy.py``).

For every candidate cue (the four of the estimate; grey edge at p = 2 and at
sigma 2, and grey world, which it does not use) it prints, on the tuning split:

- the median |reading| of the originals (the photos as published are the
  neutral truth, so every mired read there is the cue's bias), for the
  published photos, the RAW twins and the rendered twins;
- the median |error| of the cast twins' reading against the injected cast, and
  that error relative to the uncast twin's reading (how faithfully the cue
  follows a cast, whatever it makes of the scene);

then the estimate (the median of the cues) with today's planning rule under
the base chart: the median |shift| on the originals, the median |error| and the
wrong-direction count on the cast twins (faces and skin left out: the
benchmark scores those). The fit: the originals' median |reading| in units of
the cues' scatter, divided by 0.674 (the median of |a normal error| in sigmas),
is ``SPREAD_TO_UNCERTAINTY``.

``benchmarks/fit_gates.py`` repeats this fit with the extra tuning pool (photos
no split of the benchmark contains) and judges it left one source out.

    python benchmarks/fit_white_balance.py [--cache DIR] [--limit N]

The corpus must exist (``python benchmarks/accuracy.py`` builds it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_CACHE  # noqa: E402
from pipeline.imaging.decode import decode_proxy  # noqa: E402
from pipeline.imaging.measure import colour  # noqa: E402
from pipeline.imaging.measure.common import WORK_LONG_EDGE, resize_long_edge  # noqa: E402
from pipeline.imaging.white_balance import cast_mired  # noqa: E402
from pipeline.kernel.records import SourceKind  # noqa: E402

#: The median of |x| for a standard normal x.
HALF_NORMAL_MEDIAN = 0.674


def _candidates() -> dict:
    """Every cue compared: the estimate's own four and three it does not use."""

    def grey_world(rgb: np.ndarray, ok: np.ndarray) -> np.ndarray | None:
        px = rgb[ok].astype(np.float64)
        return px.mean(axis=0) if px.shape[0] >= 1000 else None

    return {**colour.CUES,
            "grey edge p=2, sigma 1 (not used)": lambda rgb, ok: colour.grey_edge(rgb, ok, 1.0, 2.0),
            "grey edge p=1, sigma 2 (not used)": lambda rgb, ok: colour.grey_edge(rgb, ok, 2.0, 1.0),
            "grey world (not used)": grey_world}


def _reading(light: np.ndarray | None) -> float | None:
    if light is None or not np.all(np.isfinite(light)) or not np.all(np.asarray(light) > 0):
        return None
    return float(cast_mired(np.asarray(light, dtype=np.float64) / light[1]))


def _planned_shift(reading: float, uncertainty: float, tolerance: float, min_confidence: float, cap: float) -> float:
    """The base chart's correction of neutrals read ``reading`` +- ``uncertainty`` (no faces)."""
    if not abs(reading) > tolerance:
        return 0.0
    confidence = 0.5 * (1.0 + math.erf(abs(reading) / max(uncertainty, 1e-6) / math.sqrt(2.0)))
    if confidence < min_confidence:
        return 0.0
    return -max(-cap, min(cap, reading))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the accuracy benchmark's cache")
    parser.add_argument("--limit", type=int, default=None, help="only the first N items (a smoke test)")
    args = parser.parse_args(argv)
    from charts.loader import load_chart

    wb = load_chart("base").chart.white_balance
    manifest = json.loads((args.cache / "corpus" / "manifest.json").read_text())
    items = [i for i in manifest["items"] if i["split"] == "tuning" and i["set"] in ("original", "cast")]
    items = items[:args.limit] if args.limit else items
    cues = _candidates()
    readings: dict[str, dict[str, float | None]] = {}
    estimates: dict[str, tuple[float, float] | None] = {}
    seconds = 0.0
    for item in items:
        path = args.cache / "corpus" / item["file"]
        kind = SourceKind.RAW if path.suffix.lower() == ".dng" else SourceKind.RASTER
        rgb = decode_proxy(path, kind, 1600, 250_000_000).rgb
        work = np.ascontiguousarray(np.clip(resize_long_edge(rgb, WORK_LONG_EDGE), 0.0, None))
        ok = colour.usable_pixels(work)
        readings[item["id"]] = {name: _reading(cue(work, ok)) for name, cue in cues.items()}
        t0 = time.perf_counter()
        cast = colour.white_balance_cast(rgb)
        seconds += time.perf_counter() - t0
        estimates[item["id"]] = None if cast is None else (cast.mired, cast.uncertainty_mired,
                                                           float(np.std(list(cast.cues.values()))))
    originals = {(i["source"], i["domain"], i["render"]): i for i in items if i["set"] == "original"}

    def kind_of(i: dict) -> str:
        if i["set"] == "cast":
            return f"cast {i['domain']}"
        return "published" if i["render"] == "published" else f"original {i['domain']}"

    print(f"tuning split: {len(items)} items; white_balance_cast {1000 * seconds / max(len(items), 1):.0f} ms "
          "per proxy on this machine")
    print("\n| cue | published | RAW twins | rendered twins | RAW casts | rendered casts | RAW casts rel. "
          "| rendered casts rel. |\n|---|---|---|---|---|---|---|---|")
    for name in cues:
        cols: dict[str, list[float]] = {}
        for i in items:
            v = readings[i["id"]][name]
            if v is None:
                continue
            k = kind_of(i)
            if i["set"] == "original":
                cols.setdefault(k, []).append(abs(v))
                continue
            injected = i["truth"]["injected_mired"]
            cols.setdefault(k, []).append(abs(v - injected))
            ref = originals.get((i["source"], i["domain"], i["render"]))
            r = None if ref is None else readings[ref["id"]][name]
            if r is not None:
                cols.setdefault(k + " rel", []).append(abs(v - r - injected))
        cells = [f"{np.median(cols[k]):.1f}" if cols.get(k) else "—" for k in
                 ("published", "original raw", "original rendered", "cast raw", "cast rendered", "cast raw rel",
                  "cast rendered rel")]
        print(f"| {name} | " + " | ".join(cells) + " |")
    ratios = [abs(e[0]) / max(e[2], 1e-6) for i in items if i["set"] == "original"
              and (e := estimates[i["id"]]) is not None]
    print(f"\noriginals' median |reading| / cue scatter: {np.median(ratios):.3f} -> SPREAD_TO_UNCERTAINTY "
          f"= {np.median(ratios) / HALF_NORMAL_MEDIAN:.2f} (in use: {colour.SPREAD_TO_UNCERTAINTY})")
    shifts, errors, wrong, n = [], {"raw": [], "rendered": []}, {"raw": 0, "rendered": 0}, {"raw": 0, "rendered": 0}
    for i in items:
        e = estimates[i["id"]]
        shift = 0.0 if e is None else _planned_shift(e[0], e[1], wb.tolerance_mired, wb.min_confidence,
                                                     wb.max_auto_shift_mired)
        if i["set"] == "original":
            shifts.append(abs(shift))
            continue
        truth = -i["truth"]["injected_mired"]
        errors[i["domain"]].append(abs(shift - truth))
        wrong[i["domain"]] += shift * truth < 0
        n[i["domain"]] += 1
    print(f"base chart, no faces: originals median |shift| {np.median(shifts):.1f} mired; "
          + "; ".join(f"{d} casts median |error| {np.median(errors[d]):.1f}, wrong direction {wrong[d]} of {n[d]}"
                      for d in ("raw", "rendered") if n[d]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
