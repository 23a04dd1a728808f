"""Ingest: recognition by content, sidecars and hidden files, duplicates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.kernel.ingest import scan_shoot, sniff_format
from pipeline.kernel.records import SourceKind


@pytest.mark.parametrize(
    ("head", "suffix", "expected"),
    [
        (b"\xff\xd8\xff\xe0" + b"\0" * 20, ".raw", ("jpeg", SourceKind.RASTER)),  # content wins over the name
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, ".jpg", ("png", SourceKind.RASTER)),
        (b"\0\0\0\x18ftypcrx " + b"\0" * 20, ".jpg", ("cr3", SourceKind.RAW)),
        (b"\0\0\0\x18ftypheic" + b"\0" * 20, ".heic", ("heic", SourceKind.RASTER)),
        (b"II\x1a\0\0\0HEAPCCDR" + b"\0" * 20, ".dat", ("crw", SourceKind.RAW)),
        (b"FUJIFILMCCD-RAW 0201" + b"\0" * 20, ".x", ("raf", SourceKind.RAW)),
        (b"IIRO\x08\0\0\0" + b"\0" * 20, ".x", ("orf", SourceKind.RAW)),
        (b"IIU\0\x08\0\0\0" + b"\0" * 20, ".x", ("rw2", SourceKind.RAW)),
        (b"II*\0\x10\0\0\0CR\x02\0" + b"\0" * 20, ".tif", ("cr2", SourceKind.RAW)),
        (b"II*\0\x08\0\0\0\0\0" + b"\0" * 20, ".nef", ("nef", SourceKind.RAW)),
        (b"II*\0\x08\0\0\0\0\0" + b"\0" * 20, ".tif", ("tiff", SourceKind.RASTER)),
        (b"II+\0\x08\0\0\0" + b"\0" * 20, ".tif", ("tiff", SourceKind.RASTER)),  # BigTIFF
        (b"MM\0+\0\x08\0\0" + b"\0" * 20, ".btf", ("tiff", SourceKind.RASTER)),
        (b"", ".jpg", ("empty", SourceKind.UNKNOWN)),
        (b"hello world", ".kdc", ("kdc", SourceKind.UNKNOWN)),
    ],
)
def test_sniff_format(head: bytes, suffix: str, expected: tuple) -> None:
    assert sniff_format(head, suffix) == expected


def test_sniff_dng_by_its_version_tag() -> None:
    # IFD0 at offset 8 with one entry: DNGVersion (0xC612), BYTE x4.
    ifd = b"\x01\x00" + b"\x12\xc6" + b"\x01\x00" + b"\x04\x00\x00\x00" + b"\x01\x04\x00\x00" + b"\0\0\0\0"
    head = b"II*\0\x08\0\0\0" + ifd
    assert sniff_format(head, ".tif") == ("dng", SourceKind.RAW)


def test_scan_skips_sidecars_hidden_and_finds_duplicates(tmp_path: Path, raw_dir: Path) -> None:
    shoot = tmp_path / "shoot"
    (shoot / "day1").mkdir(parents=True)
    (shoot / ".cache").mkdir()
    src = raw_dir / "Kodak_DC50_DC50IMG_DC0008L.KDC"
    shutil.copy(src, shoot / "day1" / "a.KDC")
    shutil.copy(src, shoot / "day1" / "b_copy.KDC")
    shutil.copy(src, shoot / ".cache" / "c.KDC")
    (shoot / "day1" / "a.xmp").write_text("<x:xmpmeta/>")
    (shoot / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (shoot / "notes.txt").write_text("not an image")
    (shoot / "empty.jpg").write_bytes(b"")
    result = scan_shoot(shoot)
    paths = [t.source_path for t in result.tasks]
    assert paths == ["day1/a.KDC", "empty.jpg", "notes.txt"]
    assert [(d.source_path, d.duplicate_of) for d in result.duplicates] == [("day1/b_copy.KDC", "day1/a.KDC")]
    reasons = {s.source_path: s.reason for s in result.skipped}
    assert reasons == {".cache/": "hidden folder", ".DS_Store": "hidden file", "day1/a.xmp": "sidecar (.xmp)"}
    kdc = result.tasks[0]
    assert kdc.file_size == src.stat().st_size and len(kdc.content_hash) == 64


def test_video_clips_and_system_files_are_skipped_and_counted_not_failed(tmp_path: Path) -> None:
    # An iPhone Live Photo is a still and a clip of the same name; a videographer's footage shares the shoot.
    import numpy as np
    from PIL import Image

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(shoot / "IMG_0001.JPG")
    clip = b"\x00\x00\x00\x18ftypqt  \x00\x00\x02\x00qt  \x00\x00\x00\x00" + bytes(4096)
    for name in ("IMG_0001.MOV", "footage/A001.mp4", "footage/A002.MTS"):
        (shoot / name).parent.mkdir(exist_ok=True)
        (shoot / name).write_bytes(clip)
    (shoot / "Thumbs.db").write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504))  # Windows' thumbnail cache
    (shoot / "footage" / "desktop.ini").write_text("[.ShellClassInfo]\n")
    result = scan_shoot(shoot)
    assert [t.source_path for t in result.tasks] == ["IMG_0001.JPG"]
    assert {s.source_path: s.reason for s in result.skipped} == {
        "IMG_0001.MOV": "video clip (.mov)",
        "footage/A001.mp4": "video clip (.mp4)",
        "footage/A002.MTS": "video clip (.mts)",
        "Thumbs.db": "system file",
        "footage/desktop.ini": "system file",
    }


def test_scan_rejects_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        scan_shoot(tmp_path / "nope")


def test_export_stems_are_unique() -> None:
    from pipeline.kernel.ingest import export_stems

    assert export_stems(["IMG_0002.JPG", "IMG_0002.dng", "IMG_0003.CR2"]) == ["IMG_0002_jpg", "IMG_0002", "IMG_0003"]
    assert export_stems(["a/IMG_1.CR2", "b/IMG_1.CR2"]) == ["IMG_1", "b_IMG_1"]
    assert export_stems(["x.jpg"]) == ["x"]


def test_raw_jpeg_pairs_are_one_folder_and_one_name_but_for_the_extension() -> None:
    from pipeline.kernel.ingest import raw_jpeg_pairs

    raw, unknown, jpeg, heic, tiff = (("cr2", SourceKind.RAW), ("kdc", SourceKind.UNKNOWN), ("jpeg", SourceKind.RASTER),
                                      ("heic", SourceKind.RASTER), ("tiff", SourceKind.RASTER))
    files = [
        ("day1/IMG_0002.CR2", raw), ("day1/IMG_0002.JPG", jpeg),  # a RAW+JPEG pair
        ("day1/img_0003.kdc", unknown), ("day1/IMG_0003.jpg", jpeg),  # LibRaw reads a KDC by its name; case aside
        ("day1/IMG_0004.CR2", raw), ("day1/IMG_0004.HIF", heic),  # RAW+HEIF
        ("day1/IMG_0005.CR2", raw), ("day1/IMG_0005.tif", tiff),  # someone's export, not the camera's
        ("day2/IMG_0002.JPG", jpeg),  # the same name in another folder: another frame
        ("day1/IMG_0006.JPG", jpeg), ("day1/notes.kdc", ("kdc", SourceKind.UNKNOWN)),
    ]
    pairs = raw_jpeg_pairs([p for p, _ in files], [f for _, f in files])
    assert {files[j][0]: files[r][0] for j, r in pairs.items()} == {
        "day1/IMG_0002.JPG": "day1/IMG_0002.CR2", "day1/IMG_0003.jpg": "day1/img_0003.kdc",
        "day1/IMG_0004.HIF": "day1/IMG_0004.CR2"}


def test_scan_skips_the_camera_jpeg_of_a_raw_jpeg_pair_unless_asked(tmp_path: Path, raw_dir: Path) -> None:
    import numpy as np
    from PIL import Image

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    shutil.copy(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW", shoot / "IMG_0002.CRW")
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(shoot / "IMG_0002.JPG")
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(shoot / "IMG_0003.JPG")
    result = scan_shoot(shoot)
    assert [t.source_path for t in result.tasks] == ["IMG_0002.CRW", "IMG_0003.JPG"]
    assert {s.source_path: s.reason for s in result.skipped} == {
        "IMG_0002.JPG": "camera JPEG of a RAW+JPEG pair (its RAW is developed, this file only if the RAW fails; "
                        "--raw-jpeg-pairs both develops both)"}
    assert result.pair_jpegs == {"IMG_0002.CRW": "IMG_0002.JPG"}
    # Were the RAW to fail, its JPEG takes its place: beside it in the shoot's order, under its name and number.
    assert result.stand_in("IMG_0003.JPG") is None and result.stand_ins == {}
    raw = result.tasks[0]
    jpeg = result.stand_in("IMG_0002.CRW")
    assert jpeg is not None and (jpeg.source_path, jpeg.format, jpeg.seq, jpeg.stem) == (
        "IMG_0002.JPG", "jpeg", raw.seq, raw.stem)
    assert jpeg.location == str(shoot.resolve() / "IMG_0002.JPG")
    assert jpeg.file_size == (shoot / "IMG_0002.JPG").stat().st_size
    assert [t.source_path for t in result.tasks] == ["IMG_0002.CRW", "IMG_0002.JPG", "IMG_0003.JPG"]
    assert result.skipped == [] and result.stand_ins == {"IMG_0002.CRW": "IMG_0002.JPG"}
    assert result.stand_in("IMG_0002.CRW") is None  # once
    both = scan_shoot(shoot, pairs="both")
    assert [t.source_path for t in both.tasks] == ["IMG_0002.CRW", "IMG_0002.JPG", "IMG_0003.JPG"]
    assert both.skipped == [] and both.pair_jpegs == {}
    with pytest.raises(ValueError, match="raw, both"):
        scan_shoot(shoot, pairs="jpeg")
