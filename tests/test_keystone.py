"""Converging verticals (keystone): the geometry, the line measure's convergence, the rule and the render.

The truth is a camera turned by a known pitch: a rotation homography ``K R K^-1`` written here, apart from the
code under test. The accuracy on real photos is benchmarks/keystone.py's (KEYSTONE.md).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from planning_inputs import chart_with, lines_record

from charts.loader import load_chart
from pipeline.imaging.geometry import rotated_corners
from pipeline.imaging.lens_profile import LensGrid, find_profile
from pipeline.imaging.measure.lines import line_tilts
from pipeline.imaging.perspective import Keystone, KeystoneMap, focal_px, keystone_matrix
from pipeline.imaging.render import adjustments_from_operations, render_frame, render_rows
from pipeline.kernel.records import RENDER_ON_ACCEPT, AppliedBy, Operation, OperationKind
from pipeline.outputs.instructions import instruction_doc, summary_line
from pipeline.outputs.xmp import crs_settings
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.straighten import KEYSTONE_STABILITY


# The rule's readings as it tells them (straighten.confirm_turns off): the proposal a told turn becomes is
# tests/test_straighten_proposals.py's.
INTERIORS = chart_with(load_chart("real_estate_interiors").chart, "straighten", confirm_turns=False)
W, H = 3000, 2000


def _apply(m: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = m[2, 0] * x + m[2, 1] * y + m[2, 2]
    return (m[0, 0] * x + m[0, 1] * y + m[0, 2]) / w, (m[1, 0] * x + m[1, 1] * y + m[1, 2]) / w


def pitched(width: int, height: int, pitch_deg: float, focal: float) -> np.ndarray:
    """3x3: a level camera's picture -> the picture of the same camera pitched up by ``pitch_deg`` (both centred on
    the principal point, the frame's centre)."""
    a = math.radians(pitch_deg)
    k = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    # Pitched up: a point above the horizon comes down in the frame (y grows downwards).
    r = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(a), math.sin(a)], [0.0, -math.sin(a), math.cos(a)]])
    return k @ r @ np.linalg.inv(k)


def convergence_of(view: np.ndarray, width: int, height: int) -> float:
    """The convergence (deg of lean per long edge across the centre row, as the line measure states it) of the
    verticals a camera ``view`` (a level picture -> its own) sees: the up direction's vanishing point ``D`` above the
    centre makes lines through it lean by ``atan(-x / D)``."""
    vx, vy, vw = view @ np.array([0.0, -1.0, 0.0])
    distance = height / 2.0 - vy / vw
    return -math.degrees(max(width, height) / distance)


def lean_of(m: np.ndarray, x: float, y0: float, y1: float) -> float:
    """The lean (deg, + = top to the right) of the vertical segment (x, y0)-(x, y1) mapped by ``m``."""
    (xa, xb), (ya, yb) = _apply(m, np.array([x, x]), np.array([y1, y0]))  # bottom, top
    return math.degrees(math.atan2(xb - xa, ya - yb))


def test_the_keystone_makes_the_verticals_of_a_pitched_camera_parallel() -> None:
    """Verticals seen by a camera pitched 6 deg up meet above the frame; the keystone read from their lean at the
    centre and their convergence sends that point to infinity, and the picture's verticals come out parallel,
    leaning by the roll the straightening's turn levels."""
    f = focal_px(W, H, None, None)
    view = pitched(W, H, 6.0, f)
    edge = lean_of(view, 0.05 * W, 0.3 * H, 0.7 * H)
    assert edge > 3.0  # the left edge's verticals lean right at the top: they meet above
    conv = convergence_of(view, W, H)
    keystone = Keystone(0.0, conv, f)
    assert keystone.pitch_deg(W, H) == pytest.approx(6.0, abs=1e-6)
    fixed = keystone_matrix(keystone, W, H) @ view
    for x in (0.02, 0.3, 0.5, 0.8, 0.98):
        assert lean_of(fixed, x * W, 0.1 * H, 0.9 * H) == pytest.approx(0.0, abs=1e-6)
    # With a roll, the verticals come out parallel at the roll's lean.
    rolled = Keystone(1.5, conv, f)
    m = keystone_matrix(rolled, W, H)
    d = rolled.vanishing_distance(W, H)
    vp = (W / 2 + d * math.sin(math.radians(1.5)), H / 2 - d * math.cos(math.radians(1.5)))
    for x in (0.05, 0.5, 0.95):
        p0 = np.array([x * W, 0.8 * H])
        p1 = p0 + 0.3 * (np.array(vp) - p0) / np.hypot(*(np.array(vp) - p0)) * H
        (xa, xb), (ya, yb) = _apply(m, np.array([p0[0], p1[0]]), np.array([p0[1], p1[1]]))
        assert math.degrees(math.atan2(xb - xa, ya - yb)) == pytest.approx(1.5, abs=0.01)


@pytest.mark.parametrize("conv", [-9.0, -3.0, 4.0, 11.0])
def test_the_corrected_frame_is_all_picture(conv: float) -> None:
    """The corrected frame (the turned picture's largest box of the frame's shape, scaled to the frame) shows
    nothing from beyond the picture, and loses no more than the turn must: a corner of the frame touches an edge
    of the picture on both sides."""
    keystone = Keystone(0.7, conv, focal_px(W, H, None, None))
    to_source = np.linalg.inv(keystone_matrix(keystone, W, H))
    t = np.linspace(0.0, 1.0, 21)
    xs = np.concatenate([t * W, t * W, np.zeros(21), np.full(21, W)])
    ys = np.concatenate([np.zeros(21), np.full(21, H), t * H, t * H])
    sx, sy = _apply(to_source, xs, ys)
    assert sx.min() >= -1e-6 and sx.max() <= W + 1e-6 and sy.min() >= -1e-6 and sy.max() <= H + 1e-6
    cx, cy = _apply(to_source, np.array([0.0, W, W, 0.0]), np.array([0.0, 0.0, H, H]))
    on_edge = (np.abs(cx) < 0.01) | (np.abs(cx - W) < 0.01) | (np.abs(cy) < 0.01) | (np.abs(cy - H) < 0.01)
    assert on_edge.sum() >= 2


def test_the_keystone_map_goes_both_ways_and_through_the_lens() -> None:
    keystone = Keystone(-0.8, -7.0, focal_px(W, H, None, None))
    plain = KeystoneMap(keystone, W, H)
    x = np.array([10.0, 1500.0, 2990.0], np.float32)
    y = np.array([20.0, 1000.0, 1980.0], np.float32)
    bx, by = plain.source(*plain.corrected(x, y))
    assert np.abs(bx - x).max() < 0.05 and np.abs(by - y).max() < 0.05
    box = plain.corrected_box((100.0, 200.0, 300.0, 400.0))
    cx, cy = plain.corrected(np.array([100.0, 400.0, 400.0, 100.0], np.float32),
                             np.array([200.0, 200.0, 600.0, 600.0], np.float32))
    assert box[0] <= cx.min() + 1e-3 and box[0] + box[2] >= cx.max() - 1e-3
    # Through a lens correction: the keystone's frame is read from the lens-corrected picture.
    profile = find_profile("Canon", "EOS 450D", "EF-S10-22mm f/3.5-4.5 USM", 10.0, 4.0).profile
    grid = LensGrid(profile, W, H)
    chained = KeystoneMap(keystone, W, H, grid)
    kx, ky = plain.source(x, y)
    lx, ly = grid.source(kx, ky)
    sx, sy = chained.source(x, y)
    assert np.abs(sx - lx).max() < 1e-3 and np.abs(sy - ly).max() < 1e-3
    rx, ry = chained.corrected(sx, sy)
    assert np.abs(rx - x).max() < 0.05 and np.abs(ry - y).max() < 0.05


def facade(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A level camera's picture of a building's front: storeys of windows between piers, a textured wall (linear
    luminance)."""
    rng = np.random.default_rng(seed)
    img = 0.35 + 0.05 * rng.standard_normal((height, width)).astype(np.float32)
    x = 60
    while x < width - 60:
        pier = int(rng.integers(40, 90))
        bay = int(rng.integers(90, 160))
        for y in range(80, height - 80, 170):
            img[y:y + 110, x + pier:x + pier + bay] = 0.06 + 0.02 * rng.random()
        x += pier + bay
    return np.clip(img, 0.0, 1.0)


def _seen(front: np.ndarray, pitch: float) -> np.ndarray:
    import cv2

    h, w = front.shape
    view = pitched(w, h, pitch, focal_px(w, h, None, None))
    # A zoom about the centre keeps the pitched frame inside the front.
    zoom = np.array([[1.15, 0.0, -0.075 * w], [0.0, 1.15, -0.075 * h], [0.0, 0.0, 1.0]])
    m = np.linalg.inv(view @ np.linalg.inv(zoom))
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    sx, sy = _apply(m, u, v)
    return cv2.remap(front, (sx - 0.5).astype(np.float32), (sy - 0.5).astype(np.float32), cv2.INTER_CUBIC,
                     borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("pitch", [-5.0, 3.0, 6.0])
def test_the_line_measure_reads_a_pitched_cameras_convergence(pitch: float) -> None:
    """A facade seen through a camera pitched by a known angle: the verticals' convergence read within 0.25 deg per
    long edge of the truth (the lean at the edges within an eighth of a degree), steady under resampling, their lean
    at the centre 0."""
    w, h = 1500, 1000
    front = facade(w, h)
    seen = _seen(front, pitch)
    f = focal_px(w, h, None, None)
    view = pitched(w, h, pitch, f)
    truth = convergence_of(view, w, h)
    tilts = line_tilts(seen)
    assert tilts.verticals_convergence == pytest.approx(truth, abs=0.25), (truth, tilts)
    assert tilts.verticals_convergence_stability >= KEYSTONE_STABILITY
    assert tilts.verticals_tilt_deg == pytest.approx(0.0, abs=0.2)
    assert not tilts.verticals_one_sided
    # The facade as a level camera sees it: parallel verticals.
    level = line_tilts(front)
    assert level.verticals_convergence == 0.0 and level.verticals_convergence_stability is None


def _straighten(record, chart=INTERIORS):  # noqa: ANN001, ANN202
    return [o for o in plan_image(record, chart) if o.kind is OperationKind.STRAIGHTEN]


SURE = dict(verticals_tilt_deg=0.6, verticals_support=4.0, verticals_agreement=0.5, verticals_lines=12,
            verticals_rival=0.1, verticals_stability=0.95)


def test_a_sure_steady_convergence_is_undone_with_the_turn() -> None:
    (op,) = _straighten(lines_record(**SURE, verticals_convergence=-8.0, verticals_convergence_stability=0.95))
    assert op.applied_by is AppliedBy.RENDERER
    assert op.params["angle_deg"] == pytest.approx(-0.6)
    ks = op.params["keystone"]
    assert ks["convergence"] == pytest.approx(-8.0) and ks["lean_deg"] == pytest.approx(0.6)
    assert ks["edge_lean_deg"] == pytest.approx(8.0 * W / (2 * W), abs=0.01)  # 3:2: half the convergence
    assert "convergence undone: 4.0 deg at the frame's edges" in op.reason and "pitched about" in op.reason
    # The renderer reads it back; the image's one-line summary names it.
    assert adjustments_from_operations([op]).keystone == Keystone.from_params(ks)
    assert summary_line([op], 0) == "straighten -0.6 deg, keystone 4.0 deg"


def test_a_level_camera_with_converging_verticals_is_corrected_however_small_its_roll() -> None:
    record = lines_record(**{**SURE, "verticals_tilt_deg": 0.05}, verticals_convergence=-5.0,
                          verticals_convergence_stability=0.9)
    (op,) = _straighten(record)
    assert op.applied_by is AppliedBy.RENDERER and op.params["keystone"]["convergence"] == pytest.approx(-5.0)


def test_an_unsteady_convergence_is_left_and_the_turn_still_made() -> None:
    (op,) = _straighten(lines_record(**SURE, verticals_convergence=-8.0,
                                     verticals_convergence_stability=KEYSTONE_STABILITY - 0.1))
    assert op.applied_by is AppliedBy.RENDERER and "keystone" not in op.params
    assert "not undone" in op.reason and "tapering tower" in op.reason


def test_lines_converging_on_one_side_do_not_turn_the_frame() -> None:
    """A street's facades on the right of the frame, the camera pitched: their lean is the pitch's as much as the
    roll's, so the turn is told a retoucher, not made."""
    (op,) = _straighten(lines_record(**SURE, verticals_convergence=0.0, verticals_one_sided=True))
    assert op.applied_by is AppliedBy.RETOUCHER and "one side of the frame" in op.reason
    assert summary_line([op], 0) == "straighten -0.6 deg (by hand)"


def test_the_chart_says_how_far_and_how_much() -> None:
    record = lines_record(**SURE, verticals_convergence=-10.0, verticals_convergence_stability=0.95)
    (op,) = _straighten(record, chart_with(INTERIORS, "straighten", max_keystone_deg=3.0))
    assert "keystone" not in op.params and "beyond the automatic 3 deg" in op.reason
    (op,) = _straighten(record, chart_with(INTERIORS, "straighten", keystone_share=0.8))
    assert op.params["keystone"]["convergence"] == pytest.approx(-8.0) and "(80% of it)" in op.reason
    (op,) = _straighten(record, chart_with(INTERIORS, "straighten", keystone_share=0.0))
    assert "keystone" not in op.params
    # A chart that levels the horizon alone corrects no keystone.
    assert not any("keystone" in o.params for o in _straighten(record, load_chart("base").chart))


def test_the_render_delivers_the_verticals_upright_and_strips_match() -> None:
    """A facade seen by a camera pitched 5 deg up, rendered with the keystone the plan would make from the truth:
    the piers' edges come out vertical (their position at the top and bottom of the delivered frame within half a
    pixel); a master rendered strip by strip is the same picture."""
    import cv2

    w, h = 900, 600
    f = focal_px(w, h, None, None)
    view = pitched(w, h, 5.0, f)
    conv = convergence_of(view, w, h)
    # Vertical stripes, seen through the pitched camera (a margin of the stripes beyond the frame).
    u = np.arange(w)
    stripes = np.where((u // 60) % 2 == 0, 0.8, 0.1).astype(np.float32)
    front = np.repeat(stripes[None, :], h, axis=0)
    m = np.linalg.inv(view)
    uu, vv = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    sx, sy = _apply(m, uu, vv)
    seen = cv2.remap(front, (sx - 0.5).astype(np.float32), (sy - 0.5).astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)
    rgb = np.dstack([seen] * 3)
    op = Operation("straighten", OperationKind.STRAIGHTEN,
                   {"angle_deg": 0.0, "axis": "verticals", "keystone": Keystone(0.0, conv, f).as_params()}, "test",
                   applied_by=AppliedBy.RENDERER)
    adjustments = adjustments_from_operations([op])
    out = render_frame(rgb, w, h, adjustments, (0, 0, w, h), (w, h), "srgb", 0.0, 16)[..., 1].astype(np.float32)

    def edges(row: np.ndarray) -> np.ndarray:
        mid = (row.max() + row.min()) / 2
        i = np.flatnonzero(np.diff(np.sign(row - mid)))
        return i + (mid - row[i]) / (row[i + 1] - row[i])  # the crossing, between pixels

    top, bottom = edges(out[40]), edges(out[h - 40])
    inner = lambda e: e[(e > 30) & (e < w - 30)]  # noqa: E731
    top, bottom = inner(top), inner(bottom)
    assert top.size == bottom.size and top.size >= 8
    assert np.abs(top - bottom).max() < 0.5
    # Uncorrected, the same edges lean apart by pixels.
    raw_top, raw_bottom = inner(edges(seen[40] * 65535)), inner(edges(seen[h - 40] * 65535))
    assert np.abs(raw_top[:3] - raw_bottom[:3]).max() > 5
    strips = np.concatenate([render_rows(lambda x0, y0, x1, y1: rgb[y0:y1, x0:x1], w, h, adjustments,
                                         (0, 0, w, h), (w, h), (v0, min(h, v0 + 77)), "srgb", 0.0, 16)
                             for v0 in range(0, h, 77)])
    whole = render_frame(rgb, w, h, adjustments, (0, 0, w, h), (w, h), "srgb", 0.0, 16)
    # OpenCV's warp places each pixel to 1/32 of a pixel: a strip's region offset moves that rounding, which shows on
    # a stripe's sharp edge as a few of 65535.
    assert np.abs(strips.astype(int) - whole.astype(int)).max() <= 8
    assert (strips != whole).mean() < 0.03  # (the stripes' edges are 7 % of the pixels)


def test_the_xmp_sets_camera_raws_upright_and_the_review_leaves_the_geometry() -> None:
    from pipeline.review.preview import preview_adjustments

    record = lines_record(**SURE, verticals_convergence=-8.0, verticals_convergence_stability=0.95)
    record.operations = plan_image(record, INTERIORS)
    doc = instruction_doc(record, "real_estate_interiors", "h", [("web", "3:2")])
    settings = crs_settings(doc)
    assert settings.attrs.get("crs:PerspectiveUpright") == "4"
    assert any("Upright is set to Vertical" in n for n in settings.notes)
    st = next(o for o in doc["operations"] if o["kind"] == "straighten")
    assert preview_adjustments([st]).keystone is None
    # The report draws each crop where its pixels come from in the picture as shot: a trapezoid, its corners where
    # the keystone's map takes the crop's.
    from pipeline.outputs.report import ReportImage, _overlay

    svg = _overlay(ReportImage(source_path="a.jpg", status="ok", doc=doc))
    crop = next(o for o in doc["operations"] if o["kind"] == "crop")
    (ax, ay), (bx, by), *_ = rotated_corners(tuple(crop["params"]["box"]), float(crop["params"]["angle_deg"]))
    sx, sy = KeystoneMap(Keystone.from_params(st["params"]["keystone"]), W, H).source(
        np.array([ax, bx], np.float32), np.array([ay, by], np.float32))
    assert f'<polygon points="{sx[0]:.0f},{sy[0]:.0f} {sx[1]:.0f},{sy[1]:.0f}' in svg
    # Without a keystone nothing of it is written.
    plain = lines_record(**SURE)
    plain.operations = plan_image(plain, INTERIORS)
    assert "crs:PerspectiveUpright" not in crs_settings(instruction_doc(plain, "real_estate_interiors", "h",
                                                                         [("web", "3:2")])).attrs


def test_a_wide_angles_bowed_verticals_are_read_straight(tmp_path) -> None:  # noqa: ANN001
    """A facade seen by a camera pitched 4 deg up through a 10 mm lens (lensfun's reverse model of the 10-22's
    barrel, written as the 450D's DNG): the measure stage reads its lines with the lens's distortion undone, and the
    convergence within 0.25 deg per long edge of the truth (0.01 here); read as shot, the bowed lines add 0.4 or
    more."""
    from render_cases import task_for
    from test_lens_profile import SIZE, write_through_the_lens

    from pipeline.kernel.records import WorkItem
    from pipeline.kernel.stage import RunContext
    from stages.decode_raw import DecodeRaw
    from stages.measure_exposure import MeasureExposure

    w, h = SIZE
    view = pitched(w, h, 4.0, focal_px(w, h, None, None))
    truth = convergence_of(view, w, h)
    seen = _seen(facade(w, h, seed=3), 4.0)
    dng = tmp_path / "facade.dng"
    write_through_the_lens(np.dstack([seen] * 3) * np.float32(0.8), dng)
    context = RunContext(shoot_dir=tmp_path, out_dir=tmp_path / "out")
    task = task_for(dng)
    item = WorkItem(task=task, record=task.new_record())
    DecodeRaw(DecodeRaw.Params(), context).process(item)
    MeasureExposure(MeasureExposure.Params(), context).process(item)
    lines = item.record.lines
    assert lines.lines_undistorted
    assert lines.verticals_convergence == pytest.approx(truth, abs=0.25), (truth, lines)
    assert lines.verticals_convergence_stability >= KEYSTONE_STABILITY
    as_shot = line_tilts(item.artifacts["proxy"].luma)  # the barrel adds about 0.65 deg per long edge
    assert abs((as_shot.verticals_convergence or 0.0) - truth) > 0.4, as_shot


def test_a_proposed_turn_carries_its_keystone_and_a_turn_told_by_hand_says_it_leaves_it() -> None:
    # Converging verticals the renderer would undo with a sure turn, but the resampled lines read the lean unsteadily
    # (two structures?): the turn is proposed with its keystone, both made once a reviewer accepts it.
    unsteady = {**SURE, "verticals_stability": 0.5}
    record = lines_record(**unsteady, verticals_convergence=-8.0, verticals_convergence_stability=0.95)
    (op,) = _straighten(record, chart_with(INTERIORS, "straighten", confirm_turns=True))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params[RENDER_ON_ACCEPT]
    assert op.params["keystone"]["convergence"] == pytest.approx(-8.0)
    assert "convergence undone: 4.0 deg at the frame's edges" in op.reason
    assert op.reason.endswith("proposed: turned and its keystone undone once a reviewer accepts it")
    assert adjustments_from_operations([op]).keystone is None  # pending: the picture as shot
    accepted = Operation(**{**vars(op), "review": {"status": "accepted"}})
    made = adjustments_from_operations([accepted])
    assert made.keystone == Keystone.from_params(op.params["keystone"]) and made.angle_deg == pytest.approx(-0.6)
    rejected = Operation(**{**vars(op), "review": {"status": "rejected"}})
    assert adjustments_from_operations([rejected]).keystone is None
    # The summary line says the keystone goes with the proposal; the XMP sets Camera Raw's Upright only once the
    # renderer makes it.
    assert summary_line([op], 0) == "straighten -0.6 deg, keystone 4.0 deg (to confirm)"
    assert summary_line([accepted], 0) == "straighten -0.6 deg, keystone 4.0 deg"
    record.operations = [op]
    assert "crs:PerspectiveUpright" not in crs_settings(instruction_doc(record, "real_estate_interiors", "h")).attrs
    record.operations = [accepted]
    assert crs_settings(instruction_doc(record, "real_estate_interiors", "h")).attrs["crs:PerspectiveUpright"] == "4"
    # Told a retoucher by hand (a chart that proposes no turns): no keystone, and the reason says what it leaves.
    (op,) = _straighten(record)
    assert RENDER_ON_ACCEPT not in op.params and "keystone" not in op.params
    assert "their convergence (4.0 deg at the frame's edges) is not undone with this turn" in op.reason
    # Without a convergence, nothing is said of one.
    (op,) = _straighten(lines_record(**unsteady))
    assert op.applied_by is AppliedBy.RETOUCHER and "convergence" not in op.reason
