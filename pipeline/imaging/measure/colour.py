"""White balance: the light the image's neutral surfaces show, in mired, with its uncertainty.

No single colour-constancy rule holds on every photograph: grey world is
pulled by a green lawn, the brightest pixels by a lamp, the edges by a
colourful pattern. So the light is read by four independent cues, each a
published estimator that looks for neutral surfaces in its own way:

- **near-neutral mode**: the densest cluster of pixel chromaticities, refined
  from the median (the estimate postprod used alone before);
- **grey pixels** (Qian et al., "On finding gray pixels", CVPR 2019): pixels
  whose local contrast is the same in every channel are grey whatever the
  light; the mean colour of the greyest 1 %;
- **bright pixels** (Joze et al., 2012): the mean of the brightest 2 % of the
  unclipped pixels (white walls, paper, clouds);
- **grey edge** (van de Weijer et al., 2007): the mean gradient of each
  channel (first order, Minkowski p = 1, sigma 1 px).

The estimate is their median in log chromaticity; how far they disagree is
its uncertainty (on a scene with true greys they agree within a few mired; on
a field of flowers, where no estimator has anything neutral to go by, they
scatter). The cast is read in mired on the Planckian locus by its red/blue
ratio (:func:`pipeline.imaging.white_balance.cast_mired`), plus a green tint,
and as CIE Lab a*/b* of the neutral at L* = 50 (what the gains and the XMP
writer start from). One function, :func:`white_balance_cast`, estimates it;
:func:`colour_measure` turns it into the record's colour group.

A rendered source (a JPEG) is read in its scene light: a light multiplies
the scene, and a camera's tone curve then lifts the mid-tones and compresses
the highlights, so in the decoded (display-linear) picture one cast shows a
different red/blue ratio at every tone and the cues, which weigh tones
differently (the brightest pixels, the edges), disagree and under-read it.
Through the inverse of the camera-like curve the exposure meter already uses
(:func:`pipeline.imaging.measure.metering.inverse_tone_curve`) the cast is a
multiplication again. On the accuracy corpus's tuning split the rendered cast
twins' estimate then follows the injected cast within 8.4 mired (median,
relative to the uncast twin; 15.5 read display-linear, 8.9 for the RAW twins),
the confidence gate refuses 10 of 48 of them instead of 13, and the base
chart's correction errs by 31.9 mired (median) instead of 50.0
(``benchmarks/wb_decompose.py``, no faces). The renderer applies the gains
to the display-linear picture, where the curve's slope at mid-grey is about 1
(1.08), so the scene's cast is the mid-tones' correction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.imaging.color import brightest_channel, darkest_channel, linear_to_srgb, luminance
from pipeline.imaging.measure.colour_checker import find_colour_checker
from pipeline.imaging.measure.common import WORK_LONG_EDGE, check_rgb, resize_long_edge, subsample
from pipeline.imaging.measure.metering import inverse_tone_curve
from pipeline.imaging.white_balance import D65_CCT_K, D65_MIRED, cast_mired, green_tint, lab_of_light, light_rgb
from pipeline.kernel.records import ColourMeasure

# Usable pixels: neither in deep shadow (noise and black-level error dominate
# their colour) nor near clipping (a clipped channel bends the colour).
_SHADOW_FRACTION = 2.0**-8
_CLIP_FRACTION = 0.98
# The near-neutral mode: neighbourhood in natural-log chromaticity (0.2 is about 20 %), refinements.
NEAR_NEUTRAL_RADIUS = 0.2
NEAR_NEUTRAL_ITERATIONS = 4
# Grey pixels: the share of candidates kept as grey, the smoothing of the grey index (px) and
# the least local contrast (of log luminance) a candidate needs (a flat area says nothing).
GREY_PIXELS_SHARE = 0.01
GREY_INDEX_SMOOTHING_PX = 7
GREY_MIN_CONTRAST = 1e-3
# Bright pixels: the brightest share of the usable pixels.
BRIGHT_SHARE = 0.02
# Grey edge: the Gaussian scale of the derivatives (px of the working copy).
GREY_EDGE_SIGMA = 1.0
# The estimate needs at least this many cues (a tiny or flat image gives fewer).
MIN_CUES = 2
# The cues' scatter (standard deviation, mired) says how far off the estimate may be: one standard
# deviation of its error is this times the scatter. Fitted on the accuracy benchmark's tuning split
# (78 unperturbed photos and twins, truth: no cast): their median |reading| was 0.77 scatters, and a
# normal error's median is 0.674 sigma. Never below the floor: four cues can agree by chance.
# Checked against 17 more published photos no constant saw (benchmarks/fit_gates.py: the tuning
# split's 27 sources and the extra tuning pool's 17, 129 originals): refitted 1.17, and left one
# source out no figure improves, so kept.
SPREAD_TO_UNCERTAINTY = 1.15
MIN_UNCERTAINTY_MIRED = 5.0
# The cues' scatter on the green tint (standard deviation of their log2 tints) says how far off the tint is:
# one spread is sqrt(TINT_UNCERTAINTY_FLOOR^2 + (TINT_SPREAD_TO_UNCERTAINTY * scatter)^2), fitted on the
# accuracy benchmark's tuning split (170 published photos and their cast twins, truth: the tint injected) by
# benchmarks/fit_tint_spread.py (a Laplace error's scale: the tails are a scene's own colour). The mired scatter
# says nothing of the tint's error (correlation -0.05 there); the tint's own does (0.38, 0.55 held out).
TINT_SPREAD_TO_UNCERTAINTY = 1.28
TINT_UNCERTAINTY_FLOOR = 0.104
# Bluer than this the kelvin column has no meaning (1e6 K); the mired reading carries on.
_MIN_ABSOLUTE_MIRED = 1.0


@dataclass(frozen=True)
class WhiteBalanceCast:
    """The light of the image's neutral surfaces.

    Attributes
    ----------
    a, b : float
        CIE Lab a*/b* of a neutral at L* = 50 (D65): + a magenta, - green; + b yellow/warm, - blue.
    temperature_shift_k : float
        Its correlated colour temperature minus 6504 K (negative: warm), from the mired reading;
        capped at 1e6 K for a light bluer than any black body.
    neutral_fraction : float
        Share of the usable pixels within 20 % of the estimate's chromaticity.
    mired : float
        The cast in mired against D65 (+ = warm light): :func:`~pipeline.imaging.white_balance.cast_mired`.
    tint : float
        log2 green excess over the locus light of that temperature (+ green, - magenta).
    uncertainty_mired : float
        How far off the mired reading may be (one standard deviation): the cues' scatter.
    tint_uncertainty : float or None
        How far off the tint may be (one spread, log2): from the cues' scatter on it, whatever read the light
        (None with fewer than two cues).
    cues : dict
        Each cue's reading in mired (for reports and tests).
    colour_checker : bool
        The light was read off a ColorChecker's greys in the frame
        (:func:`~pipeline.imaging.measure.colour_checker.find_colour_checker`), not guessed by the cues.
    colour_checker_box : tuple of 4 floats or None
        Its bounding box ``(x0, y0, x1, y1)``, as fractions of the image's width and height.
    backdrop : bool
        The light was read off the frame's white backdrop (:func:`backdrop_light`), not guessed by the cues.
    """

    a: float
    b: float
    temperature_shift_k: float
    neutral_fraction: float
    mired: float = 0.0
    tint: float = 0.0
    uncertainty_mired: float = 0.0
    tint_uncertainty: float | None = None
    cues: dict[str, float] = field(default_factory=dict)
    colour_checker: bool = False
    colour_checker_box: tuple[float, float, float, float] | None = None
    backdrop: bool = False


def usable_pixels(rgb: np.ndarray) -> np.ndarray:
    """Mask of the pixels whose colour can be read: not in deep shadow, no channel near clipping."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # The same values as rgb.max(axis=-1) and .min(axis=-1), several times faster (numpy reduces a last
    # axis of 3 element by element): this mask is made twice per proxy and was half of the estimate's time.
    hi = np.maximum(np.maximum(r, g), b)
    lo = np.minimum(np.minimum(r, g), b)
    peak = float(np.percentile(hi, 99.5))
    if not peak > 0:
        return np.zeros(rgb.shape[:2], bool)
    return (lo > peak * _SHADOW_FRACTION) & (hi < min(_CLIP_FRACTION, peak * _CLIP_FRACTION))


def _light(v: np.ndarray) -> np.ndarray | None:
    v = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(v)) or not np.all(v > 0):
        return None
    return v / v[1]


def near_neutral_mode(rgb: np.ndarray, ok: np.ndarray, radius: float = NEAR_NEUTRAL_RADIUS,
                      iterations: int = NEAR_NEUTRAL_ITERATIONS) -> np.ndarray | None:
    """The densest chromaticity near the median, refined ``iterations`` times within ``radius`` (log units)."""
    # Each channel gathered on its own (contiguous), the distances into one buffer, and the medians of the
    # near pixels partitioned in the copies the mask made: the same values, 15 % less time.
    g = rgb[..., 1][ok]
    ln_rg = np.log(rgb[..., 0][ok] / g)
    ln_bg = np.log(rgb[..., 2][ok] / g)
    centre = (float(np.median(ln_rg)), float(np.median(ln_bg)))
    du, dv = np.empty_like(ln_rg), np.empty_like(ln_bg)
    for _ in range(iterations):
        np.subtract(ln_rg, centre[0], out=du)
        np.subtract(ln_bg, centre[1], out=dv)
        near = np.hypot(du, dv, out=du) < radius
        if near.sum() < max(50, 0.005 * g.size):
            return None
        centre = (float(np.median(ln_rg[near], overwrite_input=True)),
                  float(np.median(ln_bg[near], overwrite_input=True)))
    return np.array([math.exp(centre[0]), 1.0, math.exp(centre[1])])


def grey_pixels(rgb: np.ndarray, ok: np.ndarray, share: float = GREY_PIXELS_SHARE) -> np.ndarray | None:
    """Mean colour of the greyest ``share`` of the pixels by Qian et al.'s grey index.

    The index is the difference between each channel's local contrast (a
    Laplacian of Gaussian of its logarithm) and the luminance's: zero on a grey
    surface under any light, since the light's colour is a constant in log
    space. Flat areas (no contrast) and pixels beside unusable ones are left out.
    """
    eps = 1e-4
    log_rgb = np.log(np.maximum(rgb, eps))
    # rgb.sum(axis=-1)'s values ((R + G) + B, in that order) without numpy's slow reduction over an axis of 3.
    log_sum = np.log(np.maximum(rgb[..., 0] + rgb[..., 1] + rgb[..., 2], eps))

    def contrast(x: np.ndarray) -> np.ndarray:
        return cv2.Laplacian(cv2.GaussianBlur(x.astype(np.float32), (0, 0), 1.0), cv2.CV_32F)

    c_sum = contrast(log_sum)
    index = np.hypot(contrast(log_rgb[..., 0]) - c_sum, contrast(log_rgb[..., 2]) - c_sum)
    index = cv2.blur(index, (GREY_INDEX_SMOOTHING_PX, GREY_INDEX_SMOOTHING_PX))
    candidates = cv2.erode(ok.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    candidates &= np.abs(c_sum) > GREY_MIN_CONTRAST
    values = index[candidates]
    if values.size < 1000:
        return None
    greyest = candidates & (index <= np.quantile(values, share))
    px = rgb[greyest].astype(np.float64)
    return (px / px.sum(axis=1, keepdims=True)).mean(axis=0)


def bright_pixels(rgb: np.ndarray, ok: np.ndarray, share: float = BRIGHT_SHARE) -> np.ndarray | None:
    """Mean colour of the brightest ``share`` of the usable pixels (by R + G + B)."""
    px = rgb[ok].astype(np.float64)
    if px.shape[0] < 1000:
        return None
    s = px[:, 0] + px[:, 1] + px[:, 2]  # px.sum(axis=1)'s values, (R + G) + B, a sixth of the time
    return px[s >= np.quantile(s, 1.0 - share)].mean(axis=0)


def grey_edge(rgb: np.ndarray, ok: np.ndarray, sigma: float = GREY_EDGE_SIGMA, p: float = 1.0) -> np.ndarray | None:
    """Minkowski ``p``-mean of each channel's gradient magnitude over the usable pixels (first-order grey edge).

    The estimate uses ``p = 1`` (the mean); benchmarks/fit_white_balance.py compares other norms.
    """
    inside = cv2.erode(ok.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    if inside.sum() < 1000:
        return None
    out = []
    for c in range(3):
        ch = cv2.GaussianBlur(np.ascontiguousarray(rgb[..., c]), (0, 0), sigma)
        g = np.hypot(cv2.Sobel(ch, cv2.CV_32F, 1, 0), cv2.Sobel(ch, cv2.CV_32F, 0, 1))[inside]
        out.append(float(g.mean()) if p == 1.0 else float(np.mean(g.astype(np.float64) ** p) ** (1.0 / p)))
    return np.array(out)


#: The cues, by name: each reads a light from the working copy and its usable-pixel mask.
CUES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray | None]] = {
    "near_neutral": near_neutral_mode,
    "grey_pixels": grey_pixels,
    "bright_pixels": bright_pixels,
    "grey_edge": grey_edge,
}


def working_copy(rgb: np.ndarray, rendered: bool) -> tuple[np.ndarray, np.ndarray]:
    """The picture the cues read, and its usable pixels (:func:`usable_pixels`): ``rgb`` at most
    :data:`~pipeline.imaging.measure.common.WORK_LONG_EDGE` on its long edge, without negatives, and for a
    ``rendered`` source in its scene light (the light multiplied the scene, not the tone-mapped picture: the module
    docstring)."""
    work = resize_long_edge(rgb, WORK_LONG_EDGE) if max(rgb.shape[:2]) > WORK_LONG_EDGE else rgb
    work = np.ascontiguousarray(np.clip(work, 0.0, None))
    if rendered:
        work = np.ascontiguousarray(inverse_tone_curve(work).astype(np.float32))
    return work, usable_pixels(work)


def white_balance_cast(rgb: np.ndarray, *, rendered: bool = False, look_for_chart: bool = True,
                       backdrop_rgb: np.ndarray | None = None) -> WhiteBalanceCast | None:
    """The light of the image's neutral surfaces: a ColorChecker's greys where one is in the frame, else four
    cues (see the module docstring).

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Linear Rec.709 RGB (scene-linear for a RAW, display-linear for a rendered source).
    rendered : bool
        True for a tone-mapped source (JPEG): the cues read its scene light, through
        :func:`~pipeline.imaging.measure.metering.inverse_tone_curve` (see the module docstring).
    look_for_chart : bool
        Look for a ColorChecker first (25-60 ms a proxy).
    backdrop_rgb : ndarray, optional
        The colour of the frame's white backdrop (:func:`~pipeline.imaging.measure.exposure.backdrop_colour`):
        where no chart is, the light is read off it (:func:`backdrop_light`) when it says what it is.

    Returns
    -------
    WhiteBalanceCast or None
        None when fewer than 0.5 % of the pixels are usable or, without a
        chart, fewer than two cues can read a light (a flat or nearly black image).

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image.
    """
    rgb = check_rgb(rgb)
    checker = find_colour_checker(rgb, rendered=rendered) if look_for_chart else None
    sweep = None if checker is not None or backdrop_rgb is None else backdrop_light(backdrop_rgb)
    work, ok = working_copy(rgb, rendered)
    n_ok = int(ok.sum())
    if n_ok < 0.005 * ok.size or n_ok < 50:
        return None
    lights: dict[str, np.ndarray] = {}
    for name, cue in CUES.items():
        light = _light(cue(work, ok))
        if light is not None:
            lights[name] = light
    if len(lights) < MIN_CUES and checker is None and sweep is None:
        return None
    readings = {name: cast_mired(v) for name, v in lights.items()}
    if checker is not None:  # the chart's greys are neutral: the cues are kept for the record only
        light = checker.light
        readings["colour_checker"] = cast_mired(light)
        uncertainty = checker.uncertainty_mired
    elif sweep is not None:  # so is a white backdrop
        light = sweep
        readings["backdrop"] = cast_mired(light)
        uncertainty = MIN_UNCERTAINTY_MIRED
    else:
        light = np.exp(np.median(np.log(np.array(list(lights.values()))), axis=0))
        uncertainty = max(MIN_UNCERTAINTY_MIRED, SPREAD_TO_UNCERTAINTY * float(np.std(list(readings.values()))))
    tints = [green_tint(v) for v in lights.values()]
    tint_uncertainty = (math.hypot(TINT_UNCERTAINTY_FLOOR, TINT_SPREAD_TO_UNCERTAINTY * float(np.std(tints)))
                        if len(tints) >= 2 else None)
    m = cast_mired(light)
    a, b = lab_of_light(light)
    kelvin = 1e6 / max(D65_MIRED + m, _MIN_ABSOLUTE_MIRED)
    return WhiteBalanceCast(
        a=a, b=b, temperature_shift_k=kelvin - D65_CCT_K,
        neutral_fraction=_neutral_fraction(subsample(work, 40_000), light),
        mired=m, tint=green_tint(light),
        uncertainty_mired=uncertainty, tint_uncertainty=tint_uncertainty, cues=readings,
        colour_checker=checker is not None,
        colour_checker_box=None if checker is None else checker.bounds, backdrop=sweep is not None,
    )


#: A channel of the backdrop whose median is at least this (linear) is clipped: it says only "at least this".
BACKDROP_CLIPPED = 0.99
def backdrop_light(median: np.ndarray) -> np.ndarray | None:
    """The light a white backdrop shows, linear RGB (green = 1), or None when its white does not say.

    A sweep lit to white is neutral by intent: its colour in the picture is the light's (before the
    correction), as a ColorChecker's greys are. It is read where the renderer multiplies (the decoded
    pixels: display light for a rendered source), so the correction brings the backdrop to neutral. Every
    channel under :data:`BACKDROP_CLIPPED`: their medians. The brightest clipped (a warm light blows red, a
    cool one blue), the other two read the light on the Planckian locus by their ratio
    (:func:`~pipeline.imaging.white_balance.light_rgb`; a tint off the locus is not seen). Green clipped, or
    two channels or more: nothing is known but "white", and the cues read the light. ``median``: the
    backdrop's colour, :func:`~pipeline.imaging.measure.exposure.backdrop_colour`.
    """
    clipped = median >= BACKDROP_CLIPPED
    if not clipped.any():
        return median / median[1]
    if clipped.sum() > 1 or clipped[1]:
        return None
    other = 2 if clipped[0] else 0  # the unclipped one of red and blue, against green
    wanted = math.log(median[other] / median[1])
    lo, hi = -300.0, 400.0  # mired from D65: the locus's log ratios are monotonic along it
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        rising = math.log(light_rgb(mid)[other]) > wanted  # red rises with mired, blue falls
        if rising == (other == 0):
            hi = mid
        else:
            lo = mid
    return light_rgb(0.5 * (lo + hi))


def _neutral_fraction(rgb: np.ndarray, light: np.ndarray, radius: float = NEAR_NEUTRAL_RADIUS) -> float:
    ok = usable_pixels(rgb)
    if not ok.any():
        return 0.0
    px = rgb[ok].astype(np.float64)
    du = np.log(px[:, 0] / px[:, 1]) - math.log(light[0])
    dv = np.log(px[:, 2] / px[:, 1]) - math.log(light[2])
    return float(np.mean(np.hypot(du, dv) < radius))


def colour_measure(rgb: np.ndarray, *, rendered: bool = False, look_for_chart: bool = True,
                   backdrop_rgb: np.ndarray | None = None) -> ColourMeasure:
    """The record's colour group of one proxy (all None when the light cannot be read); ``rendered``,
    ``look_for_chart`` and ``backdrop_rgb`` as :func:`white_balance_cast`.

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image.
    """
    cast = white_balance_cast(rgb, rendered=rendered, look_for_chart=look_for_chart, backdrop_rgb=backdrop_rgb)
    chroma, off_tone = chroma_p99(rgb), off_tone_chroma_p99(rgb)
    sky, sky_colour = blue_sky(rgb)
    sky_rgb = None if sky_colour is None else list(sky_colour)
    if cast is None:
        return ColourMeasure(chroma_p99=chroma, off_tone_chroma_p99=off_tone, sky_share=sky, sky_rgb=sky_rgb)
    return ColourMeasure(cast_a=cast.a, cast_b=cast.b, temperature_shift_k=cast.temperature_shift_k,
                         cast_mired=cast.mired, tint=cast.tint, uncertainty_mired=cast.uncertainty_mired,
                         tint_uncertainty=cast.tint_uncertainty,
                         colour_checker=cast.colour_checker,
                         colour_checker_box=None if cast.colour_checker_box is None else list(cast.colour_checker_box),
                         backdrop=cast.backdrop, chroma_p99=chroma, off_tone_chroma_p99=off_tone, sky_share=sky,
                         sky_rgb=sky_rgb)


#: Blue sky, read on the frame at :data:`SKY_LONG_EDGE` px sRGB-encoded: bright (CIELAB L* above
#: :data:`SKY_MIN_L`), blue (hue angle within :data:`SKY_HUE_DEG`, chroma above :data:`SKY_MIN_CHROMA`) and smooth
#: (the encoded grey's 3x3 Sobel magnitude, |dx| + |dy| in 8-bit code values, under :data:`SKY_MAX_GRADIENT`).
#: Set by eye on listing photos (emanhamed/Houses-dataset, houses 131-330): a blue sky's chroma is 20-50, a white
#: ceiling or wall lit by a window's daylight 5-15 (at 8 the detector found a sky in 18 of their 600 interiors, at 15
#: in 9, four of them blue-painted rooms); 155 of their 200 fronts have one over a tenth of their top quarter, the
#: rest an overcast or a white sky, or trees.
SKY_LONG_EDGE = 400
SKY_MIN_L = 40.0
SKY_HUE_DEG = (220.0, 300.0)
SKY_MIN_CHROMA = 15.0
SKY_MAX_GRADIENT = 40.0


def blue_sky(rgb: np.ndarray) -> tuple[float, tuple[float, float, float] | None]:
    """The share of the frame's top quarter that is blue sky (0-1; see :data:`SKY_MIN_CHROMA`), and the sky's colour
    there: the median of its pixels, linear RGB as ``rgb`` is (None without a sky pixel).

    A daylight scene under a blue sky is lit by it where the sun is not: its shade, and the neutrals there, read
    cool by nature; and a correction that turns that sky teal or grey is no correction of its light
    (:func:`pipeline.planning.rules.white_balance.plan_white_balance` reads both)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, SKY_LONG_EDGE / max(height, width))
    quarter = rgb[: max(1, height // 4)]  # only the top quarter resized: a quarter of the work
    size = (max(1, round(width * scale)), max(1, round(quarter.shape[0] * scale)))
    linear = cv2.resize(quarter, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else quarter
    top = linear_to_srgb(linear)
    lab = cv2.cvtColor(top, cv2.COLOR_RGB2Lab)  # float input in 0-1, sRGB-encoded: L* 0-100
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    hue = np.degrees(np.arctan2(b, a)) % 360.0
    grey = cv2.cvtColor(top, cv2.COLOR_RGB2GRAY) * 255.0
    gradient = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    sky = ((lightness > SKY_MIN_L) & (np.hypot(a, b) > SKY_MIN_CHROMA) & (hue > SKY_HUE_DEG[0])
           & (hue < SKY_HUE_DEG[1]) & (gradient < SKY_MAX_GRADIENT))
    if not sky.any():
        return 0.0, None
    colour = np.median(linear[sky], axis=0)
    return float(sky.mean()), (float(colour[0]), float(colour[1]), float(colour[2]))


def sky_share(rgb: np.ndarray) -> float:
    """The share of the frame's top quarter that is blue sky (:func:`blue_sky`)."""
    return blue_sky(rgb)[0]


def chroma_p99(rgb: np.ndarray) -> float:
    """The 99th percentile of the pixels' chroma: the largest minus the smallest sRGB-encoded channel, 0-1.

    A black-and-white picture (a grey JPEG, a monochrome conversion, a monochrome sensor's DNG) reads 0 or
    the few code values its compression adds; any colour photograph has colour somewhere in 1 % of its
    pixels (:data:`MONOCHROME_CHROMA`). On a regular subset of about 40 000 pixels (:func:`subsample`; 3 ms
    of a 1600 px proxy, 11 ms on 150 000).

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image.
    """
    px = np.clip(subsample(check_rgb(rgb), 40_000), 0.0, 1.0)
    spread = linear_to_srgb(brightest_channel(px)) - linear_to_srgb(darkest_channel(px))
    return float(np.percentile(spread, 99.0))


#: A picture whose :func:`chroma_p99` is at most this (3 code values of 255) is black and white: nothing in it
#: has a colour to judge (the white balance and skin checks of the plan leave it alone). A grey JPEG decodes
#: to equal channels; a monochrome conversion saved in colour carries a code value or two of chroma noise.
MONOCHROME_CHROMA = 3.0 / 255.0

#: The long edge of the copy :func:`off_tone_chroma_p99` reads (area filter), and the blur it reads its residual
#: colour through (Gaussian sigma, px of that copy): about 5 px of a 1600 px proxy, so that a JPEG's chroma, stored
#: at half resolution and quantised in 8x8 blocks, is compared with the tone at the resolution the file keeps it.
TONE_LONG_EDGE = 800
TONE_BLUR_SIGMA = 2.5
#: Bins of encoded luma over which :func:`off_tone_chroma_p99` reads the picture's tone (the median colour of each
#: brightness): 1/32 of the tonal range each.
TONE_BINS = 32


#: Levels of encoded luma at which :func:`off_tone_chroma_p99` tabulates the tone (0.1 code value apart).
_TONE_LEVELS = 2048


def _encoded(linear: np.ndarray) -> np.ndarray:
    """:func:`~pipeline.imaging.color.linear_to_srgb` of values already in [0, 1] (float32), by OpenCV's power
    (a ninth of numpy's time; equal within float32 rounding)."""
    encoded = cv2.pow(linear, 1 / 2.4)
    encoded *= 1.055
    encoded -= 0.055
    np.copyto(encoded, linear * np.float32(12.92), where=linear <= 0.0031308)
    return encoded


def off_tone_chroma_p99(rgb: np.ndarray) -> float:
    """The 99th percentile of the chroma a picture has beyond the colour its brightness alone sets: 0-1.

    A toned black-and-white picture (sepia, selenium, gold, a cyanotype, a split tone, a drawing on cream paper)
    has colour, but every pixel of one brightness has the same: its colour is a function of its luma. A colour
    photograph, under whatever cast, has things of different colours at one brightness. Read on a copy of
    :data:`TONE_LONG_EDGE` px, sRGB-encoded: each pixel's chroma (R'-G', B'-G') less the median chroma of its
    brightness (:data:`TONE_BINS` bins of encoded luminance, interpolated between their medians), blurred by
    :data:`TONE_BLUR_SIGMA` (a JPEG keeps chroma at half resolution: at an edge it mixes the tones of both sides),
    as the largest minus the smallest channel, like :func:`chroma_p99`. A black-and-white picture reads the same
    as its :func:`chroma_p99`; 15-30 ms on a 1600 px proxy.

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image.
    """
    rgb = check_rgb(rgb)
    h, w = rgb.shape[:2]
    if max(h, w) > TONE_LONG_EDGE:
        rgb = resize_long_edge(rgb, TONE_LONG_EDGE)
    rgb = np.clip(rgb, 0.0, 1.0)
    encoded, luma = _encoded(rgb), _encoded(luminance(rgb))
    chroma = (encoded[..., 0] - encoded[..., 1], encoded[..., 2] - encoded[..., 1])
    sampled = subsample(luma, 40_000).ravel()  # the tone is read on a regular subset, the residual everywhere
    bins = np.minimum((sampled * TONE_BINS).astype(np.int32), TONE_BINS - 1)
    order = np.argsort(bins, kind="stable")
    starts = np.searchsorted(bins[order], np.arange(TONE_BINS + 1))
    levels = sampled[order]
    tone_of = [subsample(c, 40_000).ravel()[order] for c in chroma]
    used = [b for b in range(TONE_BINS) if starts[b + 1] > starts[b]]
    centres = np.array([np.median(levels[starts[b]:starts[b + 1]]) for b in used])
    at = (luma * (_TONE_LEVELS - 1) + 0.5).astype(np.int32)  # each pixel's level, for the tone's table
    levels_grid = np.linspace(0.0, 1.0, _TONE_LEVELS)
    off = []
    for c, of in zip(chroma, tone_of):
        tone = np.array([np.median(of[starts[b]:starts[b + 1]]) for b in used])
        table = np.interp(levels_grid, centres, tone).astype(np.float32)  # the tone at every level
        off.append(cv2.GaussianBlur(c - table[at], (0, 0), TONE_BLUR_SIGMA))
    r1, r2 = off
    spread = np.maximum(np.maximum(np.abs(r1), np.abs(r2)), np.abs(r1 - r2))
    return float(np.percentile(subsample(spread, 150_000), 99.0))


#: A picture whose :func:`off_tone_chroma_p99` is at most this (10 code values of 255), and whose
#: :func:`chroma_p99` is above :data:`MONOCHROME_CHROMA`, is a toned black-and-white picture: its colour is its
#: toning, not a light's. Chosen between the two on the accuracy pool's tuning photos (``benchmarks/toned_fit.py``:
#: six tonings at two strengths, JPEG quality 80-95, against the photos as published and two strong casts of each).
TONED_CHROMA = 10.0 / 255.0
