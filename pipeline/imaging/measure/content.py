"""What the picture shows, for grouping and framing: perceptual hash and saliency.

Both read sRGB-encoded luma, where differences are as large as they look.
"""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.imaging.measure.common import WORK_LONG_EDGE, check_luma, encode_luma, resize_long_edge
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


def content_measure(encoded_small: np.ndarray) -> ContentMeasure:
    """The record's content group from sRGB-encoded luma at :data:`WORK_LONG_EDGE`.

    Raises
    ------
    ValueError
        If ``encoded_small`` is not a 2-D image of at least 8x8.
    """
    x, y = saliency_centre(encoded_small)
    return ContentMeasure(phash=phash_of_encoded(encoded_small), saliency_x=x, saliency_y=y)
