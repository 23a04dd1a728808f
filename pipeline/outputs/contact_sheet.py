"""Contact sheets: a grid of thumbnails with captions, one JPEG per sheet.

A reviewer opens one file to look over a shoot's deliveries (or its flagged
frames) instead of a folder of hundreds. Thumbnails are colour-managed into
sRGB from whatever profile the file carries (an Adobe RGB print master would
otherwise look dull), and a file that cannot be read gets a grey cell saying
so, rather than stopping the sheet.
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pyexiv2
from PIL import Image, ImageCms, ImageDraw, ImageFont, UnidentifiedImageError

from pipeline.imaging.icc import icc_profile
from pipeline.kernel.files import write_bytes_atomic

#: Thumbnail box of a sheet's cell, in pixels (the long edge of each thumbnail).
CELL = 300
#: Relative to the output folder: the cells of the delivered files, made by the export from the pixels
#: it encoded (:func:`contact_thumbnail`), so the driver pastes them instead of decoding every delivery.
THUMB_DIR = Path(".postprod") / "thumbs"
_BACKGROUND = (32, 32, 32)
_PLACEHOLDER = (90, 90, 90)
_TEXT = (230, 230, 230)
_PAD = 8
_SRGB_ICC = icc_profile("srgb")
_SRGB = ImageCms.ImageCmsProfile(io.BytesIO(_SRGB_ICC))


def thumbnail_path(out_dir: Path, export_path: str) -> Path:
    """Where the cell of the delivered file ``export_path`` (relative to ``out_dir``) is kept."""
    return Path(out_dir) / THUMB_DIR / f"{hashlib.sha1(export_path.encode('utf-8')).hexdigest()[:24]}.jpg"


def _cell_size(width: int, height: int, cell: int) -> tuple[int, int]:
    s = min(cell / width, cell / height, 1.0)
    return max(1, round(width * s)), max(1, round(height * s))


def _to_srgb_jpeg(rgb8: np.ndarray, color_space: str) -> bytes:
    im = Image.fromarray(np.ascontiguousarray(rgb8))
    if color_space != "srgb":
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile(color_space)))
        im = ImageCms.profileToProfile(im, src, _SRGB, outputMode="RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85, icc_profile=_SRGB_ICC)
    return buf.getvalue()


def _to8(pixels: np.ndarray) -> np.ndarray:
    return (pixels >> 8).astype(np.uint8) if pixels.dtype == np.uint16 else pixels


def contact_thumbnail(pixels: np.ndarray, color_space: str, cell: int = CELL,
                      proof: Callable[[np.ndarray], np.ndarray] | None = None) -> bytes:
    """A sheet's cell of a rendition: its pixels fitted into ``cell`` px, in sRGB, as JPEG bytes.

    Parameters
    ----------
    pixels : ndarray, (H, W, 3), uint8 or uint16
        The rendition as encoded in ``color_space``.
    color_space : str
        ``srgb``, ``display_p3`` or ``adobe_rgb``: converted to sRGB (a wide-gamut master would look dull).
    proof : callable, optional
        For a CMYK rendition, its soft proof (:func:`pipeline.outputs.cmyk.soft_proof`): the cell shows what the
        press prints.
    """
    small = _to8(cv2.resize(pixels, _cell_size(pixels.shape[1], pixels.shape[0], cell), interpolation=cv2.INTER_AREA))
    return _to_srgb_jpeg(small if proof is None else proof(small), color_space)


class ThumbnailOfStrips:
    """:func:`contact_thumbnail` of a picture seen one strip at a time (never whole)."""

    def __init__(self, width: int, height: int, color_space: str, cell: int = CELL,
                 proof: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.proof = proof
        self.size = _cell_size(width, height, cell)
        self.factor = self.size[1] / height
        self.color_space = color_space
        self.width = width
        self.parts: list[np.ndarray] = []
        self.rows = 0.0

    def add(self, strip: np.ndarray) -> None:
        """Shrink the next strip (top to bottom) to about the thumbnail's scale and keep it."""
        self.rows += strip.shape[0] * self.factor
        keep = max(1, round(self.rows) - sum(p.shape[0] for p in self.parts))
        self.parts.append(_to8(cv2.resize(strip, (self.size[0], keep), interpolation=cv2.INTER_AREA)))

    def jpeg(self) -> bytes:
        small = cv2.resize(np.concatenate(self.parts), self.size, interpolation=cv2.INTER_AREA)
        return _to_srgb_jpeg(small if self.proof is None else self.proof(small), self.color_space)


def _thumbnail(path: Path, cell: int) -> Image.Image | None:
    """The image fitted into ``cell`` x ``cell``, in sRGB, or None when unreadable."""
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                im.draft("RGB", (cell, cell))  # DCT scaling: decode only what the cell needs
            icc = im.info.get("icc_profile")
            im.load()
            if im.mode not in ("RGB", "L", "RGBA", "CMYK"):
                raise OSError(f"mode {im.mode}")  # 16-bit and float: read with OpenCV below
            # postprod's own sRGB exports carry this very profile: converting it
            # to itself changes nothing and took a third of a sheet's time.
            if icc and icc != _SRGB_ICC:
                try:
                    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                    im = ImageCms.profileToProfile(im, src, _SRGB, outputMode="RGB")
                except (ImageCms.PyCMSError, OSError):
                    pass
            im = im.convert("RGB")
            im.thumbnail((cell, cell), Image.Resampling.LANCZOS)
            return im
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        pass
    # Pillow does not read 16-bit RGB (TIFF/PNG masters); OpenCV does, and exiv2 finds their profile.
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    h, w = bgr.shape[:2]
    s = min(cell / w, cell / h, 1.0)
    small = cv2.resize(bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    thumb = Image.fromarray(np.ascontiguousarray(small[..., ::-1]))
    try:
        with pyexiv2.Image(str(path)) as meta:
            icc = meta.read_icc()
        if icc:
            thumb = ImageCms.profileToProfile(thumb, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB, outputMode="RGB")
    except (RuntimeError, OSError, ImageCms.PyCMSError):
        pass  # shown as if sRGB
    return thumb


def _printable(text: str) -> str:
    """One line of text: control and other non-printable characters (a newline in a file name) become '?'.

    Pillow refuses an anchored caption with a newline in it, and one odd file name must not stop the sheet.
    """
    return "".join(c if c.isprintable() else "?" for c in unicodedata.normalize("NFC", text))


def _fit_caption(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    text = _printable(text)
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def contact_sheet(
    image_paths: Sequence[Path | str],
    captions: Sequence[str],
    out_path: Path | str,
    columns: int = 6,
    cell: int = CELL,
    quality: int = 85,
) -> Path:
    """Write a JPEG grid of thumbnails with one caption line under each.

    Parameters
    ----------
    image_paths : sequence of path-like
        Images in reading order (left to right, top to bottom).
    captions : sequence of str
        One per image (file name, verdict, ...); cut with "..." to the cell width.
    out_path : path-like
        The JPEG to write (atomically; parent folders are created).
    columns : int
        Cells per row.
    cell : int
        Thumbnail box in pixels (the long edge of each thumbnail).
    quality : int
        JPEG quality of the sheet.

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    ValueError
        If there are no images, captions and images differ in number, or
        ``columns``/``cell`` are not positive.
    OSError
        If the sheet cannot be written.
    """
    if not image_paths:
        raise ValueError("a contact sheet needs at least one image")
    if len(captions) != len(image_paths):
        raise ValueError(f"{len(image_paths)} images but {len(captions)} captions")
    if columns < 1 or cell < 16:
        raise ValueError(f"columns must be >= 1 and cell >= 16, got {columns} and {cell}")
    font = ImageFont.load_default(size=max(10, cell // 20))
    line_h = int(font.getbbox("Hg")[3]) + 4
    cols = min(columns, len(image_paths))
    thumbs = [_thumbnail(Path(path), cell) for path in image_paths]  # one sheet's cells, a few MB at most
    # Each row as tall as its tallest thumbnail, its captions right under it: a sheet of 16:9 banners is not laid out
    # in square cells with a third of each empty.
    heights = [max(cell if t is None else t.height for t in thumbs[i:i + cols]) for i in range(0, len(thumbs), cols)]
    pitch_w = cell + 2 * _PAD
    tops = np.cumsum([0] + [h + 2 * _PAD + line_h for h in heights])
    sheet = Image.new("RGB", (cols * pitch_w, int(tops[-1])), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i, (thumb, caption) in enumerate(zip(thumbs, captions)):
        row = i // cols
        x0, y0, row_h = (i % cols) * pitch_w + _PAD, int(tops[row]) + _PAD, heights[row]
        if thumb is None:
            draw.rectangle((x0, y0, x0 + cell - 1, y0 + row_h - 1), fill=_PLACEHOLDER)
            draw.text((x0 + cell // 2, y0 + row_h // 2), "unreadable", fill=_TEXT, font=font, anchor="mm")
        else:
            sheet.paste(thumb, (x0 + (cell - thumb.width) // 2, y0 + (row_h - thumb.height) // 2))
        text = _fit_caption(draw, str(caption), font, cell)
        draw.text((x0 + cell // 2, y0 + row_h + 2), text, fill=_TEXT, font=font, anchor="mt")
    buf = io.BytesIO()
    sheet.save(buf, "JPEG", quality=quality, optimize=True, icc_profile=icc_profile("srgb"))
    return write_bytes_atomic(Path(out_path), buf.getvalue())
