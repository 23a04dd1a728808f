"""The camera's automatic white balance is trusted in daylight (chart key ``white_balance.camera_daylight_ev``).

A frame whose camera balanced it automatically (EXIF WhiteBalance 0) at a scene
light level of 12 EV or more (ISO 100, from its shutter, aperture and ISO: the
sun and sky, which no lamp matches) is left as shot: the estimate reads golden
sand or a field of yellow flowers as a warm cast with cues that agree, and
turned a new user's photo of sunlit dunes grey-blue (immich-app/test-assets'
``mongolels``, 1/250 s f/11 ISO 200, 13.9 EV, read 83 mired warm +-7). A preset
or a custom white (EXIF 1) may be the wrong one and is judged as before, and so
is a frame shot under dimmer light, or one whose file does not say.

Tier 1: records written inline. Tier 2: a real photo (scikit-image's coffee,
which the estimate reads warm as published) written as a JPEG with the EXIF a
camera writes, decoded and measured as the pipeline does.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from charts.loader import load_chart
from pipeline.imaging.decode import decode_proxy, makernote_iso, raw_white_balance_mode, white_balance_mode
from pipeline.imaging.measure import measure_all
from pipeline.imaging.white_balance import light_rgb
from pipeline.kernel.records import Face, ImageRecord, Operation, SourceKind
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.white_balance import camera_daylight_ev
from tests.test_white_balance_rule import _chart, _flags, _pale_face, _wb
from tests.test_white_balance_rule import _record as wb_record

BASE = load_chart("base").chart
# 1/250 s at f/11, ISO 200: 13.9 EV at ISO 100, a sunlit scene (the dunes' settings).
SUNLIT = {"shutter_s": 1 / 250, "aperture": 11.0, "iso": 200.0}
# 1/30 s at f/2.8, ISO 800: 5.9 EV, a lamp-lit room.
LAMPLIT = {"shutter_s": 1 / 30, "aperture": 2.8, "iso": 800.0}


def _record(m: float, mode: str | None, settings: dict[str, float], uncertainty: float = 7.0,
            faces: list[Face] | None = None) -> ImageRecord:
    return wb_record(m, uncertainty, faces, white_balance_mode=mode, **settings)


def _colour_flags(ops: list[Operation]) -> list[Operation]:
    return _flags(ops, "white_balance") + _flags(ops, "skin")


def test_the_light_level_is_read_from_the_settings() -> None:
    assert camera_daylight_ev(_record(80.0, "auto", SUNLIT), 12.0) == pytest.approx(math.log2(121 * 250 / 2), abs=1e-9)
    assert camera_daylight_ev(_record(80.0, "auto", LAMPLIT), 12.0) is None
    assert camera_daylight_ev(_record(80.0, "manual", SUNLIT), 12.0) is None
    assert camera_daylight_ev(_record(80.0, None, SUNLIT), 12.0) is None
    assert camera_daylight_ev(_record(80.0, "auto", {"shutter_s": 1 / 250, "aperture": 11.0}), 12.0) is None
    assert camera_daylight_ev(_record(80.0, "auto", SUNLIT), None) is None
    assert camera_daylight_ev(_record(80.0, "auto", SUNLIT), 14.0) is None


@pytest.mark.parametrize("m", [83.0, 150.0, -60.0])
def test_a_daylight_frame_balanced_by_the_camera_is_left_as_shot_without_a_flag(m: float) -> None:
    ops = plan_image(_record(m, "auto", SUNLIT), BASE)
    assert _wb(ops) is None, [o.reason for o in ops]
    assert not _colour_flags(ops), [o.reason for o in ops]


@pytest.mark.parametrize("mode, settings", [("manual", SUNLIT), ("auto", LAMPLIT), (None, SUNLIT)])
def test_a_preset_a_dim_light_or_a_silent_file_is_judged_as_before(mode: str | None,
                                                                   settings: dict[str, float]) -> None:
    op = _wb(plan_image(_record(83.0, mode, settings), BASE))
    assert op is not None and op.params["mired_shift"] < -50, op


def test_the_chart_can_turn_the_trust_off() -> None:
    op = _wb(plan_image(_record(83.0, "auto", SUNLIT), _chart(camera_daylight_ev=None)))
    assert op is not None and op.params["mired_shift"] < -50, op


def test_faces_that_the_correction_makes_skin_still_have_it_applied() -> None:
    # Under a light 70 mired cool a face is lilac-grey; the correction turns it back into skin. In daylight with
    # the camera's automatic white that is still evidence of a cast (a face in the blue of open shade).
    skin = np.array([0.45, 0.30, 0.22])
    seen = (skin * light_rgb(-70.0)).tolist()
    ops = plan_image(_record(-70.0, "auto", SUNLIT, faces=[_pale_face(seen)]), BASE)
    op = _wb(ops)
    assert op is not None and op.params["mired_shift"] == pytest.approx(70.0, abs=1.0), [o.reason for o in ops]
    assert "daylight" in op.reason and "faces confirm" in op.reason
    # A face that is skin as shot proves nothing: the camera's white stands.
    ops = plan_image(_record(-70.0, "auto", SUNLIT, faces=[_pale_face(skin.tolist())]), BASE)
    assert _wb(ops) is None and not _colour_flags(ops), [o.reason for o in ops]


def _jpeg_with_exif(rgb8: np.ndarray, white_balance: int | None, settings: dict[str, float] = SUNLIT) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS 500D"
    sub = exif.get_ifd(0x8769)
    sub[0x829A] = settings["shutter_s"]
    sub[0x829D] = settings["aperture"]
    sub[0x8827] = int(settings["iso"])
    if white_balance is not None:
        sub[0xA403] = white_balance
    buf = io.BytesIO()
    Image.fromarray(rgb8).save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def coffee() -> np.ndarray:
    from skimage import data

    return data.coffee()


def _planned(path: Path) -> list[Operation]:
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    m = measure_all(decoded.rgb, True)
    meta = vars(decoded.meta)
    h, w = decoded.rgb.shape[:2]
    record = ImageRecord.from_row(dict(
        source_path=path.name, content_hash="0" * 64, file_size=1, format="jpeg", source_kind=SourceKind.RASTER,
        exposure_ev=0.0, sharpness=100.0, lines_found=0, phash="0" * 16, clipped_highlights_pct=0.0,
        clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0, clipped_shadows_pct_b=0.0,
        **{k: v for k, v in meta.items() if k not in ("width", "height", "orientation")}, width=w, height=h))
    record.colour = m.colour
    return plan_image(record, BASE)


def test_a_real_photo_the_estimate_reads_warm_keeps_its_colour_when_the_camera_judged_daylight(
        coffee: np.ndarray, tmp_path: Path) -> None:
    auto, manual = tmp_path / "auto.jpg", tmp_path / "manual.jpg"
    auto.write_bytes(_jpeg_with_exif(coffee, 0))
    manual.write_bytes(_jpeg_with_exif(coffee, 1))
    assert decode_proxy(auto, SourceKind.RASTER, 1600, 200_000_000).meta.white_balance_mode == "auto"
    assert decode_proxy(manual, SourceKind.RASTER, 1600, 200_000_000).meta.white_balance_mode == "manual"
    # As published (the accuracy benchmark's truth: no cast), the estimate reads the cup and the wood warm.
    judged = _wb(_planned(manual))
    assert judged is not None and judged.params["mired_shift"] < -50, judged
    ops = _planned(auto)
    assert _wb(ops) is None and not _colour_flags(ops), [o.reason for o in ops]


def test_a_file_that_does_not_say_has_no_mode(coffee: np.ndarray, tmp_path: Path, raw_dir: Path) -> None:
    silent = tmp_path / "silent.jpg"
    silent.write_bytes(_jpeg_with_exif(coffee, None))
    assert decode_proxy(silent, SourceKind.RASTER, 1600, 200_000_000).meta.white_balance_mode is None
    # Canon's CRW keeps the mode in its maker notes, which the decode does not read: unknown, judged as before.
    assert raw_white_balance_mode(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW") is None
    assert [white_balance_mode(v) for v in (0, "1", b"0", 2, None, "x")] == ["auto", "manual", "auto", None, None,
                                                                                None]


def test_a_shared_camera_photo_reads_its_mode(exposure_dir: Path) -> None:
    # A Canon EOS 600D JPEG with EXIF WhiteBalance 0 (exiftool: Auto).
    meta = decode_proxy(exposure_dir / "Floris van Lint-CC BY-NC 2.0.jpg", SourceKind.RASTER, 1600, 200_000_000).meta
    assert meta.white_balance_mode == "auto"


# --- the ISO a camera kept in its maker notes alone ---------------------------------------------------------------
# Canon's PowerShots and IXUS of the 2000s and Nikon's D70 and D100 write no EXIF ISOSpeedRatings: without the
# maker notes' ISO the light level is unknown and the daylight rule cannot apply (drewnoakes/metadata-extractor-
# images: a PowerShot A80's bubbles against a blue sky at 1/2000 s f/8 ISO 200, 16 EV, were warmed 150 mired).

# exiv2's names and raw values, as read from those cameras' JPEGs (exiftool's reading after the arrow).
CANON_A80 = {"Exif.CanonCs.0x0000": "92", "Exif.CanonCs.ISOSpeed": "18",  # CameraISO 200
             "Exif.CanonSi.0x0000": "68", "Exif.CanonSi.ISOSpeed": "192", "Exif.CanonSi.AutoISO": "0"}
CANON_IXUS_300 = {"Exif.CanonCs.0x0000": "76", "Exif.CanonCs.ISOSpeed": "0",  # auto: BaseISO 69 x AutoISO 214 -> 148
                  "Exif.CanonSi.0x0000": "52", "Exif.CanonSi.ISOSpeed": "143", "Exif.CanonSi.AutoISO": "35"}
CANON_S40_DAMAGED = {"Exif.CanonCs.0x0000": "5", "Exif.CanonCs.ISOSpeed": "12289",  # exiftool: invalid data
                     "Exif.CanonSi.0x0000": "186", "Exif.CanonSi.ISOSpeed": "213", "Exif.CanonSi.AutoISO": "95"}


@pytest.mark.parametrize("tags, iso", [
    (CANON_A80, 200.0),
    (CANON_IXUS_300, 148.0),
    ({**CANON_A80, "Exif.CanonCs.ISOSpeed": str(0x4000 | 400)}, 400.0),  # newer bodies: the speed itself
    ({**CANON_A80, "Exif.CanonCs.ISOSpeed": "15", "Exif.CanonSi.ISOSpeed": "0"}, None),  # auto, no BaseISO
    (CANON_S40_DAMAGED, None),
    ({"Exif.Nikon3.ISOSpeed": "0 400"}, 400.0),  # D70
    ({"Exif.Nikon3.ISOSpeed": "0 0"}, None),
    ({"Exif.Casio2.ISO": "50"}, 50.0),  # EX-Z3
    ({"Exif.Photo.WhiteBalance": "0"}, None),
])
def test_the_maker_notes_iso_is_read_as_exiftool_reads_it(tags: dict[str, str], iso: float | None) -> None:
    assert makernote_iso(tags) == iso


def _canon_compact_jpeg(path: Path, rgb8: np.ndarray) -> None:
    """A JPEG as a PowerShot A80 writes it: exposure settings and WhiteBalance in the EXIF, the ISO in Canon's
    maker notes only (written by exiv2, which lays them out as Canon does: exiftool reads ISO 200 back)."""
    import pyexiv2

    Image.fromarray(rgb8).save(path, "JPEG", quality=95)
    with pyexiv2.Image(str(path)) as im:
        im.modify_exif({"Exif.Image.Make": "Canon", "Exif.Image.Model": "Canon PowerShot A80",
                        "Exif.Photo.ExposureTime": "1/2000", "Exif.Photo.FNumber": "8/1",
                        "Exif.Photo.WhiteBalance": "0"})
    with pyexiv2.Image(str(path)) as im:  # the maker note's tags once the make says whose they are
        im.modify_exif({"Exif.CanonCs.ISOSpeed": "18", "Exif.CanonSi.ISOSpeed": "192", "Exif.CanonSi.AutoISO": "0"})


def test_a_canon_compact_photo_with_its_iso_in_the_maker_notes_is_judged_in_daylight(coffee: np.ndarray,
                                                                                     tmp_path: Path) -> None:
    path = tmp_path / "IMG_0001.JPG"
    _canon_compact_jpeg(path, coffee)
    meta = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000).meta
    assert Image.open(path).getexif().get_ifd(0x8769).get(0x8827) is None  # no EXIF ISO: the maker notes'
    assert (meta.iso, meta.white_balance_mode, meta.shutter_s, meta.aperture) == (200.0, "auto", 1 / 2000, 8.0)
    # 16 EV at ISO 100: the camera's white stands, where the estimate reads the cup and the wood warm.
    ops = _planned(path)
    assert _wb(ops) is None and not _colour_flags(ops), [o.reason for o in ops]


def test_a_text_tag_in_latin_1_costs_no_tag(tmp_path: Path) -> None:
    # An old camera's or editor's text in Latin-1 (a PowerShot A85's and an IXUS 750's JPEGs) made pyexiv2 refuse
    # the whole EXIF, and the maker notes' ISO, the white-balance mode and the serial went with it.
    import pyexiv2

    from pipeline.imaging.identity import read_exiv2_exif

    exif = Image.Exif()
    exif[0x010F], exif[0x010E] = "Canon", b"caf\xe9 cr\xe8me"  # ImageDescription, not UTF-8
    exif.get_ifd(0x8769)[0xA403] = 0
    path = tmp_path / "latin.jpg"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path, "JPEG", exif=exif.tobytes())
    with pytest.raises(UnicodeDecodeError), pyexiv2.Image(str(path)) as im:
        im.read_exif()
    tags = read_exiv2_exif(path)
    assert tags["Exif.Photo.WhiteBalance"] == "0" and tags["Exif.Image.ImageDescription"] == "café crème"


def test_an_iso_beyond_the_exif_short_is_read_from_iso_speed(tmp_path: Path) -> None:
    from pipeline.imaging.decode import exif_iso

    exif = Image.Exif()
    exif[0x010F] = "Sony"
    exif.get_ifd(0x8769).update({0x8827: 65535, 0x8833: 204800})
    path = tmp_path / "night.jpg"
    ramp = np.broadcast_to(np.linspace(10, 90, 64, dtype=np.uint8)[None, :, None], (64, 64, 3))
    Image.fromarray(np.ascontiguousarray(ramp)).save(path, "JPEG", exif=exif.tobytes())
    assert decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000).meta.iso == 204800.0
    assert exif_iso(65535.0, 204800.0) == 204800.0  # a body at ISO 204800 (EXIF 2.3)
    assert exif_iso(800.0, 204800.0) == 800.0
    assert exif_iso(65535.0, None) == 65535.0
    assert exif_iso(None, None) is None
