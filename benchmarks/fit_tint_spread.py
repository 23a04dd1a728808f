r"""Fit how far off the light estimate's green tint may be, from how far its four cues disagree on it.

The white-balance estimate (:func:`pipeline.imaging.measure.colour.white_balance_cast`) reads the light's green tint
(log2 green over the black-body light of its red/blue ratio) as the median of four cues. The plan takes a tint out
only as far as it is believed over what lights are (:func:`pipeline.planning.rules.white_balance.tint_believed`):
with one spread for every frame (0.18, the tuning split's median |error| over 0.674) a quarter of every reading
was taken out, where the cues agree and where they scatter alike. The cues' own scatter says which readings
deserve more: this script reads, on the accuracy corpus's published photos and their cast twins (RAW and
rendered; truth: the tint injected, 0 for the originals and the untinted casts), each file's estimate and the
standard deviation of its cues' tints, and fits the tint's spread as

    spread = sqrt(FLOOR^2 + (K * cue_scatter)^2)

by maximum likelihood on the *tuning split only*, with a Laplace error (the errors have heavy tails: a scene's own
colour pulls every cue; its scale b is the robust spread, a normal's median |error| over 0.674 being b's within 3 %).
It then prints, for the tuning split and (not fitted on) the held-out split, the tint left on a neutral after the
plan's share (``truth - share * reading``; share = LIGHT^2 / (LIGHT^2 + spread^2), LIGHT = 0.10) with one spread
for all frames and with each frame's. Frames whose light a ColorChecker read are left out (believed whole).

    python benchmarks/fit_tint_spread.py [--jobs 2]

Needs the accuracy benchmark's corpus (``accuracy.py`` builds it in ~/.cache/postprod/accuracy) and its per-item
results (``results/decisions-full.jsonl``, for each file's split and truth).

Result on 2026-12-07 (tuning 170 frames, held out 256): K 1.28, FLOOR 0.104 (a normal fit, pulled by the tails,
gives 2.16 and 0.25). The tint left on a neutral, mean |.| and over 0.15 (of the split's frames): tuning 0.082 ->
0.051, 19 -> 8 of 170; held out 0.072 -> 0.047, 32 -> 9 of 256 (its tinted twins 0.092 -> 0.079, 9 -> 2 of 72; the
untinted frames 0.064 -> 0.034, 23 -> 7 of 184). The share believed runs from 0.48 (cues in agreement) down to a few
per cent (cues 0.3 apart); its median 0.15-0.18 where it was 0.24.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.imaging.decode import decode_proxy  # noqa: E402
from pipeline.imaging.measure import colour as C  # noqa: E402
from pipeline.imaging.white_balance import green_tint  # noqa: E402
from pipeline.kernel.records import SourceKind  # noqa: E402

CACHE = Path(os.environ.get("POSTPROD_ACCURACY_CACHE", Path.home() / ".cache" / "postprod" / "accuracy"))
LIGHT = 0.10  # the rule's LIGHT_TINT_SPREAD
GLOBAL = 0.18  # the rule's NEUTRAL_TINT_SPREAD, one spread for every frame


def cue_tints(item: dict) -> dict:
    """The estimate's tint and each cue's, of one corpus file, read as the measure reads them."""
    rendered = item["domain"] == "rendered"
    decoded = decode_proxy(CACHE / "corpus" / item["file"], SourceKind.RASTER if rendered else SourceKind.RAW,
                           1280, 200_000_000)
    rgb = decoded.rgb
    work, ok = C.working_copy(rgb, rendered)
    tints = {}
    for name, cue in C.CUES.items():
        light = C._light(cue(work, ok))
        if light is not None:
            tints[name] = float(green_tint(light))
    cast = C.white_balance_cast(rgb, rendered=rendered)
    return {"split": item["split"], "truth": float(item["truth"].get("injected_tint_log2_g", 0.0)),
            "tint": None if cast is None else float(cast.tint), "checker": bool(cast and cast.colour_checker),
            "scatter": float(np.std(list(tints.values()))) if len(tints) >= 2 else None}


def fit(err: np.ndarray, scatter: np.ndarray) -> tuple[float, float]:
    """(K, FLOOR) of the Laplace scale ``sqrt(FLOOR^2 + (K scatter)^2)`` by maximum likelihood (a grid, then a
    finer one around its best)."""
    def nll(k: float, f: float) -> float:
        b = np.sqrt(f * f + (k * scatter) ** 2)
        return float(np.sum(np.log(b) + np.abs(err) / b))
    ks, fs = np.linspace(0.0, 4.0, 81), np.linspace(0.005, 0.4, 80)
    best = min(((nll(k, f), k, f) for k in ks for f in fs))
    ks = np.linspace(max(best[1] - 0.05, 0.0), best[1] + 0.05, 51)
    fs = np.linspace(best[2] - 0.005, best[2] + 0.005, 51)
    best = min(((nll(k, f), k, f) for k in ks for f in fs))
    return best[1], best[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    results = CACHE / "results" / "decisions-full.jsonl"
    items = [json.loads(line) for line in results.read_text().splitlines()]
    items = [i for i in items if i["set"] in ("cast", "original") and i["split"] in ("tuning", "held_out")]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = [r for r in pool.map(cue_tints, items, chunksize=4)
                if r["tint"] is not None and not r["checker"] and r["scatter"] is not None]
    by = {s: [r for r in rows if r["split"] == s] for s in ("tuning", "held_out")}
    tuning = by["tuning"]
    k, floor = fit(np.array([r["tint"] - r["truth"] for r in tuning]), np.array([r["scatter"] for r in tuning]))
    print(f"fitted on the tuning split ({len(tuning)} frames): K {k:.2f}, FLOOR {floor:.3f}\n")
    print("| split | frames | spread | tint left: mean abs | median abs | over 0.15 | share believed (median, max) |")
    print("|---|---|---|---|---|---|---|")
    for split, rs in by.items():
        m, t = np.array([r["tint"] for r in rs]), np.array([r["truth"] for r in rs])
        sc = np.array([r["scatter"] for r in rs])
        for label, mask in (("all", t == t), ("tinted", t != 0), ("untinted", t == 0)):
            for name, spread in (("one for all", np.full_like(m, GLOBAL)), ("each frame's", np.hypot(floor, k * sc))):
                share = LIGHT**2 / (LIGHT**2 + spread**2)
                left = np.abs(t - share * m)[mask]
                print(f"| {split} {label} | {mask.sum()} | {name} | {left.mean():.3f} | {np.median(left):.3f} | "
                      f"{int(np.sum(left > 0.15))} | {np.median(share[mask]):.2f}, {share[mask].max():.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
