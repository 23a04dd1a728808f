"""Export stage: encoders, ICC profiles and metadata read back by exiftool, size caps, names, exposure."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pyexiv2
import pytest
from PIL import Image
from render_cases import run_stages

from charts.loader import load_chart
from pipeline.imaging.decode import decode_raster
from pipeline.imaging.measure import measure_all
from pipeline.kernel.records import AppliedBy, Operation, OperationKind
from pipeline.outputs.encode import encode_within, png_with_icc

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool not installed (CI installs it)")

CHART = """\
schema_version: 2
client: "Bistro Lumière"
exposure: {{max_correction_ev: 2.0}}
metadata:
  creator: "Jane Photographer"
  copyright: "(c) 2024 Jane Photographer"
  credit: "Studio J"
  keywords: [restaurant, interior]
  strip_gps: {strip_gps}
renditions:
  web: {{long_edge_px: 400, format: jpeg, quality: 85, sharpen_amount: 0.5}}
  master: {{long_edge_px: 300, format: tiff, bit_depth: 16, color_space: adobe_rgb, ppi: 300}}
  png16: {{long_edge_px: 200, format: png, bit_depth: 16, color_space: display_p3}}
  webp: {{long_edge_px: 300, format: webp, quality: 80}}
  avif: {{long_edge_px: 320, format: avif, quality: 70, color_space: display_p3}}
  capped: {{long_edge_px: 1200, format: jpeg, quality: 95, max_file_kb: 40}}
naming: "{{client}}/{{shoot}}/{{rendition}}/{{date}}_{{seq:03d}}_{{stem}}.{{ext}}"
"""


def write_chart(tmp_path: Path, strip_gps: bool = True) -> Path:
    path = tmp_path / f"chart_{strip_gps}.yaml"
    path.write_text(CHART.format(strip_gps="true" if strip_gps else "false"), encoding="utf-8")
    return path


def exiftool(path: Path) -> dict:
    out = subprocess.run([EXIFTOOL, "-j", "-G1", "-a", "-n", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def validate(path: Path) -> str:
    """``exiftool -validate``'s verdict on a file: "OK", or how many warnings and errors it found."""
    out = subprocess.run([EXIFTOOL, "-j", "-validate", "-warning", "-a", str(path)], capture_output=True, text=True,
                         check=True)
    tags = json.loads(out.stdout)[0]
    warnings = [v for k, v in tags.items() if "Warning" in k]
    return tags["Validate"] if tags["Validate"] == "OK" else f"{tags['Validate']}: {warnings}"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- pure pieces ------------------------------------------------------------------------------


def test_encode_within_finds_the_highest_quality_that_fits() -> None:
    calls: list[int] = []

    def encode(q: int) -> bytes:
        calls.append(q)
        return b"x" * (q * 100)

    def finish(b: bytes) -> bytes:
        return b + b"m" * 50  # metadata counts against the cap

    assert encode_within(encode, 90, None, finish).quality == 90
    got = encode_within(encode, 90, 4321, finish)
    assert got.fits and got.quality == 42 and len(got.data) == 4250
    assert len(calls) <= 1 + 1 + 8  # one uncapped call, one at 90, then a binary search
    low = encode_within(encode, 90, 120, finish)
    assert not low.fits and low.quality == 1 and len(low.data) == 150


def test_png_iccp_chunk_is_valid() -> None:
    from pipeline.imaging.icc import icc_profile

    ok, png = cv2.imencode(".png", np.zeros((4, 4, 3), np.uint16))
    data = png_with_icc(png.tobytes(), icc_profile("display_p3"))
    assert Image.open(io.BytesIO(data)).info["icc_profile"] == icc_profile("display_p3")
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    with pytest.raises(ValueError):
        png_with_icc(b"GIF89a", b"")


# --- the stage on a real RAW ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def crw_export(raw_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("export")
    src = raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW"
    before = sha(src)
    chart = load_chart(write_chart(tmp))
    ops = [Operation("exposure", OperationKind.EXPOSURE, {"ev": 0.3}, "test", applied_by=AppliedBy.RENDERER)]
    item = run_stages(src, chart, ops, tmp / "out", export=True)
    assert sha(src) == before, "the source was modified"
    return item, tmp / "out"


def test_exports_are_listed_and_named_by_the_template(crw_export) -> None:
    item, out = crw_export
    r = item.record
    assert [e.rendition for e in r.exports] == ["web", "master", "png16", "webp", "avif", "capped"]
    web = r.exports[0]
    assert web.path == "exports/Bistro_Lumiere/shoot-1/web/2022-01-20_001_Canon_PowerShot_G2_CRW_0304.jpg"
    for e in r.exports:
        f = out / e.path
        assert f.is_file() and f.stat().st_size == e.bytes
        assert hashlib.sha256(f.read_bytes()).hexdigest() == e.sha256
    assert (web.width, web.height) == (400, 298)
    assert "renditions" not in item.artifacts  # pixels freed once written
    # No temporary files; the run's state folder holds the contact sheets' cells until the sheets are made.
    state = out / ".postprod"
    leftovers = [p for p in out.rglob("*") if (p.name.startswith(".") or p.suffix == ".tmp") and p != state]
    assert not leftovers, leftovers
    assert sorted(p.parent.name for p in state.rglob("*.jpg")) == ["thumbs"] * len(r.exports)
    assert r.error is None


@needs_exiftool
def test_jpeg_profile_and_metadata_read_back(crw_export) -> None:
    item, out = crw_export
    tags = exiftool(out / item.record.exports[0].path)
    assert tags["ICC_Profile:ProfileDescription"] == "sRGB IEC61966-2.1 (postprod)"
    assert tags["IFD0:Model"] == "PowerShot G2"  # LibRaw's model, carried over from the RAW
    assert tags["IFD0:Make"] == "Canon"
    assert tags["IFD0:Orientation"] == 1
    assert tags["ExifIFD:DateTimeOriginal"] == "2022:01:20 08:13:24"
    assert tags["IFD0:Artist"] == "Jane Photographer"
    assert tags["XMP-dc:Creator"] == "Jane Photographer"
    assert tags["IPTC:By-line"] == "Jane Photographer"
    assert tags["IPTC:CopyrightNotice"] == "(c) 2024 Jane Photographer"
    assert tags["XMP-dc:Rights"] == "(c) 2024 Jane Photographer"
    assert tags["IPTC:Keywords"] == ["restaurant", "interior"]
    assert tags["XMP-dc:Subject"] == ["restaurant", "interior"]
    assert tags["IPTC:Credit"] == "Studio J"
    assert tags["XMP-postprod:Client"] == "Bistro Lumière"
    assert tags["XMP-postprod:Shoot"] == "shoot-1"
    assert tags["XMP-photoshop:TransmissionReference"] == "Bistro Lumière/shoot-1"
    assert tags["XMP-postprod:RenderKey"] == item.record.render_key
    assert not any(k.startswith("GPS") for k in tags)
    assert not any("MakerNote" in k or k.startswith("Canon") for k in tags)
    # Every tag EXIF requires is there (ExifVersion, resolution, YCbCrPositioning ...): exiftool finds nothing to warn of.
    assert validate(out / item.record.exports[0].path) == "OK"
    # The rendition's ppi (72 by default) in EXIF and in JFIF's density alike.
    assert (tags["IFD0:XResolution"], tags["IFD0:ResolutionUnit"], tags["JFIF:XResolution"]) == (72, 2, 72)


@needs_exiftool
def test_avif_profile_metadata_and_pixels_read_back(crw_export) -> None:
    # An AVIF rendition: exiv2 does not write AVIF, so its EXIF and XMP go in with the encoder; it must carry the
    # profile, the credits and the camera as the JPEG does, and show the rendered picture.
    item, out = crw_export
    avif = next(e for e in item.record.exports if e.rendition == "avif")
    path = out / avif.path
    assert path.suffix == ".avif" and avif.format == "avif" and (avif.width, avif.height) == (320, 238)
    tags = exiftool(path)
    assert tags["ICC_Profile:ProfileDescription"].startswith("Display P3")
    assert tags["IFD0:Model"] == "PowerShot G2" and tags["IFD0:Artist"] == "Jane Photographer"
    assert tags["ExifIFD:DateTimeOriginal"] == "2022:01:20 08:13:24"
    assert tags["XMP-dc:Creator"] == "Jane Photographer" and tags["XMP-dc:Rights"] == "(c) 2024 Jane Photographer"
    assert tags["XMP-dc:Subject"] == ["restaurant", "interior"]
    assert tags["XMP-postprod:RenderKey"] == item.record.render_key
    assert not any(k.startswith("GPS") for k in tags)
    assert validate(path) == "OK"


def test_avif_keeps_the_picture_and_its_bytes_are_the_same_on_every_run(faces_dir: Path) -> None:
    from pipeline.outputs.encode import EncoderSettings, encode_pixels
    from pipeline.imaging.icc import icc_profile

    rgb = np.asarray(Image.open(faces_dir / "2008_001322.jpg").convert("RGB"))
    icc = icc_profile("srgb")
    # (a JPEG of the same photo: 27.4 dB at quality 60, 36.8 at 90; this AVIF 32.9 and 44.4, at the same size)
    for quality, least_db in ((60, 31.0), (90, 42.0)):
        data = encode_pixels(rgb, "avif", quality, 8, icc, EncoderSettings())
        assert data == encode_pixels(rgb, "avif", quality, 8, icc, EncoderSettings())  # one thread: same bytes
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "AVIF" and im.info.get("icc_profile") == icc
            back = np.asarray(im.convert("RGB"), dtype=np.float64)
        psnr = 10 * np.log10(255.0**2 / np.mean((back - rgb) ** 2))
        assert psnr > least_db, (quality, psnr)
    with pytest.raises(ValueError, match="8-bit only"):
        encode_pixels(rgb.astype(np.uint16) * 257, "avif", 80, 16, icc)


@needs_exiftool
def test_16_bit_tiff_and_png_keep_depth_and_profile(crw_export) -> None:
    item, out = crw_export
    by_name = {e.rendition: e for e in item.record.exports}
    tif = out / by_name["master"].path
    pixels = cv2.imread(str(tif), cv2.IMREAD_UNCHANGED)
    assert pixels.dtype == np.uint16 and pixels.shape == (by_name["master"].height, by_name["master"].width, 3)
    assert pixels.max() > 20000  # real 16-bit values, not 8-bit ones widened
    assert len(np.unique(pixels[..., 1])) > 256
    tags = exiftool(tif)
    assert tags["IFD0:BitsPerSample"] == "16 16 16"
    assert (tags["IFD0:XResolution"], tags["IFD0:YResolution"]) == (300, 300)  # the master's ppi: its print size
    assert tags["ICC_Profile:ProfileDescription"] == "Adobe RGB (1998) compatible (postprod)"
    assert tags["IFD0:Model"] == "PowerShot G2"
    png = out / by_name["png16"].path
    assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    tags = exiftool(png)
    assert tags["PNG:BitDepth"] == 16
    assert tags["ICC_Profile:ProfileDescription"] == "Display P3 (postprod)"
    assert "Warning" not in tags.get("ExifTool:Warning", "")
    for path in (tif, png, out / by_name["webp"].path):
        assert validate(path) == "OK", path.name
    webp = exiftool(out / by_name["webp"].path)
    assert webp["ICC_Profile:ProfileDescription"] == "sRGB IEC61966-2.1 (postprod)"
    assert webp["XMP-dc:Creator"] == "Jane Photographer"


def test_max_file_kb_is_respected(crw_export) -> None:
    item, out = crw_export
    capped = next(e for e in item.record.exports if e.rendition == "capped")
    assert capped.bytes <= 40 * 1024
    assert (capped.width, capped.height) == (1200, 893)
    # It really was squeezed below the nominal quality 95: coarser quantisation tables.
    im = Image.open(out / capped.path)
    assert im.size == (1200, 893)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95)
    nominal = Image.open(io.BytesIO(buf.getvalue()))
    assert sum(im.quantization[0]) > 2 * sum(nominal.quantization[0])
    assert len(buf.getvalue()) > 40 * 1024  # at quality 95 it would not have fitted


def test_unreachable_cap_delivers_with_a_warning(raw_dir: Path, tmp_path: Path) -> None:
    chart_path = tmp_path / "tiny.yaml"
    chart_path.write_text(
        "schema_version: 2\nrenditions:\n  tiny: {long_edge_px: 2000, format: jpeg, quality: 90, max_file_kb: 10}\n",
        encoding="utf-8",
    )
    item = run_stages(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW", load_chart(chart_path), [], tmp_path / "out", export=True)
    (e,) = item.record.exports
    assert (tmp_path / "out" / e.path).is_file() and e.bytes > 10 * 1024
    assert item.record.status == "ok"
    assert item.record.error.startswith("warning: rendition tiny") and "max_file_kb of 10" in item.record.error


# --- GPS -------------------------------------------------------------------------------------------


@pytest.fixture()
def jpeg_with_gps(faces_dir: Path, tmp_path: Path) -> Path:
    src = tmp_path / "src" / "with_gps.jpg"
    src.parent.mkdir()
    shutil.copyfile(faces_dir / "2008_001322.jpg", src)
    with pyexiv2.Image(str(src)) as img:
        img.modify_exif(
            {
                "Exif.Image.Make": "NIKON CORPORATION",
                "Exif.Image.Model": "NIKON D750",
                "Exif.Photo.DateTimeOriginal": "2024:05:18 14:30:00",
                "Exif.GPSInfo.GPSLatitudeRef": "N",
                "Exif.GPSInfo.GPSLatitude": "48/1 51/1 24/1",
                "Exif.GPSInfo.GPSLongitudeRef": "E",
                "Exif.GPSInfo.GPSLongitude": "2/1 21/1 7/1",
            }
        )
    return src


@needs_exiftool
@pytest.mark.parametrize("strip_gps", [True, False])
def test_gps_is_stripped_only_when_asked(jpeg_with_gps: Path, tmp_path: Path, strip_gps: bool) -> None:
    before = sha(jpeg_with_gps)
    chart = load_chart(write_chart(tmp_path, strip_gps=strip_gps))
    item = run_stages(jpeg_with_gps, chart, [], tmp_path / "out", export=True)
    assert sha(jpeg_with_gps) == before
    tags = exiftool(tmp_path / "out" / item.record.exports[0].path)
    assert tags["IFD0:Model"] == "NIKON D750"
    has_gps = any(k.startswith("GPS:") for k in tags)
    assert has_gps is (not strip_gps)
    if has_gps:
        assert tags["GPS:GPSLatitude"] == pytest.approx(48.8567, abs=1e-3)


# --- exposure correction on a real under-exposed photo ----------------------------------------------


def test_exposure_correction_lands_on_target(exposure_dir: Path, tmp_path: Path) -> None:
    """A FiveK frame pushed 1.5 EV under, corrected as the plan would: its key lands on the meter's target.

    The meter reads scene light (through the inverse of the camera-like curve) while the renderer
    multiplies the JPEG's display light: through the curve's toe a display gain moves scene light a
    little less, so the key closes within 0.4 EV, not exactly (the chart's cap is raised so that the
    cap does not decide). The key, not the whole reading: the highlight shoulder puts the delivered
    white point near full scale, where the meter stops trusting it. The rendition is not sharpened:
    output sharpening adds shadow contrast, which a rendered meter can read as exposure, and this test
    is about the exposure correction.
    """
    from pipeline.imaging.color import luminance
    from pipeline.imaging.measure.metering import KEY_LOG2, inverse_tone_curve, key_and_white

    src = exposure_dir / "a0964-20061224_140610__E6B7217_N1.5.JPG"
    proxy, _ = decode_raster(src, 1600, 250_000_000)
    measured = measure_all(proxy, rendered=True).exposure.meter_ev
    assert measured < -0.8  # really under-exposed
    chart_path = tmp_path / "chart.yaml"
    chart_path.write_text(
        "schema_version: 2\nexposure: {max_correction_ev: 3.0}\n"
        "renditions:\n  web: {long_edge_px: 1024, format: jpeg, quality: 90, sharpen_amount: 0}\n",
        encoding="utf-8",
    )
    chart = load_chart(chart_path)
    limit = chart.chart.exposure.max_correction_ev
    ev = max(-limit, min(limit, -measured))
    op = Operation("exposure", OperationKind.EXPOSURE, {"ev": ev}, "test", measured=measured, target=0.0)
    item = run_stages(src, chart, [op], tmp_path / "out", export=True)
    delivered, _ = decode_raster(tmp_path / "out" / item.record.exports[0].path, None, 250_000_000)
    key_display, _ = key_and_white(luminance(delivered))
    key = float(np.log2(inverse_tone_curve(2.0**key_display))) - KEY_LOG2
    after = measure_all(delivered, rendered=True).exposure.meter_ev
    assert abs(key) <= 0.4, f"measured {measured:+.2f} EV, corrected by {ev:+.2f}, key now {key:+.2f}"
    assert abs(after) < abs(measured) / 3  # and the whole reading is most of the way there


@pytest.mark.parametrize("compression", ["none", "lzw", "deflate"])
def test_tiff_compressions_are_lossless(compression: str) -> None:
    from pipeline.imaging.icc import icc_profile
    from pipeline.outputs.encode import EncoderSettings, encode_pixels

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 65536, size=(20, 30, 3), dtype=np.uint16)
    data = encode_pixels(pixels, "tiff", 100, 16, icc_profile("srgb"), EncoderSettings(tiff_compression=compression))
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)[..., ::-1]
    np.testing.assert_array_equal(back, pixels)
    with pytest.raises(ValueError, match="TIFF compression"):
        encode_pixels(pixels, "tiff", 100, 16, b"", EncoderSettings(tiff_compression="zip"))


@pytest.mark.parametrize("quality", [75, 90])
def test_baseline_and_progressive_jpeg_decode_to_the_same_pixels(quality: int) -> None:
    # The default (baseline, optimised tables) is a fast path for the progressive encoding it replaced:
    # the same quantised coefficients in another order, so a decoder sees the same picture.
    from pipeline.imaging.icc import icc_profile
    from pipeline.outputs.encode import EncoderSettings, encode_pixels

    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 255, 96, dtype=np.float32)
    pixels = np.clip(ramp[None, :, None] + rng.normal(0, 20, (64, 96, 3)), 0, 255).astype(np.uint8)
    decoded = []
    for progressive in (True, False):
        data = encode_pixels(pixels, "jpeg", quality, 8, icc_profile("srgb"), EncoderSettings(jpeg_progressive=progressive))
        with Image.open(io.BytesIO(data)) as im:
            assert ("progressive" in im.info) is progressive
            decoded.append(np.asarray(im.convert("RGB")))
    np.testing.assert_array_equal(decoded[0], decoded[1])


def test_a_chart_asking_for_avif_without_an_encoder_stops_before_any_work(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import charts.schema
    from pipeline.kernel.errors import ConfigError

    path = tmp_path / "web.yaml"
    path.write_text("schema_version: 2\nrenditions:\n  web: {long_edge_px: 800, format: avif, quality: 60}\n")
    assert load_chart(path).chart.renditions["web"].extension == "avif"
    monkeypatch.setattr(charts.schema, "avif_encoder", lambda: False)
    with pytest.raises(ConfigError) as info:
        load_chart(path)
    said = str(info.value)
    assert "web.yaml:3, key 'renditions.web.format'" in said and "no AVIF encoder" in said


def test_an_avif_is_the_first_file_a_process_tags() -> None:
    # A chart whose only rendition is an AVIF: postprod's own XMP namespace must be known to exiv2 before the
    # first AVIF's tags are made (a fresh worker failed every such export with "No namespace info ... postprod").
    import subprocess
    import sys

    code = ("from pipeline.outputs.encode import ExportMetadata, avif_metadata\n"
            "exif, xmp = avif_metadata(ExportMetadata(exif={'Exif.Image.Artist': 'Jane'}, iptc={},"
            " xmp={'Xmp.postprod.Client': 'Bistro'}))\n"
            "assert b'Bistro' in xmp and b'Jane' in exif, (exif, xmp)\n")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
