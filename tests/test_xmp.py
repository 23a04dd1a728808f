"""Camera Raw settings for Lightroom: every field read back with exiftool and held against Adobe's own.

Expected values come from Adobe's files and conventions, never from the
writer: the reference XMP in ``tests/data/adobe_xmp`` (see its README for
where each comes from), crop corners worked out by hand from the rotated-crop
convention, Adobe's forum example, and white points injected into real DNG
files whose truth the DNG specification fixes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rawpy
from PIL import Image

from charts.loader import load_chart
from pipeline.imaging.camera_raw import (
    D65_XY,
    ColourSpec,
    DngColourTags,
    camera_raw_baseline,
    temperature_tint_to_xy,
    xy_to_temperature_tint,
)
from pipeline.imaging.decode import decode_raw_linear
from pipeline.imaging.dng import dng_bytes, mosaic, write_dng_from_linear_rgb
from pipeline.imaging.measure import white_balance_cast
from pipeline.kernel.records import AppliedBy, ImageRecord, SourceKind
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import instruction_doc
from pipeline.outputs.xmp import (
    RENDERED_WHITE,
    CameraRawFrame,
    ImageDecision,
    MeasuredCast,
    XmpForm,
    box_to_crs,
    crs_crop,
    crs_settings,
    crs_to_box,
    incremental_white_balance,
    planned_white,
    xmp_packet,
    xmp_targets,
)
from pipeline.planning.plan import plan_image

ADOBE = Path(__file__).parent / "data" / "adobe_xmp"
needs_exiftool = pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed (CI installs it)")


def exiftool(path: Path, *tags: str) -> dict:
    out = subprocess.run(["exiftool", "-j", "-struct", *(tags or ("-XMP:all",)), str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def _kind(v: object) -> str:
    """What exiftool made of a value: JSON has no "+1.10", so signed numbers come back as text."""
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    try:
        float(str(v))
        return "number"
    except ValueError:
        return "text"


def adobe(name: str) -> Path:
    return next(ADOBE.glob(name + "*"))


def _lab_to_ab(x: float, y: float) -> tuple[float, float]:
    """Lab a*, b* (D65 white) of chromaticity (x, y) at L* = 50: the inverse of how a cast is reported."""
    Y = 0.18418651851244416
    xyz = np.array([x / y * Y, Y, (1 - x - y) / y * Y]) / np.array([0.95047, 1.0, 1.08883])
    f = np.cbrt(xyz)
    return float(500 * (f[0] - f[1])), float(200 * (f[1] - f[2]))


def _record(**kw) -> ImageRecord:
    base = dict(source_path="a.CR2", content_hash="0" * 64, file_size=1, format="cr2", source_kind=SourceKind.RAW,
                width=3000, height=2000, orientation=1, exposure_meter_ev=0.0, sharpness=100.0, lines_found=0,
                clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0,
                clipped_shadows_pct_b=0.0, phash="0" * 16)
    base.update(kw)
    rec = ImageRecord.from_row(base)
    return rec


def _doc(rec: ImageRecord, chart: str = "base", **kw) -> dict:
    c = load_chart(chart).chart
    rec.operations = plan_image(rec, c)
    rec.plan.verdict = "accept"
    return instruction_doc(rec, chart, "h", [(n, r.crop) for n, r in c.renditions.items()], **kw)


def _accepted(doc: dict) -> dict:
    """``doc`` with the corrections its plan proposed to a person (a white balance beyond the chart's
    ``propose_above_mired``) accepted by a reviewer: the renderer, and so the XMP, applies them then."""
    for o in doc["operations"]:
        if o["params"].get("render_on_accept"):
            o["review"] = {"status": "accepted", "by": "reviewer"}
    return doc


def test_instructions_give_the_cast_in_mired_beside_its_kelvin() -> None:
    """A blue cast past infinite kelvin reads its cap in kelvin; the instructions give its mired too."""
    doc = _doc(_record(wb_cast_a=2.5, wb_cast_b=-29.4, wb_temperature_shift_k=993496.0, wb_cast_mired=-183.3,
                       wb_tint=0.02, wb_uncertainty_mired=12.0))
    m = doc["measurements"]
    assert (m["wb_cast_mired"], m["wb_tint"], m["wb_uncertainty_mired"]) == (-183.3, 0.02, 12.0)
    assert m["wb_temperature_shift_k"] == 993496.0
    # The XMP leaves the cast the plan leaves (its mired reading, not the kelvin column's cap of -153 mired): the
    # cap's 150 mired warmer leaves 33 mired of blue, where the kelvin column would leave 3 (a white 30 mired apart).
    cast = MeasuredCast.of(m)
    assert cast is not None and cast.mired == -183.3
    shift = next(op for op in doc["operations"] if op["kind"] == "white_balance")["params"]["mired_shift"]
    capped = MeasuredCast(cast.a, cast.b, cast.temperature_shift_k)
    left = planned_white(RENDERED_WHITE, shift, cast)
    assert 1e6 / left[0] - 1e6 / planned_white(RENDERED_WHITE, shift, capped)[0] == pytest.approx(183.3 - 152.7, abs=1)


# --- the rotated crop: Camera Raw's convention -------------------------------------------

def test_rotated_crop_corners_worked_out_by_hand() -> None:
    """A 600 px square centred on a 1000 px frame, CropAngle +30 (turned clockwise on screen).

    Top-left corner: c + R(30)(-300, -300) = (500 - 300 cos30 + 300 sin30, 500 - 300 sin30 - 300 cos30)
    = (390.192, 90.192); bottom-right mirrors it: (609.808, 909.808).
    """
    crop = crs_crop(CameraRawFrame(1000, 1000), (200, 200, 600, 600), angle_deg=-30)  # postprod turns ccw
    assert crop.angle == 30
    assert (crop.left, crop.top, crop.right, crop.bottom) == pytest.approx((0.390192, 0.090192, 0.609808, 0.909808),
                                                                           abs=1e-6)


def test_adobe_forum_example() -> None:
    """Rob Cole's numbers on Adobe's forum: L.4 T.3 R.9 B.8 at angle 0 -> .374965 .36916 .925035 .73084 at -10."""
    W, H = 4288, 2848
    box = (0.4 * W, 0.3 * H, 0.5 * W, 0.5 * H)
    crop = crs_crop(CameraRawFrame(W, H), box, angle_deg=10)
    assert crop.angle == -10
    assert (crop.left, crop.top, crop.right, crop.bottom) == pytest.approx((0.374965, 0.36916, 0.925035, 0.73084),
                                                                           abs=1e-6)


@pytest.mark.parametrize("name", ["05a", "05b", "05c"])
def test_lightroom_exports_decode_to_their_aspect_lock(name: str) -> None:
    """Lightroom 6.1 crops of Canon EOS 600D frames (5184x3456 stored), aspect locked at 3:2.

    Read as two corners of the turned box, each is exactly 3:2 with all four
    corners inside the frame; encoded again, the four numbers come back.
    """
    tags = exiftool(adobe(name), "-XMP-crs:all", "-n")
    L, T, R, B, angle = (float(tags[k]) for k in ("CropLeft", "CropTop", "CropRight", "CropBottom", "CropAngle"))
    W, H = 5184, 3456
    cx, cy, w, h = crs_to_box(L, T, R, B, angle, W, H)
    assert max(w, h) / min(w, h) == pytest.approx(1.5, abs=1e-4)
    a = math.radians(angle)
    for dx, dy in ((w / 2, -h / 2), (-w / 2, h / 2)):  # the two corners the XMP does not store
        px, py = cx + dx * math.cos(a) - dy * math.sin(a), cy + dx * math.sin(a) + dy * math.cos(a)
        assert -0.5 <= px <= W + 0.5 and -0.5 <= py <= H + 0.5
    # postprod's writer, given that box (in its own terms: unturned box, ccw angle), gives Lightroom's numbers.
    crop = crs_crop(CameraRawFrame(W, H), (cx - w / 2, cy - h / 2, w, h), angle_deg=-angle)
    err_px = max(abs(crop.left - L) * W, abs(crop.right - R) * W, abs(crop.top - T) * H, abs(crop.bottom - B) * H)
    assert err_px < 0.01


def test_portrait_frame_is_cropped_in_the_stored_orientation() -> None:
    """Orientation 6 (stored 3000x2000, shown 2000x3000), a 2-degree turn.

    The shown box (500, 1000, 800x1000) has centre (900, 1500); in the stored
    frame that is (1500, 2000 - 900) = (1500, 1100) with width and height
    swapped (1000x800); a turn is the same turn in both frames (orientation 6
    is a rotation, not a mirror): CropAngle = -2.
    """
    frame = CameraRawFrame(2000, 3000, orientation=6)
    crop = crs_crop(frame, (500, 1000, 800, 1000), angle_deg=2)
    a = math.radians(-2)
    tl = (1500 - 500 * math.cos(a) + 400 * math.sin(a), 1100 - 500 * math.sin(a) - 400 * math.cos(a))
    br = (1500 + 500 * math.cos(a) - 400 * math.sin(a), 1100 + 500 * math.sin(a) + 400 * math.cos(a))
    assert crop.angle == -2
    assert (crop.left, crop.top, crop.right, crop.bottom) == pytest.approx(
        (tl[0] / 3000, tl[1] / 2000, br[0] / 3000, br[1] / 2000), abs=1e-9)
    # A mirrored orientation (5: transpose) turns the other way.
    assert crs_crop(CameraRawFrame(2000, 3000, orientation=5), (500, 1000, 800, 1000), angle_deg=2).angle == 2


def test_crop_is_relative_to_camera_raws_default_crop() -> None:
    """Canon G2: LibRaw shows 2312x1720, Camera Raw the camera's 2272x1704 at (20, 8)."""
    frame = CameraRawFrame(2312, 1720, 1, (20.0, 8.0, 2272.0, 1704.0))
    crop = crs_crop(frame, (20 + 272, 8, 1000, 1250), angle_deg=0)
    assert (crop.left, crop.top, crop.right, crop.bottom) == pytest.approx(
        (272 / 2272, 0, 1272 / 2272, 1250 / 1704), abs=1e-9)
    # A box that reaches past Camera Raw's frame shrinks about its centre, keeping its aspect.
    full_height = crs_crop(frame, (468, 0, 1376, 1720), angle_deg=0)
    assert full_height.shrunk and full_height.top == 0 and full_height.bottom == 1
    w = (full_height.right - full_height.left) * 2272
    assert w / 1704 == pytest.approx(1376 / 1720, abs=1e-6)


def test_a_tilt_the_lines_do_not_make_sure_of_is_not_written() -> None:
    """1.5 degrees is within the automatic limit, but read from a little straight edge that most of the
    near-level lines disagree with (perspective): a retoucher's call, so no CropAngle (issue 17 item 5)."""
    doc = _doc(_record(horizon_tilt_deg=1.5, lines_found=30, horizon_support=0.3, horizon_agreement=0.3))
    (st,) = [o for o in doc["operations"] if o["kind"] == "straighten"]
    assert st["applied_by"] == AppliedBy.RETOUCHER and st["params"]["angle_deg"] == 1.5
    attrs = crs_settings(doc).attrs
    assert attrs["crs:HasCrop"] == "False" and "crs:CropAngle" not in attrs
    # The same tilt on a long run of agreeing segments on separate lines is applied, and written.
    doc = _doc(_record(horizon_tilt_deg=1.5, lines_found=30, horizon_support=1.2, horizon_agreement=0.7,
                       horizon_lines=3))
    assert float(crs_settings(doc).attrs["crs:CropAngle"]) == -1.5


def test_tilt_left_to_a_retoucher_is_not_written() -> None:
    """An 8.5-degree tilt is beyond the automatic 3 degrees: the renderer leaves it, so does the XMP."""
    doc = _doc(_record(horizon_tilt_deg=8.52, lines_found=30))
    (st,) = [o for o in doc["operations"] if o["kind"] == "straighten"]
    assert st["applied_by"] == AppliedBy.RETOUCHER
    attrs = crs_settings(doc).attrs
    assert attrs["crs:HasCrop"] == "False" and "crs:CropAngle" not in attrs
    # Within the limit it is applied: the largest 3:2 box of Camera Raw's frame that fits when turned.
    attrs = crs_settings(_doc(_record(horizon_tilt_deg=1.5, lines_found=30))).attrs
    assert float(attrs["crs:CropAngle"]) == -1.5 and attrs["crs:HasCrop"] == "True"
    L, T, R, B = (float(attrs[f"crs:Crop{k}"]) for k in ("Left", "Top", "Right", "Bottom"))
    cx, cy, w, h = crs_to_box(L, T, R, B, -1.5, 3000, 2000)
    assert w / h == pytest.approx(1.5, abs=1e-4) and (cx, cy) == pytest.approx((1500, 1000), abs=0.01)


def test_primary_rendition_in_the_xmp_the_others_in_the_json() -> None:
    rec = _record(faces=[])
    doc = _doc(rec, "social_media")
    assert [f["rendition"] for f in doc["framings"]] == list(load_chart("social_media").chart.renditions)
    assert [f["in_xmp"] for f in doc["framings"]] == [True] + [False] * (len(doc["framings"]) - 1)
    primary = doc["framings"][0]
    attrs = crs_settings(doc).attrs
    L, T, R, B = (float(attrs[f"crs:Crop{k}"]) for k in ("Left", "Top", "Right", "Bottom"))
    x, y, w, h = primary["box"]
    assert (L, T, R, B) == pytest.approx((x / 3000, y / 2000, (x + w) / 3000, (y + h) / 2000), abs=1e-4)


# --- white balance ---------------------------------------------------------------------

def _adobe_spec_tags() -> tuple[DngColourTags, dict]:
    t = json.loads(adobe("06_acr11.3.1_canon_eos_6d.dng-tags").read_text())
    tags = DngColourTags(color_matrix1=np.reshape(t["ColorMatrix1"], (3, 3)),
                         color_matrix2=np.reshape(t["ColorMatrix2"], (3, 3)), illuminant1=17, illuminant2=21,
                         camera_calibration1=np.reshape(t["CameraCalibration1"], (3, 3)),
                         camera_calibration2=np.reshape(t["CameraCalibration2"], (3, 3)),
                         camera_calibration_signature="com.adobe", profile_calibration_signature="com.adobe",
                         analog_balance=np.array(t["AnalogBalance"]))
    extra = {50722: (10, t["ColorMatrix2"]), 50778: (3, [17]), 50779: (3, [21]),
             50723: (10, t["CameraCalibration1"]), 50724: (10, t["CameraCalibration2"]),
             50931: (2, "com.adobe"), 50932: (2, "com.adobe"), 50727: (5, t["AnalogBalance"])}
    return tags, extra


# (scene light, the camera's as-shot setting): a grey scene shot with the wrong white balance.
WRONG_WB = [((3200, 0), (5500, 10)), ((4300, 5), (6500, 10)), ((6500, 10), (5500, 10)),
            ((7500, 15), (6500, 10)), ((5000, -20), (5500, 10)), ((5000, 25), (6500, 10))]


@pytest.mark.parametrize("scene, shot", WRONG_WB)
def test_planned_white_balance_finds_the_scene_light(tmp_path: Path, scene, shot) -> None:
    """Truth injected into a real DNG: a grey scene under ``scene`` light, AsShotNeutral set for ``shot``.

    LibRaw decodes it as postprod does, the cast is measured, the plan
    corrects it; the XMP's Temperature/Tint must be the scene's light on
    Adobe's scale (the DNG spec fixes it from the camera's matrices): the
    value at which Camera Raw renders the grey neutral.
    """
    tags, extra = _adobe_spec_tags()
    spec = ColourSpec.from_dng(tags)
    grey = spec.xy_to_neutral(temperature_tint_to_xy(*scene))
    shading = np.kron(np.random.default_rng(1).uniform(0.1, 0.6, (32, 48, 1)), np.ones((8, 8, 1)))
    cfa = (mosaic(shading * grey / grey.max()) * 60000).astype(np.uint16)
    path = tmp_path / "grey.dng"
    path.write_bytes(dng_bytes(cfa, color_matrix1=tags.color_matrix1,
                               as_shot_neutral=list(spec.xy_to_neutral(temperature_tint_to_xy(*shot))),
                               extra_tags=extra))
    with rawpy.imread(str(path)) as raw:
        baseline = camera_raw_baseline(raw, path, is_dng=True)
        linear = decode_raw_linear(raw, half_size=True).astype(np.float32) / 65535
    cast = white_balance_cast(linear)
    # The scene is grey: greys known to be grey (as a ColorChecker's), whose tint the plan believes whole (a tint the
    # neutrals of a scene read is believed as far as its cues agree: tint_believed; the XMP says what the plan applies).
    rec = _record(source_path="grey.dng", format="dng", width=384, height=256, wb_cast_a=cast.a, wb_cast_b=cast.b,
                  wb_temperature_shift_k=cast.temperature_shift_k, as_shot_temperature_k=baseline.as_shot_temperature_k,
                  as_shot_tint=baseline.as_shot_tint, as_shot_wb_source=baseline.wb_source, baseline_exposure_ev=0.0,
                  wb_colour_checker=True)
    attrs = crs_settings(_accepted(_doc(rec))).attrs  # a shift of 50 mired or more is proposed: accepted here
    truth_t, truth_tint = xy_to_temperature_tint(*temperature_tint_to_xy(*scene))
    assert attrs["crs:WhiteBalance"] == "Custom"
    assert abs(1e6 / int(attrs["crs:Temperature"]) - 1e6 / truth_t) < 6  # mired: about a CC 025 filter's tenth
    assert abs(int(attrs["crs:Tint"]) - truth_tint) < 6


def test_as_shot_is_written_when_the_plan_leaves_white_balance_alone() -> None:
    rec = _record(as_shot_temperature_k=4163.2, as_shot_tint=-0.4, as_shot_wb_source="libraw")
    attrs = crs_settings(_doc(rec)).attrs
    # Camera Raw's own As Shot values are rounded to 50 K (refs 01, 06: 4600, 6200).
    assert (attrs["crs:WhiteBalance"], attrs["crs:Temperature"], attrs["crs:Tint"]) == ("As Shot", "4150", "0")
    assert "crs:IncrementalTemperature" not in attrs


def test_raw_without_as_shot_data_never_gets_custom_without_temperature() -> None:
    doc = _accepted(_doc(_record(wb_cast_a=2.0, wb_cast_b=25.0, wb_temperature_shift_k=-2500.0)))
    assert any(o["kind"] == "white_balance" for o in doc["operations"])
    s = crs_settings(doc)
    assert s.attrs["crs:WhiteBalance"] == "As Shot" and "crs:Temperature" not in s.attrs
    assert s.notes and "white balance" in s.notes[0]


def test_rendered_files_get_incremental_values_on_the_sliders_range() -> None:
    doc = _accepted(_doc(_record(source_path="a.jpg", format="jpeg", source_kind=SourceKind.RASTER, wb_cast_a=-3.0,
                                 wb_cast_b=20.0, wb_temperature_shift_k=-1800.0)))
    attrs = crs_settings(doc).attrs
    assert attrs["crs:WhiteBalance"] == "Custom" and "crs:Temperature" not in attrs
    t, tint = int(attrs["crs:IncrementalTemperature"]), int(attrs["crs:IncrementalTint"])
    assert -100 <= t < 0  # a warm (yellow) cast is corrected towards blue
    assert 0 < tint <= 100  # a green cast (a* < 0) towards magenta
    assert incremental_white_balance(50000, 160) == (100, 100)
    assert incremental_white_balance(1000, -200) == (-100, -100)
    # No cast and nothing to shift: the sliders stay at 0.
    neutral = _lab_to_ab(*D65_XY)
    assert incremental_white_balance(*planned_white(RENDERED_WHITE, 0.0, MeasuredCast(*neutral, 0.0))) == (0, 0)


# --- exposure --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, kind, baseline, expected", [
    ("dng", SourceKind.RAW, 0.25, "+0.75"),  # Camera Raw already adds the DNG's BaselineExposure
    ("cr2", SourceKind.RAW, None, "+1.00"),  # a proprietary baseline is Camera Raw's secret: assumed 0
    ("jpeg", SourceKind.RASTER, None, "+1.00"),
])  # fmt: skip
def test_exposure_is_relative_to_camera_raws_baseline(fmt, kind, baseline, expected) -> None:
    rec = _record(source_path=f"a.{fmt}", format=fmt, source_kind=kind, exposure_meter_ev=-1.0,
                  baseline_exposure_ev=baseline)
    doc = _doc(rec)
    (op,) = [o for o in doc["operations"] if o["kind"] == "exposure"]
    assert op["params"]["ev"] == 1.0
    assert crs_settings(doc).attrs["crs:Exposure2012"] == expected


# --- sidecar or embedded, and names ---------------------------------------------------------

def test_where_lightroom_reads_each_kind_of_source() -> None:
    t = xmp_targets([("d/IMG_0002.CR2", "cr2"), ("d/IMG_0002.JPG", "jpeg"), ("d/IMG_0003.CR2", "cr2"),
                     ("d/IMG_0003.NEF", "nef"), ("d/IMG_0004.dng", "dng"), ("d/IMG_0005.tif", "tiff"),
                     ("d/IMG_0006.heic", "heic")])
    assert t["d/IMG_0002.CR2"].packet == "xmp/d/IMG_0002.xmp" and t["d/IMG_0002.CR2"].form is XmpForm.SIDECAR
    # The JPEG keeps its settings inside: a RAW+JPEG pair does not collide.
    assert (t["d/IMG_0002.JPG"].form, t["d/IMG_0002.JPG"].copy) == (XmpForm.EMBEDDED, "xmp/d/IMG_0002.JPG")
    assert t["d/IMG_0004.dng"].copy == "xmp/d/IMG_0004.dng" and t["d/IMG_0005.tif"].copy == "xmp/d/IMG_0005.tif"
    assert t["d/IMG_0006.heic"].packet == "xmp/d/IMG_0006.xmp"
    # Two RAWs of one stem: Lightroom would read one IMG_0003.xmp for both; the first keeps it.
    assert t["d/IMG_0003.CR2"].packet == "xmp/d/IMG_0003.xmp" and t["d/IMG_0003.CR2"].note is None
    assert t["d/IMG_0003.NEF"].packet == "xmp/d/IMG_0003.NEF.xmp" and "IMG_0003.CR2" in t["d/IMG_0003.NEF"].note
    assert xmp_targets([("a.jpg", "jpeg")], embed_copies=False)["a.jpg"].copy is None


# --- read back with exiftool, against Adobe's files ------------------------------------------

FIELDS_LIKE_ADOBES = ("WhiteBalance", "ColorTemperature", "Tint", "Exposure2012", "HasCrop", "CropTop", "CropLeft",
                      "CropBottom", "CropRight", "CropAngle", "AlreadyApplied", "HasSettings", "ProcessVersion",
                      "RawFileName", "CropConstrainToWarp")


@needs_exiftool
def test_raw_sidecar_reads_back_like_camera_raws(tmp_path: Path) -> None:
    """Every field of a RAW's sidecar, through exiftool, with the types Camera Raw's own sidecar (ref 01) and a
    Lightroom crop (ref 05a) have."""
    rec = _record(source_path="_MG_6373.CR2", width=3504, height=2336, exposure_meter_ev=-0.8, horizon_tilt_deg=1.2,
                  lines_found=40, wb_cast_a=-2.0, wb_cast_b=12.0, wb_temperature_shift_k=-1000.0,
                  as_shot_temperature_k=4600.0, as_shot_tint=-1.0, as_shot_wb_source="libraw",
                  default_crop_x=0.0, default_crop_y=0.0, default_crop_width=3504.0, default_crop_height=2336.0)
    doc = _doc(rec, "real_estate_interiors", review={"rating": 4, "label": "Green", "keywords": ["kitchen", "Rooms|Kitchen"],
                                                      "by": "Ana", "at": "2026-11-30T10:00:00Z"})
    path = tmp_path / "_MG_6373.xmp"
    path.write_text(xmp_packet(doc), encoding="utf-8")
    ours = exiftool(path, "-XMP:all")
    ref = {**exiftool(adobe("05a"), "-XMP:all"), **exiftool(adobe("01"), "-XMP:all")}  # 01 has no crop; 05a has
    compared = [k for k in FIELDS_LIKE_ADOBES if k in ref and k in ours]
    assert len(compared) >= 10, compared
    for k in compared:
        assert _kind(ours[k]) == _kind(ref[k]), (k, ours[k], ref[k])
    assert ours["SidecarForExtension"] == ref["SidecarForExtension"] == "CR2"
    assert ours["AlreadyApplied"] is False and ours["HasSettings"] is True
    # The values, as the plan has them.
    ops = {o["kind"]: o for o in doc["operations"]}
    assert float(ours["Exposure2012"]) == ops["exposure"]["params"]["ev"]
    t, tint = planned_white((4600.0, -1.0), ops["white_balance"]["params"]["mired_shift"],
                            MeasuredCast.planned(ops["white_balance"]["params"]))
    assert (ours["WhiteBalance"], ours["ColorTemperature"], int(ours["Tint"])) == ("Custom", round(t), round(tint))
    assert ours["CropAngle"] == -1.2 and ours["HasCrop"] is True
    L, T, R, B = (ours[k] for k in ("CropLeft", "CropTop", "CropRight", "CropBottom"))
    x, y, w, h = doc["framings"][0]["box"]
    cx, cy, bw, bh = crs_to_box(L, T, R, B, -1.2, 3504, 2336)
    assert (cx, cy, bw, bh) == pytest.approx((x + w / 2, y + h / 2, w, h), abs=0.5)
    # The decision, with the types Lightroom writes (refs 02, 03).
    ref02 = exiftool(adobe("02"), "-XMP:all")
    assert type(ours["Rating"]) is type(ref02["Rating"]) and ours["Rating"] == 4
    assert ours["Label"] == "Green"
    assert ours["Subject"] == ["kitchen", "Rooms", "Kitchen"] and isinstance(ref02["Subject"], list)
    assert ours["HierarchicalSubject"] == ["kitchen", "Rooms|Kitchen"]
    review = exiftool(path, "-XMP-postprodReview:all")
    assert (review["ReviewedBy"], review["ReviewedAt"]) == ("Ana", "2026:11:30 10:00:00Z")  # exiftool's date style
    assert 'postprodReview:ReviewedAt="2026-11-30T10:00:00Z"' in path.read_text()
    assert review["PlanVerdict"] == "accept" and review["Chart"] == "real_estate_interiors"
    assert not [k for k in ours if k.startswith("Unknown")]


@needs_exiftool
def test_rendered_file_reads_back_like_lightrooms(tmp_path: Path) -> None:
    doc = _doc(_record(source_path="a.jpg", format="jpeg", source_kind=SourceKind.RASTER, wb_cast_a=1.0,
                       wb_cast_b=10.0, wb_temperature_shift_k=-900.0))
    path = tmp_path / "a.xmp"
    path.write_text(xmp_packet(doc), encoding="utf-8")
    ours = exiftool(path, "-XMP-crs:all", "-XMP-photoshop:all")
    ref = exiftool(adobe("04b"), "-XMP-crs:all")
    assert set(ref) >= {"IncrementalTemperature", "IncrementalTint"} and "ColorTemperature" not in ref
    assert type(ours["IncrementalTemperature"]) in (int, str) and "ColorTemperature" not in ours
    assert "SidecarForExtension" not in ours  # embedded packets do not name a RAW (the DNG SDK strips it)


@needs_exiftool
def test_decision_defaults_and_bad_ones() -> None:
    doc = _doc(_record(exposure_meter_ev=-1.0))
    assert ImageDecision.from_doc(doc) == ImageDecision()
    doc["operations"][0]["review"] = {"status": "accepted", "by": "Bo", "at": "2026-11-30T09:00:00Z", "comment": None}
    assert ImageDecision.from_doc(doc).by == "Bo"
    for bad in ({"rating": 6}, {"rating": True}, {"label": ""}, {"keywords": "a,b"}):
        with pytest.raises(ValueError, match="review"):
            ImageDecision.from_doc({"review": bad})


# --- end to end: a shoot of RAWs, DNGs and JPEGs ------------------------------------------------

@pytest.fixture(scope="module")
def shoot_out(raw_dir: Path, faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    shoot = tmp_path_factory.mktemp("lr_shoot")
    (shoot / "day1").mkdir()
    shutil.copy(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW", shoot / "day1" / "IMG_0002.CRW")
    shutil.copy(faces_dir / "2008_001009.jpg", shoot / "day1" / "IMG_0002.JPG")
    shutil.copy(raw_dir / "Kodak_DC50_DC50IMG_DC0008L.KDC", shoot / "day1" / "IMG_0002.KDC")
    rgb = np.asarray(Image.open(faces_dir / "2008_002079.jpg").convert("RGB"), dtype=np.float32) / 255.0
    write_dng_from_linear_rgb(shoot / "portrait.dng", rgb**2.2, orientation=6, baseline_exposure=0.25)
    out = tmp_path_factory.mktemp("lr_out")
    # The camera's JPEG of the CRW is developed too (by default a RAW+JPEG pair delivers its RAW alone): its
    # settings go inside its copy while the CRW's and the KDC's sidecars share a name. Runs into copies of `out`
    # keep the folder's choice.
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="corporate_portrait",
                              raw_jpeg_pairs="both"))
    return shoot, out


def _docs(out: Path) -> dict[str, dict]:
    return {d["source_path"]: d for d in (json.loads(p.read_text()) for p in (out / "instructions").glob("*.json"))}


def test_shoot_files_are_where_lightroom_looks(shoot_out: tuple[Path, Path]) -> None:
    _, out = shoot_out
    docs = _docs(out)
    assert docs["day1/IMG_0002.CRW"]["xmp"] == "xmp/day1/IMG_0002.xmp"
    assert docs["day1/IMG_0002.KDC"]["xmp"] == "xmp/day1/IMG_0002.KDC.xmp"
    assert "IMG_0002.CRW" in docs["day1/IMG_0002.KDC"]["xmp_note"]
    assert docs["day1/IMG_0002.JPG"]["xmp_copy"] == "xmp/day1/IMG_0002.JPG"
    assert docs["portrait.dng"]["xmp_copy"] == "xmp/portrait.dng"
    assert (out / "xmp/day1/IMG_0002.xmp").is_file()


@needs_exiftool
def test_embedded_copies_carry_the_settings_and_keep_the_pixels(shoot_out: tuple[Path, Path]) -> None:
    shoot, out = shoot_out
    docs = _docs(out)
    for sp in ("day1/IMG_0002.JPG", "portrait.dng"):
        doc = docs[sp]
        copy, packet = out / doc["xmp_copy"], out / doc["xmp"]
        inside = exiftool(copy, "-XMP-crs:all")
        alone = exiftool(packet, "-XMP-crs:all")
        assert {k: v for k, v in inside.items() if k != "SourceFile"} == {k: v for k, v in alone.items() if k != "SourceFile"}
        assert inside["HasCrop"] is True
    # The JPEG's pixels are the source's; the DNG's raw data too.
    src, cp = Image.open(shoot / "day1/IMG_0002.JPG"), Image.open(out / "xmp/day1/IMG_0002.JPG")
    assert np.array_equal(np.asarray(src), np.asarray(cp))
    with rawpy.imread(str(shoot / "portrait.dng")) as a, rawpy.imread(str(out / "xmp/portrait.dng")) as b:
        assert np.array_equal(a.raw_image, b.raw_image) and a.sizes.flip == b.sizes.flip


@needs_exiftool
def test_dng_settings_in_the_stored_frame_with_its_baseline(shoot_out: tuple[Path, Path]) -> None:
    _, out = shoot_out
    doc = _docs(out)["portrait.dng"]
    assert doc["camera_raw"]["baseline_exposure_ev"] == pytest.approx(0.25)
    tags = exiftool(out / doc["xmp_copy"], "-XMP-crs:all", "-n")
    ev = sum(o["params"]["ev"] for o in doc["operations"] if o["kind"] == "exposure" and o["applied_by"] == "renderer")
    assert float(tags["Exposure2012"]) == pytest.approx(ev - 0.25, abs=0.006)
    # The 4:5 portrait crop of a frame stored landscape (orientation 6) is landscape (5:4) when stored.
    W, H = doc["image"]["height"], doc["image"]["width"]  # stored size
    cx, cy, w, h = crs_to_box(tags["CropLeft"], tags["CropTop"], tags["CropRight"], tags["CropBottom"],
                              tags["CropAngle"], W, H)
    assert w / h == pytest.approx(5 / 4, abs=2e-3)


def test_sources_are_never_written(shoot_out: tuple[Path, Path], raw_dir: Path) -> None:
    shoot, _ = shoot_out
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    assert digest(shoot / "day1/IMG_0002.CRW") == digest(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW")
    assert not list(shoot.rglob("*.xmp"))


def test_copies_can_be_turned_off(shoot_out: tuple[Path, Path], tmp_path: Path) -> None:
    shoot, out = shoot_out
    chart = tmp_path / "no_copies.yaml"
    chart.write_text("schema_version: 2\nextends: corporate_portrait\nxmp:\n  embed_copies: false\n")
    again = tmp_path / "out"
    shutil.copytree(out, again)
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=again, executor="local", chart=str(chart), only="plan",
                              force=True))  # another chart: replacing the deliveries is asked for
    docs = _docs(again)
    assert docs["portrait.dng"]["xmp_copy"] is None and (again / docs["portrait.dng"]["xmp"]).is_file()
    assert not (again / "xmp/portrait.dng").exists() and not (again / "xmp/day1/IMG_0002.JPG").exists()
    assert (again / "xmp/day1/IMG_0002.xmp").is_file()


def test_box_to_crs_is_the_inverse_of_crs_to_box() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        W, H = rng.uniform(1000, 6000, 2)
        w, h = rng.uniform(100, 400, 2)
        cx, cy = rng.uniform(300, W - 300), rng.uniform(300, H - 300)
        a = rng.uniform(-45, 45)
        back = crs_to_box(*box_to_crs(cx, cy, w, h, a, W, H), a, W, H)
        assert back == pytest.approx((cx, cy, w, h), abs=1e-6)



def test_documents_written_before_the_form_was_named() -> None:
    """An instructions file from an earlier run (no format, kind or form) still gets the right form."""
    doc = _doc(_record(source_path="a.jpg", format="jpeg", source_kind=SourceKind.RASTER))
    for key in ("xmp_form", "xmp_copy", "renditions", "framings", "camera_raw"):
        doc.pop(key)
    for key in ("format", "source_kind"):
        doc["image"].pop(key)
    packet = xmp_packet(doc)
    assert "SidecarForExtension" not in packet and 'crs:IncrementalTemperature="0"' in packet
    doc["source_path"] = "a.CR2"
    assert 'photoshop:SidecarForExtension="CR2"' in xmp_packet(doc)


def test_instructions_made_a_chunk_at_a_time_are_the_same_files(shoot_out: tuple[Path, Path], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A large shoot's instructions are made INSTRUCTION_CHUNK images at a time (one exiftool run each, the
    # sidecar names shared across chunks: day1/IMG_0002's CRW, JPG and KDC): one image a chunk gives the
    # same documents, packets, copies and report as the whole shoot at once.
    import pipeline.outputs.shoot as shoot_module

    shoot, out = shoot_out
    again = tmp_path / "out"
    shutil.copytree(out, again)
    monkeypatch.setattr(shoot_module, "INSTRUCTION_CHUNK", 1)
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=again, executor="local", chart="corporate_portrait"))
    assert result.reused and not result.rendered  # only the outputs were made again

    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for folder in ("instructions", "xmp")
                for p in sorted((root / folder).rglob("*")) if p.is_file()}

    before, after = files(out), files(again)
    assert len(before) >= 8 and before.keys() == after.keys()
    # The CRW's sidecar stem was taken in the first chunk; the KDC, two chunks on, still knows it.
    assert json.loads(after["instructions/day1__IMG_0002.KDC.json"])["xmp"] == "xmp/day1/IMG_0002.KDC.xmp"
    assert [k for k in before if before[k] != after[k]] == []
    seconds = re.compile(rb"&middot; [0-9.]+ s</div>")
    assert seconds.sub(b"", (out / "report.html").read_bytes()) == seconds.sub(b"", (again / "report.html").read_bytes())


def test_the_sidecars_white_is_the_one_the_renderer_applies() -> None:
    """A JPEG whose neutrals read warm and magenta (tint -0.35): the plan takes out a quarter of the tint
    (tint_believed, for a record measured without its own spread), and the sidecar's white says that, not the
    measured light's whole tint, so Lightroom opens the file as it was delivered (it wrote a Tint 31 greener than the
    delivered file for deepface's img1.jpg)."""
    from pipeline.imaging.white_balance import lab_of_light, light_rgb

    a, b = lab_of_light(light_rgb(60.0) * np.array([1.0, 2.0**-0.35, 1.0]))
    rec = _record(source_path="a.jpg", format="jpeg", source_kind=SourceKind.RASTER, wb_cast_a=a, wb_cast_b=b,
                  wb_temperature_shift_k=1e6 / (1e6 / 6504.0 + 60.0) - 6504.0, wb_cast_mired=60.0, wb_tint=-0.35,
                  wb_uncertainty_mired=6.0)
    doc = _accepted(_doc(rec))
    (wb,) = [o for o in doc["operations"] if o["kind"] == "white_balance"]
    attrs = crs_settings(doc).attrs
    shift = wb["params"]["mired_shift"]
    planned = incremental_white_balance(*planned_white(RENDERED_WHITE, shift, MeasuredCast.planned(wb["params"])))
    measured = incremental_white_balance(*planned_white(RENDERED_WHITE, shift, MeasuredCast.of(doc["measurements"])))
    assert (int(attrs["crs:IncrementalTemperature"]), int(attrs["crs:IncrementalTint"])) == planned
    # The temperature about as measured (Camera Raw's tint axis is not the plan's green: a few units move)
    assert abs(planned[0] - measured[0]) <= 5
    assert abs(planned[1]) < abs(measured[1]) - 5  # a quarter of the tint, not all of it
