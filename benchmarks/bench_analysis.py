"""Seconds per image of each analysis stage, and of each measurement, on the proxy.

Part 1 runs the real analysis graph (decode_raw, measure_exposure,
find_keypoints, detect_faces, write_preview, then plan_retouch) with the local executor on
every file of ``exposure/``, ``faces/pascal_voc/`` and ``raw/`` in the test data
(``POSTPROD_TESTDATA``), and prints seconds per image per stage next to a
baseline measured in the same run on the same files: the bare decode
(LibRaw half-size for RAW, Pillow for JPEG). Part 2 times each core function
of measure_exposure (and find_keypoints) on each proxy. Peak memory (RSS) of the process is
printed. No assertions: these are numbers to compare, as ratios.

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

from pipeline.imaging import measure as me  # noqa: E402
from pipeline.imaging.color import luminance  # noqa: E402
from pipeline.imaging.decode import decode_proxy  # noqa: E402
from pipeline.imaging.measure.keypoints import find_keypoints  # noqa: E402
from pipeline.kernel.errors import InputError  # noqa: E402
from stages import REGISTRY  # noqa: E402


def decode(path: Path, long_edge: int) -> tuple[np.ndarray, bool] | None:
    """The proxy the decode stage makes (linear float32) and whether the source is rendered; None if undecodable."""
    from pipeline.kernel.ingest import sniff_format
    from pipeline.kernel.records import SourceKind

    with path.open("rb") as f:
        _, kind = sniff_format(f.read(65536), path.suffix)
    params = REGISTRY["decode_raw"].Params(proxy_long_edge=long_edge)
    try:
        decoded = decode_proxy(path, kind, params.proxy_long_edge, int(params.max_megapixels * 1e6))
    except InputError as exc:
        print(f"skip {path.name}: {exc}", file=sys.stderr)
        return None
    return decoded.rgb, kind is SourceKind.RASTER


def stage_table(data: Path) -> None:
    """Per-stage seconds from a real local run, against the bare decode of the same files."""
    import resource
    import shutil
    import tempfile

    import rawpy
    from PIL import Image

    from pipeline.kernel.run import RunSettings, process_shoot

    with tempfile.TemporaryDirectory() as tmp:
        shoot = Path(tmp, "shoot")
        shoot.mkdir()
        for d in ("exposure", "faces/pascal_voc", "raw"):
            for p in (data / d).glob("*"):
                if p.is_file() and p.suffix.lower() not in (".txt", ".md", ".xml"):
                    shutil.copy(p, shoot / p.name)
        result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=Path(tmp, "out"), executor="local"))
        ok = result.ok
        baseline = []
        for r in ok:
            path = shoot / r.source_path
            start = time.perf_counter()
            if r.source_kind == "raster":
                with Image.open(path) as im:
                    im.convert("RGB").load()
            else:
                with rawpy.imread(str(path)) as raw:
                    raw.postprocess(half_size=True, use_camera_wb=True, no_auto_bright=True, output_bps=16)
            baseline.append(time.perf_counter() - start)
    base = float(np.mean(baseline))
    stages: dict[str, list[float]] = {}
    for r in ok:
        for name, sec in r.stage_seconds.items():
            stages.setdefault(name, []).append(sec)
    total = float(np.mean([sum(r.stage_seconds.values()) for r in ok]))
    print(f"Part 1: analysis stages, local executor, {len(ok)} images ({len(result.failed)} failed files skipped)\n")
    print(f"{'stage':<28} {'s/image':>9} {'images/s':>9} {'x baseline':>10}")
    print(f"{'baseline: bare decode':<28} {base:9.4f} {1 / base:9.1f} {1.0:10.2f}")
    for name, secs in stages.items():
        m = float(np.mean(secs))
        print(f"{name:<28} {m:9.4f} {1 / m if m else float('inf'):9.1f} {m / base:10.2f}")
    print(f"{'all analysis stages':<28} {total:9.4f} {1 / total:9.1f} {total / base:10.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:.0f} MB\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per function and image")
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads (the pipeline uses 1 per worker)")
    ap.add_argument("--long-edge", type=int, default=1600, help="proxy long edge")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)

    data = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))
    os.environ.setdefault("POSTPROD_MODEL_DIR", str(data / "models"))
    stage_table(data)
    print("Part 2: measure_exposure, per function")
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

    cases: list[tuple[str, Callable[[np.ndarray, np.ndarray, bool], object]]] = [
        ("luminance", lambda rgb, y, r: luminance(rgb)),
        ("luminance_percentiles", lambda rgb, y, r: me.luminance_percentiles(y)),
        ("shadow_contrast_log2", lambda rgb, y, r: me.shadow_contrast_log2(y)),
        ("exposure_ev", lambda rgb, y, r: me.exposure_ev(y, r)),
        ("clipped_pct", lambda rgb, y, r: me.clipped_pct(rgb)),
        ("white_balance_cast", lambda rgb, y, r: me.white_balance_cast(rgb)),
        ("sharpness", lambda rgb, y, r: me.sharpness(y)),
        ("noise_sigma (+encode)", lambda rgb, y, r: me.noise_sigma(cv2.pow(y, 1 / 2.2), clip=(1 / 255, 254 / 255))),
        ("line_tilts", lambda rgb, y, r: me.line_tilts(y)),
        ("phash", lambda rgb, y, r: me.phash(y)),
        ("measure_all (stage total)", lambda rgb, y, r: me.measure_all(rgb, r)),
        ("find_keypoints (its own stage)", lambda rgb, y, r: find_keypoints(rgb)),
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
