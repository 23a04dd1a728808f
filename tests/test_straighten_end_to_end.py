"""Measure -> plan -> render levels a tilted real photo (the signs agree end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import rawpy

from pipeline.imaging.measure import line_tilts
from pipeline.kernel.run import RunSettings, process_shoot


@pytest.mark.parametrize("turn", [2.5, -2.0])
def test_tilted_photo_comes_out_level(raw_dir: Path, tmp_path: Path, turn: float) -> None:
    with rawpy.imread(str(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW")) as raw:  # a colour chart: many straight edges
        rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
    h, w = rgb.shape[:2]
    level = line_tilts(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255).horizon_tilt_deg
    # OpenCV turns counter-clockwise for a positive angle: horizontal lines then rise to the right.
    m = cv2.getRotationMatrix2D((w / 2, h / 2), turn, 1.0)
    tilted = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    cv2.imwrite(str(shoot / "tilted.png"), cv2.cvtColor(tilted, cv2.COLOR_RGB2BGR))
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local", chart="base"))
    (record,) = result.records
    assert record.lines.horizon_tilt_deg == pytest.approx(level + turn, abs=0.5)
    (st,) = [o for o in record.operations if o.kind == "straighten"]
    assert st.applied_by == "renderer"
    (export,) = record.exports
    out = cv2.imread(str(tmp_path / "out" / export.path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    # The turn undone (truth: the injected turn), then the export read again. The line measure on the
    # re-toned export (exposure and white balance changed, edges found differently) varies by about 0.3 deg.
    assert st.params["angle_deg"] == pytest.approx(level + turn, abs=0.5)
    after = line_tilts(out).horizon_tilt_deg
    assert after == pytest.approx(level, abs=0.6), f"tilt {level:+.2f} -> {level + turn:+.2f} -> {after:+.2f}"
    doc = json.loads(next((tmp_path / "out" / "instructions").glob("*.json")).read_text())
    assert doc["summary"].startswith("straighten") or "straighten" in doc["summary"]
