"""Is a RAW delivered looking like the photograph it should look like? Linear light against the camera-like curve.

The exposure meter's well-exposed photograph is defined through a film-like camera curve
(:data:`pipeline.imaging.measure.metering.KEY_LOG2`: its key, developed through the curve, lands at sRGB 118).
Until 2026-12-05 the renderer delivered a RAW's scene light as it was (linear light, sRGB-encoded), so a RAW the
plan left alone as well exposed came out a stop darker in the mid-tones than the photograph, and flat. This script
measures what a user gets, both ways side by side in one run (the chart's ``exposure.raw_tone_curve``: ``linear``
and ``camera``), on two kinds of truth:

- the accuracy corpus's RAW twins at 0 EV (``--split``, default ``tuning``): DNGs of a published photo's scene
  light (the benchmark's :func:`~benchmarks.accuracy_corpus.film_curve_inverse`, RawTherapee's film curve), whose
  truth is the published photo itself. Nothing in postprod was fitted on them for this (the curve was fitted on
  the tuning split's JPEG twins, in 2026-11; ``--split held_out`` reads photos no constant saw);
- the shared data's real camera RAWs (four Canon CRWs) against the camera's own JPEG embedded in them: another
  camera's development, not a truth, but what a photographer compares with.

For each file: the delivered JPEG's median and mean luminance (8-bit sRGB) less the reference's, with the exposure
the plan applied; per set the median over the files, and over the files the plan left at 0 EV (where only the
development differs). The plan is the same both ways (a chart key the plan does not read).

    python benchmarks/raw_look.py [--split tuning|held_out] [--cache DIR] [--work DIR]

Result on 2026-12-05 (main 0b8f5b3), delivered less published, 8-bit sRGB levels, median over the files:

| set | linear | camera curve | left at 0 EV: linear / camera |
|---|---|---|---|
| tuning split, 24 RAW twins | -26.5 | -1.0 | -26.0 / -1.0 (n=17) |
| held-out split, 36 RAW twins | -22.5 | -1.0 | -26.5 / -1.0 (n=22) |
| 4 shared CRWs against the camera's JPEG | -12.5 | +27.0 | the same (n=4) |

The twins are the benchmark's own construction (its emulation of RawTherapee's film curve, which the meter's curve
was fitted to on the tuning split's JPEG twins in 2026-11): that they come out as published says the development
and the meter's target agree. The frames the plan corrects carry the meter's error either way (the three bright
Flickr uploads darkened 1.75-1.79 EV: -85 to -88 levels developed, -110 to -122 linear; fog and a dusk pushed
+1.05 and +1.67: +53 and +69 developed). The CRWs' camera is another development: the plan reads these chart shots
0.07-0.47 EV over and leaves them (within its gate), and developed they are 24-33 levels brighter than the camera
made them (10-16 darker, linear).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_CACHE  # noqa: E402

CHART = """schema_version: 2
extends: base
description: raw_look benchmark - one plain JPEG, developed {curve}
exposure: {{raw_tone_curve: {curve}}}
crops: []
renditions:
  web: {{long_edge_px: 1024, format: jpeg, quality: 92}}
"""
CURVES = ("linear", "camera")


def luma8(path_or_bytes: Path | bytes) -> np.ndarray:
    from PIL import Image

    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as im:
        return np.asarray(im.convert("L"), np.float64)


def twins(cache: Path, split: str, shoot: Path) -> dict[str, np.ndarray]:
    """Links to the split's 0 EV RAW twins in ``shoot``, and each one's published photo's luminance."""
    manifest = json.loads((cache / "corpus" / "manifest.json").read_text())
    by_source: dict[str, dict[str, str]] = {}
    for it in manifest["items"]:
        if it["split"] == split and it["set"] == "original":
            kind = "published" if it.get("render") == "published" else it["domain"]
            by_source.setdefault(it["source"], {})[kind] = it["file"]
    refs = {}
    for source, files in sorted(by_source.items()):
        if "raw" in files and "published" in files:
            name = source.replace("/", "_").replace(" ", "_") + ".dng"
            (shoot / name).symlink_to(cache / "corpus" / files["raw"])
            refs[name] = luma8(cache / "corpus" / files["published"])
    return refs


def camera_raws(data: Path, shoot: Path) -> dict[str, np.ndarray]:
    """Links to the shared CRWs in ``shoot``, and each one's embedded camera JPEG's luminance."""
    import rawpy

    refs = {}
    for path in sorted((data / "raw").glob("*.CRW")):
        with rawpy.imread(str(path)) as raw:
            thumb = raw.extract_thumb()
        if thumb.format == rawpy.ThumbFormat.JPEG:
            (shoot / path.name).symlink_to(path)
            refs[path.name] = luma8(thumb.data)
    return refs


def deliver(shoot: Path, work: Path, curve: str) -> dict[str, tuple[np.ndarray, float]]:
    """Each file's delivered luminance and the exposure the renderer applied, under ``curve``."""
    import pyarrow.parquet as pq

    from pipeline.kernel.run import RunSettings, process_shoot

    work.mkdir(parents=True, exist_ok=True)
    chart = work / f"chart-{curve}.yaml"
    chart.write_text(CHART.format(curve=curve))
    out = work / f"out-{curve}"
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart=chart,
                              follow_external_symlinks=True, force=True))
    got = {}
    for e in pq.read_table(out / "exports.parquet").to_pylist():
        doc = json.loads((out / "instructions" / f"{e['source_path']}.json").read_text())
        ev = sum(float(o["params"].get("ev", 0.0)) for o in doc["operations"]
                 if o["kind"] == "exposure" and o["applied_by"] == "renderer")
        got[e["source_path"]] = (luma8(out / e["path"]), ev)
    return got


def report(label: str, refs: dict[str, np.ndarray], delivered: dict[str, dict[str, tuple[np.ndarray, float]]]) -> None:
    print(f"\n{label} ({len(refs)} files): delivered less reference, 8-bit sRGB luminance")
    print(f"| file | exposure applied (EV) | {' | '.join(f'{c}: median / mean' for c in CURVES)} |")
    print("|---|---|" + "---|" * len(CURVES))
    diffs: dict[str, list[tuple[float, float]]] = {c: [] for c in CURVES}
    for name, ref in refs.items():
        cells = []
        for c in CURVES:
            lum, ev = delivered[c][name]
            d = (float(np.median(lum) - np.median(ref)), float(lum.mean() - ref.mean()))
            diffs[c].append((d[0], ev))
            cells.append(f"{d[0]:+.0f} / {d[1]:+.1f}")
        print(f"| {name[:48]} | {delivered['camera'][name][1]:+.2f} | {' | '.join(cells)} |")
    for c in CURVES:
        all_d = [d for d, _ in diffs[c]]
        still = [d for d, ev in diffs[c] if abs(ev) < 1e-9]
        print(f"- {c}: median {statistics.median(all_d):+.1f} levels (|.| {statistics.median(map(abs, all_d)):.1f}); "
              f"left at 0 EV: {statistics.median(still) if still else float('nan'):+.1f} (n={len(still)})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=("tuning", "held_out"), default="tuning")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the accuracy benchmark's cache")
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a temporary one)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="raw_look-") as tmp:
        work = args.work or Path(tmp)
        sets = {}
        makers = ((f"accuracy corpus, {args.split} split: 0 EV RAW twins against the published photo",
                   lambda s: twins(args.cache, args.split, s)),
                  ("shared camera RAWs against the camera's embedded JPEG", lambda s: camera_raws(args.data, s)))
        for label, make in makers:
            shoot = work / f"shoot-{len(sets)}"
            shoot.mkdir(parents=True, exist_ok=True)
            refs = make(shoot)
            sets[label] = (refs, {c: deliver(shoot, work / f"set-{len(sets)}", c) for c in CURVES})
        for label, (refs, delivered) in sets.items():
            report(label, refs, delivered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
