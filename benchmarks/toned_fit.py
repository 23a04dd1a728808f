"""Toned black-and-white pictures against colour photographs under casts: the test that keeps a tone.

A sepia print, a cyanotype or a split-toned portrait has colour, and the white
balance read it as a cast: the plan neutralised it (a toned black-and-white
portrait of mmpose's test photos came out grey). Its colour is a function of its
brightness; a colour photograph's, whatever its light, is not.
:func:`~pipeline.imaging.measure.colour.off_tone_chroma_p99` reads how far it is not,
and :data:`~pipeline.imaging.measure.colour.TONED_CHROMA` is the line.

Sources: the accuracy corpus's photos of one split (``--split``: ``tuning``, the
line was chosen there; ``held_out``, judged after) or every photo of ``--photos``
folders. Each is brought to 1600 px (the proxy's size) and made into

* **colour** frames: the photo as published, and two casts injected in linear light
  (R x1.35, B x0.7: about 90 mired warm; R x0.75, B x1.35: about 70 mired cool),
  saved as JPEG of quality 90;
* **toned** frames: its luma toned through six gradient maps (sepia, selenium,
  gold, cyanotype, a split tone: cool shadows and warm highlights, ink on cream
  paper), at half strength saved at quality 92 and at full strength at quality 80
  and 95 (4:2:0 chroma, Pillow's default).

Printed: how many of each side the line puts on the wrong side, the closest
frames to it, and each toning's largest reading. Nothing is cached; about
3 s a photo.

    python benchmarks/toned_fit.py [--split tuning|held_out] [--photos DIR ...] [--verbose]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("POSTPROD_OFFLINE", "1")

from benchmarks.accuracy_corpus import assign_splits, build_pool, load_photo, srgb8_to_linear  # noqa: E402
from pipeline.imaging.color import LUMA_709, linear_to_srgb  # noqa: E402
from pipeline.imaging.measure.colour import (  # noqa: E402
    MONOCHROME_CHROMA,
    TONED_CHROMA,
    chroma_p99,
    off_tone_chroma_p99,
)

LONG_EDGE = 1600
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
#: Linear channel gains of the injected casts (warm, cool), and the JPEG quality they are saved at.
CASTS = {"warm cast": (1.35, 1.0, 0.7), "cool cast": (0.75, 1.0, 1.35)}
CAST_QUALITY = 90
#: Gradient maps: (encoded luma, encoded RGB) stops. Each toning blends the grey toward its map by a strength.
TONINGS: dict[str, tuple[tuple[float, tuple[float, float, float]], ...]] = {
    "sepia": ((0.0, (0.0, 0.0, 0.0)), (0.5, (0.58, 0.47, 0.34)), (1.0, (1.0, 0.98, 0.94))),
    "selenium": ((0.0, (0.0, 0.0, 0.0)), (0.5, (0.52, 0.46, 0.50)), (1.0, (1.0, 1.0, 1.0))),
    "gold": ((0.0, (0.0, 0.0, 0.0)), (0.5, (0.55, 0.50, 0.38)), (1.0, (1.0, 1.0, 0.95))),
    "cyanotype": ((0.0, (0.0, 0.0, 0.0)), (0.5, (0.30, 0.47, 0.62)), (1.0, (0.95, 0.98, 1.0))),
    "split tone": ((0.0, (0.0, 0.0, 0.0)), (0.3, (0.22, 0.30, 0.38)), (0.7, (0.78, 0.70, 0.58)), (1.0, (1.0, 1.0, 1.0))),
    "ink on cream": ((0.0, (0.05, 0.04, 0.03)), (1.0, (0.99, 0.95, 0.86))),
}
#: (strength, JPEG quality) of each toned frame.
TONED_VERSIONS = ((0.5, 92), (1.0, 80), (1.0, 95))


def jpeg(srgb8: np.ndarray, quality: int) -> np.ndarray:
    """``srgb8`` through a JPEG of ``quality`` (Pillow's 4:2:0 chroma), decoded again."""
    buf = io.BytesIO()
    Image.fromarray(srgb8).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def to8(encoded: np.ndarray) -> np.ndarray:
    return (np.clip(encoded, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def toned(srgb8: np.ndarray, stops: tuple[tuple[float, tuple[float, float, float]], ...], strength: float) -> np.ndarray:
    """The photo's encoded luma through the gradient map ``stops``, blended with the grey by ``strength``."""
    luma = (srgb8.astype(np.float32) / 255.0) @ LUMA_709
    xs = [x for x, _ in stops]
    mapped = np.stack([np.interp(luma, xs, [c[i] for _, c in stops]) for i in range(3)], axis=-1)
    return to8(luma[..., None] + strength * (mapped - luma[..., None]))


def frames(srgb8: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(side, kind, 8-bit sRGB frame) of one photo: its colour frames and its toned ones."""
    out = [("colour", "as published", srgb8)]
    linear = srgb8_to_linear(srgb8)
    for name, gains in CASTS.items():
        cast = linear_to_srgb(np.clip(linear * np.asarray(gains), 0.0, 1.0).astype(np.float32))
        out.append(("colour", name, jpeg(to8(cast), CAST_QUALITY)))
    for name, stops in TONINGS.items():
        for strength, quality in TONED_VERSIONS:
            out.append(("toned", f"{name} {strength:g} q{quality}", jpeg(toned(srgb8, stops, strength), quality)))
    return out


def sources(data: Path, split: str, folders: list[Path]) -> list[Path]:
    """The photos: the accuracy pool's photos of ``split`` (RAWs aside), or every photo of ``folders``."""
    if folders:
        return sorted(p for f in folders for p in f.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    pool = build_pool(data, Path.home() / ".cache" / "postprod" / "accuracy", log=lambda *_: None)
    splits = assign_splits(pool)
    return [s.path for s in pool if splits[s.id] == split and s.group != "raw"]


def measure(paths: list[Path], verbose: bool) -> list[dict]:
    rows = []
    for path in paths:
        try:
            srgb8 = load_photo(path, LONG_EDGE)
        except Exception as exc:  # noqa: BLE001  (a folder's odd file is left out, with its reason)
            print(f"  {path.name}: left out ({exc})", file=sys.stderr)
            continue
        for side, kind, frame in frames(srgb8):
            linear = srgb8_to_linear(frame).astype(np.float32)
            row = {"photo": path.name, "side": side, "kind": kind, "chroma": chroma_p99(linear) * 255.0,
                   "off_tone": off_tone_chroma_p99(linear) * 255.0}
            if verbose:
                print(f"  {path.name[:40]:40s} {side:6s} {kind:22s} off-tone {row['off_tone']:6.1f} "
                      f"chroma {row['chroma']:6.1f}", file=sys.stderr)
            rows.append(row)
    return rows


def is_toned(row: dict) -> bool:
    """The pipeline's test (:func:`~pipeline.planning.rules.white_balance.is_toned`), in code values."""
    return row["chroma"] > MONOCHROME_CHROMA * 255.0 and row["off_tone"] <= TONED_CHROMA * 255.0


def table(rows: list[dict]) -> str:
    line = TONED_CHROMA * 255.0
    colour = [r for r in rows if r["side"] == "colour"]
    tone = [r for r in rows if r["side"] == "toned"]
    out = [f"line: off-tone chroma p99 <= {line:.1f} code values of 255 (and chroma p99 > "
           f"{MONOCHROME_CHROMA * 255.0:.0f}): toned", "",
           "| frames | n | taken for toned | off-tone chroma p99: min | 5th pct | median | max |", "|---|---|---|---|---|---|---|"]
    for label, sel in (("colour: as published", [r for r in colour if r["kind"] == "as published"]),
                       ("colour: cast twins", [r for r in colour if r["kind"] != "as published"]),
                       *((f"toned: {name}", [r for r in tone if r["kind"].startswith(name + " ")]) for name in TONINGS),
                       ("toned: all", tone)):
        v = np.array([r["off_tone"] for r in sel])
        n_toned = sum(is_toned(r) for r in sel)
        out.append(f"| {label} | {len(sel)} | {n_toned} | {v.min():.1f} | {np.percentile(v, 5):.1f} | "
                   f"{np.median(v):.1f} | {v.max():.1f} |")
    wrong_colour = sorted((r for r in colour if is_toned(r)), key=lambda r: r["off_tone"])
    wrong_tone = sorted((r for r in tone if not is_toned(r)), key=lambda r: -r["off_tone"])
    out.append("")
    out.append(f"colour frames taken for toned: {len(wrong_colour)} of {len(colour)}"
               + "".join(f"\n  {r['photo']} ({r['kind']}): {r['off_tone']:.1f}" for r in wrong_colour[:10]))
    out.append(f"toned frames missed: {len(wrong_tone)} of {len(tone)}"
               + "".join(f"\n  {r['photo']} ({r['kind']}): {r['off_tone']:.1f}" for r in wrong_tone[:10]))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("tuning", "held_out"), default="tuning",
                        help="the accuracy pool's split to read (default tuning, where the line was chosen)")
    parser.add_argument("--photos", type=Path, action="append", default=[],
                        help="these folders' photos instead of a split's (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="print every frame's reading")
    args = parser.parse_args(argv)
    data = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))
    t0 = time.perf_counter()
    paths = sources(data, args.split, args.photos)
    rows = measure(paths, args.verbose)
    print(table(rows))
    print(f"\n{len({r['photo'] for r in rows})} photos ({'folders' if args.photos else args.split}), {len(rows)} "
          f"frames, {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
