"""CMYK renditions for print: separated through the press's ICC profile, read back by LittleCMS and exiftool."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from render_cases import run_stages

from charts.loader import load_chart
from charts.schema import RenderingIntent
from pipeline.kernel.errors import ConfigError
from pipeline.outputs.cmyk import cmyk_profile_bytes, to_cmyk
from tests.cmyk_profile import cmyk_to_lab, lab_to_cmyk, write_cmyk_profile

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool not installed (CI installs it)")

CHART = """\
schema_version: 2
renditions:
  rgb: {long_edge_px: 600, format: tiff, color_space: adobe_rgb, sharpen_amount: 0}
  press: {long_edge_px: 600, format: tiff, color_space: adobe_rgb, sharpen_amount: 0, cmyk_profile: press.icc,
          ppi: 300}
  press_jpeg: {long_edge_px: 600, format: jpeg, quality: 95, color_space: adobe_rgb, sharpen_amount: 0,
               cmyk_profile: press.icc, rendering_intent: perceptual}
"""


def _lab(image: Image.Image, profile: ImageCms.ImageCmsProfile, mode: str, bpc: bool) -> np.ndarray:
    """The picture's CIELAB (D50) through ``profile`` (LittleCMS, relative colorimetric), as floats."""
    flags = ImageCms.Flags.BLACKPOINTCOMPENSATION if bpc else ImageCms.Flags.NONE
    to_lab = ImageCms.buildTransform(profile, ImageCms.createProfile("LAB"), mode, "LAB",
                                     renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, flags=flags)
    lab = np.asarray(ImageCms.applyTransform(image, to_lab))
    # Pillow's LAB: L on 0-255, a and b signed bytes.
    return np.stack([lab[..., 0] * (100 / 255), lab[..., 1].view(np.int8), lab[..., 2].view(np.int8)], axis=-1)


@pytest.fixture(scope="module")
def press_export(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("cmyk")
    write_cmyk_profile(tmp / "press.icc")
    (tmp / "press.yaml").write_text(CHART)
    chart = load_chart(tmp / "press.yaml")
    item = run_stages(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW", chart, [], tmp / "out", export=True)
    files = {e.rendition: tmp / "out" / e.path for e in item.record.exports}
    return tmp, files


def test_a_cmyk_rendition_is_the_rgb_one_separated_through_the_presss_profile(press_export) -> None:
    tmp, files = press_export
    profile_bytes = (tmp / "press.icc").read_bytes()
    press = ImageCms.ImageCmsProfile(io.BytesIO(profile_bytes))
    adobe = Image.open(files["rgb"])
    rgb_profile = ImageCms.ImageCmsProfile(io.BytesIO(adobe.info["icc_profile"]))
    for name in ("press", "press_jpeg"):
        cmyk = Image.open(files[name])
        assert cmyk.mode == "CMYK" and cmyk.size == adobe.size and cmyk.info["icc_profile"] == profile_bytes
    tif = Image.open(files["press"])
    assert tif.tag_v2[262] == 5 and tif.info["dpi"] == (300, 300)  # PhotometricInterpretation: separated
    # Read back through the press's profile, the separation shows the RGB rendition's colours (relative colorimetric
    # with black point compensation both ways), within ΔE*ab 3 (90th percentile) where the press can print them: the
    # colours the profile's own model (numpy, not LittleCMS's tables) separates and prints back within 1.
    want = _lab(adobe.convert("RGB"), rgb_profile, "RGB", bpc=True)
    got = _lab(tif, press, "CMYK", bpc=True)
    delta = np.sqrt(((got - want) ** 2).sum(axis=-1))
    printable = np.sqrt(((cmyk_to_lab(lab_to_cmyk(want)) - want) ** 2).sum(axis=-1)) < 1.0
    assert printable.mean() > 0.5, printable.mean()
    assert np.median(delta) < 1.5 and np.percentile(delta[printable], 90) < 3.0, (
        np.median(delta), np.percentile(delta[printable], 90))
    # A neutral prints mostly with black (the profile's grey component replacement), not with three inks.
    grey = to_cmyk(np.full((1, 1, 3), 100, np.uint8), "adobe_rgb", profile_bytes, RenderingIntent.RELATIVE)[0, 0]
    assert grey[3] > max(grey[:3]), grey
    # The JPEG is the same separation (perceptual, and JPEG's loss): Adobe's inverted CMYK, read back alike.
    jpeg = _lab(Image.open(files["press_jpeg"]), press, "CMYK", bpc=False)
    assert np.median(np.sqrt(((jpeg - got) ** 2).sum(axis=-1))) < 3.0


@needs_exiftool
def test_a_cmyk_files_metadata_reads_back(press_export) -> None:
    _, files = press_export
    for name in ("press", "press_jpeg"):
        out = subprocess.run([EXIFTOOL, "-j", "-G1", "-a", str(files[name])], capture_output=True, text=True,
                             check=True)
        tags = json.loads(out.stdout)[0]
        assert tags["ICC-header:ColorSpaceData"] == "CMYK", name
        assert tags["ICC_Profile:ProfileDescription"] == "postprod test CMYK (simple press model)"
        assert tags["IFD0:Make"] == "Canon" and tags["ExifIFD:ColorSpace"] == "Uncalibrated", name
        assert len(tags["XMP-postprod:RenderKey"]) == 64, name


def test_strip_by_strip_is_the_same_separation(press_export) -> None:
    # A full-resolution rendition of a sensor too large to hold is written strip by strip: each strip separated.
    from charts.schema import Rendition
    from pipeline.outputs.encode import ExportMetadata, export_rendition, export_rendition_strips

    tmp, files = press_export
    rendition = Rendition(format="tiff", color_space="adobe_rgb", cmyk_profile=str(tmp / "press.icc"))
    rgb = np.asarray(Image.open(files["rgb"]).convert("RGB"))
    meta = ExportMetadata(exif={}, iptc={}, xmp={})
    whole = Image.open(io.BytesIO(export_rendition(rgb, rendition, meta).data))
    strips = (rgb[y:y + 64] for y in range(0, rgb.shape[0], 64))
    export_rendition_strips(strips, (rgb.shape[1], rgb.shape[0]), rendition, meta, tmp / "strips.tif", durable=False)
    by_strips = Image.open(tmp / "strips.tif")
    assert by_strips.mode == "CMYK" and by_strips.info["icc_profile"] == (tmp / "press.icc").read_bytes()
    np.testing.assert_array_equal(np.asarray(by_strips), np.asarray(whole))


def test_a_chart_naming_a_profile_that_cannot_separate_stops_before_any_work(tmp_path: Path) -> None:
    from pipeline.imaging.icc import icc_profile

    chart = "schema_version: 2\nrenditions:\n  press:\n    format: {fmt}\n    cmyk_profile: {profile}\n"
    cases = [("tiff", "missing.icc", "cannot be used: No such file"),
             ("tiff", "srgb.icc", "not CMYK"),
             ("tiff", "chart.yaml", "not an ICC profile"),
             ("png", "press.icc", "a CMYK rendition is a tiff or a jpeg, not png")]
    (tmp_path / "srgb.icc").write_bytes(icc_profile("srgb"))
    write_cmyk_profile(tmp_path / "press.icc")
    for fmt, profile, message in cases:
        (tmp_path / "chart.yaml").write_text(chart.format(fmt=fmt, profile=profile))
        with pytest.raises(ConfigError) as info:
            load_chart(tmp_path / "chart.yaml")
        said = str(info.value)
        assert message in said and "chart.yaml:5, key 'renditions.press.cmyk_profile'" in said, said
    (tmp_path / "chart.yaml").write_text(chart.format(fmt="tiff", profile="press.icc") + "    bit_depth: 16\n")
    with pytest.raises(ConfigError, match="8-bit"):
        load_chart(tmp_path / "chart.yaml")
    (tmp_path / "chart.yaml").write_text(chart.format(fmt="tiff", profile="press.icc"))
    assert load_chart(tmp_path / "chart.yaml").chart.renditions["press"].cmyk_profile == str(tmp_path / "press.icc")


def test_a_new_profile_redoes_the_exports(tmp_path: Path) -> None:
    from pipeline.imaging.render import render_key

    write_cmyk_profile(tmp_path / "press.icc")
    (tmp_path / "chart.yaml").write_text("schema_version: 2\nrenditions:\n  press: {format: tiff, cmyk_profile: "
                                         "press.icc}\n")
    before = render_key("abc", load_chart(tmp_path / "chart.yaml").chart, [])
    write_cmyk_profile(tmp_path / "press.icc", description="the press's new profile")
    assert render_key("abc", load_chart(tmp_path / "chart.yaml").chart, []) != before
    assert cmyk_profile_bytes(str(tmp_path / "press.icc")) == (tmp_path / "press.icc").read_bytes()


def test_the_contact_sheet_shows_what_the_press_prints(press_export) -> None:
    # A CMYK rendition's cell is its soft proof (separated and read back), not the RGB it was made from: a saturated
    # blue no press prints comes out duller; a grey is kept.
    import cv2

    from pipeline.outputs.cmyk import soft_proof
    from pipeline.outputs.contact_sheet import contact_thumbnail, thumbnail_path

    tmp, files = press_export
    profile = (tmp / "press.icc").read_bytes()
    swatches = np.array([[[0, 0, 255], [128, 128, 128], [200, 150, 120]]], np.uint8)
    proofed = soft_proof(swatches, "srgb", profile, RenderingIntent.RELATIVE)
    lab = cv2.cvtColor(np.concatenate([swatches, proofed]).astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    assert chroma[1, 0] < 0.85 * chroma[0, 0], chroma  # the blue, duller
    assert np.abs(proofed[0, 1].astype(int) - 128).max() <= 6 and chroma[1, 1] < 3, proofed  # the grey, kept
    assert np.abs(lab[1, 2] - lab[0, 2]).max() < 6, lab  # a skin tone the press prints, about kept
    out = tmp / "out"
    cells = {name: np.asarray(Image.open(thumbnail_path(out, files[name].relative_to(out).as_posix())))
             for name in ("rgb", "press")}
    assert cells["rgb"].shape == cells["press"].shape and not np.array_equal(cells["rgb"], cells["press"])
    rgb = np.asarray(Image.open(files["rgb"]).convert("RGB"))
    assert contact_thumbnail(rgb, "adobe_rgb") != contact_thumbnail(
        rgb, "adobe_rgb", proof=lambda s: soft_proof(s, "adobe_rgb", profile, RenderingIntent.RELATIVE))
