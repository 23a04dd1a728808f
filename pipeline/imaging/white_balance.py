"""White-balance colour maths: the Planckian locus, Lab to linear sRGB, and the gains that neutralise a cast.

Scalar and in double precision: planning computes one set of gains per image
from the cast measured on its near-neutral pixels (CIE Lab at L*=50, D65
white), and the renderer multiplies linear RGB by them. Temperatures are in
kelvin; shifts between them are in mired (1e6 / K), where equal steps look
equally large whatever the temperature.
"""

from __future__ import annotations

import numpy as np

#: Correlated colour temperature of D65, the working space's white: a cast of 0 reads as this.
D65_CCT_K = 6504.0

_XYZ_TO_SRGB = np.array(
    [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]]
)
_D65_XYZ = np.array([0.95047, 1.0, 1.08883])
# Rec.709 luminance weights in double precision (color.LUMA_709 is float32, for images).
_LUMA_709 = np.array([0.2126, 0.7152, 0.0722])
# Below this many kelvin from D65 the target is D65 itself: the fitted locus is
# not exactly D65 there, and a neutral policy must aim at grey, not near it.
_D65_MATCH_K = 1.0
# Floor of a measured channel before dividing by it (a cast so strong that the
# Lab colour leaves the sRGB gamut would otherwise give an infinite gain).
_MIN_CHANNEL = 1e-4


def mired(cct_k: float) -> float:
    """Micro reciprocal degrees of a colour temperature in kelvin (1e6 / K)."""
    return 1e6 / cct_k


def cct_to_xy(cct: float) -> tuple[float, float]:
    """Chromaticity of the Planckian locus at ``cct`` kelvin.

    Kim et al. (2002) cubic fit, valid from 1667 to 25000 K; temperatures
    outside are clamped to that range.

    Parameters
    ----------
    cct : float
        Correlated colour temperature in kelvin.

    Returns
    -------
    (float, float)
        CIE 1931 ``(x, y)``.
    """
    t = min(max(cct, 1667.0), 25000.0)
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def planckian_white_srgb(cct: float) -> np.ndarray:
    """Linear sRGB of the Planckian white at ``cct`` kelvin, scaled to green = 1."""
    x, y = cct_to_xy(cct)
    rgb = _XYZ_TO_SRGB @ np.array([x / y, 1.0, (1 - x - y) / y])
    return rgb / rgb[1]


def lab_to_linear_srgb(L: float, a: float, b: float) -> np.ndarray:
    """CIE Lab (D65 white) to linear sRGB (unclipped: out-of-gamut colours give negative channels)."""
    fy = (L + 16) / 116
    fx, fz = fy + a / 500, fy - b / 200

    def finv(t: float) -> float:
        return t**3 if t > 6 / 29 else 3 * (6 / 29) ** 2 * (t - 4 / 29)

    xyz = _D65_XYZ * np.array([finv(fx), finv(fy), finv(fz)])
    return _XYZ_TO_SRGB @ xyz


def white_balance_gains(cast_a: float, cast_b: float, target_cct: float = D65_CCT_K) -> np.ndarray:
    """Linear RGB multipliers that move the measured neutral to the target white.

    Parameters
    ----------
    cast_a, cast_b : float
        CIE Lab a* and b* of the image's near-neutral pixels at L*=50: the
        measured neutral is the Lab colour ``(50, cast_a, cast_b)``.
    target_cct : float
        Where neutrals should land: the Planckian white at this temperature,
        or D65 itself within a kelvin of it (a neutral policy).

    Returns
    -------
    ndarray, shape (3,)
        Gains for linear R, G, B, normalised so the neutral keeps its luminance.
    """
    measured = np.clip(lab_to_linear_srgb(50.0, cast_a, cast_b), _MIN_CHANNEL, None)
    target = np.ones(3) if abs(target_cct - D65_CCT_K) < _D65_MATCH_K else planckian_white_srgb(target_cct)
    gains = target / measured
    gains /= (_LUMA_709 @ (gains * measured)) / (_LUMA_709 @ measured)
    return gains
