"""Exposure brackets merged against known truth: what the merge recovers, what it keeps, what it costs.

The shared RAWs are re-exposed photosite by photosite (real sensor data, clipped at the camera's white; their
truth the original where it is not clipped). Each source (the same RAWs developed, photographs of the shared
data, scikit-image's samples) also becomes a scene in linear
light brighter than one exposure holds: lifted until ``--blown`` of its pixels (10 %: a room's windows) are
above full scale, its brightest then 1-3 stops over. A
camera's AEB is simulated on it: DNGs at 0, -2 and +2 EV (Canon's order), each with photon and read noise at
base ISO and clipped at full scale, decoded by LibRaw as the renderer decodes them. The merge
(:func:`pipeline.imaging.merge.merge_bracket`) is compared with the scene it was made from:

- blown: the share of pixels the middle frame clips (at least one channel at full scale);
- recovered: the median |error| in stops, against the truth, of the pixels the middle frame clipped and the
  dark frame holds, for the middle frame alone and for the merge;
- shadows: the same for the darkest quarter of the pixels the middle frame holds (noise), middle frame and merge;
- held: the same for the other pixels the middle frame holds (what the merge must not change); pixels whose
  truth is under 0.2 % of full scale (the read noise) are left out of both;
- seconds: the merge's time (the fastest of three) against one frame's decode (LibRaw, full size; the
  renderer decodes the bracket's other frames first, one decode each);
- memory: the merge's own peak (numpy's buffers, tracemalloc; the frames it is given aside) against one frame's
  16-bit decode.

No constant of the merge was fitted on these sources (its thresholds are a priori: LibRaw's clip level, a
half-stop ghost test).

    python benchmarks/brackets.py [--blown 0.1] [--out benchmarks/BRACKETS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.imaging.dng import rescale_raw_to_dng, write_dng_from_linear_rgb  # noqa: E402
from pipeline.imaging.merge import merge_bracket  # noqa: E402
from pipeline.imaging.render import decode_for_render  # noqa: E402
from pipeline.kernel.records import SourceKind  # noqa: E402

TESTDATA = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))
OFFSETS = (0.0, -2.0, 2.0)
#: Photon noise: a full-scale pixel collects this many electrons (a base-ISO full-frame sensor: tens of thousands).
FULL_WELL = 20_000.0
#: Read noise, in electrons.
READ_NOISE = 3.0


def _srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def sources() -> list[tuple[str, np.ndarray]]:
    """(name, linear RGB in [0, 1]) of every source, at most 1200 px on the long edge."""
    import rawpy
    from skimage import data

    out: list[tuple[str, np.ndarray]] = []
    for path in sorted((TESTDATA / "raw").glob("*.CRW")):
        with rawpy.imread(str(path)) as raw:
            rgb = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=16, gamma=(1, 1),
                                  half_size=True, output_color=rawpy.ColorSpace.sRGB)
        out.append((path.name, rgb.astype(np.float64) / 65535.0))
    for path in sorted((TESTDATA / "faces" / "pascal_voc").glob("*.jpg"))[:3]:
        out.append((path.name, _srgb_to_linear(np.asarray(Image.open(path).convert("RGB"), np.float64) / 255.0)))
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        out.append((f"skimage {name}", _srgb_to_linear(getattr(data, name)().astype(np.float64) / 255.0)))
    resized = []
    for name, rgb in out:
        h, w = rgb.shape[:2]
        step = max(1, int(np.ceil(max(h, w) / 1200)))
        resized.append((name, np.ascontiguousarray(rgb[::step, ::step, :3])))
    return resized


def _noisy(scene: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    electrons = np.clip(scene, 0.0, None) * FULL_WELL
    shot = rng.normal(electrons, np.sqrt(electrons + READ_NOISE**2))
    return np.clip(shot / FULL_WELL, 0.0, 1.0)


def measure_raw(path: Path, blown: float, folder: Path) -> dict:
    """The same on real sensor data: the RAW re-exposed photosite by photosite (:func:`rescale_raw_to_dng`,
    clipped at the camera's own white), its truth the original's decode where the original holds it."""
    original = decode_for_render(path, SourceKind.RAW, 1, 1, 1.0, 10**9).astype(np.float32) / 65535.0
    gain = 1.0 / max(float(np.percentile(original.max(axis=2), 100.0 * (1.0 - blown))), 1e-6)
    decodes, decode_s = [], []
    for k, off in enumerate(OFFSETS):
        dng = rescale_raw_to_dng(path, folder / f"r{k}.dng", gain * 2.0**off)
        t = time.perf_counter()
        decodes.append(decode_for_render(dng, SourceKind.RAW, 1, 1, 1.0, 10**9))
        decode_s.append(time.perf_counter() - t)
    return _scores(f"{path.name} (its photosites)", original * np.float32(gain), decodes, decode_s,
                   valid=original.max(axis=2) < 0.9)


def _err(values: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    v, t = values.max(axis=2)[mask], truth.max(axis=2)[mask]
    return float(np.median(np.abs(np.log2(np.maximum(v, 1e-6) / np.maximum(t, 1e-6))))) if v.size else float("nan")


def measure(name: str, linear: np.ndarray, blown: float, folder: Path, rng: np.random.Generator) -> dict:
    scene = linear / max(float(np.percentile(linear.max(axis=2), 100.0 * (1.0 - blown))), 1e-6)
    h, w = scene.shape[:2]
    decodes = []
    decode_s = []
    for k, off in enumerate(OFFSETS):
        path = folder / f"f{k}.dng"
        write_dng_from_linear_rgb(path, _noisy(scene * 2.0**off, rng), make="postprod", model="bracket bench")
        t = time.perf_counter()
        decodes.append(decode_for_render(path, SourceKind.RAW, w, h, 1.0, 10**9))
        decode_s.append(time.perf_counter() - t)
    return _scores(name, scene, decodes, decode_s)


def _scores(name: str, scene: np.ndarray, decodes: list[np.ndarray], decode_s: list[float],
            valid: np.ndarray | None = None) -> dict:
    h, w = scene.shape[:2]
    middle = decodes[0].astype(np.float32) / 65535.0
    seconds = []
    for _ in range(3):  # the fastest of three: a worker's steady state, not its first large allocations
        t = time.perf_counter()
        merged = merge_bracket(decodes[0], [(decodes[1], OFFSETS[1], "dark"), (decodes[2], OFFSETS[2], "bright")])
        seconds.append(time.perf_counter() - t)
    merge_s = min(seconds)
    tracemalloc.start()  # numpy reports its buffers: the merge's own peak, its inputs aside
    merge_bracket(decodes[0], [(decodes[1], OFFSETS[1], "dark"), (decodes[2], OFFSETS[2], "bright")])
    peak_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = scene.max(axis=2)
    if valid is not None:  # (where the truth itself is known)
        peak = np.where(valid, peak, np.nan)
    blown = peak >= 1.0
    recoverable = blown & (peak * 2.0**OFFSETS[1] < 0.85)
    held = (peak < 0.8) & (peak > 0.002)  # (below, the truth is at the read noise: no ratio to it means much)
    shadows = held & (peak <= np.percentile(peak[held], 25))
    blown = blown[np.isfinite(peak)]
    return {"source": name, "size": f"{w}x{h}", "blown": float(blown.mean()),
            "over": float(np.log2(max(float(np.nanpercentile(peak, 99.9)), 1.0))),
            "recovered_middle": _err(middle, scene, recoverable), "recovered_merged": _err(merged, scene, recoverable),
            "shadows_middle": _err(middle, scene, shadows), "shadows_merged": _err(merged, scene, shadows),
            "held_middle": _err(middle, scene, held & ~shadows), "held_merged": _err(merged, scene, held & ~shadows),
            "merge_vs_decode": merge_s / statistics.median(decode_s),
            "peak_vs_decode": peak_bytes / decodes[0].nbytes}


def _table(rows: list[dict]) -> str:
    head = ("| source | size | blown in the middle frame | its brightest (99.9th pct), stops over | recovered: middle / "
            "merged (stops) | shadows: middle / merged | held: middle / merged | merge / one decode (time) | "
            "merge's peak memory / one decode's |\n|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['source']} | {r['size']} | {r['blown']:.1%} | {r['over']:.1f} | "
             f"{r['recovered_middle']:.2f} / {r['recovered_merged']:.3f} | "
             f"{r['shadows_middle']:.3f} / {r['shadows_merged']:.3f} | {r['held_middle']:.3f} / {r['held_merged']:.3f} | "
             f"{r['merge_vs_decode']:.2f}x | {r['peak_vs_decode']:.1f}x |" for r in rows]
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k not in ("source", "size")}
    lines.append(f"| **median** | | {med['blown']:.1%} | {med['over']:.1f} | "
                 f"{med['recovered_middle']:.2f} / {med['recovered_merged']:.3f} | "
                 f"{med['shadows_middle']:.3f} / {med['shadows_merged']:.3f} | {med['held_middle']:.3f} / "
                 f"{med['held_merged']:.3f} | {med['merge_vs_decode']:.2f}x | {med['peak_vs_decode']:.1f}x |")
    return head + "\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blown", type=float, nargs="+", default=[0.1, 0.5],
                        help="shares of the scene's pixels above full scale in the middle frame, a table each "
                             "(default 0.1, a room's windows, and 0.5, a bright scene)")
    parser.add_argument("--out", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args(argv)
    all_sources = sources()
    tables = []
    for blown in args.blown:
        rng = np.random.default_rng(0)
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for raw in sorted((TESTDATA / "raw").glob("*.CRW")):
                rows.append(measure_raw(raw, blown, Path(tmp)))
            for name, linear in all_sources:
                rows.append(measure(name, linear, blown, Path(tmp), rng))
                print(f"{blown:.0%} blown, {name}: done", file=sys.stderr)
        table = f"### {blown:.0%} of the middle frame blown\n\n" + _table(rows)
        print(table + "\n")
        tables.append(table)
    if args.out:
        about = (f"# Exposure brackets merged against known truth\n\nWritten by `benchmarks/brackets.py` "
                 f"(`python benchmarks/brackets.py --blown {' '.join(f'{b:g}' for b in args.blown)} --out {args.out}`), "
                 f"{datetime.now():%Y-%m-%d %H:%M}, {platform.processor() or platform.machine()}, "
                 f"Python {platform.python_version()}. Each source lifted until the given share of its pixels is "
                 "over full scale, bracketed at 0, -2, +2 EV with photon and read noise; errors are "
                 "median |log2(value / truth)| of each pixel's brightest channel.\n\n")
        args.out.write_text(about + "\n\n".join(tables) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
