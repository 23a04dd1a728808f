"""White-balance colour maths: the Planckian locus, casts in mired, Lab to linear sRGB, and the gains.

Scalar and in double precision: planning computes one set of gains per image
from the light measured on its neutral surfaces, and the renderer multiplies
linear RGB by them. Temperatures are in kelvin; shifts between them are in
mired (1e6 / K), where equal steps look equally large whatever the
temperature.

A cast is read in mired directly, never through a correlated colour
temperature formula: the light a neutral surface shows (linear sRGB, D65
white = (1, 1, 1)) is placed on the Planckian locus by its red/blue ratio,
which a temperature change moves and a green/magenta tint (a change of the
green channel, as CC filters make) does not. The locus comes from Robertson's
isotemperature table (Wyszecki & Stiles, the DNG SDK's, in
:mod:`pipeline.imaging.camera_raw`), which runs from 600 mired (1667 K) to 0
(infinitely hot); past its ends the red/blue ratio is extended along the
locus's end slope, so a light bluer than any black body still reads a finite,
monotonic number of mired (McCamy's formula gives nothing past 25 000 K).
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.imaging.camera_raw import _ROBERTSON

#: Correlated colour temperature of D65, the working space's white: a cast of 0 reads as this.
D65_CCT_K = 6504.0
D65_MIRED = 1e6 / D65_CCT_K

_XYZ_TO_SRGB = np.array(
    [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]]
)
_SRGB_TO_XYZ = np.linalg.inv(_XYZ_TO_SRGB)
_D65_XYZ = np.array([0.95047, 1.0, 1.08883])
# Rec.709 luminance weights in double precision (color.LUMA_709 is float32, for images).
_LUMA_709 = np.array([0.2126, 0.7152, 0.0722])
# Floor of a measured channel before dividing by it (a cast so strong that the
# Lab colour leaves the sRGB gamut would otherwise give an infinite gain).
_MIN_CHANNEL = 1e-4


def mired(cct_k: float) -> float:
    """Micro reciprocal degrees of a colour temperature in kelvin (1e6 / K)."""
    return 1e6 / cct_k


def cct_to_xy(cct: float) -> tuple[float, float]:
    """Chromaticity of the Planckian locus at ``cct`` kelvin.

    Kim et al. (2002) cubic fit, valid from 1667 to 25000 K; temperatures
    outside are clamped to that range. (The casts and gains below use the
    wider Robertson locus, :func:`locus_xy`.)

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


# --- the Planckian locus in mired (Robertson's table) -------------------------------------------

_TABLE = np.array(_ROBERTSON, dtype=np.float64)  # mired, u, v, slope


def _hermite(x: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Piecewise cubic Hermite interpolation with finite-difference slopes (smooth through the table's rows)."""
    d = np.gradient(ys, xs)
    i = np.clip(np.searchsorted(xs, x) - 1, 0, len(xs) - 2)
    h = xs[i + 1] - xs[i]
    t = (x - xs[i]) / h
    h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
    h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
    return h00 * ys[i] + h10 * h * d[i] + h01 * ys[i + 1] + h11 * h * d[i + 1]


def _locus_xy(mired_abs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`locus_xy` over an array of mireds at once (the module's tables are built from it)."""
    m = np.clip(np.asarray(mired_abs, dtype=np.float64), _TABLE[0, 0], _TABLE[-1, 0])
    u = _hermite(m, _TABLE[:, 0], _TABLE[:, 1])
    v = _hermite(m, _TABLE[:, 0], _TABLE[:, 2])
    d = 2 * u - 8 * v + 4
    return 3 * u / d, 2 * v / d


def locus_xy(mired_abs: float) -> tuple[float, float]:
    """CIE 1931 chromaticity of the Planckian radiator at ``mired_abs`` (0-600 mired; clamped)."""
    x, y = _locus_xy(np.asarray(float(mired_abs)))
    return float(x), float(y)


def _xy_to_srgb(x: float, y: float) -> np.ndarray:
    rgb = _XYZ_TO_SRGB @ np.array([x / y, 1.0, (1 - x - y) / y])
    return rgb / rgb[1]


# The locus as log chromaticity of linear sRGB (ln R/G, ln B/G), every half mired, over the
# temperatures whose sRGB colour has a usable blue (above about 1900 K); extended linearly beyond.
_GRID = np.arange(0.0, 600.0 + 1e-9, 0.5)
_RGB = np.array([_xy_to_srgb(x, y) for x, y in zip(*_locus_xy(_GRID), strict=True)])
_USABLE = _RGB[:, 2] > 0.02
_GRID, _LN_RG, _LN_BG = _GRID[_USABLE], np.log(_RGB[_USABLE, 0]), np.log(_RGB[_USABLE, 2])
_LN_RB = _LN_RG - _LN_BG  # rises monotonically with mired: warmer light, more red, less blue
_END_SLOPES = {name: ((a[1] - a[0]) / (_GRID[1] - _GRID[0]), (a[-1] - a[-2]) / (_GRID[-1] - _GRID[-2]))
               for name, a in (("rg", _LN_RG), ("bg", _LN_BG), ("rb", _LN_RB))}


def _along(m: float, table: np.ndarray, name: str) -> float:
    lo, hi = _END_SLOPES[name]
    if m < _GRID[0]:
        return float(table[0] + lo * (m - _GRID[0]))
    if m > _GRID[-1]:
        return float(table[-1] + hi * (m - _GRID[-1]))
    return float(np.interp(m, _GRID, table))


_D65_RG = _along(D65_MIRED, _LN_RG, "rg")
_D65_BG = _along(D65_MIRED, _LN_BG, "bg")
_D65_RB = _D65_RG - _D65_BG


def light_rgb(shift_mired: float) -> np.ndarray:
    """Linear sRGB (G = 1) that a D65-balanced camera sees a neutral as under a light ``shift_mired``
    warmer (+) or cooler (-) than D65 along the Planckian locus; ``light_rgb(0)`` is exactly (1, 1, 1).

    Past the locus's ends the colour is extended along its end slope (a cast bluer than any black
    body still has a direction)."""
    m = D65_MIRED + float(shift_mired)
    return np.array([math.exp(_along(m, _LN_RG, "rg") - _D65_RG), 1.0, math.exp(_along(m, _LN_BG, "bg") - _D65_BG)])


def cast_mired(rgb: np.ndarray) -> float:
    """How much warmer (+) or cooler (-) than D65, in mired, the light a neutral shows as ``rgb`` is.

    ``rgb`` is linear sRGB (any scale). The light is placed on the locus by its
    red/blue ratio alone, so a green or magenta tint does not move the reading,
    and a multiplicative cast adds to it: ``cast_mired(rgb * light_rgb(d))`` is
    ``cast_mired(rgb) + d`` for a grey ``rgb``. Readings past the table's ends
    follow its end slope (a light bluer than infinitely hot reads below
    -153.75).

    Raises
    ------
    ValueError
        If a red or blue value is not positive (no ratio to read).
    """
    r, _, b = (float(v) for v in np.asarray(rgb, dtype=np.float64))
    if not (r > 0 and b > 0):
        raise ValueError(f"a light needs positive red and blue to be read in mired, got {rgb!r}")
    t = math.log(r / b) + _D65_RB
    lo, hi = _END_SLOPES["rb"]
    if t < _LN_RB[0]:
        m = _GRID[0] + (t - _LN_RB[0]) / lo
    elif t > _LN_RB[-1]:
        m = _GRID[-1] + (t - _LN_RB[-1]) / hi
    else:
        m = float(np.interp(t, _LN_RB, _GRID))
    return float(m - D65_MIRED)


def green_tint(rgb: np.ndarray) -> float:
    """log2 of how much greener (+) or more magenta (-) ``rgb`` is than the locus light of the same
    red/blue ratio (:func:`cast_mired`): the part of a cast that a temperature shift does not explain.

    Raises
    ------
    ValueError
        If a channel is not positive.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    if not np.all(rgb > 0):
        raise ValueError(f"a light needs positive channels, got {rgb!r}")
    light = light_rgb(cast_mired(rgb))
    # The geometric mean of red and blue against green, compared with the light's.
    return float(0.5 * (math.log2(light[0] * light[2]) - math.log2(rgb[0] * rgb[2] / rgb[1] ** 2)))


def planckian_white_srgb(cct: float) -> np.ndarray:
    """Linear sRGB of the Planckian white at ``cct`` kelvin (Robertson's locus), scaled to green = 1."""
    return _xy_to_srgb(*locus_xy(mired(cct)))


def lab_to_linear_srgb(L: float, a: float, b: float) -> np.ndarray:
    """CIE Lab (D65 white) to linear sRGB (unclipped: out-of-gamut colours give negative channels)."""
    fy = (L + 16) / 116
    fx, fz = fy + a / 500, fy - b / 200

    def finv(t: float) -> float:
        return t**3 if t > 6 / 29 else 3 * (6 / 29) ** 2 * (t - 4 / 29)

    xyz = _D65_XYZ * np.array([finv(fx), finv(fy), finv(fz)])
    return _XYZ_TO_SRGB @ xyz


def linear_srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Linear sRGB (D65 white = 1) to CIE Lab, for colours (..., 3); negative channels are taken as 0."""
    xyz = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, None) @ _SRGB_TO_XYZ.T
    t = xyz / _D65_XYZ
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def white_balance_gains(cast_a: float, cast_b: float, target_cct: float = D65_CCT_K) -> np.ndarray:
    """Linear RGB multipliers that move the measured neutral to the target white.

    Parameters
    ----------
    cast_a, cast_b : float
        CIE Lab a* and b* of the image's neutral at L*=50: the measured
        neutral is the Lab colour ``(50, cast_a, cast_b)``.
    target_cct : float
        Where neutrals should land: D65 itself at 6504 K (a neutral policy);
        otherwise the light that far from D65 along the locus
        (:func:`light_rgb`), so a warmer target adds warmth and no tint.

    Returns
    -------
    ndarray, shape (3,)
        Gains for linear R, G, B, normalised so the neutral keeps its luminance.
    """
    measured = np.clip(lab_to_linear_srgb(50.0, cast_a, cast_b), _MIN_CHANNEL, None)
    target = light_rgb(mired(target_cct) - D65_MIRED)
    gains = target / measured
    gains /= (_LUMA_709 @ (gains * measured)) / (_LUMA_709 @ measured)
    return gains


def lab_of_light(rgb: np.ndarray) -> tuple[float, float]:
    """Lab ``(a*, b*)`` of a light's colour ``rgb`` brought to L* = 50 (how a cast is recorded)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    y = float(_LUMA_709 @ rgb)
    if not y > 0:
        raise ValueError(f"a light needs a positive luminance, got {rgb!r}")
    grey_y = ((50.0 + 16.0) / 116.0) ** 3
    _, a, b = linear_srgb_to_lab(rgb * grey_y / y)
    return float(a), float(b)
