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
from pipeline.imaging.decode import decode_proxy, raw_white_balance_mode, white_balance_mode
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
