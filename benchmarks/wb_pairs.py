"""A rendered source's white balance against renders of one raw with a wrong and the right white balance.

For each pair (the wrong render, the right one; same size, aligned) this prints:

- the correction the pair needs: the per-channel gains that bring the wrong render's mid-tones (display luminance
  0.05-0.3 in the right one) onto the right one's, as mired;
- what postprod's estimate reads (:func:`pipeline.imaging.measure.colour.white_balance_cast`, the cues only, no
  ColorChecker) on each render: the distance between the two is what it sees of the cast;
- the cast the right render's truly neutral surfaces (chroma under 4) show in the wrong render, by tone, in the
  display light and through the camera-like curve (:func:`pipeline.imaging.measure.metering.inverse_tone_curve`);
- the needed gains applied to the wrong render by the display light alone and by the renderer
  (:func:`pipeline.imaging.render.finish_rendition`, which balances a rendered source by
  :func:`~pipeline.imaging.measure.metering.balance_display_referred`): the median CIELAB a*b* error against the
  right render, by tone.

    python benchmarks/wb_pairs.py [--pair WRONG RIGHT ...]

Without ``--pair``, the shared data's pair (``wb/pairs``, under ``POSTPROD_TESTDATA``). More pairs: the Rendered WB
and Cube+ examples of github.com/mahmoudnafifi/WB_sRGB (``examples_from_datasets/*/input`` and ``groundtruth``);
nothing is downloaded here. Stop 50's figures (the shared pair and two of those) are in
:func:`~pipeline.imaging.measure.metering.balance_display_referred`'s docstring.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._tables import print_columns  # noqa: E402
from pipeline.imaging.color import srgb_to_linear  # noqa: E402
from pipeline.imaging.measure.colour import white_balance_cast  # noqa: E402
from pipeline.imaging.measure.metering import inverse_tone_curve  # noqa: E402
from pipeline.imaging.render import finish_rendition  # noqa: E402
from pipeline.imaging.white_balance import cast_mired, linear_srgb_to_lab  # noqa: E402

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
TONES = ((0.0, 0.03), (0.03, 0.1), (0.1, 0.3), (0.3, 0.6), (0.6, 1.0))
NEUTRAL_CHROMA = 4.0


def linear_image(path: Path) -> np.ndarray:
    """Linear sRGB of an 8- or 16-bit picture, float32 (H, W, 3)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SystemExit(f"cannot read {path}")
    full = 65535.0 if image.dtype == np.uint16 else 255.0
    return srgb_to_linear((image[..., 2::-1] / full).astype(np.float32))


def band_name(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}"


def pair_rows(wrong: np.ndarray, right: np.ndarray) -> dict[str, str]:
    """One pair's column of the table."""
    level = right @ LUMA
    valid = (wrong.max(-1) < 0.98) & (right.max(-1) < 0.98) & (wrong.min(-1) > 0.002) & (right.min(-1) > 0.002)
    mid = valid & (level > 0.05) & (level < 0.3)
    log_ratio = np.log(right[mid]) - np.log(wrong[mid])
    gains = np.exp(np.median(log_ratio - log_ratio[:, 1:2], axis=0))
    col = {"needed correction (mired)": f"{-cast_mired(1.0 / gains):+.0f}"}
    reads = [white_balance_cast(x, rendered=True, look_for_chart=False) for x in (wrong, right)]
    if None not in reads:
        col["estimate: wrong render, right render (mired)"] = f"{reads[0].mired:+.0f}, {reads[1].mired:+.0f}"
    lab = linear_srgb_to_lab(right)
    neutral = valid & (np.hypot(lab[..., 1], lab[..., 2]) < NEUTRAL_CHROMA)
    plain = np.clip(wrong * gains, 0.0, 1.0)
    encoded = finish_rendition(wrong.copy(), "srgb", 0.0, 16, np.ones(3), balance=tuple(map(float, gains)))
    rendered = srgb_to_linear(encoded.astype(np.float32) / 65535.0)
    errors = {}
    for name, picture in (("display light", plain), ("renderer", rendered)):
        moved = linear_srgb_to_lab(picture)
        errors[name] = np.hypot(moved[..., 1] - lab[..., 1], moved[..., 2] - lab[..., 2])
    for lo, hi in TONES:
        band = valid & (level >= lo) & (level < hi)
        grey = neutral & band
        if grey.sum() >= 200:
            display = np.exp(np.median(np.log(wrong[grey]), axis=0))
            scene = np.exp(np.median(np.log(inverse_tone_curve(wrong[grey].astype(np.float64))), axis=0))
            col[f"neutrals' cast at {band_name(lo, hi)}: display, through the curve (mired)"] = (
                f"{cast_mired(display / display[1]):+.0f}, {cast_mired(scene / scene[1]):+.0f}")
        if band.sum() >= 200:
            col[f"a*b* error at {band_name(lo, hi)}: display light, renderer"] = (
                f"{np.median(errors['display light'][band]):.1f}, {np.median(errors['renderer'][band]):.1f}")
    return col


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", nargs=2, action="append", type=Path, metavar=("WRONG", "RIGHT"), default=[])
    args = parser.parse_args()
    pairs = args.pair
    if not pairs:
        shared = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")) / "wb" / "pairs"
        pairs = [(shared / "Canon1DsMkIII_0087_F_P.input.png", shared / "Canon1DsMkIII_0087_F_P.groundtruth.png")]
    table = {}
    for wrong_path, right_path in pairs:
        wrong, right = linear_image(wrong_path), linear_image(right_path)
        if wrong.shape != right.shape:
            raise SystemExit(f"{wrong_path} and {right_path} differ in size")
        table[wrong_path.stem] = pair_rows(wrong, right)
    print_columns("A rendered source's white balance against the right render (display luminance bands)", table)


if __name__ == "__main__":
    main()
