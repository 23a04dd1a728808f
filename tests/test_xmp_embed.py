"""XMP packets embedded in copies of DNG, TIFF, JPEG and PNG sources without exiftool (pipeline.outputs.xmp_embed).

Read back by exiftool (the reference reader) and by the decoders the pipeline and Lightroom's users rely on:
the copy carries the packet byte for byte, and everything else the source held (raw data, pixels, every other
tag) is the source's.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pyexiv2
import pytest
import rawpy
from PIL import Image

from pipeline.outputs.xmp import EmbedError, embed_packets
from pipeline.outputs.xmp_embed import MAX_JPEG_PACKET, LayoutError, embed_xmp, embedded_xmp

needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed (CI installs it)")


def _packet(rating: int) -> bytes:
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            f'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="{rating}"/></rdf:RDF></x:xmpmeta>\n'
            '<?xpacket end="w"?>').encode("utf-8")


def _exiftool(*args: str) -> str:
    return subprocess.run(["exiftool", *args], capture_output=True, text=True, check=True).stdout


def _tags_but_xmp(path: Path) -> dict:
    """Every tag exiftool reads, by group, but the file system's and the XMP's."""
    tags = json.loads(_exiftool("-j", "-a", "-G1", "-x", "System:all", "-x", "XMP:all", str(path)))[0]
    return {k: v for k, v in tags.items() if k not in ("SourceFile", "ExifTool:ExifToolVersion")}


def _big_endian_tiff(path: Path, pixels: np.ndarray) -> None:
    """A baseline big-endian ("MM") RGB TIFF, one strip, written by hand (Pillow writes little-endian only)."""
    h, w, _ = pixels.shape
    data = pixels.astype(np.uint8).tobytes()
    bps_at = 8
    strip_at = bps_at + 6
    ifd_at = strip_at + len(data) + (len(data) & 1)
    entries = [(256, 3, 1, w << 16), (257, 3, 1, h << 16), (258, 3, 3, bps_at), (259, 3, 1, 1 << 16),
               (262, 3, 1, 2 << 16), (273, 4, 1, strip_at), (277, 3, 1, 3 << 16), (278, 3, 1, h << 16),
               (279, 4, 1, len(data))]
    out = b"MM\x00*" + struct.pack(">I", ifd_at) + struct.pack(">HHH", 8, 8, 8) + data + b"\x00" * (len(data) & 1)
    out += struct.pack(">H", len(entries)) + b"".join(struct.pack(">HHII", *e) for e in entries) + b"\x00" * 4
    path.write_bytes(out + b"\x00")  # and a stray byte after it: an odd size


@needs_exiftool
def test_a_dng_copy_carries_the_packet_and_nothing_else_changes(raw_dir: Path, tmp_path: Path) -> None:
    """A real DNG (Canon sensor data) with no XMP: the copy reads back the packet as written, its sensor data and
    every other tag are the source's, and exiftool's validation says of it what it says of the source."""
    source = raw_dir / "tinydng_colorchart.dng"
    copy = tmp_path / "copy.dng"
    embed_xmp(source, _packet(3), copy)
    assert subprocess.run(["exiftool", "-b", "-xmp", str(copy)], capture_output=True, check=True).stdout == _packet(3)
    assert _tags_but_xmp(copy) == _tags_but_xmp(source)
    assert (_exiftool("-validate", "-warning", "-error", "-a", str(copy))
            == _exiftool("-validate", "-warning", "-error", "-a", str(source)))
    with pyexiv2.Image(str(copy)) as im:  # a second reader: exiv2, which darktable and digiKam use
        assert im.read_xmp()["Xmp.xmp.Rating"] == "3"
    with rawpy.imread(str(source)) as a, rawpy.imread(str(copy)) as b:
        assert np.array_equal(a.raw_image, b.raw_image)
        assert np.array_equal(a.postprocess(half_size=True), b.postprocess(half_size=True))
    # Byte for byte the source's, but for the header's pointer to IFD0 (a new one, after the packet).
    before, after = source.read_bytes(), copy.read_bytes()
    assert after[:4] == before[:4] and after[8:len(before)] == before[8:] and after[4:8] != before[4:8]


@needs_exiftool
@pytest.mark.parametrize("name", ["DNG.dng", "CanonRaw.cr2", "Nikon.nef", "PhaseOne.iiq"])
def test_real_bodies_tiff_layouts(raw_dir: Path, tmp_path: Path, name: str) -> None:
    """exiftool's metadata-only samples keep the directory layouts real bodies write (maker notes, SubIFDs, an
    Adobe-written XMP in the DNG): the copy reads back the packet, every tag read from elsewhere is unchanged and
    the validation says the same. Composite tags are left out: the DNG's derive from the XMP the packet replaces,
    as exiftool's own copy drops them."""
    source = raw_dir / "unsupported" / "exiftool_stubs" / name
    copy = tmp_path / f"copy_{name}"
    embed_xmp(source, _packet(4), copy)
    assert subprocess.run(["exiftool", "-b", "-xmp", str(copy)], capture_output=True, check=True).stdout == _packet(4)
    direct = lambda tags: {k: v for k, v in tags.items() if not k.startswith("Composite:")}
    assert direct(_tags_but_xmp(copy)) == direct(_tags_but_xmp(source))
    assert (_exiftool("-validate", "-warning", "-error", "-a", str(copy))
            == _exiftool("-validate", "-warning", "-error", "-a", str(source)))


@needs_exiftool
def test_a_packet_already_there_is_replaced_in_its_entry(raw_dir: Path, tmp_path: Path) -> None:
    """A copy of a copy: IFD0 keeps its entries (the XMP entry now points at the new packet), the header still
    points at the first copy's directory, and exiftool reads the second packet alone."""
    first, second = tmp_path / "first.dng", tmp_path / "second.dng"
    embed_xmp(raw_dir / "tinydng_colorchart.dng", _packet(2), first)
    embed_xmp(first, _packet(5), second)
    assert second.read_bytes()[:8] == first.read_bytes()[:8]
    assert subprocess.run(["exiftool", "-b", "-xmp", str(second)], capture_output=True, check=True).stdout == _packet(5)
    assert json.loads(_exiftool("-j", "-XMP:Rating", str(second)))[0]["Rating"] == 5
    assert _tags_but_xmp(second) == _tags_but_xmp(first)


@needs_exiftool
def test_big_endian_and_odd_sized_tiffs(tmp_path: Path) -> None:
    """A Motorola-order TIFF of an odd byte count: the packet lands on a word boundary, the pixels read the same."""
    pixels = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3) * 5
    source, copy = tmp_path / "mm.tif", tmp_path / "mm_copy.tif"
    _big_endian_tiff(source, pixels)
    assert source.stat().st_size % 2 == 1
    embed_xmp(source, _packet(4), copy)
    assert np.array_equal(np.asarray(Image.open(copy)), pixels)
    assert json.loads(_exiftool("-j", "-XMP:Rating", str(copy)))[0]["Rating"] == 4
    ifd = struct.unpack(">I", copy.read_bytes()[4:8])[0]
    entries = copy.read_bytes()[ifd + 2:ifd + 2 + 12 * 10]
    tags = [struct.unpack(">H", entries[12 * i:12 * i + 2])[0] for i in range(10)]
    assert tags == sorted(tags) and 700 in tags  # the new entry among the sorted ones
    offset = struct.unpack(">I", entries[12 * tags.index(700) + 8:12 * tags.index(700) + 12])[0]
    assert offset % 2 == 0


def test_what_cannot_be_patched_is_refused(tmp_path: Path) -> None:
    """A BigTIFF, a header pointing past the file, a directory too large for it: refused, the copy not started."""
    cases = {
        "big.tif": b"II+\x00\x08\x00\x00\x00" + b"\x00" * 32,
        "past.tif": b"II*\x00" + struct.pack("<I", 10_000) + b"\x00" * 32,
        "huge_ifd.tif": b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 4000) + b"\x00" * 32,
        "not_tiff.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 32,
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(LayoutError):
            embed_xmp(tmp_path / name, _packet(1), tmp_path / f"out_{name}")
        assert not (tmp_path / f"out_{name}").exists()


def _xmp_segments(path: Path) -> int:
    """How many APP1 segments of a JPEG start with the XMP namespace."""
    data, pos, n = path.read_bytes(), 2, 0
    while data[pos + 1] not in (0xDA, 0xD9):
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        n += data[pos + 1] == 0xE1 and data[pos + 4:pos + 33] == b"http://ns.adobe.com/xap/1.0/\x00"
        pos += 2 + length
    return n


@needs_exiftool
@pytest.mark.parametrize("name", ["exposure/Roland Tanglao-CC BY 2.0.jpg", "wb/Flickr_quiddle_CC BY-SA_2.0.jpg"])
def test_a_jpeg_copy_carries_the_packet_and_nothing_else_changes(testdata: Path, tmp_path: Path, name: str) -> None:
    """Real camera JPEGs: one with an Olympus maker note and no XMP, one that Adobe software gave its XMP. The
    copy holds one XMP segment, the packet byte for byte; its pixels and every other tag are the source's."""
    source = testdata / name
    copy = tmp_path / "copy.jpg"
    embed_xmp(source, _packet(3), copy)
    assert subprocess.run(["exiftool", "-b", "-xmp", str(copy)], capture_output=True, check=True).stdout == _packet(3)
    assert _xmp_segments(copy) == 1
    assert _tags_but_xmp(copy) == _tags_but_xmp(source)
    assert (_exiftool("-validate", "-warning", "-error", "-a", str(copy))
            == _exiftool("-validate", "-warning", "-error", "-a", str(source)))
    assert np.array_equal(np.asarray(Image.open(copy)), np.asarray(Image.open(source)))
    with pyexiv2.Image(str(copy)) as im:
        assert im.read_xmp()["Xmp.xmp.Rating"] == "3"
    again = tmp_path / "again.jpg"
    embed_xmp(copy, _packet(5), again)  # a copy of a copy: the packet replaced, not added
    assert _xmp_segments(again) == 1 and json.loads(_exiftool("-j", "-XMP:Rating", str(again)))[0]["Rating"] == 5


def _mpf_jpeg(path: Path) -> None:
    """A JPEG with a multi-picture (MPF) APP2 segment, which only exiftool's copy keeps right."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, "JPEG")
    data, mpf = buf.getvalue(), b"MPF\x00" + b"\x00" * 8
    path.write_bytes(data[:2] + b"\xff\xe2" + struct.pack(">H", 2 + len(mpf)) + mpf + data[2:])


@needs_exiftool
def test_a_png_copy_carries_the_packet_and_keeps_its_pixels(tmp_path: Path) -> None:
    """A PNG (16-bit, with a text chunk): the packet in an iTXt chunk before the image data, read back by exiftool and
    exiv2, the pixels and the other chunk kept; a copy of the copy holds one XMP chunk, the new packet."""
    source, copy, again = tmp_path / "a.png", tmp_path / "copy.png", tmp_path / "again.png"
    pixels = (np.arange(6 * 7 * 3, dtype=np.uint16).reshape(6, 7, 3) * 997).astype(np.uint16)
    cv2.imwrite(str(source), pixels)
    embed_xmp(source, _packet(3), copy)
    assert subprocess.run(["exiftool", "-b", "-xmp", str(copy)], capture_output=True, check=True).stdout == _packet(3)
    with pyexiv2.Image(str(copy)) as im:
        assert im.read_xmp()["Xmp.xmp.Rating"] == "3"
    assert np.array_equal(cv2.imread(str(copy), cv2.IMREAD_UNCHANGED), pixels)
    data = copy.read_bytes()
    assert data.index(b"iTXtXML:com.adobe.xmp") < data.index(b"IDAT")
    embed_xmp(copy, _packet(5), again)
    assert again.read_bytes().count(b"XML:com.adobe.xmp") == 1
    assert json.loads(_exiftool("-j", "-XMP:Rating", str(again)))[0]["Rating"] == 5
    assert _tags_but_xmp(again) == _tags_but_xmp(source)


def test_jpegs_this_module_leaves_to_exiftool(tmp_path: Path) -> None:
    """A packet too large for one segment (extended XMP) and a multi-picture JPEG (MPF offsets) are refused."""
    jpeg = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(jpeg)
    with pytest.raises(LayoutError, match="extended XMP"):
        embed_xmp(jpeg, b" " * (MAX_JPEG_PACKET + 1), tmp_path / "big.jpg")
    data = jpeg.read_bytes()
    _mpf_jpeg(tmp_path / "mpf.jpg")
    with pytest.raises(LayoutError, match="multi-picture"):
        embed_xmp(tmp_path / "mpf.jpg", _packet(1), tmp_path / "mpf_copy.jpg")
    (tmp_path / "cut.jpg").write_bytes(data[:40])
    with pytest.raises(LayoutError):
        embed_xmp(tmp_path / "cut.jpg", _packet(1), tmp_path / "cut_copy.jpg")
    assert not [p for p in tmp_path.iterdir() if "copy" in p.name or p.name == "big.jpg"]


def test_copies_need_no_exiftool_but_for_what_it_alone_patches(raw_dir: Path, tmp_path: Path) -> None:
    """embed_packets patches DNGs and JPEGs itself, so a machine without exiftool still gets them (and a name with
    a line break, which exiftool's argument file cannot carry); a multi-picture JPEG needs exiftool."""
    packet = tmp_path / "p.xmp"
    packet.write_bytes(_packet(1))
    jpeg = tmp_path / "a\nb.jpg"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(jpeg)
    jobs = [(raw_dir / "tinydng_colorchart.dng", packet, tmp_path / "out" / "a.dng"),
            (jpeg, packet, tmp_path / "out" / "a\nb.jpg")]
    assert embed_packets(jobs, exiftool="/nonexistent/exiftool") == {}
    for _, _, dest in jobs:
        assert _packet(1) in dest.read_bytes()
    assert not list((tmp_path / "out").glob(".*"))  # no temporary left behind
    _mpf_jpeg(tmp_path / "mpf.jpg")
    with pytest.raises(EmbedError, match="exiftool is not installed"):
        embed_packets([(tmp_path / "mpf.jpg", packet, tmp_path / "out" / "mpf.jpg")], exiftool="/nonexistent/exiftool")


def test_a_tiff_it_cannot_patch_goes_to_exiftool(tmp_path: Path) -> None:
    """A BigTIFF is handed to exiftool (here a stand-in that writes nothing): its failure is reported, not raised."""
    big = tmp_path / "big.tif"
    big.write_bytes(b"II+\x00\x08\x00\x00\x00" + b"\x00" * 32)
    packet = tmp_path / "p.xmp"
    packet.write_bytes(_packet(1))
    fake = tmp_path / "exiftool"
    fake.write_text("#!/bin/sh\necho 'stand-in exiftool: nothing written' >&2\n")
    fake.chmod(0o755)
    dest = tmp_path / "out" / "big.tif"
    failed = embed_packets([(big, packet, dest)], exiftool=str(fake))
    assert failed == {dest: "stand-in exiftool: nothing written"} and not dest.exists()


@needs_exiftool
def test_exiftool_only_writes_the_same_settings(raw_dir: Path, tmp_path: Path) -> None:
    """The baseline of benchmarks/xmp_copies.py: every copy through exiftool, which reads back the same packet."""
    packet = tmp_path / "p.xmp"
    packet.write_bytes(_packet(2))
    ours, theirs = tmp_path / "ours" / "a.dng", tmp_path / "theirs" / "a.dng"
    source = raw_dir / "tinydng_colorchart.dng"
    assert embed_packets([(source, packet, ours)]) == {}
    assert embed_packets([(source, packet, theirs)], exiftool_only=True) == {}
    read = [subprocess.run(["exiftool", "-b", "-xmp", str(p)], capture_output=True, check=True).stdout
            for p in (ours, theirs)]
    assert read == [_packet(2), _packet(2)]
    assert ours.read_bytes() != theirs.read_bytes()  # exiftool rewrote the file; here only the packet was added
    placed = lambda tags: {k: v for k, v in tags.items() if "Offsets" not in k}  # exiftool moves the data
    assert placed(_tags_but_xmp(ours)) == placed(_tags_but_xmp(theirs))


def test_a_rerun_leaves_a_copy_that_holds_its_packet(raw_dir: Path, tmp_path: Path) -> None:
    """embed_packets again with the same packet: the copy is not written again (same inode and time); with another
    packet (a review decision, a new chart) it is. embedded_xmp reads the packet of each kind of copy back."""
    packet = tmp_path / "p.xmp"
    packet.write_bytes(_packet(1))
    jpeg, png = tmp_path / "a.jpg", tmp_path / "a.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(jpeg)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(png)
    jobs = [(raw_dir / "tinydng_colorchart.dng", packet, tmp_path / "out" / "a.dng"),
            (jpeg, packet, tmp_path / "out" / "a.jpg"), (png, packet, tmp_path / "out" / "a.png")]
    assert embed_packets(jobs) == {}
    stats = [dest.stat() for _, _, dest in jobs]
    assert [embedded_xmp(dest) for _, _, dest in jobs] == [_packet(1)] * 3
    assert embedded_xmp(jpeg) is None and embedded_xmp(raw_dir / "tinydng_colorchart.dng") is None
    assert embed_packets(jobs) == {}
    assert [(s.st_ino, s.st_mtime_ns) for s in stats] == [(d.stat().st_ino, d.stat().st_mtime_ns) for _, _, d in jobs]
    packet.write_bytes(_packet(2))
    assert embed_packets(jobs) == {}
    assert [embedded_xmp(dest) for _, _, dest in jobs] == [_packet(2)] * 3
    assert all(d.stat().st_ino != s.st_ino for (_, _, d), s in zip(jobs, stats))
