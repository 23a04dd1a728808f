"""Encoder settings against time, size and fidelity: the evidence for :class:`EncoderSettings`' defaults.

    python benchmarks/bench_encode.py [--photos 6] [--repeat 3]

The largest photographs of the test data (``exposure/``) are area-downscaled
to the benchmark chart's two renditions (a 2048 px JPEG at quality 90, a
1080 px WebP at quality 80), and to a 2048 px AVIF at qualities 60 and 80 beside JPEGs of those qualities,
and encoded with every setting the export stage offers; each row is the mean over the photos of the best of ``--repeat``
encodes, the file size, and the PSNR of the decoded file against the pixels
that were encoded. The JPEG rows also check that the progressive and the
baseline files decode to the same pixels (they hold the same coefficients).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.corpus import source_photos  # noqa: E402
from pipeline.imaging.icc import icc_profile  # noqa: E402
from pipeline.outputs.encode import EncoderSettings, encode_pixels  # noqa: E402


def psnr(decoded: np.ndarray, original: np.ndarray) -> float:
    mse = float(np.mean((decoded.astype(np.float64) - original) ** 2))
    return 10 * np.log10(255**2 / max(mse, 1e-12))


def fitted(rgb: np.ndarray, long_edge: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = min(1.0, long_edge / max(h, w))
    return cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))
    icc = icc_profile("srgb")
    cases = [("jpeg", 2048, 90, f"progressive={p}", EncoderSettings(jpeg_progressive=p)) for p in (True, False)]
    cases += [("webp", 1080, 80, f"method={m}", EncoderSettings(webp_method=m)) for m in range(7)]
    cases += [("avif", 2048, q, f"speed={s}", EncoderSettings(avif_speed=s)) for q in (60, 80) for s in (6, 8, 9)]
    cases += [("jpeg", 2048, q, "baseline (beside the AVIFs)", EncoderSettings()) for q in (60, 80)]
    rows: dict[str, list[float]] = {}
    photos = source_photos(data, args.photos)
    for photo in photos:
        with Image.open(photo) as im:
            rgb = np.asarray(im.convert("RGB"))
        decoded_jpegs = []
        for fmt, edge, quality, label, settings in cases:
            pixels = fitted(rgb, edge)
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                data_bytes = encode_pixels(pixels, fmt, quality, 8, icc, settings)
                best = min(best, time.perf_counter() - start)
            decoded = np.asarray(Image.open(io.BytesIO(data_bytes)).convert("RGB"))
            if fmt == "jpeg" and quality == 90:
                decoded_jpegs.append(decoded)
            row = rows.setdefault(f"{fmt} {edge} px q{quality} {label}", [0.0, 0.0, 0.0])
            row[0] += best / len(photos)
            row[1] += len(data_bytes) / len(photos)
            row[2] += psnr(decoded, pixels) / len(photos)
        same = all(np.array_equal(decoded_jpegs[0], d) for d in decoded_jpegs[1:])
        print(f"{photo.name}: progressive and baseline JPEG decode to the same pixels: {same}")
    print("\n| encoder | ms | KB | PSNR dB |\n|---|---|---|---|")
    for name, (t, size, p) in rows.items():
        print(f"| {name} | {t * 1000:.1f} | {size / 1024:.1f} | {p:.2f} |")


if __name__ == "__main__":
    main()
