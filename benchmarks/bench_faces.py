"""Face detection throughput per backend and device on the PASCAL VOC photos.

Prints a table (images/second, ms/image, faces found); no assertions. With
``--shadow-pass`` it prints instead the stage's whole detection
(:func:`~models.face_detectors.detect_on_proxy`: first pass, second-scale
check) without and with the shadow pass, per photo, on the shared photos
(PASCAL VOC, ``exposure/``, ``wb/``) made 1600 px proxies (smaller ones
enlarged, so that each costs what a 24 MP source's proxy costs: the decode
makes the proxy, the stage sees 1600 px whatever the source; faces found on
an enlarged photo are not the pipeline's, which never enlarges). Weights
come from the model cache (``POSTPROD_MODEL_DIR``, e.g. the shared
``../shared/data/models``); photos from ``POSTPROD_TESTDATA``.

    POSTPROD_MODEL_DIR=../shared/data/models python benchmarks/bench_faces.py [--repeat 20] [--long-edge 1280]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.face_detectors import (  # noqa: E402
    available_providers,
    create_face_detector,
    cuda_available,
    detect_on_proxy,
    detector_input,
    shadow_room,
)

TESTDATA = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20, help="passes over the photos per configuration")
    ap.add_argument("--long-edge", type=int, default=1280, help="detector long edge (as the stage's param)")
    ap.add_argument("--upscale-to", type=int, default=0, help="resize photos to this long edge first (0: as is)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per detector (one worker's share)")
    ap.add_argument("--shadow-pass", action="store_true", help="time detect_on_proxy without and with its shadow pass")
    args = ap.parse_args()
    if args.shadow_pass:
        shadow_pass_table(args.repeat, args.long_edge, args.threads)
        return

    photos = sorted((TESTDATA / "faces" / "pascal_voc").glob("*.jpg"))
    if not photos:
        sys.exit(f"no photos under {TESTDATA / 'faces' / 'pascal_voc'} (set POSTPROD_TESTDATA)")
    images = []
    for p in photos:
        rgb = cv2.imread(str(p))[..., ::-1]
        if args.upscale_to:
            h, w = rgb.shape[:2]
            f = args.upscale_to / max(h, w)
            rgb = cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
        images.append(detector_input(rgb, args.long_edge)[0])

    cv2.setNumThreads(args.threads)
    configs = [("yunet", "opencv", "cpu"), ("yunet", "onnxruntime", "cpu"), ("scrfd", None, "cpu")]
    if cuda_available():
        configs += [("yunet", "onnxruntime", "cuda"), ("scrfd", None, "cuda")]
    print(f"onnxruntime providers: {', '.join(available_providers())}")
    print(f"{len(images)} photos, detector input {images[0].shape[1]}x{images[0].shape[0]} and alike, "
          f"{args.repeat} passes, {args.threads} thread(s)\n")
    print(f"{'backend':8} {'runtime':12} {'device':6} {'providers':28} {'img/s':>8} {'ms/img':>8} {'faces':>6}")
    for backend, runtime, device in configs:
        kwargs = {"runtime": runtime} if runtime else {}
        try:
            det = create_face_detector(backend, device=device, threads=args.threads, **kwargs)
        except Exception as exc:  # a missing optional backend is a row, not a crash
            print(f"{backend:8} {runtime or 'onnxruntime':12} {device:6} unavailable: {exc}")
            continue
        faces = sum(len(det.detect(im)) for im in images)  # warm-up (session init, CUDA kernels)
        start = time.perf_counter()
        for _ in range(args.repeat):
            for im in images:
                det.detect(im)
        elapsed = time.perf_counter() - start
        n = args.repeat * len(images)
        print(f"{backend:8} {runtime or 'onnxruntime':12} {device:6} {','.join(det.providers)[:28]:28} "
              f"{n / elapsed:8.1f} {1000 * elapsed / n:8.2f} {faces:6d}")


def shadow_pass_table(repeat: int, long_edge: int, threads: int) -> None:
    """ms per photo of detect_on_proxy without and with the shadow pass (1600 px proxies of the shared photos)."""
    import statistics

    photos = sorted((TESTDATA / "faces" / "pascal_voc").glob("*.jpg")) + sorted((TESTDATA / "exposure").glob("*.jpg"))
    photos += sorted((TESTDATA / "exposure").glob("*.JPG")) + sorted((TESTDATA / "wb").glob("*.jpg"))
    det = create_face_detector("yunet", threads=threads)
    cv2.setNumThreads(threads)
    print(f"{'photo':48s} {'px':>9s} {'room':>5s} {'faces':>5s} {'+new':>5s} {'ms first':>9s} {'ms both':>8s} "
          f"{'added':>6s}")
    added, ran = [], 0
    for p in photos:
        rgb = cv2.imread(str(p))[..., ::-1]
        h, w = rgb.shape[:2]
        f = 1600 / max(h, w)
        rgb = np.ascontiguousarray(cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA))
        room = shadow_room(cv2.cvtColor(detector_input(rgb, long_edge)[0], cv2.COLOR_BGR2GRAY))
        ran += room
        times = {}
        for on in (False, True):
            found = detect_on_proxy(det, rgb, 1.0, long_edge, shadow_pass=on)  # warm-up
            ms = []
            for _ in range(repeat):
                t = time.perf_counter()
                detect_on_proxy(det, rgb, 1.0, long_edge, shadow_pass=on)
                ms.append(1000 * (time.perf_counter() - t))
            times[on] = (statistics.median(ms), len(found))
        added.append(times[True][0] - times[False][0])
        print(f"{p.name[:48]:48s} {f'{rgb.shape[1]}x{rgb.shape[0]}':>9s} {'yes' if room else 'no':>5s} "
              f"{times[False][1]:5d} {times[True][1] - times[False][1]:+5d} {times[False][0]:9.1f} "
              f"{times[True][0]:8.1f} {added[-1]:6.1f}")
    print(f"\nthe pass ran on {ran} of {len(photos)} photos; ms added per photo: median {statistics.median(added):.1f}, "
          f"mean {statistics.fmean(added):.1f}, max {max(added):.1f} ({threads} thread(s), median of {repeat} runs)")


if __name__ == "__main__":
    main()
