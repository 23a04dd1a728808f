"""Measure exposure and image quality on the analysis proxy.

Everything here reads the scene-linear proxy (Rec.709 primaries, 1.0 = white)
and returns plain numbers: where the image sits against an exposure target,
how much of it is clipped, its white-balance cast, focus, noise, horizon and
verticals, and a perceptual hash for burst grouping. The core functions take
numpy arrays and nothing else; :class:`MeasureExposure` is the stage shell.

Exposure metering
-----------------
The metered value is the median luminance, a rank statistic: scaling the
linear image by ``2**k`` moves ``exposure_ev`` by exactly ``k`` (nothing is
clipped or thresholded on an absolute level, so only real clipping in the
source limits this).

Rendered sources (JPEG, TIFF from a raw converter) went through a tone curve
before we linearised them with the sRGB curve, and that curve hides an
over-exposure: a +1.5 EV push of a FiveK render has the same luminance
histogram as a high-key portrait that a person calls fine (median, key,
percentiles, clipping all overlap on the reference set). What does change is
the shadows: pushed up out of the curve's toe they lose local contrast, so
the darkest pixels of an over-exposed render are flat and washed out. For
rendered sources ``exposure_ev`` therefore adds a shadow-lift term, scale
invariant (so linearity holds), zero for any image whose shadows keep normal
contrast. Scene-linear RAW proxies have no tone curve and get no such term.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pipeline.imaging.color import linear_to_srgb, luminance
from pipeline.kernel.errors import InputError
from pipeline.kernel.records import ExposureVerdict

# Working sizes (long edge, px). Fixed sizes make sharpness and shadow contrast
# comparable between proxies of different sizes; lines need a little more
# resolution for sub-degree angles.
WORK_LONG_EDGE = 512
LINES_LONG_EDGE = 512

# Shadow-lift term of rendered sources, calibrated on the reference set
# (shared/data/exposure): log2 of the median per-pixel log2-luminance
# gradient of the darkest 5 % of a 512-px working copy. Well-exposed renders
# measure >= -2.1 (0.24 per pixel), +1.5 EV FiveK renders and the
# overexposed Flickr shot <= -2.7.
SHADOW_FRACTION = 0.05
SHADOW_CONTRAST_REF_LOG2 = -2.0
SHADOW_LIFT_GAIN = 1.5

# Lab white point D65 and the linear Rec.709 -> XYZ matrix.
_RGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], dtype=np.float64
)
_D65_XYZ = _RGB_TO_XYZ.sum(axis=1)
_D65_CCT_K = 6504.0
# Y of L* = 50: neutrals are compared at mid-grey so the cast does not depend on exposure.
_MID_GREY_Y = ((50.0 + 16.0) / 116.0) ** 3


# --- helpers ---------------------------------------------------------------------



#: 0 EV of the meter on scene-linear RAW proxies: mid-grey, 18 % reflectance.
RAW_REFERENCE = 0.18
#: 0 EV of the meter on rendered sources (JPEG, TIFF) linearised with the sRGB
#: curve: their tone curve lifts a well-exposed photo's median to 0.47-0.67
#: (calibrated on the shared reference set). This is where the meter reads 0,
#: not the client's target: the chart's ``exposure.target_ev`` is the one target.
RENDERED_REFERENCE = 0.40


def metering_reference(rendered: bool) -> float:
    """Linear luminance the meter calls 0 EV: :data:`RENDERED_REFERENCE` or :data:`RAW_REFERENCE`."""
    return RENDERED_REFERENCE if rendered else RAW_REFERENCE


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 8 or rgb.shape[1] < 8:
        raise ValueError(f"expected a linear RGB image of shape (H>=8, W>=8, 3), got {rgb.shape}")
    return rgb.astype(np.float32, copy=False)


def _check_luma(luma: np.ndarray) -> np.ndarray:
    luma = np.asarray(luma)
    if luma.ndim != 2 or luma.shape[0] < 8 or luma.shape[1] < 8:
        raise ValueError(f"expected a 2-D luminance image of at least 8x8, got shape {luma.shape}")
    return luma.astype(np.float32, copy=False)


def resize_long_edge(img: np.ndarray, long_edge: int) -> np.ndarray:
    """Resize so the long edge is ``long_edge`` (area filter down, linear up)."""
    h, w = img.shape[:2]
    scale = long_edge / max(h, w)
    if abs(scale - 1.0) < 1e-6:
        return img
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(img, size, interpolation=interp)


def _subsample(a: np.ndarray, max_pixels: int = 150_000) -> np.ndarray:
    """A regular pixel subset for rank statistics; any fixed subset keeps them scale-equivariant."""
    step = max(1, int(math.sqrt(a.shape[0] * a.shape[1] / max_pixels)))
    return a[::step, ::step]


def encode_luma(luma: np.ndarray) -> np.ndarray:
    """Linear luminance to sRGB-encoded luma in [0, 1] (perceptual, for edges and hashes)."""
    return linear_to_srgb(luma)


# --- exposure ----------------------------------------------------------------------


def luminance_percentiles(
    luma: np.ndarray, percents: Sequence[float] = (1, 5, 50, 95, 99)
) -> tuple[float, ...]:
    """Percentiles of linear luminance.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance.
    percents : sequence of float
        Percent ranks in [0, 100].

    Returns
    -------
    tuple of float
        One value per rank, in linear luminance.

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8.
    """
    luma = _check_luma(luma)
    values = np.percentile(_subsample(luma), list(percents))
    return tuple(float(v) for v in values)


def shadow_contrast_log2(luma: np.ndarray, fraction: float = SHADOW_FRACTION) -> float:
    """Local contrast of the darkest pixels, in log2 of a log2-luminance gradient.

    The median gradient magnitude (stops per pixel) of log2 luminance over the
    darkest ``fraction`` of pixels of a fixed-size working copy. Scale
    invariant: multiplying ``luma`` by any constant leaves it unchanged.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance, any size (it is resized to :data:`WORK_LONG_EDGE`).
    fraction : float
        Share of the darkest pixels to look at, in (0, 1].

    Returns
    -------
    float
        log2 of the median gradient; very negative for flat, lifted shadows.

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8 or ``fraction`` is out of range.
    """
    luma = _check_luma(luma)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    small = resize_long_edge(luma, WORK_LONG_EDGE)
    return _shadow_contrast_small(small, fraction)


def _shadow_contrast_small(small: np.ndarray, fraction: float) -> float:
    median = float(np.median(small))
    # A floor relative to the image, not absolute, keeps the measure scale invariant
    # (true black pixels of a JPEG would otherwise sit at a fixed log value).
    floor = max(median, 1e-12) * 2.0**-14
    log_y = np.log2(np.maximum(small, floor))
    gx = cv2.Sobel(log_y, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(log_y, cv2.CV_32F, 0, 1, ksize=3)
    grad = cv2.magnitude(gx, gy).ravel() * 0.125  # Sobel's 3x3 kernel sums to 8 per unit slope
    n = max(1, int(fraction * small.size))
    darkest = np.argpartition(small.ravel(), n - 1)[:n]
    return float(np.log2(np.median(grad[darkest]) + 1e-6))


def exposure_ev(
    luma: np.ndarray,
    target: float,
    rendered: bool,
    shadow_contrast: float | None = None,
    metered: float | None = None,
) -> float:
    """Signed exposure offset from ``target`` in EV; negative is under-exposed.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance of the proxy.
    target : float
        Linear luminance the median should have (> 0).
    rendered : bool
        True for tone-mapped sources (JPEG, TIFF): adds the shadow-lift term
        (see the module docstring). False for scene-linear RAW proxies.
    shadow_contrast : float, optional
        :func:`shadow_contrast_log2` of this image, when already computed.
    metered : float, optional
        The median luminance, when already computed.

    Returns
    -------
    float
        ``log2(median / target)`` plus, for rendered sources,
        ``1.5 * max(0, -2.0 - shadow_contrast)``. Scaling ``luma`` by ``2**k``
        adds exactly ``k``.

    Raises
    ------
    ValueError
        If ``target`` is not positive.
    InputError
        If at least half the image is pure black: there is no exposure to meter.
    """
    if not target > 0:
        raise ValueError(f"exposure target must be a positive linear luminance, got {target}")
    luma = _check_luma(luma)
    median = float(np.median(_subsample(luma))) if metered is None else metered
    if not median > 0:
        raise InputError("at least half of the image is pure black: there is no exposure to meter")
    ev = math.log2(median / target)
    if rendered:
        if shadow_contrast is None:
            shadow_contrast = shadow_contrast_log2(luma)
        ev += SHADOW_LIFT_GAIN * max(0.0, SHADOW_CONTRAST_REF_LOG2 - shadow_contrast)
    return ev


def exposure_verdict(ev: float, tolerance_ev: float) -> ExposureVerdict:
    """``under``, ``ok`` or ``over`` for an offset and a symmetric tolerance.

    Raises
    ------
    ValueError
        If ``tolerance_ev`` is negative.
    """
    if tolerance_ev < 0:
        raise ValueError(f"exposure tolerance must be >= 0 EV, got {tolerance_ev}")
    if ev < -tolerance_ev:
        return ExposureVerdict.UNDER
    if ev > tolerance_ev:
        return ExposureVerdict.OVER
    return ExposureVerdict.OK


def clipped_pct(rgb: np.ndarray, highlight: float = 0.995, shadow: float = 1.0 / 4096) -> tuple[np.ndarray, np.ndarray, float]:
    """Share of pixels clipped, per channel, at white and at black.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Linear RGB, 1.0 = white.
    highlight : float
        A channel at or above this is clipped (0.995 counts only 8-bit 255).
    shadow : float
        A channel at or below this is crushed (1/4096 counts only 8-bit 0).

    Returns
    -------
    highlights_pct : ndarray, (3,)
        Percent of pixels clipped at white in R, G, B.
    shadows_pct : ndarray, (3,)
        Percent of pixels at black in R, G, B.
    any_highlight_pct : float
        Percent of pixels with at least one channel clipped at white.

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image or the levels are not ordered.
    """
    rgb = _check_rgb(rgb)
    if not shadow < highlight:
        raise ValueError(f"shadow level {shadow} must be below highlight level {highlight}")
    pct = 100.0 / (rgb.shape[0] * rgb.shape[1])
    # OpenCV's per-channel threshold and sum are ~10x faster than numpy's
    # reductions over a length-3 axis. THRESH_BINARY keeps src > t, so the
    # threshold sits one float32 step below the level to count src >= level.
    below = float(np.nextafter(np.float32(highlight), np.float32(-np.inf)))
    hi = cv2.threshold(rgb, below, 1.0, cv2.THRESH_BINARY)[1]
    lo = cv2.threshold(rgb, float(np.float32(shadow)), 1.0, cv2.THRESH_BINARY_INV)[1]
    hi_pct = np.array(cv2.sumElems(hi)[:3]) * pct
    lo_pct = np.array(cv2.sumElems(lo)[:3]) * pct
    any_hi = float(cv2.countNonZero(cv2.transform(hi, np.ones((1, 3), np.float32)))) * pct
    return hi_pct, lo_pct, any_hi


# --- white balance -----------------------------------------------------------------


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
        Refinement steps.

    Returns
    -------
    WhiteBalanceCast or None
        ``a``, ``b``: Lab a*/b* of the neutral subset at L* = 50 (positive
        a* magenta, negative green; positive b* yellow/warm, negative blue).
        ``temperature_shift_k``: CCT of that colour minus 6504 K (negative: a
        warm, orange cast; positive: a cool, blue one), None outside
        McCamy's range. None when fewer than 0.5 % of pixels qualify.

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image.
    """
    rgb = _check_rgb(rgb)
    sub = _subsample(rgb, 40_000)
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


# --- focus and noise -----------------------------------------------------------------


def _laplacian_variance(encoded: np.ndarray) -> float:
    lap = cv2.Laplacian(encoded, cv2.CV_32F, ksize=1)
    return float(lap.var()) * 1e4  # sRGB-encoded luma in [0, 1]: keep the numbers readable


def sharpness(luma: np.ndarray) -> float:
    """Focus measure: variance of the Laplacian on a fixed-size working copy.

    The luminance is resized to a long edge of :data:`WORK_LONG_EDGE` and
    sRGB-encoded first, so the value does not depend on the proxy's size (as
    long as it is at least that large) and shadows count as the eye sees them.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance.

    Returns
    -------
    float
        Variance of the 4-neighbour Laplacian of encoded luma, times 1e4.
        Higher is sharper; compare images of similar content.

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8.
    """
    luma = _check_luma(luma)
    return _laplacian_variance(encode_luma(resize_long_edge(luma, WORK_LONG_EDGE)))


def region_sharpness(luma: np.ndarray, box: tuple[float, float, float, float], long_edge: int = 128) -> float:
    """The focus measure of :func:`sharpness` restricted to a box (a face).

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance in the coordinates of ``box``.
    box : (x, y, width, height)
        Region in pixels; clipped to the image.
    long_edge : int
        The crop is resampled to this long edge so faces of different sizes
        compare; crops smaller than this are enlarged and score lower, which
        is fair: a tiny face cannot show focus.

    Returns
    -------
    float
        Variance of the Laplacian of the encoded crop, times 1e4.

    Raises
    ------
    ValueError
        If ``luma`` is not 2-D, or the box has no area inside the image.
    """
    luma = _check_luma(luma)
    x, y, w, h = (float(v) for v in box)
    H, W = luma.shape
    x0, y0 = max(0, int(math.floor(x))), max(0, int(math.floor(y)))
    x1, y1 = min(W, int(math.ceil(x + w))), min(H, int(math.ceil(y + h)))
    if x1 - x0 < 3 or y1 - y0 < 3:
        raise ValueError(f"box {box} has less than 3x3 pixels inside the {W}x{H} image")
    crop = np.ascontiguousarray(luma[y0:y1, x0:x1])
    return _laplacian_variance(encode_luma(resize_long_edge(crop, long_edge)))


_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def noise_sigma(img: np.ndarray, clip: tuple[float, float] | None = None) -> float:
    """Standard deviation of additive noise, robust to edges (Immerkaer's mask, MAD).

    The mask cancels any locally planar signal and passes white noise with
    gain 6; the median absolute response, unlike Immerkaer's mean, ignores the
    minority of pixels on edges and texture.

    Parameters
    ----------
    img : ndarray, (H, W)
        One channel, in the units the noise should be reported in.
    clip : (low, high), optional
        Ignore pixels at or below ``low`` and at or above ``high`` (clipped).

    Returns
    -------
    float
        Estimated noise sigma, same units as ``img``.

    Raises
    ------
    ValueError
        If ``img`` is not a 2-D image of at least 8x8.
    """
    img = _check_luma(img)
    resp = cv2.filter2D(img, cv2.CV_32F, _IMMERKAER, borderType=cv2.BORDER_REFLECT)
    resp = np.abs(_subsample(resp[1:-1, 1:-1], 400_000))
    if clip is not None:
        # Clipped areas are flat whatever the noise; they would pull the median to zero.
        values = _subsample(img[1:-1, 1:-1], 400_000)
        resp = resp[(values > clip[0]) & (values < clip[1])]
        if resp.size < 64:
            return 0.0
    return float(np.median(resp)) / (0.6745 * 6.0)


# --- horizon and verticals ---------------------------------------------------------------


@dataclass(frozen=True)
class LineTilts:
    """Tilts from detected line segments; None when too few lines."""

    horizon_tilt_deg: float | None
    verticals_tilt_deg: float | None
    lines_found: int


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def line_tilts(
    luma: np.ndarray,
    max_deviation_deg: float = 10.0,
    min_lines: int = 3,
    min_length_frac: float = 0.06,
) -> LineTilts:
    """Horizon and verticals tilt from Canny edges and a probabilistic Hough transform.

    Segments within ``max_deviation_deg`` of horizontal (vertical) select the
    edge pixels that vote; the tilt is the median of those pixels' edge
    directions (from their gradients), weighted by gradient strength, so long,
    crisp lines count most.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance (resized to :data:`LINES_LONG_EDGE`).
    max_deviation_deg : float
        Segments further from horizontal/vertical than this are ignored.
    min_lines : int
        Fewer segments in a family than this gives None for that tilt.
    min_length_frac : float
        Shortest segment, as a fraction of the working copy's long edge.

    Returns
    -------
    LineTilts
        ``horizon_tilt_deg``: positive when horizontals rise to the right
        (the picture needs a clockwise turn). ``verticals_tilt_deg``:
        positive when verticals lean right at the top (the picture needs a
        counter-clockwise turn, or it has a keystone). ``lines_found``: all
        segments detected near either axis.

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8, or ``max_deviation_deg``
        is not in (0, 45).
    """
    luma = _check_luma(luma)
    if not 0 < max_deviation_deg < 45:
        raise ValueError(f"max_deviation_deg must be in (0, 45), got {max_deviation_deg}")
    return _line_tilts_encoded(encode_luma(resize_long_edge(luma, LINES_LONG_EDGE)), max_deviation_deg, min_lines, min_length_frac)


def _line_tilts_encoded(
    encoded: np.ndarray, max_deviation_deg: float = 10.0, min_lines: int = 3, min_length_frac: float = 0.06
) -> LineTilts:
    smooth = cv2.GaussianBlur(encoded.astype(np.float32, copy=False), (3, 3), 0)
    enc8 = np.round(smooth * 255.0).astype(np.uint8)
    edges = cv2.Canny(enc8, 40, 120, L2gradient=True)
    # Scharr, not Sobel: on rotated test lines Sobel's gradient direction reads
    # about 10 % of the tilt low, Scharr's about 3 %.
    gx = cv2.Scharr(smooth, cv2.CV_32F, 1, 0)
    gy = cv2.Scharr(smooth, cv2.CV_32F, 0, 1)
    ax, ay = np.abs(gx), np.abs(gy)
    # Only edges running near an axis can vote; dropping the rest first halves
    # the Hough transform's work, its main cost.
    ratio = 1.0 / math.tan(math.radians(max_deviation_deg + 5.0))
    edges[(ax < ay * ratio) & (ay < ax * ratio)] = 0
    min_len = max(10, int(min_length_frac * max(enc8.shape)))
    segs = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=30, minLineLength=min_len, maxLineGap=3)
    if segs is None:
        return LineTilts(None, None, 0)
    seg = segs.reshape(-1, 4)
    dx, dy = (seg[:, 2] - seg[:, 0]).astype(np.float64), (seg[:, 3] - seg[:, 1]).astype(np.float64)
    # Image y grows downwards; flip it so angles turn counter-clockwise as seen.
    angle = (np.degrees(np.arctan2(-dy, dx)) + 90.0) % 180.0 - 90.0  # [-90, 90): no direction
    # Hough segments follow its 1-degree bins, so they only say which edge
    # pixels lie on straight lines; the angle itself comes from those pixels'
    # gradients, which resolve fractions of a degree.
    horizon = verticals = None
    horiz = np.abs(angle) <= max_deviation_deg
    vert = np.abs(np.abs(angle) - 90.0) <= max_deviation_deg
    if horiz.sum() >= min_lines:
        on = _on_segments(edges, seg[horiz]) & (ay > ax)
        horizon = _weighted_median(np.degrees(np.arctan(gx[on] / gy[on])), np.hypot(gx[on], gy[on]))
    if vert.sum() >= min_lines:
        on = _on_segments(edges, seg[vert]) & (ax > ay)
        verticals = _weighted_median(np.degrees(np.arctan(gy[on] / gx[on])), np.hypot(gx[on], gy[on]))
    return LineTilts(horizon, verticals, int(horiz.sum() + vert.sum()))


def _on_segments(edges: np.ndarray, segments: np.ndarray) -> np.ndarray:
    mask = np.zeros_like(edges)
    for x0, y0, x1, y1 in segments.tolist():
        cv2.line(mask, (x0, y0), (x1, y1), 255, thickness=3)
    return (mask > 0) & (edges > 0)


# --- perceptual hash ---------------------------------------------------------------------


def phash(luma: np.ndarray) -> str:
    """64-bit DCT perceptual hash, as 16 hex digits.

    The sRGB-encoded luma is reduced to 32x32, the 8x8 lowest DCT frequencies
    kept, and each bit set where a coefficient exceeds their median (the
    classic pHash of Zauner 2010 / the ``imagehash`` package).

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance.

    Returns
    -------
    str
        16 lowercase hex digits, most significant bit = lowest frequency.

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8.
    """
    luma = _check_luma(luma)
    return _phash_from_encoded_small(encode_luma(resize_long_edge(luma, WORK_LONG_EDGE)))


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex pHashes.

    Raises
    ------
    ValueError
        If either is not a 16-digit hex string.
    """
    return int(bin(_hash_int(a) ^ _hash_int(b)).count("1"))


def _hash_int(h: str) -> int:
    if not isinstance(h, str) or len(h) != 16:
        raise ValueError(f"a pHash is 16 hex digits, got {h!r}")
    try:
        return int(h, 16)
    except ValueError:
        raise ValueError(f"a pHash is 16 hex digits, got {h!r}") from None


def _phash_of(item: Any) -> str | None:
    if item is None or isinstance(item, str):
        return item
    if isinstance(item, dict):
        return item.get("phash")
    return getattr(item, "phash", None)


def group_bursts(records_or_hashes: Iterable[Any], max_distance: int = 10, min_size: int = 2) -> list[list[int]]:
    """Group near-duplicate images (bursts, bracketing) by pHash distance.

    Two images are linked when their hashes differ in at most
    ``max_distance`` bits; groups are the connected components. Images
    without a hash (failed rows) are never grouped.

    Parameters
    ----------
    records_or_hashes : iterable
        Hex hashes, or records / dicts with a ``phash`` field (None allowed).
    max_distance : int
        Largest Hamming distance, in bits of 64, that still links two images.
        10 keeps a burst of one scene together and separates different
        scenes in practice.
    min_size : int
        Smallest group to report (2 drops singletons).

    Returns
    -------
    list of list of int
        Indices into the input, each group sorted, groups ordered by their
        first index.

    Raises
    ------
    ValueError
        If a hash is not 16 hex digits or ``max_distance`` is outside 0..64.
    """
    if not 0 <= max_distance <= 64:
        raise ValueError(f"max_distance must be 0..64 bits, got {max_distance}")
    hashes = [_phash_of(x) for x in records_or_hashes]
    idx = np.array([i for i, h in enumerate(hashes) if h is not None], dtype=np.int64)
    if len(idx) == 0:
        return []
    values = np.array([_hash_int(hashes[i]) for i in idx], dtype=np.uint64)
    parent = np.arange(len(values))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    chunk = 2048  # bounds the distance matrix to chunk x n
    for start in range(0, len(values), chunk):
        block = values[start : start + chunk, None] ^ values[None, :]
        close = np.bitwise_count(block) <= max_distance
        for i, j in zip(*np.nonzero(close)):
            i = int(i) + start
            if i < j:
                ri, rj = find(i), find(int(j))
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for k in range(len(values)):
        groups.setdefault(find(k), []).append(int(idx[k]))
    out = [sorted(g) for g in groups.values() if len(g) >= min_size]
    return sorted(out, key=lambda g: g[0])


# --- everything at once ---------------------------------------------------------------------


@dataclass(frozen=True)
class ExposureMeasurements:
    """All the per-image numbers of this stage (names match the record fields)."""

    exposure_ev: float
    exposure_verdict: ExposureVerdict
    shadow_contrast: float
    luminance_p01: float
    luminance_p05: float
    luminance_p50: float
    luminance_p95: float
    luminance_p99: float
    clipped_highlights_pct: float
    clipped_highlights_pct_r: float
    clipped_highlights_pct_g: float
    clipped_highlights_pct_b: float
    clipped_shadows_pct_r: float
    clipped_shadows_pct_g: float
    clipped_shadows_pct_b: float
    wb_cast_a: float | None
    wb_cast_b: float | None
    wb_temperature_shift_k: float | None
    sharpness: float
    noise_sigma: float
    horizon_tilt_deg: float | None
    verticals_tilt_deg: float | None
    lines_found: int
    phash: str
    saliency_x: float
    saliency_y: float


def saliency_centre(encoded: np.ndarray, size: int = 64) -> tuple[float, float]:
    """Centre of the salient region, as fractions of width and height.

    Spectral residual saliency (Hou and Zhang, CVPR 2007): the log amplitude
    spectrum minus its local average keeps what is unexpected in the image;
    back in the image domain that is where the eye goes. The centre is the
    weighted mean of the most salient 5 % of a ``size`` x ``size`` map.

    Parameters
    ----------
    encoded : ndarray, float32, (H, W)
        Gamma-encoded luminance in [0, 1].
    """
    small = cv2.resize(encoded.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    spectrum = np.fft.fft2(small)
    log_amp = np.log(np.abs(spectrum) + 1e-8).astype(np.float32)
    residual = log_amp - cv2.blur(log_amp, (3, 3))
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    sal = cv2.GaussianBlur(sal.astype(np.float32), (0, 0), 2.5)
    keep = sal >= np.quantile(sal, 0.95)
    ys, xs = np.nonzero(keep)
    w = sal[keep]
    return float((xs * w).sum() / w.sum() + 0.5) / size, float((ys * w).sum() / w.sum() + 0.5) / size


def measure_all(
    rgb: np.ndarray,
    target: float,
    tolerance_ev: float,
    rendered: bool,
    highlight_level: float = 0.995,
    shadow_level: float = 1.0 / 4096,
) -> ExposureMeasurements:
    """Every measurement of this stage on one linear proxy, sharing working copies.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Scene-linear Rec.709 RGB, 1.0 = white.
    target : float
        Linear luminance the median should have (see :func:`exposure_ev`).
    tolerance_ev : float
        Half-width of the ``ok`` band in EV.
    rendered : bool
        True for tone-mapped sources (JPEG), False for RAW.
    highlight_level, shadow_level : float
        Clipping levels for :func:`clipped_pct`.

    Returns
    -------
    ExposureMeasurements

    Raises
    ------
    ValueError
        On a malformed array or a non-positive target.
    InputError
        When half the image is pure black (nothing to meter).
    """
    rgb = _check_rgb(rgb)
    luma = luminance(rgb)
    p01, p05, p50, p95, p99 = luminance_percentiles(luma)
    small = resize_long_edge(luma, WORK_LONG_EDGE)
    sc = _shadow_contrast_small(small, SHADOW_FRACTION)
    ev = exposure_ev(luma, target, rendered, shadow_contrast=sc, metered=p50)
    hi, lo, any_hi = clipped_pct(rgb, highlight_level, shadow_level)
    cast = white_balance_cast(rgb)
    encoded_small = encode_luma(small)
    tilts = _line_tilts_encoded(encoded_small)
    # Noise lives at the pixel scale, so it is read on the full proxy, in 8-bit
    # code values of a gamma-2.2 encoding (what people read noise on; sRGB's
    # curve is within a few percent above its linear toe and costs 4x more).
    encoded = cv2.pow(luma, 1.0 / 2.2)
    noise = noise_sigma(encoded, clip=(1.0 / 255.0, 254.0 / 255.0)) * 255.0
    sx, sy = saliency_centre(encoded_small)
    return ExposureMeasurements(
        exposure_ev=ev,
        exposure_verdict=exposure_verdict(ev, tolerance_ev),
        shadow_contrast=sc,
        luminance_p01=p01,
        luminance_p05=p05,
        luminance_p50=p50,
        luminance_p95=p95,
        luminance_p99=p99,
        clipped_highlights_pct=any_hi,
        clipped_highlights_pct_r=float(hi[0]),
        clipped_highlights_pct_g=float(hi[1]),
        clipped_highlights_pct_b=float(hi[2]),
        clipped_shadows_pct_r=float(lo[0]),
        clipped_shadows_pct_g=float(lo[1]),
        clipped_shadows_pct_b=float(lo[2]),
        wb_cast_a=None if cast is None else cast.a,
        wb_cast_b=None if cast is None else cast.b,
        wb_temperature_shift_k=None if cast is None else cast.temperature_shift_k,
        sharpness=_laplacian_variance(encoded_small),
        noise_sigma=noise,
        horizon_tilt_deg=tilts.horizon_tilt_deg,
        verticals_tilt_deg=tilts.verticals_tilt_deg,
        lines_found=tilts.lines_found,
        phash=_phash_from_encoded_small(encoded_small),
        saliency_x=sx,
        saliency_y=sy,
    )


def _phash_from_encoded_small(encoded_small: np.ndarray) -> str:
    tiny = cv2.resize(encoded_small, (32, 32), interpolation=cv2.INTER_AREA)
    dct = cv2.dct(tiny.astype(np.float32))[:8, :8]
    bits = (dct > np.median(dct)).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


# --- the stage -------------------------------------------------------------------------------
