"""A TIFF written strip by strip: a full-resolution master without the whole picture in memory.

OpenCV and exiv2 both want the whole file in memory (a 100 MP 16-bit RGB
master is 611 MB of pixels, then as many again as encoded bytes, then again
inside exiv2). Here the pixels go to the file as they are rendered, one strip
after the other (uncompressed, or deflate with the horizontal predictor), and
the directory comes last, carrying the metadata exiv2 wrote for the same
file into a one-pixel TIFF: the ICC profile, XMP, IPTC, and the EXIF and GPS
sub-directories, moved to their new offsets. Readers find the same tags as
in a TIFF of :func:`pipeline.outputs.encode.export_rendition`.

Baseline (32-bit) TIFF: files up to 4 GB (a 16-bit RGB picture of 700 MP).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.kernel.files import file_mode, sync_folders, temp_prefix

# TIFF field types and their sizes.
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_SHORT, _LONG = 3, 4
#: Tags that point at a sub-directory (EXIF, GPS, EXIF's interoperability).
SUB_IFD_TAGS = frozenset({34665, 34853, 40965})
#: Tags that describe the pixels: written here, never copied from the metadata donor.
STRUCTURE_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320, 332, 338, 339})
_LIMIT = 2**32 - 1


@dataclass
class Entry:
    """One directory entry: ``value`` holds the raw bytes (in the file's byte order), or, for a
    sub-directory pointer, ``sub`` holds that directory's entries."""

    tag: int
    type: int
    count: int
    value: bytes = b""
    sub: list[Entry] | None = None


def read_ifd0(data: bytes) -> list[Entry]:
    """The entries of a little-endian TIFF's first directory, sub-directories read too.

    Raises
    ------
    ValueError
        If ``data`` is not a little-endian classic TIFF, or a directory runs past its end.
    """
    if data[:4] != b"II*\x00":
        raise ValueError("not a little-endian TIFF")
    (offset,) = struct.unpack_from("<I", data, 4)
    return _read_ifd(data, offset, depth=0)


def _read_ifd(data: bytes, offset: int, depth: int) -> list[Entry]:
    if depth > 3 or offset + 2 > len(data):
        raise ValueError(f"TIFF directory at {offset} is out of the file")
    (n,) = struct.unpack_from("<H", data, offset)
    entries = []
    for i in range(n):
        tag, typ, count, inline = struct.unpack_from("<HHI4s", data, offset + 2 + 12 * i)
        size = _SIZES.get(typ, 1) * count
        if size <= 4:
            value = inline[:size]
        else:
            (at,) = struct.unpack("<I", inline)
            if at + size > len(data):
                raise ValueError(f"TIFF tag {tag} runs past the end of the file")
            value = data[at : at + size]
        if tag in SUB_IFD_TAGS and typ in (_LONG, 13) and count == 1:
            (sub_at,) = struct.unpack("<I", value)
            entries.append(Entry(tag, _LONG, 1, b"", _read_ifd(data, sub_at, depth + 1)))
        else:
            entries.append(Entry(tag, typ, count, value))
    return entries


def _ifd_bytes(entries: list[Entry], at: int) -> bytes:
    """A directory (and its out-of-line values and sub-directories) placed at file offset ``at``."""
    entries = sorted(entries, key=lambda e: e.tag)
    head = 2 + 12 * len(entries) + 4
    tail = bytearray()
    table = bytearray(struct.pack("<H", len(entries)))
    for e in entries:
        if e.sub is not None:
            here = at + head + len(tail)
            tail += _ifd_bytes(e.sub, here)
            if len(tail) % 2:
                tail += b"\0"
            table += struct.pack("<HHII", e.tag, _LONG, 1, here)
        elif len(e.value) <= 4:
            table += struct.pack("<HHI", e.tag, e.type, e.count) + e.value.ljust(4, b"\0")
        else:
            here = at + head + len(tail)
            tail += e.value
            if len(tail) % 2:
                tail += b"\0"
            table += struct.pack("<HHII", e.tag, e.type, e.count, here)
    table += struct.pack("<I", 0)  # no next directory
    return bytes(table + tail)


def _short(tag: int, *values: int) -> Entry:
    return Entry(tag, _SHORT, len(values), struct.pack(f"<{len(values)}H", *values))


def _long(tag: int, *values: int) -> Entry:
    return Entry(tag, _LONG, len(values), struct.pack(f"<{len(values)}I", *values))


def _predicted(strip: np.ndarray) -> np.ndarray:
    """TIFF predictor 2: each sample minus the same sample of the pixel to its left (modulo 2**bits)."""
    out = strip.copy()
    out[:, 1:] -= strip[:, :-1]
    return out


def write_tiff_strips(
    path: Path,
    width: int,
    height: int,
    bit_depth: int,
    strips: Iterable[np.ndarray],
    metadata: list[Entry],
    compression: str = "none",
    durable: bool = True,
    samples: int = 3,
) -> tuple[int, str]:
    """Write an RGB (or CMYK) TIFF from its strips, atomically; return its size and SHA-256.

    Parameters
    ----------
    path : Path
        Destination; written beside it under a temporary name, synced, then renamed.
    width, height : int
        Pixel size.
    bit_depth : int
        8 or 16.
    strips : iterable of ndarray, (rows, width, samples)
        The picture top to bottom, ``uint8`` or ``uint16`` per ``bit_depth``.
    metadata : list of Entry
        Directory entries to carry (:func:`read_ifd0` of a donor file); the
        ones describing the pixels are left out.
    compression : str
        ``none`` or ``deflate`` (with the horizontal predictor, each strip on its own).
    durable : bool
        False: not synced (the caller flushes it with others, :func:`pipeline.kernel.files.make_durable`).
    samples : int
        3: RGB; 4: CMYK (ink amounts, a separated picture: :mod:`pipeline.outputs.cmyk`).

    Raises
    ------
    ValueError
        On strips that do not add up to the picture, an unknown compression,
        or a file above 4 GB.
    OSError
        If the file cannot be written.
    """
    if compression not in ("none", "deflate"):
        raise ValueError(f"strip-wise TIFF compression must be none or deflate, got {compression!r}")
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, got {bit_depth}")
    if samples not in (3, 4):
        raise ValueError(f"samples must be 3 (RGB) or 4 (CMYK), got {samples}")
    dtype = np.dtype("<u2") if bit_depth == 16 else np.dtype("u1")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        offsets: list[int] = []
        counts: list[int] = []
        rows_per_strip = 0
        rows = 0
        with os.fdopen(fd, "wb") as f:
            f.write(b"II*\x00\0\0\0\0")  # the directory's offset is filled in at the end
            for strip in strips:
                if strip.ndim != 3 or strip.shape[1:] != (width, samples) or strip.dtype != dtype:
                    raise ValueError(f"strip of shape {strip.shape} {strip.dtype} in a {width} px wide {dtype} picture")
                rows_per_strip = rows_per_strip or strip.shape[0]
                if strip.shape[0] != rows_per_strip and rows + strip.shape[0] != height:
                    raise ValueError("every strip but the last must have the first one's rows")
                rows += strip.shape[0]
                data = np.ascontiguousarray(strip, dtype=dtype)
                payload = zlib.compress(_predicted(data).tobytes(), 6) if compression == "deflate" else data.tobytes()
                offsets.append(f.tell())
                counts.append(len(payload))
                f.write(payload)
                if f.tell() % 2:
                    f.write(b"\0")
            if rows != height:
                raise ValueError(f"the strips hold {rows} rows, the picture {height}")
            ifd_at = f.tell()
            entries = [e for e in metadata if e.tag not in STRUCTURE_TAGS] + [
                _long(256, width), _long(257, height), _short(258, *[bit_depth] * samples),
                _short(259, 8 if compression == "deflate" else 1), _short(262, 2 if samples == 3 else 5),
                _long(273, *offsets), _short(277, samples), _long(278, rows_per_strip), _long(279, *counts),
                _short(284, 1), _short(339, *[1] * samples),  # unsigned integers, as OpenCV writes it
            ]
            if samples == 4:
                entries.append(_short(332, 1))  # InkSet: CMYK
            if compression == "deflate":
                entries.append(_short(317, 2))
            ifd = _ifd_bytes(entries, ifd_at)
            if ifd_at + len(ifd) > _LIMIT:
                raise ValueError("the TIFF would pass 4 GB: too large for a baseline TIFF")
            f.write(ifd)
            f.seek(4)
            f.write(struct.pack("<I", ifd_at))
            f.flush()
            if hasattr(os, "fchmod"):  # a delivery: the mode a plain write gives, not mkstemp's 0o600
                os.fchmod(f.fileno(), file_mode())
            if durable:
                os.fsync(f.fileno())
        digest = hashlib.sha256()
        with open(tmp, "rb") as f:
            while block := f.read(1 << 22):
                digest.update(block)
        size = os.path.getsize(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        sync_folders([path.parent])
    return size, digest.hexdigest()
