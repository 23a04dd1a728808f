"""Face detection and the whole pipeline on CUDA against the CPU: one table.

Run through ``benchmarks/gpu_check.sh``, which installs onnxruntime-gpu on a
machine with an NVIDIA GPU first; on a machine without one only the CPU rows
are timed. Face detection: each backend (YuNet through onnxruntime; SCRFD
when its weights are in the model cache) on the PASCAL VOC photos upscaled
to a 24 MP-class proxy's detector input (1280 px), per device. The whole
pipeline: ``process_shoot`` with the local executor (one process, so the
CUDA libraries preloaded here serve it) on 24 MP DNGs from
:mod:`benchmarks.corpus`, ``device="cpu"`` against ``device="cuda"``.

A row says which onnxruntime providers actually ran: onnxruntime falls back
to the CPU silently when the CUDA or cuDNN libraries are missing, and a
"cuda" row that ran on the CPU is reported as such, not as a GPU number.

    python benchmarks/gpu_check.py [--devices cpu cuda] [--repeat 20] [--dng-count 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.corpus import build_dng_corpus, link_shoot  # noqa: E402


def photos(data: Path, long_edge: int) -> list[np.ndarray]:
    """The PASCAL VOC photos, upscaled so the detector sees a ``long_edge`` input (as from a 24 MP proxy)."""
    from models.face_detectors import detector_input

    out = []
    for p in sorted((data / "faces" / "pascal_voc").glob("*.jpg")):
        rgb = cv2.imread(str(p))[..., ::-1]
        h, w = rgb.shape[:2]
        f = long_edge / max(h, w)
        rgb = cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
        out.append(detector_input(rgb, long_edge)[0])
    return out


def time_detection(images: list[np.ndarray], devices: list[str], repeat: int) -> list[tuple[str, ...]]:
    from models.face_detectors import create_face_detector

    rows = []
    for backend in ("yunet", "scrfd"):
        for device in devices:
            kwargs = {"runtime": "onnxruntime"} if backend == "yunet" else {}
            try:
                det = create_face_detector(backend, device=device, threads=1, **kwargs)
            except Exception as exc:  # noqa: BLE001 - weights not cached (scrfd), say so in the table
                rows.append((f"detect faces: {backend}", device, "unavailable", "-", "-", str(exc)[:60]))
                continue
            start = time.perf_counter()
            faces = sum(len(det.detect(im)) for im in images)  # warm-up: session init, CUDA kernels and plans
            first = (time.perf_counter() - start) / len(images)
            start = time.perf_counter()
            for _ in range(repeat):
                for im in images:
                    det.detect(im)
            per = (time.perf_counter() - start) / (repeat * len(images))
            note = f"{faces} faces on {len(images)} photos; first pass {first * 1000:.0f} ms/photo"
            rows.append((f"detect faces: {backend}", device, ",".join(det.providers), f"{per * 1000:.2f} ms",
                         f"{1 / per:.1f}/s", note))
    return rows


def time_pipeline(dngs: list[Path], devices: list[str], work: Path) -> list[tuple[str, ...]]:
    from models.face_detectors import FaceDetector
    from models.registry import loaded
    from pipeline.kernel.run import RunSettings, process_shoot

    # The shoots link to the corpus cache: outside the shoot folder, so followed on purpose.
    shoot = link_shoot(work / "shoot", dngs)
    # Warm-up on one file: imports, LibRaw and OpenCV first calls, CUDA context and kernels.
    warm = link_shoot(work / "warm", dngs[:1])
    for device in devices:
        process_shoot(RunSettings(shoot_dir=warm, out_dir=work / f"warm_{device}", executor="local", device=device,
                                  follow_external_symlinks=True))
    rows = []
    for device in devices:
        out = work / f"out_{device}"
        start = time.perf_counter()
        result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", device=device,
                                           follow_external_symlinks=True))
        wall = time.perf_counter() - start
        n = max(1, len(result.ok))
        faces = sum(r.stage_seconds.get("detect_faces", 0.0) for r in result.ok) / n
        # Where the run's detectors ran, as their sessions say (a CUDA session that could not start runs on the CPU).
        ran = {d.providers[0] for d in loaded() if isinstance(d, FaceDetector) and d.device == device}
        where = ",".join(sorted(ran)) or "no detector loaded"
        rows.append(("whole pipeline (local executor)", device, where, f"{wall / n:.3f} s",
                     f"{60 * n / wall:.1f}/min", f"{len(result.ok)} ok; detect_faces {faces * 1000:.0f} ms/image"))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", nargs="+", default=None, choices=["cpu", "cuda"],
                    help="default: cpu, and cuda when onnxruntime has the CUDA provider")
    ap.add_argument("--repeat", type=int, default=20, help="passes over the photos per detector")
    ap.add_argument("--dng-count", type=int, default=2, help="24 MP DNGs for the whole-pipeline rows")
    ap.add_argument("--corpus-dir", type=Path, default=Path.home() / ".cache" / "postprod" / "bench")
    args = ap.parse_args(argv)

    data = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))
    os.environ.setdefault("POSTPROD_MODEL_DIR", str(data / "models"))
    import onnxruntime

    from models.face_detectors import CUDA_PROVIDER, available_providers, preload_cuda

    note = preload_cuda() if "cuda" in (args.devices or ["cuda"]) else ""
    devices = args.devices or (["cpu", "cuda"] if CUDA_PROVIDER in available_providers() else ["cpu"])
    print(f"onnxruntime {onnxruntime.__version__}, providers: {', '.join(available_providers())}"
          + (f"; {note}" if note else ""))
    if "cuda" in devices and CUDA_PROVIDER not in available_providers():
        print("warning: no CUDAExecutionProvider: the cuda rows run on the CPU (install onnxruntime-gpu)")
    images = photos(data, 1280)
    if not images:
        sys.exit(f"no photos under {data / 'faces' / 'pascal_voc'} (set POSTPROD_TESTDATA)")
    rows = time_detection(images, devices, args.repeat)
    work = Path(tempfile.mkdtemp(prefix="postprod-gpu-"))
    try:
        rows += time_pipeline(build_dng_corpus(data, args.corpus_dir, args.dng_count), devices, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    head = ("what", "device", "ran on", "per image", "throughput", "notes")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    print()
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
