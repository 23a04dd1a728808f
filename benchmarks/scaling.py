"""Throughput against the number of Ray workers, and the driver's serial parts that bound it: one table.

    benchmarks/scaling.sh [--images 32] [--workers 1 2 4 8] [--corpus-dir DIR]

The shoot is made here from nothing but the repository and its Python
environment: ``--images`` 24 MP DNGs from scikit-image's bundled sample
photographs (no test data, no download), each photographed by the synthetic
camera of :mod:`pipeline.imaging.dng` with its own white balance and exposure,
built in parallel into a cache folder and reused. The detector weights are
the one thing a run needs besides (``POSTPROD_MODEL_DIR``, the user cache, or
``benchmarks/.models/``, which git ignores so they can travel with a copy of
the tree to an offline machine).

Each worker count runs the shoot in its own process with Ray (its start and
stop not counted, noted), with the benchmark chart of ``benchmarks/run.py``
(a 2048 px JPEG and a 1080 px WebP). A worker count above the CPUs is not
run: the row says so. The model line compares each speedup with what the
measured serial parts allow (``T(W) = serial + parallel / W``). The workers'
CPU seconds an image (from their set-up on) tell the rest apart: growing with
the workers, they contend for what the cores share (memory bandwidth, caches,
a core's second thread); steady while the wall time grows, they wait (the
barriers' tails).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks._tables import verdict  # noqa: E402
from benchmarks.corpus import link_shoot  # noqa: E402
from benchmarks.run import BENCH_CHART, run_child  # noqa: E402

DEFAULT_CORPUS = Path.home() / ".cache" / "postprod" / "scaling"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "cat", "immunohistochemistry", "retina", "hubble_deep_field")
SCALING_TARGET = 6.0  # at 8 workers (issue 16)
CORPUS_VERSION = 1


def _photo(name: str) -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])


def _build_one(args: tuple[int, str]) -> str:
    """One 24 MP DNG: a sample photo, cropped to 3:2, upscaled in linear light, its own white balance and exposure."""
    import cv2

    from pipeline.imaging.color import srgb_to_linear
    from pipeline.imaging.dng import write_dng_from_linear_rgb

    index, dest = args
    path = Path(dest) / f"scale_{index:03d}.dng"
    if path.is_file():
        return str(path)
    rgb = _photo(PHOTOS[index % len(PHOTOS)])
    h, w = rgb.shape[:2]
    keep_h = min(h, w * 2 // 3)
    top = (h - keep_h) // 2
    linear = srgb_to_linear(rgb[top : top + keep_h].astype(np.float32) / 255.0)
    up = cv2.resize(linear, (6000, 4000), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(index)
    up *= np.float32(2.0 ** rng.uniform(-1.0, 0.7))  # each frame its own exposure error (distinct content too)
    np.clip(up, 0.0, 1.0, out=up)
    wb = (float(rng.uniform(1.6, 2.4)), 1.0, float(rng.uniform(1.2, 2.2)))
    write_dng_from_linear_rgb(path, up, white_balance=wb, make="postprod", model="Scaling 24MP", iso=200,
                              exposure_time=1 / 125, f_number=5.6, focal_length=50.0)
    return str(path)


def build_corpus(dest: Path, count: int) -> list[Path]:
    """``count`` 24 MP DNGs in ``dest`` (made in parallel, reused when there)."""
    dest = dest / f"v{CORPUS_VERSION}"
    dest.mkdir(parents=True, exist_ok=True)
    missing = [i for i in range(count) if not (dest / f"scale_{i:03d}.dng").is_file()]
    if missing:
        procs = max(1, min(len(missing), (os.cpu_count() or 1), 8))
        print(f"building {len(missing)} 24 MP DNGs in {dest} ({procs} processes) ...", flush=True)
        with ProcessPoolExecutor(procs) as pool:
            list(pool.map(_build_one, [(i, str(dest)) for i in missing]))
    return [dest / f"scale_{i:03d}.dng" for i in range(count)]


def detector_weights() -> str | None:
    """The folder holding the YuNet weights, or None (the message says where to put them)."""
    from models.registry import DEFAULT_MODEL_DIR, MODEL_DIR_ENV

    for folder in (os.environ.get(MODEL_DIR_ENV), ROOT / "benchmarks" / ".models", DEFAULT_MODEL_DIR.expanduser()):
        if folder and any(Path(folder).glob("*yunet*.onnx")):
            return str(folder)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32, help="24 MP DNGs in the shoot (default 32)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--corpus-dir", type=Path, default=DEFAULT_CORPUS)
    args = ap.parse_args()
    began = time.perf_counter()
    cpus = os.cpu_count() or 1
    weights = detector_weights()
    if weights is None:
        print("the YuNet weights are not here: run `postprod models fetch yunet_2023mar` (or copy the file into "
              "benchmarks/.models/ for an offline machine)", file=sys.stderr)
        return 2
    os.environ["POSTPROD_MODEL_DIR"] = weights
    os.environ["POSTPROD_OFFLINE"] = "1"
    files = build_corpus(args.corpus_dir, args.images)
    work = Path(tempfile.mkdtemp(prefix="postprod-scaling-"))
    rows: list[dict] = []
    try:
        shoot = link_shoot(work / "shoot", files)
        chart = work / "chart.yaml"
        chart.write_text(BENCH_CHART)
        for w in args.workers:
            if w > cpus:
                rows.append({"workers": w, "skipped": f"{cpus} CPUs: {w} workers would share them"})
                continue
            print(f"timing {w} Ray worker(s) on {len(files)} images ...", flush=True)
            res = run_child("ray", w, {"scaling": shoot}, work, chart, f"w{w}")
            s = res["sets"]["scaling"]
            phases = dict(s["phases"])
            names = [k for k, _ in s["phases"]]
            rows.append({
                "workers": w, "wall_s": s["wall_s"], "ok": s["ok"], "ray_init_s": res.get("ray_init_s", 0.0),
                "ingest_s": phases[names[0]], "plan_s": phases[names[2]] - phases[names[1]] if len(names) > 2 else 0.0,
                "outputs_s": s["outputs_s"], "worker_mb": s["worker_max_mb"], "driver_mb": s["driver_mb"],
                "startup_s": max(s["worker_startup_s"], default=0.0),
                "worker_cpu_s": s.get("worker_cpu_s", 0.0),
            })
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows, len(files), cpus)
    gpu_check()
    print(f"\nscaling benchmark wall time: {time.perf_counter() - began:.0f} s")
    return 0


def print_table(rows: list[dict], images: int, cpus: int) -> None:
    base = next((r for r in rows if r["workers"] == 1 and "wall_s" in r), None)
    print(f"\n{images} 24 MP DNGs, {cpus} CPUs; Ray's own start not counted (noted)\n")
    print("| workers | wall s | images/min | speedup | efficiency | model speedup | serial s (ingest+plan+outputs) "
          "| worker CPU s/image | worker start s | peak worker MB | driver MB | notes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['workers']} | - | - | - | - | - | - | - | - | - | - | not measured: {r['skipped']} |")
            continue
        serial = r["ingest_s"] + r["plan_s"] + r["outputs_s"]
        speed = base["wall_s"] / r["wall_s"] if base else float("nan")
        model = "-"
        if base:
            b_serial = base["ingest_s"] + base["plan_s"] + base["outputs_s"]
            parallel = base["wall_s"] - b_serial
            model = f"{base['wall_s'] / (b_serial + parallel / r['workers']):.2f}"
        print(f"| {r['workers']} | {r['wall_s']:.1f} | {r['ok'] / r['wall_s'] * 60:.1f} | {speed:.2f} | "
              f"{speed / r['workers']:.2f} | {model} | {serial:.2f} | {r['worker_cpu_s'] / max(1, r['ok']):.2f} | "
              f"{r['startup_s']:.1f} | {r['worker_mb']:.0f} | "
              f"{r['driver_mb']:.0f} | + Ray start {r['ray_init_s']:.1f} s |")
    eight = next((r for r in rows if r["workers"] == 8), None)
    if eight is None or "skipped" in eight:
        print(f"\n[----] 8 workers: not measured on {cpus} CPUs (target >= {SCALING_TARGET}x needs 8 free cores)")
    elif base:
        speed = base["wall_s"] / eight["wall_s"]
        print(f"\n[{verdict(speed >= SCALING_TARGET)}] 8 workers / 1 worker throughput = {speed:.2f}x; "
              f"target >= {SCALING_TARGET}x")


def gpu_check() -> None:
    """benchmarks/gpu_check.sh on a machine with an NVIDIA GPU (no installs: the machine may be offline)."""
    if shutil.which("nvidia-smi") is None:
        print("\nno nvidia-smi: benchmarks/gpu_check.sh not run (no GPU here)")
        return
    print("\nbenchmarks/gpu_check.sh --no-install (face detection and the pipeline on CUDA against the CPU):", flush=True)
    try:
        subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--no-install", "--", "--dng-count", "1",
                        "--repeat", "5"], timeout=150, check=False, env={**os.environ, "PYTHON": sys.executable})
    except subprocess.TimeoutExpired:
        print("gpu_check.sh did not finish in 150 s: stopped")


if __name__ == "__main__":
    sys.exit(main())
