"""Decode a source into the analysis proxy and read its camera metadata.

RAW files go through LibRaw (rawpy) with the camera's white balance, no
auto-brightening, linear 16-bit output in the working space; raster files
through Pillow with the EXIF orientation applied and the embedded ICC profile
converted to sRGB, then linearised. The proxy is LibRaw's half-size decode
(no demosaicing: fast, and exact in linear light) rather than the embedded
preview, because previews are tone-mapped by the camera and would make
exposure measurements depend on the camera's rendering.

:func:`decode_proxy` is the one decode of the analysis proxy, for the decode
stage and the review's previews alike; :func:`decode_raw_linear` holds the
LibRaw settings every RAW decode uses, the render's included. The camera's
make and model come from LibRaw's own parse (:mod:`pipeline.imaging.libraw_ids`).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import rawpy
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from pipeline.imaging.color import srgb_to_linear, u16_to_linear
from pipeline.imaging.dng import LIBRAW_FLIP_TO_EXIF
from pipeline.imaging.libraw_ids import read_raw_make_model
from pipeline.kernel.errors import InputError
from pipeline.kernel.records import SourceKind


@dataclass
class SourceMetadata:
    """Camera metadata and the oriented full-resolution size of a source."""

    width: int
    height: int
    orientation: int = 1
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    iso: float | None = None
    shutter_s: float | None = None
    aperture: float | None = None
    focal_length_mm: float | None = None
    captured_at: datetime | None = None


def _oriented_raw_size(sizes: Any) -> tuple[int, int]:
    """Size of LibRaw's full output: pixel-aspect stretch, then the flip."""
    w, h = sizes.width, sizes.height
    aspect = sizes.pixel_aspect or 1.0
    if aspect < 1.0:
        h = int(h / aspect + 0.5)
    elif aspect > 1.0:
        w = int(w * aspect + 0.5)
    if sizes.flip in (5, 6):
        w, h = h, w
    return w, h


def _nonzero(v: float | None) -> float | None:
    return float(v) if v else None


def open_raw(path: Path) -> rawpy.RawPy:
    """Open a RAW file, turning LibRaw's errors into :class:`InputError`."""
    try:
        return rawpy.imread(str(path))
    except rawpy.LibRawFileUnsupportedError:
        raise InputError("not a RAW format LibRaw supports, nor a raster image") from None
    except rawpy.LibRawError as exc:
        raise InputError(f"cannot read RAW file: {_libraw_message(exc)}") from None


_LIBRAW_MEANING = {
    "LibRawIOError": "the file ends before its image data does: truncated or damaged",
    "LibRawDataError": "the image data is corrupt",
    "LibRawFileUnsupportedError": "LibRaw does not support this camera's RAW data",
    "LibRawTooBigError": "the declared image is too big to process",
    "LibRawOutOfOrderCallError": "the file's structure is inconsistent",
}


@contextlib.contextmanager
def libraw_messages() -> Iterator[list[str]]:
    """Catch what LibRaw prints on the process's stderr ("Unexpected end of file").

    LibRaw reports data problems by printing them from C; caught here they go
    into the failed row's reason instead of scrolling past the progress bar.
    Workers decode one image at a time, so borrowing file descriptor 2 for the
    length of one decode is safe.
    """
    caught: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr (embedded interpreters)
        yield caught
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield caught
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(4096).decode("utf-8", "replace")
            caught += [line.split(": ", 1)[-1].strip() for line in text.splitlines() if line.strip()]


def _libraw_message(exc: Exception) -> str:
    name = type(exc).__name__
    msg = exc.args[0] if exc.args else str(exc)
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    meaning = _LIBRAW_MEANING.get(name)
    return f"{meaning} [{name}: {msg}]" if meaning else f"{name}: {msg}"


def raw_metadata(raw: rawpy.RawPy, path: Path) -> SourceMetadata:
    w, h = _oriented_raw_size(raw.sizes)
    other = raw.other
    lens = raw.lens
    make, model = read_raw_make_model(path)
    ts = other.timestamp
    return SourceMetadata(
        width=w,
        height=h,
        orientation=LIBRAW_FLIP_TO_EXIF.get(raw.sizes.flip, 1),
        camera_make=make,
        camera_model=model,
        lens=(lens.model or None),
        iso=_nonzero(other.iso_speed),
        shutter_s=_nonzero(other.shutter_speed),
        aperture=_nonzero(other.aperture),
        focal_length_mm=_nonzero(other.focal_length),
        captured_at=ts if ts and ts.year > 1970 else None,
    )


def check_raw_payload(raw: rawpy.RawPy, file_size: int, min_bits_per_pixel: float) -> None:
    """Reject files too small to hold the sensor data they declare.

    Metadata-only stubs and truncated files open in LibRaw and decode to
    garbage; real RAW data, even lossy-compressed, needs several bits per
    photosite.

    Raises
    ------
    InputError
        When the file holds fewer than ``min_bits_per_pixel`` bits per photosite.
    """
    s = raw.sizes
    photosites = max(1, s.raw_width * s.raw_height)
    bpp = file_size * 8 / photosites
    if bpp < min_bits_per_pixel:
        raise InputError(
            f"file holds {file_size} bytes, too few for the {s.raw_width}x{s.raw_height} sensor it declares "
            f"({bpp:.3f} bits per photosite): truncated, or a metadata-only stub"
        )


def decode_raw_linear(raw: rawpy.RawPy, half_size: bool) -> np.ndarray:
    """Demosaic (or half-size bin) to linear 16-bit working-space RGB.

    Camera white balance, no auto-brightening, the file's own white level,
    linear gamma, sRGB primaries; LibRaw applies the file's orientation.
    """
    try:
        return raw.postprocess(
            half_size=half_size,
            use_camera_wb=True,
            no_auto_bright=True,
            # LibRaw's default (0.75) lowers the white point to the brightest
            # photosite when it is above 75% of white, brightening well-exposed
            # frames by up to 0.4 EV: measurements must see the sensor as it is.
            adjust_maximum_thr=0.0,
            output_bps=16,
            gamma=(1, 1),
            output_color=rawpy.ColorSpace.sRGB,
        )
    except rawpy.LibRawError as exc:
        raise InputError(f"cannot decode RAW data: {_libraw_message(exc)}") from None


def check_not_constant(rgb: np.ndarray) -> None:
    """An image with one value everywhere carries no picture.

    Raises
    ------
    InputError
        When the image is constant (all black, say) to within 1/4096 of full scale.
    """
    if rgb.size == 0:
        raise InputError("decodes to an empty image")
    lo, hi = float(rgb.min()), float(rgb.max())
    if hi - lo < 1.0 / 4096:
        raise InputError(f"decodes to a constant image (every pixel = {hi:.4f} of full scale): no picture in the file")


def fit_long_edge(rgb: np.ndarray, long_edge: int) -> np.ndarray:
    """Downscale (area filter) so the long edge is at most ``long_edge``."""
    h, w = rgb.shape[:2]
    scale = long_edge / max(h, w)
    if scale >= 1.0:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


# --- raster -------------------------------------------------------------------
try:  # HEIC/HEIF (phones) through libheif's Pillow plugin, when installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - optional
    pass
_SRGB_PROFILE = ImageCms.createProfile("sRGB")
_EXIF_IFD = 0x8769


def _exif_metadata(im: Image.Image, w: int, h: int) -> SourceMetadata:
    exif = im.getexif()
    sub = exif.get_ifd(_EXIF_IFD) if exif else {}
    orientation = int(exif.get(0x0112, 1) or 1) if exif else 1
    if orientation not in range(1, 9):
        orientation = 1
    if orientation in (5, 6, 7, 8):
        w, h = h, w

    def num(v: Any) -> float | None:
        try:
            f = float(v[0] if isinstance(v, tuple) else v)
        except (TypeError, ValueError, ZeroDivisionError, IndexError):
            return None
        return f if f > 0 else None

    def text(v: Any) -> str | None:
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        return v.strip("\x00 ").strip() or None if isinstance(v, str) else None

    captured = None
    stamp = text(sub.get(0x9003) or exif.get(0x0132)) if exif else None
    if stamp:
        try:
            captured = datetime.strptime(stamp[:19], "%Y:%m:%d %H:%M:%S")
        except ValueError:
            captured = None
    return SourceMetadata(
        width=w,
        height=h,
        orientation=orientation,
        camera_make=text(exif.get(0x010F)) if exif else None,
        camera_model=text(exif.get(0x0110)) if exif else None,
        lens=text(sub.get(0xA434)),
        iso=num(sub.get(0x8827)),
        shutter_s=num(sub.get(0x829A)),
        aperture=num(sub.get(0x829D)),
        focal_length_mm=num(sub.get(0x920A)),
        captured_at=captured,
    )


def decode_raster(
    path: Path, long_edge: int | None, max_pixels: int, downscale: bool = True
) -> tuple[np.ndarray, SourceMetadata]:
    """Decode a raster image to linear working-space RGB.

    Parameters
    ----------
    path : Path
        JPEG, TIFF, PNG, WebP (HEIC when pillow-heif is installed).
    long_edge : int or None
        Decode no larger than needed for this long edge (JPEG DCT scaling),
        then downscale; ``None`` for full resolution.
    max_pixels : int
        Refuse larger images (decompression bombs).
    downscale : bool
        False to stop after the decoder's own scaling (at least ``long_edge``,
        often more): for a caller that resamples the picture itself, so it is
        resampled once.

    Raises
    ------
    InputError
        If Pillow cannot identify or fully decode the file, or it is too large.
    """
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise InputError(f"image is {w}x{h} ({w * h / 1e6:.0f} MP), above the {max_pixels / 1e6:.0f} MP limit")
            meta = _exif_metadata(im, w, h)
            icc = im.info.get("icc_profile")
            if long_edge and im.format == "JPEG":
                im.draft("RGB", (long_edge, long_edge))
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float32) / 65535.0
                rgb = np.repeat(srgb_to_linear(arr)[..., None], 3, axis=2)
            else:
                if im.mode not in ("RGB", "RGBA", "L", "CMYK") and icc is None:
                    im = im.convert("RGB")
                if icc:
                    try:
                        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                        im = ImageCms.profileToProfile(im, src, _SRGB_PROFILE, outputMode="RGB")
                    except (ImageCms.PyCMSError, OSError):
                        im = im.convert("RGB")  # unreadable profile: assume sRGB
                im = im.convert("RGB")
                rgb = srgb_to_linear(np.asarray(im, dtype=np.float32) / 255.0)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise InputError("not an image format Pillow or LibRaw can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"corrupt or truncated image: {exc}") from None
    if long_edge and downscale:
        rgb = fit_long_edge(rgb, long_edge)
    return np.ascontiguousarray(rgb, dtype=np.float32), meta


# --- the analysis proxy -----------------------------------------------------------


@dataclass
class Decoded:
    """A source decoded for analysis.

    Attributes
    ----------
    rgb : ndarray, float32, (H, W, 3)
        The proxy: scene-linear working-space RGB, oriented for viewing, long
        edge at most the one asked for.
    meta : SourceMetadata
        Camera metadata and the oriented full-resolution size.
    libraw_rgb16 : ndarray, uint16, (h, w, 3), or None
        For a RAW, LibRaw's output the proxy was cut from, as
        :func:`decode_raw_linear` made it: the render can use it instead of
        decoding the file again when it needs this very decode.
    half_size : bool
        Whether ``libraw_rgb16`` is LibRaw's half-size decode.
    rgb16 : ndarray, uint16, (H, W, 3), or None
        For a RAW, the proxy's 16-bit values (``rgb == u16_to_linear(rgb16)``).
    """

    rgb: np.ndarray
    meta: SourceMetadata
    libraw_rgb16: np.ndarray | None = None
    half_size: bool = False
    rgb16: np.ndarray | None = None


def proxy_wants_half_size(width: int, height: int, long_edge: int) -> bool:
    """Whether LibRaw's half-size decode still gives a proxy near ``long_edge`` (within 3/4 of it)."""
    return max(width, height) / 2 >= 0.75 * long_edge


def decode_proxy(
    path: Path,
    kind: SourceKind,
    long_edge: int,
    max_pixels: int,
    min_bits_per_photosite: float = 0.5,
    file_size: int | None = None,
) -> Decoded:
    """Decode a source into its analysis proxy and read its metadata.

    The one decode of the analysis (the decode stage) and of the review's
    previews, so that both see the same pixels.

    Parameters
    ----------
    path : Path
        The source file.
    kind : SourceKind
        ``raster`` goes through Pillow (:func:`decode_raster`); ``raw`` through
        LibRaw (half size when that still gives about ``long_edge``, see
        :func:`decode_raw_linear` for the settings); ``unknown`` is tried as a RAW.
    long_edge : int
        Long edge of the proxy in pixels (never enlarged).
    max_pixels : int
        Refuse larger images or sensors (decompression bombs).
    min_bits_per_photosite : float
        Refuse RAW files too small for the sensor they declare (see :func:`check_raw_payload`).
    file_size : int, optional
        The file's size in bytes (read from the file when not given).

    Returns
    -------
    Decoded

    Raises
    ------
    InputError
        If the file is empty, not an image, too large, truncated, corrupt, or
        decodes to a constant picture; the message says which.
    """
    if file_size is None:
        file_size = path.stat().st_size
    if file_size == 0:
        raise InputError("empty file (0 bytes)")
    if SourceKind(kind) is SourceKind.RASTER:
        rgb, meta = decode_raster(path, long_edge, max_pixels)
        decoded = Decoded(rgb, meta)
    else:
        decoded = _decode_raw_proxy(
            path, long_edge, max_pixels, min_bits_per_photosite, file_size, unknown=kind is SourceKind.UNKNOWN
        )
    check_not_constant(decoded.rgb)
    return decoded


def _decode_raw_proxy(
    path: Path, long_edge: int, max_pixels: int, min_bits_per_photosite: float, file_size: int, unknown: bool
) -> Decoded:
    try:
        raw = open_raw(path)
    except InputError:
        if unknown:
            raise InputError("not an image: neither LibRaw nor Pillow recognises this file") from None
        raise
    try:
        with raw, libraw_messages() as said:
            s = raw.sizes
            if s.raw_width * s.raw_height > max_pixels:
                raise InputError(f"sensor of {s.raw_width}x{s.raw_height} is above the {max_pixels / 1e6:g} MP limit")
            check_raw_payload(raw, file_size, min_bits_per_photosite)
            meta = raw_metadata(raw, path)
            half = proxy_wants_half_size(meta.width, meta.height, long_edge)
            rgb16 = decode_raw_linear(raw, half_size=half)
    except rawpy.LibRawError as exc:
        make, model = read_raw_make_model(path)
        camera = f" from {make} {model}" if make else ""
        libraw = f" (LibRaw: {'; '.join(dict.fromkeys(said))})" if said else ""
        raise InputError(f"cannot decode RAW data{camera}: {_libraw_message(exc)}{libraw}") from None
    # Shrink the 16-bit decode, then convert: a third of the float work and
    # memory (the area filter's rounding to 16 bits is 8e-6 of full scale).
    small16 = np.ascontiguousarray(fit_long_edge(rgb16, long_edge))
    return Decoded(u16_to_linear(small16), meta, rgb16, half, small16)
