"""A watermark laid over a delivered picture: a line of text or a logo.

The mark is made for one picture size (:func:`make_mark`): its longer side a
share of the picture's short edge, placed at an anchor with a margin, so a
1080 px story and a 6000 px proof carry it at the same size against the
picture. It is drawn on the encoded pixels (:func:`draw_mark`), after resizing
and sharpening, as Lightroom's export watermark is: blended over what lies
under it by its coverage (the glyphs' or the logo's alpha times the opacity),
its colours converted from sRGB to the rendition's colour space. A picture
written strip by strip gets each strip's share of the mark, so the strips make
the same file as the whole picture.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.icc import ColorSpace, encode, linear_srgb_to

if TYPE_CHECKING:
    from charts.schema import Watermark

#: The text's shadow: blurred by this share of the text's height, moved down and right by half that, at this
#: share of the text's coverage (a soft shadow a white line reads against on a bright sky; a light one under dark
#: text).
SHADOW_BLUR = 0.08
SHADOW_STRENGTH = 0.6
#: Font size (px) the text is measured at before it is drawn at the size that makes its width.
_MEASURE_PX = 100
#: The smallest text drawn (px); a smaller one would be unreadable blur.
MIN_FONT_PX = 6


@dataclass(frozen=True)
class Mark:
    """A watermark drawn at one picture size.

    Attributes
    ----------
    colour : ndarray, float32, (h, w, 3)
        The mark's colour, encoded in the picture's colour space, 0-1.
    coverage : ndarray, float32, (h, w)
        How much of what lies under it the mark covers, 0-1 (its alpha times the opacity).
    x, y : int
        The mark's top-left corner in the picture (the mark lies wholly inside it); of a tiled mark, its first
        copy's (which may start outside the picture).
    tile : (int, int) or None
        A tiled mark's period, across and down (every other row of copies shifted by half the period across);
        None for one mark.
    """

    colour: np.ndarray
    coverage: np.ndarray
    x: int
    y: int
    tile: tuple[int, int] | None = None

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the mark in the picture."""
        return self.x, self.y, self.coverage.shape[1], self.coverage.shape[0]


def load_mark_image(path: str | Path) -> np.ndarray:
    """A logo file as straight-alpha RGBA ``uint8`` (an image without transparency is opaque).

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If it is not an image Pillow reads, or is empty.
    """
    stat = os.stat(path)
    return _logo(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _logo(path: str, _mtime_ns: int, _size: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            rgba = np.asarray(im.convert("RGBA"))
    except Image.UnidentifiedImageError:
        raise ValueError("not an image Pillow reads (a PNG or WebP with transparency serves best)") from None
    if rgba.size == 0 or not rgba[..., 3].any():
        raise ValueError("the image is empty or wholly transparent")
    return rgba


#: Where the default font is looked for (DejaVu Sans: Latin, Greek and Cyrillic with their accents, the
#: typographer's dashes and quotes, (c) and (R)); where none is, the font Pillow ships (ASCII and little more).
DEFAULT_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian, Ubuntu
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",  # Fedora
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",  # Arch
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",  # macOS
    "C:/Windows/Fonts/segoeui.ttf",
)
# A code point no font draws (plane 15, private use): its drawing is the font's "missing glyph" box.
_NO_GLYPH = "\U000fffff"


@functools.lru_cache(maxsize=1)
def default_font_path() -> str | None:
    """The first of :data:`DEFAULT_FONTS` this machine has, or None (Pillow's own font)."""
    return next((path for path in DEFAULT_FONTS if os.path.isfile(path)), None)


def load_font(path: str | Path | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The text's font at ``size`` px: the file ``path`` names, else :func:`default_font_path`'s, else the
    sans-serif font Pillow ships.

    Raises
    ------
    OSError
        If ``path`` is not a font file FreeType reads.
    """
    path = path if path is not None else default_font_path()
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(path), size)


def missing_glyphs(text: str, font_path: str | Path | None) -> str:
    """The characters of ``text`` the font (see :func:`load_font`) has no glyph for: it would draw each as a box.

    Raises
    ------
    OSError
        If ``font_path`` is not a font file FreeType reads.
    """
    font = load_font(font_path, 32)
    box = font.getmask(_NO_GLYPH)
    box = (box.size, bytes(box))
    missing = []
    for char in dict.fromkeys(text):  # each character once, in order
        if char.isspace():
            continue
        mask = font.getmask(char)
        if (mask.size, bytes(mask)) == box:
            missing.append(char)
    return "".join(missing)


def mark_file(spec: Watermark) -> str:
    """The file whose content draws the mark: its logo, else its font (named, or :func:`default_font_path`'s;
    "pillow" for the font Pillow ships)."""
    return spec.image or spec.font or default_font_path() or "pillow"


def file_digest(path: str | Path) -> str:
    """SHA-256 of a mark's file (a logo, a font): what the exports' render key records; "missing" if unread.
    Read once while the file's size and time stay the same (every image's key asks)."""
    try:
        stat = os.stat(path)
    except OSError:
        return "missing"
    return _digest(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _digest(path: str, _mtime_ns: int, _size: int) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "missing"


def make_mark(spec: Watermark, width: int, height: int, color_space: ColorSpace | str) -> Mark:
    """The mark ``spec`` describes, drawn for a ``width`` x ``height`` picture in ``color_space``.

    Raises
    ------
    ValueError
        If the picture is empty, or the logo cannot be read (see :func:`load_mark_image`).
    OSError
        If the logo or the font file cannot be read.
    """
    if width < 1 or height < 1:
        raise ValueError(f"picture size must be positive, got {width}x{height}")
    return _make_mark(spec, int(width), int(height), ColorSpace(color_space))


@functools.lru_cache(maxsize=32)
def _make_mark(spec: Watermark, width: int, height: int, space: ColorSpace) -> Mark:
    short = min(width, height)
    longest = max(1, round(spec.size_pct / 100.0 * short))
    if spec.image is not None:
        rgba, inner = _logo_at(load_mark_image(spec.image), longest), (0, 0, 0, 0)
    else:
        rgba, inner = _text_at(spec, longest)
    colour = _to_space(rgba[..., :3], space)
    coverage = rgba[..., 3] * np.float32(spec.opacity)
    # Placed by the mark itself, not by the shadow's margin around text (``inner``: left, top, right, bottom).
    h, w = coverage.shape
    inset = round(spec.inset_pct / 100.0 * short)
    body_w, body_h = w - inner[0] - inner[2], h - inner[1] - inner[3]
    anchor = str(spec.anchor)
    if anchor == "tiled":
        # Copies inset apart (at least a fifth of the mark), the first half a period in from the corner.
        step = (body_w + max(inset, body_h), body_h + max(inset, body_h))
        return Mark(np.ascontiguousarray(colour), np.ascontiguousarray(coverage), step[0] // 2 - inner[0] - step[0],
                    step[1] // 2 - inner[1] - step[1], step)
    x = _along(anchor.endswith("left"), anchor.endswith("right"), width, body_w, inset) - inner[0]
    y = _along(anchor.startswith("top"), anchor.startswith("bottom"), height, body_h, inset) - inner[1]
    # What falls outside the picture (a margin of shadow, a mark larger than the picture) is left out.
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x1 <= x0 or y1 <= y0:
        return Mark(np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32), 0, 0)
    crop = (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))
    return Mark(np.ascontiguousarray(colour[crop]), np.ascontiguousarray(coverage[crop]), x0, y0)


def _along(near: bool, far: bool, extent: int, body: int, inset: int) -> int:
    """Where a mark ``body`` long starts along a side ``extent`` long: ``inset`` from its near end, or from its far
    end, or centred."""
    if near:
        return inset
    if far:
        return extent - inset - body
    return (extent - body) // 2


def _logo_at(rgba8: np.ndarray, longest: int) -> np.ndarray:
    """The logo resized so its longer side is ``longest`` px, as float RGBA 0-1 (resampled premultiplied, so
    its transparent pixels' colour does not bleed into its edges)."""
    h, w = rgba8.shape[:2]
    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = Image.fromarray(rgba8, "RGBA").convert("RGBa").resize(size, Image.Resampling.LANCZOS).convert("RGBA")
    return np.asarray(resized, dtype=np.float32) / np.float32(255.0)


def _text_at(spec: Watermark, longest: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The text drawn so its longer side is ``longest`` px, with its shadow, as float RGBA 0-1, and the margin
    (left, top, right, bottom) the shadow adds around the text's own box."""
    text = spec.text or ""
    left, top, right, bottom = load_font(spec.font, _MEASURE_PX).getbbox(text)
    size = max(MIN_FONT_PX, round(_MEASURE_PX * longest / max(1, right - left, bottom - top)))
    font = load_font(spec.font, size)
    left, top, right, bottom = font.getbbox(text)
    tw, th = max(1, right - left), max(1, bottom - top)
    blur = max(1.0, SHADOW_BLUR * th) if spec.shadow else 0.0
    shift = round(blur / 2)
    margin = int(np.ceil(3 * blur)) + shift if spec.shadow else 0
    canvas = Image.new("L", (tw + 2 * margin, th + 2 * margin), 0)
    ImageDraw.Draw(canvas).text((margin - left, margin - top), text, font=font, fill=255)
    glyphs = np.asarray(canvas, dtype=np.float32) / np.float32(255.0)
    rgb = np.empty((*glyphs.shape, 3), np.float32)
    rgb[:] = np.asarray(spec.rgb8, np.float32) / np.float32(255.0)
    if not spec.shadow:
        return np.dstack([rgb, glyphs]), (0, 0, 0, 0)
    shadow = cv2.GaussianBlur(np.roll(glyphs, (shift, shift), axis=(0, 1)), (0, 0), blur) * np.float32(SHADOW_STRENGTH)
    # The text over its shadow: coverage a + s(1 - a), the text's colour where it covers, the shadow's elsewhere;
    # the shadow black under light text, white under dark text (a halo it reads against on a dark wall).
    alpha = glyphs + shadow * (1.0 - glyphs)
    dark = float(np.dot(np.asarray(spec.rgb8, np.float32) / 255.0, (0.2126, 0.7152, 0.0722))) < 0.5
    share = (glyphs / np.maximum(alpha, 1e-6))[..., None]
    rgb = rgb * share + np.float32(1.0 if dark else 0.0) * (1.0 - share)
    return np.dstack([rgb, alpha]), (margin, margin, margin, margin)


def _to_space(srgb: np.ndarray, space: ColorSpace) -> np.ndarray:
    """sRGB-encoded colours (0-1) encoded in ``space`` instead (white and black stay white and black)."""
    if space is ColorSpace.SRGB:
        return np.ascontiguousarray(srgb, dtype=np.float32)
    linear = srgb_to_linear(srgb.astype(np.float64)) @ linear_srgb_to(space).T
    return encode(space, linear).astype(np.float32)


def draw_mark(pixels: np.ndarray, mark: Mark, first_row: int = 0) -> np.ndarray:
    """Blend ``mark`` into ``pixels`` in place and return them.

    Parameters
    ----------
    pixels : ndarray, uint8 or uint16, (rows, W, 3)
        The encoded picture, or the strip of it that starts at row ``first_row``.
    mark : Mark
        From :func:`make_mark`, for the whole picture.
    first_row : int
        The picture's row that ``pixels``' first row is (0: the whole picture).

    Raises
    ------
    ValueError
        If ``pixels`` are not 8- or 16-bit RGB.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16 RGB pixels, got {pixels.dtype} {pixels.shape}")
    if mark.tile is None:
        _blend_copy(pixels, mark, first_row, mark.x, mark.y)
        return pixels
    # Tiled: every copy that reaches the rows the pixels hold, from the first copies' row that reaches the first.
    step_x, step_y = mark.tile
    h = mark.coverage.shape[0]
    k0 = max(0, (first_row - mark.y - h) // step_y)
    for k in range(k0, (first_row + pixels.shape[0] - mark.y) // step_y + 1):
        for x in range(mark.x + (step_x // 2 if k % 2 else 0), pixels.shape[1], step_x):
            _blend_copy(pixels, mark, first_row, x, mark.y + k * step_y)
    return pixels


def _blend_copy(pixels: np.ndarray, mark: Mark, first_row: int, x: int, y: int) -> None:
    """Blend one copy of the mark, its top-left corner at ``(x, y)`` of the picture, into the rows the pixels hold
    (from ``first_row``), cut to the picture."""
    h, w = mark.coverage.shape
    r0, r1 = max(y, first_row), min(y + h, first_row + pixels.shape[0])
    c0, c1 = max(x, 0), min(x + w, pixels.shape[1])
    if r1 <= r0 or c1 <= c0:
        return
    full = np.float32(np.iinfo(pixels.dtype).max)
    under = pixels[r0 - first_row:r1 - first_row, c0:c1]
    coverage = mark.coverage[r0 - y:r1 - y, c0 - x:c1 - x, None]
    region = under.astype(np.float32)
    region += (mark.colour[r0 - y:r1 - y, c0 - x:c1 - x] * full - region) * coverage
    under[...] = np.rint(region).astype(pixels.dtype)
