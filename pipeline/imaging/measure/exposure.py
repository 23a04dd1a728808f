"""Exposure of the whole image: the meter's reading, luminance percentiles, clipping, the verdict.

The reading comes from the meter (:mod:`pipeline.imaging.measure.metering`);
:func:`exposure_measure` puts it together with the rest into the record's
exposure group. :func:`exposure_verdict` is the plan's (the tolerance is the
chart's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from pipeline.imaging.color import brightest_channel, darkest_channel
from pipeline.imaging.measure.common import check_luma, check_rgb, subsample
from pipeline.imaging.measure.metering import (
    KEY_LOG2,
    MIN_LIT_SHARE,
    RENDERED_WHITE_SPREAD_EV,
    SHADOW_FRACTION,
    WHITE_LOG2,
    WHITE_PERCENTILE,
    WHITE_SPREAD_EV,
    channel_white,
    key_and_white_log2,
    meter_log2,
    metering_reference,
    scene_key_and_white_log2,
    scene_light,
    shadow_contrast_of_working_copy,
    subject_key,
)
from pipeline.kernel.errors import InputError
from pipeline.kernel.records import ExposureMeasure, ExposureVerdict


def luminance_percentiles(luma: np.ndarray, percents: Sequence[float] = (1, 5, 50, 95, 99)) -> tuple[float, ...]:
    """Percentiles of linear luminance (on a regular pixel subset of about 150 000 pixels or more).

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
    luma = check_luma(luma)
    values = np.percentile(subsample(luma), list(percents))
    return tuple(float(v) for v in values)


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


#: A channel at or above this linear value is clipped at white: 8-bit 255 only.
HIGHLIGHT_LEVEL = 0.995

#: A white backdrop (a seamless, a light tent or a lightbox blown to white on purpose: a packshot, a high-key
#: portrait) is pixels whose brightest channel is at least this (linear: 250 of 255 in sRGB, as a JPEG's blown
#: white keeps a few levels of compression noise under 255) ...
BACKDROP_LEVEL = 0.955
#: ... and whose other channels are at least this share of it: a white lit by a light within about 70 mired of
#: daylight (a flash's or a window's white before its white balance; 50 mired off D65 leaves 0.61 of the
#: brightest channel, 100 mired 0.36-0.42). Neutral only (every channel at the level), a sweep under a lamp a
#: little warm was read whole, 0.7-1.2 EV over, and darkened grey.
BACKDROP_TINT = 0.5
#: ... and of one colour: one surface under one light. Its pixels' log red/green and blue/green ratios spread
#: (standard deviation) at most this. A backdrop's spread 0.001-0.012 (rembg's cut-outs set on white, neutral
#: or under a light 40 mired off daylight, and a real packshot among 150 camera JPEGs); the near-white of
#: scenes developed over, which a tint lets through, 0.025-0.079: skin, walls and sky blown to different
#: whites.
BACKDROP_CHROMA_SPREAD = 0.02
#: ... connected to the frame's edge, and holding at least this share of the edge of the frame's lower half
#: (the left and right edges' lower halves and the bottom edge): it stands beside and under the subject. A sky
#: blown white reaches the edges above the land, not beside it. Not fitted: a product on a sweep holds nearly
#: all of it, a person on a seamless cut off by the bottom edge about half.
BACKDROP_LOWER_EDGE = 0.4
#: ... covering at least this share of the frame, while the subject keeps at least :data:`BACKDROP_MIN_SUBJECT`:
#: a tight crop's few white pixels do not move the meter, and a frame all but white has no subject to read.
BACKDROP_MIN_SHARE = 0.1
BACKDROP_MIN_SUBJECT = 0.02
#: ... and the subject, what is not backdrop, holds its detail: under this percent of its pixels have a channel
#: clipped at white (:data:`HIGHLIGHT_LEVEL`). A subject exposed for keeps its clipping to specular glints and
#: white print; a scene developed 1 EV or more over blows whatever is bright, and its blown sky, wall or floor
#: reaches the frame's edges like a backdrop: the accuracy benchmark's rendered twins 1-2 EV over clip a median
#: 14-36 % of their pixels (:func:`~pipeline.planning.rules.exposure.bright_by_intent`), and those whose white
#: passes the tests above clip 5.1-84 % beside it. Such a frame is metered whole, as before.
BACKDROP_SUBJECT_CLIPPED_PCT = 5.0
#: A backdrop holding at least this share of the frame's top edge and of each of its sides surrounds its
#: subject: a product on a sweep, a chart on a white board, a person cut off by the bottom edge at most. There
#: the subject's clipping says nothing of a scene developed over (a sweep blown on purpose and a glossy product
#: whose highlights blow with it: rembg's cut-outs on white 0.5-1 EV over clip 5.7-31 % of the subject), and its
#: colour is read where no channel clips (:func:`backdrop_spread`). A scene developed over meets the frame's
#: sides: the accuracy benchmark's twins whose white passes the other tests held 0-47 % of the weaker side, the
#: cut-outs on white 99-100 %. Not fitted: "nearly all", allowing a few stray pixels of the subject.
BACKDROP_SURROUNDS = 0.9
#: The backdrop is looked for on a regular subset of the proxy's pixels about this long (connected regions).
BACKDROP_LONG_EDGE = 256
#: A sweep lit by one light falls off towards the frame's corners, and a sweep 0.3 EV darker there was not found
#: (none of its white was 250 of 255 at the frame's edge): the frame was metered whole, read 1-2.4 EV over and
#: darkened grey. Its white is then read against its own level at each place, a smooth field
#: (:func:`sweep_falloff`) fitted to the pixels of a white's tint connected to the frame's edge that are at most
#: this many EV under white (deeper, a sweep's corners are grey, not white: not a lit sweep) ...
BACKDROP_FALLOFF_EV = 1.5
#: ... that change by at most this many EV from one pixel of the 256-px grid to the next (a sweep 1.5 EV darker in
#: its corners changes by about 0.03 there, the edge of what stands on it by far more) ...
BACKDROP_SMOOTH_EV = 0.05
#: ... by a quadratic in x and y (:func:`falloff_level`, log2 of the level), refitted without the pixels more than
#: this many EV off it (what stands on the sweep and is smooth too: its shadow, a flat side) ...
BACKDROP_FIT_EV = 0.15
#: ... and a field that spans less than this many EV over the frame is no falloff: the sweep is read as one level.
BACKDROP_FLAT_EV = 0.1


class Backdrop(NamedTuple):
    """A white backdrop found in a frame (:func:`white_backdrop`)."""

    #: Its pixels, ``(H, W)`` bool, with the subject's rim.
    mask: np.ndarray
    #: Its light falling off across the frame (:func:`falloff_level`), or None where it is evenly lit.
    falloff: tuple[float, ...] | None


def falloff_level(falloff: Sequence[float], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A sweep's level against its brightest, 0-1, at ``x``, ``y`` (fractions of the width and height, clamped to
    the frame): 2 to the power of the quadratic ``falloff``, the coefficients of 1, x, y, x², xy and y², at most 1."""
    c = [float(v) for v in falloff]
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    y = np.clip(np.asarray(y, np.float32), 0.0, 1.0)
    f = c[0] + x * (c[1] + c[3] * x + c[4] * y) + y * (c[2] + c[5] * y)
    return np.exp2(np.minimum(f, 0.0)).astype(np.float32)


def sweep_falloff(grid: np.ndarray) -> tuple[float, ...] | None:
    """How a white sweep's light falls off across the frame, read on ``grid`` (linear RGB, the 256-px grid): the
    quadratic (:func:`falloff_level`) of log2 of its level against its brightest, or None when no sweep falls off.

    The sweep is the pixels of a white's tint (:data:`BACKDROP_TINT`) within :data:`BACKDROP_FALLOFF_EV` of white,
    smooth (:data:`BACKDROP_SMOOTH_EV`) and connected to the frame's edge; the fit reads those that no channel
    clips, refitted twice without those :data:`BACKDROP_FIT_EV` off it. None when fewer than
    :data:`BACKDROP_MIN_SHARE` of the grid are left to fit, when the field nowhere reaches :data:`BACKDROP_LEVEL`
    (a grey backdrop), or when it spans under :data:`BACKDROP_FLAT_EV` (an even sweep) or over
    :data:`BACKDROP_FALLOFF_EV` (a scene's light, not a sweep's) within the frame.
    """
    brightest = grid.max(axis=2)
    candidate = ((brightest >= np.float32(BACKDROP_LEVEL * 2.0**-BACKDROP_FALLOFF_EV))
                 & (grid.min(axis=2) >= np.float32(BACKDROP_TINT) * brightest))
    if candidate.mean() < BACKDROP_MIN_SHARE:
        return None  # too little of a white's tint and level to fit (most photographs: a few milliseconds saved)
    log_level = np.log2(np.maximum(brightest, np.float32(1e-4)))
    blurred = cv2.GaussianBlur(log_level, (0, 0), 1.0)
    steep = np.hypot(cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3))
    candidate &= steep <= np.float32(8.0 * BACKDROP_SMOOTH_EV)  # Sobel's 3x3 kernel weighs a one-pixel step 8 times
    _, labels = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
    on_edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    fit = np.isin(labels, on_edge[on_edge > 0]) & (brightest < np.float32(HIGHLIGHT_LEVEL))
    gh, gw = brightest.shape
    y, x = np.mgrid[0:gh, 0:gw].astype(np.float32)
    x, y = (x + 0.5) / gw, (y + 0.5) / gh
    terms = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)
    for _ in range(3):
        if fit.mean() < BACKDROP_MIN_SHARE:
            return None
        coef = np.linalg.lstsq(terms[fit].astype(np.float64), log_level[fit].astype(np.float64), rcond=None)[0]
        field = terms @ coef.astype(np.float32)
        fit &= np.abs(log_level - field) <= np.float32(BACKDROP_FIT_EV)
    if fit.mean() < BACKDROP_MIN_SHARE:
        return None
    top = min(float(field.max()), 0.0)
    span = top - float(field.min())
    if top < np.log2(BACKDROP_LEVEL) or not BACKDROP_FLAT_EV <= span <= BACKDROP_FALLOFF_EV:
        return None
    coef[0] -= top  # against the sweep's brightest within the frame
    return tuple(float(v) for v in coef)


def white_backdrop(rgb: np.ndarray) -> Backdrop | None:
    """A white backdrop, its pixels and its falloff (:class:`Backdrop`), or None when the frame has none.

    A product photographed on a white sweep, or a portrait on a white seamless, is lit so that the backdrop
    is pure white (e-commerce standards ask for 255, 255, 255): that white is the picture's intent, and what
    was exposed for is the subject. Read over the whole frame, the meter takes the backdrop for highlights
    and reads the picture 2 EV or more over (rembg's example cut-outs set on white: every one was darkened
    2 EV, the backdrop turned grey, the subject too). The backdrop is the near-white pixels
    (:data:`BACKDROP_LEVEL`, a light's tint allowed: :data:`BACKDROP_TINT`) connected to the frame's edge,
    when they hold :data:`BACKDROP_LOWER_EDGE` of the edge of the frame's lower half, are of one colour
    (:data:`BACKDROP_CHROMA_SPREAD`), their share of the frame is within bounds (:data:`BACKDROP_MIN_SHARE`,
    :data:`BACKDROP_MIN_SUBJECT`) and the subject holds its detail (:data:`BACKDROP_SUBJECT_CLIPPED_PCT`) or is
    surrounded by the backdrop (:data:`BACKDROP_SURROUNDS`). Where the sweep's light falls off towards the frame's
    corners (:func:`sweep_falloff`), "near-white" is against its own level at each place.
    The mask returned takes in the subject's rim, where it blends into the white.
    """
    rgb = check_rgb(rgb)
    h, w = rgb.shape[:2]
    step = max(1, int(round(max(h, w) / BACKDROP_LONG_EDGE)))
    grid = rgb[::step, ::step]
    falloff = sweep_falloff(grid)
    # Read against the falloff first, then as one level: a frame whose white was found as one level still is
    # where its field describes something else (a product's pale side beside a sweep blown nearly everywhere, a
    # graphic's gradient filling the frame: three of ImageTestSuite's pictures were lost to their fields).
    found = None if falloff is None else _backdrop_of(grid, falloff)
    if found is None:
        found = _backdrop_of(grid, None)
    if found is None:
        return None
    rim, falloff = found
    return Backdrop(cv2.resize(rim, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool), falloff)


def _backdrop_of(grid: np.ndarray, falloff: tuple[float, ...] | None) -> tuple[np.ndarray, tuple[float, ...] | None] | None:
    """:func:`white_backdrop` on the grid, its white near :data:`BACKDROP_LEVEL` of ``falloff``'s level at each place
    or, without one, at :data:`BACKDROP_LEVEL` or over: the mask with the subject's rim, and ``falloff``."""
    brightest = grid.max(axis=2)
    white = grid.min(axis=2) >= np.float32(BACKDROP_TINT) * brightest
    if falloff is None:
        white &= brightest >= np.float32(BACKDROP_LEVEL)
    else:
        # Near the sweep's own level, from under as before and from over: where the sweep falls off, a subject's
        # highlight brighter than the sweep beside it is no part of it (a car's glare at a dim corner).
        gh, gw = brightest.shape
        level = falloff_level(falloff, (np.arange(gw, dtype=np.float32) + 0.5) / gw,
                              ((np.arange(gh, dtype=np.float32) + 0.5) / gh)[:, None])
        white &= (brightest >= np.float32(BACKDROP_LEVEL) * level) & (brightest <= level / np.float32(BACKDROP_LEVEL))
    share = float(white.mean())
    if not BACKDROP_MIN_SHARE <= share <= 1.0 - BACKDROP_MIN_SUBJECT:
        return None
    _, labels = cv2.connectedComponents(white.astype(np.uint8), connectivity=8)
    on_edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    backdrop = np.isin(labels, on_edge[on_edge > 0])
    lower = backdrop[backdrop.shape[0] // 2:]
    lower_edge = np.concatenate([lower[:, 0], lower[:, -1], lower[-1]])
    if not (lower_edge.mean() >= BACKDROP_LOWER_EDGE and backdrop.mean() >= BACKDROP_MIN_SHARE):
        return None
    surrounds = min(backdrop[0].mean(), backdrop[:, 0].mean(), backdrop[:, -1].mean()) >= BACKDROP_SURROUNDS
    if backdrop_spread(grid[backdrop], unclipped=surrounds) > BACKDROP_CHROMA_SPREAD:
        return None  # whites of many colours: a scene blown white, not a backdrop
    # The subject's rim, where it blends into the white (the lens's blur, a cut-out's soft edge), is the
    # backdrop's too: left in, it is the subject's white point, which the meter never reads darker than.
    rim = cv2.dilate(backdrop.astype(np.uint8), np.ones((7, 7), np.uint8))
    subject = grid[rim == 0]
    if not len(subject):
        return None  # the rim takes in what little is not white (an icon a few pixels wide): no subject to meter
    if not surrounds and not (np.any(subject >= np.float32(HIGHLIGHT_LEVEL), axis=1).mean() * 100.0
                              < BACKDROP_SUBJECT_CLIPPED_PCT):
        return None  # the subject is blown too, and meets the frame's sides: a scene developed over
    return rim, falloff


def backdrop_spread(pixels: np.ndarray, *, unclipped: bool = False) -> float:
    """How far a backdrop's pixels, ``(N, 3)``, stray from one colour: the larger standard deviation of their log
    red/green and blue/green ratios (:data:`BACKDROP_CHROMA_SPREAD`).

    With ``unclipped`` (a backdrop that surrounds its subject, :data:`BACKDROP_SURROUNDS`), also on its pixels
    with no channel clipped (:data:`HIGHLIGHT_LEVEL`), and the smaller of the two: a sweep blown in its brightest
    channel alone under a tinted light mixes that channel stuck at white with the falloff's unclipped white, and
    read whole strays like whites of many colours (rembg's cut-outs on white 1 EV over under a light 45 mired off
    daylight: 0.025-0.083; their unclipped pixels 0.000-0.024), while a white blown in every channel but for a
    JPEG's ringing around a logo is one colour read whole. Where under a twentieth of the pixels are unclipped,
    the backdrop is blown white in every channel: one colour.
    """
    def spread(px: np.ndarray) -> float:
        ratios = np.log(np.maximum(px, np.float32(1e-4)))
        return max(float(np.std(ratios[:, 0] - ratios[:, 1])), float(np.std(ratios[:, 2] - ratios[:, 1])))

    whole = spread(pixels)
    if not unclipped:
        return whole
    kept = pixels[pixels.max(axis=1) < np.float32(HIGHLIGHT_LEVEL)]
    return 0.0 if len(kept) < 0.05 * len(pixels) else min(whole, spread(kept))


#: A backdrop's colour is read where at least this share of the frame is its white (its pixels at
#: :data:`BACKDROP_LEVEL`, the subject's rim left out).
BACKDROP_MIN_WHITE = 0.05


def backdrop_colour(rgb: np.ndarray, backdrop: Backdrop) -> np.ndarray | None:
    """The colour of a white backdrop (:func:`white_backdrop`) as decoded where it is brightest, float64 RGB: the
    median, channel by channel, of its white pixels (about 40 000 of them; the subject's rim the mask takes in is
    not white and is left out), each over the sweep's level there where its light falls off (:func:`falloff_level`),
    or None when they are under :data:`BACKDROP_MIN_WHITE` of the frame. What the white balance reads the light off
    (:func:`~pipeline.imaging.measure.colour.backdrop_light`) and the renderer whitens."""
    mask, falloff = backdrop
    if falloff is None:
        core = mask & (rgb.max(axis=2) >= np.float32(BACKDROP_LEVEL))
        if core.mean() < BACKDROP_MIN_WHITE:
            return None
        white = rgb[core]
    else:
        h, w = mask.shape
        rows, cols = np.nonzero(mask)
        level = falloff_level(falloff, (cols + 0.5) / w, (rows + 0.5) / h)
        white = rgb[rows, cols] / level[:, None]
        white = white[white.max(axis=1) >= np.float32(BACKDROP_LEVEL)]
        if white.shape[0] < BACKDROP_MIN_WHITE * mask.size:
            return None
    return np.median(white[:: max(1, white.shape[0] // 40_000)], axis=0).astype(np.float64)


#: Parts of what stands on a backdrop smaller than this share of its largest part are specks (dust on the sweep,
#: a JPEG's ringing), left out of its box.
SUBJECT_PART_MIN = 0.05


def subject_box(backdrop: np.ndarray) -> tuple[float, float, float, float] | None:
    """The bounding box of what is not a white backdrop (:func:`white_backdrop`), ``(x0, y0, x1, y1)`` as fractions
    of the width and height: its parts of :data:`SUBJECT_PART_MIN` of the largest or more, read on a 256-px grid."""
    h, w = backdrop.shape
    step = max(1, int(round(max(h, w) / BACKDROP_LONG_EDGE)))
    rest = (~backdrop[::step, ::step]).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(rest, connectivity=8)
    if n < 2:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    parts = stats[1:][areas >= SUBJECT_PART_MIN * areas.max()]
    x0, y0 = parts[:, cv2.CC_STAT_LEFT].min(), parts[:, cv2.CC_STAT_TOP].min()
    x1 = (parts[:, cv2.CC_STAT_LEFT] + parts[:, cv2.CC_STAT_WIDTH]).max()
    y1 = (parts[:, cv2.CC_STAT_TOP] + parts[:, cv2.CC_STAT_HEIGHT]).max()
    gh, gw = rest.shape
    return float(x0 / gw), float(y0 / gh), float(min(1.0, x1 / gw)), float(min(1.0, y1 / gh))


def _clipped_pct_of(pixels: np.ndarray, highlight: float,
                    shadow: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """:func:`clipped_pct` of a set of pixels, ``(N, 3)`` (a picture's opaque ones)."""
    hl, sl = np.float32(highlight), np.float32(shadow)
    pct = 100.0 / max(1, pixels.shape[0])
    hi, lo = pixels >= hl, pixels <= sl
    return (hi.sum(axis=0) * pct, lo.sum(axis=0) * pct, float(hi.any(axis=1).sum() * pct),
            float(lo.all(axis=1).sum() * pct))


def clipped_pct(
    rgb: np.ndarray, highlight: float = HIGHLIGHT_LEVEL, shadow: float = 1.0 / 4096
) -> tuple[np.ndarray, np.ndarray, float, float]:
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
    black_pct : float
        Percent of pixels at black in all three channels: black pixels, the shadows crushed. A saturated colour
        with one channel at black (a deep blue sky's red, a yellow flower's blue) is counted in ``shadows_pct``
        alone: it is a colour at the edge of the gamut, not a shadow without detail.

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image or the levels are not ordered.
    """
    rgb = check_rgb(rgb)
    if not shadow < highlight:
        raise ValueError(f"shadow level {shadow} must be below highlight level {highlight}")
    h, w = rgb.shape[:2]
    pct = 100.0 / (h * w)
    # 8-bit masks from OpenCV's compare (255 where true), counted by OpenCV: a quarter of the memory
    # of float32 0/1 images (the 20 MB temporaries of a 1600 px proxy cost more in page faults than
    # the comparisons), and the counts are the same integers. Compared at the levels as float32, the
    # proxy's own type, as the float32 thresholds did (a NaN is neither clipped nor crushed in both).
    flat = np.ascontiguousarray(rgb).reshape(h, w * 3)
    hi = cv2.compare(flat, float(np.float32(highlight)), cv2.CMP_GE).reshape(h, w, 3)
    lo = cv2.compare(flat, float(np.float32(shadow)), cv2.CMP_LE).reshape(h, w, 3)
    hi_pct = np.array(cv2.sumElems(hi)[:3]) / 255.0 * pct
    lo_pct = np.array(cv2.sumElems(lo)[:3]) / 255.0 * pct
    # The masks' largest channel from numpy's views of them: cv2.split copies the planes of an 8-bit
    # three-channel image at a fifth of the speed (6 ms of a 1600 px proxy, for the same count).
    any_hi = float(cv2.countNonZero(brightest_channel(hi))) * pct
    black = float(cv2.countNonZero(darkest_channel(lo))) * pct
    return hi_pct, lo_pct, any_hi, black


def unclipped_key_ev(rgb: np.ndarray, luma: np.ndarray, opaque: np.ndarray | None, highlight_level: float,
                     rendered: bool) -> float | None:
    """The key of the pixels no channel of which is clipped at ``highlight_level``, in EV of scene light against a
    well-exposed photograph's (:data:`~pipeline.imaging.measure.metering.KEY_LOG2`): the frame's key read
    without what is blown. None when (nearly) every pixel is clipped, or what is left is pure black.

    A white overcast sky that fills half a landscape puts the frame's median on the sky: the Kodak suite's
    ``kodim20`` (a plane on grass, 49.5 % clipped) reads 2.3 EV over while its grass, read alone, sits 0.6 EV
    under. Read on the same regular subset as the frame's key (:func:`~pipeline.imaging.measure.common.subsample`),
    ``opaque`` (same shape as ``luma``, or None) limiting it as it limits the frame's."""
    sub = subsample(luma)
    keep = ~(brightest_channel(subsample(rgb)) >= np.float32(highlight_level))
    if opaque is not None:
        keep &= subsample(opaque)
    left = sub[keep]
    if left.size < MIN_LIT_SHARE * sub.size or left.size == 0:
        return None
    try:
        key = float(scene_light(subject_key(left, float(np.median(left))), rendered))
    except InputError:
        return None
    return math.log2(key) - KEY_LOG2 if key > 0 else None


def exposure_measure(
    rgb: np.ndarray,
    luma: np.ndarray,
    small: np.ndarray,
    *,
    rendered: bool,
    highlight_level: float = HIGHLIGHT_LEVEL,
    shadow_level: float = 1.0 / 4096,
    opaque: np.ndarray | None = None,
    backdrop: np.ndarray | None = None,
    backdrop_rgb: np.ndarray | None = None,
    backdrop_falloff: Sequence[float] | None = None,
) -> ExposureMeasure:
    """The record's exposure group of one proxy: the meter's reading, percentiles and clipping.

    Nothing here depends on a chart: the plan turns the reading into the
    offset it corrects (``exposure_ev``) and its verdict.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        The proxy, linear (display-linear for a rendered source).
    luma : ndarray, (H, W)
        Its linear luminance.
    small : ndarray
        ``luma`` at :data:`~pipeline.imaging.measure.common.WORK_LONG_EDGE` (for the shadow contrast).
    rendered : bool
        Which meter reads the offset (:func:`~pipeline.imaging.measure.metering.exposure_ev`).
    highlight_level, shadow_level : float
        Clipping levels of :func:`clipped_pct`.
    opaque : ndarray of bool, (H, W), optional
        The pixels of a picture with transparency that are its picture: the percentiles, the meter and the
        clipping are read on them alone (a product cut out on a transparent background, flattened onto white
        for delivery, was read 3.4 EV over where its background filled half the frame, and darkened 2 EV to
        grey). None, or no pixel opaque: the whole frame.
    backdrop : ndarray of bool, (H, W), optional
        The frame's white backdrop (:func:`white_backdrop`): left out as a transparent background is, and its
        share of the frame and the box of what stands on it recorded (``backdrop_pct``; ``subject_box``:
        :func:`subject_box`).
    backdrop_rgb : ndarray, optional
        That backdrop's colour (:func:`backdrop_colour`), recorded (``backdrop_rgb``).
    backdrop_falloff : sequence of float, optional
        How its light falls off across the frame (:func:`sweep_falloff`), recorded (``backdrop_falloff``).

    Raises
    ------
    ValueError
        On a malformed array.
    InputError
        When almost nothing in the image is above pure black (nothing to meter; a frame half black is keyed
        on its lit pixels, :func:`~pipeline.imaging.measure.metering.subject_key`).
    """
    # The percentiles and the meter's white point in one partition of the subset (the values of
    # luminance_percentiles and key_and_white: each rank is read on its own).
    sub = subsample(check_luma(luma))
    if backdrop is not None and backdrop.shape == luma.shape:
        opaque = ~backdrop if opaque is None else opaque & ~backdrop
    masked = opaque is not None and opaque.shape == luma.shape and bool(opaque.any())
    pixels = subsample(check_rgb(rgb))  # the same regular subset as ``sub``, for the brightest channel's white point
    if masked:
        kept = subsample(opaque)
        if kept.any():
            sub, pixels = sub[kept], pixels[kept]
    ranks = np.percentile(sub, [1, 5, 50, 95, 99, WHITE_PERCENTILE])
    p01, p05, p50, p95, p99, white = (float(v) for v in ranks)
    contrast = shadow_contrast_of_working_copy(small, SHADOW_FRACTION)
    key_log2, white_log2 = key_and_white_log2(subject_key(sub, p50), white)
    scene_key, scene_white = scene_key_and_white_log2(key_log2, white_log2, rendered)
    # The brightest channel's white point in scene light (through the same curve, which is per channel and monotonic).
    _, channel = scene_key_and_white_log2(key_log2, math.log2(max(channel_white(pixels), 2.0**-24)), rendered)
    unclipped = unclipped_key_ev(rgb, luma, opaque if masked else None, highlight_level, rendered)
    ev = meter_log2(scene_key, scene_white, RENDERED_WHITE_SPREAD_EV if rendered else WHITE_SPREAD_EV, channel)
    hi, lo, any_hi, black = (_clipped_pct_of(rgb[opaque], highlight_level, shadow_level) if masked  # type: ignore[index]
                             else clipped_pct(rgb, highlight_level, shadow_level))
    return ExposureMeasure(
        meter_ev=ev,
        white_ev=scene_white - WHITE_LOG2,
        unclipped_key_ev=unclipped,
        backdrop_pct=0.0 if backdrop is None else float(backdrop.mean() * 100.0),
        backdrop_rgb=None if backdrop_rgb is None else [float(v) for v in backdrop_rgb],
        backdrop_falloff=None if backdrop is None or backdrop_falloff is None else [float(v) for v in backdrop_falloff],
        subject_box=None if backdrop is None or (box := subject_box(backdrop)) is None else list(box),
        reference=metering_reference(),
        shadow_contrast=contrast,
        luminance_p01=p01,
        luminance_p05=p05,
        luminance_p50=p50,
        luminance_p95=p95,
        luminance_p99=p99,
        clipped_highlights_pct=any_hi,
        clipped_highlights_pct_r=float(hi[0]),
        clipped_highlights_pct_g=float(hi[1]),
        clipped_highlights_pct_b=float(hi[2]),
        clipped_shadows_pct=black,
        clipped_shadows_pct_r=float(lo[0]),
        clipped_shadows_pct_g=float(lo[1]),
        clipped_shadows_pct_b=float(lo[2]),
    )
