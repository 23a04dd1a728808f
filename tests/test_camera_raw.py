"""Camera Raw's starting point: as-shot temperature/tint, baseline exposure, default crop.

Expected values come from outside postprod: Adobe Camera Raw's own XMP for a
DNG it wrote (tests/data/adobe_xmp/README.md, reference 06), colour-hdri's
test vectors for the DNG SDK maths, the CIE/DNG standard illuminants, and
LibRaw's and the camera's own crop tables for the shared Canon CRW files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rawpy

from pipeline.imaging.camera_raw import (
    D50_XY,
    D65_XY,
    STD_A_XY,
    ColourSpec,
    DngColourTags,
    WhiteBalanceSource,
    camera_raw_baseline,
    read_dng_colour_tags,
    temperature_tint_to_xy,
    xy_to_temperature_tint,
)
from pipeline.imaging.dng import dng_bytes, mosaic

ADOBE = Path(__file__).parent / "data" / "adobe_xmp"


# --- tier 1: the temperature scale -----------------------------------------------------

@pytest.mark.parametrize("xy, temperature, tint", [
    # The DNG SDK's own standard white points; Camera Raw shows D65 as 6500 K / +10.
    (STD_A_XY, 2855, 0), (D50_XY, 5001, 10), (D65_XY, 6504, 10),
])  # fmt: skip
def test_standard_illuminants_on_adobes_scale(xy, temperature, tint) -> None:
    t, n = xy_to_temperature_tint(*xy)
    assert t == pytest.approx(temperature, abs=1)
    assert n == pytest.approx(tint, abs=0.5)


def test_temperature_tint_round_trip() -> None:
    for t in (2000, 2850, 3200, 4300, 5500, 6500, 9000, 20000, 50000):
        for n in (-150, -20, 0, 13, 150):
            back = xy_to_temperature_tint(*temperature_tint_to_xy(t, n))
            assert back[0] == pytest.approx(t, rel=2e-3) and back[1] == pytest.approx(n, abs=0.1)


# colour-hdri's test vectors (colour-science/colour-hdri @ 01155188,
# colour_hdri/models/tests/test_adobe_dng.py, BSD-3): Canon EOS 5D Mark II matrices.
CM1 = np.array([[0.5309, -0.0229, -0.0336], [-0.6241, 1.3265, 0.3337], [-0.0817, 0.1215, 0.6664]])
CM2 = np.array([[0.4716, 0.0603, -0.0830], [-0.7798, 1.5474, 0.2480], [-0.1496, 0.1937, 0.6651]])
CC = np.diag([0.9603, 1.0, 0.9664])


@pytest.mark.parametrize("cc, neutral", [
    (None, [0.41306999, 1.0, 0.64646500]),
    (CC, [0.39667111, 1.0, 0.62474378]),
])  # fmt: skip
def test_neutral_to_xy_matches_colour_hdri(cc, neutral) -> None:
    tags = DngColourTags(color_matrix1=CM1, color_matrix2=CM2, illuminant1=17, illuminant2=21,
                         camera_calibration1=cc, camera_calibration2=cc)
    spec = ColourSpec.from_dng(tags)
    assert spec.neutral_to_xy(np.array(neutral)) == pytest.approx((0.32816244, 0.34698169), abs=1e-7)
    assert spec.xy_to_neutral((0.32816244, 0.34698169)) == pytest.approx(neutral, abs=1e-7)


def test_camera_calibration_is_ignored_for_another_profile() -> None:
    tags = DngColourTags(color_matrix1=CM1, color_matrix2=CM2, illuminant1=17, illuminant2=21,
                         camera_calibration1=CC, camera_calibration2=CC,
                         camera_calibration_signature="com.adobe", profile_calibration_signature="Other")
    xy = ColourSpec.from_dng(tags).neutral_to_xy(np.array([0.41306999, 1.0, 0.646465]))
    assert xy == pytest.approx((0.32816244, 0.34698169), abs=1e-7)


# --- tier 2: a DNG Camera Raw wrote, and the shared RAWs --------------------------------

def _adobe_dng_tags() -> dict:
    return json.loads((ADOBE / "06_acr11.3.1_canon_eos_6d.dng-tags.json").read_text())


def _dng_with_adobes_tags(path: Path) -> Path:
    """A DNG carrying the colour tags of Camera Raw 11.3.1's DNG (reference 06), read back by our reader."""
    t = _adobe_dng_tags()
    rng = np.random.default_rng(3)
    cfa = mosaic(rng.uniform(0.1, 0.8, (64, 96, 3)))
    extra = {
        50722: (10, t["ColorMatrix2"]), 50778: (3, [t["CalibrationIlluminant1"]]),
        50779: (3, [t["CalibrationIlluminant2"]]), 50723: (10, t["CameraCalibration1"]),
        50724: (10, t["CameraCalibration2"]), 50931: (2, t["CameraCalibrationSignature"]),
        50932: (2, t["ProfileCalibrationSignature"]), 50727: (5, t["AnalogBalance"]),
    }
    data = dng_bytes((cfa * 60000).astype(np.uint16), color_matrix1=np.reshape(t["ColorMatrix1"], (3, 3)),
                     as_shot_neutral=t["AsShotNeutral"], baseline_exposure=t["BaselineExposure"],
                     extra_tags=extra)
    path.write_bytes(data)
    return path


def test_as_shot_of_camera_raws_own_dng(tmp_path: Path) -> None:
    """Camera Raw 11.3.1 shows this DNG as "As Shot 6200 / -1" (its own XMP); it rounds to 50 K."""
    path = _dng_with_adobes_tags(tmp_path / "acr.dng")
    tags = read_dng_colour_tags(path)
    assert tags.illuminant1 == 17 and tags.illuminant2 == 21 and tags.profile_calibration_signature == "com.adobe"
    with rawpy.imread(str(path)) as raw:
        b = camera_raw_baseline(raw, path, is_dng=True)
    expected = _adobe_dng_tags()["xmp"]
    assert b.wb_source == WhiteBalanceSource.DNG
    assert round(b.as_shot_temperature_k / 50) * 50 == expected["Temperature"]
    assert round(b.as_shot_tint) == expected["Tint"]
    assert b.baseline_exposure_ev == pytest.approx(0.25)


def test_without_analog_balance_the_answer_is_far_off() -> None:
    """AnalogBalance and CameraCalibration are part of Camera Raw's model: dropping them is 4000 K off."""
    t = _adobe_dng_tags()
    tags = DngColourTags(color_matrix1=np.reshape(t["ColorMatrix1"], (3, 3)),
                         color_matrix2=np.reshape(t["ColorMatrix2"], (3, 3)), illuminant1=17, illuminant2=21)
    temperature, _ = xy_to_temperature_tint(*ColourSpec.from_dng(tags).neutral_to_xy(np.array(t["AsShotNeutral"])))
    assert abs(temperature - t["xmp"]["Temperature"]) > 3000


def test_shared_canon_raws(raw_dir: Path) -> None:
    """Canon G2/S40 CRW: LibRaw's visible 2312x1720 holds the camera's 2272x1704 frame at (20, 8)."""
    seen = {}
    for name in ("Canon_PowerShot_G2_CRW_0304.CRW", "Canon_PowerShot_S40_CRW_0101.CRW"):
        path = raw_dir / name
        with rawpy.imread(str(path)) as raw:
            b = camera_raw_baseline(raw, path, is_dng=False)
        assert b.default_crop == (20.0, 8.0, 2272.0, 1704.0)
        assert b.wb_source == WhiteBalanceSource.LIBRAW and b.baseline_exposure_ev is None
        seen[name] = b.as_shot_temperature_k
    # Indoor frames of a colour chart under incandescent-ish light: warmer than daylight.
    assert all(3000 < t < 5000 for t in seen.values()), seen


def test_raws_without_colour_data_have_no_as_shot(raw_dir: Path) -> None:
    path = raw_dir / "Kodak_DC50_DC50IMG_DC0008L.KDC"
    with rawpy.imread(str(path)) as raw:
        b = camera_raw_baseline(raw, path, is_dng=False)
    assert b.as_shot_temperature_k is None and b.wb_source is None
    assert b.default_crop == (0.0, 0.0, 768.0, 512.0)


def test_truncated_dng_directory_is_a_value_error(tmp_path: Path) -> None:
    p = tmp_path / "cut.dng"
    p.write_bytes(b"II*\0" + (4000).to_bytes(4, "little"))
    with pytest.raises(ValueError, match="truncated"):
        read_dng_colour_tags(p)


def test_dng_is_recognised_by_its_dng_version(tmp_path: Path, raw_dir: Path) -> None:
    """The decode core does not pass the format: a DNG is told from other TIFF-based RAWs by DNGVersion."""
    path = _dng_with_adobes_tags(tmp_path / "acr.dng")
    with rawpy.imread(str(path)) as raw:
        assert camera_raw_baseline(raw, path).wb_source == WhiteBalanceSource.DNG
    crw = raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW"
    with rawpy.imread(str(crw)) as raw:
        assert camera_raw_baseline(raw, crw).wb_source == WhiteBalanceSource.LIBRAW
