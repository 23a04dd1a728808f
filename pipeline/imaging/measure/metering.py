"""The exposure meter: how far an image sits from a well-exposed one, in EV of scene light.

One meter for every kind of source, in scene-linear light:

- RAW proxies are scene-linear already (:func:`meter_scene_linear`);
- rendered sources (JPEG, TIFF from a raw converter) went through a camera's
  tone curve before the sRGB encoding that the decode undoes: their
  luminance is taken back through the inverse of a camera-like tone curve
  (:func:`inverse_tone_curve`) and metered the same way (:func:`meter_rendered`).
  The inverse is bounded: display white is scene white, display black scene black.

What "well exposed" means is a statement about photographs, fitted on the
accuracy corpus's tuning split (``benchmarks/fit_exposure.py``): developed
through a standard film-like camera curve, a well-exposed photograph's median
scene-linear luminance is about 0.097 (:data:`KEY_LOG2`, 0.9 EV below 18 %
grey and 3.4 EV below white: the key), spread 0.9 EV from photo to photo, and
its brightest 0.1 % of pixels reach about 0.81 (:data:`WHITE_LOG2`, 0.3 EV
below white), spread 1.0 EV.
The meter's reading (:func:`meter_log2`) averages the two readings weighted by
their spreads (a rendered source's white point by a wider one,
:data:`RENDERED_WHITE_SPREAD_EV`: how far a converter's highlights sit below
white is its own look), but never reads an image darker than its white point says (a
night scene whose highlights sit where a well-exposed photograph's do is not
brightened). Scaling scene light by ``2**k`` moves the reading by exactly ``k``
as long as the white point is not within 0.2 EV of clipping; nothing else in
the meter depends on an absolute level. An image read 0 EV is exposed like the typical
published photo; the spread above is what no meter without content
understanding removes (a night scene and a snowfield are both "well exposed").
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import cv2
import numpy as np

from pipeline.imaging.color import brightest_channel, linear_to_srgb, srgb_to_linear
from pipeline.imaging.measure.common import WORK_LONG_EDGE, check_luma, resize_long_edge, subsample
from pipeline.kernel.errors import InputError
from pipeline.kernel.records import SourceKind

# --- the camera-like tone curve of rendered sources ---------------------------------------------

#: Knots of the tone curve on sRGB-encoded scene values (fixed, evenly spread over the tones).
TONE_CURVE_KNOTS = (0.0, 0.125, 0.25, 0.5, 0.75, 1.0)
#: The curve's sRGB-encoded display values at the knots: fitted on the tuning split's JPEG twins
#: against their RAW twins (``benchmarks/fit_exposure.py``; rms 0.036 of the encoded range). A
#: natural cubic spline through them, applied to scene light, is the standard film-like curve a
#: raw converter develops with: shadows held down (toe), mid-tones lifted, a soft shoulder to white.
TONE_CURVE_VALUES = (0.0, 0.1044, 0.2984, 0.7066, 0.9406, 1.0)

# --- what a well-exposed photograph looks like (benchmarks/fit_exposure.py, tuning split) --------

#: log2 of the median scene-linear luminance of a well-exposed photograph (0.097) and its spread.
KEY_LOG2 = -3.365
KEY_SPREAD_EV = 0.929
#: log2 of the 99.9th percentile of its scene-linear luminance (0.81) and its spread: a normal
#: distribution censored at :data:`CLIPPED_LOG2` (9 of the 27 tuning photos clip there).
WHITE_LOG2 = -0.301
WHITE_SPREAD_EV = 1.007
#: The white point's spread for a rendered source (JPEG, TIFF), read through the camera-like curve that may not be
#: the one that developed it: twice :data:`WHITE_SPREAD_EV`. A converter whose highlights roll off below white
#: (darktable's default pipeline) shows a photograph's white point 0.75 EV lower through this curve (rms 0.79 over
#: the tuning split's 0 EV twins; its key 0.19 lower, rms 0.35), so a picture 2 EV over read as 0.4 over.
#: Chosen on the tuning split's exposure twins developed by both converters (``benchmarks/exposure_converters.py``):
#: the meter alone's median error 0.37 and 0.70 EV (RawTherapee's, darktable's twins) -> 0.38 and 0.51, 95th
#: percentile 1.62 and 1.77 -> 1.47 and 1.36; x1.5: 0.38 and 0.57; x3: 0.39 and 0.48, with RawTherapee's 0 EV
#: twins read within 0.3 EV 10 -> 8 of 27 (x2: 9).
RENDERED_WHITE_SPREAD_EV = 2.0 * WHITE_SPREAD_EV
#: log2 of the median scene-linear luminance of the centres of the faces a plan keys on, in a
#: well-exposed photograph (0.134: 0.47 EV over the frame's key, :data:`KEY_LOG2`), and how far a
#: photo's faces stray from it (1.02 EV): the mean and sample spread over the 17 sources of tuning
#: material with faces and a known truth (``benchmarks/fit_face_key.py`` with the extra tuning pool
#: and dlib's five ``examples/faces`` testing photos, 2026-12-01: the tuning split's four face
#: photos, FiveK renders with their push taken out, shared and package photos, flash snapshots; each
#: source counts once), as ``benchmarks/fit_exposure.py`` fits the key and the white point.
#: Well-exposed faces sit anywhere from -0.9 (sunlit high-key uploads) to -4.0 (flash snapshots),
#: so the spread is wide and the whole frame's reading counts for more than the faces' (66 % to 34 %).
#: Left one source out, the global correction's median |error| over those photos fell 0.84 -> 0.46
#: EV (within 0.3 EV 24 -> 46 %, 1 EV or more off 23 -> 10 of 50); the 4-photo fit before it
#: (-1.271, spread 0.631: three bright Flickr uploads and the astronaut) brightened the snapshots
#: by 1.2-2.0 EV and left the FiveK ``_P1.5`` files 1-1.5 EV over. What it costs: the three bright
#: uploads, whose frames read 1.4-1.9 EV over, are darkened by 1.6-1.8 EV instead of 0.5-1.0 (since the
#: darkening stops where it would grey a face's skin, :func:`~pipeline.planning.rules.exposure.darkening_skin_keeps`,
#: two the shared data calls roughly normal by 0.6-0.8 EV in the accuracy benchmark's copies).
#: (The robust alternative, median and MAD: -3.335, 0.862, LOSO 0.25 EV, darkens the astronaut by
#: 0.7-0.8 EV as well.)
FACE_LOG2 = -2.899
#: How far a face reading of a well-exposed photograph strays from 0 (the faces' spread above), and
#: how far the whole frame's reading does (0.74 EV, rms over the 27 tuning photos, as
#: ``benchmarks/fit_exposure.py`` prints it): a plan that has both weighs them by these.
#: The frame's was checked on 17 more published photos no constant saw (``benchmarks/fit_gates.py``:
#: the tuning split plus the extra tuning pool, 44 RAW 0 EV twins): they read 0.585 EV rms, both
#: together 0.681, and left one source out the refit improves no figure, so 0.735 is kept.
FACE_SPREAD_EV = 1.020
FRAME_SPREAD_EV = 0.735
# The subject as a third reading, as the faces are one, was tried (2026-12-04): the median scene light where the
# salient object's map (:func:`~pipeline.imaging.measure.content.salient_object_map`) reads 0.5 or more, on the
# tuning split's 27 RAW 0 EV twins: it strays 1.63 EV from photo to photo (the frame 0.73; correlation 0.24), so the
# two weigh 0.9 to 0.1, and left one source out the meter's median |error| over the 135 RAW twins moved 0.302 -> 0.294
# EV (0 EV twins within 0.3 EV 13 -> 14 of 27): a subject is dark or bright by nature as often as a frame is. Not kept.
# The histogram's shape was tried too (2026-12-05, ``benchmarks/fit_meter_shape.py``, tuning material and 73 published
# photos no constant saw): the weighted log2 percentiles 2-99.9 of least spread over the fitting photos stray 0.58-0.65
# EV rms there but 0.47-0.70 on the Wikimedia photos the meter reads at 0.44; and a spread per image by how far the key
# and the white point disagree (photos whose key reads 0.75 EV or more above their white point stray 0.84-1.27 EV rms,
# the rest 0.18-0.45) moves no tuning median (0.40 EV): agreeing readings still err 0.14-0.33 EV. Neither kept.
#: A 99.9th percentile at or above this (0.97 of white) counts as clipped when :data:`WHITE_LOG2`
#: is fitted (``benchmarks/fit_exposure.py``: at least this bright, how much more is lost).
CLIPPED_LOG2 = math.log2(0.97)
#: Within this many stops of full scale a white point may be clipped: its weight fades to 0 at 1.0.
WHITE_FADE_EV = 0.2
#: Share of the brightest pixels whose level is the white point.
WHITE_PERCENTILE = 99.9
#: log2 of the 99.9th percentile of a well-exposed photograph's brightest channel (each pixel's largest of R, G and
#: B) in scene light: the level a push would take to white first. Fitted as :data:`WHITE_LOG2` is (a normal censored
#: at :data:`CLIPPED_LOG2`: 15 of the 27 tuning 0 EV RAW twins clip a channel there; ``benchmarks/fit_exposure.py``)
#: and no other constant with it. It floors the meter (:func:`meter_log2`): a picture whose brightest channel sits
#: where a well-exposed photograph's does is not under-exposed, whatever its luminance says (decoded light is at
#: most 1.0, so the floor is at most -0.216 EV: it only holds back a push, never asks for a darkening). Luminance reads a
#: saturated colour dark (pure red is 0.21 of white): photoprism's magenta fish on black, its red channel at full
#: scale, read 1.85 EV under on its luminance white point and was pushed 1.85 EV, the black water to grey and the
#: fish rolled off; read on its brightest channel it is 0.22 EV under and left as shot. The meter alone, before and
#: after (the plan's gates then act on it): tuning split, RAW twins median |error| 0.302 -> 0.301 EV, rendered 0.336
#: -> 0.311 (95th percentile 1.52 -> 1.58), rendered 0 EV twins within 0.3 EV 21 -> 25 of 51; held-out split
#: (checked after, nothing chosen on it) RAW 0.409 -> 0.372, rendered 0.398 -> 0.379 (95th percentile unchanged),
#: 0 EV twins within 0.3 EV 14 -> 16 of 40 and 25 -> 30 of 76; published photos no constant saw, within 0.3 EV: 45
#: of photoprism's examples 14 -> 19, 49 Wikimedia photos 22 -> 28, the Kodak suite 15 -> 19 of 24. The 99th and
#: 99.5th percentiles (each with its own fitted level) were tried on the tuning split first: the 99th took the rendered
#: twins' median 0.336 -> 0.417, the 99.5th left it at 0.336 (0 EV twins 21 -> 23). What it costs: a twin developed
#: 1.5 EV under whose few speculars still clip a channel (skimage's coffee) reads 0.22 EV under instead of 1.10.
CHANNEL_WHITE_LOG2 = 0.216

# Shadow contrast: a descriptive measurement of the record (low = lifted, washed-out shadows); it
# is no longer part of the meter (its lift term had no bound: crushed blacks read as lifted).
SHADOW_FRACTION = 0.05

_LUT_SIZE = 4096
_RATIO_LUT_SIZE = 16384


def natural_spline(knots: np.ndarray, values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The natural cubic spline through ``(knots, values)`` evaluated at ``x`` (clamped to the knots).

    Raises
    ------
    ValueError
        If there are fewer than three knots, or they do not increase.
    """
    k = np.asarray(knots, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if k.size < 3 or k.shape != v.shape or np.any(np.diff(k) <= 0):
        raise ValueError("a natural spline needs at least three increasing knots, one value each")
    h = np.diff(k)
    n = k.size
    # Second derivatives: zero at both ends, continuity of the slope inside.
    a = np.zeros((n, n))
    b = np.zeros(n)
    a[0, 0] = a[-1, -1] = 1.0
    for i in range(1, n - 1):
        a[i, i - 1], a[i, i], a[i, i + 1] = h[i - 1], 2 * (h[i - 1] + h[i]), h[i]
        b[i] = 6 * ((v[i + 1] - v[i]) / h[i] - (v[i] - v[i - 1]) / h[i - 1])
    m = np.linalg.solve(a, b)
    x = np.clip(np.asarray(x, dtype=np.float64), k[0], k[-1])
    i = np.clip(np.searchsorted(k, x, side="right") - 1, 0, n - 2)
    t0, t1, hi = x - k[i], k[i + 1] - x, h[i]
    return (m[i] * t1**3 + m[i + 1] * t0**3) / (6 * hi) + (v[i] / hi - m[i] * hi / 6) * t1 + (
        v[i + 1] / hi - m[i + 1] * hi / 6) * t0


def _tone_lut() -> tuple[np.ndarray, np.ndarray]:
    """(scene, display) samples of the tone curve in linear light, both increasing, 0 -> 0 and 1 -> 1."""
    scene = np.concatenate([[0.0], np.logspace(-20, 0, _LUT_SIZE - 1, base=2.0)])
    encoded = natural_spline(np.asarray(TONE_CURVE_KNOTS), np.asarray(TONE_CURVE_VALUES),
                             linear_to_srgb(scene.astype(np.float32)).astype(np.float64))
    display = srgb_to_linear(np.clip(encoded, 0.0, 1.0).astype(np.float32)).astype(np.float64)
    if np.any(np.diff(display) < 0):
        raise ValueError("the tone curve's values must make an increasing curve")
    return scene, display


_SCENE, _DISPLAY = _tone_lut()


def tone_curve(scene_linear: np.ndarray | float) -> np.ndarray:
    """Scene-linear light to display-linear light through the camera-like curve (both clipped to [0, 1])."""
    return np.interp(np.asarray(scene_linear, dtype=np.float64), _SCENE, _DISPLAY)


#: The tone curve and its inverse as tables over the square root of light (fine where the curve bends most, in the
#: shadows), for :func:`develop` and :func:`undevelop`: linear interpolation in them is within 1e-6 of
#: :func:`tone_curve`. One-row images, so that OpenCV's remap interpolates in them (one pass in C, not a gather per
#: pixel).
_TABLE_SIZE = 4097
_TABLE_X = np.linspace(0.0, 1.0, _TABLE_SIZE) ** 2
_DEVELOP_TABLE = np.interp(_TABLE_X, _SCENE, _DISPLAY).astype(np.float32)[None, :]
_UNDEVELOP_TABLE = np.interp(_TABLE_X, _DISPLAY, _SCENE).astype(np.float32)[None, :]
_REMAP_MAX = 32767


def _through(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """A float32 plane in [0, 1] through a curve's table."""
    u = cv2.sqrt(x)
    u *= np.float32(_TABLE_SIZE - 1)
    return cv2.remap(table, u, np.zeros_like(u), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _film_like(rgb: np.ndarray, table: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """RGB through a curve's table, hue-preserving (:func:`develop`); float32, ``out`` as there."""
    shape = np.shape(rgb)
    planes = np.asarray(rgb, np.float32)
    n = planes.size // 3
    if planes.ndim != 3 or max(planes.shape[:2]) >= _REMAP_MAX:  # OpenCV's remap takes under 32767 a side
        width = min(n, 4096)
        planes = np.resize(planes.reshape(-1, 3), (-(-n // width) * width, 3)).reshape(-1, width, 3)
    r, g, b = cv2.split(np.ascontiguousarray(planes))
    for c in (r, g, b):
        np.clip(c, 0.0, 1.0, out=c)
    hi = cv2.max(cv2.max(r, g), b)
    lo = cv2.min(cv2.min(r, g), b)
    new_lo = _through(lo, table)
    span = cv2.subtract(hi, lo)
    span += np.float32(1e-20)  # a grey pixel's 0 / 0: its scale is 0, and it is the curve's own grey
    scale = cv2.divide(cv2.subtract(_through(hi, table), new_lo), span)
    for c in (r, g, b):
        cv2.subtract(c, lo, dst=c)
        cv2.multiply(c, scale, dst=c)
        cv2.add(c, new_lo, dst=c)
    if out is not None and out.shape == planes.shape and out.dtype == np.float32 and out.flags.c_contiguous:
        return cv2.merge([r, g, b], dst=out)
    result = cv2.merge([r, g, b]).reshape(-1, 3)[:n].reshape(shape)
    if out is None:
        return result
    out[...] = result
    return out


def develop(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Scene-linear RGB to display-linear RGB through the camera-like curve, as a raw converter develops a RAW.

    The curve (:func:`tone_curve`: shadows held down, mid-tones lifted, a soft shoulder to white) is the one the
    meter's well-exposed photograph is defined through (:data:`KEY_LOG2`: its key lands at sRGB 118), applied
    hue-preserving as Adobe's film-like RGB tone and RawTherapee's film-like curve mode apply one: each pixel's
    brightest and darkest channels through the curve, the middle one kept at its place between them (so a colour
    keeps its hue; a grey is the curve's own). Values are clipped to [0, 1] first.

    Parameters
    ----------
    rgb : ndarray, float32, (H, W, 3) or (N, 3)
        Scene-linear light, 1.0 = white.
    out : ndarray, optional
        Where to write (may be ``rgb``).

    Returns
    -------
    ndarray, float32, the shape of ``rgb``
    """
    return _film_like(rgb, _DEVELOP_TABLE, out)


def undevelop(display_linear: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`develop` undone: the scene light (float32) a display-linear RGB picture was developed from through the
    camera-like curve, hue-preserving as it develops (each pixel's brightest and darkest channels back through the
    curve, the middle one at its place between them). Values are clipped to [0, 1] first."""
    return _film_like(display_linear, _UNDEVELOP_TABLE, out)


def inverse_tone_curve(display_linear: np.ndarray | float) -> np.ndarray:
    """Display-linear light (a decoded JPEG) back to the scene light the camera's curve made it from.

    Bounded: 0 stays 0 and display white (1.0) is scene white; values are clipped to [0, 1].
    """
    return np.interp(np.asarray(display_linear, dtype=np.float64), _DISPLAY, _SCENE)


def display_push_ev(ev: float, level: float | None = None) -> float:
    """A push of ``ev`` EV of scene light (> 0) as the gain on a rendered source's display light, in EV.

    A rendered source is brightened by a gain on its display light (its highlights rolled off by the
    renderer's shoulder), but its exposure is metered, and the push decided, in the scene light of the
    camera-like curve, which is steeper than 1:1 below the key (log-log slope 1.3-1.6 from 2 EV under to
    the key): a display gain of ``ev`` moves the key only about ``ev / 1.4`` of scene light, and a JPEG
    developed 1.5 EV under was delivered about 0.6 EV under (``benchmarks/rendered_push.py``). This is the
    display gain that moves ``level`` (display-linear: the median of the source's brightest channel,
    :func:`~pipeline.imaging.render.source_level`, the level the curve acts on) as the push moves its scene
    light, read off the curve (nothing fitted), the level landing no higher than a photograph's white point
    (:data:`WHITE_LOG2`). Without a level the push is taken to correct the whole offset of a photograph's key
    (it lands on :data:`KEY_LOG2`). ``ev`` <= 0 is returned as it is.
    """
    if not ev > 0.0:
        return ev
    start = KEY_LOG2 - ev if level is None else math.log2(max(float(inverse_tone_curve(level)), 2.0**-24))
    end = min(start + ev, WHITE_LOG2)
    return max(0.0, float(math.log2(float(tone_curve(2.0**end)) / max(float(tone_curve(2.0**start)), 2.0**-24))))


def darkening_curve(gain: float, size: int = _LUT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` samples of a rendered source's darkening by ``gain`` (< 1) in its scene light.

    ``y = tone_curve(gain * inverse_tone_curve(x))`` on display-linear ``x`` in [0, 1]: the light is
    taken back through the camera-like curve, scaled, and developed again. A photo over-exposed before
    its camera's curve is undone this way, its whites kept nearer white and its mid-tones' contrast kept,
    where a gain on the display light (the same ``gain`` on every tone) turns white to grey. For
    :func:`darken_display_referred`.

    Raises
    ------
    ValueError
        If ``gain`` is not in (0, 1).
    """
    if not 0.0 < gain < 1.0:
        raise ValueError(f"a darkening's gain must be in (0, 1), got {gain}")
    x = np.linspace(0.0, 1.0, size)
    return x, tone_curve(gain * inverse_tone_curve(x))


@functools.lru_cache(maxsize=8)
def _darkening_ratio(gain: float) -> np.ndarray:
    """The darkening curve over the level (:func:`darkening_curve`), at 16384 steps, float32, read-only.

    Looked up by a pixel's brightest channel's nearest step (the ratio is smooth: within 1.3e-4 of
    interpolating it, at a third of the cost); made once per gain, not once per strip of a rendition.
    """
    xs, ys = darkening_curve(gain, _RATIO_LUT_SIZE)
    ratio = np.divide(ys, xs, out=np.full_like(ys, gain), where=xs > 0).astype(np.float32)
    ratio.flags.writeable = False
    return ratio


def darken_display_referred(rgb: np.ndarray, gain: float, out: np.ndarray | None = None,
                            split: LevelSplit | None = None) -> np.ndarray:
    """Darken a rendered source's display-linear RGB by ``gain`` (< 1) in its scene light (:func:`darkening_curve`).

    The curve sets each pixel's brightest channel and the other two are scaled with it, as the renderer's
    highlight shoulder does: hue and saturation are kept. (Setting the darkest channel by the curve too, as
    RawTherapee's film-like curve develops, saturates the near-white skin of a bright portrait to pink.)
    ``out`` may be ``rgb`` (in place); float32 or float64, (..., 3), values in [0, 1] (clipped).

    ``split``: the picture's :func:`split_level` (its rows of ``rgb``): the curve then sets the base's level, and the
    pixel's fine detail is kept at its displayed contrast where the curve would steepen it (see :func:`split_level`).
    Without, each pixel is set alone, exactly.
    """
    rgb = np.asarray(rgb)
    dtype = rgb.dtype if rgb.dtype in (np.float32, np.float64) else np.float64
    src = np.clip(rgb, 0.0, 1.0).astype(dtype, copy=False)
    result = out if out is not None else np.empty(src.shape, dtype=dtype)
    level = brightest_channel(src)
    if split is None:
        ratio = _darkening_ratio(float(gain))
        index = (level * np.float32(_RATIO_LUT_SIZE - 1) + np.float32(0.5)).astype(np.intp)
        np.multiply(src, ratio[index][..., None], out=result)
        return result
    curve, slope = _encoded_darkening(float(gain))
    index = (np.clip(split.base, 0.0, 1.0) * np.float32(curve.size - 1) + np.float32(0.5)).astype(np.intp)
    darkened = slope[index]
    darkened *= split.detail
    darkened += curve[index]
    ratio = np.divide(srgb_to_linear(np.clip(darkened, 0.0, 1.0)), level, out=np.full(level.shape, gain, np.float32),
                      where=level > 0)
    np.multiply(src, ratio[..., None], out=result)
    return result


#: A darkening's fine detail: what a rendered source's level does within this many pixels ...
DETAIL_RADIUS_PX = 4
#: ... by less than about this many 8-bit sRGB codes (the guided filter's regularisation, as a standard deviation).
DETAIL_CODES = 6.0


class LevelSplit(NamedTuple):
    """A rendered picture's sRGB-encoded level (each pixel's brightest channel) as :func:`split_level` splits it:
    ``base``, the level with its fine detail smoothed away, and ``detail``, the level less its base; (H, W) float32."""

    base: np.ndarray
    detail: np.ndarray


def encoded_level(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's brightest channel of display-linear ``rgb`` (H, W, 3), sRGB-encoded (float32, (H, W)): the level a
    rendered source's darkening sets (:func:`darken_display_referred`) and :func:`split_level` splits.

    :func:`~pipeline.imaging.color.linear_to_srgb`'s values (within a float32 step) by OpenCV's power, in place on
    the one plane: a quarter of the time at a rendition's size."""
    level = np.clip(brightest_channel(np.asarray(rgb, dtype=np.float32)), 0.0, 1.0)
    toe = level * np.float32(12.92)
    cv2.pow(level, 1.0 / 2.4, dst=level)
    level *= np.float32(1.055)
    level -= np.float32(0.055)
    np.copyto(level, toe, where=toe <= np.float32(0.0031308 * 12.92))
    return level


#: The rows either side of a row that its split reads: the guided filter's two boxes.
DETAIL_REACH = 2 * DETAIL_RADIUS_PX


def split_level(level: np.ndarray, rows: tuple[int, int] | None = None) -> LevelSplit:
    """A rendered source's :func:`encoded_level` (H, W) split into the base :func:`darken_display_referred` sets by
    the curve and the fine detail it keeps; with ``rows`` ``(y0, y1)``, those rows' split alone, read from
    them and :data:`DETAIL_REACH` rows either side: the whole picture's rows, to the bit.

    Near white a darkening in scene light steepens the tones the camera's shoulder compressed: one 8-bit step of a
    JPEG at 250 of 255 becomes 3 steps, at 254 5.5 (a 1.44 EV darkening), so the source's noise, its compression's
    blocks and its 8-bit steps, all below what the eye saw in it, come out 3-6 times stronger: an over-exposed
    group photo's sky, darkened, turned mottled grey. The base is the level through a guided filter guided by
    itself (He, Sun and Tang 2010: a box of :data:`DETAIL_RADIUS_PX`, regularised by :data:`DETAIL_CODES`): it
    keeps an edge of more contrast than that and smooths less. The pixel's difference from the base then keeps its
    displayed contrast where the curve steepens (the curve's slope capped at 1, in encoded values); elsewhere it
    follows the slope, so a smooth tone or an edge is set as each pixel alone sets it. On the accuracy corpus's
    JPEG twins developed 1-2 EV over, darkened by their offset against their 0 EV twin (sRGB codes; medians; 47
    held-out twins, 29 tuning): the detail's error 1.60 -> 1.31 (1.81 -> 1.41), the noise of areas smooth and
    bright in the truth 1.24 -> 0.58 against the truth's own 0.87 (1.45 -> 0.67 against 0.89), the mean error
    10.21 -> 10.06 (11.38 -> 11.28). The corpus's DNG twins developed by darktable-cli, a curve nothing was fitted
    on (held out, 47): detail 1.13 -> 1.04, noise 0.98 -> 0.66 against 0.77, mean 12.10 -> 12.12
    (``benchmarks/rendered_detail.py --darktable``). Not fitted: radius 2 to 8 and 3 to 24 codes all did as well on
    the tuning twins.
    """
    h = level.shape[0]
    y0, y1 = (0, h) if rows is None else rows
    a0, a1 = max(0, y0 - DETAIL_REACH), min(h, y1 + DETAIL_REACH)
    part = level[a0:a1]
    box = (2 * DETAIL_RADIUS_PX + 1, 2 * DETAIL_RADIUS_PX + 1)
    mean = cv2.boxFilter(part, -1, box, borderType=cv2.BORDER_REFLECT)
    var = cv2.boxFilter(part * part, -1, box, borderType=cv2.BORDER_REFLECT)
    var -= mean * mean
    a = var / (var + np.float32((DETAIL_CODES / 255.0) ** 2))
    mean -= a * mean  # b
    base = cv2.boxFilter(a, -1, box, borderType=cv2.BORDER_REFLECT)[y0 - a0 : y1 - a0]
    base *= level[y0:y1]
    base += cv2.boxFilter(mean, -1, box, borderType=cv2.BORDER_REFLECT)[y0 - a0 : y1 - a0]
    return LevelSplit(base, level[y0:y1] - base)


@functools.lru_cache(maxsize=8)
def _encoded_darkening(gain: float) -> tuple[np.ndarray, np.ndarray]:
    """The darkening curve on sRGB-encoded levels (16384 steps of [0, 1], looked up at the nearest: within 0.05 of an
    8-bit step where the curve is steepest) and its slope capped at 1, float32."""
    grid = np.linspace(0.0, 1.0, _RATIO_LUT_SIZE)
    linear = srgb_to_linear(grid.astype(np.float32)).astype(np.float64)
    curve = linear_to_srgb(tone_curve(gain * inverse_tone_curve(linear)).astype(np.float32)).astype(np.float64)
    slope = np.minimum(np.gradient(curve, grid), 1.0)
    return curve.astype(np.float32), slope.astype(np.float32)


@functools.lru_cache(maxsize=32)
def _balance_ratio(gain: float, encoded: bool = False) -> np.ndarray:
    """What a white-balance ``gain`` multiplies a rendered source's channel by, at each of 16384 display-linear
    levels (:func:`balance_display_referred`), or sRGB-encoded ones (``encoded``), float32, read-only."""
    x = np.linspace(0.0, 1.0, _RATIO_LUT_SIZE)
    if encoded:
        x = srgb_to_linear(x).astype(np.float64)
    scene = tone_curve(np.clip(gain * inverse_tone_curve(x), 0.0, 1.0))
    by_scene = np.divide(scene, x, out=np.full_like(x, gain), where=x > 0)
    ratio = np.where(np.abs(np.log(np.maximum(by_scene, 1e-12))) < abs(math.log(gain)), by_scene, gain)
    ratio = ratio.astype(np.float32)
    ratio.flags.writeable = False
    return ratio


def release_curves() -> None:
    """Drop the curves cached per gain (:func:`_darkening_ratio`, :func:`_encoded_darkening`, :func:`_balance_ratio`).

    Planning fills them (a curve for each white-balance gain and darkening it judges a frame's skin and highlights
    under), about 3 MB once a shoot has more than a few dozen corrected frames, and nothing after it needs them
    at once: held through the outputs, they were a tenth of the driver's growth from 100 to 10,000 images
    (RESULTS.md, target 5). A later use makes its curve again.
    """
    for cached in (_darkening_ratio, _encoded_darkening, _balance_ratio):
        cached.cache_clear()


def balance_display_referred(rgb: np.ndarray, gains: tuple[float, float, float] | np.ndarray,
                             out: np.ndarray | None = None, split: LevelSplit | None = None) -> np.ndarray:
    """A white balance's per-channel ``gains`` on a rendered source's display-linear RGB: each channel moved by its
    gain on the display light, or through the camera-like curve's scene light, whichever moves it less, both read
    at the pixel's brightest channel.

    The cast was read in scene light (a camera balances before its curve); the curve's shoulder compresses a
    bright surface's cast, so the scene's gain on the display light over-corrects the highlights: the espresso's
    white cup, read 112 mired warm under the base chart, was delivered cyan (its brightest pixels' mean sRGB 209,
    243, 246; as shot 247, 229, 210). In the toe the curve steepens, and a real camera's curve is flatter there
    than the fitted one: the display gain moves those tones less and fits better. Where the two agree (the
    mid-tones) nothing changes. How far the shoulder has compressed a pixel's colour is read at its brightest
    channel, as a film-like curve compresses it: each channel's own level would move a bright skin's blue by the
    full gain and its red by the shoulder's, and turned a face of a group photo whose warm cast was corrected
    magenta. Nothing fitted.

    Measured against renders of one raw with the right white balance, with the gains that bring the wrong
    render's mid-tones onto the right one's (median CIELAB a*b* error at display luminance 0.3-0.6 and 0.6-1):
    the shared pair (tests/test_rendered_white_balance.py) 11.9 and 26.3 on the display light, 6.6 and 10.2 so;
    two camera pairs nothing was tuned on (mahmoudnafifi/WB_sRGB's examples from the Rendered WB Set 2 and Cube+
    datasets, a phone's and a Canon's) 31.8 and 31.6 -> 21.0 and 20.6, 8.7 and 35.8 -> 8.1 and 20.9; the shadows
    and mid-tones as the display light leaves them or closer. Each channel at its own level gave 10.3 and 12.4,
    22.1 and 21.2, 8.3 and 21.4. The accuracy corpus's cast twins developed by RawTherapee, with the plan's gains
    (median a*b* error against the uncast twin, held out / tuning): 8.61 / 8.21 on the display light, 7.41 / 7.94
    so, 7.65 / 7.71 each channel at its own level (which lands their brightest tones closer). ``out`` may be
    ``rgb`` (in place); float32 or float64 (..., 3).

    ``split``: the picture's :func:`split_level` (its pixels of ``rgb``): the gains are then read at the base's
    level, so a pixel's fine detail is scaled as its neighbourhood is, not steepened. Near white a gain under 1
    moves a channel through the curve's shoulder, whose inverse is steep: one 8-bit step at 250 of 255 becomes
    2.5 steps for a gain of 0.6 (at 254, 3.4), and a strong correction's chroma noise rose in bright areas.
    On the accuracy corpus's cast twins developed by RawTherapee, balanced by the truth's gains (medians, 8-bit
    codes, each pixel alone -> read at the base; held out, 70 / tuning, 43): chroma noise where the truth is
    smooth and bright 0.92 -> 0.81 against the truth's 0.80 (0.99 -> 0.95 against 0.91), chroma detail error
    1.17 -> 1.16 (1.60 -> 1.59), mean error 3.64 -> 3.62 (3.74 -> 3.74). Their DNG twins developed by
    darktable-cli, whose curve steepens less near white: 0.96 -> 0.96 against 0.97 (1.15 -> 1.12 against 1.09),
    mean error 3.09 -> 3.08 (``benchmarks/rendered_detail.py --darktable``). Nothing fitted: the darkening's split.
    Without, each pixel is read at its own brightest channel, exactly.
    """
    rgb = np.asarray(rgb)
    dtype = rgb.dtype if rgb.dtype in (np.float32, np.float64) else np.float64
    result = out if out is not None else np.empty(rgb.shape, dtype=dtype)
    level = brightest_channel(rgb) if split is None else split.base
    index = (np.clip(level, 0.0, 1.0) * np.float32(_RATIO_LUT_SIZE - 1) + np.float32(0.5)).astype(np.intp)
    for c in range(3):
        np.multiply(rgb[..., c], _balance_ratio(float(gains[c]), split is not None)[index], out=result[..., c])
    return result


def balanced(rgb: np.ndarray, gains: tuple[float, float, float] | np.ndarray, rendered: bool) -> np.ndarray:
    """Linear RGB colours (..., 3) as the renderer's white-balance ``gains`` leave them: times the gains, but a
    rendered source's by :func:`balance_display_referred`."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rendered:
        return balance_display_referred(rgb, np.asarray(gains, dtype=np.float64))
    return rgb * np.asarray(gains, dtype=np.float64)


def exposed(rgb: np.ndarray, ev: float, rendered: bool) -> np.ndarray:
    """Linear RGB colours (..., 3) as the renderer's exposure correction of ``ev`` leaves them (unclipped):
    ``2**ev`` times them, but a rendered source's darkening in its scene light (:func:`darken_display_referred`)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rendered and ev < 0:
        return darken_display_referred(rgb, float(2.0**ev))
    return rgb * 2.0**ev


def is_rendered(kind: SourceKind) -> bool:
    """Whether a source kind went through a tone curve (decode_raw reads RASTER files with Pillow)."""
    return kind is SourceKind.RASTER


def scene_light(luminance: np.ndarray | float, rendered: bool) -> np.ndarray:
    """Linear luminance of a proxy as scene light: through :func:`inverse_tone_curve` for rendered sources."""
    return inverse_tone_curve(luminance) if rendered else np.asarray(luminance, dtype=np.float64)


def metering_reference() -> float:
    """The median scene-linear luminance of a well-exposed photograph (``2**KEY_LOG2``): the meter's 0 EV."""
    return 2.0**KEY_LOG2


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
    luma = check_luma(luma)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return shadow_contrast_of_working_copy(resize_long_edge(luma, WORK_LONG_EDGE), fraction)


def shadow_contrast_of_working_copy(small: np.ndarray, fraction: float = SHADOW_FRACTION) -> float:
    """:func:`shadow_contrast_log2` of luminance already at :data:`WORK_LONG_EDGE` (unchecked)."""
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


def ev_of(metered: float, reference: float) -> float:
    """Stops between a metered linear luminance and the reference: ``log2(metered / reference)``.

    Raises
    ------
    ValueError
        If ``reference`` is not positive.
    """
    if not reference > 0:
        raise ValueError(f"exposure reference must be a positive linear luminance, got {reference}")
    return math.log2(metered / reference)


#: Least share of the pixels above pure black for a frame to be metered at all: a subject on a black backdrop
#: fills a tenth of the frame or more; under a hundredth lit, the frame is a lens cap or a black slate.
MIN_LIT_SHARE = 0.01


def key_and_white(luma: np.ndarray) -> tuple[float, float]:
    """log2 of the median (the key) and of the 99.9th percentile (the white point) of linear luminance.

    On a regular subset of the pixels (:func:`~pipeline.imaging.measure.common.subsample`). A frame
    at least half pure black is keyed on its lit pixels (:func:`subject_key`).

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8.
    InputError
        If almost nothing in the image is above pure black: there is no exposure to meter.
    """
    sub = subsample(check_luma(luma))
    key, white = np.percentile(sub, [50.0, WHITE_PERCENTILE])
    return key_and_white_log2(subject_key(sub, float(key)), float(white))


def subject_key(sub: np.ndarray, median: float) -> float:
    """The key of a frame whose pixel subset ``sub`` has this ``median``: the median itself, or when at least
    half the frame is pure black (an object photographed on black velvet, a night sky), the median of its lit
    pixels: the subject is what the photographer exposed for, and a key of 0 reads nothing.

    Raises
    ------
    InputError
        If fewer than :data:`MIN_LIT_SHARE` of the pixels are above pure black.
    """
    if median > 0:
        return median
    lit = sub[sub > 0]
    if lit.size < MIN_LIT_SHARE * sub.size or lit.size == 0:
        raise InputError("the image is pure black but for a few pixels: there is no exposure to meter")
    return float(np.median(lit))


def key_and_white_log2(key: float, white: float) -> tuple[float, float]:
    """:func:`key_and_white` of the two percentiles when they are read already (with others, in one partition).

    Raises
    ------
    InputError
        If the key is not above 0 (:func:`subject_key` reads the key of a frame half pure black).
    """
    if not key > 0:
        raise InputError("at least half of the image is pure black: there is no exposure to meter")
    return math.log2(key), math.log2(white)


def meter_log2(key_log2: float, white_log2: float, white_spread: float = WHITE_SPREAD_EV,
               channel_white_log2: float | None = None) -> float:
    """The exposure offset (EV, + = over) that the key and the white point read together.

    Each reading says where the image sits against a well-exposed photograph:
    the key ``key_log2 - KEY_LOG2`` (spread :data:`KEY_SPREAD_EV`) and the white
    point ``white_log2 - WHITE_LOG2`` (spread :data:`WHITE_SPREAD_EV`).

    - Both readings count, weighted by their inverse squared spreads: the most
      likely offset when they are independent.
    - But the image is never read darker than its white point says: a night
      scene, a dark interior, a low-key portrait whose highlights reach where a
      well-exposed photograph's do is not brightened because its median is
      dark (on the tuning split this kept 63 % of the well-exposed RAW twins
      within 0.3 EV, against 41 % for the average alone).
    - Nor darker than its brightest channel's white point says (``channel_white_log2``
      against :data:`CHANNEL_WHITE_LOG2`): a saturated colour at full scale leaves a
      push no room, though its luminance is low.
    - A white point within :data:`WHITE_FADE_EV` of full scale may be clipped
      (at least that bright, no more is known): its weight in the average fades
      to 0 there, linearly in stops, so the reading moves continuously as an
      image is pushed into clipping. Clipped, it still floors the reading at
      its own (about +0.3 EV), but how far over it is is not read: neither
      the clipped share nor the slope of the highlights under the clip tells
      a photograph pushed over from one published clipped (9 of the 27 tuning
      photos clip as steeply; ``benchmarks/fit_exposure_clip.py``), so a low-key
      photo pushed 2 EV over reads about +0.3.

    Parameters
    ----------
    key_log2, white_log2 : float
        From :func:`key_and_white`, in scene light.
    white_spread : float
        The white point's spread: :data:`RENDERED_WHITE_SPREAD_EV` for a rendered source.
    channel_white_log2 : float, optional
        The white point of the brightest channel (:func:`channel_white`), in scene light: the reading is never
        darker than it says against :data:`CHANNEL_WHITE_LOG2` (a saturated colour at full scale is at white,
        whatever its luminance). None: luminance alone, as before.

    Returns
    -------
    float
        Negative is under-exposed. Adding ``k`` to both readings adds exactly
        ``k`` while the white point stays :data:`WHITE_FADE_EV` below full
        scale (the maximum and the average of two readings both move with them).
    """
    by_key = key_log2 - KEY_LOG2
    by_white = white_log2 - WHITE_LOG2
    trust = min(1.0, max(0.0, -white_log2 / WHITE_FADE_EV))
    wk, ww = KEY_SPREAD_EV**-2, trust * white_spread**-2
    reading = max((wk * by_key + ww * by_white) / (wk + ww), by_white)
    if channel_white_log2 is not None:
        reading = max(reading, channel_white_log2 - CHANNEL_WHITE_LOG2)
    return reading


def channel_white(rgb: np.ndarray) -> float:
    """The white point of the brightest channel: the :data:`WHITE_PERCENTILE` of each pixel's largest channel of
    ``rgb`` (an (N, 3) or (H, W, 3) pixel subset, linear), as :func:`meter_log2` floors its reading with."""
    return float(np.percentile(brightest_channel(np.asarray(rgb)), WHITE_PERCENTILE))


def meter_scene_linear(luma: np.ndarray) -> float:
    """The meter of scene-linear sources (RAW proxies): :func:`meter_log2` of their key and white point.

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8.
    InputError
        If almost nothing in the image is above pure black: there is no exposure to meter.
    """
    return meter_log2(*key_and_white(luma))


def meter_rendered(luma: np.ndarray) -> float:
    """The meter of rendered sources: the key and white point of their scene light.

    The two percentiles are read on the decoded (display-linear) luminance and
    taken through :func:`inverse_tone_curve`, which is increasing, so they are
    the percentiles of the scene light. Errors as :func:`meter_scene_linear`.
    """
    return meter_rendered_log2(*key_and_white(luma))


def meter_rendered_log2(key_log2: float, white_log2: float) -> float:
    """:func:`meter_rendered` of the display-linear key and white point (:func:`key_and_white`).

    Raises
    ------
    InputError
        If the key is pure black in scene light.
    """
    return meter_log2(*scene_key_and_white_log2(key_log2, white_log2, True), RENDERED_WHITE_SPREAD_EV)


def scene_key_and_white_log2(key_log2: float, white_log2: float, rendered: bool) -> tuple[float, float]:
    """The key and white point (:func:`key_and_white`) in scene light: as read for a scene-linear source, through
    :func:`inverse_tone_curve` for a rendered one (the white point never below the key).

    Raises
    ------
    InputError
        If a rendered source's key is pure black in scene light.
    """
    if not rendered:
        return key_log2, white_log2
    back = inverse_tone_curve(np.array([2.0**key_log2, 2.0**white_log2]))
    if not back[0] > 0:
        raise InputError("at least half of the image is pure black: there is no exposure to meter")
    return math.log2(back[0]), math.log2(max(back[1], back[0]))


def exposure_ev(luma: np.ndarray, rendered: bool) -> float:
    """Signed exposure offset of an image from a well-exposed photograph in EV of scene light.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance of the proxy (display-linear for rendered sources).
    rendered : bool
        True for tone-mapped sources (JPEG, TIFF): :func:`meter_rendered`.
        False for scene-linear RAW proxies: :func:`meter_scene_linear`.

    Returns
    -------
    float
        Negative is under-exposed.

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8.
    InputError
        If at least half the image is pure black: there is no exposure to meter.
    """
    return meter_rendered(luma) if rendered else meter_scene_linear(luma)
