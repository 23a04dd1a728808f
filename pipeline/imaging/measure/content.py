"""What the picture shows, for grouping and framing: perceptual hash and saliency.

Both read sRGB-encoded luma, where differences are as large as they look.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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
