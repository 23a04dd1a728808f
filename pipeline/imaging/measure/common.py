"""What every measurement topic shares: input checks, working copies, pixel subsets.

The measurements read the scene-linear proxy (Rec.709 primaries, 1.0 = white)
or its luminance. Several of them work on a fixed-size copy instead of the
proxy itself, so their numbers do not depend on the proxy's size; the stage
makes that copy once (:func:`resize_long_edge` to :data:`WORK_LONG_EDGE`) and
hands it to each topic.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pipeline.imaging.color import linear_to_srgb

#: Long edge, in pixels, of the working copy that sharpness, shadow contrast,
#: line tilts, the pHash and saliency are measured on.
WORK_LONG_EDGE = 512


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` as float32, after checking it is an RGB image of at least 8x8.

    Raises
    ------
    ValueError
        If ``rgb`` is not of shape (H>=8, W>=8, 3).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 8 or rgb.shape[1] < 8:
        raise ValueError(f"expected a linear RGB image of shape (H>=8, W>=8, 3), got {rgb.shape}")
    return rgb.astype(np.float32, copy=False)


def check_luma(luma: np.ndarray) -> np.ndarray:
    """``luma`` as float32, after checking it is a single-channel image of at least 8x8.

    Raises
    ------
    ValueError
        If ``luma`` is not 2-D or smaller than 8x8.
    """
    luma = np.asarray(luma)
    if luma.ndim != 2 or luma.shape[0] < 8 or luma.shape[1] < 8:
        raise ValueError(f"expected a 2-D luminance image of at least 8x8, got shape {luma.shape}")
    return luma.astype(np.float32, copy=False)


def resize_long_edge(img: np.ndarray, long_edge: int) -> np.ndarray:
    """Resize so the long edge is ``long_edge`` (area filter down, linear up); no copy when it already is."""
    h, w = img.shape[:2]
    scale = long_edge / max(h, w)
    if abs(scale - 1.0) < 1e-6:
        return img
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(img, size, interpolation=interp)


def subsample(a: np.ndarray, max_pixels: int = 150_000) -> np.ndarray:
    """A regular pixel subset for rank statistics; any fixed subset keeps them scale-equivariant."""
    step = max(1, int(math.sqrt(a.shape[0] * a.shape[1] / max_pixels)))
    return a[::step, ::step]


def encode_luma(luma: np.ndarray) -> np.ndarray:
    """Linear luminance to sRGB-encoded luma in [0, 1] (perceptual, for edges and hashes)."""
    return linear_to_srgb(luma)


#: OpenCV's remap takes maps of fewer than 32767 rows and columns: larger maps go through as rows of this many points.
_REMAP_ROW = 8192


def remap_points(img: np.ndarray, mapx: np.ndarray, mapy: np.ndarray, interpolation: int = cv2.INTER_LINEAR
                 ) -> np.ndarray:
    """``img`` sampled at the points ``mapx``, ``mapy`` (float32 pixel coordinates, any shape; the edge repeated
    beyond it): an array of the maps' shape (and ``img``'s channels). A point's value depends on its coordinates
    alone, so maps OpenCV's remap cannot take whole (32767 rows or columns) go through it as rows of
    :data:`_REMAP_ROW` points."""
    if mapx.ndim == 2 and max(mapx.shape) < 32767:
        return cv2.remap(img, mapx, mapy, interpolation, borderMode=cv2.BORDER_REPLICATE)
    flat = mapx.size
    rows = -(-flat // _REMAP_ROW)
    pad = rows * _REMAP_ROW - flat
    mx = np.concatenate([mapx.ravel(), np.zeros(pad, np.float32)]).reshape(rows, _REMAP_ROW)
    my = np.concatenate([mapy.ravel(), np.zeros(pad, np.float32)]).reshape(rows, _REMAP_ROW)
    out = cv2.remap(img, mx, my, interpolation, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape((rows * _REMAP_ROW,) + out.shape[2:])[:flat].reshape(mapx.shape + img.shape[2:])
