"""Lens findings: a lens soft on one side (decentring) and vignetting beyond the norm.

Tier 1: the lens field and the per-body rules on arrays with the expected
values inline. Tier 2: a generated series (real photos as DNGs from one body,
``benchmarks/equipment_corpus.build_lens_split``, a small sensor) through the
pipeline: the decentred lens is found on the right side, the vignetting
found, and neither finding is made on a series without them. The full-size
figures per split are in benchmarks/EQUIPMENT.md.
"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from benchmarks.equipment_corpus import ANALYSIS_GRAPH, Spec, build_lens_split, decentring_blur, vignetting_gain
from pipeline.equipment.findings import Body, FindingKind, FrameRef
from pipeline.equipment.lens import (
    LENS_MIN_FRAMES,
    LensStats,
    _radius2,
    corner_falloff_ev,
    lens_findings,
    lens_stats,
    side_detail_log2,
    sign_test_p,
    vignetting_norm_ev,
)
from pipeline.imaging.lens_field import lens_field
from pipeline.kernel.run import RunSettings, process_shoot

BODY = Body("SN1", "Make", "Model")


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    """A detailed linear scene (blurred noise at two scales), grey, 0.05-0.6."""
    rng = np.random.default_rng(seed)
    fine = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), 0.8)
    coarse = cv2.GaussianBlur(rng.random((h, w), dtype=np.float32), (0, 0), 6.0)
    y = 0.05 + 0.55 * np.clip(0.5 + 2.0 * (fine - 0.5) + 4.0 * (coarse - 0.5), 0, 1)
    return np.repeat(y[..., None], 3, axis=2).astype(np.float32)


def test_norm_follows_the_aperture():
    assert vignetting_norm_ev(8.0) == 0.5 and vignetting_norm_ev(22.0) == 0.5
    assert vignetting_norm_ev(4.0) == pytest.approx(1.0)
    assert vignetting_norm_ev(2.8) == pytest.approx(0.5 + 0.5 * np.log2(8 / 2.8))
    assert vignetting_norm_ev(1.4) == pytest.approx(1.757, abs=0.01)
    assert vignetting_norm_ev(None) == vignetting_norm_ev(4.0)
    with pytest.raises(ValueError, match="positive"):
        vignetting_norm_ev(0.0)


def test_sign_test():
    assert sign_test_p(8, 8) == pytest.approx(1 / 256)
    assert sign_test_p(7, 8) == pytest.approx(9 / 256)
    # Past 1023 frames 2.0**n overflows a float: a shoot of 1,712 frames of one lens stopped its outputs.
    assert sign_test_p(1712, 1712) == 0.0 and sign_test_p(0, 1712) == 1.0
    assert sign_test_p(856, 1712) == pytest.approx(0.5, abs=0.02)
    assert sign_test_p(0, 8) == 1.0 and sign_test_p(0, 0) == 1.0


def test_lens_field_rejects_what_is_not_a_proxy():
    with pytest.raises(ValueError, match="proxy"):
        lens_field(np.zeros((50, 80, 3), np.float32))
    with pytest.raises(ValueError, match="float"):
        lens_field(np.zeros((200, 300, 3), np.uint8))


def test_falloff_of_a_known_vignette():
    flat = np.full((600, 900, 3), 0.3, np.float32)
    assert corner_falloff_ev(lens_field(flat)) == pytest.approx(0.0, abs=0.01)
    dark = flat * vignetting_gain(900, 600, 1.0)[..., None]
    assert corner_falloff_ev(lens_field(dark)) == pytest.approx(1.0, abs=0.12)
    # Clipped cells say nothing: a frame of blown highlights gives no falloff at all.
    assert corner_falloff_ev(lens_field(np.ones((600, 900, 3), np.float32))) is None


def test_soft_side_found_in_the_sensor_frame():
    scene = _texture(600, 900, 1)
    sharp_lr, sharp_tb = side_detail_log2(lens_field(scene))
    assert abs(sharp_lr) < 0.1 and abs(sharp_tb) < 0.1
    soft_right = decentring_blur(scene, "right", 1.5)
    lr, tb = side_detail_log2(lens_field(soft_right))
    assert lr > 0.2 and abs(tb) < 0.1
    # Shot in portrait (EXIF 6: viewers turn the stored frame 90 degrees clockwise), the sensor's right
    # side is the picture's bottom; the field undoes the orientation, so the right side is still found.
    viewed = np.ascontiguousarray(np.rot90(soft_right, -1))
    lr6, tb6 = side_detail_log2(lens_field(viewed, 6))
    assert lr6 == pytest.approx(lr, abs=0.02) and abs(tb6) < 0.1


def _stats(lr: list[float], falloff: float = 0.5, f_number: float = 8.0) -> LensStats:
    """Stats of len(lr) frames whose relative maps all show ``falloff`` EV to the corners (a + b r^2)."""
    refs = tuple(FrameRef(f"f{i}.dng", 1, f_number) for i in range(len(lr)))
    r2 = _radius2((8, 12))
    relative = np.repeat((-falloff * r2)[None], len(lr), axis=0)
    return LensStats(len(lr), tuple(lr), tuple(-v for v in lr), relative, (vignetting_norm_ev(f_number),) * len(lr),
                     refs, refs, refs)


def test_findings_need_frames_a_margin_and_a_consistent_sign():
    n = LENS_MIN_FRAMES
    found = lens_findings(BODY, "Lens 50mm", _stats([0.6] * n))
    assert [(f.kind, f.x, f.y) for f in found] == [(FindingKind.DECENTRING, 0.9, 0.5),
                                                    (FindingKind.DECENTRING, 0.5, 0.1)]
    assert "soft on the right" in found[0].detail and "soft on the top" in found[1].detail
    assert found[0].frames == n and found[0].confidence > 0.5 and "Lens 50mm" in found[0].detail
    assert lens_findings(BODY, None, _stats([0.6] * (n - 1))) == []  # too few frames
    assert lens_findings(BODY, None, _stats([0.3] * n)) == []  # consistent, but too small
    mixed = [0.9, -0.5, 0.8, -0.3, 0.5, 0.7, -0.6, 0.6, -0.2, 0.45]  # the scenes' coin tosses (median 0.5)
    assert lens_findings(BODY, None, _stats(mixed)) == []
    vig = lens_findings(BODY, None, _stats([0.0] * n, falloff=1.3))  # the f/8 norm is 0.5 EV
    assert [f.kind for f in vig] == [FindingKind.VIGNETTING]
    assert vig[0].strength == pytest.approx(1.3) and "1.30 EV" in vig[0].detail and vig[0].confidence == 1.0
    assert lens_findings(BODY, None, _stats([0.0] * n, falloff=0.7)) == []  # within the norm and the margin
    assert lens_findings(BODY, None, _stats([0.0] * n, falloff=1.3, f_number=1.4)) == []  # wide open: allowed
    assert lens_findings(BODY, None, _stats([0.0] * (n - 1), falloff=1.3)) == []  # too few frames


def test_stats_skip_unusable_frames():
    blown = lens_field(np.ones((400, 600, 3), np.float32))
    scene = lens_field(_texture(400, 600, 2))
    stats = lens_stats([(blown, FrameRef("a", 1, 8.0)), (scene, FrameRef("b", 1, 8.0))])
    assert stats.frames == 2 and len(stats.lr) == 1 and len(stats.relative) == 1
    assert stats.used_lr[0].source_path == "b"


# --- tier 2: a generated series through the pipeline ------------------------------------------------
SMALL = Spec(width=1900, height=1266, cosmic=15)


@pytest.fixture(scope="module")
def lens_split(testdata, tmp_path_factory):
    return build_lens_split(testdata, tmp_path_factory.mktemp("lens"), "tuning", log=lambda *a: None, spec=SMALL,
                            frames=10)


@pytest.mark.slow
def test_generated_lens_defects_through_the_pipeline(lens_split, model_dir, tmp_path):
    truth = json.loads((lens_split / "truth.json").read_text())
    # One decentred body, one vignetted body (its own series: a negative for decentring).
    bodies = [next(b for b in truth["bodies"] if b["defect"] == kind) for kind in ("decentring", "vignetting")]
    shoot = tmp_path / "shoot"
    for b in bodies:
        (shoot / b["serial"]).mkdir(parents=True)
        for f in b["frames"]:
            os.link(lens_split / f["file"], shoot / f["file"])
    graph = tmp_path / "graph.yaml"
    graph.write_text(ANALYSIS_GRAPH)
    out = tmp_path / "out"
    assert not process_shoot(RunSettings(shoot, out, executor="local", graph_path=graph)).failed
    rows = pq.read_table(out / "equipment.parquet").to_pylist()
    lens_rows = [r for r in rows if r["kind"] in ("decentring", "vignetting")]
    soft, dark = bodies
    assert [(r["camera_serial"], r["kind"]) for r in lens_rows] == [(soft["serial"], "decentring"),
                                                                    (dark["serial"], "vignetting")], lens_rows
    assert f"soft on the {soft['side']}" in lens_rows[0]["detail"]
    assert lens_rows[0]["frames_examined"] >= LENS_MIN_FRAMES and lens_rows[0]["confidence"] >= 0.5
    assert lens_rows[1]["strength"] > 0.5  # EV at the corners
    report = (out / "report.html").read_text()
    assert "<h3>Lenses</h3>" in report and "soft on one side" in report and "vignetting beyond the norm" in report


def test_viewed_up_follows_the_orientation():
    from pipeline.equipment.lens import viewed_up

    assert viewed_up(1) == (0.0, 1.0) and viewed_up(3) == (0.0, -1.0)
    assert viewed_up(6) == (1.0, 0.0) and viewed_up(8) == (-1.0, 0.0)
