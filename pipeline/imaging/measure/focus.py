"""Focus and noise: variance of the Laplacian, and a robust noise sigma.

Both are read on sRGB-encoded (or gamma-encoded) values, where a step reads as
large as the eye sees it: a linear image would weigh the highlights' detail
and noise far above the shadows'.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.imaging.denoise import picture_noise
from pipeline.imaging.measure.common import WORK_LONG_EDGE, check_luma, encode_luma, resize_long_edge, subsample
from pipeline.kernel.records import FocusMeasure

# Immerkaer's mask: zero response to any locally planar signal, gain 6 on white noise.
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def laplacian_variance(img: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of one channel, in its units squared.

    The classic focus figure (Pech-Pacheco et al. 2000): higher is sharper.
    The caller fixes the scale (working size, encoding, value range), which is
    what makes two figures comparable; this function only measures.
    """
    return float(cv2.Laplacian(img, cv2.CV_32F, ksize=1).var())


def sharpness_of_encoded(encoded: np.ndarray) -> float:
    """:func:`sharpness` of encoded luma already at :data:`WORK_LONG_EDGE` (unchecked)."""
    return laplacian_variance(encoded) * 1e4  # sRGB-encoded luma in [0, 1]: keep the numbers readable


#: The grid the frame's sharpest part is read in (tiles along the long side, the short side) of the
#: :data:`WORK_LONG_EDGE` copy, and how many of its sharpest tiles are averaged: a few, so that one tile of
#: glints or text does not make a soft frame sharp, and few enough that a small subject in focus (a ladybird on a
#: blade of grass, a figurine before a blurred lamp) is its frame's sharp part.
PEAK_GRID = (8, 6)
PEAK_TILES = 3


def peak_sharpness(lap: np.ndarray) -> float:
    """The sharpness (:func:`sharpness_of_encoded`'s units) of the frame's sharpest part: the mean of the
    :data:`PEAK_TILES` highest variances over a :data:`PEAK_GRID` of tiles of ``lap``, the 4-neighbour Laplacian
    (float32) of encoded luma at :data:`WORK_LONG_EDGE`. A frame too small for the grid's tiles is read whole."""
    h, w = lap.shape
    gx, gy = PEAK_GRID if w >= h else PEAK_GRID[::-1]
    if h < 4 * gy or w < 4 * gx:
        return float(lap.var()) * 1e4
    tiles = sorted(float(lap[i * h // gy:(i + 1) * h // gy, j * w // gx:(j + 1) * w // gx].var())
                   for i in range(gy) for j in range(gx))
    return float(np.mean(tiles[-PEAK_TILES:])) * 1e4


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
    luma = check_luma(luma)
    return sharpness_of_encoded(encode_luma(resize_long_edge(luma, WORK_LONG_EDGE)))


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
        Estimated noise sigma, same units as ``img``; 0 when fewer than 64
        pixels are left between the clip levels.

    Raises
    ------
    ValueError
        If ``img`` is not a 2-D image of at least 8x8.
    """
    img = check_luma(img)
    resp = cv2.filter2D(img, cv2.CV_32F, _IMMERKAER, borderType=cv2.BORDER_REFLECT)
    resp = np.abs(subsample(resp[1:-1, 1:-1], 400_000))
    if clip is not None:
        # Clipped areas are flat whatever the noise; they would pull the median to zero.
        values = subsample(img[1:-1, 1:-1], 400_000)
        resp = resp[(values > clip[0]) & (values < clip[1])]
        if resp.size < 64:
            return 0.0
    return float(np.median(resp)) / (0.6745 * 6.0)


def display_noise_sigma(luma: np.ndarray) -> float:
    """Noise of a linear luminance image in 8-bit code values of a gamma-2.2 encoding.

    What people read noise on; sRGB's curve is within a few percent of it
    above its linear toe and costs four times more. Pixels at 0 or 255 are
    left out (clipped areas are flat whatever the noise).

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8.
    """
    encoded = cv2.pow(check_luma(luma), 1.0 / 2.2)
    return noise_sigma(encoded, clip=(1.0 / 255.0, 254.0 / 255.0)) * 255.0


def focus_measure(luma: np.ndarray, encoded_small: np.ndarray, rgb: np.ndarray | None = None) -> FocusMeasure:
    """The record's focus group of one proxy.

    Parameters
    ----------
    luma : ndarray, (H, W)
        The proxy's linear luminance: noise lives at the pixel scale, so it is
        read on the full proxy.
    encoded_small : ndarray
        sRGB-encoded luma at :data:`WORK_LONG_EDGE`, for the sharpness.
    rgb : ndarray, (H, W, 3), optional
        The proxy's linear RGB: its noise as the renderer reads a picture's (:func:`~pipeline.imaging.denoise.
        picture_noise`), which the plan compares across a camera's frames; not read when not given.

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8.
    """
    lap = cv2.Laplacian(encoded_small, cv2.CV_32F, ksize=1)  # one Laplacian for the whole frame and its tiles
    levels = None if rgb is None else picture_noise(rgb)
    return FocusMeasure(sharpness=float(lap.var()) * 1e4, sharpness_peak=peak_sharpness(lap),
                        noise_sigma=display_noise_sigma(luma),
                        noise_luma=None if levels is None else levels.luma,
                        noise_red_green=None if levels is None else levels.red_green,
                        noise_blue_green=None if levels is None else levels.blue_green)
