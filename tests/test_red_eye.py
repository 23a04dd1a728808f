"""A flash's red eyes: found on the eyes of real faces where red pupils were put, taken back to dark in the delivery,
and none found on the photos as they are."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest

from benchmarks.red_eye import pupil_redness, web_export, with_red_eyes
from models.face_detectors import YuNetDetector
from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.red_eye import find_red_eyes, redness
from pipeline.imaging.render import Adjustments, RedEye, render_frame, render_rows
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import SCHEMA_PATH
from pipeline.review.app import create_app

PHOTOS = ("2007_007763.jpg", "2008_001009.jpg", "2008_001322.jpg", "2008_002079.jpg")
SCALE = 3  # the PASCAL photos are 500 px: their pupils a pixel or two


def _enlarged(faces_dir: Path, name: str) -> np.ndarray:
    return cv2.resize(cv2.imread(str(faces_dir / name)), None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)


def _linear(bgr: np.ndarray) -> np.ndarray:
    return srgb_to_linear(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)


def _pupils(photo: np.ndarray, detector: YuNetDetector) -> list[tuple[float, float, float]]:
    """A wide pupil on each eye the detector finds (a tenth of the eye distance), where eyes are 30 px apart or
    more."""
    out = []
    for d in detector.detect(photo):
        (lx, ly), (rx, ry) = d.landmarks[0], d.landmarks[1]
        apart = math.hypot(rx - lx, ry - ly)
        if apart >= 30:
            out += [(lx, ly, 0.1 * apart), (rx, ry, 0.1 * apart)]
    return out


def test_red_pupils_are_found_where_they_were_put_and_none_on_the_photos_as_they_are(faces_dir: Path,
                                                                                     model_dir: Path) -> None:
    detector = YuNetDetector(model_dir / "face_detection_yunet_2023mar.onnx")
    rng = np.random.default_rng(3)
    put = found = made_up = 0
    for name in PHOTOS:
        photo = _enlarged(faces_dir, name)
        pupils = _pupils(photo, detector)
        red = with_red_eyes(photo, pupils, rng)
        for picture, truth in ((photo, []), (red, pupils)):
            got = [e for d in detector.detect(picture)
                   for e in find_red_eyes(_linear(picture), [v for p in d.landmarks for v in p])]
            hits = [t for t in truth if any(math.hypot(x - t[0], y - t[1]) <= t[2] for x, y, _ in got)]
            put, found = put + len(truth), found + len(hits)
            made_up += len(got) - len(hits)
    assert put >= 20 and found >= 0.9 * put, (found, put)
    assert made_up == 0


def test_the_renderer_takes_the_red_out_of_the_pupil_and_leaves_the_rest() -> None:
    h = w = 120
    picture = np.zeros((h, w, 3), dtype=np.float32)
    picture[:] = (0.45, 0.25, 0.18)  # skin (linear: red 1.8 times green)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    pupil = np.hypot(xx - 60, yy - 60) <= 10
    picture[pupil] = (0.40, 0.03, 0.03)  # a flash's red pupil
    catch = np.hypot(xx - 57, yy - 57) <= 2
    picture[catch] = (0.9, 0.9, 0.9)
    frame = (0.0, 0.0, float(w), float(h))
    adjust = Adjustments(red_eyes=(RedEye(60.0, 60.0, 13.0),))
    out = render_frame(picture.copy(), w, h, adjust, frame, (w, h), "srgb", 0.0, 16)
    plain = render_frame(picture.copy(), w, h, Adjustments(), frame, (w, h), "srgb", 0.0, 16)
    lin = srgb_to_linear(out.astype(np.float32) / 65535.0)
    core = pupil & ~catch & (np.hypot(xx - 60, yy - 60) <= 8)
    assert float(np.median(redness(lin[core]))) < 1.2  # red no more than its green and blue: a dark pupil
    assert lin[core].mean() < _linear_mean(plain, core)  # darker, not lighter
    np.testing.assert_array_equal(out[~pupil & ~catch], plain[~pupil & ~catch])  # skin (not that red) as it was
    np.testing.assert_array_equal(out[catch], plain[catch])  # the catch light too
    # Strip by strip, the same picture.
    rows = [render_rows(lambda x0, y0, x1, y1: picture[y0:y1, x0:x1].copy(), w, h, adjust, frame, (w, h), (a, b),
                        "srgb", 0.0, 16) for a, b in ((0, 55), (55, 120))]
    np.testing.assert_array_equal(np.concatenate(rows), out)


def _linear_mean(srgb16: np.ndarray, where: np.ndarray) -> float:
    return float(srgb_to_linear(srgb16.astype(np.float32) / 65535.0)[where].mean())


def test_red_eyes_are_delivered_dark_unless_the_chart_keeps_them(faces_dir: Path, model_dir: Path,
                                                                 tmp_path: Path) -> None:
    detector = YuNetDetector(model_dir / "face_detection_yunet_2023mar.onnx")
    photo = _enlarged(faces_dir, "2008_001322.jpg")  # three faces near the camera
    pupils = _pupils(photo, detector)
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    cv2.imwrite(str(shoot / "flash.png"), with_red_eyes(photo, pupils, np.random.default_rng(8)))
    keep = tmp_path / "keep.yaml"
    keep.write_text("schema_version: 2\nextends: base\nfaces:\n  red_eye: false\n")
    outs = {}
    for label, chart in (("corrected", "base"), ("kept", str(keep))):
        outs[label] = tmp_path / label
        assert not process_shoot(RunSettings(shoot_dir=shoot, out_dir=outs[label], executor="local",
                                             chart=chart)).failed
    doc = json.loads((outs["corrected"] / "instructions" / "flash.png.json").read_text())
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    ops = [o for o in doc["operations"] if o["kind"] == "red_eye"]
    assert sum(len(o["params"]["eyes"]) for o in ops) == len(pupils) >= 4
    assert "red eyes on" in doc["summary"] and "red-eye tool" in doc["xmp_note"]
    kept_doc = json.loads((outs["kept"] / "instructions" / "flash.png.json").read_text())
    assert not [o for o in kept_doc["operations"] if o["kind"] == "red_eye"]
    corrected, kept = web_export(outs["corrected"], "flash.png"), web_export(outs["kept"], "flash.png")
    k = corrected.shape[1] / doc["image"]["width"]
    for x, y, r in pupils:
        eye = (x * k, y * k, r * k)
        assert pupil_redness(kept, eye) > 5.0 and pupil_redness(corrected, eye) < 2.5, eye

    # A red eye the finder missed (here: kept by the chart), marked in the review app over its pupil: taken out.
    client = create_app(outs["kept"], reviewer="Ana").test_client()
    x, y, r = pupils[0]
    box = [round(x - 1.2 * r, 1), round(y - 1.2 * r, 1), round(2.4 * r, 1), round(2.4 * r, 1)]
    resp = client.post("/api/images/flash.png", json={"version": 0, "changes": [{"add": "red_eye", "box": box}]})
    assert resp.status_code == 200, resp.get_json()
    (marked,) = [o for o in resp.get_json()["doc"]["operations"] if o["kind"] == "red_eye"]
    assert marked["params"]["drawn"] and marked["params"]["eyes"] == [[round(box[0] + box[2] / 2, 1),
                                                                        round(box[1] + box[3] / 2, 1), box[2] / 2]]
    jsonschema.validate(resp.get_json()["doc"], json.loads(SCHEMA_PATH.read_text()))
    assert not process_shoot(RunSettings(shoot_dir=shoot, out_dir=outs["kept"], executor="local", chart=str(keep),
                                         only="render")).failed
    again = web_export(outs["kept"], "flash.png")
    assert pupil_redness(again, (x * k, y * k, r * k)) < 2.5
    x2, y2, r2 = pupils[1]
    assert pupil_redness(again, (x2 * k, y2 * k, r2 * k)) > 5.0  # the eye not marked stays as the chart keeps it


@pytest.mark.parametrize("landmarks", [[], [10.0, 10.0, 15.0, 10.0]])
def test_eyes_too_close_to_judge_are_not_judged(landmarks: list[float]) -> None:
    picture = np.zeros((40, 40, 3), dtype=np.float32)
    picture[..., 0] = 0.5  # red everywhere
    assert find_red_eyes(picture, landmarks) == []


def test_red_eyes_in_a_raw_from_a_flash_are_found_and_delivered_dark(faces_dir: Path, model_dir: Path,
                                                                      tmp_path: Path) -> None:
    """The same in a DNG whose EXIF says the flash fired (a RAW's light, developed through the camera-like curve)."""
    from pipeline.imaging.dng import write_dng_from_linear_rgb

    detector = YuNetDetector(model_dir / "face_detection_yunet_2023mar.onnx")
    photo = _enlarged(faces_dir, "2008_001322.jpg")
    pupils = _pupils(photo, detector)
    red = _linear(with_red_eyes(photo, pupils, np.random.default_rng(9)))
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    write_dng_from_linear_rgb(shoot / "flash.dng", red, flash=1)
    out = tmp_path / "out"
    assert not process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="base")).failed
    doc = json.loads((out / "instructions" / "flash.dng.json").read_text())
    ops = [o for o in doc["operations"] if o["kind"] == "red_eye"]
    assert sum(len(o["params"]["eyes"]) for o in ops) == len(pupils) >= 4
    assert all("the flash fired" in o["reason"] for o in ops)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["red_eyes"], summary["images_with_red_eyes"]) == (len(pupils), 1)
    keep = tmp_path / "keep.yaml"
    keep.write_text("schema_version: 2\nextends: base\nfaces:\n  red_eye: false\n")
    kept_out = tmp_path / "kept"
    assert not process_shoot(RunSettings(shoot_dir=shoot, out_dir=kept_out, executor="local", chart=str(keep))).failed
    export, kept = web_export(out, "flash.dng"), web_export(kept_out, "flash.dng")
    k = export.shape[1] / doc["image"]["width"]
    for x, y, r in pupils:  # (as developed, kept: 46-75 times their green and blue; corrected: about 1)
        assert pupil_redness(kept, (x * k, y * k, r * k)) > 10.0 and pupil_redness(export, (x * k, y * k, r * k)) < 2.5
