"""The exposure meter: where an image sits against 0 EV, one meter per kind of source.

The metered value is the median luminance, a rank statistic: scaling the
linear image by ``2**k`` moves ``exposure_ev`` by exactly ``k`` (nothing is
clipped or thresholded on an absolute level, so only real clipping in the
source limits this).

Each kind of source has its own meter, a function with its own 0 EV reference
(:func:`metering_reference`); :func:`exposure_ev` picks it, so a new way to
meter one kind of source replaces one meter and leaves the rest alone.

- Scene-linear RAW proxies (:func:`meter_scene_linear`): ``log2(median /
  reference)``, the reference being mid-grey.
- Rendered sources (JPEG, TIFF from a raw converter; :func:`meter_rendered`)
  went through a tone curve before we linearised them with the sRGB curve,
  and that curve hides an over-exposure: a +1.5 EV push of a FiveK render has
  the same luminance histogram as a high-key portrait that a person calls
  fine (median, key, percentiles, clipping all overlap on the reference set).
  What does change is the shadows: pushed up out of the curve's toe they lose
  local contrast, so the darkest pixels of an over-exposed render are flat and
  washed out. The rendered meter therefore adds a shadow-lift term
  (:func:`shadow_contrast_log2`), scale invariant (so linearity holds), zero
  for any image whose shadows keep normal contrast.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pipeline.imaging.measure.common import WORK_LONG_EDGE, check_luma, resize_long_edge, subsample
from pipeline.kernel.errors import InputError
from pipeline.kernel.records import SourceKind

#: 0 EV of the meter on scene-linear RAW proxies: mid-grey, 18 % reflectance.
RAW_REFERENCE = 0.18
#: 0 EV of the meter on rendered sources (JPEG, TIFF) linearised with the sRGB
#: curve: their tone curve lifts a well-exposed photo's median to 0.47-0.67
#: (calibrated on the shared reference set). This is where the meter reads 0,
#: not the client's target: the chart's ``exposure.target_ev`` is the one target.
RENDERED_REFERENCE = 0.40

# Shadow-lift term of rendered sources, calibrated on the reference set
# (shared/data/exposure): log2 of the median per-pixel log2-luminance
# gradient of the darkest 5 % of a 512-px working copy. Well-exposed renders
# measure >= -2.1 (0.24 per pixel), +1.5 EV FiveK renders and the
# overexposed Flickr shot <= -2.7.
SHADOW_FRACTION = 0.05
SHADOW_CONTRAST_REF_LOG2 = -2.0
SHADOW_LIFT_GAIN = 1.5


def is_rendered(kind: SourceKind) -> bool:
    """Whether a source kind went through a tone curve (decode_raw reads RASTER files with Pillow)."""
    return kind is SourceKind.RASTER


def metering_reference(rendered: bool) -> float:
    """Linear luminance the meter calls 0 EV: :data:`RENDERED_REFERENCE` or :data:`RAW_REFERENCE`."""
    return RENDERED_REFERENCE if rendered else RAW_REFERENCE


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
        raise ValueError(f"exposure target must be a positive linear luminance, got {reference}")
    return math.log2(metered / reference)


def meter_scene_linear(luma: np.ndarray, reference: float, metered: float | None = None) -> float:
    """The meter of scene-linear sources: ``log2(median luminance / reference)``.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance of the proxy.
    reference : float
        Linear luminance that reads 0 EV (> 0).
    metered : float, optional
        The median luminance, when already computed.

    Raises
    ------
    ValueError
        If ``reference`` is not positive or ``luma`` is not a 2-D image of at least 8x8.
    InputError
        If at least half the image is pure black: there is no exposure to meter.
    """
    if not reference > 0:  # before the image: a bad reference is the caller's error, whatever the pixels
        raise ValueError(f"exposure target must be a positive linear luminance, got {reference}")
    luma = check_luma(luma)
    median = float(np.median(subsample(luma))) if metered is None else metered
    if not median > 0:
        raise InputError("at least half of the image is pure black: there is no exposure to meter")
    return ev_of(median, reference)


def meter_rendered(
    luma: np.ndarray, reference: float, metered: float | None = None, shadow_contrast: float | None = None
) -> float:
    """The meter of rendered sources: the scene-linear reading plus the shadow-lift term.

    ``1.5 * max(0, -2.0 - shadow_contrast)`` is added (see the module
    docstring); ``shadow_contrast`` is :func:`shadow_contrast_log2` of this
    image, computed here when not given. Other parameters and errors as
    :func:`meter_scene_linear`.

    Raises
    ------
    ValueError
        If ``reference`` is not positive or ``luma`` is not a 2-D image of at least 8x8.
    InputError
        If at least half the image is pure black.
    """
    ev = meter_scene_linear(luma, reference, metered)
    if shadow_contrast is None:
        shadow_contrast = shadow_contrast_log2(luma)
    return ev + SHADOW_LIFT_GAIN * max(0.0, SHADOW_CONTRAST_REF_LOG2 - shadow_contrast)


def exposure_ev(
    luma: np.ndarray,
    target: float,
    rendered: bool,
    shadow_contrast: float | None = None,
    metered: float | None = None,
) -> float:
    """Signed exposure offset from ``target`` in EV, read by the meter of the source's kind.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance of the proxy.
    target : float
        Linear luminance the median should have (> 0): :func:`metering_reference`.
    rendered : bool
        True for tone-mapped sources (JPEG, TIFF): :func:`meter_rendered`.
        False for scene-linear RAW proxies: :func:`meter_scene_linear`.
    shadow_contrast : float, optional
        :func:`shadow_contrast_log2` of this image, when already computed.
    metered : float, optional
        The median luminance, when already computed.

    Returns
    -------
    float
        Negative is under-exposed. Scaling ``luma`` by ``2**k`` adds exactly ``k``.

    Raises
    ------
    ValueError
        If ``target`` is not positive.
    InputError
        If at least half the image is pure black: there is no exposure to meter.
    """
    if rendered:
        return meter_rendered(luma, target, metered, shadow_contrast)
    return meter_scene_linear(luma, target, metered)
