"""Encode the rendered renditions into delivered files, with profile and metadata.

Encoders: JPEG (Pillow/libjpeg-turbo; baseline with optimised Huffman tables; 4:2:0 chroma below
quality 90, 4:4:4 from 90 up, where chroma blur starts to show on red and
blue edges), WebP (Pillow/libwebp), TIFF and PNG at 8 or 16 bits (OpenCV:
Pillow cannot write 16-bit RGB). Every file carries the ICC profile of its
colour space (:func:`pipeline.imaging.icc.icc_profile`).

Metadata is written with exiv2 (pyexiv2) into the encoded bytes, the same
way for every format:

* EXIF from the record (what decode read from the source: make, model, lens,
  ISO, shutter, aperture, focal length, capture time), normalised rather than
  copied tag by tag, so a RAW's maker notes, thumbnails and sensor tags never
  leak into a JPEG. Orientation is 1 (the pixels are already upright). GPS is
  copied from the source only when the policy keeps it (``strip_gps: false``).
* IPTC IIM (not for WebP, which has no IPTC block) and XMP: creator,
  copyright, credit, keywords from the chart's metadata policy; the shoot id
  as the job identifier (IPTC 2:103 / ``photoshop:TransmissionReference``,
  prefixed with the client when the chart names one, since IIM has no client
  field); client, shoot, rendition and render key in postprod's own XMP
  namespace.

File-size caps (``max_file_kb``) are met by a binary search over quality.
When even quality 1 does not fit (a cap far too small for the pixel size),
the file is still delivered at quality 1, the smallest this encoder makes,
and a warning naming the rendition, the cap and the size reached is appended
to the record's ``error`` while its status stays ``ok``: the other renditions
are fine, and a person decides whether the cap or the size must change.

Every file is written atomically (:func:`pipeline.kernel.files.write_bytes_atomic`)
to ``<out_dir>/exports/<chart naming template>``; sources are only read.
"""

from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyexiv2
from PIL import Image

from charts.schema import ColorSpace, ImageFormat, MetadataPolicy, Rendition
from pipeline.imaging.icc import icc_profile
from pipeline.kernel.records import ImageRecord
from pipeline.outputs.cmyk import cmyk_profile_bytes, to_cmyk
from pipeline.outputs.tiff import Entry, read_ifd0, write_tiff_strips

#: postprod's XMP namespace (client, shoot, rendition, render key of a delivered file).
XMP_NAMESPACE = "http://ns.postprod.dev/export/1.0/"
XMP_PREFIX = "postprod"
EXPORTS_DIR = "exports"
SOFTWARE = "postprod"
# Above this quality, JPEG keeps full-resolution chroma.
_FULL_CHROMA_FROM = 90

_ns_lock = threading.Lock()
_ns_registered = False


def _register_namespace() -> None:
    global _ns_registered
    with _ns_lock:
        if not _ns_registered:
            pyexiv2.registerNs(XMP_NAMESPACE, XMP_PREFIX)
            pyexiv2.set_log_level(4)  # exiv2 prints warnings to stderr otherwise (mute)
            _ns_registered = True


# --- encoders ---------------------------------------------------------------------------

_TIFF_COMPRESSION = {
    "none": cv2.IMWRITE_TIFF_COMPRESSION_NONE,
    "lzw": cv2.IMWRITE_TIFF_COMPRESSION_LZW,
    "deflate": cv2.IMWRITE_TIFF_COMPRESSION_ADOBE_DEFLATE,
}


@dataclass(frozen=True)
class EncoderSettings:
    """Speed/size trade-offs of the encoders (the chart sets quality; the run sets these).

    The defaults are the fastest settings that keep each rendition's quality:

    - JPEG: baseline with optimised Huffman tables. A progressive file holds
      the very same quantised coefficients (it decodes to the same pixels, see
      tests/test_export.py), only ordered in scans; at 2048 px, quality 90,
      4:4:4 it took 113 ms against 54 ms for the baseline, whose files were 3%
      larger (benchmarks/bench_encode.py, the 6 largest photos of the test data).
    - WebP: method 0. At quality 80 and 1080 px, method 0 took 44 ms, 1 57 ms,
      2 71 ms and 4 165 ms; the PSNR against the rendered pixels was 39.1,
      39.1, 38.8 and 39.1 dB (the quality holds), the files 21%, 13%, 0 and -3%
      larger than method 2's. A rendition with ``max_file_kb`` still meets its
      cap, by quality.
    - TIFF uncompressed: 0.15 s and 41 MB for a 2400x3000 16-bit master,
      against LZW 1.1 s and 35 MB, deflate 1.9 s and 30 MB.
    - AVIF (libavif and AOM, one thread: the same bytes on every run): speed 9. At 2048 px and quality 60
      (benchmarks/bench_encode.py, three photos of the test data) speed 6 (libavif's default) took 2.3 s, 8
      1.05 s and 9 0.26 s, for 226, 237 and 249 KB at 38.0, 37.6 and 37.6 dB PSNR; a JPEG at quality 60 is
      279 KB at 35.7 dB, at 80 437 KB at 39.2 dB.
    """

    jpeg_progressive: bool = False
    webp_method: int = 0
    tiff_compression: str = "none"
    png_compression: int = 3
    avif_speed: int = 9



def _check_pixels(pixels: np.ndarray, bit_depth: int) -> None:
    want = np.uint8 if bit_depth == 8 else np.uint16
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4) or pixels.dtype != want:
        raise ValueError(f"expected ({'uint8' if bit_depth == 8 else 'uint16'}) (H, W, 3) RGB or (H, W, 4) CMYK, "
                         f"got {pixels.dtype} {pixels.shape}")


def png_with_icc(png: bytes, icc: bytes, name: bytes = b"ICC Profile") -> bytes:
    """Insert an ``iCCP`` chunk right after ``IHDR`` (where the PNG spec wants it).

    OpenCV writes no profile, and exiv2 writes ``iCCP`` with an empty keyword,
    which libpng rejects ("iCCP: bad keyword").

    Raises
    ------
    ValueError
        If ``png`` does not start with a PNG signature and an IHDR chunk.
    """
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG stream")
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    body = name + b"\0\0" + zlib.compress(icc, 9)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body) & 0xFFFFFFFF)
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def encode_pixels(
    pixels: np.ndarray,
    fmt: ImageFormat | str,
    quality: int,
    bit_depth: int,
    icc: bytes,
    settings: EncoderSettings = EncoderSettings(),
    ppi: int = 72,
    exif: bytes | None = None,
    xmp: bytes | None = None,
) -> bytes:
    """Encode an RGB array (profile embedded, no other metadata but the resolution, and an AVIF's ``exif``
    and ``xmp``).

    Parameters
    ----------
    pixels : ndarray, (H, W, 3), uint8 or uint16
        RGB encoded in the space ``icc`` describes.
    fmt : ImageFormat or str
        jpeg, webp, avif, tiff or png.
    quality : int
        1-100 for jpeg, webp and avif; ignored by the lossless formats.
    bit_depth : int
        8, or 16 for tiff and png.
    icc : bytes
        ICC profile to embed (TIFF's is added by :func:`embed_metadata`: OpenCV writes no tag for it).
    settings : EncoderSettings
        Progressive JPEG, WebP effort, AVIF speed, TIFF and PNG compression.
    ppi : int
        Pixels per inch: a JPEG's JFIF density and a TIFF's resolution (the rendition's ``ppi``; EXIF carries
        it too, :func:`build_metadata`).
    exif, xmp : bytes, optional
        An AVIF's EXIF and XMP, written by the encoder (exiv2 reads AVIF but does not write it:
        :func:`avif_metadata`); the other formats get theirs from :func:`embed_metadata`.

    Returns
    -------
    bytes

    Raises
    ------
    ValueError
        On a pixel array that does not match ``bit_depth``, 16 bits for a
        lossy format, a quality outside 1-100, or an unknown TIFF compression.
    """
    fmt = ImageFormat(fmt)
    _check_pixels(pixels, bit_depth)
    if bit_depth == 16 and fmt.lossy:
        raise ValueError(f"{fmt.value} is 8-bit only")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1-100, got {quality}")
    if fmt == ImageFormat.TIFF and settings.tiff_compression not in _TIFF_COMPRESSION:
        raise ValueError(f"TIFF compression must be one of {sorted(_TIFF_COMPRESSION)}, "
                         f"got {settings.tiff_compression!r}")
    if pixels.shape[2] == 4:
        return _encode_cmyk(pixels, fmt, quality, icc, settings, ppi)
    buf = io.BytesIO()
    if fmt == ImageFormat.JPEG:
        Image.fromarray(pixels).save(
            buf,
            "JPEG",
            quality=quality,
            progressive=settings.jpeg_progressive,
            optimize=not settings.jpeg_progressive,  # progressive scans are Huffman-optimised already
            # (baseline without optimised tables is 3x faster still, but 15% larger)
            subsampling="4:4:4" if quality >= _FULL_CHROMA_FROM else "4:2:0",
            icc_profile=icc,
            dpi=(ppi, ppi),
        )
        return buf.getvalue()
    if fmt == ImageFormat.WEBP:
        Image.fromarray(pixels).save(buf, "WEBP", quality=quality, method=settings.webp_method, icc_profile=icc)
        return buf.getvalue()
    if fmt == ImageFormat.AVIF:
        # One thread: a Ray worker has one CPU, and AOM's bytes are then the same on every run.
        Image.fromarray(pixels).save(
            buf, "AVIF", quality=quality, speed=settings.avif_speed, max_threads=1,
            subsampling="4:4:4" if quality >= _FULL_CHROMA_FROM else "4:2:0",
            icc_profile=icc, **({"exif": exif} if exif else {}), **({"xmp": xmp} if xmp else {}))
        return buf.getvalue()
    bgr = pixels[..., ::-1]
    if fmt == ImageFormat.PNG:
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, settings.png_compression])
        if not ok:
            raise RuntimeError("OpenCV could not encode the PNG")
        return png_with_icc(data.tobytes(), icc)
    # TIFF requires a resolution in its first directory (the EXIF one's, which exiv2 leaves to the encoder there).
    params = [cv2.IMWRITE_TIFF_COMPRESSION, _TIFF_COMPRESSION[settings.tiff_compression],
              cv2.IMWRITE_TIFF_RESUNIT, 2, cv2.IMWRITE_TIFF_XDPI, ppi, cv2.IMWRITE_TIFF_YDPI, ppi]
    if settings.tiff_compression != "none":
        params += [cv2.IMWRITE_TIFF_PREDICTOR, cv2.IMWRITE_TIFF_PREDICTOR_HORIZONTAL]
    ok, data = cv2.imencode(".tif", bgr, params)
    if not ok:
        raise RuntimeError("OpenCV could not encode the TIFF")
    return data.tobytes()


def _encode_cmyk(pixels: np.ndarray, fmt: ImageFormat, quality: int, icc: bytes, settings: EncoderSettings,
                 ppi: int) -> bytes:
    """An 8-bit CMYK JPEG (Adobe's inverted convention, as Photoshop writes it: Pillow's) or TIFF
    (PhotometricInterpretation separated), the press's profile embedded."""
    if fmt not in (ImageFormat.JPEG, ImageFormat.TIFF) or pixels.dtype != np.uint8:
        raise ValueError(f"a CMYK picture is an 8-bit jpeg or tiff, not {fmt.value} {pixels.dtype}")
    h, w = pixels.shape[:2]
    image = Image.frombuffer("CMYK", (w, h), np.ascontiguousarray(pixels).tobytes(), "raw", "CMYK", 0, 1)
    buf = io.BytesIO()
    if fmt == ImageFormat.JPEG:
        image.save(buf, "JPEG", quality=quality, progressive=settings.jpeg_progressive,
                   optimize=not settings.jpeg_progressive, icc_profile=icc, dpi=(ppi, ppi))
        return buf.getvalue()
    compression = {"none": None, "lzw": "tiff_lzw", "deflate": "tiff_adobe_deflate"}[settings.tiff_compression]
    image.save(buf, "TIFF", compression=compression, icc_profile=icc, dpi=(ppi, ppi))
    return buf.getvalue()


# --- metadata -----------------------------------------------------------------------------


def _rational(x: float, max_den: int) -> str:
    f = Fraction(x).limit_denominator(max_den)
    return f"{f.numerator}/{f.denominator}"


def _shutter(seconds: float) -> str:
    if seconds >= 1:
        return _rational(seconds, 10)
    # 1/160 s as the camera wrote it, not 0.00625 as a float reads back.
    return f"1/{round(1 / seconds)}" if abs(1 / seconds - round(1 / seconds)) < 0.05 else _rational(seconds, 100_000)


#: The tags EXIF 2.32 requires of every file that has EXIF (its tables 4, 7 and 8: "mandatory"); the resolution
#: (the rendition's ``ppi``, 72 by default: the standard's value when it is unknown), PixelX/YDimension and
#: ColorSpace are written with the file's own values. Without them ``exiftool -validate`` warns on every delivery.
EXIF_REQUIRED = {
    "Exif.Image.ResolutionUnit": "2",  # inches
    "Exif.Photo.ExifVersion": "48 50 51 50",  # "0232"
    "Exif.Photo.FlashpixVersion": "48 49 48 48",  # "0100"
}
#: ... and of a compressed (YCbCr) JPEG's.
EXIF_REQUIRED_JPEG = {
    "Exif.Image.YCbCrPositioning": "1",  # centred
    "Exif.Photo.ComponentsConfiguration": "1 2 3 0",  # Y, Cb, Cr
}


@dataclass(frozen=True)
class ExportMetadata:
    """What goes into every file of one image: exiv2 keys -> values."""

    exif: dict[str, Any]
    iptc: dict[str, Any]
    xmp: dict[str, Any]


def build_metadata(
    record: ImageRecord,
    policy: MetadataPolicy,
    color_space: ColorSpace | str | None,
    size: tuple[int, int],
    client: str | None,
    shoot: str,
    rendition: str,
    source_gps: Mapping[str, str] | None = None,
    ppi: int = 72,
) -> ExportMetadata:
    """The EXIF, IPTC and XMP of one delivered file.

    Parameters
    ----------
    record : ImageRecord
        Camera fields (make, model, lens, iso, shutter_s, aperture,
        focal_length_mm, captured_at) and ``render_key``.
    policy : MetadataPolicy
        The rendition's metadata policy (``chart.metadata_for(name)``).
    color_space : ColorSpace or str or None
        The file's space (EXIF ColorSpace: 1 for sRGB, 65535 "uncalibrated" otherwise); None: a CMYK file.
    size : (int, int)
        Pixel width and height.
    client : str or None
    shoot : str
        Shoot id.
    rendition : str
    source_gps : mapping, optional
        ``Exif.GPSInfo.*`` tags of the source; written only when the policy
        does not strip GPS.
    ppi : int
        The rendition's pixels per inch (EXIF X/YResolution).

    Returns
    -------
    ExportMetadata

    Raises
    ------
    ValueError
        Never for records written by decode; numbers that are not positive are left out.
    """
    exif: dict[str, Any] = {
        **EXIF_REQUIRED,
        "Exif.Image.XResolution": f"{ppi}/1",
        "Exif.Image.YResolution": f"{ppi}/1",
        "Exif.Image.Orientation": "1",
        "Exif.Image.Software": SOFTWARE,
        "Exif.Photo.PixelXDimension": str(size[0]),
        "Exif.Photo.PixelYDimension": str(size[1]),
        "Exif.Photo.ColorSpace": "1" if color_space is not None and ColorSpace(color_space) == ColorSpace.SRGB
        else "65535",
    }
    if record.camera.make:
        exif["Exif.Image.Make"] = record.camera.make
    if record.camera.model:
        exif["Exif.Image.Model"] = record.camera.model
    if record.camera.lens:
        exif["Exif.Photo.LensModel"] = record.camera.lens
    if record.camera.iso and record.camera.iso > 0:
        exif["Exif.Photo.ISOSpeedRatings"] = str(round(record.camera.iso))
    if record.camera.shutter_s and record.camera.shutter_s > 0:
        exif["Exif.Photo.ExposureTime"] = _shutter(record.camera.shutter_s)
    if record.camera.aperture and record.camera.aperture > 0:
        exif["Exif.Photo.FNumber"] = _rational(record.camera.aperture, 100)
    if record.camera.focal_length_mm and record.camera.focal_length_mm > 0:
        exif["Exif.Photo.FocalLength"] = _rational(record.camera.focal_length_mm, 100)
    if isinstance(record.camera.captured_at, datetime):
        stamp = record.camera.captured_at.strftime("%Y:%m:%d %H:%M:%S")
        exif["Exif.Photo.DateTimeOriginal"] = stamp
        exif["Exif.Photo.DateTimeDigitized"] = stamp
    if policy.creator:
        exif["Exif.Image.Artist"] = policy.creator
    if policy.copyright:
        exif["Exif.Image.Copyright"] = policy.copyright
    if source_gps and not policy.strip_gps:
        exif.update({k: v for k, v in source_gps.items() if k.startswith("Exif.GPSInfo.")})

    job = f"{client}/{shoot}" if client else shoot
    iptc: dict[str, Any] = {
        "Iptc.Envelope.CharacterSet": "\x1b%G",  # UTF-8, so accented names survive
        "Iptc.Application2.TransmissionReference": job[:32],  # IIM caps 2:103 at 32 bytes
    }
    xmp: dict[str, Any] = {
        "Xmp.photoshop.TransmissionReference": job,
        f"Xmp.{XMP_PREFIX}.Shoot": shoot,
        f"Xmp.{XMP_PREFIX}.Rendition": rendition,
    }
    if client:
        xmp[f"Xmp.{XMP_PREFIX}.Client"] = client
    if record.render_key:
        xmp[f"Xmp.{XMP_PREFIX}.RenderKey"] = record.render_key
    if policy.creator:
        iptc["Iptc.Application2.Byline"] = [policy.creator]
        xmp["Xmp.dc.creator"] = [policy.creator]
    if policy.copyright:
        iptc["Iptc.Application2.Copyright"] = policy.copyright
        xmp["Xmp.dc.rights"] = {"lang=\"x-default\"": policy.copyright}
    if policy.credit:
        iptc["Iptc.Application2.Credit"] = policy.credit
        xmp["Xmp.photoshop.Credit"] = policy.credit
    if policy.keywords:
        iptc["Iptc.Application2.Keywords"] = list(policy.keywords)
        xmp["Xmp.dc.subject"] = list(policy.keywords)
    return ExportMetadata(exif=exif, iptc=iptc, xmp=xmp)


def embed_metadata(data: bytes, fmt: ImageFormat | str, metadata: ExportMetadata, icc: bytes | None = None) -> bytes:
    """Write EXIF, IPTC and XMP (and, for TIFF, the ICC profile) into encoded bytes.

    Raises
    ------
    RuntimeError
        If exiv2 cannot parse the stream (a bug in the encoder above).
    """
    _register_namespace()
    fmt = ImageFormat(fmt)
    with pyexiv2.ImageData(data) as img:
        if fmt == ImageFormat.TIFF and icc is not None:
            img.modify_icc(icc)
        exif = dict(metadata.exif)
        if fmt == ImageFormat.JPEG:
            exif.update(EXIF_REQUIRED_JPEG)
        elif fmt == ImageFormat.TIFF:  # a compressed file's pixel dimensions; TIFF's own tags give them
            exif.pop("Exif.Photo.PixelXDimension", None)
            exif.pop("Exif.Photo.PixelYDimension", None)
        img.modify_exif(exif)
        if fmt != ImageFormat.WEBP:  # WebP has no IPTC block; XMP carries the same fields
            img.modify_iptc(metadata.iptc)
        img.modify_xmp(metadata.xmp)
        return img.get_bytes()


def avif_metadata(metadata: ExportMetadata) -> tuple[bytes, bytes]:
    """An AVIF's EXIF (a TIFF structure, as HEIF's Exif item holds it) and XMP packet for ``metadata``.

    exiv2 reads AVIF but does not write it: the tags are written by :func:`embed_metadata` into a one-pixel
    WebP (EXIF and XMP, no IPTC block, which AVIF has none of either: XMP carries the same fields) and handed
    to the AVIF encoder from there.
    """
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "WEBP", lossless=True)
    with Image.open(io.BytesIO(embed_metadata(buf.getvalue(), ImageFormat.WEBP, metadata))) as tagged:
        exif, xmp = tagged.info.get("exif", b""), tagged.info.get("xmp", b"")
    return (exif[6:] if exif.startswith(b"Exif\x00\x00") else exif), (xmp.encode() if isinstance(xmp, str) else xmp)


def read_source_gps(path: Path) -> dict[str, str]:
    """``Exif.GPSInfo.*`` tags of a source file (empty when exiv2 cannot read it)."""
    try:
        with pyexiv2.Image(str(path)) as img:
            exif = img.read_exif()
    except (RuntimeError, OSError, UnicodeDecodeError):
        return {}
    return {k: v for k, v in exif.items() if k.startswith("Exif.GPSInfo.")}


# --- size caps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedFile:
    data: bytes
    quality: int | None  # the quality used (lossy formats)
    fits: bool  # False when a size cap could not be met even at quality 1


def encode_within(
    encode: Callable[[int], bytes], quality: int, max_bytes: int | None, finish: Callable[[bytes], bytes] = lambda b: b
) -> EncodedFile:
    """Encode at ``quality``, lowering it by binary search until ``finish(encode(q))`` fits.

    Parameters
    ----------
    encode : callable
        Quality -> encoded pixels.
    quality : int
        The rendition's quality (the highest tried).
    max_bytes : int or None
        The cap; None = no cap (one encode).
    finish : callable
        Adds what the final file carries besides pixels (metadata); its size
        counts against the cap.

    Returns
    -------
    EncodedFile
        The highest quality that fits; quality 1 with ``fits=False`` when none does.

    Raises
    ------
    ValueError
        If ``quality`` is outside 1-100 or ``max_bytes`` is not positive.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1-100, got {quality}")
    first = finish(encode(quality))
    if max_bytes is None or len(first) <= max_bytes:
        return EncodedFile(first, quality, True)
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    # File size is monotone in quality to within a few bytes: search the highest that fits.
    lo, hi = 1, quality - 1
    best: bytes | None = None
    best_q = 1
    while lo <= hi:
        q = (lo + hi) // 2
        data = finish(encode(q))
        if len(data) <= max_bytes:
            best, best_q, lo = data, q, q + 1
        else:
            hi = q - 1
    if best is not None:
        return EncodedFile(best, best_q, True)
    return EncodedFile(finish(encode(1)), 1, False)


# --- one rendition ----------------------------------------------------------------------------


def export_rendition(
    pixels: np.ndarray,
    rendition: Rendition,
    metadata: ExportMetadata,
    settings: EncoderSettings = EncoderSettings(),
) -> EncodedFile:
    """Encode one rendition's pixels to the bytes of its file (profile, metadata, size cap).

    Raises
    ------
    ValueError
        If ``pixels`` do not match the rendition's bit depth.
    """
    icc = rendition_profile(rendition)
    if rendition.cmyk_profile is not None:
        pixels = to_cmyk(pixels, rendition.color_space.value, icc, rendition.rendering_intent)
    avif = rendition.format == ImageFormat.AVIF
    exif, xmp = avif_metadata(metadata) if avif else (None, None)

    def encode(q: int) -> bytes:
        return encode_pixels(pixels, rendition.format, q, rendition.bit_depth, icc, settings, rendition.ppi, exif, xmp)

    def finish(data: bytes) -> bytes:
        return data if avif else embed_metadata(data, rendition.format, metadata, icc)

    cap = rendition.max_file_kb * 1024 if rendition.max_file_kb is not None else None
    return encode_within(encode, rendition.quality, cap if rendition.format.lossy else None, finish)


def tiff_metadata_entries(rendition: Rendition, metadata: ExportMetadata) -> list[Entry]:
    """The TIFF directory entries (ICC, EXIF, GPS, IPTC, XMP) :func:`export_rendition` would give a file.

    exiv2 writes them into a one-pixel TIFF of the rendition's depth, and
    they are read back from it, for :func:`pipeline.outputs.tiff.write_tiff_strips`.
    """
    icc = rendition_profile(rendition)
    dtype = np.uint16 if rendition.bit_depth == 16 else np.uint8
    tiny = encode_pixels(np.zeros((1, 1, 3 if rendition.cmyk_profile is None else 4), dtype), ImageFormat.TIFF, 100,
                         rendition.bit_depth, icc, ppi=rendition.ppi)
    return read_ifd0(embed_metadata(tiny, ImageFormat.TIFF, metadata, icc))


def rendition_profile(rendition: Rendition) -> bytes:
    """The ICC profile a rendition's file embeds: its RGB space's, or the press's CMYK profile it is separated
    through (:mod:`pipeline.outputs.cmyk`)."""
    if rendition.cmyk_profile is not None:
        return cmyk_profile_bytes(rendition.cmyk_profile)
    return icc_profile(rendition.color_space.value)


def export_rendition_strips(
    strips: Iterable[np.ndarray],
    size: tuple[int, int],
    rendition: Rendition,
    metadata: ExportMetadata,
    path: Path,
    settings: EncoderSettings = EncoderSettings(),
    durable: bool = True,
) -> tuple[int, str]:
    """Write a TIFF rendition from its strips straight to ``path`` (atomically); its size and SHA-256.

    For pictures too large to hold (:class:`pipeline.imaging.render.RenditionStrips`):
    the same tags as :func:`export_rendition` gives a TIFF, the pixels never
    all in memory. ``durable``: as in :func:`pipeline.kernel.files.write_bytes_atomic`.

    Raises
    ------
    ValueError
        If the rendition is not a TIFF, or its compression is LZW (deflate and
        none are written strip by strip).
    OSError
        If the file cannot be written.
    """
    if rendition.format != ImageFormat.TIFF:
        raise ValueError(f"only TIFF renditions are written strip by strip, not {rendition.format.value}")
    if rendition.cmyk_profile is not None:  # each strip separated as it comes
        profile, space = cmyk_profile_bytes(rendition.cmyk_profile), rendition.color_space.value
        strips = (to_cmyk(strip, space, profile, rendition.rendering_intent) for strip in strips)
    return write_tiff_strips(path, size[0], size[1], rendition.bit_depth, strips,
                             tiff_metadata_entries(rendition, metadata), settings.tiff_compression, durable,
                             samples=3 if rendition.cmyk_profile is None else 4)


def capture_date(record: ImageRecord) -> str:
    """The ``{date}`` naming token: capture date, or ``undated`` when the source has none."""
    captured = record.camera.captured_at
    return captured.strftime("%Y-%m-%d") if isinstance(captured, datetime) else "undated"
