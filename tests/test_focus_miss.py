"""Focus misses: blur measured at edges, the subject against the frame's sharp part, camera shake."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.equipment.findings import Body, FindingKind, FrameRef, focus_findings
from pipeline.imaging.color import Proxy, srgb_to_linear
from pipeline.imaging.focus_miss import FocusSubject, assess_focus, edge_blur
from tests.conftest import require


def rectangles(seed: int = 0, shape=(800, 1200), contrast: float = 1.0) -> np.ndarray:
    """Grey image (0-1, gamma-encoded) of random overlapping rectangles: step edges in every direction."""
    rng = np.random.default_rng(seed)
    h, w = shape
    img = np.full(shape, 0.5, np.float32)
    for _ in range(300):
        x, y = rng.integers(0, w), rng.integers(0, h)
        cv2.rectangle(img, (int(x), int(y)), (int(x + rng.integers(8, 80)), int(y + rng.integers(8, 80))), float(rng.uniform(0.15, 0.85)), -1)
    pts = rng.integers(0, min(h, w), (120, 2))
    for (x, y), r in zip(pts, rng.integers(5, 40, 120)):
        cv2.circle(img, (int(x * w / min(h, w)), int(y)), int(r), float(rng.uniform(0.15, 0.85)), -1)
    return 0.5 + (img - 0.5) * contrast


def as_linear_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(srgb_to_linear(np.clip(gray, 0, 1))[..., None], 3, axis=2).astype(np.float32)


# --- tier 1 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("contrast", [1.0, 0.3])
def test_edge_blur_recovers_the_blur_whatever_the_contrast(sigma, contrast):
    img = cv2.GaussianBlur(rectangles(contrast=contrast), (0, 0), sigma)
    _, _, blur, _ = edge_blur(img)
    assert blur.size > 1000
    assert float(np.median(blur)) == pytest.approx(sigma, rel=0.25)


def test_sharp_frame_is_not_a_miss():
    v = assess_focus(as_linear_rgb(cv2.GaussianBlur(rectangles(1), (0, 0), 0.6)))
    assert not v.missed and v.sharpest_blur_px < 1.0 and v.work_long_edge == 1200


def test_defocused_frame_is_a_miss():
    v = assess_focus(as_linear_rgb(cv2.GaussianBlur(rectangles(2), (0, 0), 3.0)))
    assert v.missed and "nothing in the frame is sharp" in v.detail
    assert v.sharpest_blur_px == pytest.approx(3.0, rel=0.3)


def test_soft_face_in_a_sharp_frame_is_a_miss():
    gray = cv2.GaussianBlur(rectangles(3), (0, 0), 0.6)
    box = (500, 250, 200, 260)  # x, y, w, h in pixels
    x, y, w, h = box
    gray[y - 40 : y + h + 40, x - 40 : x + w + 40] = cv2.GaussianBlur(gray, (0, 0), 3.0)[y - 40 : y + h + 40, x - 40 : x + w + 40]
    face = FocusSubject.main_face([(box, 0.95)], 1200, 800)
    v = assess_focus(as_linear_rgb(gray), face, shutter_s=1 / 500, focal_length_mm=85)
    assert v.missed and "focus missed the subject" in v.detail
    assert v.subject_blur_px > 2 and v.sharpest_blur_px < 1.0
    assert "camera shake" not in v.detail
    # The same face sharp: no miss.
    assert not assess_focus(as_linear_rgb(cv2.GaussianBlur(rectangles(3), (0, 0), 0.6)), face).missed


def test_a_face_defocused_in_a_crisp_frame_is_a_miss_though_its_own_blur_is_low():
    # A face read at about 1.5 px in a frame whose sharp part reads 0.7: 1.35 px of defocus on top of
    # the frame's, a miss; a floor on the face's own blur (1.6 px) used to pass it for sharp.
    box = (500, 250, 200, 260)
    face = FocusSubject.main_face([(box, 0.95)], 1200, 800)

    def with_face_blurred(sigma: float) -> np.ndarray:
        light = as_linear_rgb(rectangles(3))  # blurred in light, as a lens does
        x, y, w, h = box
        region = np.s_[y - 40 : y + h + 40, x - 40 : x + w + 40]
        light[region] = cv2.GaussianBlur(light, (0, 0), sigma)[region]
        return light

    v = assess_focus(with_face_blurred(1.4), face, shutter_s=1 / 500, focal_length_mm=85)
    assert v.subject_blur_px < 1.6 and v.sharpest_blur_px < 0.8
    assert v.missed and "focus missed the subject" in v.detail
    # A face barely softer than the rest (under FACE_DEFOCUS_PX of defocus) is not a miss.
    v = assess_focus(with_face_blurred(1.0), face, shutter_s=1 / 500, focal_length_mm=85)
    assert not v.missed and "the face is sharp" in v.detail


def test_camera_shake_is_motion_and_names_the_shutter():
    kernel = np.zeros((1, 15), np.float32)
    kernel[0, :] = 1 / 15
    gray = cv2.filter2D(cv2.GaussianBlur(rectangles(4), (0, 0), 0.6), -1, kernel)
    v = assess_focus(as_linear_rgb(gray), shutter_s=1 / 10, focal_length_mm=105)
    assert v.missed and v.directional and "one direction" in v.detail
    assert "1/10 s at 105 mm" in v.detail and "camera shake is likely" in v.detail


def test_a_shutter_too_short_for_shake_leaves_a_dragged_frame_to_the_other_rules():
    kernel = np.full((1, 6), 1 / 6, np.float32)  # a drag the frame's sharp part survives (1.3 px across)
    sharp = cv2.GaussianBlur(rectangles(4), (0, 0), 0.6)
    dragged = as_linear_rgb(cv2.filter2D(sharp, -1, kernel))
    # 1/1000 s at 24 mm: a hand cannot drag the picture in that time.
    v = assess_focus(dragged, shutter_s=1 / 1000, focal_length_mm=24)
    assert not v.missed and v.directional
    assert "1/1000 s at 24 mm is too short for camera shake" in v.detail
    # Without EXIF, or at 1/60 s with 85 mm (slower than half of 1/focal length): shake.
    assert assess_focus(dragged).missed
    assert assess_focus(dragged, shutter_s=1 / 60, focal_length_mm=85).missed
    # The gate lifts the shake rule only: a defocused frame at a short shutter is still a miss.
    soft = as_linear_rgb(cv2.filter2D(cv2.GaussianBlur(rectangles(4), (0, 0), 4.0), -1, kernel))
    assert assess_focus(soft, shutter_s=1 / 1000, focal_length_mm=24).missed


@pytest.mark.parametrize(
    "shutter_s, focal_mm, possible",
    [(1 / 10, 105, True), (1 / 125, 85, True), (1 / 250, 85, False), (1 / 100, 50, False), (1 / 90, 50, True),
     (None, 50, True), (1 / 1000, None, True), (0.0, 50, True)],
)
def test_shake_possible_is_the_reciprocal_rule_with_room_for_small_sensors(shutter_s, focal_mm, possible):
    from pipeline.imaging.focus_miss import shake_possible

    assert shake_possible(shutter_s, focal_mm) is possible


def test_main_face_ignores_unsure_and_tiny_faces():
    faces = [((10, 10, 300, 300), 0.5), ((500, 100, 20, 20), 0.99), ((100, 400, 120, 150), 0.9)]
    s = FocusSubject.main_face(faces, 1200, 800)
    assert s.source == "face" and s.x * 1200 == pytest.approx(100 + 60 - 60 * 1.35)
    assert FocusSubject.main_face(faces[:2], 1200, 800) is None


def test_flat_frame_has_no_verdict():
    v = assess_focus(np.full((400, 600, 3), 0.2, np.float32))
    assert not v.missed and "too few edges" in v.detail


def test_bad_input():
    with pytest.raises(ValueError, match="at least 32"):
        assess_focus(np.zeros((10, 10, 3), np.float32))


def test_a_strip_is_judged_not_refused():
    # 40 x 4000: shrunk to the working size alone it would be 15 px across, under what edges need.
    sharp = rectangles(shape=(40, 4000))
    assert not assess_focus(as_linear_rgb(sharp)).missed
    assert assess_focus(as_linear_rgb(cv2.GaussianBlur(sharp, (0, 0), 6))).missed


def test_focus_findings_rows():
    gray = cv2.GaussianBlur(rectangles(2), (0, 0), 3.0)
    verdicts = [
        (assess_focus(as_linear_rgb(gray)), FrameRef("a.dng")),
        (assess_focus(as_linear_rgb(cv2.GaussianBlur(rectangles(1), (0, 0), 0.6))), FrameRef("b.dng")),
    ]
    rows = focus_findings(Body("S9", "Acme", "Z"), verdicts)
    assert [(r.kind, r.source_path, r.frames, r.frames_examined) for r in rows] == [(FindingKind.FOCUS_MISS, "a.dng", 1, 2)]
    assert 0 < rows[0].strength < 0.01 and rows[0].detail.startswith("a.dng: nothing in the frame is sharp")


# --- tier 2: a real portrait ------------------------------------------------------------------------------
def test_real_portrait_sharp_then_defocused(exposure_dir, model_dir):
    from models.face_detectors import detect_on_proxy, get_face_detector

    with Image.open(exposure_dir / "Floris van Lint-CC BY-NC 2.0.jpg") as im:
        rgb = srgb_to_linear(np.asarray(im.convert("RGB").resize((1536, 1024)), dtype=np.float32) / 255.0)
    det = get_face_detector("yunet")

    def subject(img: np.ndarray) -> FocusSubject | None:
        dets = detect_on_proxy(det, Proxy(rgb=img, scale=1.0).srgb8, 1.0, 1280)
        return FocusSubject.main_face([(d.box, d.score) for d in dets], img.shape[1], img.shape[0])

    face = subject(rgb)
    assert face is not None
    sharp = assess_focus(rgb, face)
    assert not sharp.missed, sharp.detail
    disc = np.zeros((17, 17), np.float32)  # defocus: a disc of 0.5 % of the width
    cv2.circle(disc, (8, 8), 8, 1.0, -1)
    soft = cv2.filter2D(rgb, -1, disc / disc.sum())
    verdict = assess_focus(soft, subject(soft) or face)
    assert verdict.missed, verdict.detail


def test_percentiles_by_partition_are_numpys():
    from pipeline.imaging.focus_miss import _percentiles

    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 10, 41, 1000):
        a = rng.gamma(2.0, 1.0, n).astype(np.float32)
        got = _percentiles(a, (30, 50))
        assert got == pytest.approx([np.percentile(a, 30), np.percentile(a, 50)], rel=1e-12, abs=1e-12)


def test_encoded_luma_is_linear_to_srgb_of_the_luminance():
    from pipeline.imaging.color import linear_to_srgb, luminance
    from pipeline.imaging.focus_miss import _encoded_luma

    rgb = np.random.default_rng(1).uniform(-0.1, 1.2, (50, 70, 3)).astype(np.float32)
    assert np.array_equal(_encoded_luma(rgb), linear_to_srgb(np.clip(luminance(rgb), 0.0, 1.0)).astype(np.float32))


def test_a_back_focused_face_the_detector_loses_at_1280_px_is_found_at_half_that(exposure_dir, model_dir, tmp_path):
    # The corpus's back focus at its largest (a disc of 18 photosites, 9 px of this 1500 px frame) on
    # the face of a tuning photo: YuNet no longer finds the face at 1280 px, and the salient region
    # alone was judged (sharp); inspect_equipment's second look at 640 px finds it and the miss.
    from benchmarks.equipment_corpus import back_focused
    from models.face_detectors import detect_on_proxy, get_face_detector
    from pipeline.kernel.records import EquipmentCheck, ImageRecord, SourceKind, SourceTask, WorkItem
    from pipeline.kernel.stage import RunContext
    from stages import REGISTRY

    with Image.open(exposure_dir / "a2490-WP_CRW_3690_N1.5.JPG") as im:
        rgb = srgb_to_linear(np.asarray(im.convert("RGB").resize((1500, 1000), Image.BICUBIC), dtype=np.float32) / 255.0)
    det = get_face_detector("yunet")
    x, y, w, h = max(detect_on_proxy(det, Proxy(rgb=rgb, scale=1.0).srgb8, 1.0, 1280), key=lambda d: d.box[2]).box
    soft = back_focused(rgb, [x / 1500, y / 1000, w / 1500, h / 1000], 9.0).astype(np.float32)
    # The detector's first look (the shadow pass's copy pushed +1.25 EV finds this face again at 0.81,
    # and detect_faces then keeps it: the second look below is for a face no look finds).
    first = detect_on_proxy(det, Proxy(rgb=soft, scale=1.0).srgb8, 1.0, 1280, shadow_pass=False)
    assert FocusSubject.main_face([(d.box, d.score) for d in first], 1500, 1000) is None
    assert not assess_focus(soft, None).missed

    stage_cls = REGISTRY["inspect_equipment"]
    task = SourceTask(tmp_path / "a.dng", "a.dng", "0" * 64, 1, "dng", SourceKind.RAW)
    record = ImageRecord("a.dng", "0" * 64, 1, "dng", SourceKind.RAW)
    check = EquipmentCheck()
    stage = stage_cls(stage_cls.Params(), RunContext(shoot_dir=tmp_path, out_dir=tmp_path))
    stage.setup()
    stage._judge_focus(WorkItem(task, record), Proxy(rgb=soft, scale=1.0), check)
    assert check.focus_miss and check.focus_subject == "face", check.focus_detail
    assert "focus missed the subject" in check.focus_detail
    # Without the second look, the check is the old one.
    check = EquipmentCheck()
    stage = stage_cls(stage_cls.Params(focus_second_look=False), RunContext(shoot_dir=tmp_path, out_dir=tmp_path))
    stage._judge_focus(WorkItem(task, record), Proxy(rgb=soft, scale=1.0), check)
    assert not check.focus_miss and check.focus_subject == "salient"


def test_a_defocused_frame_with_dark_silhouettes_is_not_read_sharp_by_its_shadows_noise(testdata):
    # A tuning photo (dark towers against a cloudy sky) defocused as the corpus does (a disc of 9.8
    # photosites, 4.9 px of this 1500 px frame) with shot and read noise: measured in encoded values, the
    # shadows' noise (which the sRGB curve multiplies) made the towers' edges read 1.4 px, "sharp
    # elsewhere"; in linear light the frame reads soft everywhere.
    from benchmarks.equipment_corpus import defocused

    with Image.open(require(testdata / "wb" / "Flickr_Davis_Doherty_CC_BY_2.0.jpg")) as im:
        rgb = srgb_to_linear(np.asarray(im.convert("RGB").resize((1500, 1000), Image.BICUBIC), dtype=np.float32) / 255.0)
    soft = defocused(rgb, 4.9).astype(np.float32)
    electrons_at_white, read_noise = 1875.0, 3.0  # the corpus's sensor at ISO 1600
    noise = np.random.default_rng(0).standard_normal(soft.shape).astype(np.float32)
    noisy = np.clip(soft + noise * np.sqrt(soft * electrons_at_white + read_noise**2) / electrons_at_white, 0.0, 1.0)
    v = assess_focus(noisy, None)
    assert v.missed and "nothing in the frame is sharp" in v.detail
    assert v.sharpest_blur_px > 1.8


def test_a_direction_whose_edges_read_at_the_estimates_ceiling_is_not_a_shake() -> None:
    # Eight sharp regions, edges of every direction at 0.8 px; in one of them half the 45-degree "edges" read
    # at the ceiling (fine and coarse probes alike: a texture, not a blur). Pooled, that one region added
    # 12**2 / 8 to one direction: 4.2 px of "motion" (photoprism's sharp 500 px corgi and door photos).
    from pipeline.imaging.focus_miss import _MAX_BLUR, MOTION_MIN_PX, _frame_motion, _GridEdges, _Region

    def region(p50: tuple[float, float, float, float]) -> _Region:
        return _Region(200, 0.8, (50, 50, 50, 50), (0.8,) * 4, p50)

    sharp = [region((0.8, 0.8, 0.8, 0.8)) for _ in range(7)]
    odd = region((0.8, _MAX_BLUR, 0.8, 0.8))
    assert _frame_motion(_GridEdges([*sharp, odd], 6, 4)) == (False, 0.0)
    # A shake blurs the edges across it in every region: still found.
    shaken = [region((3.0, 2.0, 0.8, 2.0)) for _ in range(8)]
    motion, px = _frame_motion(_GridEdges(shaken, 6, 4))
    assert motion and px > MOTION_MIN_PX


@pytest.mark.parametrize("angle_deg", [0.0, 10.0, 22.5, 45.0, 70.0, 90.0, 135.0, 160.0])
def test_a_drag_of_any_direction_fits_the_drag_pattern(angle_deg: float) -> None:
    # A drag along t widens an edge whose gradient points at a by cos(a - t): squared blurs c + m**2 cos**2(a - t).
    from pipeline.imaging.focus_miss import drag_misfit

    a = np.deg2rad([0.0, 45.0, 90.0, 135.0])
    pooled = 0.6**2 + 2.5**2 * np.cos(a - np.deg2rad(angle_deg)) ** 2
    assert drag_misfit(pooled) == pytest.approx(0.0, abs=1e-9)
    # One direction blurred alone (soft shading that runs one way) is as far from it as can be read.
    assert drag_misfit(np.array([3.0, 0.8, 0.8, 0.8]) ** 2) == pytest.approx(1.0)


def test_edges_soft_one_way_by_nature_are_not_a_shake() -> None:
    # The sharper regions of a sharp photo whose edges of one direction are soft shading (a facade's bands, cables
    # across a sky): one direction reads 3 px, the other three 0.8 px. Pooled, 2.9 px of "motion"; but a drag
    # would have widened the diagonal edges too (photoprism's and Wikimedia's sharp photos were reported shaken).
    from pipeline.imaging.focus_miss import MOTION_MIN_PX, _frame_motion, _GridEdges, _Region

    def region(p50: tuple[float, float, float, float]) -> _Region:
        return _Region(200, 0.8, (50, 50, 50, 50), (0.8,) * 4, p50)

    motion, px = _frame_motion(_GridEdges([region((3.0, 0.8, 0.8, 0.8)) for _ in range(8)], 6, 4))
    assert px > MOTION_MIN_PX and not motion


def test_one_region_drawn_out_among_sharp_ones_is_not_a_shake() -> None:
    # A press portrait's sharper regions: seven sharp every way (0.8 px), one whose edges read like a 9 px drag
    # (soft hair or a backdrop's shading that happens to fit the drag's pattern). By the regions' mean that one
    # region made 3.2 px of "camera shake" (serengil/deepface's img12 read 3.5 px with its third sharpest region
    # at 0.5 px); a shake drags every region, so the typical one must show it.
    from pipeline.imaging.focus_miss import MOTION_MIN_PX, _frame_motion, _GridEdges, _Region

    def region(p50: tuple[float, ...]) -> _Region:
        return _Region(200, 0.8, (50, 50, 50, 50), (0.8,) * 4, tuple(float(v) for v in p50))

    a = np.deg2rad([0.0, 45.0, 90.0, 135.0])
    dragged = tuple(np.sqrt(0.8**2 + 9.0**2 * np.cos(a) ** 2))
    motion, px = _frame_motion(_GridEdges([region((0.8,) * 4)] * 7 + [region(dragged)], 6, 4))
    assert not motion and px < MOTION_MIN_PX
    # Five regions of the eight dragged 3 px: a shake, found.
    shaken = tuple(np.sqrt(0.8**2 + 3.0**2 * np.cos(a) ** 2))
    motion, px = _frame_motion(_GridEdges([region((0.8,) * 4)] * 3 + [region(shaken)] * 5, 6, 4))
    assert motion and px == pytest.approx(3.0, abs=0.01)


@pytest.mark.parametrize("angle_deg", [0, 30, 60, 90, 120, 150])
def test_a_drag_across_a_real_photo_is_a_shake_in_every_direction(angle_deg: int) -> None:
    # skimage's coffee (a tuning photo), sharp as shipped, dragged 8 px (a box: 2.3 px sigma) at each angle.
    from skimage import data

    lin = srgb_to_linear(data.coffee().astype(np.float32) / 255).astype(np.float32)
    assert not assess_focus(lin).missed
    kernel = np.zeros((17, 17), np.float32)
    t = np.deg2rad(angle_deg)
    for s in np.linspace(-4, 4, 200):
        kernel[int(round(8 + s * np.sin(t))), int(round(8 + s * np.cos(t)))] += 1
    v = assess_focus(cv2.filter2D(lin, -1, kernel / kernel.sum()))
    assert v.missed and "one direction" in v.detail


def _line_kernel(length: int, angle_deg: float) -> np.ndarray:
    kernel = np.zeros((length * 2 + 1, length * 2 + 1), np.float32)
    t = np.deg2rad(angle_deg)
    for s in np.linspace(-length / 2, length / 2, 200):
        kernel[int(round(length + s * np.sin(t))), int(round(length + s * np.cos(t)))] += 1
    return kernel / kernel.sum()


def test_a_frame_drawn_one_way_around_a_sharp_face_is_not_a_shake() -> None:
    # A portrait whose hair and backdrop are drawn one way (serengil/deepface's press photos: long straight hair
    # over most of the frame read as 1.4-1.9 px of "camera shake") around a face sharp every way: a shake drags
    # the face too. skimage's astronaut (its face drawn by eye at 172, 72, 85 x 100 px) 3x up, dragged 12 px
    # everywhere but the face.
    from skimage import data

    lin = srgb_to_linear(data.astronaut().astype(np.float32) / 255).astype(np.float32)
    lin = cv2.resize(lin, (1536, 1536), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    face_box = (172 * 3, 72 * 3, 85 * 3, 100 * 3)
    face = FocusSubject.from_face(face_box, 1536, 1536)
    dragged = cv2.filter2D(lin, -1, _line_kernel(12, 90))
    x0, y0 = int(face.x * 1536), int(face.y * 1536)
    x1, y1 = x0 + int(face.width * 1536), y0 + int(face.height * 1536)
    around = dragged.copy()
    around[y0:y1, x0:x1] = lin[y0:y1, x0:x1]
    v = assess_focus(around, face)
    assert not v.missed, v.detail
    assert "but the face is not" in v.detail
    # The same drag over the face too: a shake, found.
    v = assess_focus(dragged, face)
    assert v.missed and "one direction" in v.detail
