"""Faces delivered blurred for privacy (the chart's ``privacy.blur_faces``): the plan, the renderer, the deliveries.

The end-to-end test judges the deliveries against human-drawn face boxes (dlib's PASCAL VOC photos of the shared
data) with two detectors, the pipeline's own YuNet and InsightFace's SCRFD, at a lower confidence than the
pipeline keeps: faces they find in the photo as delivered without a blur must be gone from the blurred delivery.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from typing import Any

import cv2
import jsonschema
import numpy as np
import pytest
from planning_inputs import chart_with, face, image_record, of_kind

from benchmarks.accuracy import iou as _iou
from benchmarks.accuracy_corpus import pascal_voc_boxes
from benchmarks.privacy_blur import detail_kept
from benchmarks.privacy_blur import fine_detail as _fine_detail
from charts.loader import load_chart
from models.face_detectors import YuNetDetector
from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.render import (
    BLUR_CELLS,
    BLUR_FEATHER,
    Adjustments,
    FaceBlur,
    adjustments_from_operations,
    face_lift_mask,
    grain_field,
    grain_sigma,
    render_frame,
    render_rows,
)
from pipeline.kernel.errors import ConfigError
from pipeline.kernel.records import RENDER_ON_ACCEPT, AppliedBy, Operation, OperationKind
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import SCHEMA_PATH, summary_line
from pipeline.outputs.xmp import files_note
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.privacy import head_box
from pipeline.review.app import create_app
from pipeline.review.culling import Decision
from pipeline.review.store import OpChange, ReviewStore

BASE = load_chart("base").chart


def _textured(h: int, w: int, seed: int = 3) -> np.ndarray:
    """Linear light with fine detail everywhere (a face's features stand in for it)."""
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), 4.0)
    return np.clip(0.15 + 0.5 * smooth + 0.15 * rng.random((h, w, 3), dtype=np.float32), 0.0, 1.0)


def test_a_blurred_head_keeps_its_light_and_loses_its_detail_and_nothing_else_moves() -> None:
    picture = _textured(200, 300)
    box = (100.0, 40.0, 80.0, 100.0)
    size, frame = (300, 200), (0.0, 0.0, 300.0, 200.0)
    plain = render_frame(picture.copy(), 300, 200, Adjustments(), frame, size, "srgb", 0.0, 16).astype(np.float32)
    blurred = render_frame(picture.copy(), 300, 200, Adjustments(blurs=(FaceBlur(box),)), frame, size, "srgb",
                           0.0, 16).astype(np.float32)
    yy, xx = np.mgrid[0:200, 0:300].astype(np.float32) + 0.5
    inside = face_lift_mask(xx, yy, box, 0.0) > 0.5
    reach = face_lift_mask(xx, yy, box, 0.12 * 100.0 + 2.0) > 0.0
    # Beyond the ellipse's feather every pixel is as rendered without the blur, to the bit.
    np.testing.assert_array_equal(blurred[~reach], plain[~reach])
    # Inside, nothing of the picture's own detail is left (a field through 4 x 4 means: the grain on it is new, as
    # strong as the picture's), its level kept within 2 % of the head's mean.
    assert abs(detail_kept(blurred, plain, inside)) < 0.05
    assert 0.8 < _fine_detail(blurred)[inside].mean() / _fine_detail(plain)[inside].mean() < 1.25
    assert abs(blurred[inside].mean() / plain[inside].mean() - 1.0) < 0.02
    # On a picture with no grain the head is the smooth field alone: no detail at all.
    clean = cv2.GaussianBlur(picture, (0, 0), 6.0)
    smooth = render_frame(clean, 300, 200, Adjustments(blurs=(FaceBlur(box),)), frame, size, "srgb", 0.0, 16)
    assert _fine_detail(smooth)[inside].mean() < 0.05 * _fine_detail(plain)[inside].mean()
    # The field is not one flat colour: a head lit from one side stays lit from that side.
    lit = picture.copy()
    lit[:, :140] *= 0.4
    halves = render_frame(lit, 300, 200, Adjustments(blurs=(FaceBlur(box),)), frame, size, "srgb", 0.0, 16)
    assert halves[90, 110].mean() < 0.8 * halves[90, 170].mean()


def test_the_grain_read_around_a_head_is_the_grain_put_there() -> None:
    """Known grain (in the square root of linear light), grey or coloured, on flat light and beside edges: read back
    within 5 %, and its share common to the channels within 0.1."""
    rng = np.random.default_rng(11)
    ground = np.full((160, 160, 3), 0.2, dtype=np.float32)
    ground[:, 80:] = 0.5
    ground[::16] = 0.9  # a few sharp lines: texture in a minority of pixels
    for sigma, shared in ((0.01, 0.0), (0.03, 1.0), (0.02, 0.6)):
        common = rng.normal(0.0, 1.0, (160, 160, 1))
        noise = (np.sqrt(shared) * common + np.sqrt(1 - shared) * rng.normal(0.0, 1.0, (160, 160, 3))) * sigma
        grainy = ((np.sqrt(ground) + noise) ** 2).astype(np.float32)
        read = grain_sigma(grainy, np.ones((160, 160), dtype=bool))
        assert np.allclose(read[:3], sigma, rtol=0.05) and abs(read[3] - shared) < 0.1, (sigma, shared, read)
    assert not grain_sigma(ground, np.zeros((160, 160), dtype=bool)).any()  # nothing to read from: none

    # A head large enough that its surroundings are read on bands of rows: as grainy as the picture all the same.
    size = 1400
    grainy = ((np.sqrt(0.3) + rng.normal(0.0, 0.02, (size, size, 3))) ** 2).astype(np.float32)
    box = (300.0, 250.0, 800.0, 900.0)
    out = render_frame(grainy, size, size, Adjustments(blurs=(FaceBlur(box),)), (0.0, 0.0, size, size), (size, size),
                       "srgb", 0.0, 16).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    inside = face_lift_mask(xx, yy, box, 0.0) >= 1.0
    detail = _fine_detail(out)
    assert 0.8 < detail[inside].mean() / detail[:, 1250:].mean() < 1.25


def test_the_grain_is_the_same_for_a_pixel_in_any_strip() -> None:
    whole = grain_field(0, 0, 40, 30, 3)
    assert np.array_equal(grain_field(10, 12, 25, 30, 3), whole[12:, 10:25])
    assert abs(float(whole.mean())) < 0.2 and 0.85 < float(whole.std()) < 1.15
    assert not np.array_equal(grain_field(0, 0, 40, 30, 4), whole)  # another head, another grain


def test_a_blurred_head_rendered_strip_by_strip_is_the_whole_pictures() -> None:
    """Strips of a large master read the head's colours from the full-resolution source, each the same: no seam."""
    picture = _textured(120, 90, seed=5)
    adjust = Adjustments(blurs=(FaceBlur((20.0, 30.0, 50.0, 60.0)),), exposure_ev=-0.5)
    frame, size = (0.0, 0.0, 90.0, 120.0), (90, 120)
    whole = render_frame(picture.copy(), 90, 120, adjust, frame, size, "srgb", 0.0, 16).astype(int)
    rows = [render_rows(lambda x0, y0, x1, y1: picture[y0:y1, x0:x1].copy(), 90, 120, adjust, frame, size,
                        (v0, v1), "srgb", 0.0, 16) for v0, v1 in ((0, 41), (41, 60), (60, 120))]
    assert int(np.abs(np.concatenate(rows).astype(int) - whole).max()) <= 1


def test_a_head_at_the_frame_edge_is_blurred_as_far_as_the_picture_goes() -> None:
    picture = _textured(100, 100, seed=7)
    adjust = Adjustments(blurs=(FaceBlur((-30.0, -20.0, 60.0, 70.0)),))
    out = render_frame(picture.copy(), 100, 100, adjust, (0.0, 0.0, 100.0, 100.0), (100, 100), "srgb", 0.0, 16)
    plain = render_frame(picture.copy(), 100, 100, Adjustments(), (0.0, 0.0, 100.0, 100.0), (100, 100), "srgb",
                         0.0, 16)
    corner = (slice(0, 20), slice(0, 20))
    assert abs(detail_kept(out, plain, corner)) < 0.2
    np.testing.assert_array_equal(out[80:, 80:], plain[80:, 80:])
    assert BLUR_CELLS == 4


def test_a_reviewer_turning_a_blur_down_delivers_the_face() -> None:
    op = Operation(op_id="blur_face-0", kind=OperationKind.BLUR_FACE,
                   params={"face_index": 0, "box": [1.0, 2.0, 30.0, 40.0], "face_box": [6.0, 12.0, 20.0, 20.0]},
                   reason="face 1 blurred for privacy", confidence=0.9, applied_by=AppliedBy.RENDERER)
    assert adjustments_from_operations([op]).blurs == (FaceBlur((1.0, 2.0, 30.0, 40.0)),)
    op.review = {"status": "rejected"}
    assert adjustments_from_operations([op]).blurs == ()


def test_the_chart_says_which_faces_are_blurred() -> None:
    # A 3000 x 2000 frame: a subject 400 px tall (20 % of the short edge), two passers-by of 60 and 90 px (3, 4.5 %).
    record = image_record(faces=[face(1200, 500, 400, 0.0), face(200, 300, 60, 0.0), face(2600, 900, 90, 0.0)])
    assert not of_kind(plan_image(record, BASE), OperationKind.BLUR_FACE)
    everyone = plan_image(record, chart_with(BASE, "privacy", blur_faces="all"))
    assert [o.params["face_index"] for o in of_kind(everyone, OperationKind.BLUR_FACE)] == [0, 1, 2]
    bystanders = plan_image(record, chart_with(BASE, "privacy", blur_faces="bystanders"))
    blurs = of_kind(bystanders, OperationKind.BLUR_FACE)
    assert [o.params["face_index"] for o in blurs] == [1, 2]
    assert all(o.applied_by is AppliedBy.RENDERER for o in blurs)
    assert blurs[0].params["box"] == [185.0, 270.0, 90.0, 105.0]
    assert blurs[0].params["face_box"] == [200.0, 300.0, 60.0, 60.0]
    (flag,) = [o for o in of_kind(bystanders, OperationKind.FLAG) if o.params["check"] == "privacy"]
    assert flag.params["faces"] == [2, 3] and "look for faces the detector missed" in flag.reason
    assert "2 faces blurred" in summary_line(bystanders, 0)
    # With the subjects' size raised past the largest face, every face is a bystander's.
    small = chart_with(chart_with(BASE, "privacy", blur_faces="bystanders"), "faces", min_face_pct=25.0)
    assert len(of_kind(plan_image(record, small), OperationKind.BLUR_FACE)) == 3


def test_unsure_detections_are_blurred_as_the_chart_names_faces() -> None:
    # Two detections not sure to be faces: one 300 px tall (a subject's size), one 50 px (a passer-by's); and garbage.
    record = image_record(faces=[face(1200, 500, 400, 0.0)],
                          unsure_faces="100.0,200.0,250.0,300.0,0.61;2500.0,100.0,40.0,50.0,0.55;1,2,x")
    everyone = of_kind(plan_image(record, chart_with(BASE, "privacy", blur_faces="all")), OperationKind.BLUR_FACE)
    assert [o.op_id for o in everyone] == ["blur_face-0", "blur_face-unsure-0", "blur_face-unsure-1"]
    assert everyone[2].params == {"unsure_index": 1, "box": [2490.0, 75.0, 60.0, 87.5],
                                  "face_box": [2500.0, 100.0, 40.0, 50.0]}
    assert everyone[2].confidence == 0.55 and "not sure enough to be a face (score 0.55)" in everyone[2].reason
    ops = plan_image(record, chart_with(BASE, "privacy", blur_faces="bystanders"))
    assert [o.op_id for o in of_kind(ops, OperationKind.BLUR_FACE)] == ["blur_face-unsure-1"]
    (flag,) = [o for o in of_kind(ops, OperationKind.FLAG) if o.params["check"] == "privacy"]
    assert flag.params["unsure"] == 1 and "1 of the blurs are on detections not sure" in flag.reason
    assert not of_kind(plan_image(record, BASE), OperationKind.BLUR_FACE)
    # A chart that asks for them to be confirmed: proposed to a reviewer, blurred once accepted.
    confirm = chart_with(BASE, "privacy", blur_faces="all", confirm_unsure=True)
    ops = plan_image(record, confirm)
    sure, *doubtful = of_kind(ops, OperationKind.BLUR_FACE)
    assert sure.applied_by is AppliedBy.RENDERER and RENDER_ON_ACCEPT not in sure.params
    assert all(o.applied_by is AppliedBy.RETOUCHER and o.params[RENDER_ON_ACCEPT] for o in doubtful)
    assert "3 faces blurred (2 to confirm)" in summary_line(ops, 0)
    assert len(adjustments_from_operations(ops).blurs) == 1
    doubtful[0].review = {"status": "accepted"}
    assert len(adjustments_from_operations(ops).blurs) == 2
    # The listing client's chart asks for that: its rooms' unsure detections are furniture nine times in ten.
    acme = load_chart("client_acme_realty").chart
    ops = of_kind(plan_image(record, acme), OperationKind.BLUR_FACE)
    assert [o.applied_by for o in ops] == [AppliedBy.RENDERER, AppliedBy.RETOUCHER, AppliedBy.RETOUCHER]


def test_recording_unsure_detections_keeps_the_faces_as_they_were(testdata: Path, model_dir: Path) -> None:
    """The detector runs once at the lower score: the faces kept are the same with or without the unsure ones."""
    from models.face_detectors import detect_on_proxy, detect_with_unsure

    yunet = YuNetDetector(model_dir / "face_detection_yunet_2023mar.onnx")
    unsure_of = {}
    for name in ("2008_002079.jpg", "2007_007763.jpg"):
        rgb = cv2.cvtColor(cv2.imread(str(testdata / "faces" / "pascal_voc" / name)), cv2.COLOR_BGR2RGB)
        plain = detect_on_proxy(yunet, rgb, 2.0, 1280)
        faces, unsure = detect_with_unsure(yunet, rgb, 2.0, 1280, unsure_score=0.5)
        assert [f.box for f in faces] == [f.box for f in plain] and len(faces) >= 6
        assert all(u.score >= 0.5 for u in unsure)
        assert not any(_iou(u.box, f.box) > 0 for u in unsure for f in faces)
        unsure_of[name] = unsure
    assert unsure_of["2008_002079.jpg"]  # the dinner's diners beyond the window, its barmen from behind


def test_the_head_holds_the_face_box_and_rises_above_it() -> None:
    box = head_box(face(100, 200, 80, 0.0))
    assert box == (80.0, 160.0, 120.0, 140.0)
    corners = np.array([[100.0, 180.0, 100.0, 180.0], [200.0, 200.0, 280.0, 280.0]], dtype=np.float32)
    assert np.all(face_lift_mask(corners[0], corners[1], box, 0.0) == 1.0)  # the whole face box is blurred


def test_a_chart_with_an_unknown_blur_setting_is_refused_naming_the_key(tmp_path: Path) -> None:
    chart = tmp_path / "c.yaml"
    chart.write_text("schema_version: 2\nextends: base\nprivacy:\n  blur_faces: passers_by\n")
    with pytest.raises(ConfigError) as info:
        load_chart(str(chart))
    assert "c.yaml:4, key 'privacy.blur_faces'" in str(info.value) and "bystanders" in str(info.value)


def test_the_drawn_faces_are_blurred_in_the_delivery(testdata: Path, model_dir: Path, tmp_path: Path) -> None:
    """Judged against the faces people drew on dlib's PASCAL VOC photos, not against the detector's own boxes."""
    voc = testdata / "faces" / "pascal_voc"
    truth = pascal_voc_boxes(voc / "boxes.xml")
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for name in truth:
        (shoot / name).write_bytes((voc / name).read_bytes())
    chart = tmp_path / "blur.yaml"
    chart.write_text("schema_version: 2\nextends: base\nprivacy:\n  blur_faces: all\n")
    outs = {}
    for label, chart_ref in (("plain", "base"), ("blurred", str(chart))):
        outs[label] = tmp_path / label
        result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=outs[label], executor="local", chart=chart_ref))
        assert not result.failed
    yunet = YuNetDetector(model_dir / "face_detection_yunet_2023mar.onnx")  # the pipeline's own confidence, 0.7
    drawn = blurred_faces = found_plain = found_blurred = 0
    for name, boxes in truth.items():
        plain = cv2.imread(str(outs["plain"] / "exports" / "shoot" / "web" / name))
        blurred = cv2.imread(str(outs["blurred"] / "exports" / "shoot" / "web" / name))
        # The web rendition: the photo at its own size (not enlarged), so the drawn boxes stand as they are.
        assert plain.shape == blurred.shape == cv2.imread(str(voc / name)).shape
        doc = json.loads((outs["blurred"] / "instructions" / f"{name}.json").read_text())
        ops = [o for o in doc["operations"] if o["kind"] == "blur_face"]
        assert any(o["kind"] == "flag" and o["params"]["check"] == "privacy" for o in doc["operations"])
        yy, xx = np.mgrid[0 : plain.shape[0], 0 : plain.shape[1]].astype(np.float32) + 0.5
        under = np.zeros(plain.shape[:2], dtype=np.float32)
        for o in ops:
            under = np.maximum(under, face_lift_mask(xx, yy, tuple(o["params"]["box"]), 0.0))
        for box in boxes:
            drawn += 1
            if not any(_iou(tuple(o["params"]["face_box"]), box) >= 0.3 for o in ops):
                continue
            blurred_faces += 1
            x, y, w, h = (int(round(v)) for v in box)
            inside = (slice(max(0, y), y + h), slice(max(0, x), x + w))
            # The drawn face lies under the blur, and nothing of its detail is left (the grain on it is new).
            assert (under[inside] >= 0.99).mean() >= 0.8, (name, box)
            kept = detail_kept(blurred, plain, inside)
            assert abs(kept) <= 0.15, (name, box, kept)
        found_plain += len(yunet.detect(plain))
        found_blurred += len(yunet.detect(blurred))
    assert drawn == 18 and blurred_faces == 18
    summary = json.loads((outs["blurred"] / "summary.json").read_text())
    blurs = sum(o["kind"] == "blur_face" for name in truth
                for o in json.loads((outs["blurred"] / "instructions" / f"{name}.json").read_text())["operations"])
    assert summary["faces_blurred"] == blurs >= 18 and summary["images_with_faces_blurred"] == len(truth)
    assert json.loads((outs["plain"] / "summary.json").read_text())["faces_blurred"] == 0
    # postprod's own detector, run again on its delivery, finds the faces as delivered plain and none blurred.
    assert found_plain >= 15 and found_blurred == 0, (found_plain, found_blurred)
    # Camera Raw cannot blur a face: the Lightroom copy's note says its export shows them as photographed.
    note = json.loads((outs["blurred"] / "instructions" / "2008_002079.jpg.json").read_text())["xmp_note"]
    assert "faces 1, 2, 3, 4, 5, 6" in note and "blurred for privacy" in note and "as photographed" in note


def test_the_benchmark_reads_keypoint_faces_and_lays_the_mosaic(testdata: Path, tmp_path: Path) -> None:
    """benchmarks/privacy_blur.py: a person is a face where the nose and an eye are marked visible; the mosaic
    carries every face to where its photo lies."""
    from benchmarks.privacy_blur import drawn_faces, mosaic

    people = tmp_path / "people"
    people.mkdir()
    cv2.imwrite(str(people / "p.jpg"), np.full((120, 160, 3), 90, dtype=np.uint8))
    both = [50, 40, 2, 40, 30, 2, 60, 30, 2]  # nose, left eye, right eye: all visible
    one = [100, 40, 2, 0, 0, 0, 106, 32, 2]  # the right eye only
    hidden = [130, 40, 1, 125, 30, 2, 135, 30, 1]  # nose occluded
    (people / "p.json").write_text(json.dumps({
        "images": [{"id": 7, "file_name": "x/p.jpg"}],
        "annotations": [{"image_id": 7, "keypoints": k} for k in (both, one, hidden)],
        "categories": [{"keypoints": ["nose", "left_eye", "right_eye"]}]}))
    faces = drawn_faces(people)["p.jpg"]
    assert len(faces) == 2
    (box, points), (box1, _) = faces
    assert points == ((50.0, 40.0), (40.0, 30.0), (60.0, 30.0))
    assert box == pytest.approx((28.0, 11.333, 44.0, 44.0), abs=1e-3)  # 2.2 eye distances about the points' mean
    assert box1[2] == pytest.approx(3.0 * np.hypot(6.0, 8.0))
    frame = mosaic([testdata / "faces" / "pascal_voc", people], tmp_path / "mosaic")
    laid = drawn_faces(frame)["mosaic.jpg"]
    assert len(laid) == 18 + 2
    picture = cv2.imread(str(frame / "mosaic.jpg"))
    assert picture.shape == (4000, 6000, 3)
    first = sorted(pascal_voc_boxes(testdata / "faces" / "pascal_voc" / "boxes.xml").items())[0]
    x, y, w, h = (int(round(v)) for v in first[1][0])
    source = cv2.imread(str(testdata / "faces" / "pascal_voc" / first[0])).astype(int)
    assert np.abs(picture[y : y + h, x : x + w].astype(int) - source[y : y + h, x : x + w]).mean() < 3.0


def test_a_face_a_reviewer_marks_is_blurred_and_stays_across_replans(testdata: Path, tmp_path: Path) -> None:
    """A face the plan left alone (chart ``base`` blurs none: as a face the detector missed), marked by a reviewer
    in the review app over the box people drew on it: delivered blurred, kept by a re-plan, undone and removed."""
    voc = testdata / "faces" / "pascal_voc"
    name = "2008_002079.jpg"
    face_truth = min(pascal_voc_boxes(voc / "boxes.xml")[name], key=lambda b: b[2])  # its smallest face
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    (shoot / name).write_bytes((voc / name).read_bytes())
    out = tmp_path / "out"
    chart = tmp_path / "square.yaml"  # the base chart (no blurs) and a square crop: an operation of the plan's
    chart.write_text("schema_version: 2\nextends: base\ncrops:\n  - {aspect: '1:1', placement: face_aware}\n"
                     "renditions:\n  square:\n    crop: '1:1'\n"
                     "    long_edge_px: 800\n    format: jpeg\n    quality: 85\n")
    settings = RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart=str(chart))
    assert not process_shoot(settings).failed
    plain = cv2.imread(str(out / "exports" / "shoot" / "web" / name))
    client = create_app(out, reviewer="Ana").test_client()
    doc = client.get(f"/api/images/{name}").get_json()["doc"]
    assert not [o for o in doc["operations"] if o["kind"] == "blur_face"]

    def post(version: int, *changes: dict) -> Any:
        return client.post(f"/api/images/{name}", json={"version": version, "changes": list(changes)})

    # Refused, naming why: a slip of the mouse, a region off the picture, removing what the plan made.
    assert "at least 4 pixels" in post(0, {"add": "blur_face", "box": [10, 10, 2, 30]}).get_json()["error"]
    assert "off the" in post(0, {"add": "blur_face", "box": [-90, 10, 50, 50]}).get_json()["error"]
    crop = next(o["op_id"] for o in doc["operations"] if o["kind"] == "crop")
    assert "reject it instead" in post(0, {"op_id": crop, "remove": True}).get_json()["error"]

    head = [round(v, 1) for v in head_box(face_truth)]
    resp = post(0, {"add": "blur_face", "box": head})
    assert resp.status_code == 200, resp.get_json()
    data = resp.get_json()
    (op,) = [o for o in data["doc"]["operations"] if o["kind"] == "blur_face"]
    assert op["op_id"] == "blur_face-drawn-1" and op["params"] == {"box": head, "drawn": True}
    assert op["review"]["status"] == "accepted" and op["review"]["by"] == "Ana" and op["review"]["added"]
    assert op["reason"] == "blurred for privacy: a face Ana marked in the review"
    assert data["undo"]["changes"] == [{"op_id": "blur_face-drawn-1", "remove": True}]
    assert "1 face blurred" in data["doc"]["summary"]
    assert "1 face a reviewer marked blurred for privacy" in data["doc"]["xmp_note"]  # (Camera Raw cannot)
    jsonschema.validate(data["doc"], json.loads(SCHEMA_PATH.read_text()))

    # Undo takes it away; the undo's own undo (redo) draws it again under its id.
    undone = client.post("/api/decisions", json={"items": [data["undo"]]})
    assert undone.status_code == 200, undone.get_json()
    assert not [o for o in _doc(out, name)["operations"] if o["kind"] == "blur_face"]
    redone = client.post("/api/decisions", json=undone.get_json()["undo"])
    assert redone.status_code == 200, redone.get_json()
    (again,) = [o for o in _doc(out, name)["operations"] if o["kind"] == "blur_face"]
    assert again["op_id"] == op["op_id"] and again["params"] == op["params"] and again["review"]["added"]

    # A re-plan (the chart still blurs none) makes the reviewer's blur again; the render delivers it.
    assert not process_shoot(dataclasses.replace(settings, only="plan")).failed
    assert [o["params"] for o in _doc(out, name)["operations"] if o["kind"] == "blur_face"] == [op["params"]]
    assert "1 face a reviewer marked blurred for privacy" in _doc(out, name)["xmp_note"]  # (Camera Raw cannot)
    assert not process_shoot(dataclasses.replace(settings, only="render")).failed
    blurred = cv2.imread(str(out / "exports" / "shoot" / "web" / name))
    assert blurred.shape == plain.shape  # the web rendition at the photo's own size: the drawn box as it stands
    x, y, w, h = (int(round(v)) for v in face_truth)
    inside = (slice(y, y + h), slice(x, x + w))
    assert abs(detail_kept(blurred, plain, inside)) <= 0.15  # nothing of the face left (the grain on it is new)
    yy, xx = np.mgrid[0 : plain.shape[0], 0 : plain.shape[1]].astype(np.float32) + 0.5
    touched = face_lift_mask(xx, yy, tuple(head), BLUR_FEATHER * max(head[2], head[3])) > 0
    # Nothing else moved: beyond the JPEG blocks (16 px, chroma subsampled) the feathered ellipse reaches into.
    beyond = cv2.dilate(touched.astype(np.uint8), np.ones((33, 33), np.uint8)) == 0
    assert beyond.mean() > 0.8 and np.array_equal(blurred[beyond], plain[beyond])

    # Removed for good: a re-plan does not make it again.
    version = client.get(f"/api/images/{name}").get_json()["version"]
    assert post(version, {"op_id": op["op_id"], "remove": True}).status_code == 200
    assert not process_shoot(dataclasses.replace(settings, only="plan")).failed
    assert not [o for o in _doc(out, name)["operations"] if o["kind"] == "blur_face"]


def _doc(out: Path, name: str) -> dict:
    return json.loads((out / "instructions" / f"{name}.json").read_text())


def test_a_blur_of_the_plans_redrawn_by_a_reviewer_keeps_its_box_across_replans(testdata: Path,
                                                                                  tmp_path: Path) -> None:
    name = "2008_002079.jpg"
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    (shoot / name).write_bytes((testdata / "faces" / "pascal_voc" / name).read_bytes())
    chart = tmp_path / "blur.yaml"
    chart.write_text("schema_version: 2\nextends: base\nprivacy:\n  blur_faces: all\n")
    settings = RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local", chart=str(chart))
    assert not process_shoot(settings).failed
    client = create_app(settings.out_dir, reviewer="Ana").test_client()
    ops = client.get(f"/api/images/{name}").get_json()["doc"]["operations"]
    faces = [o for o in ops if o["kind"] == "blur_face"]
    planned = faces[0]
    x, y, w, h = planned["params"]["box"]
    taller = [x, y - 0.25 * h, w, 1.25 * h]  # a hat the head's proportions left out
    url = f"/api/images/{name}"
    resp = client.post(url, json={"version": 0, "changes": [{"op_id": planned["op_id"], "box": taller}]})
    assert resp.status_code == 200, resp.get_json()
    removed = client.post(url, json={"version": resp.get_json()["version"],
                                     "changes": [{"op_id": planned["op_id"], "remove": True}]})
    assert "reject it instead" in removed.get_json()["error"]  # the plan's own is turned down, not taken away
    # Turned down, it leaves the XMP's note (made again from the operations as decided); a note on the files stays.
    version = resp.get_json()["version"]
    rejected = client.post(url, json={"version": version,
                                      "changes": [{"op_id": planned["op_id"], "status": "rejected"}]})
    note = rejected.get_json()["doc"]["xmp_note"]
    kept = [str(o["params"]["face_index"] + 1) for o in faces[1:] if "face_index" in o["params"]]
    assert planned["params"]["face_index"] == 0 and f"faces {', '.join(kept)} and" in note, note
    files = {**rejected.get_json()["doc"], "xmp_note": "the sidecar is b.xmp: a.CR2 took its stem; " + note}
    assert files_note(files) == "the sidecar is b.xmp: a.CR2 took its stem"
    client.post(url, json={"version": version + 1, "changes": [{"op_id": planned["op_id"], "status": "accepted"}]})
    assert not process_shoot(dataclasses.replace(settings, only="plan")).failed
    op = next(o for o in _doc(settings.out_dir, name)["operations"] if o["op_id"] == planned["op_id"])
    assert op["params"]["box"] == [round(v, 1) for v in taller] and op["review"]["status"] == "accepted"
    assert op["params"]["face_box"] == planned["params"]["face_box"]  # the detector's, as it was


def test_the_benchmarks_reviewer_pass_blurs_a_missed_face_through_the_review_store(testdata: Path,
                                                                                    tmp_path: Path) -> None:
    """benchmarks/privacy_blur.py --review: a face the plan did not blur (here its blur turned down, so that the
    reviewer's box is the only one on it), drawn over on a flagged frame, is judged blurred on the new delivery."""
    from benchmarks.privacy_blur import judge, judge_reviewed, reviewer_pass

    folder = tmp_path / "one"
    folder.mkdir()
    name = "2008_002079.jpg"
    (folder / name).write_bytes((testdata / "faces" / "pascal_voc" / name).read_bytes())
    (folder / "boxes.xml").write_text((testdata / "faces" / "pascal_voc" / "boxes.xml").read_text())
    work = tmp_path / "work"
    result = judge(folder, work, {})
    face = result.faces[0]
    assert face.blurred and face.flagged and face.reviewed is None
    outs = {"plain": work / "plain", "blurred": work / "blurred"}
    store = ReviewStore(outs["blurred"])
    doc, version = store.get(name)
    plans = [o for o in doc["operations"] if o["kind"] == "blur_face"
             and _iou(tuple(o["params"]["face_box"]), face.source_box) >= 0.3]
    store.decide([Decision(name, version, changes=tuple(OpChange(o["op_id"], status="rejected") for o in plans))],
                 "test")
    face.blurred = False  # as the plan had missed it
    reviewer_pass(result, outs)
    drawn = [o for o in store.get(name)[0]["operations"] if o["params"].get("drawn")]
    assert [o["params"]["box"] for o in drawn] == [[round(v, 1) for v in head_box(face.source_box)]]
    assert len(result.decide_s) == 1 and result.reviewed_pass
    assert not process_shoot(RunSettings(shoot_dir=work / "shoot", out_dir=outs["blurred"], executor="local",
                                         chart=str(work / "blur.yaml"), only="render")).failed
    judge_reviewed(result, outs)
    covered, kept = face.reviewed
    assert covered >= 0.9 and kept is not None and abs(kept) <= 0.15, face.reviewed
    assert all(f.reviewed is None for f in result.faces[1:])  # the faces the plan blurred are not drawn over


def test_the_blurs_grain_matches_grain_put_into_a_photo(testdata: Path, tmp_path: Path) -> None:
    """benchmarks/privacy_blur.py --grain on one PASCAL photo: with 8 of 255 of grain saved all but losslessly, the
    blurred heads are as grainy as the photo around them (0.7-1.4), and none of the face's detail is left."""
    from benchmarks.privacy_blur import grain_rows

    folder = tmp_path / "one"
    folder.mkdir()
    name = "2008_002079.jpg"
    (folder / name).write_bytes((testdata / "faces" / "pascal_voc" / name).read_bytes())
    (folder / "boxes.xml").write_text((testdata / "faces" / "pascal_voc" / "boxes.xml").read_text())
    cells_of = [r.strip("|").split("|") for r in grain_rows([folder])[2:]]
    rows = {(c[0].strip(), c[1].strip()): c for c in cells_of}
    cells = rows[("8", "100")]
    ratio, kept = float(cells[3].split()[0]), float(cells[5].split()[0])
    assert 0.7 <= ratio <= 1.4 and abs(kept) < 0.1, cells


def test_a_face_a_reviewer_marks_to_brighten_is_lifted_in_the_delivery_and_in_lightroom(testdata: Path,
                                                                                          tmp_path: Path) -> None:
    """A face the plan does not lift (its shadow put there by hand, below what the plan lifts: here the base chart's
    run), marked in the review app and given an amount: delivered that much brighter where people drew the face,
    written to Lightroom as a radial mask, kept by a re-plan."""
    voc = testdata / "faces" / "pascal_voc"
    name = "2008_002079.jpg"
    face_truth = max(pascal_voc_boxes(voc / "boxes.xml")[name], key=lambda b: b[2])
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    (shoot / name).write_bytes((voc / name).read_bytes())
    settings = RunSettings(shoot_dir=shoot, out_dir=tmp_path / "out", executor="local", chart="base")
    assert not process_shoot(settings).failed
    plain = cv2.imread(str(settings.out_dir / "exports" / "shoot" / "web" / name)).astype(np.float32)
    client = create_app(settings.out_dir, reviewer="Ana").test_client()
    url = f"/api/images/{name}"
    version = client.get(url).get_json()["version"]
    box = [round(v, 1) for v in face_truth]
    refused = client.post(url, json={"version": version, "changes": [{"add": "brighten_face", "box": box, "ev": -1}]})
    assert "brightens" in refused.get_json()["error"]
    resp = client.post(url, json={"version": version, "changes": [{"add": "brighten_face", "box": box}]})
    assert resp.status_code == 200, resp.get_json()
    (op,) = [o for o in resp.get_json()["doc"]["operations"] if o["params"].get("drawn")]
    assert op["op_id"] == "brighten_face-drawn-1" and op["params"]["ev"] == 0.5
    assert op["params"]["feather_px"] == round(0.25 * max(box[2], box[3]), 1)
    assert "1 face to brighten" in resp.get_json()["doc"]["summary"]
    jsonschema.validate(resp.get_json()["doc"], json.loads(SCHEMA_PATH.read_text()))
    # The reviewer sets the amount: a stop.
    resp = client.post(url, json={"version": resp.get_json()["version"], "changes": [{"op_id": op["op_id"], "ev": 1.0}]})
    assert resp.status_code == 200 and resp.get_json()["undo"]["changes"][0]["ev"] == 0.5
    xmp = (settings.out_dir / resp.get_json()["doc"]["xmp"]).read_text()
    assert 'crs:CorrectionName="postprod face (marked)"' in xmp and 'crs:LocalExposure2012="+1.000000"' in xmp
    assert not process_shoot(dataclasses.replace(settings, only="plan")).failed
    (kept,) = [o for o in _doc(settings.out_dir, name)["operations"] if o["params"].get("drawn")]
    assert kept["params"]["ev"] == 1.0 and kept["params"]["box"] == box
    assert not process_shoot(dataclasses.replace(settings, only="render")).failed
    lifted = cv2.imread(str(settings.out_dir / "exports" / "shoot" / "web" / name)).astype(np.float32)
    # Where people drew the face, a stop more light (the centre, the feather beyond); far from it, nothing moved.
    x, y, w, h = (int(round(v)) for v in face_truth)
    centre = (slice(y + h // 4, y + 3 * h // 4), slice(x + w // 4, x + 3 * w // 4))
    before, after = srgb_to_linear(plain[centre] / 255.0), srgb_to_linear(lifted[centre] / 255.0)
    unclipped = (before > 0.02) & (before < 0.4)  # doubled, still under white (a highlight shoulder rolls off)
    ratio = float(np.median(after[unclipped] / before[unclipped]))
    assert unclipped.mean() > 0.5 and 1.8 < ratio < 2.2, (ratio, unclipped.mean())
    assert np.array_equal(lifted[:, :20], plain[:, :20]) if x > 150 else np.array_equal(lifted[:, -20:], plain[:, -20:])
