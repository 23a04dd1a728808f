"""An XMP packet embedded in a copy of a TIFF-family source (DNG, TIFF) without rewriting the file.

A DNG or TIFF keeps its XMP in IFD0's tag 700 (``XMLPacket``; TIFF 6.0 with
Adobe's XMP specification part 3, DNG 1.4 section "XMP"). exiftool rewrites
every directory and copies the whole file through Perl to change it: 0.2-0.3 s
for a 24 MP DNG (46 MB), most of a 24 MP image's time outside the stages. Here
the source is copied by the kernel (:func:`shutil.copyfile`) and only the end
of the copy and one directory entry change:

- the packet is appended at the end of the copy (word-aligned, as TIFF wants
  every offset);
- when IFD0 already holds tag 700, that entry is pointed at the new packet (the
  old one stays in the file, unreferenced);
- when it does not, a new IFD0 with tag 700 in its place among the sorted
  entries is appended after the packet and the header points at it. Every other
  entry is copied as it is: the data its offsets point at (strips, the EXIF and
  maker-note directories, SubIFDs) has not moved.

Nothing the source holds is moved or rewritten, so its raw data, EXIF and maker
notes are exactly the source's (a maker note with absolute offsets, which
exiftool must take care to fix, cannot break). What this does not do (BigTIFF, a
file past 4 GB, a malformed directory) raises :class:`TiffLayoutError`, and the
caller hands that file to exiftool instead.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

#: IFD0's tag for the XMP packet (TIFF's ``XMLPacket``).
XMP_TAG = 700
#: The entry's type: BYTE, as exiftool and Adobe's software write it.
_BYTE = 1
#: Directories with more entries than this are not a real file's IFD0 (a corrupt offset).
_MAX_ENTRIES = 4096
_CLASSIC_LIMIT = 2**32


class TiffLayoutError(ValueError):
    """The file is not a classic TIFF whose IFD0 this module can point at a new packet."""


def is_tiff(head: bytes) -> bool:
    """Whether a file's first bytes are a classic or Big TIFF header (DNG is TIFF)."""
    return head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _layout(head: bytes, size: int) -> tuple[str, int]:
    """Byte order (``<`` or ``>``) and IFD0's offset of a classic TIFF header."""
    if head[:4] == b"II*\x00":
        order = "<"
    elif head[:4] == b"MM\x00*":
        order = ">"
    elif head[:4] in (b"II+\x00", b"MM\x00+"):
        raise TiffLayoutError("a BigTIFF file")
    else:
        raise TiffLayoutError("not a TIFF file")
    (ifd0,) = struct.unpack(order + "I", head[4:8])
    if not 8 <= ifd0 <= size - 6:
        raise TiffLayoutError(f"IFD0's offset {ifd0} is outside the file ({size} bytes)")
    return order, ifd0


def _read_ifd(f, order: str, offset: int, size: int) -> tuple[list[bytes], bytes]:
    """IFD0's 12-byte entries and its 4-byte next-IFD pointer, as stored."""
    f.seek(offset)
    (count,) = struct.unpack(order + "H", f.read(2))
    if not 0 < count <= _MAX_ENTRIES or offset + 2 + 12 * count + 4 > size:
        raise TiffLayoutError(f"IFD0 at {offset} declares {count} entries: not a directory this file holds")
    body = f.read(12 * count + 4)
    return [body[12 * i:12 * i + 12] for i in range(count)], body[-4:]


def embed_xmp_tiff(source: Path, packet: bytes, dest: Path) -> None:
    """Write ``dest``: a copy of the TIFF or DNG ``source`` whose XMP is ``packet`` (see the module).

    Parameters
    ----------
    source : Path
        A classic (not Big) TIFF or DNG.
    packet : bytes
        The XMP packet, written as it is (as exiftool's ``-xmp<=`` does).
    dest : Path
        Written in place (the caller writes to a temporary name and renames it).

    Raises
    ------
    TiffLayoutError
        If the source is not a classic TIFF with a readable IFD0, or the copy would pass 4 GB.
    OSError
        If the source cannot be read or the copy written.
    """
    size = source.stat().st_size
    with open(source, "rb") as f:
        head = f.read(8)
        order, ifd0 = _layout(head, size)
        entries, next_ifd = _read_ifd(f, order, ifd0, size)
    tags = [struct.unpack(order + "H", e[:2])[0] for e in entries]
    start = size + (size & 1)  # every offset word-aligned
    new_ifd = start + len(packet) + (len(packet) & 1)
    end = new_ifd + (0 if XMP_TAG in tags else 2 + 12 * (len(entries) + 1) + 4)
    if end >= _CLASSIC_LIMIT:
        raise TiffLayoutError("the copy would pass 4 GB, a classic TIFF's limit")
    entry = struct.pack(order + "HHII", XMP_TAG, _BYTE, len(packet), start)
    shutil.copyfile(source, dest)
    with open(dest, "r+b") as f:
        f.seek(size)
        f.write(b"\x00" * (start - size) + packet + b"\x00" * (len(packet) & 1))
        if XMP_TAG in tags:
            f.seek(ifd0 + 2 + 12 * tags.index(XMP_TAG))
            f.write(entry)
            return
        at = sum(t < XMP_TAG for t in tags)  # the entries are sorted by tag
        f.write(struct.pack(order + "H", len(entries) + 1) + b"".join(entries[:at]) + entry
                + b"".join(entries[at:]) + next_ifd)
        f.seek(4)
        f.write(struct.pack(order + "I", new_ifd))
