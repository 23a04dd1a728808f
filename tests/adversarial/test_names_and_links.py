"""Unique, bounded output names; symlinks in the shoot; the export check; the decoder's limits."""

from __future__ import annotations

import hashlib
import os
import random
import struct
import unicodedata
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageOps

from charts.naming import NamingTemplateError, check_template, render_name, safe_stems
from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.decode import check_measurable, decode_raster, open_raw
from pipeline.kernel.errors import InputError
from pipeline.kernel.files import write_bytes_atomic
from pipeline.kernel.ingest import export_stems, scan_shoot
from pipeline.outputs.instructions import MAX_INSTRUCTION_NAME_BYTES, instruction_name
from pipeline.outputs.verify import ExportMismatchError, verify_exports
from pipeline.outputs.xmp import embed_packets, xmp_target, xmp_targets

NFC, NFD = unicodedata.normalize("NFC", "café.jpg"), unicodedata.normalize("NFD", "café.jpg")
ISSUE_NAMES = ["日本.jpg", "写真.jpg", "Ärger.jpg", "Arger.jpg", NFC, NFD, "IMG_1.jpg", "img_1.JPG", "CON.jpg",
               "_CON.jpg", "new\nline.jpg", "長" * 83 + ".jpg", "長" * 82 + "x.jpg", "IMG_2.CR2", "IMG_2.jpg"]


# --- names ---------------------------------------------------------------------------


def test_issue_names_get_distinct_safe_stems() -> None:
    paths = sorted(ISSUE_NAMES)
    stems = export_stems(paths)
    assert len({s.casefold() for s in stems}) == len(stems)
    for s in stems:
        assert s.isascii() and s.isprintable() and 0 < len(s) <= 80 and s.split(".")[0].upper() != "CON"
    by_path = dict(zip(paths, stems))
    assert by_path["日本.jpg"] == "RiBen" and by_path["写真.jpg"] == "XieZhen"
    assert {by_path["Ärger.jpg"], by_path["Arger.jpg"]} == {"Arger", "Arger_2"}
    assert {by_path[NFC], by_path[NFD]} == {"cafe", "cafe_2"}
    assert by_path["IMG_2.CR2"] == "IMG_2" and by_path["IMG_2.jpg"] == "IMG_2_jpg"  # the RAW keeps the name


def test_stems_depend_only_on_the_set_of_paths() -> None:
    paths = sorted(ISSUE_NAMES + ["a/IMG_1.jpg", "b/IMG_1.jpg"])
    expected = dict(zip(paths, export_stems(paths)))
    for seed in range(5):
        shuffled = paths[:]
        random.Random(seed).shuffle(shuffled)
        assert dict(zip(shuffled, export_stems(shuffled))) == expected


def test_long_stems_are_cut_with_a_hash_and_stay_apart() -> None:
    a, b = "x" * 200 + "a", "x" * 200 + "b"
    stems = safe_stems([a, b])
    assert stems[0] != stems[1] and all(len(s) <= 80 for s in stems)
    assert safe_stems([a, b]) == stems  # deterministic


def test_template_worst_case_is_checked_at_validation() -> None:
    check_template("{client}/{shoot}/{rendition}/{seq:03d}_{stem}.{ext}")
    check_template("{client}_{shoot}_{date}_{seq:04d}_{stem}_{rendition}.{ext}")  # 246 bytes at worst
    with pytest.raises(NamingTemplateError, match="255"):
        check_template("x" * 200 + "_{stem}.{ext}")
    with pytest.raises(NamingTemplateError, match="non-printable"):
        check_template("{stem}\u202e.{ext}")
    worst = render_name("{client}_{shoot}_{date}_{seq:04d}_{stem}_{rendition}.{ext}", client="C" * 500,
                        shoot="日" * 300, date="2026-01-01", seq=10**9, stem="s" * 80, rendition="r" * 40, ext="jpg")
    assert len(worst.encode()) <= 255


def test_instruction_and_sidecar_names_are_unique_and_bounded() -> None:
    sources = ["a/b.jpg", "a__b.jpg", "a_/_b.jpg", "x/new\nline.jpg", "長" * 83 + ".jpg", "長" * 82 + "x.jpg",
               "ok/IMG_1.jpg", "d" * 250 + "/" + "長" * 83 + ".jpg"]
    names = [instruction_name(s) for s in sources]
    assert len(set(names)) == len(names)
    assert instruction_name("ok/IMG_1.jpg") == "ok__IMG_1.jpg.json"  # plain names as before
    for n in names:
        assert len(n.encode()) <= MAX_INSTRUCTION_NAME_BYTES and n.isprintable() and "/" not in n
    sidecars = [s.replace(".jpg", ".cr2") for s in sources]
    targets = xmp_targets([(s, "jpeg") for s in sources] + [(s, "cr2") for s in sidecars])
    assert len({t.packet for t in targets.values()}) == len(targets)
    for t in targets.values():
        for name in filter(None, (t.packet, t.copy)):
            assert all(len(part.encode()) <= 255 for part in name.split("/")), name
            assert PurePosixPath(name).name.isprintable(), name
    assert targets["ok/IMG_1.jpg"] == xmp_target("ok/IMG_1.jpg", "jpeg")  # plain names as before
    assert targets["ok/IMG_1.jpg"].packet == "xmp/ok/IMG_1.jpg.xmp" and targets["ok/IMG_1.cr2"].packet == "xmp/ok/IMG_1.xmp"
    assert targets["x/new\nline.cr2"].note and "rename" in targets["x/new\nline.cr2"].note


def test_atomic_write_of_a_255_byte_name(tmp_path: Path) -> None:
    name = "長" * 83 + ".xmp"  # 253 bytes; the temporary name must not pass 255
    write_bytes_atomic(tmp_path / name, b"x")
    assert (tmp_path / name).read_bytes() == b"x"


def test_embedded_copies_of_awkward_names(tmp_path: Path) -> None:
    """A 251-byte JPEG name gets its copy (the temporary name stays under 255); so does a JPEG name with a newline
    (written here, not by exiftool); a multi-picture JPEG's newline, which exiftool's argument file would split,
    is refused."""
    long_name, newline, broken = "長" * 82 + "x.jpg", "new\nline.jpg", "new\nline mpf.jpg"
    for name in (long_name, newline, broken):
        Image.new("RGB", (16, 16), (90, 120, 150)).save(tmp_path / name, quality=90)
    data, mpf = (tmp_path / broken).read_bytes(), b"MPF\x00" + b"\x00" * 8  # only exiftool copies it
    (tmp_path / broken).write_bytes(data[:2] + b"\xff\xe2" + struct.pack(">H", 2 + len(mpf)) + mpf + data[2:])
    packet = tmp_path / "p.xmp"
    packet.write_text('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
                      '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
                      'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="3"/></rdf:RDF></x:xmpmeta>'
                      '<?xpacket end="w"?>')
    out = tmp_path / "out"
    targets = xmp_targets([(long_name, "jpeg"), (newline, "jpeg"), (broken, "jpeg")])
    jobs = [(tmp_path / sp, packet, out / t.copy) for sp, t in targets.items()]
    failed = embed_packets(jobs)
    assert set(failed) == {out / targets[broken].copy} and "line break" in failed[out / targets[broken].copy]
    copy = out / targets[long_name].copy
    assert copy.name == long_name and b"Rating" in copy.read_bytes()
    assert b"Rating" in (out / targets[newline].copy).read_bytes()
    assert b"Rating" not in (tmp_path / long_name).read_bytes()  # the settings came from the packet


# --- the export check ---------------------------------------------------------------


def _exports_table(out: Path, rows: list[dict]) -> None:
    pq.write_table(pa.Table.from_pylist(rows), out / "exports.parquet")


def test_verify_exports_names_every_bad_file(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    rows = []
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        data = name.encode() * 10
        (tmp_path / "e" / name).write_bytes(data)
        rows.append({"source_path": name, "path": f"e/{name}", "bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest()})
    _exports_table(tmp_path, rows)
    assert verify_exports(tmp_path) == 3
    (tmp_path / "e" / "b.jpg").write_bytes(b"another image, same name")
    rows.append({**rows[0], "source_path": "A.jpg"})  # two sources, one file: the bug of issue 11
    (tmp_path / "e" / "c.jpg").unlink()
    _exports_table(tmp_path, rows)
    with pytest.raises(ExportMismatchError) as info:
        verify_exports(tmp_path)
    text = str(info.value)
    assert "e/a.jpg: 2 rows point at this one file" in text and "e/b.jpg" in text and "e/c.jpg: missing" in text



def test_verify_exports_names_paths_that_differ_only_in_case(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    rows = []
    for source, name in (("a.jpg", "Photo.jpg"), ("b.jpg", "photo.JPG")):
        data = source.encode() * 10
        (tmp_path / "e" / name).write_bytes(data)
        rows.append({"source_path": source, "path": f"e/{name}", "bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest()})
    _exports_table(tmp_path, rows)
    with pytest.raises(ExportMismatchError) as info:
        verify_exports(tmp_path)
    assert info.value.problems == ["e/Photo.jpg, e/photo.JPG: differ only in case (one file on a case-insensitive disk)"]


def test_verify_exports_reads_the_table_a_batch_at_a_time(tmp_path: Path) -> None:
    """The check's memory does not grow with the shoot: a 10,000-row table is never whole in Python.

    Holding its rows as dicts (as the check did), the peak of Python objects
    grew by 6.7 MB from 1,000 rows to 10,000 here; read in batches, by the
    two arrays of 8-byte digests (0.15 MB). (The driver's peak memory,
    benchmarks/run.py --driver-scaling, counts this check: it runs over every
    export of the shoot.)
    """
    import tracemalloc

    def peak_of(rows: int, name: str) -> int:
        folder = tmp_path / name
        (folder / "e").mkdir(parents=True)
        data = b"x"
        for i in range(rows):
            (folder / "e" / f"{i:05d}.jpg").write_bytes(data)
        table = pa.table({"source_path": [f"shoot/IMG_{i:05d}.jpg" for i in range(rows)],
                          "path": [f"e/{i:05d}.jpg" for i in range(rows)], "bytes": [1] * rows,
                          "sha256": [hashlib.sha256(data).hexdigest()] * rows})
        pq.write_table(table, folder / "exports.parquet")
        del table
        tracemalloc.start()
        try:
            assert verify_exports(folder) == rows
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak_of(1_000, "first")  # first use: whatever the check loads once
    small, large = peak_of(1_000, "small"), peak_of(10_000, "large")
    assert large - small < 1_000_000, f"{(large - small) / 1e6:.1f} MB more Python objects at 10,000 rows than at 1,000"

# --- symbolic links -------------------------------------------------------------------


@pytest.fixture
def linked_shoot(tmp_path: Path) -> Path:
    shoot, outside = tmp_path / "shoot", tmp_path / "outside"
    (shoot / "day1").mkdir(parents=True)
    (outside / "album").mkdir(parents=True)
    (shoot / "day1" / "a.jpg").write_bytes(b"a")
    (outside / "other_client.jpg").write_bytes(b"secret")
    (outside / "album" / "b.jpg").write_bytes(b"b")
    os.symlink("day1", shoot / "day1_again")
    os.symlink("..", shoot / "day1" / "up")
    os.symlink(outside / "other_client.jpg", shoot / "x.jpg")
    os.symlink(outside / "album", shoot / "album")
    os.symlink("loop", shoot / "loop")
    os.mkfifo(shoot / "fifo.jpg")
    (outside / "album" / "back").symlink_to(shoot / "day1")
    return shoot


def test_links_inside_are_walked_once_and_links_outside_are_counted(linked_shoot: Path) -> None:
    result = scan_shoot(linked_shoot)
    assert [t.source_path for t in result.tasks] == ["day1/a.jpg"]
    reasons = {s.source_path: s.reason for s in result.skipped}
    assert reasons["day1_again/"] == "symbolic link to a folder already walked (day1/)"
    assert reasons["day1/up/"] == "symbolic link to a folder already walked (the shoot folder itself)"
    assert reasons["x.jpg"].startswith("symbolic link to a file outside the shoot folder")
    assert reasons["album/"].startswith("symbolic link to a folder outside the shoot folder")
    assert reasons["loop"] == "symbolic link loop" and reasons["fifo.jpg"] == "not a regular file"


def test_external_links_are_followed_on_request(linked_shoot: Path) -> None:
    result = scan_shoot(linked_shoot, follow_external_symlinks=True)
    assert sorted(t.source_path for t in result.tasks) == ["album/b.jpg", "day1/a.jpg", "x.jpg"]
    reasons = {s.source_path: s.reason for s in result.skipped}
    assert reasons["album/back/"] == "symbolic link to a folder already walked (day1/)"


def test_a_name_that_is_not_utf8_is_skipped_and_counted(tmp_path: Path) -> None:
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.jpg"), "wb") as f:
        f.write(b"x")
    result = scan_shoot(tmp_path)
    assert not result.tasks
    assert result.skipped[0].source_path == "caf\\xe9.jpg" and "UTF-8" in result.skipped[0].reason


# --- decoding limits ------------------------------------------------------------------


@pytest.mark.parametrize(("w", "h"), [(1, 1), (7, 7), (8, 3), (3000, 6)])
def test_images_too_small_to_measure_are_input_errors(w: int, h: int) -> None:
    with pytest.raises(InputError, match="too small to measure"):
        check_measurable(np.zeros((h, w, 3), np.float32), w, h)


def test_thin_proxy_is_an_input_error() -> None:
    with pytest.raises(InputError, match="too narrow"):
        check_measurable(np.zeros((4, 1600, 3), np.float32), 4000, 10)
    check_measurable(np.zeros((8, 8, 3), np.float32), 8, 8)


def test_decode_budget_is_read_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000), (120, 90, 60)).save(path)
    with pytest.raises(InputError, match="budget"):
        decode_raster(path, 1600, 250_000_000, max_bytes=16 << 20)
    rgb, _ = decode_raster(path, 1600, 250_000_000, max_bytes=128 << 20)  # 24 MB image + 20 MB result + bands
    assert rgb.shape == (1067, 1600, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_banded_decode_matches_a_whole_image_decode(tmp_path: Path, orientation: int) -> None:
    rng = np.random.default_rng(orientation)
    pixels = rng.integers(0, 256, (611, 947, 3), dtype=np.uint8)
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    im.save(path, exif=exif.tobytes())
    # The reference: Pillow turns the image, then linear float, then OpenCV's area filter on the whole of it.
    turned = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"), dtype=np.float32) / 255
    linear = srgb_to_linear(turned)
    for long_edge in (None, 500, 97):
        got, _ = decode_raster(path, long_edge, 10**8)
        if long_edge is None:
            want = linear
        else:
            s = long_edge / max(linear.shape[:2])
            size = (max(1, round(linear.shape[1] * s)), max(1, round(linear.shape[0] * s)))
            want = cv2.resize(linear, size, interpolation=cv2.INTER_AREA)
        assert got.shape == want.shape
        assert float(np.abs(got - want).max()) < 2e-3


def test_a_cut_crw_is_reported_as_truncated(raw_dir: Path, tmp_path: Path) -> None:
    data = (raw_dir / "Canon_PowerShot_S40_CRW_0113.CRW").read_bytes()
    for fraction in (0.999, 0.99, 0.9, 0.5):
        cut = tmp_path / f"cut_{fraction}.CRW"
        cut.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(InputError, match="truncated"):
            open_raw(cut, "crw")
    whole = tmp_path / "whole.CRW"
    whole.write_bytes(data)
    open_raw(whole, "crw").close()
