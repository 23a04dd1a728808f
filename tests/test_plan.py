"""Planning: measurements + chart -> operations, and the instruction outputs."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from planning_inputs import LIT_SURROUND_EV, chart_with, face, image_record, of_kind

from charts.loader import load_chart
from charts.schema import ExposureMeter
from pipeline.cli import EXIT_CONFIG, main
from pipeline.imaging.color import linear_to_srgb, srgb_to_linear
from pipeline.imaging.geometry import fits
from pipeline.imaging.measure.common import WORK_LONG_EDGE
from pipeline.kernel.records import RENDER_ON_ACCEPT, AppliedBy, ExposureVerdict, OperationKind, Verdict
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import SCHEMA_PATH
from pipeline.outputs.xmp import crs_to_box
from pipeline.planning.plan import lab_to_linear_srgb, plan_image, plan_shoot, white_balance_gains
from pipeline.planning.rules.checks import FACE_TO_FRAME_UNITS, SHARP_PART_TO_FRAME
from pipeline.planning.rules.exposure import key_reading
from pipeline.planning.rules.faces import shown_ev


def test_exposure_correction_is_target_minus_measured_within_the_cap() -> None:
    chart = load_chart("base").chart
    ops = plan_image(image_record(exposure_meter_ev=-1.2), chart)
    (exp,) = of_kind(ops, OperationKind.EXPOSURE)
    assert exp.params["ev"] == pytest.approx(chart.exposure.target_ev + 1.2)
    assert exp.applied_by is AppliedBy.RENDERER
    assert not of_kind(plan_image(image_record(exposure_meter_ev=0.1), chart), OperationKind.EXPOSURE)  # within tolerance
    capped = plan_image(image_record(exposure_meter_ev=-3.5), chart)
    assert of_kind(capped, OperationKind.EXPOSURE)[0].params["ev"] == chart.exposure.max_correction_ev
    assert any(o.params.get("check") == "exposure_range" for o in of_kind(capped, OperationKind.FLAG))


def test_an_offset_within_what_well_exposed_photographs_read_is_left_as_shot() -> None:
    from planning_inputs import chart_with

    from pipeline.imaging.measure.metering import FRAME_SPREAD_EV
    from pipeline.planning.rules.exposure import offset_confidence, reading_spread

    chart = load_chart("base").chart  # tolerance 0.33 EV, min_confidence 0.8
    assert chart.exposure.min_confidence == 0.8
    # 0.5 EV under on the whole frame: beyond the tolerance, but a low-key photograph reads that (Phi(0.5 /
    # 0.735) = 0.75 < 0.8): left as shot, its reading still reported, its verdict ok.
    assert reading_spread(False, True) == pytest.approx(FRAME_SPREAD_EV)
    assert offset_confidence(-0.5, FRAME_SPREAD_EV) == pytest.approx(0.752, abs=0.001)
    rec = image_record(exposure_meter_ev=-0.5)
    plan_shoot([rec], chart)
    assert not of_kind(rec.operations, OperationKind.EXPOSURE)
    assert rec.plan.exposure_ev == pytest.approx(-0.5) and rec.plan.exposure_verdict is ExposureVerdict.OK
    # 1 EV under is beyond it (0.91): corrected, with that confidence.
    (exp,) = of_kind(plan_image(image_record(exposure_meter_ev=-1.0), chart), OperationKind.EXPOSURE)
    assert exp.params["ev"] == pytest.approx(1.0) and exp.confidence == pytest.approx(0.91, abs=0.005)
    # A chart that wants every offset beyond its tolerance corrected says 0.5.
    eager = chart_with(chart, "exposure", min_confidence=0.5)
    (exp,) = of_kind(plan_image(image_record(exposure_meter_ev=-0.5), eager), OperationKind.EXPOSURE)
    assert exp.params["ev"] == pytest.approx(0.5)
    # Faces and frame read together stray less: 0.6 EV under, left on the frame alone, is then sure enough.
    assert reading_spread(True, True) < reading_spread(False, True)
    alone = image_record(exposure_meter_ev=-0.6)
    plan_shoot([alone], chart)
    assert not of_kind(alone.operations, OperationKind.EXPOSURE)
    faced = image_record(exposure_meter_ev=-0.6, faces=[face(1000, 500, 400, -0.6)])
    plan_shoot([faced], chart)
    assert of_kind(faced.operations, OperationKind.EXPOSURE)


def test_a_portrait_pushed_over_until_its_face_clips_still_reads_the_whole_push() -> None:
    from pipeline.imaging.measure.metering import FACE_LOG2
    from pipeline.planning.rules.exposure import faces_trust

    chart = load_chart("base").chart

    def offset(face_ev: float, frame_ev: float) -> float:
        rec = image_record(exposure_meter_ev=frame_ev, faces=[face(1000, 500, 400, face_ev)])
        plan_shoot([rec], chart)
        assert rec.plan.exposure_keyed_on == "faces"
        return rec.plan.exposure_ev

    # A well-exposed portrait (face on its reference, the frame 0.2 EV bright) and its twin 1 EV over:
    # the face is 0.27 EV under full scale there, taken at its word, so the reading moves by the push.
    shot = offset(0.0, 0.2)
    assert faces_trust(1.0) == 1.0
    assert offset(1.0, 1.2) - shot == pytest.approx(1.0)
    # Pushed past full scale (-FACE_LOG2 EV over), the face's centre is clipped: it reads full scale, no
    # brighter however far over. Averaged in at its full weight it held the reading short of the push
    # (1.66 for 2.08 with the 4-photo face key); it says only "at least this bright" now, and the frame
    # reads the rest.
    clipped = -FACE_LOG2
    push = clipped + 0.7
    assert faces_trust(clipped) == 0.0
    assert offset(clipped, 0.2 + push) - shot == pytest.approx(push, abs=0.15)
    # A face is never read darker than it is: the frame darker than a clipped face leaves the face's floor.
    assert offset(clipped, 0.5) == pytest.approx(clipped)
    # The trust fades over the last 0.2 EV below full scale, so the reading moves continuously.
    readings = [offset(clipped - d, 2.2) for d in np.linspace(0.0, 0.3, 31)]
    assert max(abs(a - b) for a, b in zip(readings, readings[1:])) < 0.1


def test_three_dark_faces_to_brighten_with_regions_and_amounts() -> None:
    chart = load_chart("corporate_portrait").chart  # brighten below 0.5 EV, at most 1 EV automatically
    # Four faces and the frame on target: no global correction; the faces below are lifted to them.
    # Each in a shadow of its own: as much further under its surroundings as it is under the others.
    faces = [
        face(300, 400, 300, -0.9, surround_ev=LIT_SURROUND_EV - 0.9),   # 0.9 under: automatic
        face(900, 400, 300, -1.8, surround_ev=LIT_SURROUND_EV - 1.8),   # 1.8 under: beyond the automatic limit -> retoucher
        face(1500, 400, 300, -0.7, score=0.6, surround_ev=LIT_SURROUND_EV - 0.7),  # 0.7 under, uncertain -> retoucher
        *[face(300 + 600 * k, 1200, 300, 0.0, surround_ev=LIT_SURROUND_EV) for k in range(4)],
        face(2700, 1900, 40, -2.5),  # too small for this chart (10% of the short edge)
    ]
    rec = image_record(faces=faces)
    plan_shoot([rec], chart)
    assert not of_kind(rec.operations, OperationKind.EXPOSURE)
    assert rec.plan.exposure_ev == pytest.approx(0.0) and rec.plan.exposure_keyed_on == "faces"
    bright = of_kind(rec.operations, OperationKind.BRIGHTEN_FACE)
    assert rec.plan.faces_to_brighten == 3
    assert [o.params["face_index"] for o in bright] == [0, 1, 2]
    assert bright[0].params["box"] == [300, 400, 300, 300]
    assert [o.params["ev"] for o in bright] == pytest.approx([0.9, 1.8, 0.7])
    # The chart proposes the lift the renderer could apply (faces.confirm_lifts): a reviewer's accept applies it.
    assert [o.applied_by for o in bright] == [AppliedBy.RETOUCHER] * 3
    assert bright[0].params.get(RENDER_ON_ACCEPT) is True and "once a reviewer accepts it" in bright[0].reason
    assert not any(o.params.get(RENDER_ON_ACCEPT) for o in bright[1:])
    assert rec.plan.verdict is Verdict.FLAG  # a person must see three faces
    # A chart that trusts the rule unseen: the renderer applies the first; a person must finish two faces.
    unseen = image_record(faces=[dataclasses.replace(f) for f in faces])
    plan_shoot([unseen], chart_with(chart, "faces", confirm_lifts=False))
    bright = of_kind(unseen.operations, OperationKind.BRIGHTEN_FACE)
    assert [o.applied_by for o in bright] == [AppliedBy.RENDERER, AppliedBy.RETOUCHER, AppliedBy.RETOUCHER]


def test_one_number_in_the_manifest_the_verdict_and_the_plan() -> None:
    chart = load_chart("base").chart
    # One face 2 EV under, the frame on target: the key weighs both by their spreads (the frame's is smaller).
    rec = image_record(exposure_meter_ev=0.0, faces=[face(1000, 500, 400, -2.0)])
    plan_shoot([rec], chart)
    key = key_reading(-2.0, 0.0)
    assert -1.0 < key < -0.5
    assert rec.plan.exposure_ev == pytest.approx(key)
    assert rec.plan.exposure_verdict is ExposureVerdict.UNDER and rec.plan.exposure_keyed_on == "faces"
    (exp,) = of_kind(rec.operations, OperationKind.EXPOSURE)
    assert exp.params["ev"] == pytest.approx(-key, abs=0.005) and exp.measured == pytest.approx(key, abs=0.005)
    assert f"exposure_ev {key:+.2f}" in exp.reason
    assert rec.plan.faces_to_brighten == 0  # the face the exposure is keyed on is not lifted on top
    # Without faces the whole frame's reading is the number; within the tolerance it is still written.
    frame = image_record(exposure_meter_ev=0.2)
    plan_shoot([frame], chart)
    assert frame.plan.exposure_ev == pytest.approx(0.2) and frame.plan.exposure_verdict is ExposureVerdict.OK
    assert frame.plan.exposure_keyed_on == "frame" and not of_kind(frame.operations, OperationKind.EXPOSURE)


def test_a_headshot_chart_meters_for_skin_alone() -> None:
    # corporate_portrait's exposure.meter is faces: a white or black backdrop says nothing of a headshot's
    # exposure. The face on target is left as shot whatever the frame reads; a face 1.2 EV under is brightened
    # by 1.2 EV, not by its blend with a frame on target.
    chart = load_chart("corporate_portrait").chart
    assert chart.exposure.meter is ExposureMeter.FACES
    white = image_record(source_path="white", exposure_meter_ev=2.5, faces=[face(1000, 500, 400, 0.0)])
    dim = image_record(source_path="dim", exposure_meter_ev=0.0, faces=[face(1000, 500, 400, -1.2)])
    plan_shoot([white, dim], chart)
    assert white.plan.exposure_ev == pytest.approx(0.0) and not of_kind(white.operations, OperationKind.EXPOSURE)
    (exp,) = of_kind(dim.operations, OperationKind.EXPOSURE)
    assert exp.params["ev"] == pytest.approx(1.2) and "keyed on 1 face(s)" in exp.reason
    assert "whole frame" not in exp.reason
    # Under base the same frames are read with their frame: the white backdrop darkens the headshot.
    base = load_chart("base").chart
    white2 = image_record(source_path="white", exposure_meter_ev=2.5, faces=[face(1000, 500, 400, 0.0)])
    plan_shoot([white2], base)
    assert of_kind(white2.operations, OperationKind.EXPOSURE)[0].params["ev"] < -1.0


def test_a_headshot_is_not_brightened_past_its_highlights() -> None:
    # Metered for skin alone, a dark-skinned face or a face in a dim corner reads a stop under while the
    # picture is right: its highlights (the frame's white point, exposure_white_ev) reach where a well-exposed
    # photograph's do (+0.28: serengil/deepface img17), and the reading is floored there. Under-exposed all
    # over, the highlights are under too and the faces are read as before; darkening is never held back.
    chart = load_chart("corporate_portrait").chart
    lit = image_record(source_path="lit", faces=[face(1000, 500, 400, -1.0)], exposure_white_ev=0.28)
    dark = image_record(source_path="dark", faces=[face(1000, 500, 400, -1.0)], exposure_white_ev=-1.2)
    part = image_record(source_path="part", faces=[face(1000, 500, 400, -1.8)], exposure_white_ev=-1.0)
    bright = image_record(source_path="bright", faces=[face(1000, 500, 400, 1.5)], exposure_white_ev=0.3)
    old = image_record(source_path="old", faces=[face(1000, 500, 400, -1.0)])  # analysed before the column
    for rec in (lit, dark, part, bright, old):
        plan_shoot([rec], chart)
    assert lit.plan.exposure_ev == pytest.approx(0.28) and not of_kind(lit.operations, OperationKind.EXPOSURE)
    (exp,) = of_kind(dark.operations, OperationKind.EXPOSURE)
    assert exp.params["ev"] == pytest.approx(1.0) and "highlights" not in exp.reason
    (exp,) = of_kind(part.operations, OperationKind.EXPOSURE)  # floored at the highlights, not at the faces
    assert exp.params["ev"] == pytest.approx(1.0) and "no darker than the frame's highlights read" in exp.reason
    assert of_kind(bright.operations, OperationKind.EXPOSURE)[0].params["ev"] == pytest.approx(-1.5)
    assert of_kind(old.operations, OperationKind.EXPOSURE)[0].params["ev"] == pytest.approx(1.0)
    # Under base (faces and frame) the floor is the frame meter's own: nothing changes there.
    base = load_chart("base").chart
    a = image_record(source_path="a", faces=[face(1000, 500, 400, -1.0)], exposure_white_ev=0.28)
    b = image_record(source_path="b", faces=[face(1000, 500, 400, -1.0)])
    plan_shoot([a], base)
    plan_shoot([b], base)
    assert a.plan.exposure_ev == pytest.approx(b.plan.exposure_ev) and a.plan.exposure_ev < -0.2


def test_crops_fit_and_keep_the_faces() -> None:
    chart = load_chart("corporate_portrait").chart
    rec = image_record(faces=[face(2300, 600, 300, 0.0)], horizon_tilt_deg=1.5, lines_found=30)
    plan_shoot([rec], chart)
    (st,) = of_kind(rec.operations, OperationKind.STRAIGHTEN)
    assert st.params["angle_deg"] == 1.5 and st.applied_by is AppliedBy.RENDERER
    crops = {o.params["aspect"]: o for o in of_kind(rec.operations, OperationKind.CROP)}
    assert set(crops) == {"4:5", "1:1"}
    for aspect, op in crops.items():
        x, y, w, h = op.params["box"]
        assert fits((x, y, w, h), 1.5, 3000, 2000, eps=0.2)  # boxes are rounded to 0.1 px
        assert x <= 2300 and x + w >= 2600 and y <= 600 and y + h >= 900, aspect
        assert op.params["angle_deg"] == 1.5


def test_big_tilt_goes_to_a_person_and_checks_flag_or_reject() -> None:
    chart = load_chart("corporate_portrait").chart
    rec = image_record(horizon_tilt_deg=8.0, lines_found=30, sharpness=5.0, clipped_highlights_pct=4.0)
    plan_shoot([rec], chart)
    (st,) = of_kind(rec.operations, OperationKind.STRAIGHTEN)
    assert st.applied_by is AppliedBy.RETOUCHER
    checks = {o.params["check"]: o.kind for o in rec.operations if o.kind in (OperationKind.FLAG, OperationKind.REJECT)}
    assert checks == {"sharpness": OperationKind.REJECT, "clipped_highlights": OperationKind.FLAG,
                      "face_required": OperationKind.REJECT}
    assert rec.plan.verdict is Verdict.REJECT
    assert all(o.reason for o in rec.operations)


def test_a_picture_smaller_than_the_focus_copy_is_not_judged_soft() -> None:
    # Enlarged to the 512 px copy the chart's minimum is set on, a sharp thumbnail reads soft: not rejected for it.
    chart = load_chart("corporate_portrait").chart
    small = image_record(sharpness=5.0, width=WORK_LONG_EDGE - 1, height=300)
    large = image_record(sharpness=5.0, width=WORK_LONG_EDGE, height=300)
    plan_shoot([small, large], chart)
    checks = [{o.params.get("check") for o in r.operations} for r in (small, large)]
    assert "sharpness" not in checks[0] and "sharpness" in checks[1]


def test_a_portrait_is_judged_soft_on_its_sharpest_face_never_on_its_background_alone() -> None:
    # corporate_portrait rejects under 20: a face 130 or sharper (20 in the frame's units) clears a frame
    # whose background is blurred on purpose; a soft face leaves the frame's own reading to decide.
    chart = load_chart("corporate_portrait").chart
    faces = {"sharp": 140.0, "soft": 120.0}
    bokeh = {k: image_record(source_path=k, sharpness=5.0, exposure_meter_ev=0.0,
                             faces=[dataclasses.replace(face(1200, 600, 600, 0.0), sharpness=v)])
             for k, v in faces.items()}
    sharp_frame = image_record(source_path="sharp_frame", sharpness=50.0, exposure_meter_ev=0.0,
                               faces=[dataclasses.replace(face(1200, 600, 600, 0.0), sharpness=30.0)])
    plan_shoot([*bokeh.values(), sharp_frame], chart)
    assert FACE_TO_FRAME_UNITS * 20 == pytest.approx(130.05)
    checks = {k: {o.params.get("check") for o in r.operations} for k, r in {**bokeh, "sharp_frame": sharp_frame}.items()}
    assert "sharpness" not in checks["sharp"]
    assert "sharpness" in checks["soft"] and bokeh["soft"].plan.verdict is Verdict.REJECT
    assert "sharpness" not in checks["sharp_frame"]


def test_a_frame_sharp_where_it_is_in_focus_is_not_soft() -> None:
    # base flags under 15: a macro whose subject's tiles read 45 (3x the minimum, over SHARP_PART_TO_FRAME) is in
    # focus where it matters, its blurred background aside; a frame soft all over (its sharpest part at 2x) is not.
    chart = load_chart("base").chart
    macro = image_record(source_path="macro", sharpness=8.0, sharpness_peak=45.0, exposure_meter_ev=0.0)
    soft = image_record(source_path="soft", sharpness=8.0, sharpness_peak=30.0, exposure_meter_ev=0.0)
    before = image_record(source_path="before", sharpness=8.0, exposure_meter_ev=0.0)  # measured before the peak
    plan_shoot([macro, soft, before], chart)
    assert SHARP_PART_TO_FRAME * 15 < 45.0 and SHARP_PART_TO_FRAME * 15 > 30.0
    checks = {r.source_path: {o.params.get("check") for o in r.operations} for r in (macro, soft, before)}
    assert "sharpness" not in checks["macro"]
    assert "sharpness" in checks["soft"] and "sharpness" in checks["before"]


def test_near_duplicates_are_flagged() -> None:
    chart = load_chart("base").chart
    a, b, c = image_record(source_path="a", phash="ffff0000ffff0000"), image_record(source_path="b", phash="ffff0000ffff0001"), \
        image_record(source_path="c", phash="0000ffff0000ffff")
    plan_shoot([a, b, c], chart)
    dup = [o for o in b.operations if o.params.get("check") == "duplicates"]
    assert dup and dup[0].params["duplicate_of"] == "a"
    assert not [o for o in a.operations + c.operations if o.params.get("check") == "duplicates"]


@pytest.mark.parametrize(("a", "b"), [(0.0, 12.0), (5.0, -8.0), (-3.0, 3.0)])
def test_white_balance_gains_neutralise_the_measured_cast(a: float, b: float) -> None:
    gains = np.array(white_balance_gains(a, b))
    corrected = lab_to_linear_srgb(50.0, a, b) * gains
    assert corrected.max() - corrected.min() < 1e-3 * corrected.mean() + 1e-4


def test_a_face_darkened_by_one_stop_is_planned_for_one_stop(faces_dir: Path, tmp_path: Path) -> None:
    """Real photo, real detector: darken one face by 1 EV in linear light, plan with a chart."""
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    img = cv2.cvtColor(cv2.imread(str(faces_dir / "2008_001322.jpg")), cv2.COLOR_BGR2RGB)
    cv2.imwrite(str(shoot / "original.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    first = process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "o1", executor="local",
                                      chart="corporate_portrait"))
    rec = first.records[0]
    big = max(range(len(rec.faces)), key=lambda i: rec.faces[i].width)
    f = rec.faces[big]
    lin = srgb_to_linear(img.astype(np.float32) / 255)
    x0, y0 = int(f.x - 0.25 * f.width), int(f.y - 0.25 * f.height)
    x1, y1 = int(f.x + 1.25 * f.width), int(f.y + 1.25 * f.height)
    lin[max(0, y0):y1, max(0, x0):x1] *= 0.5
    dark = np.round(linear_to_srgb(lin) * 255).astype(np.uint8)
    (shoot / "original.png").unlink()
    cv2.imwrite(str(shoot / "darkened.png"), cv2.cvtColor(dark, cv2.COLOR_RGB2BGR))
    second = process_shoot(RunSettings(shoot_dir=shoot, out_dir=tmp_path / "o2", executor="local",
                                       chart="corporate_portrait"))
    drec = second.records[0]
    match = min(range(len(drec.faces)), key=lambda i: abs(drec.faces[i].x - f.x) + abs(drec.faces[i].y - f.y))
    # A PNG: one stop less of the light it shows (its faces read in scene light, through the curve).
    drop = shown_ev(drec.faces[match].exposure_ev, True) - shown_ev(f.exposure_ev, True)
    assert drop == pytest.approx(-1.0, abs=0.3)
    ops = {o.params["face_index"]: o for o in drec.operations if o.kind is OperationKind.BRIGHTEN_FACE}
    assert match in ops, [o.reason for o in drec.operations]
    assert drec.plan.faces_to_brighten >= 1


@pytest.fixture(scope="module")
def planned(raw_dir: Path, faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    shoot = tmp_path_factory.mktemp("shoot")
    shutil.copy(raw_dir / "Canon_PowerShot_G2_CRW_0304.CRW", shoot)
    shutil.copy(faces_dir / "2008_002079.jpg", shoot)
    (shoot / "broken.CR2").write_bytes(b"II*\0" + b"\0" * 50)
    out = tmp_path_factory.mktemp("out")
    process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="corporate_portrait"))
    return out


def test_instruction_files_validate_against_the_schema(planned: Path) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    docs = [json.loads(p.read_text()) for p in sorted((planned / "instructions").glob("*.json"))]
    assert len(docs) == 2  # the broken file has a failed manifest row, no plan
    for doc in docs:
        jsonschema.validate(doc, schema)
    table = pq.read_table(planned / "instructions.parquet").to_pylist()
    assert len(table) == sum(len(d["operations"]) for d in docs)
    assert {r["review_status"] for r in table} == {"pending"}
    faces = pq.read_table(planned / "faces.parquet").to_pylist()
    jpg = next(d for d in docs if d["source_path"].endswith(".jpg"))
    assert len([f for f in faces if f["source_path"] == jpg["source_path"]]) == len(jpg["faces"]) >= 4


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed (CI installs it)")
def test_xmp_sidecars_read_back_with_exiftool(planned: Path) -> None:
    """The plan's exposure, primary crop and faces, read back from the XMP (conventions: tests/test_xmp.py)."""
    for path in sorted((planned / "instructions").glob("*.json")):
        doc = json.loads(path.read_text())
        out = subprocess.run(["exiftool", "-j", "-struct", "-n", "-XMP-crs:all", str(planned / doc["xmp"])],
                             capture_output=True, text=True, check=True)
        tags = json.loads(out.stdout)[0]
        ops = {o["kind"]: o for o in doc["operations"]}
        baseline = doc["camera_raw"]["baseline_exposure_ev"] or 0.0
        if "exposure" in ops:
            assert float(tags["Exposure2012"]) == pytest.approx(ops["exposure"]["params"]["ev"] - baseline, abs=0.01)
        primary = doc["framings"][0]
        assert primary["in_xmp"] and tags["HasCrop"] == 1
        fx, fy, fw, fh = doc["camera_raw"]["default_crop"] or (0, 0, doc["image"]["width"], doc["image"]["height"])
        cx, cy, w, h = crs_to_box(*(float(tags[k]) for k in ("CropLeft", "CropTop", "CropRight", "CropBottom",
                                                             "CropAngle")), fw, fh)
        x, y, bw, bh = primary["box"]
        # Camera Raw's frame may be smaller than LibRaw's (CRW): the box keeps its aspect, inside that frame.
        assert w / h == pytest.approx(bw / bh, abs=2e-3)
        assert w <= fw + 0.5 and h <= fh + 0.5
        assert cx + fx == pytest.approx(x + bw / 2, abs=max(0.5, (bw - w) / 2 + 0.5))
        brighten = [o for o in doc["operations"] if o["kind"] == "brighten_face"]
        local = tags.get("CircularGradientBasedCorrections", [])
        assert len(local) == len(brighten)
        for corr, op in zip(local, brighten):
            assert float(corr["LocalExposure2012"]) == pytest.approx(op["params"]["ev"], abs=1e-3)
            mask = corr["CorrectionMasks"][0]
            assert float(mask["Left"]) == pytest.approx((op["params"]["box"][0] - fx) / fw, abs=1e-4)


def test_only_plan_replans_without_decoding(planned: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stages.decode_raw

    shoot = Path(json.loads((planned / "summary.json").read_text())["shoot"])

    def no_pixels(self, item):  # noqa: ANN001
        raise AssertionError("--only plan decoded pixels")

    monkeypatch.setattr(stages.decode_raw.DecodeRaw, "process", no_pixels)
    before = {r["source_path"]: r["verdict"] for r in pq.read_table(planned / "manifest.parquet").to_pylist()}
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(planned), "--only", "plan",
                                       "--chart", "real_estate_interiors", "--executor", "local", "--force"])
    assert result.exit_code == 3, result.output  # the broken file stays failed
    after = {r["source_path"]: r["verdict"] for r in pq.read_table(planned / "manifest.parquet").to_pylist()}
    assert before.keys() == after.keys()
    meta = pq.read_schema(planned / "manifest.parquet").metadata
    assert meta[b"postprod.chart"] == b"real_estate_interiors"
    crops = {o["params"]["aspect"] for p in (planned / "instructions").glob("*.json")
             for o in json.loads(p.read_text())["operations"] if o["kind"] == "crop"}
    assert crops == {"3:2", "16:9"}
    # The new chart's plans have no exports yet, and the user is told how to make them.
    to_deliver = sum(v != "reject" for v in after.values() if v)
    assert to_deliver and not list((planned / "exports").rglob("*.*"))
    assert f"{to_deliver} image{'s' if to_deliver > 1 else ''} to deliver have no exports" in result.output
    assert "run `postprod process` again without --only" in result.output


def test_only_plan_on_a_fresh_folder_is_refused(raw_dir: Path, tmp_path: Path) -> None:
    shoot = tmp_path / "s"
    shoot.mkdir()
    shutil.copy(raw_dir / "Kodak_DC50_DC50IMG_DC0008L.KDC", shoot)
    result = CliRunner().invoke(main, ["process", str(shoot), "--out", str(tmp_path / "o"), "--only", "plan"])
    assert result.exit_code == EXIT_CONFIG and "never analysed" in result.output


def test_bad_chart_stops_the_run_before_any_work(raw_dir: Path, tmp_path: Path) -> None:
    chart = tmp_path / "client.yaml"
    chart.write_text("schema_version: 2\nextends: base\nexposure:\n  target_ev: 9\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["process", str(raw_dir), "--out", str(out), "--chart", str(chart)])
    assert result.exit_code == EXIT_CONFIG
    assert f"{chart}:4" in result.output and "exposure.target_ev" in result.output
    assert not out.exists()


def test_scene_rules_read_each_frames_operations_off_its_record() -> None:
    # Planning holds no dict of the whole shoot's operations: the scene rules' "operations so far" are read
    # off the records (a record store's view keeps them on disk), and what a scene rule returns goes back there.
    chart = load_chart("corporate_portrait").chart
    recs = [image_record(source_path=f"{i}.dng", exposure_meter_ev=-1.0 + 0.5 * i) for i in range(4)]
    seen: dict[int, list] = {}

    def scene_rule(records, chart, plans, operations):  # noqa: ANN001, ANN202
        assert not isinstance(operations, dict) and sorted(operations) == [0, 1, 2, 3]
        for i in operations:
            # The frame's own: its record's, less the shoot rules' waiting at the end (these frames are
            # near-duplicates of each other); the record's list itself when there are none.
            ops, waiting = records[i].operations, plans[i].shoot_ops
            assert operations[i] == ops[:len(ops) - waiting] and (waiting or operations[i] is ops)
            seen[i] = list(operations[i])
        return {1: []}  # frame 1's operations so far taken away

    plan_shoot(recs, chart, scene_rules=(scene_rule,))
    assert seen[0] and of_kind(seen[0], OperationKind.EXPOSURE)
    assert not of_kind(recs[1].operations, OperationKind.EXPOSURE)
    assert of_kind(recs[0].operations, OperationKind.EXPOSURE)[0] == of_kind(seen[0], OperationKind.EXPOSURE)[0]
