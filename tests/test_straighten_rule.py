"""Straightening only when sure (issue 17 item 5): the lines' support and agreement decide, the sign is the turn.

Tier 1: line readings written inline into records, and the line measure on
synthetic stripes (a level family, and a fan of perspective lines).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from planning_inputs import chart_with, lines_record

from charts.loader import load_chart
from charts.schema import Chart
from pipeline.imaging.measure import line_tilts
from pipeline.kernel.records import AppliedBy, ImageRecord, OperationKind
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.straighten import (
    MAX_RIVAL_TO_REPORT,
    MIN_AGREEMENT_TO_REPORT,
    MIN_SUPPORT_TO_REPORT,
    SURE_AGREEMENT,
    SURE_GAINSAY_DEG,
    SURE_LINES,
    SURE_RIVAL,
    SURE_SUPPORT,
)

BASE = load_chart("base").chart


def _straighten(record: ImageRecord, chart: Chart = BASE):  # noqa: ANN202
    return [o for o in plan_image(record, chart) if o.kind is OperationKind.STRAIGHTEN]


def test_a_long_dominant_horizon_is_applied() -> None:
    (op,) = _straighten(lines_record(horizon_tilt_deg=1.2, horizon_support=SURE_SUPPORT + 0.1,
                                horizon_agreement=SURE_AGREEMENT + 0.1))
    assert op.applied_by is AppliedBy.RENDERER and op.params["angle_deg"] == pytest.approx(1.2)


def test_a_horizon_the_lines_barely_agree_on_goes_to_a_retoucher() -> None:
    (op,) = _straighten(lines_record(horizon_tilt_deg=1.2, horizon_support=0.3, horizon_agreement=0.25))
    assert op.applied_by is AppliedBy.RETOUCHER and "check by eye" in op.reason


def test_a_few_stray_edges_are_not_reported() -> None:
    assert not _straighten(lines_record(horizon_tilt_deg=1.2, horizon_support=MIN_SUPPORT_TO_REPORT / 2,
                                   horizon_agreement=0.9))


def test_one_straight_line_is_told_not_applied() -> None:
    # A long sloping ridge or a single receding wall is one line, however long: a retoucher checks it; the
    # same length on separate lines (a horizon and its shore, a row of shelves) is sure.
    sure = dict(horizon_tilt_deg=1.2, horizon_support=SURE_SUPPORT + 0.5, horizon_agreement=SURE_AGREEMENT + 0.2)
    (one,) = _straighten(lines_record(**sure, horizon_lines=SURE_LINES - 1))
    assert one.applied_by is AppliedBy.RETOUCHER and one.params["angle_deg"] == pytest.approx(1.2)
    (op,) = _straighten(lines_record(**sure, horizon_lines=SURE_LINES))
    assert op.applied_by is AppliedBy.RENDERER and f"on {SURE_LINES} lines" in op.reason


def test_verticals_do_not_turn_a_picture_under_a_horizon_chart() -> None:
    # The base chart levels horizons only: verticals that agree with a weak horizon do not make it sure
    # (on the tuning tilts the two families agreed on wrong angles, brick walls and coins, more often
    # than on right ones).
    weak = dict(horizon_tilt_deg=1.2, horizon_support=0.3, horizon_agreement=0.3, horizon_lines=3)
    (op,) = _straighten(lines_record(**weak, verticals_tilt_deg=-1.2, verticals_support=1.5, verticals_agreement=0.6,
                                verticals_lines=6))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params["axis"] == "horizon"


def test_leaning_verticals_are_turned_the_way_that_levels_them() -> None:
    # Tops leaning right (+) need the picture turned clockwise: the crop turns the other way, as a horizon
    # that falls to the right (-) does.
    (op,) = _straighten(lines_record(verticals_tilt_deg=1.5, verticals_support=0.8, verticals_agreement=0.8),
                        chart_with(BASE, "straighten", verticals=True, horizon=False))
    assert op.params["axis"] == "verticals" and op.params["angle_deg"] == pytest.approx(-1.5)
    (level,) = _straighten(lines_record(horizon_tilt_deg=-1.5, horizon_support=0.8, horizon_agreement=0.8))
    assert level.params["angle_deg"] == op.params["angle_deg"]


def _rotated_stripes(deg: float, vertical: bool, shape: tuple[int, int] = (700, 1000)) -> np.ndarray:
    h, w = shape
    img = np.full(shape, 0.05, np.float32)
    if vertical:
        img[:, (np.arange(w) // 30) % 2 == 0] = 0.6
    else:
        img[(np.arange(h) // 30) % 2 == 0, :] = 0.6
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    c = int(0.15 * min(h, w))
    return np.ascontiguousarray(out[c:-c, c:-c])


def test_level_lines_are_long_and_agree() -> None:
    t = line_tilts(_rotated_stripes(2.0, vertical=False))
    assert t.horizon_tilt_deg == pytest.approx(2.0, abs=0.3)
    assert t.horizon_support >= SURE_SUPPORT and t.horizon_agreement >= SURE_AGREEMENT


def test_a_fan_of_perspective_lines_agrees_on_nothing_much() -> None:
    # Lines from a vanishing point far to the right: near-horizontal, each at its own angle (-8..+8 deg).
    img = np.full((700, 1000), 0.05, np.float32)
    for k, angle in enumerate(np.linspace(-8.0, 8.0, 9)):
        y0 = 350 + 300 * np.sin(np.radians(angle)) * 0 + (k - 4) * 60
        x1 = 1000
        y1 = y0 - np.tan(np.radians(angle)) * 1000
        cv2.line(img, (0, int(y0)), (x1, int(y1)), 0.6, thickness=4, lineType=cv2.LINE_AA)
    t = line_tilts(img)
    assert t.horizon_tilt_deg is not None
    # Each line is a ninth of the family, and any other of them as long as the one read: a rival as strong.
    assert t.horizon_agreement < 0.2 and t.horizon_rival > SURE_RIVAL
    (op,) = _straighten(lines_record(horizon_tilt_deg=t.horizon_tilt_deg, horizon_support=t.horizon_support,
                                horizon_agreement=t.horizon_agreement, horizon_lines=t.horizon_lines,
                                horizon_rival=t.horizon_rival)) or [None]
    assert op is None or op.applied_by is AppliedBy.RETOUCHER


def test_a_rival_direction_keeps_a_long_reading_from_the_renderer() -> None:
    # A brick texture or a page whose lines curve to the binding: as much line agrees with another direction.
    sure = dict(horizon_tilt_deg=1.2, horizon_support=SURE_SUPPORT + 0.5, horizon_agreement=SURE_AGREEMENT + 0.1,
                horizon_lines=SURE_LINES + 2)
    (op,) = _straighten(lines_record(**sure, horizon_rival=SURE_RIVAL - 0.1))
    assert op.applied_by is AppliedBy.RENDERER and "next direction 70% of that" in op.reason
    # A rival nearly as long is a coin toss between two directions: not told either (a pumpkin read -7.1 deg with
    # a rival of 93 %).
    assert MAX_RIVAL_TO_REPORT == SURE_RIVAL
    assert not _straighten(lines_record(**sure, horizon_rival=SURE_RIVAL + 0.1))


def test_a_sure_horizon_far_from_its_verticals_is_not_told() -> None:
    # Verticals that gainsay a sure horizon keep it from the renderer and are told with it; read further apart than
    # SURE_GAINSAY_DEG, the picture's lines cannot settle the roll (street lamps: horizon -9.9 deg, verticals -4.4).
    sure = dict(horizon_tilt_deg=1.2, horizon_support=SURE_SUPPORT + 0.5, horizon_agreement=SURE_AGREEMENT + 0.1,
                horizon_lines=SURE_LINES + 2, horizon_rival=0.3, horizon_stability=0.9, verticals_support=0.6,
                verticals_agreement=0.1, verticals_lines=2, verticals_rival=0.9, verticals_stability=0.3)
    (told,) = _straighten(lines_record(**sure, verticals_tilt_deg=-2.0))  # the verticals' turn is minus their lean
    assert told.applied_by is AppliedBy.RETOUCHER and "the verticals say +2.00 deg" in told.reason
    assert not _straighten(lines_record(**sure, verticals_tilt_deg=-(1.2 + SURE_GAINSAY_DEG + 0.1)))


def test_a_weak_reading_must_stand_out_of_its_family_to_be_told() -> None:
    # Textures and perspective scatter over the family: a reading of a few percent of it is not worth a
    # retoucher's look, however much line it rests on below the sure length.
    weak = dict(horizon_tilt_deg=1.2, horizon_support=SURE_SUPPORT - 0.2, horizon_lines=4, horizon_rival=0.5)
    assert not _straighten(lines_record(**weak, horizon_agreement=MIN_AGREEMENT_TO_REPORT - 0.05))
    (op,) = _straighten(lines_record(**weak, horizon_agreement=MIN_AGREEMENT_TO_REPORT + 0.05))
    assert op.applied_by is AppliedBy.RETOUCHER
