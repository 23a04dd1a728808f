"""Why postprod's white balance does not follow an injected cast: the error decomposed per cause.

A cast injected into the sensor data (the accuracy corpus's cast twins) should
move the correction by exactly that cast, whatever the plan makes of the
uncast photo. This script reads, for every cast twin of the tuning split (and
of the extra tuning pool's corpus, ``--split tuning_extra``) and its uncast
twin, the estimate :func:`pipeline.imaging.measure.colour.white_balance_cast`
makes of the proxy the pipeline decodes, and plans the base chart's correction
with the real rule (:func:`pipeline.planning.rules.white_balance.plan_white_balance`,
no faces: the benchmark's skin rows score those) under chart variants that
switch one cause off after another:

- ``full``: the base chart as the benchmark runs it;
- ``no gate``: ``min_confidence`` 0.5 (the confidence gate never refuses);
- ``no cap``: also ``max_auto_shift_mired`` 400;
- ``no tolerance``: also ``tolerance_mired`` 0 (and no keep: the correction
  is then minus the reading, so what is left is the estimator's own error).

For each it prints the median |error| against the truth and relative to the
uncast twin's correction (the benchmark's diagnostic), and the wrong-direction
count. The estimator's relative error is then split by cue, and compared with
the same cue on the uncast proxy times the injected light (an exact
multiplicative cast: what is left there is the estimator's lack of
equivariance; the rest is the decode or, for the rendered twins, the tone curve).

    python benchmarks/wb_decompose.py [--cache DIR] [--split tuning|tuning_extra] [--display-light]

Never the held-out split. ``--display-light`` reads rendered sources as postprod did before
2026-11-30 (display-linear, no inverse tone curve).

Result on 2026-11-30 (tuning split: 48 RAW and 48 rendered cast twins; extra pool 34 + 34; the
``full`` rows reproduce ``accuracy.py --split tuning``'s RAW row, 24.4 / 20.0 / 6, within 1 mired:
the benchmark has faces, this has none). Why the RAW twins' correction strays 20.0 mired (median)
from "the uncast twin's correction + the cast":

- **the confidence gate, on the uncast twin**: 14 of the 24 uncast RAW twins are left as shot
  (their cues disagree: the do-no-harm rule), while their cast twins, read further from neutral,
  are corrected in full; the difference charges the uncast photo's own reading (median |.| 23.6
  mired: the estimator's bias, the truth being neutral) to the twin. Without the gate: 9.8.
  It refuses 8 of 48 cast twins (charged the whole cast), but without it the absolute error is
  worse (25.4 -> 29.7 mired) and 8 instead of 6 are corrected the wrong way: no defect; a gate
  on a robust scatter (MAD, or the std without the farthest cue), refitted the same way, is no better.
- **the cap (150 mired)**: 9.8 -> 9.7; it binds only where the uncast photo already reads
  150-300 mired (a yellow flower, blinds, a garden), where it helps.
- **the tolerance (10 mired)**: 9.7 -> 8.9. **keep_warm/keep_cool**: 0 in the base chart, nothing.
- **the estimator**: 8.9 (grey world 6.3 in the benchmark). On the uncast proxy times the exact
  light it follows within 4.5; the rest is what the cast does to the sensor data: a channel clips
  first (the brightest pixels and the grey edge lose the surfaces they read: 14.8 and 13.0 on the
  twins, 10.4 and 6.9 exactly; the near-neutral mode and grey pixels 4.7 and 4.5). Ranking the
  brightest pixels by their geometric mean (exactly equivariant) or eroding the grey edge's mask
  further is worse (19.5; 12.5): the loss is the clipping itself.
- **the rendered-source path** (rendered twins, whose absolute error was 50.0): read display-linear,
  the tone curve bends a cast differently at each tone, the cues disagree (the gate refused 13 of 48)
  and under-read it (15.5 relative). Read through the inverse tone curve (now the default): 8.4
  relative, 10 refused, absolute 31.9 mired (extra pool: 26.8 -> 22.4), wrong direction 6 -> 7
  (3 -> 4), the originals' median shift still 0.0 (corrected: 33 -> 36 of 78; 21 -> 23 of 51).

So the absolute error (RAW 25.4 mired, target 10) is the estimator's reading of the uncast photos
(median 23.6; the wrong-direction twins are all small casts on photos it reads 45-300 mired off),
which no gate or equivariance removes.

Then (branch wb7, 2026-11-30) each cue was read against its reading of a photo balanced as
published (a per-cue constant: ``benchmarks/fit_wb_reference.py``); the ``full`` rows, before ->
after: tuning RAW twins 25.4 -> 28.5 mired, wrong direction 6 -> 3 of 48; rendered 31.9 -> 30.2,
7 -> 5; originals corrected 36 -> 25 of 78; extra pool RAW 20.9 -> 22.1, 3 -> 0 of 34; rendered
22.4 -> 20.1, 4 -> 2; the estimator's relative error 8.9 -> 8.4 (no less equivariant). Not shipped:
it warms a scene of nothing but neutral surfaces by 23 mired and lost 2 of 28 faces without a flag
in ``accuracy.py --split tuning`` (fit_wb_reference.py's docstring says why and what next).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_CACHE  # noqa: E402
from benchmarks.accuracy_corpus import cast_gains  # noqa: E402
from charts.loader import load_chart  # noqa: E402
from charts.schema import Chart  # noqa: E402
from pipeline.imaging.decode import decode_proxy  # noqa: E402
from pipeline.imaging.measure import colour  # noqa: E402
from pipeline.imaging.measure.metering import inverse_tone_curve, tone_curve  # noqa: E402
from pipeline.kernel.records import ImageRecord, OperationKind, SourceKind  # noqa: E402
from pipeline.planning.rules.white_balance import plan_white_balance  # noqa: E402
from pipeline.planning.state import PlanState  # noqa: E402


def _chart(**wb: float) -> Chart:
    doc = load_chart("base").chart.model_dump(mode="json")
    doc["white_balance"] = {**doc["white_balance"], **wb}
    return Chart.model_validate(doc)


VARIANTS = {
    "full": _chart(),
    "no gate": _chart(min_confidence=0.5),
    "no gate, no cap": _chart(min_confidence=0.5, max_auto_shift_mired=400),
    "no gate, no cap, no tolerance": _chart(min_confidence=0.5, max_auto_shift_mired=400, tolerance_mired=0),
}


def _record(cast: colour.WhiteBalanceCast | None) -> ImageRecord:
    row = dict(source_path="a.jpg", content_hash="0" * 64, file_size=1, format="jpeg", source_kind=SourceKind.RASTER,
               width=3000, height=2000, exposure_ev=0.0, sharpness=100.0, lines_found=0, phash="0" * 16,
               clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0,
               clipped_shadows_pct_b=0.0)
    if cast is not None:
        row.update(wb_cast_a=cast.a, wb_cast_b=cast.b, wb_temperature_shift_k=cast.temperature_shift_k,
                   wb_cast_mired=cast.mired, wb_tint=cast.tint, wb_uncertainty_mired=cast.uncertainty_mired)
    return ImageRecord.from_row(row)


def planned_shift(cast: colour.WhiteBalanceCast | None, chart: Chart) -> float:
    """The rule's ``mired_shift`` for a reading (0 when it plans none)."""
    record = _record(cast)
    if cast is None:
        return 0.0
    plan = PlanState.start(record, chart)
    for op in plan_white_balance(record, chart, plan):
        if op.kind is OperationKind.WHITE_BALANCE:
            return float(op.params["mired_shift"])
    return 0.0


def _proxy(path: Path) -> np.ndarray:
    kind = SourceKind.RAW if path.suffix.lower() == ".dng" else SourceKind.RASTER
    return decode_proxy(path, kind, 1600, 250_000_000).rgb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the accuracy benchmark's cache")
    parser.add_argument("--split", choices=("tuning", "tuning_extra"), default="tuning")
    parser.add_argument("--limit", type=int, default=None, help="only the first N cast twins (a smoke test)")
    parser.add_argument("--dump", type=Path, default=None, help="write every twin's figures here (JSON)")
    parser.add_argument("--display-light", action="store_true",
                        help="read rendered sources display-linear, as postprod did before (no inverse tone curve)")
    args = parser.parse_args(argv)
    corpus = args.cache / ("corpus" if args.split == "tuning" else "corpus_extra")
    items = [i for i in json.loads((corpus / "manifest.json").read_text())["items"] if i["split"] == args.split]
    refs = {(i["source"], i["domain"], i["render"]): i for i in items if i["set"] == "original"}
    twins = [i for i in items if i["set"] == "cast" and (i["source"], i["domain"], i["render"]) in refs]
    twins = twins[:args.limit] if args.limit else twins
    cache: dict[str, tuple[colour.WhiteBalanceCast | None, np.ndarray]] = {}

    def rendered(item: dict) -> bool:
        return item["domain"] == "rendered" and not args.display_light

    def read(item: dict) -> tuple[colour.WhiteBalanceCast | None, np.ndarray]:
        if item["id"] not in cache:
            rgb = _proxy(corpus / item["file"])
            cache[item["id"]] = (colour.white_balance_cast(rgb, rendered=rendered(item)), rgb)
        return cache[item["id"]]

    rows = []
    for n, item in enumerate(twins):
        ref = refs[(item["source"], item["domain"], item["render"])]
        cast, _ = read(item)
        base, base_rgb = read(ref)
        injected = float(item["truth"]["injected_mired"])
        gains = cast_gains(injected, float(item["truth"].get("injected_tint_log2_g", 0.0))).astype(np.float32)
        if rendered(item):  # the light multiplies the scene: through the curve and back
            exact_rgb = tone_curve(inverse_tone_curve(base_rgb) * gains).astype(np.float32)
        else:
            exact_rgb = np.clip(base_rgb * gains, 0.0, None)
        exact = colour.white_balance_cast(exact_rgb, rendered=rendered(item))
        row = {"id": item["id"], "domain": item["domain"], "injected": injected,
               "reading": None if cast is None else cast.mired, "ref_reading": None if base is None else base.mired,
               "uncertainty": None if cast is None else cast.uncertainty_mired,
               "ref_uncertainty": None if base is None else base.uncertainty_mired,
               "exact_reading": None if exact is None else exact.mired,
               "cues": {} if cast is None else cast.cues, "ref_cues": {} if base is None else base.cues,
               "exact_cues": {} if exact is None else exact.cues}
        for name, chart in VARIANTS.items():
            row[name] = (planned_shift(cast, chart), planned_shift(base, chart))
        rows.append(row)
        if (n + 1) % 10 == 0:
            print(f"  {n + 1}/{len(twins)}", file=sys.stderr)
        cache.pop(item["id"], None)
    originals = []
    for item in items:
        if item["set"] == "original":
            reading, _ = read(item)
            originals.append({"id": item["id"], "domain": item["domain"], "render": item["render"],
                              "reading": None if reading is None else reading.mired,
                              "uncertainty": None if reading is None else reading.uncertainty_mired,
                              "cues": {} if reading is None else reading.cues,
                              "shift": planned_shift(reading, VARIANTS["full"])})
            cache.pop(item["id"], None)
    if args.dump:
        args.dump.write_text(json.dumps({"twins": rows, "originals": originals}, indent=1))
    report(rows, args.split)
    shifts = [abs(o["shift"]) for o in originals]
    print(f"\ndo no harm: {len(originals)} originals, median |shift| {np.median(shifts):.1f} mired, "
          f"{sum(s > 0 for s in shifts)} corrected, mean |shift| {np.mean(shifts):.1f}; median |reading| "
          f"{np.median([abs(o['reading']) for o in originals if o['reading'] is not None]):.1f}")
    return 0


def report(rows: list[dict], split: str) -> None:
    print(f"\n{split}: {len(rows)} cast twins (base chart, no faces)\n")
    print("| domain | variant | median \\|error\\| | median \\|error\\| rel. uncast twin | wrong direction |")
    print("|---|---|---|---|---|")
    for domain in ("raw", "rendered"):
        sub = [r for r in rows if r["domain"] == domain]
        if not sub:
            continue
        for name in VARIANTS:
            err = [r[name][0] + r["injected"] for r in sub]
            rel = [(r[name][0] - r[name][1]) + r["injected"] for r in sub]
            wrong = sum(r[name][0] * -r["injected"] < 0 for r in sub)
            print(f"| {domain} | {name} | {np.median(np.abs(err)):.1f} | {np.median(np.abs(rel)):.1f} | "
                  f"{wrong} of {len(sub)} |")
        bias = [abs(r["ref_reading"]) for r in sub if r["ref_reading"] is not None]
        print(f"| {domain} | (the uncast twin's own reading, its bias: median \\|.\\|) | {np.median(bias):.1f} | | |")
        gated = sum(r["full"][0] == 0.0 and r["no gate"][0] != 0.0 for r in sub)
        gated_ref = sum(r["full"][1] == 0.0 and r["no gate"][1] != 0.0 for r in sub)
        print(f"| {domain} | (gate refused the cast twin / the uncast twin) | {gated} / {gated_ref} | | |")
    print("\nEstimator relative error (reading - uncast reading - injected), median |.| by cue; "
          "'exact': the uncast proxy times the injected light\n")
    print("| domain | cue | decoded twin | exact cast |\n|---|---|---|---|")
    for domain in ("raw", "rendered"):
        sub = [r for r in rows if r["domain"] == domain]
        if not sub:
            continue
        names = ["estimate"] + sorted({c for r in sub for c in r["cues"]})
        for c in names:
            dec, ex = [], []
            for r in sub:
                if c == "estimate":
                    v, b, e = r["reading"], r["ref_reading"], r["exact_reading"]
                else:
                    v, b, e = r["cues"].get(c), r["ref_cues"].get(c), r["exact_cues"].get(c)
                if v is not None and b is not None:
                    dec.append(abs(v - b - r["injected"]))
                if e is not None and b is not None:
                    ex.append(abs(e - b - r["injected"]))
            print(f"| {domain} | {c} | {np.median(dec):.1f} | {np.median(ex):.1f} |")


if __name__ == "__main__":
    raise SystemExit(main())
