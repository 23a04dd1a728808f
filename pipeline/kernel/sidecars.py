"""The photographer's culling, read from the XMP a shoot arrives with.

Photographers cull before they upload. Photo Mechanic, Lightroom and Bridge
write what they decided into an XMP sidecar beside the RAW: stars
(``xmp:Rating`` 1-5), a colour label (``xmp:Label``), keywords
(``dc:subject``) and a pick or a reject (:func:`culling_flag`: Lightroom
Classic 13.2 and later write their P and X flags as ``xmpDM:pick``, Bridge
a reject as ``xmp:Rating`` -1, digiKam its pick label, Photo Mechanic its
tag).
Adobe's tools name the sidecar ``IMG_0002.xmp``; darktable, digiKam and
Photo Mechanic (as an option) ``IMG_0002.CR2.xmp``. Into a JPEG or a DNG
they write the same packet inside the file (:func:`embedded_packet`); a
sidecar, where there is one, wins.

The scan reads them (:func:`photographer_xmp`, :func:`packet_culling`): a
rejected frame is not developed unless the run asks for it
(``--photographer-rejects process``), and the stars, label and keywords
become the image's decision in its instructions and in the XMP postprod
writes, until a reviewer decides otherwise. Without that, the sidecar
postprod delivers beside the RAW (one name, ``IMG_0002.xmp``) would replace
the photographer's and lose the culling.
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: What a run does with a frame the photographer rejected (``--photographer-rejects``).
PHOTOGRAPHER_REJECTS = ("skip", "process")
#: The reason a rejected frame is skipped with (one text, so the summary counts them in one line).
REJECTED_REASON = ("rejected by the photographer (a reject flag or xmp:Rating -1 in its XMP; --photographer-rejects "
                   "process develops it)")
#: A frame's culling flag (:attr:`Culling.flag`), as the review app and the instruction files name them.
PICK, REJECT = "pick", "reject"
#: What a run develops of a shoot whose photographer picked frames (``--photographer-picks``): every frame, only
#: the picked ones, or (a number of stars) the frames rated that many stars or more and the picked ones: a
#: photographer's selects, as Photo Mechanic's and Lightroom's filters by stars show them (:func:`is_pick`). A shoot
#: with no such frame is developed whole either way.
PHOTOGRAPHER_PICKS = ("all", "only", "1", "2", "3", "4", "5")
#: ... or, with a colour label after this prefix, the frames labelled so and the picked ones (``label:Green``,
#: Lightroom's names; ``label:Select``, Bridge's): a studio that marks a client's selects with a label.
LABEL_PICKS = "label:"
#: The reason a frame left out by ``--photographer-picks only`` (or a number of stars) is skipped with.
NOT_PICKED_REASON = "not among the photographer's picks (--photographer-picks all develops it)"
#: Who decided, in an instructions document's ``review``, when the decision is the sidecar's.
PHOTOGRAPHER = "photographer"

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Culling:
    """One frame's culling as its XMP (sidecar or embedded) states it.

    Attributes
    ----------
    rating : int or None
        -1 rejected, 0 unrated, 1-5 stars; None when the sidecar has no valid ``xmp:Rating``.
    label : str or None
        The colour label by name (``xmp:Label``: Lightroom's are Red, Yellow, Green, Blue, Purple).
    keywords : tuple of str
        ``dc:subject``.
    source : str
        Where it was read, relative to the shoot: the sidecar, or the image itself (its embedded XMP).
    flag : str or None
        ``pick`` or ``reject`` as a culling tool's flag states it (:func:`culling_flag`), None without one.
    """

    rating: int | None
    label: str | None
    keywords: tuple[str, ...]
    source: str
    flag: str | None = None

    @property
    def rejected(self) -> bool:
        return self.rating == -1 or self.flag == REJECT

    def review(self) -> dict[str, Any]:
        """The instructions document's image-level ``review`` (the keys the XMP writer and the review app read:
        a reject is rating -1, its stars aside, as the review app writes one)."""
        rating = -1 if self.rejected else (self.rating if self.rating is not None else 0)
        return {"rating": rating, "label": self.label, "keywords": list(self.keywords),
                "flag": REJECT if self.rejected else self.flag,
                "by": f"{PHOTOGRAPHER} ({os.path.basename(self.source)})", "at": None}


def valid_picks(value: object) -> bool:
    """Whether ``value`` is a ``--photographer-picks`` choice: one of :data:`PHOTOGRAPHER_PICKS`, or a label after
    :data:`LABEL_PICKS`."""
    return isinstance(value, str) and (value in PHOTOGRAPHER_PICKS or (
        value.startswith(LABEL_PICKS) and bool(value[len(LABEL_PICKS):].strip())))


class _PickChoices:
    """The ``--photographer-picks`` choices as a container (``value in PICK_CHOICES``: :func:`valid_picks`)."""

    def __contains__(self, value: object) -> bool:
        return valid_picks(value)


PICK_CHOICES = _PickChoices()


def is_pick(culling: Culling, picks: str) -> bool:
    """Whether a frame is among the photographer's picks under ``picks`` (:func:`valid_picks`): a pick flag, or,
    with a number of stars, a rating of that many stars or more, or, with a label, that colour label (compared
    without case); a rejected frame never is."""
    if culling.rejected:
        return False
    if culling.flag == PICK:
        return True
    if picks.startswith(LABEL_PICKS):
        wanted = picks[len(LABEL_PICKS):].strip().casefold()
        return culling.label is not None and culling.label.strip().casefold() == wanted
    return picks.isdigit() and (culling.rating or 0) >= int(picks)


def is_photographers(review: dict[str, Any] | None) -> bool:
    """Whether an image-level ``review`` is the photographer's XMP's (:meth:`Culling.review`), not a reviewer's."""
    by = (review or {}).get("by")
    return isinstance(by, str) and by.startswith(PHOTOGRAPHER + " (")


def sidecar_owners(sidecars: list[str], files: list[str]) -> dict[str, str]:
    """Which sidecar each file takes its culling from: file -> sidecar (paths relative to the shoot).

    A sidecar is in the file's folder and named after it: ``IMG_0002.CR2.xmp`` for that file alone,
    ``IMG_0002.xmp`` for every file of the stem (a RAW+JPEG pair is one photo to Lightroom, one
    rating). The first is the more precise and wins where both exist. Names compare without case,
    as Lightroom's catalogues do.
    """
    named: dict[tuple[str, str], str] = {}  # (folder, the sidecar's name less .xmp) -> sidecar
    for sidecar in sorted(sidecars):
        folder, _, name = sidecar.rpartition("/")
        named.setdefault((folder, os.path.splitext(name)[0].casefold()), sidecar)
    owners: dict[str, str] = {}
    for path in files:
        folder, _, name = path.rpartition("/")
        found = named.get((folder, name.casefold())) or named.get((folder, os.path.splitext(name)[0].casefold()))
        if found is not None:
            owners[path] = found
    return owners


def read_culling(root: Path, sidecar: str) -> Culling | None:
    """The culling a sidecar states, or None when it states none (no stars, reject, label or keyword), or
    exiv2 cannot read it (logged)."""
    return read_sidecar(root, sidecar)[0]


def read_sidecar(root: Path, sidecar: str) -> tuple[Culling | None, int | None]:
    """The culling a sidecar states (:func:`read_culling`) and the turn (:func:`xmp_orientation`), read once."""
    from pipeline.imaging.identity import read_exiv2_tags

    tags = read_exiv2_tags(root / sidecar, readers=("read_xmp",))
    if not tags:
        _log.warning("%s: no XMP read from this sidecar (damaged, or not XMP): its culling is left out", sidecar)
        return None, None
    return _culling(tags, sidecar), xmp_orientation(tags)


def xmp_orientation(tags: dict[str, Any]) -> int | None:
    """The EXIF orientation (1-8) an XMP's ``tiff:Orientation`` states, None without a valid one.

    Lightroom, Camera Raw and Bridge keep a RAW's turn there: a photographer who turns a frame while culling (a
    portrait the camera's sensor took for a landscape, a shot pointed straight up or down) writes it into the
    sidecar, and Lightroom writes the camera's own orientation there when nothing was turned. postprod develops a
    RAW in the turn its XMP states (:func:`~pipeline.imaging.decode.develop_flip`), as Lightroom shows it.
    """
    value = tags.get("Xmp.tiff.Orientation")
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= 8 else None


def packet_orientation(packet: bytes, source: str) -> int | None:
    """The turn (:func:`xmp_orientation`) an XMP packet embedded in ``source`` states (a DNG's, where Lightroom
    writes it), or None."""
    if b"Orientation" not in packet:
        return None
    from pipeline.imaging.identity import read_xmp_packet

    tags = read_xmp_packet(packet)
    return None if tags is None else xmp_orientation(tags)


def packet_culling(packet: bytes, source: str) -> Culling | None:
    """The culling an XMP packet embedded in ``source`` states (:func:`embedded_packet`), or None."""
    if b"Rating" not in packet and not any(k in packet for k in _CULLING_WORDS):
        return None  # (most packets a camera or an export writes: no parse)
    if _unrated(packet):
        return None  # (a Canon's or a Nikon's packet: its rating 0 alone, padded to 64 KB; 1.5 ms an exiv2 parse)
    from pipeline.imaging.identity import read_xmp_packet

    tags = read_xmp_packet(packet)
    if tags is None:
        _log.warning("%s: its embedded XMP could not be read: its culling is left out", source)
        return None
    return _culling(tags, source)


#: What a packet names when it states a culling besides its stars (a label, keywords, a flag or a tag).
_CULLING_WORDS = (b"Label", b"subject", b"pick", b"Tagged", b"good")
#: An unrated ``xmp:Rating`` of 0, as an attribute or as an element with its closing tag.
_ZERO_RATING = re.compile(rb'Rating(?:="0(?:\.0*)?"|>\s*0(?:\.0*)?\s*</[\w.-]+:Rating>)')


def _unrated(packet: bytes) -> bool:
    """Whether a packet states no culling but a rating of 0 (``xmp:Rating`` 0, as every EOS R and Nikon Z body
    writes it unrated): with every zero rating taken out, no rating and nothing else a culling is made of is left."""
    return not any(k in packet for k in _CULLING_WORDS) and b"Rating" not in _ZERO_RATING.sub(b"", packet)


def _culling(tags: dict[str, Any], source: str) -> Culling | None:
    rating = _rating(tags.get("Xmp.xmp.Rating"))
    label = tags.get("Xmp.xmp.Label")
    label = (label.strip() or None) if isinstance(label, str) else None
    if label is None:  # digiKam numbers its colour labels, and writes no xmp:Label
        label = DIGIKAM_COLOURS.get(_integer(tags.get("Xmp.digiKam.ColorLabel")) or 0)
    subject = tags.get("Xmp.dc.subject")
    keywords = tuple(k for k in ([subject] if isinstance(subject, str) else subject or []) if isinstance(k, str) and k)
    flag = culling_flag(tags)
    if not rating and label is None and not keywords and flag is None:  # (0: unrated, Camera Raw's default)
        return None
    return Culling(rating, label, keywords, source, flag)


#: digiKam's colour labels (``digiKam:ColorLabel``, 0 none) by the names Lightroom's set gives them (its magenta is
#: Lightroom's purple); the four Lightroom has no label for keep their English names.
DIGIKAM_COLOURS = {1: "Red", 2: "Orange", 3: "Yellow", 4: "Green", 5: "Blue", 6: "Purple", 7: "Gray", 8: "Black",
                   9: "White"}


def culling_flag(tags: dict[str, Any]) -> str | None:
    """The pick or reject flag an XMP's tags (exiv2's keys) state, or None.

    Each culling tool writes its own (none writes another's):

    - Lightroom Classic 13.2 and later, and Lightroom desktop 7.2 and later, write their Pick and Reject flags
      (P, X) as ``xmpDM:pick`` 1 and -1 (0: unflagged), with ``xmpDM:good``; an earlier Lightroom kept them in its
      catalogue alone. A photographer's X was developed and delivered as a keeper while only ``xmp:Rating`` -1
      (Bridge's reject) was read.
    - digiKam its pick label, ``digiKam:PickLabel``: 1 rejected, 2 pending (no verdict), 3 accepted.
    - Photo Mechanic its tag, the keeper mark of its culling: ``photomechanic:Tagged`` True. It has no reject.
    - ``xmpDM:good`` True (Adobe's "good take" mark) is a pick; False only says it is not marked one.

    A reject any of them states wins over a pick another states (a reject is the deliberate choice); stars of -1
    are the caller's (:attr:`Culling.rejected`).
    """
    pick = _integer(tags.get("Xmp.xmpDM.pick"))
    digikam = _integer(tags.get("Xmp.digiKam.PickLabel"))
    if pick == -1 or digikam == 1:
        return REJECT
    if pick == 1 or digikam == 3 or any(_true(tags.get(k)) for k in ("Xmp.xmpDM.good", "Xmp.photomechanic.Tagged")):
        return PICK
    return None


def _integer(value: Any) -> int | None:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number == round(number) else None


def _true(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() == "true"


def _rating(value: Any) -> int | None:
    """``xmp:Rating`` as an integer -1..5 (XMP allows a real: "3.0"), None when absent or out of range."""
    number = _integer(value)
    return number if number is not None and -1 <= number <= 5 else None


#: The XMP packet's APP1 segment in a JPEG begins with this namespace (XMP Specification Part 3, 1.1.3).
_JPEG_XMP = b"http://ns.adobe.com/xap/1.0/\x00"
#: TIFF tag XMLPacket (DNG and TIFF carry their XMP there).
_TIFF_XMP_TAG = 700
#: The largest packet read (Lightroom's are a few KB; a history of edits some tens).
MAX_PACKET_BYTES = 4 << 20
#: How a TIFF-structured file begins: TIFF's two byte orders, Olympus's ORF (``IIRO``, ``IIRS``, ``MMOR``) and
#: Panasonic's RW2 (``IIU``), whose IFD0 is a TIFF's (a BigTIFF's is elsewhere).
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"IIRO", b"IIRS", b"MMOR", b"IIU\x00")
#: The ``uuid`` of the XMP box in an ISO base media file (XMP Specification Part 3, 1.1.4): a CR3's.
_BMFF_XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")
#: A RAF's header holds its embedded JPEG's offset here (big-endian).
_RAF_JPEG_OFFSET = 84
_EXIF_IFD_TAG, _MAKER_NOTE_TAG = 0x8769, 0x927C
#: EXIF's rating (IFD0, Microsoft's tag; ExifTool's ``Rating``), 0-5.
_EXIF_RATING_TAG = 0x4746
#: Fujifilm's in-camera rating in its maker notes (ExifTool's FujiFilm table: ``Rating``, 0x1431).
_FUJIFILM_RATING_TAG = 0x1431
#: TIFF's integer types (SHORT, LONG, SSHORT, SLONG) as struct formats.
_INTEGER_TYPES = {3: "H", 4: "I", 8: "h", 9: "i"}


def embedded_packet(path: str, fmt: str, head: bytes) -> bytes | None:
    """The XMP packet inside a file, where Lightroom, Photo Mechanic and cameras write its culling; None without one.

    A JPEG's APP1 segment; a TIFF's, a DNG's and a TIFF-structured RAW's IFD0 XMLPacket tag (CR2, NEF, ARW, PEF, ORF,
    RW2 and the like: a Nikon Z's stars rated in the camera); a CR3's XMP box (Canon's EOS R bodies write their
    in-camera rating there, ``xmp:Rating`` 0 when unrated). ``head`` is the file's first bytes (the scan has them);
    what lies beyond is read by offset.
    """
    try:
        if fmt == "jpeg":
            return _jpeg_packet(path, head)
        if fmt == "cr3":
            return _bmff_packet(path, head)
        if head[:4] in _TIFF_MAGICS:
            return _tiff_packet(path, head)
    except (OSError, struct.error, ValueError):
        return None
    return None


def camera_rating(path: str, fmt: str, head: bytes) -> int | None:
    """The stars a camera wrote outside XMP when the photographer rated the frame in playback; None where there are
    none, 0 (unrated) or out of 1-5.

    EXIF's ``Rating`` in IFD0 (0x4746: Sony's bodies write it into an ARW and its JPEG, 0 when unrated), in a
    TIFF-structured RAW or a camera JPEG; Fujifilm's maker notes (tag 0x1431, ExifTool's FujiFilm ``Rating``) in a
    RAF's embedded JPEG or a camera JPEG (Fujifilm writes no XMP). Canon's and Nikon's are in their XMP
    (:func:`embedded_packet`), which the scan reads first.
    """
    try:
        if fmt == "raf":
            (offset,) = struct.unpack(">I", _read_at(path, head, _RAF_JPEG_OFFSET, 4))
            return _jpeg_rating(path, head, offset)
        if fmt == "jpeg":
            return _jpeg_rating(path, head, 0)
        if head[:4] in _TIFF_MAGICS:
            endian = {b"II": "<", b"MM": ">"}[head[:2]]
            (ifd0,) = struct.unpack_from(endian + "I", head, 4)
            return _exif_rating(path, head, endian, ifd0, 0)[0]
    except (OSError, struct.error, ValueError):
        return None
    return None


def _read_at(path: str, head: bytes, offset: int, size: int) -> bytes:
    if offset + size <= len(head):
        return head[offset : offset + size]
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def _jpeg_segments(path: str, head: bytes, start: int = 0) -> Iterator[tuple[int, int, int]]:
    """``(marker, offset of its body, body length)`` of each segment of the JPEG at ``start`` before its image data."""
    at = start + 2
    for _ in range(64):  # markers before the image data: a few APPn, quantisation and Huffman tables
        marker = _read_at(path, head, at, 4)
        if len(marker) < 4 or marker[0] != 0xFF or marker[1] in (0xDA, 0xD9):  # start of scan, end of image
            return
        (length,) = struct.unpack(">H", marker[2:])
        yield marker[1], at + 4, length - 2
        at += 2 + length


def _jpeg_packet(path: str, head: bytes) -> bytes | None:
    for marker, at, length in _jpeg_segments(path, head):
        if marker == 0xE1 and length > len(_JPEG_XMP):
            body = _read_at(path, head, at, min(length, MAX_PACKET_BYTES))
            if body.startswith(_JPEG_XMP):
                return body[len(_JPEG_XMP):]
    return None


def _tiff_packet(path: str, head: bytes) -> bytes | None:
    endian = {b"II": "<", b"MM": ">"}[head[:2]]
    (ifd,) = struct.unpack_from(endian + "I", head, 4)
    for tag, _, n, value, inline in _ifd_entries(path, head, endian, ifd, 0):
        if tag == _TIFF_XMP_TAG and 0 < n <= MAX_PACKET_BYTES:
            return inline[:n] if n <= 4 else _read_at(path, head, value, n)
    return None


def _ifd_entries(path: str, head: bytes, endian: str, ifd: int,
                 base: int) -> Iterator[tuple[int, int, int, int, bytes]]:
    """``(tag, type, count, value or offset, the 4 bytes of the value field)`` of each entry of the IFD at
    ``base + ifd`` (offsets in it are relative to ``base``: a TIFF's start, or a JPEG's EXIF header)."""
    (count,) = struct.unpack(endian + "H", _read_at(path, head, base + ifd, 2))
    entries = _read_at(path, head, base + ifd + 2, 12 * min(count, 1000))
    for i in range(len(entries) // 12):
        tag, kind, n, value = struct.unpack_from(endian + "HHII", entries, 12 * i)
        yield tag, kind, n, value, entries[12 * i + 8 : 12 * i + 12]


def _bmff_packet(path: str, head: bytes) -> bytes | None:
    """The XMP box (``uuid`` :data:`_BMFF_XMP_UUID`) among an ISO base media file's top-level boxes (a CR3's lies
    after its ``moov``)."""
    at, end = 0, os.path.getsize(path)
    for _ in range(64):
        if at + 8 > end:
            return None
        size, kind = struct.unpack(">I4s", _read_at(path, head, at, 8))
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", _read_at(path, head, at + 8, 8))
            header = 16
        elif size == 0:
            size = end - at
        if size < header:
            return None
        if kind == b"uuid" and _read_at(path, head, at + header, 16) == _BMFF_XMP_UUID:
            length = size - header - 16
            return _read_at(path, head, at + header + 16, length) if 0 < length <= MAX_PACKET_BYTES else None
        at += size
    return None


def _jpeg_rating(path: str, head: bytes, jpeg: int) -> int | None:
    """The rating in the EXIF of the JPEG at ``jpeg`` (see :func:`camera_rating`)."""
    if _read_at(path, head, jpeg, 2) != b"\xff\xd8":
        return None
    for marker, at, _ in _jpeg_segments(path, head, jpeg):
        if marker != 0xE1 or _read_at(path, head, at, 6) != b"Exif\x00\x00":
            continue
        tiff = at + 6
        endian = {b"II": "<", b"MM": ">"}.get(_read_at(path, head, tiff, 2))
        if endian is None:
            return None
        (ifd0,) = struct.unpack(endian + "I", _read_at(path, head, tiff + 4, 4))
        stars, exif = _exif_rating(path, head, endian, ifd0, tiff)
        if stars is not None or exif is None:
            return stars
        note = next((v for t, _, _, v, _ in _ifd_entries(path, head, endian, exif, tiff) if t == _MAKER_NOTE_TAG),
                    None)
        if note is None or _read_at(path, head, tiff + note, 8) != b"FUJIFILM":
            return None
        # Fujifilm's maker notes are little-endian whatever the EXIF's order, their offsets from their own start.
        (ifd,) = struct.unpack("<I", _read_at(path, head, tiff + note + 8, 4))
        return _rating_entry(path, head, "<", ifd, tiff + note, _FUJIFILM_RATING_TAG)
    return None


def _exif_rating(path: str, head: bytes, endian: str, ifd0: int, base: int) -> tuple[int | None, int | None]:
    """IFD0's ``Rating`` (1-5, else None) and the offset of its EXIF IFD (None without one)."""
    stars = exif = None
    for tag, kind, n, value, inline in _ifd_entries(path, head, endian, ifd0, base):
        if tag == _EXIF_RATING_TAG:
            stars = _stars(endian, kind, n, inline)
        elif tag == _EXIF_IFD_TAG:
            exif = value
    return stars, exif


def _rating_entry(path: str, head: bytes, endian: str, ifd: int, base: int, wanted: int) -> int | None:
    for tag, kind, n, _, inline in _ifd_entries(path, head, endian, ifd, base):
        if tag == wanted:
            return _stars(endian, kind, n, inline)
    return None


def _stars(endian: str, kind: int, count: int, inline: bytes) -> int | None:
    """One integer entry's value as stars: 1-5, else None."""
    if count != 1 or kind not in _INTEGER_TYPES:
        return None
    (value,) = struct.unpack_from(endian + _INTEGER_TYPES[kind], inline)
    return value if 1 <= value <= 5 else None


def photographer_xmp(root: Path, sidecars: list[str], files: list[str]) -> tuple[dict[str, Culling], dict[str, int]]:
    """The culling of each of ``files`` that has a sidecar stating one (:func:`sidecar_owners`), and the turn
    (:func:`xmp_orientation`) of each whose sidecar states one; each sidecar read once (exiv2, well under a
    millisecond a sidecar)."""
    owners = sidecar_owners(sidecars, files)
    read = {s: read_sidecar(root, s) for s in sorted(set(owners.values()))}
    culling = {f: c for f, s in owners.items() if (c := read[s][0]) is not None}
    turns = {f: o for f, s in owners.items() if (o := read[s][1]) is not None}
    return culling, turns
