"""Noise reduction: a picture's own noise, measured at the size it is delivered, taken down where it shows.

A sensor's noise is mostly photon (shot) noise, whose spread grows as the square root of the light: in the square
root of linear light it is about as strong in the shadows as in the highlights, so one level, read from the picture,
holds everywhere (a camera's read noise adds to it only in the deepest shadows). Each rendition is judged at its own
size (a web picture made from a 24 MP frame has averaged most of its noise away; a full-size master has not):

- the level (:func:`noise_levels`): Immerkaer's kernel (its response to a smooth surface is nothing) over blocks of
  16 x 16 pixels, the mean of its magnitude in each; the flattest tenth of the blocks, clear of clipped whites and
  black, holds the noise alone (a picture's texture only ever adds to the others). It reads a demosaiced raster's
  noise low (its finest grain is smoothed by the demosaic): the strengths below were set on that reading, against
  clean twins, so what matters is that it reads alike on every picture of a kind;
- the brightness (the mean of the three roots): each scale of an a trous wavelet (B3 spline, :data:`LEVELS`) shrunk
  by a soft threshold of :data:`LUMA_K` times the noise that scale holds (white noise's share at each scale):
  fine detail above the noise stays, the grain below it goes;
- the colour (red less green, blue less green, in the roots): a camera's colour noise is blotches a few pixels
  wide, which the eye reads as confetti; a guided filter (He et al., 2010) of radius :data:`CHROMA_RADIUS`, guided by
  the cleaned brightness, with :data:`CHROMA_K` times the noise as its threshold: colour follows the picture's
  edges, the blotches in between go.

The constants were chosen on the tuning split of ``benchmarks/noise.py`` (sensor noise put into the mosaics of DNG
twins of real photos, against the clean twins; ``--fit``: ``benchmarks/NOISE_FIT.md``); its held-out split reports
them (``benchmarks/NOISE.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Scales of the a trous wavelet the brightness is cleaned at (2, 4, 8 and 16 px).
LEVELS = 4
#: How much of white noise of spread 1 each scale's detail holds (B3 spline a trous).
LEVEL_SD = (0.8908, 0.2007, 0.0856, 0.0413)
#: The brightness's soft threshold, in the level read by :func:`noise_levels`, at strength 1: from the first at the
#: first level of :data:`SCHEDULE_LEVELS` (a light noise, about ISO 800 of a full-frame camera) to the second at the
#: second (a heavy one, about ISO 12800), in proportion to the level's logarithm between: the heavier the noise, the
#: more of the fine detail under it is noise.
LUMA_K = (1.25, 2.5)
SCHEDULE_LEVELS = (0.006, 0.022)
#: The colour's guided filter: its radius (pixels) and its threshold in the level read, at strength 1.
CHROMA_RADIUS = 4
CHROMA_K = 3.0
#: Blocks the level is read over (pixels), and the share of the flattest the noise is read from (percent).
BLOCK = 16
FLATTEST_PERCENT = 10.0
#: Blocks darker than this on average (the mean of the three roots: 1 % of white in linear light) are not read.
DARKEST_BLOCK = 0.1
#: The colour filter moves a pixel's colour at most this many times the colour noise read: a colour difference
#: larger than the noise (a coloured edge the brightness does not show, a small red detail) keeps its excess.
CHROMA_LIMIT = (4.0, 12.0)  # at the levels of SCHEDULE_LEVELS, as LUMA_K
#: Under these levels (square root of linear light; read as :func:`noise_levels` reads them) the brightness, and the
#: colour, are left alone: a clean picture's fine texture reads that low, and a threshold there takes detail, not
#: noise. On the tuning twins of ``benchmarks/noise.py`` the clean ones read 0.002 (brightness) and 0.0007-0.0009
#: (colour) at the median, those with the lightest noise put in 0.004 and 0.0017 at the least.
MIN_LUMA_LEVEL = 0.0035
MIN_CHROMA_LEVEL = 0.0015
#: Rows a band is cleaned in, and the rows of context each side it needs (the wavelet's and the filter's reach).
BAND_ROWS = 512
REACH = 2 * (2**LEVELS - 1) + 2 * CHROMA_RADIUS + 2
#: Immerkaer's kernel: the sum of two Laplacians, blind to a plane and to a linear ramp.
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
_B3 = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16.0


@dataclass(frozen=True)
class NoiseLevels:
    """A raster's noise, read by :func:`noise_levels`: spreads in the square root of linear light.

    Attributes
    ----------
    luma : float
        Of the brightness (the mean of the three roots).
    red_green, blue_green : float
        Of the colour: the red root less the green, the blue less the green.
    """

    luma: float
    red_green: float
    blue_green: float


def _roots(rgb_linear: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brightness and the two colour differences of ``rgb_linear``'s square roots."""
    t = np.maximum(rgb_linear, np.float32(0.0))
    np.sqrt(t, out=t)
    r, g, b = t[..., 0], t[..., 1], t[..., 2]
    y = r + g
    y += b
    y *= np.float32(1.0 / 3.0)
    return y, r - g, b - g


def _blocks(plane: np.ndarray, reduce: str = "mean") -> np.ndarray:
    """``plane``'s :data:`BLOCK` x :data:`BLOCK` blocks' means (or maxima), flattened (the whole blocks only)."""
    h, w = (plane.shape[0] // BLOCK) * BLOCK, (plane.shape[1] // BLOCK) * BLOCK
    cells = plane[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK)
    return (cells.max(axis=(1, 3)) if reduce == "max" else cells.mean(axis=(1, 3))).ravel()


def _flattest(plane: np.ndarray, usable: np.ndarray) -> float:
    """The noise of ``plane``: Immerkaer's response over the flattest tenth of the ``usable`` blocks."""
    blocks = _blocks(np.abs(cv2.filter2D(plane, -1, _IMMERKAER, borderType=cv2.BORDER_REFLECT)))
    # The mean magnitude of Gaussian noise is sqrt(2/pi) of its spread; the kernel multiplies a spread by 6.
    return float(np.percentile(blocks[usable], FLATTEST_PERCENT)) * math.sqrt(math.pi / 2.0) / 6.0


def noise_levels(rgb_linear: np.ndarray) -> NoiseLevels | None:
    """The noise of a linear RGB raster, at its own scale; None where too little of it is clear of white and black.

    Raises
    ------
    ValueError
        If ``rgb_linear`` is not (H, W, 3).
    """
    if rgb_linear.ndim != 3 or rgb_linear.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3), got {rgb_linear.shape}")
    rgb = np.asarray(rgb_linear, dtype=np.float32)
    if rgb.shape[0] < BLOCK or rgb.shape[1] < BLOCK:
        return None
    planes = _roots(rgb)
    # Clipped whites hold no noise, nor blacks, where the noise is cut off at zero: blocks with a clipped pixel,
    # or darker on average than DARKEST_BLOCK, are not read.
    level = _blocks(planes[0])
    # The largest channel as two maxima of views: numpy's max over the last axis is some 30 times slower.
    brightest = np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    top = float(brightest.max())
    usable = (_blocks(brightest, "max") < np.float32(0.98 * top)) & (level > DARKEST_BLOCK)
    if usable.sum() < 16:
        return None
    return NoiseLevels(*(_flattest(p, usable) for p in planes))


#: A picture's noise is read on a band across its middle (:func:`picture_noise`), the same for the picture rendered
#: whole and in strips: about this many pixels (some 1,000 blocks of 16 px), and from 64 to 512 rows.
NOISE_PIXELS = 300_000


def noise_band(out_w: int, out_h: int) -> tuple[int, int]:
    """The rows of an ``out_w`` x ``out_h`` picture its noise is read on (:data:`NOISE_PIXELS` across its middle)."""
    rows = min(512, max(64, NOISE_PIXELS // max(1, out_w)))
    r0 = max(0, (out_h - rows) // 2)
    return r0, min(out_h, r0 + rows)


def picture_noise(rgb_linear: np.ndarray) -> NoiseLevels | None:
    """:func:`noise_levels` of a picture, read on its :func:`noise_band`: what the renderer reads on each picture it
    makes, and the analysis on the proxy."""
    r0, r1 = noise_band(rgb_linear.shape[1], rgb_linear.shape[0])
    return noise_levels(rgb_linear[r0:r1])


def _atrous_shrink(plane: np.ndarray, level: float, k: float) -> np.ndarray:
    """``plane`` with each a trous scale's detail soft-thresholded at ``k`` times the noise it holds."""
    out = None
    current = plane
    for i in range(LEVELS):
        step = 2**i
        kernel = np.zeros(4 * step + 1, dtype=np.float32)
        kernel[::step] = _B3
        smooth = cv2.sepFilter2D(current, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT)
        detail = current - smooth
        threshold = np.float32(k * level * LEVEL_SD[i])
        # The soft threshold sign(d) * max(|d| - t, 0), as d - clip(d, -t, t): the same floats, fewer passes.
        detail -= np.clip(detail, -threshold, threshold)
        if out is None:
            out = detail
        else:
            out += detail
        current = smooth
    out += current
    return out


def _guided(guide: np.ndarray, planes: tuple[np.ndarray, ...], radius: int, eps: tuple[float, ...]
            ) -> list[np.ndarray]:
    """He et al.'s guided filter of each of ``planes`` by ``guide`` (box windows of ``radius``; the guide's own
    statistics read once for all)."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(a: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(a, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_g = box(guide)
    var = box(guide * guide)
    var -= mean_g * mean_g
    out = []
    for plane, e in zip(planes, eps):
        mean_p = box(plane)
        a = box(guide * plane)
        a -= mean_g * mean_p
        a /= var + np.float32(e)
        mean_p -= a * mean_g  # b
        filtered = box(a)
        filtered *= guide
        filtered += box(mean_p)
        out.append(filtered)
    return out


def scheduled(values: tuple[float, float], level: float) -> float:
    """``values`` at a noise ``level``: the first at or under :data:`SCHEDULE_LEVELS`' first, the second at or over
    its second, log-linear between."""
    lo, hi = SCHEDULE_LEVELS
    t = min(1.0, max(0.0, math.log(max(level, 1e-9) / lo) / math.log(hi / lo)))
    return values[0] + t * (values[1] - values[0])


def _limited(plane: np.ndarray, filtered: np.ndarray, limit: float) -> np.ndarray:
    """``filtered`` (overwritten), but no pixel moved further than ``limit`` from ``plane``'s."""
    filtered -= plane
    np.clip(filtered, np.float32(-limit), np.float32(limit), out=filtered)
    filtered += plane
    return filtered


def _clean_band(band: np.ndarray, levels: NoiseLevels, luminance: float, colour: float) -> np.ndarray:
    y, rg, bg = _roots(band)
    if luminance > 0.0:
        y = _atrous_shrink(y, levels.luma, scheduled(LUMA_K, levels.luma) * luminance)
    if colour > 0.0:
        limit = scheduled(CHROMA_LIMIT, levels.luma) * colour
        smooth_rg, smooth_bg = _guided(y, (rg, bg), CHROMA_RADIUS, ((CHROMA_K * colour * levels.red_green) ** 2,
                                                                     (CHROMA_K * colour * levels.blue_green) ** 2))
        rg = _limited(rg, smooth_rg, limit * levels.red_green)
        bg = _limited(bg, smooth_bg, limit * levels.blue_green)
    g = rg + bg
    g *= np.float32(-1.0 / 3.0)
    g += y
    rg += g
    bg += g
    out = np.empty_like(band)
    for c, root in enumerate((rg, g, bg)):
        np.maximum(root, np.float32(0.0), out=root)
        np.multiply(root, root, out=out[..., c])
    return out


def strengths(levels: NoiseLevels, luminance: float, colour: float) -> tuple[float, float]:
    """The strengths :func:`reduce_noise` applies to a picture of ``levels``: 0 for the brightness, or the colour,
    whose noise reads as a clean photograph's (:data:`MIN_LUMA_LEVEL`, :data:`MIN_CHROMA_LEVEL`)."""
    return (luminance if levels.luma >= MIN_LUMA_LEVEL else 0.0,
            colour if max(levels.red_green, levels.blue_green) >= MIN_CHROMA_LEVEL else 0.0)


def reduce_noise(rgb_linear: np.ndarray, levels: NoiseLevels, luminance: float = 1.0, colour: float = 1.0) -> None:
    """Take ``levels`` of noise out of a linear RGB raster, in place, band by band (the whole picture's result).

    Parameters
    ----------
    rgb_linear : ndarray, (H, W, 3), float32
        Linear light; overwritten.
    levels : NoiseLevels
        Its noise (:func:`noise_levels`, of this raster or of the whole picture it is part of).
    luminance, colour : float
        Strengths, 0 (none) to 2: 1 is the tuned amount (:data:`LUMA_K`, :data:`CHROMA_K`).

    Raises
    ------
    ValueError
        If the raster is not float32 (H, W, 3) or a strength is outside 0-2.
    """
    if rgb_linear.dtype != np.float32 or rgb_linear.ndim != 3 or rgb_linear.shape[2] != 3:
        raise ValueError(f"expected float32 (H, W, 3), got {rgb_linear.dtype} {rgb_linear.shape}")
    for name, value in (("luminance", luminance), ("colour", colour)):
        if not 0.0 <= value <= 2.0:
            raise ValueError(f"{name} strength must be in 0-2, got {value}")
    luminance, colour = strengths(levels, luminance, colour)
    if luminance == 0.0 and colour == 0.0:
        return
    h = rgb_linear.shape[0]
    cleaned = []
    # Each band read with REACH rows of context each side, so the bands put together are the picture cleaned whole.
    for y0 in range(0, h, BAND_ROWS):
        y1 = min(h, y0 + BAND_ROWS)
        a0, a1 = max(0, y0 - REACH), min(h, y1 + REACH)
        cleaned.append((y0, y1, _clean_band(rgb_linear[a0:a1], levels, luminance, colour)[y0 - a0 : y1 - a0]))
        if len(cleaned) > 1:  # the band before is no longer read by any other
            p0, p1, band = cleaned.pop(0)
            rgb_linear[p0:p1] = band
    for p0, p1, band in cleaned:
        rgb_linear[p0:p1] = band
