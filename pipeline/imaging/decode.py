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
import math
import os
import struct
import sys
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import rawpy
from PIL import Image, ImageCms, PngImagePlugin, UnidentifiedImageError

from pipeline.imaging.camera_raw import CameraRawBaseline, camera_raw_baseline
from pipeline.imaging.color import srgb_to_linear, u16_to_linear
from pipeline.imaging.dng import EXIF_TO_LIBRAW_FLIP, LIBRAW_FLIP_TO_EXIF
from pipeline.imaging.icc import read_matrix_shaper, to_linear_srgb
from pipeline.imaging.libraw_ids import read_raw_make_model
from pipeline.imaging.libtiff import quiet_unless_asked
from pipeline.imaging.sensor_defects import PhotositeScan, scan_raw
from pipeline.kernel.beside import beside
from pipeline.kernel.errors import InputError
from pipeline.kernel.records import SourceKind


@dataclass
class SourceMetadata:
    """Camera metadata and the oriented full-resolution size of a source."""

    width: int
    height: int
    orientation: int = 1
    turned_by_xmp: bool | None = None  # a RAW developed in its XMP's turn (decode_proxy's orientation), not its own
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    iso: float | None = None
    shutter_s: float | None = None
    aperture: float | None = None
    focal_length_mm: float | None = None
    white_balance_mode: str | None = None
    exposure_compensation_ev: float | None = None
    flash_fired: bool | None = None
    captured_at: datetime | None = None


def _oriented_raw_size(sizes: Any, flip: int | None = None) -> tuple[int, int]:
    """Size of LibRaw's full output: pixel-aspect stretch, then the flip (``flip``: LibRaw's code, the file's own when
    None)."""
    w, h = sizes.width, sizes.height
    aspect = sizes.pixel_aspect or 1.0
    if aspect < 1.0:
        h = int(h / aspect + 0.5)
    elif aspect > 1.0:
        w = int(w * aspect + 0.5)
    if (sizes.flip if flip is None else flip) in (5, 6):
        w, h = h, w
    return w, h


def develop_flip(raw: rawpy.RawPy, orientation: int | None) -> int | None:
    """LibRaw's flip code (its ``user_flip``) that develops an open RAW turned to the EXIF ``orientation`` the
    photographer's XMP states (:func:`~pipeline.kernel.sidecars.xmp_orientation`): None, the file's own turn, when
    ``orientation`` is None, is the file's own, or is no quarter turn (LibRaw's mirrors are not the XMP's)."""
    if orientation is None or orientation == LIBRAW_FLIP_TO_EXIF.get(raw.sizes.flip, 1):
        return None
    return EXIF_TO_LIBRAW_FLIP.get(orientation)


def _nonzero(v: float | None) -> float | None:
    return float(v) if v else None


def check_readable(path: Path) -> None:
    """Raise the operating system's error when ``path`` cannot be opened and read.

    LibRaw reports a missing file as it reports a truncated one ("Input/output
    error") and Pillow's format errors are ``OSError`` too; the one says
    nothing about the file's content (a rerun may succeed), the other is the
    content. Asking the OS first keeps the two apart.

    Raises
    ------
    OSError
        With its ``errno`` (``FileNotFoundError``, ``PermissionError``, EIO...).
    """
    with open(path, "rb") as f:
        f.read(1)


def open_raw(path: Path, fmt: str | None = None) -> rawpy.RawPy:
    """Open a RAW file, turning LibRaw's errors into :class:`InputError`.

    Parameters
    ----------
    path : Path
        The file.
    fmt : str, optional
        The RAW format its first bytes showed (``"crw"``, ``"cr2"``, ...;
        see :func:`pipeline.kernel.ingest.sniff_format`). When LibRaw then
        cannot open it, the file's structure is checked so the message can say
        "truncated" rather than "not a format LibRaw supports".

    Raises
    ------
    InputError
        If LibRaw cannot read the file's data; the message says why as precisely
        as the file's structure allows.
    OSError
        If the file cannot be opened at all (missing, unreadable): not its content's fault.
    """
    check_readable(path)
    try:
        return rawpy.imread(str(path))
    except rawpy.LibRawFileUnsupportedError:
        if fmt:
            damage = container_damage(path, fmt)
            if damage:
                raise InputError(f"truncated or damaged {fmt.upper()} file: {damage}") from None
            raise InputError(
                f"a {fmt.upper()} file by its header, but LibRaw cannot open it: damaged, or from a camera this "
                f"LibRaw ({'.'.join(map(str, rawpy.libraw_version))}) does not know"
            ) from None
        raise InputError("not a RAW format LibRaw supports, nor a raster image") from None
    except rawpy.LibRawError as exc:
        raise InputError(f"cannot read RAW file: {_libraw_message(exc)}") from None


def container_damage(path: Path, fmt: str) -> str | None:
    """What is structurally wrong with a RAW container, or None if nothing can be seen.

    CRW (Canon's CIFF) keeps its directory at the very end of the file, so a
    file cut by even a few bytes loses it and LibRaw no longer recognises
    the format; TIFF-based RAWs (CR2, NEF, DNG, ...) point from their IFDs at
    image data a cut file no longer holds.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(1 << 16)
            if fmt == "crw":
                return _ciff_damage(f, head, size)
            if head[:4] in (b"II*\x00", b"MM\x00*"):
                return _tiff_damage(f, head, size)
    except (OSError, struct.error):
        return None
    return None


def _ciff_damage(f: Any, head: bytes, size: int) -> str | None:
    endian = "<" if head[:2] == b"II" else ">"
    (heap_start,) = struct.unpack_from(endian + "I", head, 2)
    if size < heap_start + 4:
        return f"the file ends ({size} bytes) before its first block does"
    f.seek(size - 4)
    (dir_offset,) = struct.unpack(endian + "I", f.read(4))
    directory = heap_start + dir_offset
    if directory + 2 > size - 4:
        return f"its directory, which a CRW keeps at the end of the file, is missing (the file is {size} bytes)"
    f.seek(directory)
    (count,) = struct.unpack(endian + "H", f.read(2))
    if count == 0 or directory + 2 + 10 * count > size - 4:
        return f"its directory, which a CRW keeps at the end of the file, is cut (the file is {size} bytes)"
    entries = f.read(10 * count)
    for i in range(count):
        kind, length, offset = struct.unpack_from(endian + "HII", entries, 10 * i)
        # Records stored in the heap lie between the heap's start and its directory.
        if kind & 0xC000 == 0 and offset + length > dir_offset:
            return ("the 4 bytes at its end, which point at a CRW's directory, point at something else: "
                    f"the end of the file is missing (the file is {size} bytes)")
    return None


def _tiff_damage(f: Any, head: bytes, size: int) -> str | None:
    endian = "<" if head[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(endian + "I", head, 4)
    for _ in range(16):  # IFD0 and the IFDs chained after it
        if ifd == 0:
            return None
        if ifd + 2 > size:
            return f"an image directory at byte {ifd} lies past the end of the file ({size} bytes)"
        directory = _ifd(f, endian, ifd)
        if directory is None:
            return f"the image directory at byte {ifd} is cut by the end of the file ({size} bytes)"
        tags, ifd = directory
        offset, length = tags.get(0x0111), tags.get(0x0117)  # StripOffsets, StripByteCounts (single strip)
        if offset is not None and length is not None and offset + length > size:
            return f"its image data runs to byte {offset + length}, past the end of the file ({size} bytes)"
    return None


def _ifd(f: Any, endian: str, at: int, first_of: tuple[int, ...] = ()) -> tuple[dict[int, int], int] | None:
    """The single SHORT and LONG values of the TIFF image directory at byte ``at`` (tag -> value) and the next
    directory's offset; None when the file ends inside the directory. The tags in ``first_of`` also give the first
    of several SHORT values (a per-sample tag: BitsPerSample, SampleFormat)."""
    f.seek(at)
    head = f.read(2)
    if len(head) < 2:
        return None
    (count,) = struct.unpack(endian + "H", head)
    entries = f.read(12 * count + 4)
    if len(entries) < 12 * count + 4:
        return None
    tags = {}
    elsewhere = {}  # tag -> the offset of its SHORTs (an entry holds two of them in its value field, more elsewhere)
    for i in range(count):
        tag, typ, n = struct.unpack_from(endian + "HHI", entries, 12 * i)
        if (n == 1 and typ in (3, 4)) or (n == 2 and typ == 3 and tag in first_of):
            tags[tag] = struct.unpack_from(endian + ("H" if typ == 3 else "I"), entries, 12 * i + 8)[0]
        elif n > 2 and typ == 3 and tag in first_of:
            elsewhere[tag] = struct.unpack_from(endian + "I", entries, 12 * i + 8)[0]
    next_ifd = struct.unpack_from(endian + "I", entries, 12 * count)[0]
    for tag, offset in elsewhere.items():
        f.seek(offset)
        value = f.read(2)
        if len(value) == 2:
            tags[tag] = struct.unpack(endian + "H", value)[0]
    return tags, next_ifd


#: TIFF PhotometricInterpretation values by name, for what a TIFF Pillow cannot open holds.
_PHOTOMETRIC = {0: "white-is-zero grey", 1: "grey", 2: "RGB", 3: "palette", 4: "mask", 5: "CMYK", 6: "YCbCr",
                8: "CIELab", 9: "ICC Lab", 10: "ITU Lab", 32844: "LogL", 32845: "LogLuv", 34892: "linear raw"}


#: TIFF PhotometricInterpretation of RGB samples.
_RGB_PHOTOMETRIC = 2
#: TIFF tags of each sample's size and number format, and the formats of signed integers and IEEE floating point.
_BITS_PER_SAMPLE, _SAMPLE_FORMAT, _SIGNED_INTEGER, _IEEE_FLOAT = 0x0102, 0x0153, 2, 3
#: TIFF tag of how the channels are laid out, and its value for one plane per channel.
_PLANAR_CONFIGURATION, _SEPARATE_PLANES = 0x011C, 2


#: TIFF Compression values of codecs libtiff may be built without (its WebP, Zstandard, LZMA, LERC and JPEG XL codecs
#: are optional; JPEG 2000 is not libtiff's at all) or that Pillow does not decode, by name: a TIFF so compressed is a
#: valid picture that this installation cannot decode, not a damaged one.
_OPTIONAL_TIFF_CODECS = {34712: "JPEG 2000", 33003: "JPEG 2000", 33005: "JPEG 2000", 34887: "LERC", 34925: "LZMA",
                         50000: "Zstandard", 50001: "WebP", 50002: "JPEG XL", 52546: "JPEG XL",
                         # and the early scanners' and workstations' codecs Pillow does not decode
                         32809: "ThunderScan", 32766: "NeXT", 32908: "Pixar", 32909: "Pixar log"}
_COMPRESSION = 0x0103


def _first_directory(path: Path, first_of: tuple[int, ...] = ()) -> tuple[dict[int, int], frozenset[int]] | None:
    """A classic TIFF's first image directory: its single SHORT and LONG values (:func:`_ifd`, with the first of the
    ``first_of`` tags' several) and every tag it holds; None for a file that is not a TIFF or ends inside it."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if head[:4] not in (b"II*\x00", b"MM\x00*"):
                return None
            endian = "<" if head[:2] == b"II" else ">"
            at = struct.unpack_from(endian + "I", head, 4)[0]
            directory = _ifd(f, endian, at, first_of=first_of)
            if directory is None:
                return None
            f.seek(at)
            count = struct.unpack(endian + "H", f.read(2))[0]
            entries = f.read(12 * count)
    except (OSError, struct.error):
        return None
    return directory[0], frozenset(struct.unpack_from(endian + "H", entries, 12 * i)[0]
                                   for i in range(len(entries) // 12))


def tiff_codec_unread(path: Path, error: Exception) -> str | None:
    """Why a TIFF whose decode failed with ``error`` is not damaged: its compression is a codec libtiff may be built
    without (:data:`_OPTIONAL_TIFF_CODECS`), said with what to deliver instead; None for any other file."""
    first = _first_directory(path)
    codec = None if first is None else _OPTIONAL_TIFF_CODECS.get(first[0].get(_COMPRESSION, 0))
    if codec is None:
        return None
    return (f"a TIFF compressed with {codec}, which this installation's TIFF decoder does not read ({error}): "
            "save it again with LZW, Deflate or no compression, or as a JPEG")


def _unreadable_tiff(path: Path) -> str | None:
    """Why Pillow cannot open a TIFF, from its first image directory's colour model (a 16-bit CIELab TIFF from
    prepress, a LogLuv HDR), or None for a file without a readable TIFF header."""
    first = _first_directory(path, first_of=(_BITS_PER_SAMPLE, _SAMPLE_FORMAT))
    tags = {} if first is None else first[0]
    photometric = tags.get(0x0106)
    if photometric is None:
        return None
    model = _colour_model(photometric)
    samples = tiff_samples_refused(tags.get(_BITS_PER_SAMPLE), tags.get(_SAMPLE_FORMAT), model)
    if samples:
        return samples
    if tags.get(_PLANAR_CONFIGURATION) == _SEPARATE_PLANES:
        return (f"a TIFF in {model} colour stored as separate planes, one per channel, that Pillow cannot decode: "
                "save it with its channels interleaved (Photoshop: Pixel Order Interleaved) or as a JPEG")
    bits = tags.get(_BITS_PER_SAMPLE)
    if bits not in (None, 1, 8, 16):  # a scanner's 10-, 12- or 14-bit samples: "save it as an RGB TIFF" said nothing
        return (f"a TIFF of {bits}-bit samples in {model} colour that Pillow cannot decode (it reads 1-, 8- and "
                "16-bit TIFFs): save it at 8 or 16 bits, or as a JPEG")
    return f"a TIFF in {model} colour that Pillow cannot decode: save it as an RGB TIFF or JPEG"


def tiff_samples_refused(bits: int | None, sample_format: int | None, model: str) -> str | None:
    """Why a TIFF's samples (``bits`` per sample, TIFF ``SampleFormat``) are refused, or None for the 1-, 8- and
    16-bit unsigned integers postprod reads. Floating-point light (:func:`floating_point_picture`), signed integers
    and integers of more than 16 bits (scientific exports) have no agreed range: read as 16-bit pictures they came out
    black, clipped white or with pixels that are not numbers."""
    if sample_format == _IEEE_FLOAT:
        return floating_point_picture(bits, model, "TIFF")
    if sample_format == _SIGNED_INTEGER or (bits or 0) > 16:
        kind = "signed integer" if sample_format == _SIGNED_INTEGER else f"{bits}-bit integer"
        return (f"a TIFF of {kind} samples in {model} colour (a scientific or measurement export?) that postprod "
                "cannot read: it reads 8- and 16-bit unsigned pictures; save it at 8 or 16 bits")
    return None


def _colour_model(photometric: int | None) -> str:
    """A TIFF PhotometricInterpretation in words (:data:`_PHOTOMETRIC`)."""
    return _PHOTOMETRIC.get(photometric, f"colour model {photometric}")  # type: ignore[arg-type]


def _pillow_tiff_samples_refused(tags: Any) -> str | None:
    """:func:`tiff_samples_refused` of a TIFF Pillow opened (its ``tag_v2``: per-sample tags are tuples)."""
    def first(value: Any) -> Any:
        return value[0] if isinstance(value, tuple) and value else value
    bits = tags.get(_BITS_PER_SAMPLE)
    return tiff_samples_refused(max(bits) if isinstance(bits, tuple) and bits else bits,
                                first(tags.get(_SAMPLE_FORMAT)), _colour_model(first(tags.get(0x0106))))


def floating_point_picture(bits: int | None, model: str, fmt: str) -> str:
    """Why a picture of floating-point samples (an HDR merge's linear light, a scientific export) is refused: its
    values are light in no agreed range, which no 8- or 16-bit reading of it would place right."""
    return (f"a {f'{bits}-bit ' if bits else ''}floating-point {fmt} in {model} colour (an HDR merge's linear "
            "light?) that postprod cannot read: it reads 8- and 16-bit pictures; export it from the HDR tool as a "
            "16-bit TIFF or a JPEG, tone-mapped")


#: Transfer characteristics (ITU-T H.273) of high-dynamic-range pictures: their code values are not sRGB's.
_HDR_TRANSFERS = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}
#: How far into a file its colour description is looked for: HEIF and AVIF keep their item properties, PNG its
#: cICP chunk, before the pixel data.
_COLOUR_BOX_SPAN = 1 << 18


def hdr_transfer(head: bytes) -> str | None:
    """The HDR transfer a file's leading bytes declare, or None: an ISOBMFF ``colr`` box of type ``nclx``
    (HEIF, AVIF) or a PNG ``cICP`` chunk whose transfer characteristics are PQ or HLG (:data:`_HDR_TRANSFERS`).

    Camera HEIFs shot in an HDR mode (Canon's HDR PQ, Sony's HLG stills) declare theirs there; a phone's HEIC
    with a gain map is a standard-range picture (an ICC ``colr`` box) and is not one.
    """
    at = head.find(b"colrnclx")
    if at >= 0 and len(head) >= at + 12:
        return _HDR_TRANSFERS.get(struct.unpack_from(">H", head, at + 10)[0])
    at = head.find(b"cICP")
    if head[:8] == b"\x89PNG\r\n\x1a\n" and at >= 0 and len(head) >= at + 6:
        return _HDR_TRANSFERS.get(head[at + 5])
    return None


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, list[tuple[int, int]]]:
    """ISOBMFF boxes between ``start`` and ``end`` of ``data``: type -> [(payload start, payload end)], in order;
    a box running past the data is cut at its end, and its siblings after it are not read."""
    end = len(data) if end is None else end
    found: dict[bytes, list[tuple[int, int]]] = {}
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        head = 8
        if size == 1 and at + 16 <= end:
            size, head = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = end - at
        if size < head:
            break
        found.setdefault(kind, []).append((at + head, min(at + size, end)))
        at += size
    return found


def avif_clean_aperture(head: bytes, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The crop box (left, upper, right, lower) that an AVIF's clean aperture (``clap``, ISO/IEC 14496-12, on its
    primary item) cuts from its coded picture of ``size`` (width, height), as libavif reads it: the aperture's
    centre is offset from the picture's; None without one, or when it is not a whole-pixel box inside the picture.

    Pillow's AVIF plugin applies the rotation and mirroring (``irot``, ``imir``, as an EXIF orientation) but not the
    aperture: Link-U's kimono.crop.avif was delivered whole, 722 x 1024, where its file shows 385 x 330 of it.
    (libheif applies a HEIC's itself.)"""
    try:
        meta = _boxes(head).get(b"meta")
        if not meta:
            return None
        inside = _boxes(head, meta[0][0] + 4, meta[0][1])  # a full box: version and flags first
        pitm, iprp = inside.get(b"pitm"), inside.get(b"iprp")
        if not pitm or not iprp:
            return None
        primary = struct.unpack_from(">H" if head[pitm[0][0]] == 0 else ">I", head, pitm[0][0] + 4)[0]
        props = _boxes(head, *iprp[0])
        ipco, ipma = props.get(b"ipco"), props.get(b"ipma")
        if not ipco or not ipma:
            return None
        listed = _boxes(head, *ipco[0])
        order = sorted((start, kind) for kind, spans in listed.items() for start, _ in spans)  # property indices
        at = ipma[0][0]
        version, flags = head[at], int.from_bytes(head[at + 1:at + 4], "big")
        entries = struct.unpack_from(">I", head, at + 4)[0]
        at += 8
        for _ in range(entries):
            item = struct.unpack_from(">H" if version < 1 else ">I", head, at)[0]
            at += 2 if version < 1 else 4
            count = head[at]
            at += 1
            for _k in range(count):
                index = (struct.unpack_from(">H", head, at)[0] & 0x7FFF) if flags & 1 else head[at] & 0x7F
                at += 2 if flags & 1 else 1
                if item == primary and 0 < index <= len(order) and order[index - 1][1] == b"clap":
                    return _clap_box(head, order[index - 1][0], size)
    except (struct.error, IndexError):
        return None
    return None


def _clap_box(head: bytes, at: int, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    wn, wd, hn, hd, xn, xd, yn, yd = struct.unpack_from(">IIIIiIiI", head, at)
    if not (wd and hd and xd and yd) or wn % wd or hn % hd:
        return None
    (w, h), cw, ch = size, wn // wd, hn // hd
    left, top = xn / xd + (w - 1) / 2 - (cw - 1) / 2, yn / yd + (h - 1) / 2 - (ch - 1) / 2
    if left != int(left) or top != int(top) or left < 0 or top < 0 or left + cw > w or top + ch > h or not (cw and ch):
        return None
    box = (int(left), int(top), int(left) + cw, int(top) + ch)
    return None if box == (0, 0, w, h) else box


def icc_hdr_transfer(icc: bytes | None) -> str | None:
    """The HDR transfer an ICC profile's ``cicp`` tag (ICC.1:2022) declares, or None: libjxl describes a JPEG XL's
    PQ or HLG colour so (``Rec2100PQ``), and LittleCMS, converting through it, delivers it washed out too."""
    if not icc:
        return None
    try:
        count = struct.unpack_from(">I", icc, 128)[0]
        for i in range(min(count, 256)):
            signature, offset, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
            if signature == b"cicp" and size >= 12:
                return _HDR_TRANSFERS.get(icc[offset + 9])
    except (struct.error, IndexError):
        return None
    return None


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


def raw_metadata(raw: rawpy.RawPy, path: Path, flip: int | None = None) -> SourceMetadata:
    """The metadata of an open RAW; ``flip``: the turn it is developed in (:func:`develop_flip`), the file's when None."""
    w, h = _oriented_raw_size(raw.sizes, flip)
    other = raw.other
    lens = raw.lens
    make, model = read_raw_make_model(path)
    exif = raw_exif(path)
    ts = other.timestamp
    return SourceMetadata(
        width=w,
        height=h,
        orientation=LIBRAW_FLIP_TO_EXIF.get(raw.sizes.flip if flip is None else flip, 1),
        camera_make=make,
        camera_model=model,
        lens=(lens.model or None),
        iso=_nonzero(other.iso_speed) or makernote_iso(exif),
        shutter_s=_nonzero(other.shutter_speed),
        aperture=_nonzero(other.aperture),
        focal_length_mm=_nonzero(other.focal_length),
        white_balance_mode=white_balance_mode(exif.get("Exif.Photo.WhiteBalance")),
        exposure_compensation_ev=exposure_compensation(exif.get("Exif.Photo.ExposureBiasValue")),
        flash_fired=flash_fired(exif.get("Exif.Photo.Flash")),
        captured_at=ts if ts and ts.year > 1970 else None,
    )


#: EXIF WhiteBalance (tag 0xA403): 0 the camera's automatic white balance, 1 a manual one (a preset, a
#: custom white). LibRaw does not read it; exiv2 does, from the RAW's EXIF.
_EXIF_WHITE_BALANCE = 0xA403
_WHITE_BALANCE_MODES = {0: "auto", 1: "manual"}


def white_balance_mode(value: Any) -> str | None:
    """``auto`` or ``manual`` for an EXIF WhiteBalance value (a number or its text); None for anything else."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        return _WHITE_BALANCE_MODES.get(int(str(value).strip()))
    except (TypeError, ValueError):
        return None


#: Canon's CameraSettings ISO codes (``Exif.CanonCs.ISOSpeed``) that name a speed; 14, 15 (auto) and 0 (n/a) do
#: not, and a code with bit 14 set holds the speed itself in its low 14 bits (exiftool's ``Canon:CameraISO``).
_CANON_ISO_CODES = {16: 50.0, 17: 100.0, 18: 200.0, 19: 400.0, 20: 800.0}


def makernote_iso(tags: dict[str, str]) -> float | None:
    """The ISO speed a camera kept in its maker notes alone, from exiv2's tags (:func:`raw_exif`,
    :func:`pipeline.imaging.identity.read_exiv2_exif`); None when they do not say.

    Many bodies write no EXIF ISOSpeedRatings: Canon's PowerShots and IXUS of the 2000s, Nikon's D70 and
    D100, Casio's Exilims (a quarter of the 122 photos with exposure settings in drewnoakes/metadata-extractor-
    images' camera JPEGs). Without it the frame's light level (:func:`pipeline.imaging.scene_light.
    exposure_settings_ev`) is unknown, and the rules that read it (the camera's daylight white balance) do not
    apply. Read as exiftool reads them (its ``Composite:ISO``):

    - Canon: the CameraSettings code when it names a speed, else ShotInfo's BaseISO x AutoISO / 100
      (``100 * 2**(v / 32) / 32`` and ``100 * 2**(v / 32)``; a BaseISO of 0 is unknown), from arrays whose
      stated length holds them (:func:`_canon_array_ok`);
    - Nikon: the second number of ``ISOSpeed`` ("0 400");
    - Casio (type 2): ``ISO``.
    """
    def number(key: str) -> float | None:
        try:
            value = float(str(tags[key]).split()[-1])
        except (KeyError, ValueError, IndexError):
            return None
        return value if math.isfinite(value) else None

    code = number("Exif.CanonCs.ISOSpeed")
    if code is not None and _canon_array_ok(number("Exif.CanonCs.0x0000"), 17):
        c = int(code)
        if c & 0x4000:
            return float(c & 0x3FFF) or None
        if c in _CANON_ISO_CODES:
            return _CANON_ISO_CODES[c]
        base, auto = number("Exif.CanonSi.ISOSpeed"), number("Exif.CanonSi.AutoISO")
        if base and auto is not None and _canon_array_ok(number("Exif.CanonSi.0x0000"), 3):
            return float(round(100.0 * 2.0 ** (base / 32.0) / 32.0 * 2.0 ** (auto / 32.0)))
        return None
    for key in ("Exif.Nikon3.ISOSpeed", "Exif.Nikon2.ISOSpeed", "Exif.Nikon1.ISOSpeed", "Exif.Casio2.ISO"):
        value = number(key)
        if value is not None:
            return value if value > 0 else None
    return None


def _canon_array_ok(size: float | None, needed: int) -> bool:
    """Whether a Canon maker-note array whose first value is ``size`` holds at least ``needed`` values: that value
    is the array's length in bytes (exiftool's check; a damaged maker note reads 5 there, and its ISO 2468)."""
    return size is not None and size % 2 == 0 and size >= 2 * needed


def raw_exif(path: Path) -> dict[str, str]:
    """A RAW file's EXIF tags, through exiv2 (a millisecond or so): LibRaw reads neither the white balance
    mode nor the exposure compensation. Empty when exiv2 cannot read the file."""
    from pipeline.imaging.identity import read_exiv2_exif

    return read_exiv2_exif(path)


def raw_white_balance_mode(path: Path) -> str | None:
    """The EXIF WhiteBalance of a RAW file; None when it does not say (old bodies keep it in their maker
    notes only) or exiv2 cannot read the file."""
    return white_balance_mode(raw_exif(path).get("Exif.Photo.WhiteBalance"))


#: EXIF ExposureBiasValue (tag 0x9204): the photographer's exposure compensation, a signed rational in EV.
_EXIF_EXPOSURE_BIAS = 0x9204
#: Compensation beyond this many EV is no camera's dial (a corrupt or misread tag): not read.
MAX_COMPENSATION_EV = 10.0


def exposure_compensation(value: Any) -> float | None:
    """The EV of an EXIF ExposureBiasValue (a number, a rational or its ``a/b`` text); None for anything else."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        if isinstance(value, str):
            num, _, den = value.strip().partition("/")
            ev = float(num) / float(den) if den else float(num)
        else:
            ev = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return ev if math.isfinite(ev) and abs(ev) <= MAX_COMPENSATION_EV else None


#: EXIF Flash (tag 0x9209): bit 0 says whether the flash fired.
_EXIF_FLASH = 0x9209


def flash_fired(value: Any) -> bool | None:
    """Whether an EXIF Flash value (a number, or exiv2's text of it) says the flash fired; None when absent."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        return bool(int(str(value).strip().split()[0]) & 1) if value is not None else None
    except (ValueError, IndexError):
        return None


#: Sensor data with fewer distinct values than this, most photosites holding one of them
#: (:data:`STUB_MODE_SHARE`), is no picture. A real frame holds hundreds to thousands of values
#: (an 8-bit Kodak DC120 KDC about 100, a 12-bit sensor thousands) and even a lens-cap frame
#: spreads its noise over tens of them, none holding most of the frame.
STUB_MAX_VALUES = 32
STUB_MODE_SHARE = 0.5
#: Sensor data whose darkest value covers more than this share of the photosites is no picture,
#: whatever else it holds: the image data was never there (LibRaw leaves the missing part at 0)
#: and the rest is stray bytes (a stub's unread buffer differs from run to run, so a count of
#: values alone does not decide). The real RAWs of the shared data peak at 25 % (a four-plane
#: Kodak with one plane empty); a DC120 at 9 %. A frame blown out to white is not refused here.
STUB_BLACK_SHARE = 0.9
#: A file with fewer bits than this per photosite cannot hold the sensor's picture, whatever its
#: decode shows: the metadata-only stubs of the shared data hold 0.001-0.05 bits per photosite, the
#: smallest real RAW (a Kodak DC120 KDC in its JPEG mode) 0.42. Needed beside the decoded-data
#: checks: LibRaw fills a stub's missing image data from memory it never cleared, and in a process
#: that decoded another RAW before, that memory is the previous frame's photosites, a picture.
STUB_MAX_BITS_PER_PHOTOSITE = 0.1


def check_sensor_data(raw: rawpy.RawPy, file_size: int | None = None) -> None:
    """Refuse sensor data that holds no picture: a metadata-only stub, or the zeros of a truncated file.

    Judged on the decoded photosites, and on the file's size only far below
    any real RAW's: a real RAW can be small (a Kodak DC120 KDC in its JPEG mode
    holds 43 KB for an 848x976 sensor, 0.42 bits per photosite). LibRaw decodes
    a file whose image data is missing as one value repeated over most of the
    frame (zeros, with the metadata's or a previous decode's bytes here and
    there); a photograph has noise and tones. When a previous decode's bytes
    fill the whole frame (a stub decoded in a process that decoded a RAW
    before), only the size tells: :data:`STUB_MAX_BITS_PER_PHOTOSITE`.

    Parameters
    ----------
    raw : rawpy.RawPy
        The open RAW.
    file_size : int, optional
        The file's size in bytes; None skips the size floor.

    Raises
    ------
    InputError
        When the file holds fewer than :data:`STUB_MAX_BITS_PER_PHOTOSITE`
        bits per photosite, the darkest value covers more than
        :data:`STUB_BLACK_SHARE` of the sensor, or the photosites take fewer
        than :data:`STUB_MAX_VALUES` values and one of them covers more than
        :data:`STUB_MODE_SHARE`.
    rawpy.LibRawError
        When LibRaw cannot unpack the sensor data at all (the caller words it).
    """
    s = raw.sizes
    photosites = int(s.raw_width) * int(s.raw_height)
    if file_size is not None and photosites > 0 and file_size * 8 < STUB_MAX_BITS_PER_PHOTOSITE * photosites:
        raise InputError(
            f"the file holds no picture: {file_size} bytes for a {s.raw_width}x{s.raw_height} sensor is "
            f"{file_size * 8 / photosites:.3f} bits per photosite (a real RAW holds 0.4 or more): "
            "a metadata-only stub, or a truncated file"
        )
    try:
        data = raw.raw_image_visible  # unpacks: a file that ends early raises LibRaw's own error here
    except (AttributeError, ValueError):
        return  # no single-plane mosaic to judge: the decode's own checks say the rest
    if data is None or data.size == 0:
        return
    step = max(1, int(np.sqrt(data.size / 1_000_000)))  # a million photosites decide it
    values, counts = _value_counts(np.asarray(data[::step, ::step]))
    total = float(counts.sum())
    share = float(counts.max()) / total
    black_share = float(counts[0]) / total  # values are sorted: the darkest first
    # The message names the thresholds, not the measured shares: a stub's stray bytes differ from
    # one decode to the next, and a manifest must not.
    if black_share > STUB_BLACK_SHARE:
        raise InputError(
            f"the sensor data holds no picture: more than {100 * STUB_BLACK_SHARE:.0f} % of the "
            f"{s.raw_width}x{s.raw_height} sensor at its darkest value: a metadata-only stub, or a truncated file"
        )
    if values.size < STUB_MAX_VALUES and share > STUB_MODE_SHARE:
        raise InputError(
            f"the sensor data holds no picture: fewer than {STUB_MAX_VALUES} distinct values over the "
            f"{s.raw_width}x{s.raw_height} sensor, one of them on more than {100 * STUB_MODE_SHARE:.0f} % of it: "
            "a metadata-only stub, or a truncated file"
        )


def _value_counts(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``a``, ascending, and how often each occurs (``np.unique``'s answer).

    Sensor data is 16-bit at most: a histogram of it is one pass, where
    ``np.unique`` sorts the million samples (0.05 s of a small RAW's 0.3 s decode).
    """
    if a.dtype.kind == "u" and a.dtype.itemsize <= 2:
        hist = np.bincount(a.ravel(), minlength=1)
        values = np.flatnonzero(hist)
        return values.astype(a.dtype), hist[values]
    return np.unique(a, return_counts=True)


def decode_raw_linear(raw: rawpy.RawPy, half_size: bool, flip: int | None = None) -> np.ndarray:
    """Demosaic (or half-size bin) to linear 16-bit working-space RGB.

    Camera white balance, no auto-brightening, the file's own white level,
    linear gamma, sRGB primaries; LibRaw applies the file's orientation, or the
    turn ``flip`` (LibRaw's code: :func:`develop_flip`).
    """
    try:
        return raw.postprocess(
            user_flip=flip,
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


#: The smallest side, in pixels, the measurements work on (an 8x8 perceptual hash, a 3x3 Laplacian
#: with its border); shared with :mod:`pipeline.imaging.measure`.
MIN_SIDE_PX = 8


def check_measurable(rgb: np.ndarray, width: int, height: int) -> None:
    """Refuse an image (or the proxy of one) too small to measure.

    Parameters
    ----------
    rgb : ndarray, (h, w, 3)
        The analysis proxy.
    width, height : int
        The oriented full-resolution size (named in the message).

    Raises
    ------
    InputError
        When the source or its proxy is under :data:`MIN_SIDE_PX` on a side: a
        1x1 tracking pixel, an icon, or a strip so thin (over 200:1) that the
        proxy loses it.
    """
    if min(width, height) < MIN_SIDE_PX:
        raise InputError(
            f"image is {width}x{height} px: too small to measure (postprod needs at least {MIN_SIDE_PX} px a side)"
        )
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE_PX:
        raise InputError(
            f"image is {width}x{height} px: too narrow to measure (its {w}x{h} analysis proxy is under "
            f"{MIN_SIDE_PX} px a side)"
        )


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
try:  # JPEG XL (cameras and phones writing it, exports from Lightroom) through libjxl's Pillow plugin
    import pillow_jxl  # noqa: F401  (registers the plugin on import)
except ImportError:  # pragma: no cover - optional
    pass
quiet_unless_asked()  # libtiff's C-level complaints about damaged TIFFs kept off the console
#: Pillow refuses at open a picture above twice its own ``MAX_IMAGE_PIXELS`` (179 MP by default) before postprod's
#: limit is read (the decode stage's ``max_megapixels``: 250 MP by default, at most 2000): a 200 MP phone HEIC was
#: refused as "could be decompression bomb DOS attack". Set to half that ceiling, so that postprod's own limits (the
#: pixels, then the decode's memory budget, both from the header, before any pixel is read) decide and word it.
Image.MAX_IMAGE_PIXELS = 1_000_000_000
#: Pillow refuses a PNG one of whose text or ICC chunks inflates past 1 MB ("Decompressed data too large for
#: PngImagePlugin.MAX_TEXT_CHUNK"): exiv2's test photo with a 1.6 MB ICC profile was refused as corrupt. Printer and
#: LUT profiles, and Photoshop's XMP with its document history, run to several MB. 16 MB a chunk, within Pillow's
#: own 64 MB for all of a file's text, keeps a compressed-text bomb bounded.
PngImagePlugin.MAX_TEXT_CHUNK = 16 * 2**20
_SRGB_PROFILE = ImageCms.createProfile("sRGB")
_EXIF_IFD = 0x8769
_MAKER_NOTE = 0x927C
#: EXIF PhotographicSensitivity (ISOSpeedRatings), a SHORT: 65535 means "this or more" (EXIF 2.3), and the speed
#: itself is then in ISOSpeed (0x8833, a LONG), as bodies shooting at ISO 102400 and above write it.
_EXIF_ISO, _EXIF_ISO_SPEED = 0x8827, 0x8833


def exif_iso(sensitivity: float | None, iso_speed: float | None) -> float | None:
    """The ISO speed of EXIF PhotographicSensitivity and ISOSpeed: the first, unless it is the SHORT's ceiling
    (65535) and ISOSpeed says more."""
    if sensitivity is not None and sensitivity >= 65535 and iso_speed is not None and iso_speed > sensitivity:
        return iso_speed
    return sensitivity


def _exif_metadata(im: Image.Image, w: int, h: int, path: Path | None = None, oriented: bool = False
                   ) -> SourceMetadata:
    """What a raster's EXIF says (Pillow's reading); the ISO from the maker notes through exiv2
    (:func:`makernote_iso`) when the EXIF has none and ``path`` is given. ``w`` x ``h`` is the stored size, or
    with ``oriented`` the size already turned by the orientation (:func:`pillow_orients`)."""
    from pipeline.imaging.identity import read_exiv2_exif

    exif = im.getexif()
    sub = exif.get_ifd(_EXIF_IFD) if exif else {}
    orientation = int(exif.get(0x0112, 1) or 1) if exif else 1
    if orientation not in range(1, 9):
        orientation = 1
    if orientation in (5, 6, 7, 8) and not oriented:
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
        iso=exif_iso(num(sub.get(_EXIF_ISO)), num(sub.get(_EXIF_ISO_SPEED)))
        or (makernote_iso(read_exiv2_exif(path)) if path is not None and _MAKER_NOTE in sub else None),
        shutter_s=num(sub.get(0x829A)),
        aperture=num(sub.get(0x829D)),
        focal_length_mm=num(sub.get(0x920A)),
        white_balance_mode=white_balance_mode(sub.get(_EXIF_WHITE_BALANCE)),
        exposure_compensation_ev=exposure_compensation(sub.get(_EXIF_EXPOSURE_BIAS)),
        flash_fired=flash_fired(sub.get(_EXIF_FLASH)),
        captured_at=captured,
    )


#: Bytes per pixel Pillow holds once an image of a mode is decoded (RGB is stored as 4).
_PIL_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "LA": 4, "PA": 4, "La": 4, "RGB": 4, "RGBA": 4, "RGBX": 4, "RGBa": 4,
                        "YCbCr": 4, "LAB": 4, "HSV": 4, "CMYK": 4, "I": 4, "F": 4, "I;16": 2, "I;16B": 2,
                        "I;16L": 2, "I;16N": 2}
#: Memory a raster decode may take by default: Pillow's decoded image plus the float result.
DEFAULT_DECODE_BUDGET_BYTES = 1200 * 1024 * 1024
# Rows converted to float at a time: a few MB however wide the image.
_STRIP_BYTES = 8 << 20
_SRGB8_TO_LINEAR = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0)
_EXIF_TO_NUMPY = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def decode_budget(width: int, height: int, mode: str, out_size: tuple[int, int]) -> int:
    """Bytes :func:`decode_raster` needs for an image: Pillow's decode, the float result and a strip."""
    decoded = width * height * _PIL_BYTES_PER_PIXEL.get(mode, 8)
    return decoded + out_size[0] * out_size[1] * 3 * 4 + 4 * _STRIP_BYTES


def _area_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For area resampling ``n_in`` -> ``n_out``: per input index, its two output indices and weights.

    Output ``j`` averages input ``[j * n_in / n_out, (j + 1) * n_in / n_out)``; an input pixel
    straddles at most two outputs (``n_out <= n_in``). Same weights as OpenCV's INTER_AREA.
    """
    scale = n_in / n_out
    starts = np.arange(n_in, dtype=np.float64)
    first = np.minimum((starts / scale).astype(np.int64), n_out - 1)
    edge = (first + 1) * scale  # where output `first` ends, in input coordinates
    w_first = np.clip(edge - starts, 0.0, 1.0)
    second = np.minimum(first + 1, n_out - 1)
    w_second = 1.0 - w_first
    return first, second, np.stack([w_first, w_second]) / scale


#: Modes that carry an alpha channel.
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def flattened(strip: Image.Image) -> Image.Image:
    """``strip`` with its transparency composited onto white in its own encoding, as a browser or a viewer shows it
    (a product cut out on a transparent background, a logo); unchanged without transparency.

    Dropping the alpha channel instead showed whatever the transparent pixels hold, mostly black: a cut-out
    product was delivered on black and flagged for its crushed shadows.
    """
    if not has_transparency(strip):
        return strip
    # A palette's or a grey image's transparent entry becomes alpha 0 (an RGBA strip is used as it is).
    strip = _straight_alpha(strip)
    rgba = strip if strip.mode == "RGBA" else strip.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def _straight_alpha(im: Image.Image) -> Image.Image:
    """``im`` with a premultiplied grey and alpha (Pillow's ``La``: a TIFF's associated alpha) as straight ``LA``,
    the one conversion Pillow makes from it (to RGBA or RGB it raises "conversion from La to L not supported", and
    libtiff's grey-with-alpha sample was refused as corrupt); any other mode unchanged."""
    return im.convert("LA") if im.mode == "La" else im


#: Formats whose writers often leave the fourth byte of a 32-bit pixel 0 when they store no alpha (a TGA whose
#: attribute bits say none, a BMP's X8R8G8B8): there an alpha of 0 everywhere is no alpha, as OpenImageIO and image
#: viewers read it. The TGA test suite's 32-bit pictures (OpenImageIO's CTC32 and UTC32) were refused as wholly
#: transparent.
_UNUSED_ALPHA_FORMATS = frozenset({"TGA", "BMP", "DIB"})


def _alpha_unused(im: Image.Image) -> bool:
    """Whether ``im`` (loaded) is a TGA or BMP whose alpha is 0 everywhere: an alpha its writer did not use."""
    return im.format in _UNUSED_ALPHA_FORMATS and im.mode == "RGBA" and im.getchannel("A").getextrema() == (0, 0)


def has_transparency(im: Image.Image) -> bool:
    """Whether ``im`` carries an alpha channel or a transparent palette or grey entry."""
    return im.mode in _ALPHA_MODES or "transparency" in im.info


#: Pillow's modes of a grey picture at more than 8 bits.
_GREY16_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _grey16_flattened(band: Image.Image, transparent: int | None) -> np.ndarray:
    """A band of a 16-bit grey picture whose transparency is one grey level (a PNG's tRNS) as linear RGB flattened
    onto white, with its opacity as a fourth plane. Pillow's own conversion to RGBA left every pixel transparent
    (PngSuite's tbwn0g16, 44 % transparent, was refused as wholly transparent)."""
    values = np.asarray(band)
    alpha = (values != transparent).astype(np.float32) if transparent is not None else np.ones(values.shape, np.float32)
    rgb = _strip_to_linear(band, None)
    rgb *= alpha[..., None]
    rgb += 1.0 - alpha[..., None]  # white where transparent (linear white is 1)
    return np.dstack([rgb, alpha])


def _strip_to_linear(strip: Image.Image, transform: ImageCms.ImageCmsTransform | None) -> np.ndarray:
    """A band of rows, in any mode, to linear float32 RGB (the same conversions the whole image had); transparency
    flattened onto white (:func:`flattened`)."""
    if strip.mode in _GREY16_MODES:
        arr = np.asarray(strip, dtype=np.float32) / 65535.0
        return np.repeat(srgb_to_linear(arr)[..., None], 3, axis=2)
    strip = flattened(strip)
    if transform is not None:
        if strip.mode != transform.input_mode:
            strip = strip.convert(transform.input_mode)
        strip = ImageCms.applyTransform(strip, transform)
    if strip.mode != "RGB":
        strip = strip.convert("RGB")
    return cv2.LUT(np.asarray(strip), _SRGB8_TO_LINEAR)  # 3x faster than indexing with numpy


def _is_srgb(icc: bytes | None) -> bool:
    """Whether an embedded ICC profile is sRGB's (by its description), or there is none (sRGB assumed)."""
    if not icc:
        return True
    try:
        return "srgb" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).lower()
    except (ImageCms.PyCMSError, OSError, ValueError):
        return True  # an unreadable profile is read as sRGB (_icc_transform)


def _stored_at_16_bits(im: Image.Image) -> bool:
    """Whether an opened, not yet decoded PNG or TIFF holds 16-bit RGB or RGBA samples (a TIFF's photometric
    interpretation RGB: four 16-bit samples of a CMYK one, a print shop's, are ink, not RGB and alpha)."""
    if im.format == "PNG":
        return bool(im.tile) and str(im.tile[0][3]).startswith(("RGB;16", "RGBA;16"))
    if im.format == "TIFF":
        tags = getattr(im, "tag_v2", {})
        bits = tags.get(258)
        return (tags.get(262) == _RGB_PHOTOMETRIC and isinstance(bits, tuple) and len(bits) in (3, 4)
                and all(b == 16 for b in bits))
    return False


def _deep_planes(im: Image.Image) -> int:
    """The bits a sample of an opened TIFF that stores samples of more than 8 bits as separate planes, one per
    channel (Photoshop's Pixel Order: Per Channel), or 0 for any other picture: Pillow's and OpenCV's decodes of one
    are noise (OpenImageIO's libtiffpic depth series: rgb-planar-16 and separated-planar-16 were delivered so);
    tifffile reads an uncompressed or Deflate one."""
    if im.format != "TIFF":
        return 0
    tags = getattr(im, "tag_v2", {})
    bits = tags.get(_BITS_PER_SAMPLE)
    deepest = max(bits) if isinstance(bits, tuple) and bits else (bits or 0)
    return deepest if tags.get(_PLANAR_CONFIGURATION) == _SEPARATE_PLANES and deepest > 8 else 0


def pillow_orients(im: Image.Image) -> bool:
    """Whether Pillow turns ``im``'s pixels by its orientation itself: its TIFF plugin reports the turned size and
    transposes the pixels as it loads them (``TiffImageFile.load_end``), so the decode must not turn them again
    (a TIFF tagged to be turned 90 degrees came out turned twice)."""
    return im.format == "TIFF"


def _read_16_bit(path: Path, opencv: bool = True) -> np.ndarray | None:
    """A 16-bit picture's stored samples, RGB(A) order, through OpenCV (LZW and Deflate TIFFs, PNGs), or with
    ``opencv`` false (a TIFF whose orientation tag is not 1: OpenCV 5.1 cannot read one, and says so on the
    console) or when OpenCV cannot, an uncompressed TIFF through tifffile; None when neither can (Pillow's
    decode then does)."""
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if opencv else None
    if arr is not None and arr.ndim == 3:
        return np.ascontiguousarray(arr[..., [2, 1, 0, 3][: arr.shape[2]]])  # BGR(A) to RGB(A)
    try:
        import tifffile

        with tifffile.TiffFile(path) as t:
            page = t.pages[0]
            arr = page.asarray()
            if page.planarconfig == 2 and arr.ndim == 3 and arr.shape[0] in (3, 4):  # planes stored apart
                arr = np.moveaxis(arr, 0, -1)
        return np.ascontiguousarray(arr)
    except Exception:  # noqa: BLE001  (not a TIFF, or a compression tifffile needs imagecodecs for)
        return None


def _sixteen_bit_rgb(path: Path, icc: bytes | None, size: tuple[int, int], out: tuple[int, int],
                     max_bytes: int, opencv: bool = True) -> np.ndarray | None:
    """A 16-bit RGB or RGBA PNG or TIFF (:func:`_stored_at_16_bits`) of stored ``size`` (width, height) at its
    full precision, as stored (not turned by its orientation): linear sRGB at ``out`` (area-averaged in linear
    light), transparency flattened onto white with the opacity as a fourth plane; None when its ICC profile is
    not a matrix/TRC one (a LUT profile) or OpenCV cannot read it within ``max_bytes`` (Pillow's
    colour-managed 8-bit decode then takes it).

    Pillow holds a 16-bit colour picture at 8 bits: a master exported at 16 bits (a scanner's TIFF, a
    retoucher's ProPhoto TIFF) lost its shadows' gradations before any exposure lift, 16 levels where a dark
    gradient held 1,024. OpenCV reads it whole, and its profile (Adobe RGB, ProPhoto, Display P3: matrix/TRC
    profiles) is applied in floating point (:func:`pipeline.imaging.icc.to_linear_srgb`), where Pillow's
    LittleCMS converts 8-bit colour pictures only.
    """
    (w, h), (out_w, out_h) = size, out
    srgb = _is_srgb(icc)
    profile = None if srgb else read_matrix_shaper(icc)  # type: ignore[arg-type]
    if (profile is None and not srgb) or w * h * (8 + 12 + 16) > max_bytes:
        return None
    arr = _read_16_bit(path, opencv)  # the stored orientation: EXIF's is applied by the caller
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[:2] != (h, w):
        return None
    encoded = arr[..., :3].astype(np.float32) / 65535.0
    if arr.shape[2] == 4:  # onto white in the encoding, as :func:`flattened` does the 8-bit pictures
        opacity = arr[..., 3].astype(np.float32) / 65535.0
        encoded = encoded * opacity[..., None] + (1.0 - opacity[..., None])
    linear = srgb_to_linear(encoded) if profile is None else to_linear_srgb(encoded, profile)
    planes = [linear.astype(np.float32)]
    if arr.shape[2] == 4:
        planes.append(opacity[..., None])
    out = np.concatenate(planes, axis=2) if len(planes) > 1 else planes[0]
    if (out_w, out_h) != (w, h):
        out = cv2.resize(out, (out_w, out_h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out, dtype=np.float32)


def _icc_transform(im: Image.Image, icc: bytes | None) -> ImageCms.ImageCmsTransform | None:
    if not icc:
        return None
    mode = im.mode if im.mode in ("RGB", "RGBA", "L", "CMYK") else "RGB"
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.buildTransform(src, _SRGB_PROFILE, mode, "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None  # unreadable profile: assume sRGB


def decode_raster(
    path: Path, long_edge: int | None, max_pixels: int, max_bytes: int = DEFAULT_DECODE_BUDGET_BYTES,
    downscale: bool = True,
) -> tuple[np.ndarray, SourceMetadata]:
    """:func:`decode_raster_with_opacity` without the opacity: linear RGB, transparency flattened onto white."""
    rgb, meta, _ = decode_raster_with_opacity(path, long_edge, max_pixels, max_bytes, downscale)
    return rgb, meta


def decode_raster_with_opacity(
    path: Path, long_edge: int | None, max_pixels: int, max_bytes: int = DEFAULT_DECODE_BUDGET_BYTES,
    downscale: bool = True,
) -> tuple[np.ndarray, SourceMetadata, np.ndarray | None]:
    """Decode a raster image to linear working-space RGB, within a memory budget, and its opacity.

    The size and mode in the header say what the decode will take before any
    pixel is read: an image above ``max_pixels`` or ``max_bytes`` is refused.
    Pixels are then converted to linear float a band of rows at a time and,
    when ``long_edge`` asks for less, area-averaged in linear light band by
    band, so a 169-megapixel PNG costs Pillow's decode (680 MB) plus the small
    result, not ten float copies of it.

    Parameters
    ----------
    path : Path
        JPEG, TIFF, PNG, WebP, HEIC/AVIF (pillow-heif) and JPEG XL (pillow-jxl-plugin).
    long_edge : int or None
        Decode no larger than needed for this long edge (JPEG DCT scaling),
        then area-downscale; ``None`` for full resolution.
    max_pixels : int
        Refuse larger images (decompression bombs).
    max_bytes : int
        Refuse images whose decode would take more memory than this (Pillow's
        image, the float result and a band of rows).
    downscale : bool
        False to stop after the decoder's own scaling (JPEG's DCT scaling to at
        least ``long_edge``): for a caller that resamples the picture itself,
        so it is resampled once; still area-shrunk band by band when the
        whole decode would pass ``max_bytes``.

    Returns
    -------
    rgb : ndarray, float32, (H, W, 3)
        Linear RGB, oriented; transparency flattened onto white (:func:`flattened`).
    meta : SourceMetadata
    opacity : ndarray, float32, (H, W), or None
        For a picture with transparency (an alpha channel, a transparent palette entry), the share of each
        pixel that is opaque, resampled and oriented as ``rgb``; None without.

    Raises
    ------
    InputError
        If Pillow cannot identify or fully decode the file, or it is too large.
    OSError
        If the file cannot be opened at all (missing, unreadable): not its content's fault.
    """
    check_readable(path)
    try:
        with warnings.catch_warnings():
            # Pillow warns above 89 MP; the limits are checked here, against this function's own bounds.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise InputError(
                        f"image is {w}x{h} ({w * h / 1e6:.0f} MP), above the {max_pixels / 1e6:.0f} MP limit"
                    )
                icc = im.info.get("icc_profile")
                transfer = icc_hdr_transfer(icc)
                boxes = b""  # the leading boxes or chunks, where a HEIF, AVIF or PNG describes its colour
                if im.format in ("HEIF", "AVIF", "PNG"):
                    with open(path, "rb") as f:
                        boxes = f.read(_COLOUR_BOX_SPAN)
                if transfer is None and boxes:
                    transfer = hdr_transfer(boxes)
                if transfer is not None:
                    raise InputError(
                        f"an HDR picture ({transfer} transfer): postprod develops standard-range pictures and "
                        "RAWs, and read as one this would come out washed out; export it as an SDR JPEG or HEIF, "
                        "or deliver the RAW")
                if im.format == "AVIF":  # its clean aperture, before its orientation turns it (as the file says)
                    aperture = avif_clean_aperture(boxes, im.size)
                    if aperture is not None:
                        im = im.crop(aperture)  # keeps its info: the EXIF orientation Pillow made of irot and imir
                        w, h = im.size
                if im.mode == "F":  # 32-bit float samples, one channel (a grey TIFF, a PFM): read as 0-1 it was black
                    raise InputError(floating_point_picture(32, "grey", im.format or "picture"))
                if im.format == "TIFF":  # Pillow opens a grey TIFF of signed or 32-bit integers as 16-bit grey
                    refused = _pillow_tiff_samples_refused(getattr(im, "tag_v2", {}))
                    if refused:
                        raise InputError(refused)
                sixteen = _stored_at_16_bits(im)  # before the EXIF: reading a PNG's may decode it (and drop its tile)
                turned = pillow_orients(im)
                meta = _exif_metadata(im, w, h, path, oriented=turned)
                if long_edge and im.format == "JPEG":
                    im.draft("RGB", (long_edge, long_edge))
                dw, dh = im.size  # after DCT scaling
                # Not downscaled when asked, unless the whole decode would not fit the budget: a
                # band-wise area shrink (then the caller's resampling) beats refusing the file.
                whole_fits = decode_budget(dw, dh, im.mode, (dw, dh)) <= max_bytes
                scale = min(1.0, long_edge / max(dw, dh)) if long_edge and (downscale or not whole_fits) else 1.0
                out_w, out_h = max(1, round(dw * scale)), max(1, round(dh * scale))
                need = decode_budget(dw, dh, im.mode, (out_w, out_h))
                if need > max_bytes:
                    raise InputError(
                        f"image is {w}x{h} ({im.mode}): decoding it takes about {need / 2**20:.0f} MB, above the "
                        f"{max_bytes / 2**20:.0f} MB budget (raise the stage's max_decode_mb to accept it)"
                    )
                # OpenCV reads the stored pixels: where Pillow would have turned them, the sizes are the stored ones.
                across = turned and meta.orientation in (5, 6, 7, 8)
                stored = ((dh, dw), (out_h, out_w)) if across else ((dw, dh), (out_w, out_h))
                planar = _deep_planes(im)
                deep = (_sixteen_bit_rgb(path, icc, *stored, max_bytes,
                                         opencv=not (planar or (turned and meta.orientation != 1)))
                        if sixteen else None)
                if planar and deep is None:
                    raise InputError(
                        f"a {planar}-bit TIFF in {_colour_model(im.tag_v2.get(0x0106))} "
                        "colour stored as separate planes, one per channel, that postprod cannot decode (Pillow and "
                        "OpenCV read it as noise): save it with its channels interleaved (Photoshop: Pixel Order "
                        "Interleaved) or as a JPEG")
                if deep is not None:
                    rgb, transparent = deep, deep.shape[2] == 4
                else:
                    im.load()
                    if _alpha_unused(im):
                        im = im.convert("RGB")
                    transparent = has_transparency(im)
                    rgb = _linear_area_resize(im, _icc_transform(im, icc), out_w, out_h, opacity=transparent)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        read = _tiff_by_opencv(path, long_edge, max_pixels, max_bytes, downscale)
        if read is not None:
            return read
        raise InputError(_unreadable_tiff(path) or _unopened(path)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        read = _tiff_by_opencv(path, long_edge, max_pixels, max_bytes, downscale, photometric=_YCBCR)
        if read is not None:
            return read
        raise InputError(tiff_codec_unread(path, exc) or f"corrupt or truncated image: {exc}") from None
    except RuntimeError as exc:  # a plugin's decoder (JPEG XL's) on a file it cannot decode: its first sentence
        said = " ".join(str(exc).split()).split(". ")[0] or type(exc).__name__
        raise InputError(f"corrupt or truncated image: the {path.suffix.lstrip('.').upper() or 'image'} decoder "
                         f"failed ({said})") from None
    except MemoryError:
        raise InputError("out of memory while decoding the image") from None
    orient = _EXIF_TO_NUMPY.get(meta.orientation) if deep is not None or not turned else None
    if orient is not None:
        rgb = orient(rgb)
    opacity = np.ascontiguousarray(rgb[..., 3]) if transparent else None
    return np.ascontiguousarray(rgb[..., :3], dtype=np.float32), meta, opacity


#: TIFF PhotometricInterpretation (grey, RGB, YCbCr) and Compression values (none, LZW, JPEG, Deflate, PackBits) of the
#: TIFFs :func:`_tiff_by_opencv` reads.
_OPENCV_PHOTOMETRIC = frozenset({1, 2, 6})
_YCBCR = frozenset({6})
_OPENCV_COMPRESSION = frozenset({1, 5, 7, 8, 32946, 32773})
#: TIFF tags of the picture's size, orientation and ICC profile.
_IMAGE_WIDTH, _IMAGE_LENGTH, _ORIENTATION, _ICC_PROFILE = 0x0100, 0x0101, 0x0112, 0x8773


def _tiff_by_opencv(path: Path, long_edge: int | None, max_pixels: int, max_bytes: int, downscale: bool = True,
                    photometric: frozenset[int] | None = None) -> tuple[np.ndarray, SourceMetadata, None] | None:
    """A TIFF that Pillow cannot open or decode, read by OpenCV's libtiff, which reads what Pillow's decoders do not
    (a camera's YCbCr 4:2:2 TIFF, as Fujifilm's DSCF files are; samples of 2 to 14 bits, scaled to 8 or 16 bits),
    as :func:`decode_raster_with_opacity` returns it: linear sRGB, at about ``long_edge`` unless ``downscale`` is
    off, turned by its orientation, no opacity (an alpha is flattened onto white). None for any other file, one over
    ``max_pixels`` or ``max_bytes``, one with an ICC profile (Pillow's path alone converts a colour space), or one
    OpenCV cannot read either: the caller's message then stands. Camera metadata is not read (Pillow could not).

    Where Pillow opened the file but its decode failed, only a ``photometric`` one is tried (a YCbCr TIFF's chroma
    subsampling is what Pillow lacks; any other such failure is damage): on a damaged LZW, Deflate or PackBits TIFF
    OpenCV returns the rows before the damage and black after them, where Pillow rightly says "corrupt". A picture
    whose last row is black in every channel is taken for such a partial read, and not used.
    """
    first = _first_directory(path, first_of=(_BITS_PER_SAMPLE, _SAMPLE_FORMAT))
    if first is None:
        return None
    tags, held = first
    # Only what OpenCV was seen to read right: grey, RGB or YCbCr unsigned samples of at most 16 bits, interleaved
    # (it reads deep planes as noise: :func:`_deep_planes`), in a codec every libtiff has (where it lacks one it
    # returns a black picture, not nothing; and it takes a CIELab picture's samples for RGB).
    if (tags.get(0x0106) not in (photometric or _OPENCV_PHOTOMETRIC) or tags.get(_SAMPLE_FORMAT, 1) != 1
            or tags.get(_BITS_PER_SAMPLE, 0) > 16 or tags.get(_PLANAR_CONFIGURATION, 1) == _SEPARATE_PLANES
            or tags.get(_COMPRESSION, 1) not in _OPENCV_COMPRESSION):
        return None
    w, h = tags.get(_IMAGE_WIDTH, 0), tags.get(_IMAGE_LENGTH, 0)
    if _ICC_PROFILE in held or not (w and h) or w * h > max_pixels or w * h * (8 + 12 + 16) > max_bytes:
        return None
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # as stored: the orientation is applied below
    if (arr is None or arr.shape[:2] != (h, w) or arr.dtype not in (np.uint8, np.uint16) or arr.min() == arr.max()
            or not arr[-1].any()):
        return None  # (a data stream libtiff stops in comes back black from there: the caller's reason stands)
    full = float(np.iinfo(arr.dtype).max)
    if arr.ndim == 2:
        encoded = np.repeat(arr[..., None].astype(np.float32) / full, 3, axis=2)
    elif arr.shape[2] in (3, 4):
        encoded = arr[..., 2::-1].astype(np.float32) / full  # OpenCV's BGR(A)
        if arr.shape[2] == 4:  # onto white in the encoding, as :func:`flattened` does
            opacity = arr[..., 3:].astype(np.float32) / full
            encoded = encoded * opacity + (1.0 - opacity)
    else:
        return None
    rgb = srgb_to_linear(encoded).astype(np.float32)
    scale = min(1.0, long_edge / max(w, h)) if long_edge and downscale else 1.0
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    orientation = tags.get(_ORIENTATION, 1) if tags.get(_ORIENTATION, 1) in range(1, 9) else 1
    orient = _EXIF_TO_NUMPY.get(orientation)
    if orient is not None:
        rgb = orient(rgb)
    across = orientation in (5, 6, 7, 8)
    meta = SourceMetadata(width=h if across else w, height=w if across else h, orientation=orientation)
    return np.ascontiguousarray(rgb, dtype=np.float32), meta, None


def _linear_area_resize(im: Image.Image, transform: ImageCms.ImageCmsTransform | None, out_w: int, out_h: int,
                        opacity: bool = False) -> np.ndarray:
    """``im`` in linear float RGB at ``out_w`` x ``out_h`` (area-averaged in linear light), band by band; with
    ``opacity``, its opacity (its alpha, averaged the same way) as a fourth plane."""
    w, h = im.size
    planes = 4 if opacity else 3
    rows = max(1, _STRIP_BYTES // (w * planes * 4))

    def strip(y0: int, y1: int) -> np.ndarray:
        band = im.crop((0, y0, w, y1))
        if not opacity:
            return _strip_to_linear(band, transform)
        if band.mode in _GREY16_MODES:
            return _grey16_flattened(band, im.info.get("transparency"))
        rgba = _straight_alpha(band).convert("RGBA")  # once: its alpha is the opacity, and it is flattened from it
        alpha = np.asarray(rgba, dtype=np.uint8)[..., 3].astype(np.float32) / 255.0
        return np.dstack([_strip_to_linear(rgba, transform), alpha])

    if (out_w, out_h) == (w, h):
        out = np.empty((h, w, planes), dtype=np.float32)
        for y in range(0, h, rows):
            out[y : y + rows] = strip(y, min(h, y + rows))
        return out
    out = np.zeros((out_h, out_w * planes), dtype=np.float32)
    first, second, weights = _area_weights(h, out_h)
    for y in range(0, h, rows):
        y1 = min(h, y + rows)
        band = strip(y, y1)
        # Across: OpenCV's area filter on the band (whole columns, so exact); down: the row weights.
        if out_w != w:
            band = cv2.resize(band, (out_w, y1 - y), interpolation=cv2.INTER_AREA)
        band = band.reshape(y1 - y, -1)
        for index, weight in ((first[y:y1], weights[0, y:y1]), (second[y:y1], weights[1, y:y1])):
            # Rows going to one output row are consecutive: sum each run (no BLAS call for a 7x53 product:
            # a threaded BLAS spent 6 s of a 169 MP decode waking its threads).
            starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
            out[index[starts]] += np.add.reduceat(band * weight[:, None].astype(np.float32), starts, axis=0)
    return out.reshape(out_h, out_w, planes)


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
    camera_raw : CameraRawBaseline or None
        For a RAW, Camera Raw's as-shot white balance, baseline exposure and
        default crop (:mod:`pipeline.imaging.camera_raw`); None for a raster
        file, or a DNG whose first IFD cannot be read.
    rgb16 : ndarray, uint16, (H, W, 3), or None
        For a RAW, the proxy's 16-bit values (``rgb == u16_to_linear(rgb16)``).
    photosites : PhotositeScan or None
        For a RAW decoded with ``scan_photosites``, the photosites far from
        their same-colour neighbours (:func:`pipeline.imaging.sensor_defects.scan_raw`),
        read from the raw data while LibRaw had it; None otherwise.
    opacity : ndarray, float32, (H, W), or None
        For a raster picture with transparency, the opacity of each proxy pixel (``rgb`` is flattened onto
        white there): the exposure is metered on the opaque part.
    """

    rgb: np.ndarray
    meta: SourceMetadata
    libraw_rgb16: np.ndarray | None = None
    half_size: bool = False
    camera_raw: CameraRawBaseline | None = None
    rgb16: np.ndarray | None = None
    photosites: PhotositeScan | None = None
    opacity: np.ndarray | None = None


def proxy_wants_half_size(width: int, height: int, long_edge: int) -> bool:
    """Whether LibRaw's half-size decode still gives a proxy near ``long_edge`` (within 3/4 of it)."""
    return max(width, height) / 2 >= 0.75 * long_edge


def decode_proxy(
    path: Path,
    kind: SourceKind,
    long_edge: int,
    max_pixels: int,
    file_size: int | None = None,
    fmt: str | None = None,
    max_bytes: int = DEFAULT_DECODE_BUDGET_BYTES,
    scan_photosites: bool = False,
    threads: int = 1,
    orientation: int | None = None,
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
    file_size : int, optional
        The file's size in bytes (read from the file when not given).
    fmt : str, optional
        The RAW format the file's first bytes showed (see :func:`open_raw`), so
        a file LibRaw cannot open is told truncated from unsupported.
    max_bytes : int
        Memory budget of a raster decode (see :func:`decode_raster`).
    scan_photosites : bool
        For a RAW, also look for hot, dead and stuck photosites in the raw
        data (:attr:`Decoded.photosites`): LibRaw holds it only while the file
        is open, so this is the one place to do it (about 0.05 CPU-seconds per 6 MP
        frame: benchmarks/EQUIPMENT.md).
    threads : int
        Above 1, the photosite scan runs beside LibRaw's decode (on a copy of the raw data), where the
        caller has CPUs to spare (:mod:`pipeline.kernel.beside`); the same scan.
    orientation : int, optional
        For a RAW, the EXIF orientation the photographer's XMP turned it to (:func:`develop_flip`): the proxy
        and the metadata are in that turn. None: the file's own.

    Returns
    -------
    Decoded

    Raises
    ------
    InputError
        If the file is empty, not an image, too large (in pixels or in the
        memory its decode takes), truncated, corrupt, too small to measure
        (:func:`check_measurable`), or decodes to a constant picture; the
        message says which.
    """
    if file_size is None:
        file_size = path.stat().st_size
    if file_size == 0:
        raise InputError("empty file (0 bytes)")
    if SourceKind(kind) is SourceKind.RASTER:
        rgb, meta, opacity = decode_raster_with_opacity(path, long_edge, max_pixels, max_bytes)
        decoded = Decoded(rgb, meta, opacity=opacity)
    else:
        unknown = SourceKind(kind) is SourceKind.UNKNOWN
        decoded = _decode_raw_proxy(
            path, long_edge, max_pixels, file_size, unknown, None if unknown else fmt, scan_photosites=scan_photosites,
            threads=threads, orientation=orientation,
        )
    check_measurable(decoded.rgb, decoded.meta.width, decoded.meta.height)
    if decoded.opacity is not None and not decoded.opacity.any():
        raise InputError("every pixel is fully transparent: no picture in the file")
    check_not_constant(decoded.rgb)
    return decoded


def _unopened(path: Path) -> str:
    """Why Pillow could not open a file whose first bytes name a format postprod develops (a 17000 x 17000 px AVIF
    its plugin refuses, a cut header), or that no format is recognised."""
    from pipeline.kernel.ingest import sniff_format  # here: ingest is the kernel's, decode the imaging's

    try:
        with open(path, "rb") as f:
            fmt, kind = sniff_format(f.read(1 << 16), path.suffix)
    except OSError:
        fmt, kind = "", SourceKind.UNKNOWN
    if kind is SourceKind.RASTER:
        if fmt == "jpeg":
            variant = _jpeg_variant(path)
            if variant:
                return variant
        return (f"a file in {fmt.upper()} format that Pillow cannot open: damaged, or a variant (or a size) its "
                "decoder does not read; save it again as a JPEG or TIFF")
    return "not an image format Pillow or LibRaw can read"


#: JPEG start-of-frame markers (SOF0-SOF15 but DHT, JPG and DAC) and which of them code losslessly.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_LOSSLESS = frozenset({0xC3, 0xC7, 0xCB, 0xCF})


def _jpeg_variant(path: Path) -> str | None:
    """What a JPEG that Pillow cannot open is, from its frame header, when it is a valid variant Pillow does not
    decode (12 bits a sample, as scientific and medical cameras write; lossless): None for any other, or a damaged
    header. libjpeg-turbo's 12-bit sample read "a file in JPEG format that Pillow cannot open: damaged, or ..."."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return None
    at = 2
    while at + 9 < len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # a fill byte before the marker
            at += 1
            continue
        if marker in _JPEG_SOF:
            bits = data[at + 4]
            if marker in _JPEG_LOSSLESS:
                return (f"a lossless JPEG ({bits} bits a sample) that Pillow cannot decode: save it as a 16-bit TIFF "
                        "or an 8-bit JPEG")
            if bits != 8:
                return (f"a {bits}-bit JPEG ({bits} bits a sample, as scientific and medical cameras write) that "
                        "Pillow cannot decode: save it as a 16-bit TIFF or an 8-bit JPEG")
            return None
        if marker == 0xDA:  # the scan starts with no frame header before it: damaged
            return None
        at += 2 + struct.unpack_from(">H", data, at + 2)[0]
    return None


#: What postprod develops, as a refused file's message names it.
DEVELOPED_FORMATS = ("camera RAWs and DNG, JPEG, PNG, TIFF, WebP, HEIF, AVIF, JPEG XL, JPEG 2000, BMP, GIF, TGA, PCX "
                     "and Netpbm pictures")


#: Pillow's names of the formats postprod develops: a file of one that reaches :func:`not_an_image` (its first
#: bytes did not say so: a PCX cut short of its header, a TGA not named .tga) is damaged or mislabelled, not refused.
_DEVELOPED_PILLOW_FORMATS = frozenset({"JPEG", "PNG", "TIFF", "WEBP", "HEIF", "AVIF", "JXL", "JPEG2000", "BMP", "DIB",
                                       "GIF", "TGA", "PCX", "PPM", "MPO"})
#: Pillow's TGA plugin accepts almost any header (the format has no signature): it names a file TGA only where the
#: file is named so too.
_TGA_SUFFIXES = frozenset({".tga", ".icb", ".vda", ".vst"})


#: Formats neither LibRaw nor Pillow reads, known by their first bytes, and what to do instead: HDR merges (their
#: floating-point light has no agreed range), documents and drawings that hold pictures only as a page.
_NAMED_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x76\x2f\x31\x01", "an OpenEXR picture (an HDR merge's floating-point light) that postprod cannot read: "
                              "export it from the HDR tool as a 16-bit TIFF or a JPEG, tone-mapped"),
    (0, b"#?RADIANCE", "a Radiance HDR picture (floating-point light) that postprod cannot read: export it from the "
                       "HDR tool as a 16-bit TIFF or a JPEG, tone-mapped"),
    (0, b"#?RGBE", "a Radiance HDR picture (floating-point light) that postprod cannot read: export it from the HDR "
                   "tool as a 16-bit TIFF or a JPEG, tone-mapped"),
    (0, b"%PDF", "a PDF document, not a picture: export its pages or images as JPEG or TIFF"),
    (128, b"DICM", "a DICOM medical image, not a photograph postprod develops"),
    # A colour PFM (Pillow reads the grey "Pf" only): OpenImageIO's test-1..3.pfm read "not an image".
    *((0, b"PF" + gap, floating_point_picture(32, "RGB", "PFM")) for gap in (b"\n", b"\r", b" ")),
)


def _named_signature(path: Path) -> str | None:
    """What :data:`_NAMED_SIGNATURES` says of ``path`` (an SVG drawing is told by its text), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return None
    for at, signature, said in _NAMED_SIGNATURES:
        if head[at:at + len(signature)] == signature:
            return said
    if b"<svg" in head[:1024].lower():
        return "an SVG drawing, not a picture: export it as a PNG or JPEG at the size it is delivered"
    return None


def not_an_image(path: Path) -> str:
    """The reason a file neither recognised by its first bytes nor by LibRaw is refused: the format Pillow
    identifies it as, when it does (an icon, a PostScript file, a Photoshop document), else that it is no image.
    A floating-point PFM is named as one; a file of a format postprod develops that got here is damaged, and
    said so with what Pillow found wrong."""
    Image.init()  # every plugin registered: the list below names them all
    formats = None if path.suffix.lower() in _TGA_SUFFIXES else [f for f in Image.ID if f != "TGA"]
    mode = damage = None
    try:
        with open(path, "rb") as f:
            photoshop = f.read(4) == b"8BPS"  # Pillow knows a few PSDs only (8-bit, no 300 dpi resources)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path, formats=formats) as im:  # the header only: no decoder (nor Ghostscript) runs
                found, mode = im.format, im.mode
                if found in _DEVELOPED_PILLOW_FORMATS and mode != "F":
                    try:
                        im.load()
                    except Exception as exc:  # noqa: BLE001  (what the decoder found wrong, told as it says it)
                        damage = str(exc) or type(exc).__name__
    except Exception:  # noqa: BLE001  (anything Pillow raises on a file it does not know)
        found = None
    if photoshop:
        found = "PSD (Photoshop)"
    if found == "PPM" and mode == "F":
        return floating_point_picture(32, "grey", "PFM")
    if found in _DEVELOPED_PILLOW_FORMATS:
        return (f"a damaged {found} file: {damage}" if damage else
                f"a {found} file whose header postprod does not recognise (damaged, or an unusual variant): save it "
                "again from an image editor")
    if found:
        return f"a file in {found} format, not a picture postprod develops ({DEVELOPED_FORMATS}): save it as one of these"
    return _named_signature(path) or "not an image: neither LibRaw nor Pillow recognises this file"


def _decode_raw_proxy(
    path: Path,
    long_edge: int,
    max_pixels: int,
    file_size: int,
    unknown: bool,
    fmt: str | None,
    scan_photosites: bool = False,
    threads: int = 1,
    orientation: int | None = None,
) -> Decoded:
    try:
        raw = open_raw(path, fmt)
    except InputError:
        if unknown:
            raise InputError(not_an_image(path)) from None
        raise
    try:
        with raw, libraw_messages() as said:
            s = raw.sizes
            if s.raw_width * s.raw_height > max_pixels:
                raise InputError(f"sensor of {s.raw_width}x{s.raw_height} is above the {max_pixels / 1e6:g} MP limit")
            check_sensor_data(raw, file_size)
            flip = develop_flip(raw, orientation)
            meta = raw_metadata(raw, path, flip)
            meta.turned_by_xmp = flip is not None
            try:
                camera_raw = camera_raw_baseline(raw, path)
            except ValueError:  # an unreadable DNG directory LibRaw got past: the XMP lacks an As Shot value
                camera_raw = None
            # The raw photosite values, before LibRaw's processing touches anything (beside it: a copy of them).
            scanned = _start_scan(raw, threads) if scan_photosites else None
            half = proxy_wants_half_size(meta.width, meta.height, long_edge)
            rgb16 = decode_raw_linear(raw, half_size=half, flip=flip)
            photosites = None if scanned is None else scanned()
    except rawpy.LibRawError as exc:
        make, model = read_raw_make_model(path)
        camera = f" from {make} {model}" if make else ""
        libraw = f" (LibRaw: {'; '.join(dict.fromkeys(said))})" if said else ""
        raise InputError(f"cannot decode RAW data{camera}: {_libraw_message(exc)}{libraw}") from None
    # Shrink the 16-bit decode, then convert: a third of the float work and
    # memory (the area filter's rounding to 16 bits is 8e-6 of full scale).
    small16 = np.ascontiguousarray(fit_long_edge(rgb16, long_edge))
    return Decoded(u16_to_linear(small16), meta, rgb16, half, camera_raw, small16, photosites)


#: The photosite scan runs beside LibRaw's decode, on a copy of the photosites (2 bytes each), for sensors up to this
#: many photosites (a 100 MP back's copy would be 200 MB more at the decode's peak).
SCAN_BESIDE_MAX_PHOTOSITES = 50_000_000


class _RawCopy:
    """What the photosite scan reads of an open RAW (:func:`~pipeline.imaging.sensor_defects.scan_raw`), its
    photosites copied: the scan can then run while LibRaw develops the same file."""

    def __init__(self, raw: rawpy.RawPy) -> None:
        self.sizes, self.raw_pattern, self.raw_type = raw.sizes, raw.raw_pattern, raw.raw_type
        self.num_colors, self.black_level_per_channel = raw.num_colors, raw.black_level_per_channel
        self.white_level = raw.white_level
        self.raw_image_visible = None if self.raw_type != rawpy.RawType.Flat else np.array(raw.raw_image_visible)


def _start_scan(raw: rawpy.RawPy, threads: int) -> Callable[[], PhotositeScan]:
    """The photosite scan of an open RAW, started: made now on one thread; with more, beside LibRaw's decode on a
    copy of the photosites (:mod:`pipeline.kernel.beside`) of a sensor up to :data:`SCAN_BESIDE_MAX_PHOTOSITES`.
    Call the answer for the scan."""
    if threads > 1 and int(raw.sizes.raw_width) * int(raw.sizes.raw_height) <= SCAN_BESIDE_MAX_PHOTOSITES:
        try:
            return beside(threads, _scan, _RawCopy(raw)).result
        except (ValueError, rawpy.LibRawError):
            pass  # the scan itself says what it cannot read, as on one thread
    scan = _scan(raw)
    return lambda: scan


def _scan(raw: rawpy.RawPy | _RawCopy) -> PhotositeScan:
    """The photosite scan of an open RAW; a sensor the scan cannot read is skipped, not an error."""
    try:
        return scan_raw(raw)
    except (ValueError, rawpy.LibRawError) as exc:
        s = raw.sizes
        return PhotositeScan(int(s.width), int(s.height), skipped=f"the raw data could not be scanned: {exc}")
