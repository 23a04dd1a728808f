"""Camera identity: make, model, body serial, lens and artist, from DNG, CR2, CRW, NEF, KDC and JPEG.

Tier 1 checks the placeholder rules; tier 2 reads generated DNGs and the real
files of the shared data, among them exiftool's own sample stubs, whose
serials sit in maker notes (Canon, Nikon, Phase One) where only exiftool
reads them as the maker meant.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from pipeline.imaging.dng import write_dng_from_linear_rgb
from pipeline.imaging.identity import CameraIdentity, ExifTool, clean_text, read_identity


def need_exiftool() -> None:
    if shutil.which("exiftool"):
        return
    message = "exiftool missing (apt-get install libimage-exiftool-perl; it is in the Makefile's SYSTEM_PACKAGES)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


# --- tier 1 ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Ana Lima\x00", "Ana Lima"),
        ("unknown", None),
        ("0000000000", None),
        ("", None),
        (None, None),
        (b"B123\x00\x00", "B123"),
        ('lang="x-default" Ben Ode', "Ben Ode"),
        ({'lang="x-default"': "Ben Ode"}, "Ben Ode"),
        (["", "Cy Dua"], "Cy Dua"),
        (613040000565, "613040000565"),
    ],
)
def test_clean_text(raw, expected):
    assert clean_text(raw) == expected


def test_body_key_is_the_serial_else_make_and_model():
    assert CameraIdentity(camera_make="Canon", camera_model="EOS R5", body_serial="0123").body_key == "0123"
    assert CameraIdentity(camera_make="Canon", camera_model="EOS R5").body_key == "Canon EOS R5"
    assert CameraIdentity().body_key is None


# --- tier 2: generated DNGs ------------------------------------------------------------------
def test_generated_dng_identity(tmp_path):
    path = write_dng_from_linear_rgb(
        tmp_path / "a.dng", np.full((64, 96, 3), 0.2), make="Acme", model="Z 9", artist="Ana Lima",
        body_serial="Z9-000123", lens_model="Acme 50mm f/1.8",
    )  # fmt: skip
    ident = read_identity(path, exiftool=False)
    assert ident == CameraIdentity(
        camera_make="Acme",
        camera_model="Z 9",
        body_serial="Z9-000123",
        body_serial_tag="Exif.Photo.BodySerialNumber",
        lens="Acme 50mm f/1.8",
        artist="Ana Lima",
    )


def test_missing_or_folder_gives_an_empty_identity(tmp_path):
    assert read_identity(tmp_path) == CameraIdentity()
    assert read_identity(tmp_path / "nope.dng") == CameraIdentity()
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    assert read_identity(junk).body_serial is None


# --- tier 2: real files ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, make, model, serial, tag",
    [
        # Maker-note serials, read by exiftool as the maker prints them (Canon keeps the leading zero).
        ("CanonRaw.cr2", "Canon", "Canon EOS 350D DIGITAL", "0123456789", "exiftool:Canon:SerialNumber"),
        ("CanonRaw.crw", "Canon", "Canon EOS DIGITAL REBEL", "0560018150", "exiftool:CanonRaw:SerialNumber"),
        ("Nikon.nef", "NIKON CORPORATION", "NIKON D70", "12345678", "exiftool:Nikon:SerialNumber"),
        ("PhaseOne.iiq", "Leaf", "Credo 40", "LD001055", "exiftool:PhaseOne:SerialNumber"),
        # EXIF BodySerialNumber (exiv2 cannot parse this CR3 stub; exiftool can).
        ("CanonRaw.cr3", "Canon", "Canon EOS M50", "613040000565", "exiftool:ExifIFD:SerialNumber"),
        # DNG CameraSerialNumber in a file with a Canon maker note exiv2 complains about (muted, it reads on).
        ("DNG.dng", "Canon", "Canon EOS 350D DIGITAL", "012345678", "Exif.Image.CameraSerialNumber"),
    ],
)
def test_exiftool_stub_serials(raw_dir, name, make, model, serial, tag):
    need_exiftool()
    path = raw_dir / "unsupported" / "exiftool_stubs" / name
    ident = read_identity(path)
    assert (ident.camera_make, ident.camera_model, ident.body_serial, ident.body_serial_tag) == (make, model, serial, tag)


def test_owner_name_and_lens_from_maker_notes(raw_dir):
    need_exiftool()
    ident = read_identity(raw_dir / "unsupported" / "exiftool_stubs" / "CanonRaw.crw")
    assert ident.owner == "Phil Harvey"
    assert ident.lens == "18.0 - 55.0 mm"  # "Unknown 18-55mm" (exiftool's LensID) is no lens name


def test_powershot_crw_has_no_serial(raw_dir):
    """exiv2 reads CRW tag 0x180B as a serial; on PowerShots it is a counter that changes every frame."""
    need_exiftool()
    a = read_identity(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW")
    b = read_identity(raw_dir / "Canon_PowerShot_G2_CRW_0305.CRW")
    assert a.body_serial is None and b.body_serial is None
    assert a.body_key == b.body_key == "Canon Canon PowerShot G2"
    assert a.lens == "7.0 - 21.0 mm"


def test_kdc_and_gopro(raw_dir):
    ident = read_identity(raw_dir / "Kodak_DC120_DC120IMG_P003908.KDC")
    assert (ident.camera_make, ident.camera_model, ident.body_serial) == (
        "Eastman Kodak Company",
        "Kodak DC120 ZOOM Digital Camera",
        None,
    )
    gopro = read_identity(raw_dir / "unsupported" / "GoPro_Hero7Black_GOPR8508.GPR", exiftool=False)
    assert (gopro.body_serial, gopro.body_serial_tag) == ("C3281327008278", "Exif.Image.CameraSerialNumber")


def test_jpeg_serial_in_canon_maker_note(exposure_dir):
    need_exiftool()
    ident = read_identity(exposure_dir / "Justin Chiaratti-CC BY-NC-SA 2.0.jpg")
    assert (ident.camera_model, ident.body_serial, ident.lens) == ("Canon EOS 30D", "1220909223", "EF35-80mm f/4-5.6")
    # exiv2 alone finds no serial in the standard tags of this JPEG.
    assert read_identity(exposure_dir / "Justin Chiaratti-CC BY-NC-SA 2.0.jpg", exiftool=False).body_serial is None


def test_exiftool_process_is_reused_and_survives_a_bad_file(raw_dir, tmp_path):
    need_exiftool()
    tool = ExifTool()
    try:
        bad = tmp_path / "bad.nef"
        bad.write_bytes(b"\x00" * 100)
        assert tool.read(bad) == {} or "SerialNumber" not in str(tool.read(bad))
        first = tool._proc
        got = tool.read(raw_dir / "unsupported" / "exiftool_stubs" / "Nikon.nef")
        assert got["Nikon:SerialNumber"] in (12345678, "12345678")
        assert tool._proc is first  # one process for every file
    finally:
        tool.close()


def test_exiftool_restarts_when_its_process_died(raw_dir):
    need_exiftool()
    tool = ExifTool()
    try:
        nef = raw_dir / "unsupported" / "exiftool_stubs" / "Nikon.nef"
        assert tool.read(nef)
        tool._proc.kill()  # as a forked child's exit, or the OOM killer, would
        tool._proc.wait()
        assert str(tool.read(nef)["Nikon:SerialNumber"]) == "12345678"
    finally:
        tool.close()


@pytest.mark.parametrize(("make", "model", "name"), [
    ("Canon", "Canon EOS R5", "Canon EOS R5"), ("NIKON CORPORATION", "NIKON D750", "NIKON D750"),
    ("PENTAX Corporation", "PENTAX K10D", "PENTAX K10D"), ("SONY", "DSLR-A550", "SONY DSLR-A550"),
    ("Apple", "iPhone 7", "Apple iPhone 7"), (None, "DC120", "DC120"), ("Kodak", None, "Kodak"), (None, None, ""),
])
def test_reports_name_a_camera_without_its_make_twice(make: str | None, model: str | None, name: str) -> None:
    from pipeline.equipment.findings import Body, camera_name

    # A new user's report listed "Canon Canon EOS R5" and "NIKON CORPORATION NIKON D750": makers repeat their
    # name in Model. The body's key (grouping, history) is unchanged; only its name in reports.
    assert camera_name(make, model) == name
    assert Body("0123", make, model).name == f"{name} #0123".strip()
