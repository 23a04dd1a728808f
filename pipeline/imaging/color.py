"""Colour maths shared by the stages, vectorised in float32.

The working space is scene-linear RGB with Rec.709/sRGB primaries and a D65
white, 1.0 being the sensor's (or the display's) white.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

# Rec.709 luminance weights (the Y of linear sRGB).
LUMA_709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear light (IEC 61966-2-1)."""
    v = np.asarray(v, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """Linear light to sRGB-encoded values; input is clipped to [0, 1]."""
    v = np.asarray(np.clip(np.asarray(v, dtype=np.float32), 0.0, 1.0))
    # The curve in place, the toe copied over it: the values of np.where(v <= 0.0031308, v * 12.92,
    # 1.055 * v ** (1 / 2.4) - 0.055) in float32, without its second whole-image temporary and copy.
    encoded = np.power(v, 1 / 2.4, out=np.empty_like(v))
    encoded *= 1.055
    encoded -= 0.055
    np.copyto(encoded, v * 12.92, where=v <= 0.0031308)
    return encoded


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Relative luminance Y of a linear RGB image (H, W, 3) -> (H, W)."""
    return (np.asarray(rgb, dtype=np.float32) @ LUMA_709).astype(np.float32, copy=False)


def brightest_channel(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's largest channel of an (..., 3) image: the values of ``rgb.max(axis=-1)``.

    Two elementwise maxima of the channels: numpy reduces a last axis of
    three one pixel at a time, five times slower (50 ms on a face's ring).
    """
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def darkest_channel(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's smallest channel of an (..., 3) image: the values of ``rgb.min(axis=-1)``, as fast."""
    return np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def to_srgb8(rgb_linear: np.ndarray) -> np.ndarray:
    """Linear float RGB to 8-bit sRGB (for detectors and previews)."""
    return np.round(linear_to_srgb(rgb_linear) * 255.0).astype(np.uint8)


U16_SCALE = np.float32(1 / 65535)
_lut_lock = threading.Lock()
_srgb8_of_u16: np.ndarray | None = None


def u16_to_linear(rgb16: np.ndarray) -> np.ndarray:
    """16-bit linear values to float32 linear light, 65535 = 1.0 (the proxy's own conversion)."""
    rgb = rgb16.astype(np.float32)
    rgb *= U16_SCALE
    return rgb


def u16_to_srgb8(rgb16: np.ndarray) -> np.ndarray:
    """``to_srgb8(u16_to_linear(rgb16))``, exactly, by table look-up.

    The table is :func:`to_srgb8` of every one of the 65,536 values (made
    once), so each pixel gets the very bits the computation gives it, in a
    quarter of the time (no power function per pixel).

    Raises
    ------
    ValueError
        If ``rgb16`` is not uint16.
    """
    global _srgb8_of_u16
    if rgb16.dtype != np.uint16:
        raise ValueError(f"expected uint16 values, got {rgb16.dtype}")
    if _srgb8_of_u16 is None:
        with _lut_lock:
            if _srgb8_of_u16 is None:
                _srgb8_of_u16 = to_srgb8(u16_to_linear(np.arange(65536, dtype=np.uint16)))
    return _srgb8_of_u16[rgb16]


@dataclass
class Proxy:
    """The analysis proxy of one image; lives only inside its worker.

    Attributes
    ----------
    rgb : ndarray, float32, (H, W, 3)
        Scene-linear working-space RGB, oriented as the image should be viewed.
    scale : float
        Full-resolution pixels per proxy pixel (multiply proxy coordinates by
        this to get full-resolution coordinates of the oriented image).
    rgb16 : ndarray, uint16, (H, W, 3), or None
        The 16-bit values ``rgb`` was made from (``rgb == u16_to_linear(rgb16)``),
        when it was cut from a 16-bit decode (LibRaw's): its 8-bit sRGB is then
        a table look-up.
    opacity : ndarray, float32, (H, W), or None
        For a picture with transparency, each pixel's opacity (``rgb`` is flattened onto white there).
    """

    rgb: np.ndarray
    scale: float
    rgb16: np.ndarray | None = None
    opacity: np.ndarray | None = None

    @property
    def luma(self) -> np.ndarray:
        """The proxy's linear luminance (:func:`luminance`, made once: the measurements and the focus check
        both read it). Shared: a caller that changes it in place must copy it first."""
        cached = getattr(self, "_luma", None)
        if cached is None:
            cached = luminance(self.rgb)
            self._luma = cached
        return cached

    @property
    def srgb8(self) -> np.ndarray:
        """The proxy in 8-bit sRGB (made once)."""
        cached = getattr(self, "_srgb8", None)
        if cached is None:
            cached = to_srgb8(self.rgb) if self.rgb16 is None else u16_to_srgb8(self.rgb16)
            self._srgb8 = cached
        return cached
