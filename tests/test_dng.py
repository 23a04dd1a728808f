"""The DNG writer: LibRaw and exiftool must read what it writes as a camera's.

Decodes go through LibRaw as the pipeline's would (camera white balance, no
auto-brightening, linear), plus ``adjust_maximum_thr=0``: LibRaw otherwise
lowers the white point to the brightest photosite when that is above 75 % of
it, which would rescale a well-exposed test image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import rawpy

from pipeline.imaging.dng import dng_bytes, mosaic, rescale_raw_to_dng, write_dng, write_dng_from_linear_rgb
from pipeline.imaging.libraw_ids import read_raw_make_model

LINEAR_DECODE = dict(
    half_size=True, use_camera_wb=True, no_auto_bright=True, gamma=(1, 1), output_bps=16, adjust_maximum_thr=0
)
PATCH = 32


def decode(path: Path) -> np.ndarray:
    with rawpy.imread(str(path)) as raw:
        return raw.postprocess(**LINEAR_DECODE).astype(np.float64) / 65535.0


def patch_chart() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """8x12 flat patches of 32 px: neutral ones on even squares, colours between."""
    rng = np.random.default_rng(7)
    rgb = np.zeros((8 * PATCH, 12 * PATCH, 3))
    neutral = []
    for i in range(8):
        for j in range(12):
            if (i + j) % 2 == 0:
                value = np.full(3, rng.uniform(0.005, 0.98))
                neutral.append((i, j))
            else:
                value = rng.uniform(0.02, 0.95, 3)
            rgb[i * PATCH : (i + 1) * PATCH, j * PATCH : (j + 1) * PATCH] = value
    return rgb, neutral


def patch_means(img: np.ndarray, i: int, j: int, size: int) -> np.ndarray:
    m = size // 4  # stay clear of the demosaicked edges
    return img[i * size + m : (i + 1) * size - m, j * size + m : (j + 1) * size - m].mean(axis=(0, 1))


# --- tier 1: synthetic arrays -------------------------------------------------
@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("RGGB", [[10, 21], [21, 32]]),
        ("BGGR", [[30, 21], [21, 12]]),
        ("GRBG", [[20, 11], [31, 22]]),
        ("GBRG", [[20, 31], [11, 22]]),
    ],
)
def test_mosaic_keeps_the_filtered_channel(pattern: str, expected: list[list[int]]) -> None:
    # Value = 10 * (channel + 1) + (photosite index in the 2x2 block, 0..3 as 0, 1, 1, 2).
    rgb = np.zeros((2, 2, 3))
    for c in range(3):
        rgb[..., c] = 10 * (c + 1) + np.array([[0, 1], [1, 2]])
    assert mosaic(rgb, pattern).tolist() == expected


def test_mosaic_rejects_non_bayer() -> None:
    with pytest.raises(ValueError, match="pattern"):
        mosaic(np.zeros((4, 4, 3)), "RGBW")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        mosaic(np.zeros((4, 4)), "RGGB")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cfa=np.zeros((4, 4), np.float32)), "uint16"),
        (dict(pattern="RGBG"), "pattern"),
        (dict(black_level=70000), "black_level"),
        (dict(black_level=[1, 2, 3]), "black_level"),
        (dict(color_matrix1=np.eye(4)), "3x3"),
        (dict(as_shot_neutral=(1.0, 0.0, 1.0)), "positive"),
        (dict(orientation=9), "orientation"),
    ],
)
def test_write_dng_rejects_bad_input(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = dict(cfa=np.zeros((4, 4), np.uint16)) | kwargs
    with pytest.raises(ValueError, match=match):
        write_dng(tmp_path / "x.dng", **args)
    assert not list(tmp_path.iterdir()), "nothing may be left behind"


def test_linear_rgb_round_trips_through_libraw(tmp_path: Path) -> None:
    rgb, neutral = patch_chart()
    path = write_dng_from_linear_rgb(tmp_path / "chart.dng", rgb, white_balance=(2.1, 1.0, 1.6))
    out = decode(path)
    assert out.shape == (rgb.shape[0] // 2, rgb.shape[1] // 2, 3)
    errors, casts = [], []
    for i in range(8):
        for j in range(12):
            got, want = patch_means(out, i, j, PATCH // 2), rgb[i * PATCH, j * PATCH]
            errors.append(np.abs(got - want))
            if (i, j) in neutral and want[1] > 0.02:
                casts.append(np.abs(got / got[1] - 1.0))
    assert np.mean(errors) < 0.01 * 1.0  # 1 % of full scale
    assert np.max(errors) < 0.02
    assert np.max(casts) < 0.01  # neutral stays neutral: R/G and B/G within 1 %


@pytest.mark.parametrize("bits, white", [(14, 16383), (16, 65535)])
def test_levels_and_white_balance_are_written_as_a_camera_would(tmp_path: Path, bits: int, white: int) -> None:
    path = write_dng_from_linear_rgb(
        tmp_path / "x.dng", np.full((32, 32, 3), 0.5), white_balance=(2.0, 1.0, 1.5), bits=bits
    )
    with rawpy.imread(str(path)) as raw:
        assert raw.white_level == white
        assert list(raw.black_level_per_channel) == [2 ** (bits - 5)] * 4
        wb = raw.camera_whitebalance
        # LibRaw's multipliers are 1 / AsShotNeutral: the gains, up to a scale.
        assert wb[0] / wb[1] == pytest.approx(2.0, rel=1e-4)
        assert wb[2] / wb[1] == pytest.approx(1.5, rel=1e-4)
        # Grey 0.5 seen through a gain of 2: the red photosites record a quarter of full scale.
        black = 2 ** (bits - 5)
        assert raw.raw_image_visible[0, 0] == round(black + 0.25 * (white - black))


def test_per_position_black_level(tmp_path: Path) -> None:
    cfa = np.full((32, 48), 1000, np.uint16)  # LibRaw refuses images under 22 px a side
    path = write_dng(tmp_path / "b.dng", cfa, pattern="GRBG", black_level=[60, 64, 68, 62], white_level=4095)
    with rawpy.imread(str(path)) as raw:
        colors = raw.raw_colors_visible[:2, :2].reshape(-1)
        per_colour = raw.black_level_per_channel
        assert [per_colour[c] for c in colors] == [60, 64, 68, 62]


@pytest.mark.parametrize("orientation, turns", [(1, 0), (3, 2), (6, -1), (8, 1)])
def test_orientation_is_honoured(tmp_path: Path, orientation: int, turns: int) -> None:
    # A gradient that tells every rotation apart.
    h, w = 64, 96
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], axis=-1) * 0.8 + 0.1
    out = decode(write_dng_from_linear_rgb(tmp_path / "o.dng", rgb, orientation=orientation))
    expected = np.rot90(rgb[::2, ::2], k=turns)  # k=-1: a viewer turns orientation 6 clockwise
    assert out.shape == expected.shape
    assert np.abs(out - expected)[2:-2, 2:-2].mean() < 0.01


def test_same_inputs_same_bytes() -> None:
    cfa = (np.arange(64, dtype=np.uint16) * 50).reshape(8, 8)
    stamp = datetime(2024, 5, 18, 14, 30)
    assert dng_bytes(cfa, captured_at=stamp, iso=100) == dng_bytes(cfa, captured_at=stamp, iso=100)


def write_tagged(tmp_path: Path) -> Path:
    rgb = np.full((32, 48, 3), 0.3)
    return write_dng_from_linear_rgb(
        tmp_path / "tagged.dng",
        rgb,
        make="postprod demo",
        model="Synthetic DNG",
        captured_at=datetime(2024, 5, 18, 14, 30, 5),
        iso=400,
        exposure_time=1 / 125,
        f_number=2.8,
        focal_length=85.0,
    )


def test_shooting_data_read_back_by_libraw(tmp_path: Path) -> None:
    path = write_tagged(tmp_path)
    with rawpy.imread(str(path)) as raw:
        other = raw.other
        assert other.iso_speed == 400
        assert other.shutter_speed == pytest.approx(1 / 125, rel=1e-5)
        assert other.aperture == pytest.approx(2.8, rel=1e-5)
        assert other.focal_length == pytest.approx(85.0)
        assert other.timestamp == datetime(2024, 5, 18, 14, 30, 5)
    assert read_raw_make_model(path) == ("postprod demo", "Synthetic DNG")


def exiftool() -> str:
    found = shutil.which("exiftool")
    if found is None:
        message = "exiftool not installed (Debian: libimage-exiftool-perl)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_exiftool_validates_and_reads_the_tags(tmp_path: Path) -> None:
    path = write_tagged(tmp_path)
    result = subprocess.run(
        [exiftool(), "-j", "-n", "-validate", "-warning", "-a", "-FileType", "-Make", "-Model", "-ISO",
         "-ExposureTime", "-FNumber", "-DateTimeOriginal", "-DNGVersion", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    tags = json.loads(result.stdout)[0]
    assert tags["Validate"] == "0 0 0", tags.get("Warning")  # errors, warnings, minor warnings
    assert tags["FileType"] == "DNG"
    assert (tags["Make"], tags["Model"]) == ("postprod demo", "Synthetic DNG")
    assert tags["ISO"] == 400
    assert tags["ExposureTime"] == pytest.approx(1 / 125)
    assert tags["FNumber"] == pytest.approx(2.8)
    assert tags["DateTimeOriginal"] == "2024:05:18 14:30:05"
    assert tags["DNGVersion"] == "1 4 0 0"


# --- tier 2: real camera RAWs ---------------------------------------------------
@pytest.fixture(scope="module")
def crw(raw_dir: Path) -> Path:
    return raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW"


@pytest.fixture(scope="module")
def crw_decoded(crw: Path) -> np.ndarray:
    return decode(crw)


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_rescaled_crw_moves_exposure_by_the_factor(
    tmp_path: Path, crw: Path, crw_decoded: np.ndarray, factor: float
) -> None:
    out = decode(rescale_raw_to_dng(crw, tmp_path / "scaled.dng", factor))
    assert out.shape == crw_decoded.shape
    # Unclipped: every channel below 40 % in the original, so below 80 % at 2x;
    # and above the deep shadows, where rounding to whole ADC steps dominates.
    level = crw_decoded.max(axis=2)
    usable = (level < 0.4) & (crw_decoded.min(axis=2) > 0.01)
    assert usable.mean() > 0.2, "the test photo must have enough mid-tones"
    ratio = out[usable].mean(axis=0) / crw_decoded[usable].mean(axis=0)
    assert ratio == pytest.approx([factor] * 3, rel=0.03)
    assert np.log2(ratio.mean()) == pytest.approx(np.log2(factor), abs=0.05)  # the exposure_ev shift


def test_rescale_keeps_camera_metadata(tmp_path: Path, crw: Path) -> None:
    dst = rescale_raw_to_dng(crw, tmp_path / "same.dng", 1.0)
    with rawpy.imread(str(crw)) as a, rawpy.imread(str(dst)) as b:
        assert b.raw_image_visible.shape == a.raw_image_visible.shape
        assert np.array_equal(b.raw_image_visible, a.raw_image_visible)
        assert b.sizes.flip == a.sizes.flip
        assert b.other.iso_speed == a.other.iso_speed
        assert b.other.timestamp == a.other.timestamp
        assert np.allclose(b.rgb_xyz_matrix[:3], a.rgb_xyz_matrix[:3], atol=1e-5)
    assert read_raw_make_model(dst) == read_raw_make_model(crw)


def test_rescale_refuses_non_bayer_sensors(tmp_path: Path, raw_dir: Path) -> None:
    with pytest.raises(ValueError, match="only Bayer RAWs"):
        rescale_raw_to_dng(raw_dir / "RAW_KODAK_C330_FORMAT_NONE_YRGB.raw", tmp_path / "x.dng", 2.0)
    assert not (tmp_path / "x.dng").exists()


def test_rescale_refuses_bad_factor(tmp_path: Path, crw: Path) -> None:
    with pytest.raises(ValueError, match="factor"):
        rescale_raw_to_dng(crw, tmp_path / "x.dng", 0.0)
