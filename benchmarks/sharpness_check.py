"""The sharpness check against known blur: published photos as they are, and the same photos blurred.

The truth: a published photograph is in focus where its photographer focused (a
subject before a background blurred on purpose is not "soft or out of focus"),
and the same photograph blurred all over by a Gaussian of a known size is soft.
The photos are the accuracy benchmark's published originals (its corpus,
``benchmarks/accuracy.py``; tuning and held-out splits as there: the check's
constant is fitted on the tuning split alone). Each is blurred in linear light by
a Gaussian of 0.7, 1.0 and 2.0 px of the 512-px copy the check reads
(:data:`~pipeline.imaging.measure.common.WORK_LONG_EDGE`; 1.75, 2.5 and 5 px of
a 1280-px wallpaper) and saved as a JPEG (quality 95). postprod runs as a user
runs it (the default graph up to the plan, chart ``base``, minimum 15) and its
``sharpness`` flags are counted; photos under 512 px on their long edge are not
judged by the check and are left out.

Beside postprod's flags, the two rules are replayed on the manifest's readings
(no exposure gain, no faces: what the flags would be without them): the whole
frame alone (``sharpness`` under the minimum: the check before
``sharpness_peak``), and with the sharpest part's clearance
(:data:`~pipeline.planning.rules.checks.SHARP_PART_TO_FRAME`). ``--fit`` prints
the tuning split's sweep of that constant: the originals flagged and the blurred
twins found at each value.

    python benchmarks/sharpness_check.py [--split tuning --split held_out] [--fit] [--write] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_CACHE, machine  # noqa: E402
from benchmarks.do_no_harm import run  # noqa: E402
from pipeline.imaging.color import linear_to_srgb, srgb_to_linear  # noqa: E402
from pipeline.imaging.measure.common import WORK_LONG_EDGE  # noqa: E402
from pipeline.planning.rules.checks import SHARP_PART_TO_FRAME  # noqa: E402

#: Gaussian blurs (sigma, px of the 512-px copy the check reads) of the soft twins.
SIGMAS = (0.7, 1.0, 2.0)
#: The base chart's minimum (acceptance.sharpness.min_laplacian_var), which the replayed rules use.
LIMIT = 15.0
RESULTS = ROOT / "benchmarks" / "SHARPNESS.md"


def build(corpus: Path, split: str, shoot: Path) -> int:
    """The split's published originals (as published) and their blurred twins in ``shoot``; how many originals."""
    from PIL import Image

    manifest = json.loads((corpus / "manifest.json").read_text())
    shoot.mkdir(parents=True, exist_ok=True)
    n = 0
    for item in manifest["items"]:
        if item["split"] != split or item["set"] != "original" or item["render"] != "published":
            continue
        n += 1
        name = item["id"].removesuffix("_published")
        src = corpus / item["file"]
        original = shoot / f"{name}__s0{src.suffix}"
        if not original.exists():
            original.write_bytes(src.read_bytes())
        with Image.open(src) as im:
            rgb8 = np.asarray(im.convert("RGB"))
        long_edge = max(rgb8.shape[:2])
        linear = srgb_to_linear(rgb8.astype(np.float32) / 255.0)
        for sigma in SIGMAS:
            twin = shoot / f"{name}__s{sigma}.jpg"
            if twin.exists():
                continue
            blurred = cv2.GaussianBlur(linear, (0, 0), sigma * long_edge / WORK_LONG_EDGE)
            out = (linear_to_srgb(blurred) * 255.0 + 0.5).astype(np.uint8)
            tmp = twin.with_name(f".{twin.name}.tmp.jpg")
            Image.fromarray(out).save(tmp, quality=95)
            os.replace(tmp, twin)
    if not n:
        raise SystemExit(f"no published originals of the {split} split in {corpus}: run benchmarks/accuracy.py first")
    return n


def readings(out: Path) -> list[dict]:
    """Per judged photo: its blur (0 = as published), the manifest's sharpness readings and postprod's flag."""
    import pyarrow.parquet as pq

    rows = {r["source_path"]: r for r in pq.read_table(
        out / "manifest.parquet", columns=["source_path", "status", "width", "height", "sharpness",
                                           "sharpness_peak"]).to_pylist() if r["status"] == "ok"}
    flagged = {r["source_path"] for r in pq.read_table(
        out / "instructions.parquet", columns=["source_path", "kind", "params_json"]).to_pylist()
        if r["kind"] in ("flag", "reject") and json.loads(r["params_json"] or "{}").get("check") == "sharpness"}
    result = []
    for path, r in sorted(rows.items()):
        if max(r["width"] or 0, r["height"] or 0) < WORK_LONG_EDGE or r["sharpness"] is None:
            continue
        stem = Path(path).stem
        name, blur = stem.rsplit("__s", 1)
        result.append({"name": name, "sigma": float(blur), "sharpness": r["sharpness"],
                       "peak": r["sharpness_peak"], "flagged": path in flagged})
    return result


def replay(rows: list[dict], factor: float | None) -> dict[float, int]:
    """Photos flagged per blur by the replayed rule: the whole frame under :data:`LIMIT`, and (``factor``) its
    sharpest part under ``factor`` times it."""
    out: dict[float, int] = {}
    for r in rows:
        soft = r["sharpness"] < LIMIT and (factor is None or r["peak"] is None or r["peak"] < LIMIT * factor)
        out[r["sigma"]] = out.get(r["sigma"], 0) + int(soft)
    return out


def counts(rows: list[dict]) -> dict[float, int]:
    out: dict[float, int] = {}
    for r in rows:
        out[r["sigma"]] = out.get(r["sigma"], 0) + 1
    return out


def table(results: dict[str, list[dict]]) -> list[str]:
    splits = list(results)
    head = "| | " + " | ".join(splits) + " |"
    lines = [head, "|---|" + "---|" * len(splits)]

    def row(label: str, value) -> None:  # noqa: ANN001
        lines.append(f"| {label} | " + " | ".join(value(results[s]) for s in splits) + " |")

    def share(k: int, n: int) -> str:
        return f"{k} of {n} ({100 * k / max(n, 1):.0f} %)"

    for sigma in (0.0, *SIGMAS):
        what = ("published originals flagged soft (should not be)" if sigma == 0.0
                else f"blurred {sigma:g} px (of 512) flagged soft (should be)")
        row(f"{what}: postprod", lambda rs, s=sigma: share(sum(r["flagged"] for r in rs if r["sigma"] == s),
                                                           counts(rs).get(s, 0)))
        row(f"{what}: the whole frame alone (the check before sharpness_peak, replayed)",
            lambda rs, s=sigma: share(replay(rs, None).get(s, 0), counts(rs).get(s, 0)))
    return lines


def sweep(rows: list[dict]) -> list[str]:
    n = counts(rows)
    lines = ["| SHARP_PART_TO_FRAME | " + " | ".join(f"{'originals' if s == 0 else f'blur {s:g}'}" for s in sorted(n))
             + " |", "|---|" + "---|" * len(n)]
    for factor in (None, 1.5, 2.0, 2.5, 2.7, 3.0, 3.5, 4.0, 5.0):
        got = replay(rows, factor)
        lines.append(f"| {'off' if factor is None else factor} | "
                     + " | ".join(f"{got.get(s, 0)} of {n[s]}" for s in sorted(n)) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", action="append", choices=("tuning", "held_out"),
                    help="splits to run (default both; --fit reads the tuning split)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"the accuracy benchmark's cache ({DEFAULT_CACHE})")
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "postprod" / "sharpness_check",
                    help="the blurred twins and postprod's outputs")
    ap.add_argument("--fit", action="store_true", help="print the tuning split's sweep of SHARP_PART_TO_FRAME")
    ap.add_argument("--write", action="store_true", help=f"write the table to {RESULTS.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    splits = args.split or ["tuning", "held_out"]
    t0 = time.time()
    results: dict[str, list[dict]] = {}
    for split in splits:
        n = build(args.cache / "corpus", split, args.work / split / "shoot")
        print(f"{split}: {n} published photos and {n * len(SIGMAS)} blurred twins; postprod's analysis and plan ...",
              flush=True)
        results[split] = readings(run(args.work / split / "shoot", "base", args.work / split / "postprod"))
    lines = table(results)
    print("\n".join(lines))
    fit: list[str] = []
    if args.fit and "tuning" in results:
        fit = sweep(results["tuning"])
        print("\nTuning split, the replayed rule at each SHARP_PART_TO_FRAME (shipped: "
              f"{SHARP_PART_TO_FRAME:g}):")
        print("\n".join(fit))
    if args.write:
        m = machine()
        text = "\n".join([
            "# The sharpness check against known blur", "",
            "Written by `benchmarks/sharpness_check.py` (its docstring says how the truth is made): the accuracy "
            "benchmark's published originals as published (in focus where their photographers focused) and "
            "blurred all over by a known Gaussian, through postprod's plan under chart `base` (minimum 15).", "",
            f"- date: {datetime.now():%Y-%m-%d %H:%M}", f"- machine: {m['cpu']}, Python {m['python']}",
            f"- postprod: commit {m['postprod commit']}, code hash {m['code hash']}",
            f"- command: `python benchmarks/sharpness_check.py{' --fit' if args.fit else ''} --write` "
            f"({(time.time() - t0) / 60:.0f} min)",
            f"- SHARP_PART_TO_FRAME: {SHARP_PART_TO_FRAME:g}", "",
            *lines, "",
            *(["Tuning split, the replayed rule at each SHARP_PART_TO_FRAME:", "", *fit, ""] if fit else []),
        ])
        tmp = RESULTS.with_name(f".{RESULTS.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, RESULTS)
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
