"""CMYK renditions for print: the rendered RGB separated through the press's ICC profile.

A magazine, a catalogue or a brochure printer asks for CMYK files made for their press (ISO Coated
v2 / FOGRA39, PSO Coated v3, GRACoL, SWOP), with the profile embedded, as Photoshop's Convert to
Profile makes them. The chart names the profile (a rendition's ``cmyk_profile``); the rendition is
rendered in its RGB ``color_space`` as any other, then LittleCMS (through Pillow's ImageCms)
separates it: relative colorimetric with black point compensation by default (the colours the
press prints kept exactly, the others clipped to the nearest it prints; the press's black is the
picture's black), or the profile's perceptual table. 8-bit, as presses take them.
"""

from __future__ import annotations

import functools
import io
import os

import numpy as np
from PIL import Image, ImageCms

from charts.schema import RenderingIntent
from pipeline.imaging.icc import icc_profile

#: LittleCMS's intents for the chart's names.
_INTENTS = {RenderingIntent.RELATIVE: ImageCms.Intent.RELATIVE_COLORIMETRIC,
            RenderingIntent.PERCEPTUAL: ImageCms.Intent.PERCEPTUAL}


def cmyk_profile_bytes(path: str) -> bytes:
    """The profile's bytes, checked to be a CMYK output profile LittleCMS opens (read once while the file's size
    and time stay the same).

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If it is not an ICC profile, or not one of CMYK output (a monitor's RGB profile, a device link).
    """
    stat = os.stat(path)
    return _profile(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _profile(path: str, _mtime_ns: int, _size: int) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
    except (OSError, ImageCms.PyCMSError) as exc:
        raise ValueError(f"not an ICC profile LittleCMS reads ({exc})") from None
    space, kind = profile.profile.xcolor_space.strip(), profile.profile.device_class
    if space != "CMYK":
        raise ValueError(f"its colour space is {space or 'unknown'}, not CMYK: name the press's or printer's CMYK "
                         "profile")
    if kind != "prtr":
        raise ValueError(f"its class is {kind!r}, not an output ('prtr') profile")
    return data


@functools.lru_cache(maxsize=16)
def _transform(color_space: str, profile: bytes, intent: RenderingIntent, to_press: bool) -> ImageCms.ImageCmsTransform:
    """RGB in ``color_space`` to the press's inks (``to_press``), or back."""
    rgb = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile(color_space)))
    press = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    source, target, modes = (rgb, press, ("RGB", "CMYK")) if to_press else (press, rgb, ("CMYK", "RGB"))
    return ImageCms.buildTransform(source, target, *modes, renderingIntent=_INTENTS[intent], flags=_flags(intent))


def _flags(intent: RenderingIntent) -> ImageCms.Flags:
    """Black point compensation with the relative intent; no one-pixel cache (a cached transform may be applied by
    two threads at once)."""
    bpc = ImageCms.Flags.BLACKPOINTCOMPENSATION if intent is RenderingIntent.RELATIVE else ImageCms.Flags.NONE
    return bpc | ImageCms.Flags.NOCACHE


def to_cmyk(pixels: np.ndarray, color_space: str, profile: bytes, intent: RenderingIntent) -> np.ndarray:
    """Separate 8-bit RGB encoded in ``color_space`` into the ink amounts of the press ``profile`` describes.

    Parameters
    ----------
    pixels : ndarray, uint8, (H, W, 3)
        The rendition's pixels.
    color_space : str
        Their space (``srgb``, ``display_p3``, ``adobe_rgb``).
    profile : bytes
        :func:`cmyk_profile_bytes` of the chart's profile.
    intent : RenderingIntent
        The rendition's ``rendering_intent``.

    Returns
    -------
    ndarray, uint8, (H, W, 4)
        C, M, Y, K, 0 no ink to 255 full.

    Raises
    ------
    ValueError
        If ``pixels`` are not 8-bit RGB.
    """
    return np.asarray(_separate(pixels, color_space, profile, intent))


def _separate(pixels: np.ndarray, color_space: str, profile: bytes, intent: RenderingIntent) -> Image.Image:
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"a CMYK separation takes 8-bit RGB, got {pixels.dtype} {pixels.shape}")
    return ImageCms.applyTransform(Image.fromarray(pixels), _transform(str(color_space), profile, intent, True))


def soft_proof(pixels: np.ndarray, color_space: str, profile: bytes, intent: RenderingIntent) -> np.ndarray:
    """What the press prints of 8-bit RGB in ``color_space``, shown in that space again (Photoshop's Proof Colors):
    separated (:func:`to_cmyk`) and read back through the press's profile, so the contact sheet shows the delivered
    file's colours (a saturated blue the press cannot print duller), not the RGB it was made from."""
    separated = _separate(pixels, color_space, profile, intent)
    return np.asarray(ImageCms.applyTransform(separated, _transform(str(color_space), profile, intent, False)))
