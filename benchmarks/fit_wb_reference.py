r"""Fit the white-balance estimate's reference ("balanced as published") and its uncertainty, left one source out.

The photographs of the accuracy corpus are published photographs: their
balance is the photographer's choice and the truth is "as shot". Yet every
cue of :func:`pipeline.imaging.measure.colour.white_balance_cast` but the
grey pixels reads them warm (a median 20-26 mired): the estimate corrects
some of the published warmth away, and a small cool cast on such a photo is
corrected cooler still (the wrong way). The candidate fix fitted here reads
each cue against its own reading of a published photo (a per-cue constant,
``PUBLISHED_BALANCE_MIRED``: that cue's median reading of the unperturbed
originals), as the exposure meter reads against ``KEY_LOG2``.

From the cue dump of ``benchmarks/wb_cue_dump.py`` (every cue's light on the
tuning split's and the extra tuning pool's originals and cast twins; never the
held-out split) this script prints:

1. each cue's bias on the originals (median reading and median |reading| for
   the published, RAW and rendered originals) and how faithfully it follows a
   cast (the cast twins' reading less the uncast twin's less the cast);
2. the constants fitted on both pools: each cue's median reading of the
   originals (``PUBLISHED_BALANCE_MIRED``) and ``SPREAD_TO_UNCERTAINTY`` (the
   originals' median |estimate| in cue scatters, over 0.674), and each fitted
   on one pool alone;
3. the base chart's decisions (tolerance 10 mired, confidence 0.8, cap 150;
   no faces: ``benchmarks/accuracy.py`` scores skin) for the estimate as it
   was (D65 reference, 1.15), and for candidate estimates, each decided with
   constants fitted without the source decided (leave one source out) and
   without its pool (leave one pool out): per pool the originals' median
   |shift| (and how many were shifted), the RAW and rendered cast twins'
   median |error| and wrong-direction count.

The decisions are an approximation of the rule's (the median of the cues' mired
readings, not of their lights; no tint): ``benchmarks/wb_decompose.py`` and
``accuracy.py --split tuning`` run the real estimate and rule.

    python benchmarks/wb_cue_dump.py --out /tmp/wb_cues.json
    python benchmarks/fit_wb_reference.py /tmp/wb_cues.json

Result on 2026-11-30 (tuning split 27 sources, 78 originals, 48 + 48 cast twins;
extra pool 17 sources, 51 originals, 34 + 34):

- bias (median reading of the originals, both pools): near-neutral mode +26.3, grey pixels -1.3,
  brightest pixels +20.5, grey edge +25.4 mired (tuning alone 34.0, 3.1, 20.3, 27.4; extra pool
  alone 23.0, -4.7, 21.2, 14.7). What is left about them (median |reading - bias| 21-37 mired) is
  each photo's own colour (a yellow flower, blinds, a garden: 125-320 mired warm by every cue); the
  cues' residuals correlate 0.5-0.9, so no weighting of them averages it away;
- refitted by its rule, ``SPREAD_TO_UNCERTAINTY`` 1.10 (D65) -> 1.73 (against the published balance);
- left one source out, the published balance takes the wrong-direction cast twins 6 -> 4 of 48
  (RAW), 7 -> 6 (rendered) on the tuning split and 3 -> 0 of 34, 4 -> 1 on the extra pool, the
  originals shifted 36 -> 25 of 78 (23 -> 25 of 51); at an equal ``SPREAD_TO_UNCERTAINTY`` it is
  better on every cast figure. Weighting the cues by 1/spread^2, dropping the brightest pixels,
  adding grey world, a single offset after the median, a constant or combined uncertainty, or a
  robust scatter (MAD, range, the std without the farthest cue) were no better left one source out;
- with the real estimate and rule (branch wb7; ``benchmarks/wb_decompose.py``, no faces): tuning RAW
  twins 25.4 -> 28.5 mired, wrong direction 6 -> 3; rendered 31.9 -> 30.2, 7 -> 5; extra pool RAW
  20.9 -> 22.1, 3 -> 0; rendered 22.4 -> 20.1, 4 -> 2. ``accuracy.py --split tuning`` (faces): RAW
  24.4 -> 28.5, 6 -> 3; rendered 33.9 -> 30.6, 6 -> 5; skin kept 16 -> 20 of 28 but skin lost
  without a flag 0 -> 2 of 28;
- **not shipped**: a per-cue constant assumes the scene holds what published photos typically hold
  (skin, wood, warm light). A scene of nothing but neutral surfaces (a grey card, a product on a
  white seamless) has every cue at 0, so it reads 23 mired cool and is warmed by that much: the
  grey DNGs of ``tests/test_xmp.py`` and ``tests/test_scenes.py`` fail. The next step needs a
  reference that tells warm content from a warm light (e.g. apply the offset in proportion to how
  far the other cues read from the grey pixels, which read published photos at -1.3).

Then (branch wb8, 2026-11-30): the held-out split's originals' median |shift| was 20.2 mired against the
tuning split's 0.0 because the gate corrects about 40 % of unperturbed photos by construction (a normal
error model at ``min_confidence`` 0.8 passes |z| > 0.84), and 46 % of the tuning originals (36 of 78),
45 % of the extra pool's (23 of 51): just under half, so the median is 0 here and 20 where a few more
pass. What was tried, in the table above (left one source out; the simulation's gate, no faces):

- the brief's idea, the published offset applied only as far as a cue reads warmer than the grey pixels:
  a neutral scene keeps its reading, but the adjusted cues scatter less, the gate passes more, and the
  originals corrected rise to 48 of 78 and 33 of 51 (38 and 29 with the scatter of the cues as read);
- shrinking the shift by the disagreement (correct |reading| - 0.84 u): 31 and 19 corrected, but the
  tuning cast twins' error 26.8 -> 47.9 (RAW), 30.0 -> 50.0 (rendered); a stricter gate (0.9) the same;
- the grey pixels must agree on the direction: 36 and 19 corrected (the tuning split's corrected
  originals are warm by every cue, the grey pixels included: astronaut, the Canon RAWs, Floris van Lint);
- a warm band (readings up to 40 mired warm left alone, the rest corrected in full): 27 and 18 corrected
  at little cost to the cast twins, but a warm light the cues agree on (a grey card at 5500 K, +28)
  would be left: against the neutral policy, and 40 is a number read off these tables;
- **shipped**: the gate measures a warm reading from ``PUBLISHED_WARMTH_MIRED`` (the median of the four
  cues' medians above, 23.0; 22.0-23.4 left one source out) instead of from D65, a cool one from the
  target as before; the correction, when made, still goes all the way. A scene of neutral surfaces
  reads 0 and is untouched; a warm light the cues agree on (uncertainty 5-6 mired) is still corrected
  from about +28. Left one source out: originals corrected 36 -> 26 of 78 and 23 -> 17 of 51;
  wrong-direction twins 6/7 -> 6/7 (tuning) and 3/4 -> 1/1 (extra pool); the cast twins' median error
  26.8 -> 30.0 and 30.0 -> 45.8 mired on the tuning split (+50 and +80 mired casts on photos whose cues
  scatter by 40 mired are now left as shot), 24.7 -> 20.0 and 25.7 -> 20.0 on the extra pool.
  With the real estimate and rule, ``accuracy.py`` (faces scored; before: the tuning split's figures of
  ACCURACY.md on 977fcc6, the extra pool's run on 2cf6196; after: 6ce8485):

  | figure | tuning before | tuning after | extra before | extra after |
  |---|---|---|---|---|
  | originals: median \|shift\| (corrected) | 0.0 (36 of 78) | 0.0 (26 of 78) | 0.0 (24 of 51) | 0.0 (20 of 51) |
  | RAW cast twins: median \|error\| / wrong direction | 24.4 / 6 of 48 | 27.6 / 5 | 20.9 / 3 of 34 | 20.0 / 1 |
  | rendered cast twins: median \|error\| / wrong direction | 33.9 / 6 of 48 | 45.6 / 6 | 22.4 / 4 of 34 | 20.0 / 2 |
  | skin kept / lost without a flag | 16 / 0 of 28 | 18 / 0 of 28 | (no faces) | (no faces) |

  (The tuning split's "36 of 78" before is the simulation's and wb_decompose.py's count; ACCURACY.md
  prints the median alone.) Originals left as shot are flagged for a look when the reading is beyond
  the tolerance: on the extra pool 12 -> 16 of 51 colour-flagged.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.imaging.white_balance import cast_mired  # noqa: E402

#: The median of |x| for a standard normal x.
HALF_NORMAL_MEDIAN = 0.674
#: The estimate's cues (pipeline.imaging.measure.colour.CUES).
CUES = ("near_neutral", "grey_pixels", "bright_pixels", "grey_edge")
POOLS = ("tuning", "tuning_extra")
# The base chart's white balance (charts/base.yaml).
TOLERANCE, MIN_CONFIDENCE, CAP = 10.0, 0.8, 150.0


def kind(r: dict) -> str:
    if r["set"] == "cast":
        return f"cast {r['domain']}"
    return "published" if r["render"] == "published" else f"original {r['domain']}"


def cue_table(rows: list[dict], names: list[str]) -> None:
    for pool in POOLS:
        sub = [r for r in rows if r["pool"] == pool]
        uncast = {(r["source"], r["domain"], r["render"]): r for r in sub if r["set"] == "original"}
        print(f"\n{pool}: each cue's reading of the originals (median / median |.|, mired) and of the cast twins "
              "relative to the uncast twin (median |reading - uncast reading - cast|)\n")
        print("| cue | published | RAW originals | rendered originals | RAW casts rel. | rendered casts rel. |")
        print("|---|---|---|---|---|---|")
        for c in names:
            cells = []
            for k in ("published", "original raw", "original rendered"):
                v = [r["m"][c] for r in sub if kind(r) == k and r["m"][c] is not None]
                cells.append(f"{np.median(v):+.1f} / {np.median(np.abs(v)):.1f}")
            for k in ("cast raw", "cast rendered"):
                e = [abs(r["m"][c] - o["m"][c] - r["injected"]) for r in sub if kind(r) == k
                     and (o := uncast.get((r["source"], r["domain"], r["render"]))) is not None
                     and r["m"][c] is not None and o["m"][c] is not None]
                cells.append(f"{np.median(e):.1f}")
            print(f"| {c} | " + " | ".join(cells) + " |")


# --- an estimate: constants fitted on some rows, decisions on others -----------------------------------

def readings(r: dict, cues: tuple[str, ...], balance: dict[str, float]) -> dict[str, float]:
    return {c: r["m"][c] - balance.get(c, 0.0) for c in cues if r["m"][c] is not None}


def combine(vals: dict[str, float], weights: dict[str, float] | None) -> tuple[float, float]:
    """(estimate, scatter): the median and standard deviation, or their weighted forms."""
    v = np.array(list(vals.values()))
    if weights is None:
        return float(np.median(v)), float(np.std(v))
    w = np.array([weights[c] for c in vals])
    mu = float(np.sum(w * v) / w.sum())
    return mu, float(np.sqrt(np.sum(w * (v - mu) ** 2) / w.sum()))


def published_warmth(train: list[dict]) -> float:
    """The rule's ``PUBLISHED_WARMTH_MIRED`` fitted on ``train``: the median of the four cues' median readings
    of its originals (how warm the estimate reads a photograph balanced as published)."""
    originals = [r for r in train if r["set"] == "original"]
    return float(np.median([np.median([r["m"][c] for r in originals if r["m"][c] is not None]) for c in CUES]))


def fit(train: list[dict], cues: tuple[str, ...], reference: bool, weighted: bool = False,
        warmth: bool = False) -> dict:
    """The constants of an estimate fitted on ``train``'s originals: each cue's median reading (when
    ``reference``), the weights (1 / median |reading|^2 when ``weighted``), the uncertainty factor, and
    (when ``warmth``) the published warmth the gate judges a warm reading from (:func:`published_warmth`;
    the uncertainty factor is then the estimate's own, 1.15, as the rule ships it)."""
    if warmth:
        return {"cues": cues, "balance": {}, "weights": None, "k": 1.15, "warmth": published_warmth(train)}
    originals = [r for r in train if r["set"] == "original"]
    balance = {c: float(np.median([r["m"][c] for r in originals if r["m"][c] is not None])) if reference else 0.0
               for c in cues}
    weights = None
    if weighted:
        weights = {c: 1.0 / max(float(np.median([abs(r["m"][c] - balance[c]) for r in originals
                                                 if r["m"][c] is not None])), 1.0) ** 2 for c in cues}
    ratios = [abs(m) / max(s, 1e-6) for r in originals
              if len(vals := readings(r, cues, balance)) >= 2 for m, s in [combine(vals, weights)]]
    return {"cues": cues, "balance": balance, "weights": weights,
            "k": float(np.median(ratios) / HALF_NORMAL_MEDIAN)}


def planned_shift(r: dict, p: dict, k: float | None = None) -> float:
    """The base chart's correction (mired, no faces) of an item under the estimate ``p``.

    ``p`` may also carry a gate that is not the shipped one: ``min_confidence`` (a stricter gate),
    ``soft`` (correct only the part of the reading beyond ``soft`` uncertainties: a shrinkage by the
    cues' disagreement), ``warm_band`` (leave readings from -tolerance to this warm alone, correct
    the rest in full) and ``grey_pixels_agree`` (the grey pixels must read the cast's direction too).
    """
    vals = readings(r, p["cues"], p["balance"])
    if len(vals) < 2:
        return 0.0
    m, s = combine(vals, p["weights"])
    u = max(5.0, (k if k is not None else p["k"]) * s)
    warmest = p.get("warmth", 0.0)  # the rule's beyond_published (neutral policy: the target is 0)
    beyond = m - warmest if m > warmest else min(m, 0.0)
    confidence = 0.5 * (1 + math.erf(abs(beyond) / u / math.sqrt(2)))
    if not abs(m) > TOLERANCE or confidence < p.get("min_confidence", MIN_CONFIDENCE):
        return 0.0
    if -TOLERANCE <= m <= p.get("warm_band", -math.inf):
        return 0.0
    grey = r["m"].get("grey_pixels")
    if p.get("grey_pixels_agree") and grey is not None and grey * m <= 0:
        return 0.0
    if "soft" in p:
        size = abs(m) - p["soft"] * u
        return 0.0 if not size > TOLERANCE else -math.copysign(min(CAP, size), m)
    return -max(-CAP, min(CAP, m))


def clip_to_grey_pixels(train: list[dict], raw_scatter: bool) -> dict:
    """Each cue's published offset applied only as far as the cue reads warmer than the grey pixels (which
    read published photos neutral): a scene of neutral surfaces, where the cues agree, keeps its reading.
    Returned as an estimate whose rows are adjusted by :func:`adjusted` (``raw_scatter``: the gate's
    uncertainty from the cues as read)."""
    p = fit(train, CUES, True)
    return {**fit(train, CUES, False), "k": 1.15, "clip_balance": p["balance"], "raw_scatter": raw_scatter}


def adjusted(r: dict, p: dict) -> float:
    """:func:`planned_shift` of ``r`` under :func:`clip_to_grey_pixels`'s estimate."""
    m, bal = dict(r["m"]), p["clip_balance"]
    grey = m.get("grey_pixels")
    if grey is not None:
        for c in CUES:
            if c != "grey_pixels" and m[c] is not None:
                m[c] -= min(max(m[c] - grey, 0.0), max(bal[c] - bal["grey_pixels"], 0.0))
    shift = planned_shift({**r, "m": m}, p)
    if not p["raw_scatter"] or shift == 0.0:
        return shift
    vals = [v for c in CUES if (v := m[c]) is not None]
    raw = [v for c in CUES if (v := r["m"][c]) is not None]
    u = max(5.0, 1.15 * float(np.std(raw)))
    median = float(np.median(vals))
    return shift if 0.5 * (1 + math.erf(abs(median) / u / math.sqrt(2))) >= MIN_CONFIDENCE else 0.0


def scores(decided: list[tuple[dict, float]]) -> list[str]:
    cells = []
    for pool in POOLS:
        shifts = [abs(s) for r, s in decided if r["pool"] == pool and r["set"] == "original"]
        cells.append(f"{np.median(shifts):.1f} ({sum(s > 0 for s in shifts)} of {len(shifts)})")
        for domain in ("raw", "rendered"):
            sub = [(r, s) for r, s in decided if r["pool"] == pool and r["set"] == "cast" and r["domain"] == domain]
            err = [abs(s + r["injected"]) for r, s in sub]
            cells.append(f"{np.median(err):.1f} / {sum(s * -r['injected'] < 0 for r, s in sub)}")
    return cells


def decide(rows: list[dict], fitter: Callable[[list[dict]], dict], held: str, k: float | None = None
           ) -> list[tuple[dict, float]]:
    """Every row decided with constants fitted without its ``held`` group ("source", "pool" or "none")."""
    def shift(r: dict, p: dict) -> float:
        return adjusted(r, p) if "clip_balance" in p else planned_shift(r, p, k)

    if held == "none":
        p = fitter(rows)
        return [(r, shift(r, p)) for r in rows]
    out = []
    for g in sorted({r[held] for r in rows}):
        p = fitter([r for r in rows if r[held] != g])
        out += [(r, shift(r, p)) for r in rows if r[held] == g]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dump", type=Path, help="the cue dump (benchmarks/wb_cue_dump.py --out)")
    args = parser.parse_args(argv)
    rows = json.loads(args.dump.read_text())
    for r in rows:
        r["m"] = {c: None if v is None else cast_mired(np.asarray(v)) for c, v in r["lights"].items()}
    names = list(rows[0]["lights"])
    cue_table(rows, names)

    print("\nThe constants (fitted on the originals: median reading per cue; SPREAD_TO_UNCERTAINTY)\n")
    for label, train in (("both pools", rows), *((pool, [r for r in rows if r["pool"] == pool]) for pool in POOLS)):
        p = fit(train, CUES, True)
        print(f"- {label}: PUBLISHED_WARMTH_MIRED {published_warmth(train):+.1f}; PUBLISHED_BALANCE_MIRED "
              + ", ".join(f"{c} {v:+.1f}" for c, v in p["balance"].items())
              + f"; SPREAD_TO_UNCERTAINTY {p['k']:.2f} (read against D65: {fit(train, CUES, False)['k']:.2f})")

    print("\nThe base chart's decisions (no faces): originals' median |shift| (shifted), cast twins' median "
          "|error| / wrong direction\n")
    print("| estimate | held out | tuning originals | tuning RAW casts | tuning rendered casts | extra originals | "
          "extra RAW casts | extra rendered casts |\n|---|---|---|---|---|---|---|---|")
    print("| as it was: D65 reference, SPREAD_TO_UNCERTAINTY 1.15 | (none fitted) | "
          + " | ".join(scores(decide(rows, lambda t: fit(t, CUES, False), "none", k=1.15))) + " |")
    candidates: dict[str, Callable[[list[dict]], dict]] = {
        "D65 reference, uncertainty refitted": lambda t: fit(t, CUES, False),
        "D65 reference, a warm reading gated from the published warmth (shipped, wb8)":
            lambda t: fit(t, CUES, False, warmth=True),
        "published offset only where a cue reads warmer than the grey pixels":
            lambda t: clip_to_grey_pixels(t, False),
        "the same, gated on the cues' scatter as read": lambda t: clip_to_grey_pixels(t, True),
        "D65 reference, min_confidence 0.9": lambda t: {**fit(t, CUES, False), "k": 1.15, "min_confidence": 0.9},
        "D65 reference, shift shrunk by the disagreement (|reading| - 0.84 u)":
            lambda t: {**fit(t, CUES, False), "k": 1.15, "soft": 0.8416},
        "D65 reference, grey pixels must agree on the direction":
            lambda t: {**fit(t, CUES, False), "k": 1.15, "grey_pixels_agree": True},
        "D65 reference, readings up to 40 mired warm left alone (a warm band)":
            lambda t: {**fit(t, CUES, False), "k": 1.15, "warm_band": 40.0},
        "each cue against its published balance (median)": lambda t: fit(t, CUES, True),
        "each cue against its published balance, weighted by 1/spread^2": lambda t: fit(t, CUES, True, True),
        "grey edge + grey pixels + near-neutral mode (published balance)":
            lambda t: fit(t, ("grey_edge", "grey_pixels", "near_neutral"), True),
        "grey edge + grey world + grey pixels + brightest (published balance)":
            lambda t: fit(t, ("grey_edge", "grey_world", "grey_pixels", "bright_pixels"), True),
    }
    for label, fitter in candidates.items():
        for held in ("source", "pool"):
            print(f"| {label} | one {held} | " + " | ".join(scores(decide(rows, fitter, held))) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
