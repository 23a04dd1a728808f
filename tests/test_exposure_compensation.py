"""A camera JPEG's exposure compensation is the photographer's intent: kept, not corrected away.

Tier 1: records whose readings are written inline; tier 2: the EXIF of real and written files.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from planning_inputs import chart_with

from charts.loader import load_chart
from pipeline.imaging.decode import decode_proxy, exposure_compensation, raw_exif
from pipeline.kernel.records import ImageRecord, OperationKind, SourceKind
from pipeline.planning.plan import plan_shoot
from pipeline.planning.rules.exposure import compensation_kept

BASE = load_chart("base").chart


def _record(meter_ev: float, compensation: float | None, kind: SourceKind = SourceKind.RASTER,
            clipped_pct: float = 15.0) -> ImageRecord:
    # (A picture read a stop or more over clips about 15 % of its pixels: rules.exposure.bright_by_intent.)
    row = dict(source_path="a.jpg" if kind is SourceKind.RASTER else "a.dng", content_hash="0" * 64, file_size=1,
               format="jpeg" if kind is SourceKind.RASTER else "dng", source_kind=kind, width=3000, height=2000,
               exposure_ev=0.0, exposure_meter_ev=meter_ev, sharpness=100.0, lines_found=0, phash="0" * 16,
               clipped_highlights_pct=clipped_pct, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0,
               clipped_shadows_pct_b=0.0, exposure_compensation_ev=compensation)
    return ImageRecord.from_row(row, faces=[])


def _correction(record: ImageRecord, chart=BASE) -> float:  # noqa: ANN001
    plan_shoot([record], chart)
    return sum(float(o.params["ev"]) for o in record.operations if o.kind is OperationKind.EXPOSURE)


def test_a_jpeg_read_over_by_what_its_photographer_dialled_up_is_left_as_meant() -> None:
    # Read 1.6 EV over, shot at +4/3: 0.27 EV left, within the tolerance. Nothing to correct; the one number
    # in the manifest is what remains.
    rec = _record(1.6, 4 / 3)
    assert _correction(rec) == 0.0 and rec.plan.exposure_ev == pytest.approx(1.6 - 4 / 3)
    # Beyond the compensation, the rest is corrected, and the reason says what was kept.
    rec = _record(2.5, 1.0)
    assert _correction(rec) == pytest.approx(-1.5)
    (op,) = [o for o in rec.operations if o.kind is OperationKind.EXPOSURE]
    assert "+1.00 EV exposure compensation kept" in op.reason
    # Dialled down for a night street that reads under: kept the same way.
    assert _correction(_record(-1.0, -1.0)) == 0.0
    # Off the other way from the dial, the compensation explains nothing: corrected as without it.
    assert _correction(_record(-1.5, 1.0)) == pytest.approx(_correction(_record(-1.5, None))) == pytest.approx(1.5)


def test_a_raw_or_a_chart_that_says_no_is_judged_as_without_it() -> None:
    # A RAW's compensation protected its highlights at capture: the development undoes it.
    assert _correction(_record(-1.5, -1.0, SourceKind.RAW)) == pytest.approx(1.5)
    assert compensation_kept(_record(-1.5, -1.0, SourceKind.RAW), BASE, -1.5) == 0.0
    strict = chart_with(BASE, "exposure", keep_compensation=False)
    assert _correction(_record(1.6, 4 / 3), strict) == pytest.approx(-1.6)
    # Never more than the offset, never against it.
    assert compensation_kept(_record(0.5, 2.0), BASE, 0.5) == pytest.approx(0.5)
    assert compensation_kept(_record(0.5, -2.0), BASE, 0.5) == 0.0


def test_the_compensation_is_read_from_the_exif_of_rasters_and_raws(exposure_dir: Path, raw_dir: Path,
                                                                     tmp_path: Path) -> None:
    assert exposure_compensation("-1/3") == pytest.approx(-1 / 3) and exposure_compensation(b"0/1") == 0.0
    assert exposure_compensation(Fraction(2, 3)) == pytest.approx(2 / 3) and exposure_compensation(0.7) == 0.7
    assert exposure_compensation("x") is None and exposure_compensation("1/0") is None
    assert exposure_compensation(99) is None  # no camera's dial
    # A real upload: Floris van Lint's Canon EOS 600D, Program AE at +4/3.
    meta = decode_proxy(exposure_dir / "Floris van Lint-CC BY-NC 2.0.jpg", SourceKind.RASTER, 800, 200_000_000).meta
    assert meta.exposure_compensation_ev == pytest.approx(4 / 3)
    # A JPEG written with the tag, and one without it.
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9204] = IFDRational(-2, 3)
    for tagged in (True, False):
        path = tmp_path / f"tagged-{tagged}.jpg"
        picture = np.random.default_rng(3).integers(0, 256, (64, 96, 3), dtype=np.uint8)  # not a constant frame
        Image.fromarray(picture).save(path, "JPEG", exif=exif.tobytes() if tagged else b"")
        got = decode_proxy(path, SourceKind.RASTER, 800, 200_000_000).meta.exposure_compensation_ev
        assert got == pytest.approx(-2 / 3) if tagged else got is None
    # RAWs through exiv2: the shared DNG states 0/96 (none dialled); a Canon CRW keeps it in its maker notes only.
    def raw(name: str) -> float | None:
        return exposure_compensation(raw_exif(raw_dir / name).get("Exif.Photo.ExposureBiasValue"))

    assert raw("tinydng_colorchart.dng") == 0.0 and raw("Canon_PowerShot_G2_CRW_0304.CRW") is None


def test_a_bright_jpeg_whose_highlights_hold_their_detail_is_left_as_shot_and_flagged() -> None:
    # photoprism's pineapple on white: read 2.4 EV over, 1.7 % of its pixels clipped. A picture developed
    # that far over clips a seventh of them or more: this one was made bright, and a darkening greys it.
    rec = _record(2.37, None, clipped_pct=1.7)
    assert _correction(rec) == 0.0 and rec.plan.exposure_ev == pytest.approx(2.37)
    (flag,) = [o for o in rec.operations if o.kind is OperationKind.FLAG]
    assert flag.params["check"] == "exposure_bright" and "left as shot" in flag.reason
    # Clipped like an over-exposure, or a RAW (whose brightness nobody chose yet): corrected.
    assert _correction(_record(2.37, None, clipped_pct=15.0)) == pytest.approx(-2.0)
    assert _correction(_record(2.37, None, SourceKind.RAW, clipped_pct=1.7)) == pytest.approx(-2.0)
    # A smaller darkening is in question too since session 62 (under a stop the meter reads unclipped JPEGs over
    # more often than they are: tests/test_bright_by_intent.py): left as shot unless clipped, or a RAW.
    assert _correction(_record(0.8, None, clipped_pct=0.0)) == 0.0
    assert _correction(_record(0.8, None, clipped_pct=5.0)) == pytest.approx(-0.8)
    assert _correction(_record(0.8, None, SourceKind.RAW, clipped_pct=0.0)) == pytest.approx(-0.8)
