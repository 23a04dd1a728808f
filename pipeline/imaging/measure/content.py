"""What the picture shows, for grouping and framing: perceptual hash, saliency, colour palette.

The hash and saliency read sRGB-encoded luma, where differences are as large as
they look; the palette reads the linear proxy's colours.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.imaging.color import brightest_channel, darkest_channel
from pipeline.imaging.measure.common import (
    WORK_LONG_EDGE,
    check_luma,
    check_rgb,
    encode_luma,
    resize_long_edge,
    subsample,
)
from pipeline.kernel.records import ContentMeasure


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
    luma = check_luma(luma)
    return phash_of_encoded(encode_luma(resize_long_edge(luma, WORK_LONG_EDGE)))


def phash_of_encoded(encoded: np.ndarray) -> str:
    """:func:`phash` of sRGB-encoded luma already at :data:`WORK_LONG_EDGE` (unchecked)."""
    tiny = cv2.resize(encoded, (32, 32), interpolation=cv2.INTER_AREA)
    dct = cv2.dct(tiny.astype(np.float32))[:8, :8]
    bits = (dct > np.median(dct)).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


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


def saliency_centre(encoded: np.ndarray, size: int = 64) -> tuple[float, float]:
    """Centre of the salient region, as fractions of width and height.

    Spectral residual saliency (Hou and Zhang, CVPR 2007): the log amplitude
    spectrum minus its local average keeps what is unexpected in the image;
    back in the image domain that is where the eye goes. The centre is the
    weighted mean of the most salient 5 % of a ``size`` x ``size`` map.

    Parameters
    ----------
    encoded : ndarray, (H, W)
        Gamma-encoded luminance in [0, 1].
    size : int
        Side of the square saliency map, in pixels (at least 8).

    Returns
    -------
    (x, y) : tuple of float
        In [0, 1], from the left and from the top.

    Raises
    ------
    ValueError
        If ``encoded`` is not a 2-D image of at least 8x8 or ``size`` is below 8.
    """
    encoded = check_luma(encoded)
    if size < 8:
        raise ValueError(f"the saliency map needs at least 8x8 pixels, got size={size}")
    small = cv2.resize(encoded, (size, size), interpolation=cv2.INTER_AREA)
    spectrum = np.fft.fft2(small)
    log_amp = np.log(np.abs(spectrum) + 1e-8).astype(np.float32)
    residual = log_amp - cv2.blur(log_amp, (3, 3))
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    sal = cv2.GaussianBlur(sal.astype(np.float32), (0, 0), 2.5)
    keep = sal >= np.quantile(sal, 0.95)
    ys, xs = np.nonzero(keep)
    w = sal[keep]
    return float((xs * w).sum() / w.sum() + 0.5) / size, float((ys * w).sum() / w.sum() + 0.5) / size


#: Palette histogram: colour bins per axis over ``PALETTE_CHROMA_RANGE`` of ln R/G and ln B/G
#: around the frame's median colour (the outer bins take everything beyond).
PALETTE_CHROMA_BINS = 5
PALETTE_CHROMA_RANGE = 1.5
#: Pixels darker than this many stops under the median carry noise, not colour.
_PALETTE_FLOOR_STOPS = 6.0
PALETTE_LEVELS = 15  # one hex digit per bin


def palette(rgb: np.ndarray) -> str | None:
    """The colours a frame shows, in a few hex digits (for grouping the views of one place).

    A histogram of the colours of the pixels that are neither clipped nor deep
    in the shadows: ``(ln R/G, ln B/G)`` less the frame's median colour, in
    ``5 x 5`` bins of ``+-1.5`` (so neither the white balance the camera chose
    nor the exposure counts, only the spread of colours around the median).
    Each bin's share is square-rooted (the Hellinger distance of two palettes
    is then the Euclidean distance of their digits over sqrt 2) and written
    as one hex digit, ``0``-``f``. A histogram of tones was tried beside it and
    left out: the views of one place differ more in tone than two places do.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Linear RGB, 1.0 = white (the analysis proxy).

    Returns
    -------
    str or None
        25 hex digits; None when fewer than 100 pixels qualify.

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image of at least 8x8.
    """
    rgb = check_rgb(rgb)
    sub = subsample(rgb, 40_000).reshape(-1, 3).astype(np.float64)
    luma = sub @ np.array([0.2126, 0.7152, 0.0722])
    median = float(np.median(luma))
    if not median > 0:
        return None
    floor = median * 2.0**-_PALETTE_FLOOR_STOPS
    ok = (brightest_channel(sub) < 0.98) & (darkest_channel(sub) > floor)
    if ok.sum() < 100:
        return None
    px = sub[ok]
    c1, c2 = np.log(px[:, 0] / px[:, 1]), np.log(px[:, 2] / px[:, 1])
    c1 -= np.median(c1)
    c2 -= np.median(c2)
    n, r = PALETTE_CHROMA_BINS, PALETTE_CHROMA_RANGE
    i1 = np.clip(((c1 + r) / (2 * r) * n).astype(int), 0, n - 1)
    i2 = np.clip(((c2 + r) / (2 * r) * n).astype(int), 0, n - 1)
    shares = np.bincount(i1 * n + i2, minlength=n * n) / len(px)
    digits = np.rint(np.sqrt(shares) * PALETTE_LEVELS).astype(int)
    return "".join(f"{d:x}" for d in digits)


def palette_distance(a: str, b: str) -> float:
    """Hellinger distance of two palettes (0: the same colours; 1: no colour in common).

    Raises
    ------
    ValueError
        If the two are not palettes (25 hex digits each).
    """
    if len(a) != len(b) or len(a) != PALETTE_CHROMA_BINS**2:
        raise ValueError(f"not two palettes of {PALETTE_CHROMA_BINS**2} hex digits: {a!r}, {b!r}")
    try:
        da = np.array([int(c, 16) for c in a], dtype=np.float64) / PALETTE_LEVELS
        db = np.array([int(c, 16) for c in b], dtype=np.float64) / PALETTE_LEVELS
    except ValueError:
        raise ValueError(f"a palette is hex digits: {a!r}, {b!r}") from None
    return float(np.linalg.norm(da - db)) / np.sqrt(2.0)


def content_measure(encoded_small: np.ndarray, rgb: np.ndarray | None = None) -> ContentMeasure:
    """The record's content group from sRGB-encoded luma at :data:`WORK_LONG_EDGE` (and the proxy, for the palette).

    Raises
    ------
    ValueError
        If ``encoded_small`` is not a 2-D image of at least 8x8, or ``rgb`` not an RGB image.
    """
    x, y = saliency_centre(encoded_small)
    return ContentMeasure(phash=phash_of_encoded(encoded_small), saliency_x=x, saliency_y=y,
                          palette=None if rgb is None else palette(rgb))
