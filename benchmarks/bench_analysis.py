"""Time each measurement of measure_exposure per image, on the decoded proxy.

Decodes every file of ``exposure/`` and ``raw/`` in the test data (set
``POSTPROD_TESTDATA`` to point elsewhere) the way the pipeline does, then
times each core function on each proxy, single-threaded, and prints a table:
function, mean ms per image, images per second. No assertions.

    python benchmarks/bench_analysis.py [--repeat 3] [--threads 1] [--long-edge 1600]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.color import luminance  # noqa: E402
from pipeline.errors import InputError  # noqa: E402
from stages import measure_exposure as me  # noqa: E402
from stages.decode_raw import check_not_constant, decode_raster, decode_raw_linear, fit_long_edge, open_raw  # noqa: E402

RASTER_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}


def decode(path: Path, long_edge: int) -> tuple[np.ndarray, bool] | None:
    """The proxy (linear float32) and whether it is a rendered source; None if undecodable."""
    try:
        if path.suffix.lower() in RASTER_SUFFIXES:
            rgb, _ = decode_raster(path, long_edge, 250_000_000)
            rendered = True
        else:
            with open_raw(path) as raw:
                s = raw.sizes
                half = max(s.width, s.height) / 2 >= 0.75 * long_edge
                rgb16 = decode_raw_linear(raw, half_size=half)
            rgb = fit_long_edge(rgb16.astype(np.float32) * np.float32(1 / 65535), long_edge)
            rendered = False
        check_not_constant(rgb)
    except InputError as exc:
        print(f"skip {path.name}: {exc}", file=sys.stderr)
        return None
    return np.ascontiguousarray(rgb, dtype=np.float32), rendered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per function and image")
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads (the pipeline uses 1 per worker)")
    ap.add_argument("--long-edge", type=int, default=1600, help="proxy long edge")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)

    data = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))
    files = sorted(
        p for d in ("exposure", "raw") for p in (data / d).glob("*") if p.is_file() and not p.name.startswith("LICENSE")
    )
    proxies = []
    for p in files:
        got = decode(p, args.long_edge)
        if got is not None:
            proxies.append((p.name, *got))
    if not proxies:
        sys.exit(f"no decodable images under {data} (set POSTPROD_TESTDATA)")
    px = np.mean([rgb.shape[0] * rgb.shape[1] for _, rgb, _ in proxies]) / 1e6
    print(f"{len(proxies)} proxies, long edge <= {args.long_edge}, mean {px:.2f} MP, {args.threads} OpenCV thread(s)\n")

    target = me.MeasureExposure.Params().target_rendered
    cases: list[tuple[str, Callable[[np.ndarray, np.ndarray, bool], object]]] = [
        ("luminance", lambda rgb, y, r: luminance(rgb)),
        ("luminance_percentiles", lambda rgb, y, r: me.luminance_percentiles(y)),
        ("shadow_contrast_log2", lambda rgb, y, r: me.shadow_contrast_log2(y)),
        ("exposure_ev", lambda rgb, y, r: me.exposure_ev(y, target, r)),
        ("clipped_pct", lambda rgb, y, r: me.clipped_pct(rgb)),
        ("white_balance_cast", lambda rgb, y, r: me.white_balance_cast(rgb)),
        ("sharpness", lambda rgb, y, r: me.sharpness(y)),
        ("noise_sigma (+encode)", lambda rgb, y, r: me.noise_sigma(cv2.pow(y, 1 / 2.2), clip=(1 / 255, 254 / 255))),
        ("line_tilts", lambda rgb, y, r: me.line_tilts(y)),
        ("phash", lambda rgb, y, r: me.phash(y)),
        ("measure_all (stage total)", lambda rgb, y, r: me.measure_all(rgb, target, 1.0, r)),
    ]
    rows = []
    for label, fn in cases:
        per_image = []
        for _, rgb, rendered in proxies:
            y = luminance(rgb)
            fn(rgb, y, rendered)  # warm caches and OpenCV's lazy init
            start = time.perf_counter()
            for _ in range(args.repeat):
                fn(rgb, y, rendered)
            per_image.append((time.perf_counter() - start) / args.repeat)
        mean = float(np.mean(per_image))
        rows.append((label, mean * 1e3, float(np.max(per_image)) * 1e3, 1.0 / mean))
    w = max(len(r[0]) for r in rows)
    print(f"{'function':<{w}}  {'mean ms/image':>13}  {'max ms':>8}  {'images/s':>9}")
    for label, mean_ms, max_ms, ips in rows:
        print(f"{label:<{w}}  {mean_ms:13.1f}  {max_ms:8.1f}  {ips:9.1f}")


if __name__ == "__main__":
    main()
