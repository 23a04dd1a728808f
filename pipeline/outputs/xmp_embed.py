"""An XMP packet embedded in a copy of a DNG, TIFF, JPEG or PNG source, the rest of the file left as it is.

Lightroom reads a DNG's, TIFF's, JPEG's or PNG's develop settings from the file's own
XMP. exiftool rewrites every directory and copies the whole file through Perl
to change it: 0.2-0.3 s for a 24 MP DNG (46 MB), most of a 24 MP image's time
outside the stages. Here only the packet's place in the file changes.

**DNG and TIFF** keep their XMP in IFD0's tag 700 (``XMLPacket``; TIFF 6.0
with Adobe's XMP specification part 3, DNG 1.4). The source is copied by the
kernel (:func:`shutil.copyfile`) and:

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
exiftool must take care to fix, cannot break).

**JPEG** keeps its XMP in an APP1 segment that starts with Adobe's namespace
(XMP specification part 3, 1.1.3): the copy is the source's segments with its
own XMP segments (standard and extended) left out and the packet's segment put
after the leading JFIF and EXIF segments, the compressed picture copied as it is.
A **PNG** keeps it in an iTXt chunk with the keyword ``XML:com.adobe.xmp``: the
copy is the source's chunks with its own XMP chunk left out and the packet's put
before the first image data (IDAT).

What this does not do raises :class:`LayoutError`, and the caller hands that
file to exiftool instead: a BigTIFF, a file past 4 GB, a malformed
directory or segment, a packet too large for one JPEG segment (extended XMP),
a JPEG with a multi-picture index (MPF: its offsets would need fixing).
"""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

#: IFD0's tag for the XMP packet (TIFF's ``XMLPacket``).
XMP_TAG = 700
#: The entry's type: BYTE, as exiftool and Adobe's software write it.
_BYTE = 1
#: Directories with more entries than this are not a real file's IFD0 (a corrupt offset).
_MAX_ENTRIES = 4096
_CLASSIC_LIMIT = 2**32


class LayoutError(ValueError):
    """The file is not one this module can embed a packet in (exiftool may)."""


def embed_xmp(source: Path, packet: bytes, dest: Path) -> None:
    """Write ``dest``: a copy of ``source`` whose XMP is ``packet`` (see the module).

    Parameters
    ----------
    source : Path
        A DNG, TIFF, JPEG or PNG.
    packet : bytes
        The XMP packet, written as it is (as exiftool's ``-xmp<=`` does).
    dest : Path
        Written in place (the caller writes to a temporary name and renames it); not created on a LayoutError.

    Raises
    ------
    LayoutError
        If the source is not a file this module can embed a packet in (see the module): exiftool may.
    OSError
        If the source cannot be read or the copy written.
    """
    with open(source, "rb") as f:
        head = f.read(4)
    if _is_tiff(head):
        _embed_tiff(source, packet, dest)
    elif head[:2] == b"\xff\xd8":
        _embed_jpeg(source, packet, dest)
    elif head == _PNG_SIGNATURE[:4]:
        _embed_png(source, packet, dest)
    else:
        raise LayoutError("neither a TIFF, a DNG, a JPEG nor a PNG")


def _is_tiff(head: bytes) -> bool:
    """Whether a file's first bytes are a classic or Big TIFF header (DNG is TIFF)."""
    return head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _layout(head: bytes, size: int) -> tuple[str, int]:
    """Byte order (``<`` or ``>``) and IFD0's offset of a classic TIFF header."""
    if len(head) < 8:
        raise LayoutError("a TIFF header cut short")
    if head[:4] == b"II*\x00":
        order = "<"
    elif head[:4] == b"MM\x00*":
        order = ">"
    elif head[:4] in (b"II+\x00", b"MM\x00+"):
        raise LayoutError("a BigTIFF file")
    else:
        raise LayoutError("not a TIFF file")
    (ifd0,) = struct.unpack(order + "I", head[4:8])
    if not 8 <= ifd0 <= size - 6:
        raise LayoutError(f"IFD0's offset {ifd0} is outside the file ({size} bytes)")
    return order, ifd0


def _read_ifd(f, order: str, offset: int, size: int) -> tuple[list[bytes], bytes]:
    """IFD0's 12-byte entries and its 4-byte next-IFD pointer, as stored."""
    f.seek(offset)
    (count,) = struct.unpack(order + "H", f.read(2))
    if not 0 < count <= _MAX_ENTRIES or offset + 2 + 12 * count + 4 > size:
        raise LayoutError(f"IFD0 at {offset} declares {count} entries: not a directory this file holds")
    body = f.read(12 * count + 4)
    return [body[12 * i:12 * i + 12] for i in range(count)], body[-4:]


def _embed_tiff(source: Path, packet: bytes, dest: Path) -> None:
    """:func:`embed_xmp` of a TIFF or DNG."""
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
        raise LayoutError("the copy would pass 4 GB, a classic TIFF's limit")
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


#: The namespace that starts a JPEG's XMP segment, and the one of its extended XMP's segments.
_JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
_JPEG_XMP_EXTENSION = b"http://ns.adobe.com/xmp/extension/\x00"
#: The largest packet one APP1 segment holds (its length field counts itself and the namespace).
MAX_JPEG_PACKET = 0xFFFF - 2 - len(_JPEG_XMP)
_SOS, _EOI, _APP0, _APP1, _APP2 = 0xDA, 0xD9, 0xE0, 0xE1, 0xE2


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """The (marker, start, end) of a JPEG's segments before its picture, and where the picture (SOS) or EOI starts."""
    segments: list[tuple[int, int, int]] = []
    pos = 2
    while True:
        if pos + 2 > len(data) or data[pos] != 0xFF:
            raise LayoutError(f"no JPEG marker at byte {pos}")
        while pos + 2 < len(data) and data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        marker = data[pos + 1]
        if marker in (_SOS, _EOI):
            return segments, pos
        end = pos + 2
        if not (0xD0 <= marker <= 0xD7 or marker == 0x01):  # every other marker has a length
            length = struct.unpack(">H", data[pos + 2:pos + 4])[0] if pos + 4 <= len(data) else 0
            end += length
            if length < 2 or end > len(data):
                raise LayoutError(f"a JPEG segment at byte {pos} runs past the end")
        segments.append((marker, pos, end))
        pos = end


def _is_jpeg_xmp(data: bytes, marker: int, start: int, extended: bool = True) -> bool:
    body = data[start + 4:start + 4 + len(_JPEG_XMP_EXTENSION)]
    return marker == _APP1 and (body.startswith(_JPEG_XMP) or extended and body.startswith(_JPEG_XMP_EXTENSION))


def _embed_jpeg(source: Path, packet: bytes, dest: Path) -> None:
    """:func:`embed_xmp` of a JPEG."""
    if len(packet) > MAX_JPEG_PACKET:
        raise LayoutError(f"a packet of {len(packet)} bytes needs extended XMP (one JPEG segment holds "
                          f"{MAX_JPEG_PACKET})")
    data = source.read_bytes()
    segments, picture = _jpeg_segments(data)
    kept: list[bytes] = []
    at: int | None = None  # where among the kept segments the packet goes: after the leading JFIF and EXIF
    for marker, start, end in segments:
        if marker == _APP2 and data[start + 4:end].startswith(b"MPF\x00"):
            raise LayoutError("a multi-picture JPEG (MPF): its picture offsets would move")
        if _is_jpeg_xmp(data, marker, start):
            continue
        if at is None and not (marker == _APP0 or marker == _APP1 and data[start + 4:end].startswith(b"Exif\x00\x00")):
            at = len(kept)
        kept.append(data[start:end])
    segment = b"\xff\xe1" + struct.pack(">H", 2 + len(_JPEG_XMP) + len(packet)) + _JPEG_XMP + packet
    at = len(kept) if at is None else at
    dest.write_bytes(b"".join([data[:2], *kept[:at], segment, *kept[at:], data[picture:]]))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The keyword of a PNG's XMP chunk (iTXt, uncompressed; XMP specification part 3, 1.1.5).
_PNG_XMP = b"XML:com.adobe.xmp"


def _png_chunks(data: bytes) -> tuple[list[tuple[bytes, int, int]], int]:
    """The (type, start, end) of a PNG's chunks up to IEND, and where they end."""
    if not data.startswith(_PNG_SIGNATURE):
        raise LayoutError("not a PNG file")
    chunks: list[tuple[bytes, int, int]] = []
    pos = len(_PNG_SIGNATURE)
    while pos < len(data):
        if pos + 12 > len(data):
            raise LayoutError(f"a PNG chunk at byte {pos} runs past the end")
        kind, end = data[pos + 4:pos + 8], pos + 12 + struct.unpack(">I", data[pos:pos + 4])[0]
        if end > len(data):
            raise LayoutError(f"the PNG chunk {kind!r} at byte {pos} runs past the end")
        chunks.append((kind, pos, end))
        pos = end
        if kind == b"IEND":
            break
    return chunks, pos


def _is_png_xmp(data: bytes, kind: bytes, start: int) -> bool:
    return kind == b"iTXt" and data[start + 8:start + 9 + len(_PNG_XMP)] == _PNG_XMP + b"\x00"


def _embed_png(source: Path, packet: bytes, dest: Path) -> None:
    """:func:`embed_xmp` of a PNG: its own XMP chunks left out, the packet's iTXt chunk put before the first IDAT."""
    data = source.read_bytes()
    chunks, last = _png_chunks(data)
    body = _PNG_XMP + b"\x00\x00\x00\x00\x00" + packet  # no compression, no language, no translated keyword
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    first = next((i for i, (kind, _, _) in enumerate(chunks) if kind == b"IDAT"), None)
    if first is None:
        raise LayoutError("a PNG without image data")
    kept = [(i, data[start:end]) for i, (kind, start, end) in enumerate(chunks) if not _is_png_xmp(data, kind, start)]
    dest.write_bytes(b"".join([_PNG_SIGNATURE, *(c for i, c in kept if i < first), chunk,
                               *(c for i, c in kept if i >= first), data[last:]]))


def embedded_xmp(path: Path) -> bytes | None:
    """The XMP packet a DNG, TIFF, JPEG or PNG holds (the one :func:`embed_xmp` writes), or None.

    None too for a file with no packet, more than one, or a layout this module does not read: the caller then
    writes the copy again. A TIFF's or DNG's directory and packet are read, not its picture; a JPEG or PNG is
    read whole (a few megabytes) to walk its segments or chunks.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if _is_tiff(head):
                size = path.stat().st_size
                order, ifd0 = _layout(head, size)
                entries, _ = _read_ifd(f, order, ifd0, size)
                found = [struct.unpack(order + "HHII", e) for e in entries
                         if struct.unpack(order + "H", e[:2])[0] == XMP_TAG]
                if len(found) != 1 or found[0][2] <= 4 or found[0][3] + found[0][2] > size:
                    return None
                f.seek(found[0][3])
                return f.read(found[0][2])
        if head[:2] == b"\xff\xd8":
            return _jpeg_xmp(path.read_bytes())
        if head == _PNG_SIGNATURE:
            return _png_xmp(path.read_bytes())
    except (OSError, ValueError, struct.error):  # LayoutError is a ValueError
        return None
    return None


def _jpeg_xmp(data: bytes) -> bytes | None:
    segments, _ = _jpeg_segments(data)
    packets = [data[start + 4 + len(_JPEG_XMP):end] for marker, start, end in segments
               if _is_jpeg_xmp(data, marker, start, extended=False)]
    return packets[0] if len(packets) == 1 else None


def _png_xmp(data: bytes) -> bytes | None:
    chunks, _ = _png_chunks(data)
    packets = []
    for kind, start, end in chunks:
        body = data[start + 8:end - 4]
        if _is_png_xmp(data, kind, start) and body[len(_PNG_XMP) + 1:len(_PNG_XMP) + 3] == b"\x00\x00":  # uncompressed
            lang_end = body.index(b"\x00", len(_PNG_XMP) + 3)  # the language tag, then the translated keyword
            packets.append(body[body.index(b"\x00", lang_end + 1) + 1:])
    return packets[0] if len(packets) == 1 else None
