"""Highlight roll-off on the pushed images of the accuracy corpus (issue 17, item 6): new clipped pixels.

For every corpus item that postprod's plan brightens (an ``exposure`` operation
with ``ev`` > 0, read from the accuracy benchmark's per-item decisions), the
item is decoded as the render decodes it (the proxy's decode, at
``--long-edge``) and rendered through :func:`pipeline.imaging.render.render_frame`
three ways: as shot (no push), pushed with the highlight shoulder (what postprod
delivers), and pushed by a plain gain that clips (what it delivered before). A RAW
item is developed through the camera-like curve in all three, as postprod delivers
a RAW by default since 2026-12-05 (the shoulder's top is then the scene light the
curve takes to it; on the tuning split's 48 pushed RAW twins 48 stay within 0.5 pp,
at most 0.13, as in linear light, where they were before the top was moved, 47).
A pixel is clipped when any channel encodes to 255. "New clipped" is the
pushed render's clipped share minus the as-shot render's, in percentage points;
the target is <= 0.5 on every pushed image.

    python benchmarks/accuracy.py --split tuning     # writes the decisions it reads
    python benchmarks/highlights.py --split tuning [--write]

``--write`` writes the table to ``benchmarks/HIGHLIGHTS.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import DEFAULT_CACHE  # noqa: E402
from pipeline.imaging.decode import decode_proxy  # noqa: E402
from pipeline.imaging.render import Adjustments, finish_rendition, render_frame  # noqa: E402
from pipeline.kernel.records import SourceKind  # noqa: E402

TARGET_PP = 0.5
HIGHLIGHTS_MD = ROOT / "benchmarks" / "HIGHLIGHTS.md"


def clipped_share(pixels: np.ndarray) -> float:
    """Share of pixels with any channel at the encoding's top (255 in 8 bits), in percent."""
    return 100.0 * float(np.mean(np.any(pixels >= 255, axis=2)))


def renders(path: Path, domain: str, ev: float, long_edge: int) -> tuple[float, float, float]:
    """Clipped percent as shot, pushed with the shoulder, pushed by a plain gain."""
    kind = SourceKind.RAW if domain == "raw" else SourceKind.RASTER
    rgb = decode_proxy(path, kind, long_edge, 250_000_000).rgb
    h, w = rgb.shape[:2]
    frame = (0.0, 0.0, float(w), float(h))

    developed = kind is SourceKind.RAW

    def render(adjust: Adjustments) -> np.ndarray:
        return render_frame(rgb, w, h, adjust, frame, (w, h), "srgb", 0.0, 8)

    as_shot = clipped_share(render(Adjustments(develop_curve=developed)))
    rolled = clipped_share(render(Adjustments(exposure_ev=ev, develop_curve=developed)))
    gain = 2.0**ev
    hard = clipped_share(finish_rendition(rgb.copy(), "srgb", 0.0, 8, gains=(gain, gain, gain),
                                          develop_curve=developed))
    return as_shot, rolled, hard


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="the accuracy benchmark's cache")
    parser.add_argument("--split", choices=("tuning", "held_out", "all"), default="tuning")
    parser.add_argument("--decisions", type=Path, default=None,
                        help="per-item decisions (default: the cache's results/decisions-full.jsonl)")
    parser.add_argument("--long-edge", type=int, default=1000, help="decode size (default 1000 px)")
    parser.add_argument("--write", action="store_true", help=f"write the table to {HIGHLIGHTS_MD.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    results = args.cache / "results"
    path = args.decisions or results / "decisions-full.jsonl"
    corpus = args.cache / "corpus"
    start = time.perf_counter()
    rows = []
    for line in path.read_text().splitlines():
        item = json.loads(line)
        if args.split != "all" and item["split"] != args.split:
            continue
        ev = (item.get("postprod") or {}).get("ev") or 0.0
        if ev <= 0.0:
            continue
        rows.append((item["id"], ev, *renders(corpus / item["file"], item["domain"], ev, args.long_edge)))
    if not rows:
        print(f"no pushed images in {path} ({args.split})")
        return 1
    new_rolled = np.array([r[3] - r[2] for r in rows])
    new_hard = np.array([r[4] - r[2] for r in rows])
    within = int(np.sum(new_rolled <= TARGET_PP))
    worst = sorted(rows, key=lambda r: r[2] - r[3])[:5]
    lines = [
        "# Highlight roll-off: new clipped pixels on pushed images",
        "",
        f"Written by `benchmarks/highlights.py` (issue 17, item 6) from `{path.name}`; split `{args.split}`; "
        f"decoded at {args.long_edge} px; {time.strftime('%Y-%m-%d %H:%M')}; {platform.machine()}, "
        f"Python {platform.python_version()}; {time.perf_counter() - start:.0f} s.",
        "",
        "A pixel is clipped when any channel encodes to 255; new = pushed minus as shot, percentage points.",
        "",
        "| metric | with the shoulder | plain gain (before) | target |",
        "|---|---|---|---|",
        f"| pushed images | {len(rows)} | {len(rows)} | |",
        f"| median new clipped (pp) | {np.median(new_rolled):.2f} | {np.median(new_hard):.2f} | |",
        f"| 95th percentile new clipped (pp) | {np.percentile(new_rolled, 95):.2f} | "
        f"{np.percentile(new_hard, 95):.2f} | |",
        f"| max new clipped (pp) | {new_rolled.max():.2f} | {new_hard.max():.2f} | <= {TARGET_PP} |",
        f"| images within {TARGET_PP} pp | {within} of {len(rows)} | {int(np.sum(new_hard <= TARGET_PP))} of "
        f"{len(rows)} | all |",
        "",
        "Most new clipping with the shoulder: " + "; ".join(
            f"`{r[0]}` +{r[1]:.2f} EV: {r[2]:.2f} % as shot, {r[3]:.2f} % pushed" for r in worst),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        HIGHLIGHTS_MD.write_text(text)
        print(f"wrote {HIGHLIGHTS_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
