"""Contact sheets: grid geometry, thumbnails in their cells, unreadable files, atomic write."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.outputs.contact_sheet import contact_sheet


def _solid(path: Path, rgb: tuple[int, int, int], size: tuple[int, int], bits: int = 8) -> Path:
    w, h = size
    if bits == 16:
        a = np.empty((h, w, 3), np.uint16)
        a[:] = [c * 257 for c in rgb[::-1]]
    else:
        a = np.empty((h, w, 3), np.uint8)
        a[:] = rgb[::-1]
    cv2.imwrite(str(path), a)
    return path


def test_grid_layout_and_cells(tmp_path: Path) -> None:
    red = _solid(tmp_path / "red.jpg", (220, 20, 20), (400, 200))
    blue = _solid(tmp_path / "blue.png", (20, 20, 220), (100, 300))
    green16 = _solid(tmp_path / "green16.tif", (20, 200, 20), (300, 300), bits=16)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    out = contact_sheet(
        [red, blue, green16, broken],
        ["red.jpg", "blue.png", "a very long caption that will not fit in one cell at all", "broken"],
        tmp_path / "sheets" / "sheet.jpg",
        columns=3,
        cell=100,
    )
    assert out == tmp_path / "sheets" / "sheet.jpg"
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    line_h = (sheet.shape[0] // 2) - 116
    assert sheet.shape[1] == 3 * 116 and line_h > 5  # 3 columns of cell + 2 x 8 px padding; 2 rows
    # Cell centres (x, y) show each thumbnail's colour; the unreadable file a grey placeholder.
    pitch_h = sheet.shape[0] // 2
    centres = [(58, 58), (174, 58), (290, 58), (58, pitch_h + 58)]
    want = [(220, 20, 20), (20, 20, 220), (20, 200, 20), (90, 90, 90)]
    for (x, y), colour in zip(centres, want):
        assert np.abs(sheet[y + 20, x] - colour).max() < 30, (x, y, sheet[y + 20, x])
    # The 400x200 red thumbnail is letterboxed: 100x50, background above and below.
    assert np.abs(sheet[8 + 10, 58] - (32, 32, 32)).max() < 20
    assert not list((tmp_path / "sheets").glob(".*"))


def test_rows_of_wide_renditions_are_as_tall_as_their_thumbnails(tmp_path: Path) -> None:
    """A sheet of 16:9 banners: each row as tall as its thumbnails (not a square cell a third empty), the captions
    right under them; a row with a taller picture is as tall as that one."""
    wide = [_solid(tmp_path / f"b{i}.jpg", (200, 120, 40), (320, 180)) for i in range(4)]
    tall = _solid(tmp_path / "tall.jpg", (40, 120, 200), (180, 320))
    out = contact_sheet(wide + [tall], [p.name for p in wide] + ["tall.jpg"], tmp_path / "s.jpg", columns=3, cell=100)
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    # Rows of 100 x 56 banners and of the 56 x 100 picture, each with 2 x 8 px padding and a caption line: square
    # cells would make both rows 116 px and the captions.
    line2 = sheet.shape[0] - (56 + 16) - (100 + 16)
    assert line2 % 2 == 0 and 5 < line2 // 2 < 30, sheet.shape
    line_h = line2 // 2
    assert np.abs(sheet[8 + 28, 58] - (200, 120, 40)).max() < 30  # the first row's banners fill its height
    assert np.abs(sheet[8 + 56 + 2 + line_h // 2, 58] - (200, 120, 40)).max() > 60  # the caption right under them
    second = 56 + 16 + line_h
    assert np.abs(sheet[second + 8 + 50, 174] - (40, 120, 200)).max() < 30, sheet[second + 58, 174]


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        contact_sheet([], [], tmp_path / "s.jpg")
    with pytest.raises(ValueError, match="captions"):
        contact_sheet([tmp_path / "a.jpg"], [], tmp_path / "s.jpg")


def test_large_renditions_get_numbered_sheets(tmp_path: Path) -> None:
    from pipeline.kernel.records import ExportedFile, ImageRecord, SourceKind
    from pipeline.kernel.run import CONTACT_DIR, write_contact_sheets

    (tmp_path / "exports").mkdir()
    img = _solid(tmp_path / "exports" / "a.jpg", (200, 100, 50), (64, 48))
    records = []
    for i in range(5):
        r = ImageRecord(source_path=f"IMG_{i}.CR2", content_hash=str(i), file_size=1, format="cr2",
                        source_kind=SourceKind.RAW)
        r.exports = [ExportedFile(rendition="web", path="exports/a.jpg", width=64, height=48, bytes=img.stat().st_size,
                                  format="jpeg", sha256="0" * 64)]
        records.append(r)
    folder = tmp_path / CONTACT_DIR
    folder.mkdir()
    (folder / "web.jpg").write_bytes(b"from an earlier, smaller run")
    written = write_contact_sheets(records, tmp_path, page=2)
    assert [p.name for p in written] == ["web-001.jpg", "web-002.jpg", "web-003.jpg"]
    assert sorted(p.name for p in folder.iterdir()) == ["web-001.jpg", "web-002.jpg", "web-003.jpg"]
    with Image.open(folder / "web-003.jpg") as last, Image.open(folder / "web-001.jpg") as first:
        assert last.width < first.width  # one cell on the last sheet, two on the others
    # Back to one sheet: the numbered ones go.
    assert [p.name for p in write_contact_sheets(records[:2], tmp_path, page=2)] == ["web.jpg"]
    assert sorted(p.name for p in folder.iterdir()) == ["web.jpg"]


def test_cells_made_from_the_rendered_pixels(tmp_path: Path) -> None:
    # The export makes each delivered file's cell from the pixels it encoded (never decoding the file);
    # a picture seen strip by strip gets the same cell to within the strips' rounding.
    from pipeline.outputs.contact_sheet import CELL, ThumbnailOfStrips, contact_thumbnail

    rng = np.random.default_rng(4)
    ramp = np.linspace(0, 65535, 1200, dtype=np.float64)
    pixels = np.clip(ramp[None, :, None] + rng.normal(0, 500, (900, 1200, 3)), 0, 65535).astype(np.uint16)
    whole = np.asarray(Image.open(io.BytesIO(contact_thumbnail(pixels, "adobe_rgb"))).convert("RGB"))
    assert whole.shape == (CELL * 900 // 1200, CELL, 3)
    acc = ThumbnailOfStrips(1200, 900, "adobe_rgb")
    for y in range(0, 900, 128):
        acc.add(pixels[y : y + 128])
    strips = np.asarray(Image.open(io.BytesIO(acc.jpeg())).convert("RGB"))
    assert strips.shape == whole.shape
    assert np.abs(strips.astype(int) - whole).mean() < 1.5
    # Converted to sRGB: an Adobe RGB ramp is not shown as if it were sRGB.
    as_if_srgb = np.asarray(Image.open(io.BytesIO(contact_thumbnail(pixels, "srgb"))).convert("RGB"))
    assert np.abs(as_if_srgb.astype(int) - whole).mean() > 1.0
