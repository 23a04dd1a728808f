"""A rendered source's white balance keeps its highlights (issue 17: the espresso's white cup came out cyan).

The truth is the shared pair: one Canon raw rendered with a wrong white-balance preset and rendered rightly. The
gains that bring the wrong render's mid-tones onto the right one's are read here, from the pair's mid-tones alone,
and the renderer applies them to the whole wrong render. A camera balances before its tone curve, whose shoulder
compresses a bright surface's cast: the same gains times the display light push the bright tones far past the right
render (26 CIELAB a*b* off), which the renderer must not (10: through the curve's scene light there), while the
shadows and mid-tones, where the two ways agree, are no further off than the plain gains leave them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.render import finish_rendition
from pipeline.imaging.white_balance import linear_srgb_to_lab

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
TONES = {"shadows": (0.0, 0.1), "mid-tones": (0.1, 0.3), "bright": (0.6, 1.0)}


def linear_png(path: Path) -> np.ndarray:
    """Linear sRGB of a PNG, every fourth pixel each way."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[::4, ::4, ::-1]
    full = 65535.0 if image.dtype == np.uint16 else 255.0
    return srgb_to_linear((image / full).astype(np.float32))


def chroma_error(picture: np.ndarray, truth: np.ndarray) -> np.ndarray:
    a, b = linear_srgb_to_lab(picture), linear_srgb_to_lab(truth)
    return np.hypot(a[..., 1] - b[..., 1], a[..., 2] - b[..., 2])


def test_rendered_balance_keeps_the_highlights_where_the_camera_puts_them(testdata: Path) -> None:
    pair = testdata / "wb" / "pairs"
    wrong = linear_png(pair / "Canon1DsMkIII_0087_F_P.input.png")
    right = linear_png(pair / "Canon1DsMkIII_0087_F_P.groundtruth.png")
    level = right @ LUMA
    # Neither render black nor clipped in any channel.
    valid = (wrong.max(-1) < 0.98) & (right.max(-1) < 0.98) & (wrong.min(-1) > 0.002) & (right.min(-1) > 0.002)
    mid = valid & (level > 0.05) & (level < 0.3)
    log_ratio = np.log(right[mid]) - np.log(wrong[mid])
    gains = np.exp(np.median(log_ratio - log_ratio[:, 1:2], axis=0))
    assert gains[0] > 1.5 and gains[2] < 0.5  # the wrong preset is far too cool: a strong correction

    plain = np.clip(wrong * gains, 0.0, 1.0)
    encoded = finish_rendition(wrong.copy(), "srgb", 0.0, 16, np.ones(3), balance=tuple(map(float, gains)))
    rendered = srgb_to_linear(encoded.astype(np.float32) / 65535.0)
    errors = {}
    for name, (lo, hi) in TONES.items():
        band = valid & (level >= lo) & (level < hi)
        assert band.sum() > 500, name
        errors[name] = (float(np.median(chroma_error(rendered[band], right[band]))),
                        float(np.median(chroma_error(plain[band], right[band]))))
    renderer, by_display = errors["bright"]
    assert by_display > 20.0, errors  # the way the cup turned cyan
    assert renderer <= 0.6 * by_display, errors
    for name in ("shadows", "mid-tones"):  # no worse where the two ways agree
        assert errors[name][0] <= errors[name][1] + 0.2, errors
