"""White balance: the colour cast of the near-neutral pixels.

The cast is read as CIE Lab a*/b* of the near-neutral pixels brought to mid
grey, and as a correlated colour temperature offset from D65. One function,
:func:`white_balance_cast`, estimates it; :func:`colour_measure` turns it into
the record's colour group, so another estimator replaces one function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.imaging.measure.common import check_rgb, subsample
from pipeline.kernel.records import ColourMeasure

# Lab white point D65 and the linear Rec.709 -> XYZ matrix.
_RGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], dtype=np.float64
)
_D65_XYZ = _RGB_TO_XYZ.sum(axis=1)
_D65_CCT_K = 6504.0
# Y of L* = 50: neutrals are compared at mid-grey so the cast does not depend on exposure.
_MID_GREY_Y = ((50.0 + 16.0) / 116.0) ** 3


@dataclass(frozen=True)
class WhiteBalanceCast:
    """Colour of the near-neutral pixels, compared with D65 grey at L* = 50."""

    a: float
    b: float
    temperature_shift_k: float | None
    neutral_fraction: float


def _xyz_to_lab(xyz: np.ndarray) -> np.ndarray:
    t = xyz / _D65_XYZ
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _mccamy_cct(xyz: np.ndarray) -> float | None:
    s = float(xyz.sum())
    if s <= 0:
        return None
    x, y = xyz[0] / s, xyz[1] / s
    if abs(0.1858 - y) < 1e-9:
        return None
    n = (x - 0.3320) / (0.1858 - y)
    cct = 449.0 * n**3 + 3525.0 * n**2 + 6823.3 * n + 5520.33
    # McCamy's cubic holds from about 2000 K to 12500 K; beyond, there is no honest number.
    return float(cct) if 1667.0 <= cct <= 25000.0 else None


def white_balance_cast(rgb: np.ndarray, radius: float = 0.2, iterations: int = 4) -> WhiteBalanceCast | None:
    """Grey-world cast on a robust near-neutral subset.

    Pixels that are neither clipped nor in deep shadow are described by their
    log chromaticity ``(ln R/G, ln B/G)``; starting from the median, the
    estimate is refined on the pixels within ``radius`` of it (so a strong
    cast does not push the true neutrals out of the subset). The mean colour
    of that subset, brought to mid-grey, is reported in CIE Lab (D65) and as a
    correlated colour temperature offset from D65.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Linear Rec.709 RGB.
    radius : float
        Neighbourhood in natural-log chromaticity units (0.2 is about 20 %).
    iterations : int
        Refinement steps (at least 1).

    Returns
    -------
    WhiteBalanceCast or None
        ``a``, ``b``: Lab a*/b* of the neutral subset at L* = 50 (positive
        a* magenta, negative green; positive b* yellow/warm, negative blue).
        ``temperature_shift_k``: CCT of that colour minus 6504 K (negative: a
        warm, orange cast; positive: a cool, blue one), None outside
        McCamy's range. ``neutral_fraction``: share of the usable pixels the
        estimate rests on. None when fewer than 0.5 % of pixels qualify.

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image or ``iterations`` is below 1.
    """
    rgb = check_rgb(rgb)
    if iterations < 1:
        raise ValueError(f"white balance needs at least 1 refinement step, got iterations={iterations}")
    sub = subsample(rgb, 40_000)
    r, g, b = (np.ascontiguousarray(sub[..., c]).ravel() for c in range(3))
    hi = np.maximum(np.maximum(r, g), b)  # column-wise: numpy is slow along a length-3 axis
    lo = np.minimum(np.minimum(r, g), b)
    peak = float(np.percentile(hi, 99.5))
    if not peak > 0:
        return None
    valid = (lo > peak * 2.0**-8) & (hi < min(0.98, peak * 0.98))
    n_valid = int(valid.sum())
    if n_valid < 0.005 * valid.size or n_valid < 50:
        return None
    ln_rg = np.log(r[valid] / g[valid])
    ln_bg = np.log(b[valid] / g[valid])
    centre = (float(np.median(ln_rg)), float(np.median(ln_bg)))
    for _ in range(iterations):
        near = np.hypot(ln_rg - centre[0], ln_bg - centre[1]) < radius
        if near.sum() < max(50, 0.005 * valid.size):
            return None
        centre = (float(np.median(ln_rg[near])), float(np.median(ln_bg[near])))
    mean_rgb = np.array([math.exp(centre[0]), 1.0, math.exp(centre[1])])
    xyz = _RGB_TO_XYZ @ mean_rgb
    xyz *= _MID_GREY_Y / xyz[1]
    _, a, b = _xyz_to_lab(xyz)
    cct = _mccamy_cct(xyz)
    return WhiteBalanceCast(
        a=float(a),
        b=float(b),
        temperature_shift_k=None if cct is None else cct - _D65_CCT_K,
        neutral_fraction=float(near.sum()) / valid.size,
    )


def colour_measure(rgb: np.ndarray) -> ColourMeasure:
    """The record's colour group of one proxy (all None when too few pixels are near neutral).

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image.
    """
    cast = white_balance_cast(rgb)
    if cast is None:
        return ColourMeasure()
    return ColourMeasure(cast_a=cast.a, cast_b=cast.b, temperature_shift_k=cast.temperature_shift_k)
