"""decode_raw on real camera files, broken files and synthetic rasters."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import rawpy
from PIL import Image, ImageCms

from pipeline.imaging.color import linear_to_srgb, srgb_to_linear
from pipeline.imaging.decode import (
    check_not_constant,
    check_sensor_data,
    decode_proxy,
    decode_raster,
    hdr_transfer,
    icc_hdr_transfer,
)
from pipeline.imaging.icc import icc_profile
from pipeline.kernel.errors import InputError
from pipeline.kernel.graph import load_graph
from pipeline.kernel.ingest import scan_shoot
from pipeline.kernel.records import SourceKind, SourceTask, Status
from pipeline.kernel.runner import Runner
from pipeline.kernel.stage import RunContext
from stages.decode_raw import DecodeRaw

# Ground truth: shared/data/README.md's table (camera, visible size) and, for the
# Kodak DC120 whose photosites are not square, LibRaw's aspect-corrected output.
REAL_RAWS = {
    "Canon_PowerShot_G2_CRW_0304.CRW": ("Canon", "PowerShot G2", 2312, 1720),
    "Canon_PowerShot_G2_CRW_0305.CRW": ("Canon", "PowerShot G2", 2312, 1720),
    "Canon_PowerShot_S40_CRW_0101.CRW": ("Canon", "PowerShot S40", 2312, 1720),
    "Canon_PowerShot_S40_CRW_0113.CRW": ("Canon", "PowerShot S40", 2312, 1720),
    "Kodak_DC120_DC120IMG_P003908.KDC": ("Kodak", "DC120", 1301, 976),
    "Kodak_DC120_DC120IMG_P003911.KDC": ("Kodak", "DC120", 1301, 976),
    "Kodak_DC50_DC50IMG_DC0008L.KDC": ("Kodak", "DC50", 768, 512),
    "tinydng_colorchart.dng": ("Canon", "EOS Kiss X4", 1734, 1156),
    "RAW_KODAK_C330_FORMAT_NONE_YRGB.raw": ("Kodak", "C330", 1216, 912),
}


def _runner(root: Path, tmp_path: Path) -> Runner:
    graph = load_graph().subset({"decode_raw"})
    return Runner(graph, RunContext(shoot_dir=root, out_dir=tmp_path))


def _task(path: Path) -> SourceTask:
    shoot = scan_shoot(path.parent)
    return next(t for t in shoot.tasks if t.path.name == path.name)


@pytest.mark.parametrize("name", sorted(REAL_RAWS))
def test_real_raw_decodes_with_true_size_and_camera(name: str, raw_dir: Path, tmp_path: Path) -> None:
    path = raw_dir / name
    make, model, width, height = REAL_RAWS[name]
    runner = _runner(raw_dir, tmp_path)
    from pipeline.kernel.records import WorkItem

    task = _task(path)
    item = WorkItem(task=task, record=task.new_record())
    runner.setup()
    runner.stages[0].process(item)
    r = item.record
    assert (r.camera.make, r.camera.model) == (make, model)
    assert (r.frame.width, r.frame.height) == (width, height)
    proxy = item.artifacts["proxy"]
    assert proxy.rgb.dtype == np.float32 and proxy.rgb.ndim == 3
    assert proxy.rgb.shape[:2] == (r.frame.proxy_height, r.frame.proxy_width)
    assert abs(proxy.scale * r.frame.proxy_width - width) < 1.0
    # The full decode LibRaw itself would produce has the size we report.
    with rawpy.imread(str(path)) as raw:
        full = raw.postprocess(no_auto_bright=True, output_bps=8)
    assert full.shape[:2] == (height, width)
    # Linear, un-brightened, camera white balance: a real photo is neither black nor clipped.
    assert 0.01 < float(proxy.rgb.mean()) < 0.9


def test_real_raw_exif(raw_dir: Path, tmp_path: Path) -> None:
    r = _runner(raw_dir, tmp_path).run(_task(raw_dir / "Canon_PowerShot_S40_CRW_0113.CRW"))
    assert r.status is Status.OK
    assert r.camera.iso == 50 and r.camera.aperture == pytest.approx(2.8, abs=0.01)
    assert r.camera.shutter_s == pytest.approx(0.2, rel=0.02)
    assert r.camera.focal_length_mm == pytest.approx(7.09, abs=0.01)
    assert r.camera.captured_at == datetime(2021, 3, 26, 21, 14, 52)
    assert r.frame.orientation == 1


def test_every_unsupported_file_fails_with_a_reason(unsupported_dir: Path, tmp_path: Path) -> None:
    shoot = scan_shoot(unsupported_dir)
    runner = _runner(shoot.root, tmp_path)
    names = sorted(p.name for p in unsupported_dir.rglob("*") if p.is_file())
    assert len(shoot.tasks) == len(names) >= 15
    for task in shoot.tasks:
        r = runner.run(task)
        assert r.status is Status.FAILED, task.source_path
        assert r.error and r.error.startswith("decode_raw: ") and len(r.error) > 30, r.error
        assert r.frame.width is None


class _SensorOnly:
    """What :func:`check_sensor_data` reads of a LibRaw handle: the mosaic and the sizes."""

    def __init__(self, mosaic: np.ndarray) -> None:
        self.raw_image_visible = mosaic
        h, w = mosaic.shape
        self.sizes = type("Sizes", (), {"raw_width": w, "raw_height": h})()


def test_sensor_data_is_judged_on_its_values_and_a_size_floor_below_any_real_raw() -> None:
    rng = np.random.default_rng(0)
    # An 8-bit lossy camera (the DC120's 0.42 bits per photosite): few values, none dominant, dark frame.
    dark = np.clip(rng.normal(6, 3, (976, 848)), 0, 255).astype(np.uint16)
    check_sensor_data(_SensorOnly(dark))
    lens_cap = rng.poisson(2.0, (600, 800)).astype(np.uint16)  # black frame: a third of it at 0, noise
    check_sensor_data(_SensorOnly(lens_cap))
    # A stub: the image data was never there (zeros), with a previous decode's bytes in one corner.
    stub = np.zeros((2328, 3516), np.uint16)
    stub[:200, :300] = rng.integers(0, 4096, (200, 300))
    with pytest.raises(InputError, match=r"sensor data holds no picture: more than 90 % of the 3516x2328 sensor"):
        check_sensor_data(_SensorOnly(stub))
    two_values = np.where(rng.random((500, 500)) < 0.7, 512, 700).astype(np.uint16)
    with pytest.raises(InputError, match="fewer than 32 distinct values"):
        check_sensor_data(_SensorOnly(two_values))
    # The DC120's 43 KB pass the size floor; a stub's 13 KB for a 3516x2328 sensor do not, even when its
    # missing data is a previous frame's photosites (a picture by every decoded-data test).
    check_sensor_data(_SensorOnly(dark), file_size=43_000)
    previous_frame = rng.integers(0, 4096, (2328, 3516)).astype(np.uint16)
    check_sensor_data(_SensorOnly(previous_frame))
    with pytest.raises(InputError, match=r"13662 bytes for a 3516x2328 sensor is 0\.013 bits per photosite"):
        check_sensor_data(_SensorOnly(previous_frame), file_size=13_662)


def test_a_stub_fails_after_another_raw_was_decoded_in_the_process(raw_dir: Path) -> None:
    # LibRaw fills a stub's missing image data from memory it did not clear: after another RAW's decode
    # that is a picture, so local runs (one process) and Ray runs must still agree that it is a stub.
    stub = raw_dir / "unsupported" / "exiftool_stubs" / "DNG.dng"
    decode_proxy(raw_dir / "tinydng_colorchart.dng", SourceKind.RAW, 1600, 250_000_000)
    with pytest.raises(InputError, match="holds no picture"):
        decode_proxy(stub, SourceKind.RAW, 1600, 250_000_000)


def test_truncated_and_broken_files_fail(raw_dir: Path, tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    dng = (raw_dir / "tinydng_colorchart.dng").read_bytes()
    (shoot / "half.dng").write_bytes(dng[: len(dng) // 2])
    (shoot / "zero.CR2").write_bytes(b"")
    (shoot / "text.NEF").write_text("this is not a raw file\n" * 100)
    buf = io.BytesIO()
    Image.fromarray(np.full((64, 96, 3), 128, np.uint8)).save(buf, "JPEG", quality=95)
    (shoot / "grey.jpg").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((200, 300, 3)) * 255).astype(np.uint8)).save(buf, "JPEG")
    (shoot / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    runner = _runner(shoot, tmp_path / "out")
    errors = {t.source_path: runner.run(t).error for t in scan_shoot(shoot).tasks}
    assert "truncated" in errors["half.dng"]
    assert errors["zero.CR2"] == "decode_raw: empty file (0 bytes)"
    assert "not an image" in errors["text.NEF"] or "not a RAW" in errors["text.NEF"]
    assert "constant image" in errors["grey.jpg"]
    assert "truncated" in errors["cut.jpg"]


def test_a_16_bit_cmyk_tiff_is_read_as_cmyk(tmp_path: Path) -> None:
    # A print shop's 16-bit CMYK TIFF: its four 16-bit samples were read as RGB and alpha, and with no black ink
    # (K = 0) the picture was refused as "every pixel is fully transparent". Read as CMYK, it decodes as its 8-bit
    # copy does.
    import tifffile

    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :]
    rgb[..., 1] = np.linspace(255, 0, 32, dtype=np.uint8)[:, None]
    rgb[..., 2] = 128
    cmyk = np.dstack([255 - rgb, np.zeros(rgb.shape[:2], np.uint8)])
    tifffile.imwrite(tmp_path / "cmyk8.tif", cmyk, photometric="separated")
    tifffile.imwrite(tmp_path / "cmyk16.tif", cmyk.astype(np.uint16) * 257, photometric="separated")
    eight, _ = decode_raster(tmp_path / "cmyk8.tif", 1600, max_pixels=100_000_000)
    sixteen, _ = decode_raster(tmp_path / "cmyk16.tif", 1600, max_pixels=100_000_000)
    assert sixteen.shape == eight.shape == (32, 48, 3)
    assert np.abs(sixteen - eight).max() < 1e-3
    assert eight[..., 0].max() > 0.9 and eight[..., 2].mean() == pytest.approx(0.216, abs=0.01)  # sRGB 128, linear


def test_a_tiff_pillow_cannot_decode_says_what_it_holds(tmp_path: Path) -> None:
    # A 16-bit CIELab TIFF (prepress; sharp's test fixture cielab-dagams.tiff is one): Pillow reads 8-bit Lab
    # only. The failed row names the colour model instead of "not an image format".
    import tifffile

    lab = np.zeros((32, 48, 3), np.uint16)
    lab[..., 0] = np.linspace(0, 65535, 48, dtype=np.uint16)[None, :]
    tifffile.imwrite(tmp_path / "lab16.tif", lab, photometric="cielab")
    with pytest.raises(InputError, match="a TIFF in CIELab colour that Pillow cannot decode: save it as an RGB TIFF"):
        decode_raster(tmp_path / "lab16.tif", 1600, max_pixels=100_000_000)
    # A floating-point TIFF (an HDR merge's 32-bit linear light; a half-float one): named as such, with what to
    # export instead (it read "a TIFF in RGB colour ...: save it as an RGB TIFF", which it is).
    rgb = np.linspace(0.0, 4.0, 32 * 48 * 3, dtype=np.float32).reshape(32, 48, 3)
    for bits, dtype in ((32, np.float32), (16, np.float16)):
        tifffile.imwrite(tmp_path / f"hdr{bits}.tif", rgb.astype(dtype), photometric="rgb")
        with pytest.raises(InputError, match=f"a {bits}-bit floating-point TIFF in RGB colour .*16-bit TIFF or a JPEG"):
            decode_raster(tmp_path / f"hdr{bits}.tif", 1600, max_pixels=100_000_000)
    # A grey one Pillow opens (mode F): its 0-1 light was decoded as a black picture, a 0-1000 one as white.
    tifffile.imwrite(tmp_path / "grey32.tif", rgb[..., 0] * 250.0, photometric="minisblack")
    with pytest.raises(InputError, match="a 32-bit floating-point TIFF in grey colour .*16-bit TIFF or a JPEG"):
        decode_raster(tmp_path / "grey32.tif", 1600, max_pixels=100_000_000)
    # Integer samples postprod does not read as a picture's: signed (Pillow opened a grey one as 16-bit grey, and its
    # negative values became pixels that are not numbers) and 32-bit ones (clipped white), grey or RGB.
    grey = (np.linspace(0, 255, 32 * 48).reshape(32, 48)).astype(np.int16) - 128
    tifffile.imwrite(tmp_path / "signed16.tif", grey * 100, photometric="minisblack")
    tifffile.imwrite(tmp_path / "uint32.tif", np.repeat((grey + 128)[..., None], 3, axis=2).astype(np.uint32) << 20,
                     photometric="rgb")
    for name, kind in (("signed16.tif", "signed integer"), ("uint32.tif", "32-bit integer")):
        with pytest.raises(InputError, match=f"a TIFF of {kind} samples .* save it at 8 or 16 bits"):
            decode_raster(tmp_path / name, 1600, max_pixels=100_000_000)
    # 16-bit RGB stored as one plane per channel: Pillow cannot open it; the row says how to save it.
    ramp = np.repeat((grey + 128)[..., None], 3, axis=2).astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "planar.tif", ramp, photometric="rgb", planarconfig="separate")
    with pytest.raises(InputError, match="stored as separate planes, one per channel.*channels interleaved"):
        decode_raster(tmp_path / "planar.tif", 1600, max_pixels=100_000_000)
    (tmp_path / "text.tif").write_text("not a tiff at all\n")
    with pytest.raises(InputError, match="not an image format Pillow or LibRaw can read"):
        decode_raster(tmp_path / "text.tif", 1600, max_pixels=100_000_000)


def _png_with_cicp(path: Path, transfer: int) -> None:
    """A PNG whose cICP chunk (after IHDR) declares BT.2020 primaries and ``transfer``."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 130, 140)).save(buf, "PNG")
    data = buf.getvalue()
    body = b"cICP" + bytes([9, transfer, 0, 1])
    chunk = struct.pack(">I", 4) + body + struct.pack(">I", zlib.crc32(body))
    path.write_bytes(data[:33] + chunk + data[33:])  # signature (8) and IHDR (25) first


def test_an_hdr_picture_is_refused_with_its_transfer(tmp_path: Path) -> None:
    # A camera HEIF shot in HDR (Canon's PQ, Sony's HLG) or an HDR PNG: its code values are not sRGB's, and read
    # as sRGB the picture comes out washed out; the row says what it is and what to deliver instead.
    _png_with_cicp(tmp_path / "pq.png", 16)
    with pytest.raises(InputError, match=r"an HDR picture \(PQ \(SMPTE ST 2084\) transfer\).*export it as an SDR"):
        decode_raster(tmp_path / "pq.png", 1600, max_pixels=100_000_000)
    _png_with_cicp(tmp_path / "srgb.png", 13)  # sRGB's transfer: decoded as ever
    assert decode_raster(tmp_path / "srgb.png", 1600, max_pixels=100_000_000)[0].shape == (16, 16, 3)
    # HEIF and AVIF declare it in an ISOBMFF colour box of type nclx (primaries, transfer, matrix, range).
    box = b"\x00\x00\x00\x13colrnclx" + struct.pack(">HHHB", 9, 18, 0, 0x80)
    assert hdr_transfer(b"ftypheic" + box) == "HLG (ARIB STD-B67)"
    assert hdr_transfer(b"ftypheic" + box.replace(struct.pack(">H", 18), struct.pack(">H", 13), 1)) is None
    assert hdr_transfer(b"ftypheic\x00\x00\x00\x10colrprof") is None  # an ICC profile: a phone's SDR HEIC


def _icc_with_cicp(transfer: int) -> bytes:
    """A profile with one tag, ``cicp`` (ICC.1:2022), as libjxl writes for a JPEG XL's colour encoding."""
    data = b"cicp" + bytes(4) + bytes([9, transfer, 0, 1])
    table = struct.pack(">I4sII", 1, b"cicp", 128 + 4 + 12, len(data))
    body = table + data
    return struct.pack(">I", 128 + len(body)) + bytes(124) + body


def test_an_icc_profile_declaring_hdr_is_refused(tmp_path: Path) -> None:
    # libjxl describes a JPEG XL's PQ or HLG colour by an ICC profile with a cicp tag (Rec2100PQ); LittleCMS,
    # converting through it, delivers the picture washed out as well.
    assert icc_hdr_transfer(_icc_with_cicp(16)) == "PQ (SMPTE ST 2084)"
    assert icc_hdr_transfer(_icc_with_cicp(13)) is None  # sRGB's transfer
    assert icc_hdr_transfer(icc_profile("srgb")) is None and icc_hdr_transfer(b"not a profile") is None
    Image.new("RGB", (16, 16), (120, 130, 140)).save(tmp_path / "hlg.png", icc_profile=_icc_with_cicp(18))
    with pytest.raises(InputError, match=r"an HDR picture \(HLG \(ARIB STD-B67\) transfer\)"):
        decode_raster(tmp_path / "hlg.png", 1600, max_pixels=100_000_000)


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("L", (12000, 10000)).save(path, optimize=True)  # 120 MP, a few KB on disk
    with pytest.raises(InputError, match="above the 100 MP limit"):
        decode_raster(path, 1600, max_pixels=100_000_000)


def test_raster_orientation_is_applied(tmp_path: Path) -> None:
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, :40] = (250, 20, 20)  # left half red
    img[:, 40:] = (20, 20, 250)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to view
    exif[0x010F] = "TestMake"
    path = tmp_path / "o6.jpg"
    Image.fromarray(img).save(path, "JPEG", quality=95, exif=exif)
    rgb, meta = decode_raster(path, None, 10**8)
    assert rgb.shape[:2] == (80, 40) and (meta.width, meta.height) == (40, 80)
    assert meta.orientation == 6 and meta.camera_make == "TestMake"
    # After a 90-degree clockwise turn, the old left (red) half is on top.
    assert rgb[5, 20, 0] > 0.8 and rgb[75, 20, 2] > 0.8


def test_a_tiff_is_turned_by_its_orientation_once(tmp_path: Path) -> None:
    # Pillow's TIFF plugin turns the pixels itself as it loads them; turned again by the decode, a TIFF tagged
    # to be turned 90 degrees came out on its side (the JPEG above is Pillow's other case: not turned on load).
    import tifffile

    img = np.zeros((40, 80, 3), np.uint8)
    img[:, :40] = (250, 20, 20)  # left half red
    img[:, 40:] = (20, 20, 250)
    path = tmp_path / "o6.tif"
    tifffile.imwrite(path, img, photometric="rgb", extratags=[(274, 3, 1, 6, True)])
    rgb, meta = decode_raster(path, None, 10**8)
    assert rgb.shape[:2] == (80, 40) and (meta.width, meta.height) == (40, 80) and meta.orientation == 6
    assert rgb[5, 20, 0] > 0.8 and rgb[75, 20, 2] > 0.8  # the old left (red) half on top


def test_raster_icc_profile_is_honoured(tmp_path: Path) -> None:
    rgb8 = np.full((32, 32, 3), (200, 120, 60), np.uint8)
    plain, with_srgb, with_lab = tmp_path / "plain.png", tmp_path / "srgb.png", tmp_path / "adobe.png"
    Image.fromarray(rgb8).save(plain)
    srgb_icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgb8).save(with_srgb, icc_profile=srgb_icc)
    a, _ = decode_raster(plain, None, 10**8)
    b, _ = decode_raster(with_srgb, None, 10**8)
    np.testing.assert_allclose(a, b, atol=2 / 255)
    # Adobe RGB's green primary is more saturated than sRGB's: pure Adobe RGB
    # green, converted to sRGB, is out of gamut (red and blue clip to zero)
    # and pure sRGB green is (144, 255, 60) in Adobe RGB (Adobe's own figures).
    Image.fromarray(np.full((8, 8, 3), (144, 255, 60), np.uint8)).save(with_lab, icc_profile=icc_profile("adobe_rgb"))
    c, _ = decode_raster(with_lab, None, 10**8)
    np.testing.assert_allclose(linear_to_srgb(c[0, 0]) * 255, [0, 255, 0], atol=3)


def test_constant_check() -> None:
    check_not_constant(np.array([[[0.1, 0.2, 0.3]]], np.float32).repeat(2, 0) * [[[1]], [[2]]])
    with pytest.raises(InputError, match="constant"):
        check_not_constant(np.zeros((4, 4, 3), np.float32))


def test_params_are_strict() -> None:
    with pytest.raises(Exception):
        DecodeRaw.Params(proxy_long_edge=10)
    with pytest.raises(Exception):
        DecodeRaw.Params(unknown=1)


def test_heic_is_decoded_with_its_orientation(tmp_path: Path) -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    img = np.zeros((48, 96, 3), np.uint8)
    img[:, :48] = (230, 30, 30)
    img[:, 48:] = (30, 30, 230)
    path = tmp_path / "phone.heic"
    Image.fromarray(img).save(path, quality=95)
    from pipeline.kernel.ingest import hash_file, sniff_format

    assert sniff_format(hash_file(path)[1], ".HEIC") == ("heic", SourceKind.RASTER)
    rgb, meta = decode_raster(path, None, 10**8)
    assert rgb.shape == (48, 96, 3) and (meta.width, meta.height) == (96, 48)
    assert rgb[24, 10, 0] > 0.6 and rgb[24, 80, 2] > 0.6


@pytest.mark.parametrize("container", [False, True])
def test_jpeg_xl_is_decoded_like_the_photo_it_holds(tmp_path: Path, container: bool) -> None:
    import pillow_jxl  # noqa: F401  (registers the plugin)
    from skimage import data

    from pipeline.kernel.ingest import hash_file, sniff_format

    # A new user's JPEG XL photo failed as "not an image". The astronaut, lossless in JPEG XL (bare
    # codestream, or in its container with the EXIF that puts it there), decodes to the photo's own pixels.
    photo = data.astronaut()
    path = tmp_path / "photo.jxl"
    extra = {"exif": Image.Exif().tobytes()} if container else {}
    Image.fromarray(photo).save(path, lossless=True, **extra)
    head = hash_file(path)[1]
    assert head[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n" if container else head[:2] == b"\xff\x0a"
    assert sniff_format(head, ".jxl") == ("jxl", SourceKind.RASTER)
    rgb, meta = decode_raster(path, None, 10**8)
    assert (meta.width, meta.height) == (512, 512)
    reference, _ = decode_raster(_png(tmp_path, photo), None, 10**8)
    assert np.abs(rgb - reference).max() < 1e-3


def _png(tmp_path: Path, pixels: np.ndarray) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


def test_libraw_messages_go_into_the_reason(raw_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    dng = (raw_dir / "tinydng_colorchart.dng").read_bytes()
    (shoot / "cut.dng").write_bytes(dng[: len(dng) * 2 // 3])
    record = _runner(shoot, tmp_path / "out").run(scan_shoot(shoot).tasks[0])
    assert "(LibRaw: Unexpected end of file)" in record.error
    assert "Unexpected end of file" not in capfd.readouterr().err  # not printed past the progress bar


# --- pictures in the older and the archival raster formats ---------------------------------------------------------
# JPEG 2000 (archives, cinema stills), Netpbm (converters' output), TGA (CGI renders of products) and PCX were
# refused as "not an image: neither LibRaw nor Pillow recognises this file", where Pillow reads them: only LibRaw
# was tried on a file the first bytes did not name (drewnoakes/metadata-extractor-images' samples of each).


@pytest.mark.parametrize("fmt, suffix, name, save", [
    ("JPEG2000", ".jp2", "jp2", {"irreversible": False}),
    ("JPEG2000", ".j2c", "jp2", {"no_jp2": True}),  # a bare codestream
    ("PPM", ".ppm", "pnm", {}),
    ("TGA", ".tga", "tga", {}),
    ("PCX", ".pcx", "pcx", {}),
])
def test_archival_raster_formats_are_developed(tmp_path: Path, fmt: str, suffix: str, name: str,
                                               save: dict) -> None:
    from skimage import data

    from pipeline.kernel.ingest import hash_file, sniff_format

    rgb8 = data.astronaut()[::2, ::2]
    path = tmp_path / f"astronaut{suffix}"
    Image.fromarray(rgb8).save(path, fmt, **save)
    assert sniff_format(hash_file(path)[1], suffix) == (name, SourceKind.RASTER)
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    assert decoded.rgb.shape == rgb8.shape
    # The same pixels as the picture they were saved from (JPEG 2000 losslessly here, the others exactly).
    expected = srgb_to_linear(rgb8.astype(np.float32) / 255.0)
    assert float(np.abs(decoded.rgb - expected).max()) < 1e-3


def test_a_tga_is_known_by_its_extension_only(tmp_path: Path) -> None:
    from pipeline.kernel.ingest import hash_file, sniff_format

    path = tmp_path / "render.tga"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path, "TGA")
    head = hash_file(path)[1]
    assert sniff_format(head, ".tga")[0] == "tga"
    assert sniff_format(head, ".bin")[1] is SourceKind.UNKNOWN  # no magic number: left for LibRaw to try


def test_a_format_pillow_names_but_postprod_does_not_develop_is_named(tmp_path: Path) -> None:
    path = tmp_path / "favicon.ico"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path, "ICO")
    with pytest.raises(InputError, match=r"a file in ICO format, not a picture postprod develops \(camera RAWs"):
        decode_proxy(path, SourceKind.UNKNOWN, 1600, 200_000_000)
    psd = tmp_path / "retouch.psd"  # a Photoshop document's signature and version: named even where Pillow fails
    psd.write_bytes(b"8BPS\x00\x01" + bytes(200))
    with pytest.raises(InputError, match=r"a file in PSD \(Photoshop\) format, not a picture postprod develops"):
        decode_proxy(psd, SourceKind.UNKNOWN, 1600, 200_000_000)
    junk = tmp_path / "notes.bin"
    junk.write_bytes(b"just some text, no picture" * 100)
    with pytest.raises(InputError, match="neither LibRaw nor Pillow recognises this file"):
        decode_proxy(junk, SourceKind.UNKNOWN, 1600, 200_000_000)



@pytest.mark.parametrize(("name", "head", "said"), [
    ("merge.exr", b"\x76\x2f\x31\x01\x02\x00\x00\x00channels", "an OpenEXR picture .*16-bit TIFF"),
    ("merge.hdr", b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n", "a Radiance HDR picture .*tone-mapped"),
    ("brief.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "a PDF document, not a picture"),
    ("logo.svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64">', "an SVG drawing"),
    ("scan.dcm", bytes(128) + b"DICM\x02\x00\x00\x00", "a DICOM medical image"),
])
def test_formats_no_decoder_reads_are_named_with_what_to_deliver(tmp_path: Path, name: str, head: bytes,
                                                                  said: str) -> None:
    # libvips's test images, run through postprod: an OpenEXR and a Radiance HDR merge, PDFs, SVGs and a DICOM
    # were each "not an image: neither LibRaw nor Pillow recognises this file".
    path = tmp_path / name
    path.write_bytes(head + bytes(range(256)) * 4)
    with pytest.raises(InputError, match=said):
        decode_proxy(path, SourceKind.UNKNOWN, 1600, 200_000_000)


def test_a_file_of_a_developed_format_pillow_cannot_open_is_named_by_its_format(tmp_path: Path) -> None:
    # libvips's 17000 x 17000 px AVIF and Pillow's damaged PNGs and GIFs were "not an image format Pillow or LibRaw
    # can read", though their first bytes say what they are.
    path = tmp_path / "cut.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDX" + bytes(64))
    with pytest.raises(InputError, match="^a file in PNG format that Pillow cannot open: damaged, or a variant"):
        decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)


def test_a_damaged_jpeg_xl_is_a_failed_input_not_a_crash(tmp_path: Path) -> None:
    # The JPEG XL plugin raises RuntimeError ("Generic Error. Please build libjxl from source...") on a file it
    # cannot decode (ExifTool's test JPEG XL stopped a whole run with it): the file's failed row, in a user's words.
    path = tmp_path / "cut.jxl"
    path.write_bytes(b"\xff\x0a" + bytes(range(256)) * 8)  # a JPEG XL codestream's signature, then no picture
    with pytest.raises(InputError, match=r"^corrupt or truncated image: the JXL decoder failed \(Generic Error\)$"):
        decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)


def test_files_of_developed_formats_that_reach_the_refusal_are_told_as_they_are(tmp_path: Path) -> None:
    from pipeline.kernel.ingest import hash_file, sniff_format

    # Pillow's own test images, run through postprod as a new user would: an icon was named "TGA" (Pillow's TGA
    # plugin accepts almost any header), a PFM was "not a picture postprod develops (... Netpbm ...)", and a BigTIFF
    # was refused as "a file in TIFF format".
    icon = tmp_path / "app.ico"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(icon, "ICO")
    with pytest.raises(InputError, match="a file in ICO format, not a picture postprod develops"):
        decode_proxy(icon, SourceKind.UNKNOWN, 1600, 200_000_000)
    pfm = tmp_path / "merge.pfm"
    Image.fromarray(np.full((32, 32), 0.5, np.float32), "F").save(pfm, "PPM")
    with pytest.raises(InputError, match="a 32-bit floating-point PFM in grey colour .*HDR"):
        decode_proxy(pfm, SourceKind.UNKNOWN, 1600, 200_000_000)
    colour = tmp_path / "merge_rgb.pfm"  # a colour PFM, which Pillow does not read (OpenImageIO's test-1.pfm)
    colour.write_bytes(b"PF\n4 4\n-1.0\n" + np.full((4, 4, 3), 0.5, "<f4").tobytes())
    with pytest.raises(InputError, match="a 32-bit floating-point PFM in RGB colour .*HDR"):
        decode_proxy(colour, SourceKind.UNKNOWN, 1600, 200_000_000)
    big = tmp_path / "scan.tif"
    pixels = np.random.default_rng(3).integers(0, 255, (48, 64, 3), np.uint8)
    Image.fromarray(pixels).save(big, "TIFF", big_tiff=True)
    fmt, kind = sniff_format(hash_file(big)[1], ".tif")
    assert (fmt, kind) == ("tiff", SourceKind.RASTER)
    decoded = decode_proxy(big, kind, 1600, 200_000_000)
    assert decoded.rgb.shape == (48, 64, 3)


# --- transparency ---------------------------------------------------------------------------------------------------


def _cutout(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """scikit-image's coffee cup cut out of its table on a transparent background (black under it, as image
    editors leave it), and the mask of the cup."""
    from skimage import data

    rgb8 = data.coffee()
    h, w = rgb8.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    cup = ((xx - w * 0.45) / (w * 0.33)) ** 2 + ((yy - h * 0.45) / (h * 0.42)) ** 2 < 1
    rgba = np.dstack([np.where(cup[..., None], rgb8, 0), np.where(cup, 255, 0)]).astype(np.uint8)
    path = tmp_path / "cup.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return path, cup


def test_transparency_is_flattened_onto_white_with_its_opacity_kept(tmp_path: Path) -> None:
    # A cut-out was delivered on black (what the transparent pixels held), flagged for its crushed shadows.
    path, cup = _cutout(tmp_path)
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    assert decoded.opacity is not None and decoded.opacity.shape == cup.shape
    assert np.array_equal(decoded.opacity >= 0.5, cup)
    assert float(decoded.rgb[~cup].min()) == pytest.approx(1.0)  # white where transparent
    rgb8 = np.asarray(Image.open(path).convert("RGB"))
    assert np.allclose(decoded.rgb[cup], srgb_to_linear(rgb8[cup].astype(np.float32) / 255), atol=1e-6)
    rgb, _ = decode_raster(path, None, 200_000_000)  # the renderer's decode: the same flattened picture
    assert np.allclose(rgb, decoded.rgb, atol=1e-6)
    # Downscaled, the opacity is averaged as the pixels are; an opaque picture has none.
    small = decode_proxy(path, SourceKind.RASTER, 100, 200_000_000)
    assert small.opacity is not None and small.opacity.shape == small.rgb.shape[:2]
    assert 0.0 < float(small.opacity.mean()) < 1.0
    opaque = tmp_path / "cup.jpg"
    Image.open(path).convert("RGB").save(opaque)
    assert decode_proxy(opaque, SourceKind.RASTER, 1600, 200_000_000).opacity is None


def test_a_transparent_palette_entry_is_flattened_too(tmp_path: Path) -> None:
    pal = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8)[None, :], (64, 1)), "L").convert("P")
    pal.info["transparency"] = 0
    path = tmp_path / "logo.gif"
    pal.save(path, transparency=0)
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    assert decoded.opacity is not None and float(decoded.opacity[:, 0].max()) == 0.0
    assert float(decoded.rgb[:, 0].min()) == pytest.approx(1.0)


def test_a_16_bit_grey_png_with_a_transparent_level_keeps_its_opaque_part(tmp_path: Path) -> None:
    # PngSuite's tbwn0g16 (16-bit grey, tRNS at white, 44 % transparent) was refused as "every pixel is fully
    # transparent": Pillow's RGBA of a 16-bit grey leaves every alpha 0.
    grey = np.tile(np.linspace(0, 60000, 64).astype(np.uint16)[None, :], (48, 1))
    grey[:, :16] = 65535
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path, transparency=65535)
    assert Image.open(path).mode == "I;16"
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    assert decoded.opacity is not None
    assert float(decoded.opacity[:, :16].max()) == 0.0 and float(decoded.opacity[:, 16:].min()) == 1.0
    assert float(decoded.rgb[:, :16].min()) == pytest.approx(1.0)  # white where transparent
    assert np.allclose(decoded.rgb[:, 16:, 1], srgb_to_linear(grey[:, 16:] / 65535.0), atol=1e-6)
    rgb, _ = decode_raster(path, None, 200_000_000)  # the renderer's decode: the same flattened picture
    assert np.allclose(rgb, decoded.rgb, atol=1e-6)


def test_a_wholly_transparent_picture_is_refused_as_one(tmp_path: Path) -> None:
    # Flattened onto white it was refused as "a constant image", which did not say why.
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = np.arange(64, dtype=np.uint8)[None, :, None]  # colour under an alpha of 0 everywhere
    path = tmp_path / "empty.png"
    Image.fromarray(rgba, "RGBA").save(path)
    with pytest.raises(InputError, match="fully transparent"):
        decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)


def _set_tiff_shorts(path: Path, tag: int, *values: int) -> None:
    """Set a little-endian TIFF's SHORT tag ``tag`` (in its entry for one or two values, else where it points)."""
    data = bytearray(path.read_bytes())
    assert data[:2] == b"II"
    ifd = struct.unpack_from("<I", data, 4)[0]
    for k in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * k
        if struct.unpack_from("<H", data, entry)[0] == tag:
            at = entry + 8 if len(values) <= 2 else struct.unpack_from("<I", data, entry + 8)[0]
            struct.pack_into(f"<{len(values)}H", data, at, *values)
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"no tag {tag}")


def test_a_grey_tiff_with_premultiplied_alpha_is_read(tmp_path: Path) -> None:
    # libtiff's grey-with-associated-alpha sample (Pillow's mode "La") was refused as "corrupt or truncated image:
    # conversion from La to L not supported".
    la = np.zeros((48, 64, 2), np.uint8)
    la[:, :32] = (60, 255)  # opaque
    la[:, 32:] = (100, 128)  # half transparent, premultiplied: its grey is 100 / (128 / 255) = 199
    path = tmp_path / "grey_alpha.tif"
    Image.fromarray(la, "LA").save(path)
    _set_tiff_shorts(path, 338, 1)  # ExtraSamples: associated (premultiplied) alpha, which Pillow cannot write
    assert Image.open(path).mode == "La"
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    assert decoded.opacity is not None
    assert float(decoded.opacity[:, :32].min()) == 1.0 and float(decoded.opacity[:, 32:].max()) < 0.51
    shown = srgb_to_linear(np.float32([60, (199 * 128 + 255 * 127) / 255]) / 255)  # flattened onto white
    assert np.allclose(decoded.rgb[:, :32], shown[0], atol=2e-3)
    assert np.allclose(decoded.rgb[:, 32:], shown[1], atol=2e-3)


def test_a_tiff_in_a_codec_this_installation_lacks_is_named_not_called_corrupt(tmp_path: Path) -> None:
    # libtiff's WebP-compressed sample read "corrupt or truncated image: decoder error -2" (this Pillow's libtiff is
    # built without WebP): a valid picture called damaged.
    path = tmp_path / "webp.tif"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(path)
    _set_tiff_shorts(path, 259, 50001)  # Compression: none -> WebP
    with pytest.raises(InputError, match="a TIFF compressed with WebP, which this installation's TIFF decoder does "
                                         "not read .*: save it again with LZW"):
        decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    damaged = tmp_path / "damaged.tif"  # a TIFF in a codec every libtiff has still reads as damaged
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(damaged, compression="tiff_lzw")
    data = bytearray(damaged.read_bytes())
    data[8:24] = bytes(range(255, 239, -1))  # the LZW stream's first codes (the data follows the header)
    damaged.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt or truncated image"):
        decode_proxy(damaged, SourceKind.RASTER, 1600, 200_000_000)


def test_a_12_bit_jpeg_is_named(tmp_path: Path) -> None:
    # libjpeg-turbo's 12-bit sample read "a file in JPEG format that Pillow cannot open: damaged, or a variant".
    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 4] = 12  # its sample precision
    data[sof:sof] = b"\xff\xff"  # and fill bytes before its marker, as the standard allows
    sof += 2
    path = tmp_path / "twelve.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="a 12-bit JPEG .* that Pillow cannot decode: save it as a 16-bit TIFF"):
        decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    data[sof + 1] = 0xC3  # lossless
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="a lossless JPEG"):
        decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)


def test_a_tga_whose_alpha_is_unused_is_read_opaque(tmp_path: Path) -> None:
    # The TGA test suite's 32-bit pictures (OpenImageIO's CTC32, UTC32: alpha 0 everywhere, as writers that store no
    # alpha leave it) were refused as "every pixel is fully transparent".
    rgba = np.zeros((32, 48, 4), np.uint8)
    rgba[..., 0] = np.arange(48, dtype=np.uint8)[None, :] * 5
    rgba[..., 1] = 90
    path = tmp_path / "unused.tga"
    Image.fromarray(rgba, "RGBA").save(path)
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    assert decoded.opacity is None
    assert np.allclose(decoded.rgb, srgb_to_linear(rgba[..., :3] / 255.0), atol=1e-6)
    png = tmp_path / "unused.png"  # a PNG's alpha of 0 is transparency, not an unused byte
    Image.fromarray(rgba, "RGBA").save(png)
    with pytest.raises(InputError, match="fully transparent"):
        decode_proxy(png, SourceKind.RASTER, 1600, 200_000_000)


def test_a_tiff_of_12_bit_samples_is_named_by_its_depth(tmp_path: Path) -> None:
    # OpenImageIO's libtiffpic depth series (2- to 14-bit samples) read "a TIFF in RGB colour that Pillow cannot
    # decode: save it as an RGB TIFF or JPEG", of a TIFF that was RGB already.
    path = tmp_path / "twelve.tif"
    Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(path)
    _set_tiff_shorts(path, 258, 12, 12, 12)  # BitsPerSample
    with pytest.raises(InputError, match="a TIFF of 12-bit samples in RGB colour that Pillow cannot decode .*: save "
                                         "it at 8 or 16 bits"):
        decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)


def _tiff_12_bit_rgb(path: Path, rgb12: np.ndarray) -> None:
    """An uncompressed little-endian TIFF of 12-bit RGB samples (``rgb12``, (h, w, 3), w even), as a scanner writes one:
    Pillow cannot open it."""
    h, w, _ = rgb12.shape
    a, b = (rgb12.reshape(-1, 2)[:, k].astype(np.uint32) for k in (0, 1))
    data = np.stack([a >> 4, ((a & 15) << 4) | (b >> 8), b & 255], axis=1).astype(np.uint8).tobytes()
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 3, 134), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 140),
               (277, 3, 1, 3), (278, 4, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, n) + (struct.pack("<HH", value, 0) if kind == 3 and n == 1
                                             else struct.pack("<I", value)) for tag, kind, n, value in entries)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + struct.pack("<3H", 12, 12, 12)
                     + data)


def _ramps(red_step: int, green_step: int, blue: int) -> np.ndarray:
    """A 24 x 32 RGB picture of 16-bit integers: red rising across, green down, blue flat."""
    rgb = np.zeros((24, 32, 3), np.uint16)
    rgb[..., 0] = np.arange(32, dtype=np.uint16)[None, :] * red_step
    rgb[..., 1] = np.arange(24, dtype=np.uint16)[:, None] * green_step
    rgb[..., 2] = blue
    return rgb


def test_tiffs_pillow_cannot_decode_are_read_through_opencv(tmp_path: Path) -> None:
    # OpenImageIO's libtiffpic: 10-, 12- and 14-bit RGB TIFFs (a scanner's) and a Fujifilm camera's YCbCr 4:2:2 TIFF
    # (dscf0013) were refused ("cannot decode", "truncated"); OpenCV's libtiff reads them.
    rgb12 = _ramps(128, 170, 2000)  # 12-bit levels
    path = tmp_path / "scan12.tif"
    _tiff_12_bit_rgb(path, rgb12)
    with pytest.raises(Exception):  # noqa: B017  (the premise: Pillow cannot open it)
        Image.open(path).load()
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    assert decoded.rgb.shape == (24, 32, 3) and decoded.meta.width == 32 and decoded.meta.height == 24
    assert np.allclose(decoded.rgb, srgb_to_linear(rgb12 / 4095.0), atol=2e-3)
    # Damaged mid-stream, OpenCV returns the rows before the damage and black after: that is no picture to deliver.
    # An 8-bit LZW TIFF (Pillow opens it, its decode fails) and the 12-bit one cut short keep their refusals.
    lzw = tmp_path / "damaged_lzw.tif"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 300, 3), np.uint8)).save(
        lzw, compression="tiff_lzw")
    data = lzw.read_bytes()
    ifd = struct.unpack_from("<I", data, 4)[0]  # after the strips: the data's last 40 % zeroed
    lzw.write_bytes(data[: int(ifd * 0.6)] + bytes(ifd - int(ifd * 0.6)) + data[ifd:])
    with pytest.raises(InputError, match="corrupt or truncated image"):
        decode_proxy(lzw, SourceKind.RASTER, 1600, 200_000_000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 400] + bytes(400))
    with pytest.raises(InputError, match="12-bit samples"):
        decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)


def test_a_16_bit_tiff_stored_in_planes_is_read_not_as_noise(tmp_path: Path) -> None:
    # OpenImageIO's rgb-planar-16 (Photoshop's Pixel Order: Per Channel) was delivered as noise: OpenCV and Pillow
    # misread 16-bit samples stored one plane per channel. tifffile reads them; a CMYK one is refused.
    import tifffile

    rgb16 = _ramps(2000, 2500, 30000)
    path = tmp_path / "planes16.tif"
    tifffile.imwrite(path, np.moveaxis(rgb16, -1, 0), photometric="rgb", planarconfig="separate")
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    assert np.allclose(decoded.rgb, srgb_to_linear(rgb16 / 65535.0), atol=1e-4)
    cmyk = tmp_path / "cmyk_planes16.tif"
    tifffile.imwrite(cmyk, np.full((4, 24, 32), 20000, np.uint16), photometric="separated", planarconfig="separate")
    with pytest.raises(InputError, match="a 16-bit TIFF in CMYK colour stored as separate planes"):
        decode_proxy(cmyk, SourceKind.RASTER, 1600, 200_000_000)


def _box(kind: bytes, payload: bytes, full: bool = False) -> bytes:
    """An ISOBMFF box (a full box with version 0 and no flags when ``full``)."""
    body = (b"\x00\x00\x00\x00" if full else b"") + payload
    return struct.pack(">I", 8 + len(body)) + kind + body


def test_an_avifs_clean_aperture_is_read_from_its_boxes() -> None:
    # Link-U's kimono.crop.avif: a 722 x 1024 coded picture whose clap shows 385 x 330 of it (its README's numbers).
    from pipeline.imaging.decode import avif_clean_aperture

    clap = _box(b"clap", struct.pack(">IIIIiIiI", 385, 1, 330, 1, 207, 2, -308, 1))
    ispe = _box(b"ispe", struct.pack(">II", 722, 1024), full=True)
    ipma = _box(b"ipma", struct.pack(">IHBBB", 1, 1, 2, 0x01, 0x82), full=True)  # item 1: ispe, clap (essential)
    meta = _box(b"meta", _box(b"pitm", struct.pack(">H", 1), full=True)
                + _box(b"iprp", _box(b"ipco", ispe + clap) + ipma), full=True)
    head = _box(b"ftyp", b"avif\x00\x00\x00\x00avifmif1") + meta
    assert avif_clean_aperture(head, (722, 1024)) == (272, 39, 657, 369)
    assert avif_clean_aperture(head.replace(b"clap", b"clip"), (722, 1024)) is None  # no aperture: the whole picture
    other = head.replace(struct.pack(">IHBBB", 1, 1, 2, 0x01, 0x82), struct.pack(">IHBBB", 1, 2, 2, 0x01, 0x82))
    assert avif_clean_aperture(other, (722, 1024)) is None  # the aperture of another item


def test_an_avif_is_delivered_as_its_clean_aperture_shows_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow's AVIF plugin turns a picture by its irot and imir but ignores its clap: the coded frame was delivered.
    import pipeline.imaging.decode as decode

    rgb8 = np.zeros((64, 96, 3), np.uint8)
    rgb8[16:48, 24:72] = (200, 120, 60)  # the aperture's content; black outside it
    path = tmp_path / "framed.avif"
    Image.fromarray(rgb8).save(path, quality=100)
    monkeypatch.setattr(decode, "avif_clean_aperture", lambda head, size: (24, 16, 72, 48))
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    assert decoded.rgb.shape == (32, 48, 3) and (decoded.meta.width, decoded.meta.height) == (48, 32)
    assert float(decoded.rgb.min()) > 0.02  # none of the black frame


def test_a_png_with_megabytes_of_metadata_is_read(tmp_path: Path) -> None:
    # exiv2's ReaganLargePng.png (a 1.6 MB ICC profile) was "corrupt or truncated image: Decompressed data too large
    # for PngImagePlugin.MAX_TEXT_CHUNK": Pillow's 1 MB cap on a chunk; Photoshop's XMP history runs to megabytes.
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("XML:com.adobe.xmp", "<x>" + "history " * 400_000 + "</x>", zip=True)  # 3.2 MB inflated
    path = tmp_path / "tagged.png"
    rgb8 = np.repeat(np.arange(48, dtype=np.uint8)[None, :, None] * 5, 32, axis=0).repeat(3, axis=2)
    Image.fromarray(rgb8).save(path, pnginfo=info)
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    assert np.allclose(decoded.rgb, srgb_to_linear(rgb8 / 255.0), atol=1e-6)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A grey PNG whose header says ``width`` x ``height`` and whose data stops after one black row."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
                     + chunk(b"IEND", b""))


def test_pillows_own_bomb_threshold_does_not_preempt_postprods_limit(tmp_path: Path) -> None:
    # A 200 MP phone HEIC (pillow_heif's test photo) was refused by Pillow at open, before the decode stage's
    # max_megapixels (250 by default) was read, as "could be decompression bomb DOS attack". In a fresh process, as
    # a run has it (the test session's imports leave Pillow's threshold off).
    path = tmp_path / "big.png"
    _png_header_only(path, 14_000, 13_000)  # 182 MP: above Pillow's 179
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipeline.imaging.decode import decode_proxy\n"
        "from pipeline.kernel.errors import InputError\n"
        "from pipeline.kernel.records import SourceKind\n"
        "for limit in (150_000_000, 250_000_000):\n"
        "    try:\n"
        "        decode_proxy(Path(sys.argv[1]), SourceKind.RASTER, 1600, limit)\n"
        "    except InputError as exc:\n"
        "        print(exc)\n"
    )
    said = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1]).stdout.splitlines()
    assert said[0] == "image is 14000x13000 (182 MP), above the 150 MP limit"
    assert len(said) == 2 and "bomb" not in said[1] and "limit" not in said[1]  # read: its data is missing


# --- 16-bit colour pictures -------------------------------------------------------------------------------------------


def _gradient16(alpha: bool = False) -> np.ndarray:
    """A dark 16-bit gradient (0 to 4000 of 65535 across 1024 columns: 1,024 levels, 16 at 8 bits), BGR(A)."""
    g = np.tile(np.linspace(0, 4000, 1024).astype(np.uint16)[None, :, None], (64, 1, 3))
    if alpha:
        a = np.full((64, 1024, 1), 65535, np.uint16)
        a[:, :100] = 0
        g = np.concatenate([g, a], axis=2)
    return g


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_16_bit_picture_keeps_its_16_bits(tmp_path: Path, suffix: str) -> None:
    # Pillow held it at 8 bits: a dark gradient's 1,024 levels came out as 16, before any exposure lift.
    import cv2

    path = tmp_path / f"master{suffix}"
    g = _gradient16()
    cv2.imwrite(str(path), g)
    rgb, _ = decode_raster(path, None, 200_000_000)
    assert len(np.unique(rgb[0, :, 0])) == 1024
    assert np.allclose(rgb, srgb_to_linear(g[..., ::-1].astype(np.float32) / 65535.0), atol=1e-6)
    # Downscaled in linear light, as the 8-bit pictures are.
    small = decode_proxy(path, SourceKind.RASTER, 256, 200_000_000).rgb
    assert small.shape == (16, 256, 3) and len(np.unique(small[0, :, 0])) == 256


def test_a_16_bit_picture_with_transparency_is_flattened_onto_white(tmp_path: Path) -> None:
    import cv2

    path = tmp_path / "cutout16.png"
    cv2.imwrite(str(path), _gradient16(alpha=True))
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    assert decoded.opacity is not None and float(decoded.opacity[:, :100].max()) == 0.0
    assert float(decoded.rgb[:, :100].min()) == pytest.approx(1.0)
    assert len(np.unique(decoded.rgb[0, 100:, 0])) == 924


@pytest.mark.parametrize("space", ["adobe_rgb", "display_p3"])
def test_a_16_bit_picture_in_another_colour_space_is_converted_at_16_bits(tmp_path: Path, space: str) -> None:
    # Pillow's LittleCMS converts colour pictures at 8 bits only; a matrix/TRC profile (Adobe RGB, ProPhoto,
    # Display P3) is applied here in floating point, and agrees with LittleCMS on a real photo.
    import tifffile
    from skimage import data

    from pipeline.imaging.color import linear_to_srgb

    astronaut = data.astronaut()
    path = tmp_path / f"{space}.tif"
    tifffile.imwrite(path, astronaut.astype(np.uint16) * 257, photometric="rgb",
                     extratags=[(34675, 7, None, icc_profile(space), True)])
    rgb, _ = decode_raster(path, None, 200_000_000)
    transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(icc_profile(space))),
                                        ImageCms.createProfile("sRGB"), "RGB", "RGB")
    lcms = np.asarray(ImageCms.applyTransform(Image.fromarray(astronaut), transform), dtype=np.float32) / 255
    assert float(np.abs(linear_to_srgb(np.clip(rgb, 0, 1)) - lcms).max()) < 1.0 / 255
    # ... at 16 bits: the dark gradient's levels are kept.
    gradient = tmp_path / f"{space}_gradient.tif"
    tifffile.imwrite(gradient, _gradient16()[..., ::-1].copy(), photometric="rgb",
                     extratags=[(34675, 7, None, icc_profile(space), True)])
    assert len(np.unique(decode_raster(gradient, None, 200_000_000)[0][0, :, 1])) > 900


def test_only_matrix_shaper_rgb_profiles_are_read() -> None:
    from pipeline.imaging.icc import read_matrix_shaper

    srgb = read_matrix_shaper(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())  # a "para" curve
    assert srgb is not None and srgb.colorants[1].sum() == pytest.approx(1.0, abs=1e-3)  # Y of white
    assert read_matrix_shaper(ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()) is None
    assert read_matrix_shaper(b"not a profile" * 20) is None


def test_a_16_bit_tiff_turned_by_its_orientation_tag(tmp_path: Path) -> None:
    # OpenCV reads the stored pixels (IMREAD_UNCHANGED ignores the orientation): the decode turns them, as it
    # turns Pillow's.
    import tifffile

    g = _gradient16()[..., ::-1].copy()  # 64 rows, 1024 columns, dark on the left
    path = tmp_path / "portrait16.tif"
    tifffile.imwrite(path, g, photometric="rgb", extratags=[(274, 3, 1, 6, True)])  # Orientation 6: turn 90 CW
    rgb, meta = decode_raster(path, None, 200_000_000)
    assert meta.orientation == 6 and rgb.shape == (1024, 64, 3)
    assert float(rgb[0, :, 0].mean()) < float(rgb[-1, :, 0].mean())  # the dark end is now at the top
    assert len(np.unique(rgb[:, 0, 0])) == 1024
