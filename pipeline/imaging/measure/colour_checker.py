"""A ColorChecker in the frame: the light read off its grey patches.

Studios shoot a reference frame with a 24-patch ColorChecker at the start of a
set, and some keep one in the corner of every product shot. Its six grey
patches are the one surface in a photograph known to be neutral, so where one
is in the frame the light is read off them instead of guessed from the scene
(:mod:`pipeline.imaging.measure.colour`'s four cues, which read a warm room as
a warm light): the way a retoucher clicks Lightroom's white-balance dropper on
the chart.

OpenCV's ``mcc`` module finds the chart (its contour detector, no network) on
an 8-bit copy of the proxy; the patches are then read in the proxy's own linear
light. A chart is only believed when the patches look like a ColorChecker's
(:func:`find_colour_checker`): every patch inside the frame, the greys getting
darker from white to black, the lighter middle greys one colour, and, once
balanced on them, the saturated patches near the hues the chart's maker
publishes (a brick wall the detector once took for a chart fails them). The
tolerances are what a chart under one light must satisfy, with room for a
camera's colour matrix and a JPEG's compression; only the greys' drift
(:data:`MAX_GREY_SPREAD`) was set after seeing the shared data's charts, and
the photos without a chart that prove the checks refuse are other files.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.imaging.color import LUMA_709, srgb_to_linear, u16_to_srgb8
from pipeline.imaging.measure.common import subsample
from pipeline.imaging.measure.metering import inverse_tone_curve
from pipeline.imaging.white_balance import cast_mired, linear_srgb_to_lab

#: The 24 patches in the order OpenCV's detector lists them (row by row from dark skin), as X-Rite publishes
#: them in 8-bit sRGB (D65).
REFERENCE_SRGB8 = np.array([
    (115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67), (133, 128, 177), (103, 189, 170),
    (214, 126, 44), (80, 91, 166), (193, 90, 99), (94, 60, 108), (157, 188, 64), (224, 163, 46),
    (56, 61, 150), (70, 148, 73), (175, 54, 60), (231, 199, 31), (187, 86, 149), (8, 133, 161),
    (243, 243, 242), (200, 200, 200), (160, 160, 160), (122, 122, 121), (85, 85, 85), (52, 52, 52),
], dtype=np.float64)
#: The grey row: white, neutral 8, 6.5, 5, 3.5, black.
GREYS = slice(18, 24)
#: The greys the light is read on: the middle four (the white clips first, the black is mostly flare and noise).
LIGHT_GREYS = slice(19, 23)
#: Short edge of the 8-bit copy the detector searches: the detector enlarges a copy with a shorter short side
#: to this itself (its ``minImageSize``), so a smaller copy saves nothing. In benchmarks/colour_checker.py's
#: placements a chart 20 % or 15 % of the frame wide is found in 12 of 12, 12 % wide in 7, 10 % in 3.
DETECT_SHORT_EDGE = 1000
#: Frames longer than this many times their width are not searched (a panorama is no reference frame, and its
#: copy, at :data:`DETECT_SHORT_EDGE` across, would be many megapixels long), nor frames whose proxy is under
#: :data:`MIN_SHORT_EDGE_PX` across (no chart's 24 patches fit).
MAX_ASPECT = 3.0
MIN_SHORT_EDGE_PX = 64
#: The detector thresholds the copy adaptively over windows of these sizes (px): the range of its default nine
#: (23 to 151 px, every 16) at a step of 64. Two windows (23 and 87) had found every chart of
#: benchmarks/colour_checker.py's frames in half the time, but missed 3 more of the accuracy corpus's 40 chart
#: twins (re-exposed DC120 frames; two of the four chart sources there are held out) than the nine; these three
#: find the same 37 of 40 as the nine (the 3 left are +2 EV twins whose greys clip), at 32 against 44 ms a frame.
THRESHOLD_WINDOWS_PX = (23, 87, 151)
THRESHOLD_STEP_PX = THRESHOLD_WINDOWS_PX[1] - THRESHOLD_WINDOWS_PX[0]
#: The detector's best few candidates are checked, best first: its best is sometimes a patterned corner of the
#: frame beside the real chart.
CANDIDATES = 3
#: Share of a patch, about its centre, whose pixels are read (clear of the black frame between patches).
PATCH_CORE = 0.5
#: The middle greys at least a quarter as bright as the lightest may stray this far from the light read on the
#: lightest two (log ratio of red or blue to green). Set after seeing the shared data's real charts drift up to
#: 0.25 from light to dark (an old Kodak's per-channel response, a rendered file's curve; 0.08 refused two).
MAX_GREY_SPREAD = 0.3
#: A saturated patch (reference chroma above :data:`SATURATED_CHROMA`) matches when its hue, balanced on the
#: greys, lies within this many degrees of the reference; a camera's matrix errs by a few degrees, a wrong
#: object by anything.
MAX_HUE_ERROR_DEG = 35.0
SATURATED_CHROMA = 40.0
#: Share of the saturated patches that must match.
MIN_HUE_MATCHES = 0.8
#: A patch channel this close to the brightest the frame holds is clipped (as the colour cues' usable pixels).
CLIP_FRACTION = 0.98
#: The smallest uncertainty claimed for the chart's light (mired): a printed grey is neutral within a few.
MIN_UNCERTAINTY_MIRED = 2.0


@dataclass(frozen=True)
class ColourChecker:
    """A ColorChecker found in a proxy.

    Attributes
    ----------
    light : ndarray, shape (3,)
        Linear RGB of the light on the chart's middle greys (unit green).
    patches : ndarray, shape (24, 3)
        Each patch's median linear RGB, in detector order (:data:`REFERENCE_SRGB8`).
    corners : ndarray, shape (4, 2)
        The chart's outline, as fractions of the proxy's width and height.
    spread_mired : float
        How far apart the middle greys read the light (standard deviation, mired).
    """

    light: np.ndarray
    patches: np.ndarray
    corners: np.ndarray
    spread_mired: float

    @property
    def uncertainty_mired(self) -> float:
        return max(MIN_UNCERTAINTY_MIRED, self.spread_mired)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """The outline's bounding box ``(x0, y0, x1, y1)``, fractions of the width and height, 3 decimals."""
        (x0, y0), (x1, y1) = self.corners.min(axis=0), self.corners.max(axis=0)
        return (round(float(x0), 3), round(float(y0), 3), round(float(x1), 3), round(float(y1), 3))


def _detection_copy(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """An 8-bit BGR sRGB copy of ``rgb`` :data:`DETECT_SHORT_EDGE` across, brightened so its 99th percentile
    is near white (a RAW's scene light is dark), and its scale to ``rgb``."""
    h, w = rgb.shape[:2]
    scale = DETECT_SHORT_EDGE / min(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
    peak = float(np.percentile(subsample(small, 40_000), 99.0))
    gain = min(0.9 / peak, 64.0) if peak > 0 else 1.0
    # To 16 bits and through the sRGB table: the encoding without a power function per pixel. In place on the
    # resized copy, and the table read in RGB order before the swap to BGR: 4-5 ms less a 1000 px copy, the same bits.
    small *= np.float32(gain * 65535.0)
    np.clip(small, 0.0, 65535.0, out=small)
    return cv2.cvtColor(u16_to_srgb8(small.astype(np.uint16)), cv2.COLOR_RGB2BGR), scale


def _patch_values(rgb: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """The median linear RGB of each patch's core, for quads of (24, 4, 2) pixel coordinates in ``rgb``: a 5 x 5
    grid over the middle :data:`PATCH_CORE` of each quad, bilinear between its corners."""
    t = ((np.arange(5) + 0.5) / 5 - 0.5) * PATCH_CORE + 0.5
    u, v = (a.ravel()[None, :, None] for a in np.meshgrid(t, t))
    q = quads[:, None]
    pts = (1 - u) * (1 - v) * q[:, :, 0] + u * (1 - v) * q[:, :, 1] + u * v * q[:, :, 2] + (1 - u) * v * q[:, :, 3]
    x = np.clip(np.rint(pts[..., 0]).astype(int), 0, rgb.shape[1] - 1)
    y = np.clip(np.rint(pts[..., 1]).astype(int), 0, rgb.shape[0] - 1)
    return np.median(rgb[y, x].astype(np.float64), axis=1)


def _hue_deg(lab: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(lab[..., 2], lab[..., 1])) % 360.0


_REFERENCE_LINEAR = srgb_to_linear(REFERENCE_SRGB8 / 255.0).astype(np.float64)
_REFERENCE_LAB = linear_srgb_to_lab(_REFERENCE_LINEAR)


def looks_like_a_chart(patches: np.ndarray, unclipped: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The light on the chart's greys and how far apart they read it (mired), when ``patches`` (24 linear RGB,
    detector order; ``unclipped``, which of them no channel clips) look like a ColorChecker's under one light
    (module docstring); else None.

    The light is read on the two brightest unclipped middle greys, the patches a retoucher's dropper picks:
    the greys of a real chart drift in colour from light to dark (a black level a little off, flare, an old
    camera's or a JPEG's tone curve per channel), and the light ones are the least moved.
    """
    greys = patches[LIGHT_GREYS]
    usable = np.all(greys > 0, axis=1) & unclipped[LIGHT_GREYS]
    if usable.sum() < 2:
        return None
    luma = patches[GREYS] @ LUMA_709
    # White to black, each grey darker than the one before (the white may clip level with neutral 8).
    if not (luma[0] >= luma[1] * 0.98 and np.all(np.diff(luma[1:]) < 0)):
        return None
    greys = greys[usable]
    logs = np.log(greys / greys[:, 1:2])
    light = np.exp(logs[:2].mean(axis=0))
    lit = (greys @ LUMA_709) >= (greys[0] @ LUMA_709) / 4  # a dark grey's colour is mostly the black level's error
    if np.any(np.abs(logs[lit] - np.log(light))[:, [0, 2]] > MAX_GREY_SPREAD):
        return None
    balanced = np.clip(patches, 0.0, None) / light
    # Neutral 8 at its published luminance, so the hues are read at the chart's own lightness.
    lab = linear_srgb_to_lab(balanced * (float(_REFERENCE_LINEAR[19] @ LUMA_709)
                                         / max(float(balanced[19] @ LUMA_709), 1e-12)))
    saturated = np.hypot(_REFERENCE_LAB[:18, 1], _REFERENCE_LAB[:18, 2]) > SATURATED_CHROMA
    error = np.abs((_hue_deg(lab[:18]) - _hue_deg(_REFERENCE_LAB[:18]) + 180.0) % 360.0 - 180.0)
    if np.mean(error[saturated] <= MAX_HUE_ERROR_DEG) < MIN_HUE_MATCHES:
        return None
    return light, float(np.std([cast_mired(g) for g in greys]))


def find_colour_checker(rgb: np.ndarray, *, rendered: bool = False) -> ColourChecker | None:
    """The ColorChecker 24 in ``rgb`` (linear RGB, H x W x 3), or None when there is none to believe.

    ``rendered``: a tone-mapped source (a JPEG), whose patches are read in its scene light, through
    :func:`~pipeline.imaging.measure.metering.inverse_tone_curve`, as the colour cues read it.
    """
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SHORT_EDGE_PX or max(h, w) > MAX_ASPECT * min(h, w):
        return None
    image, scale = _detection_copy(rgb)
    detector = cv2.mcc.CCheckerDetector_create()
    detector.setColorChartType(cv2.mcc.MCC24)
    detector.setUseDnnModel(False)
    params = detector.getDetectionParams()
    params.adaptiveThreshWinSizeMax, params.adaptiveThreshWinSizeStep = THRESHOLD_WINDOWS_PX[-1], THRESHOLD_STEP_PX
    params.minImageSize = DETECT_SHORT_EDGE
    detector.setDetectionParams(params)
    if not detector.process(image, CANDIDATES):
        return None
    h, w = image.shape[:2]
    clip_level = CLIP_FRACTION * float(np.max(rgb))
    for checker in sorted(detector.getListColorChecker(), key=lambda c: c.getCost()):  # best first
        quads = np.asarray(checker.getColorCharts(), dtype=np.float64).reshape(24, 4, 2)
        if np.any(quads < 0) or np.any(quads[..., 0] > w - 1) or np.any(quads[..., 1] > h - 1):
            continue  # part of the chart is outside the frame: the detector extrapolated it
        patches = _patch_values(rgb, quads / scale)
        unclipped = np.all(patches < clip_level, axis=1)
        if rendered:  # per channel and monotonic: the scene light of each patch's median is its pixels' median's
            patches = np.asarray(inverse_tone_curve(patches), dtype=np.float64)
        reading = looks_like_a_chart(patches, unclipped)
        if reading is not None:
            box = np.clip(np.asarray(checker.getBox(), dtype=np.float64).reshape(4, 2) / np.array([w, h]), 0.0, 1.0)
            return ColourChecker(light=reading[0], patches=patches, corners=box, spread_mired=reading[1])
    return None
