"""Straightening only when sure (issue 17 item 5): the verticals gainsay a horizon, and a reading's stability.

Tier 1: line readings written into records (the rule), and the line measure on
drawn lines (how steady a reading stays when its segments are resampled).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from planning_inputs import chart_with, lines_record

from charts.loader import load_chart
from pipeline.imaging.measure import line_measure, line_tilts
from pipeline.kernel.records import AppliedBy, ImageRecord, OperationKind
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.straighten import (
    CONTRADICT_DEG,
    CONTRADICT_SUPPORT,
    SURE_AGREEMENT,
    SURE_LINES,
    SURE_STABILITY,
    SURE_SUPPORT,
    WITNESS_AGREEMENT,
    WITNESS_LINES,
    WITNESS_RIVAL,
    WITNESS_STABILITY,
)


# The rule's readings as it tells them (straighten.confirm_turns off): the proposal a told turn becomes is
# tests/test_straighten_proposals.py's.
BASE = chart_with(load_chart("base").chart, "straighten", confirm_turns=False)
#: A horizon the lines make sure of (long, on separate lines, no rival), rising 1.2 deg to the right.
SURE = dict(horizon_tilt_deg=1.2, horizon_support=SURE_SUPPORT + 0.5, horizon_agreement=SURE_AGREEMENT + 0.2,
            horizon_lines=SURE_LINES + 2, horizon_rival=0.3)


def _straighten(record: ImageRecord):  # noqa: ANN202
    return [o for o in plan_image(record, BASE) if o.kind is OperationKind.STRAIGHTEN]


def test_a_sure_horizon_the_verticals_gainsay_is_told_not_applied() -> None:
    # A notebook's ruled lines, a circuit board's traces, the boards behind a football pitch: long level-looking
    # lines whose direction the camera's verticals contradict (verticals leaning -0.3 deg ask for a +0.3 turn,
    # 0.9 deg from the horizon's 1.2).
    (op,) = _straighten(lines_record(**SURE, verticals_tilt_deg=-0.3, verticals_support=CONTRADICT_SUPPORT + 0.1,
                                     verticals_agreement=0.3, verticals_lines=4, verticals_rival=0.4))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params["angle_deg"] == pytest.approx(1.2)
    assert "the verticals say +0.30 deg" in op.reason


@pytest.mark.parametrize("verticals", [
    dict(verticals_tilt_deg=-1.2 + CONTRADICT_DEG - 0.1, verticals_support=2.0),  # they agree (turn 1.3 deg)
    dict(verticals_tilt_deg=-0.3, verticals_support=CONTRADICT_SUPPORT - 0.1),  # too few to say anything
    dict(),  # none at all (a sea horizon)
])
def test_a_sure_horizon_is_applied_unless_the_verticals_gainsay_it(verticals: dict) -> None:
    (op,) = _straighten(lines_record(**SURE, **verticals))
    assert op.applied_by is AppliedBy.RENDERER and op.params["angle_deg"] == pytest.approx(1.2)


def test_only_the_verticals_gainsay() -> None:
    # Verticals that level an interior are not vetoed by its horizontals: a room's side walls recede.
    chart = BASE.model_copy(update={"straighten": BASE.straighten.model_copy(update={"verticals": True})})
    record = lines_record(verticals_tilt_deg=-1.2, verticals_support=2.0, verticals_agreement=0.5, verticals_lines=6,
                          verticals_rival=0.2, horizon_tilt_deg=4.0, horizon_support=1.0)
    (op,) = [o for o in plan_image(record, chart) if o.kind is OperationKind.STRAIGHTEN]
    assert op.applied_by is AppliedBy.RENDERER and op.params == {"angle_deg": 1.2, "axis": "verticals"}


def test_a_witness_whose_reading_moves_when_resampled_says_nothing() -> None:
    witness = dict(horizon_tilt_deg=2.5, horizon_support=0.1, horizon_agreement=0.1, verticals_tilt_deg=-1.3,
                   verticals_support=1.2, verticals_agreement=WITNESS_AGREEMENT + 0.05, verticals_lines=WITNESS_LINES,
                   verticals_rival=WITNESS_RIVAL - 0.1)
    (op,) = _straighten(lines_record(**witness, verticals_stability=WITNESS_STABILITY + 0.05))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params == {"angle_deg": 1.3, "axis": "verticals"}
    assert not _straighten(lines_record(**witness, verticals_stability=WITNESS_STABILITY - 0.05))


def _lines(angles_deg: list[float], shape: tuple[int, int] = (800, 1200), thickness: int = 3) -> np.ndarray:
    """Dark near-horizontal lines on a light ground, the k-th at ``angles_deg[k]`` (rising to the right)."""
    h, w = shape
    img = np.full(shape, 0.6, np.float32)
    rows = np.linspace(0.1 * h, 0.9 * h, len(angles_deg))
    for y, a in zip(rows, angles_deg):
        dy = np.tan(np.radians(a)) * 0.4 * w
        cv2.line(img, (int(0.1 * w), int(round(y + dy))), (int(0.9 * w), int(round(y - dy))), 0.05, thickness,
                 cv2.LINE_AA)
    return img


def test_many_agreeing_lines_read_steadily() -> None:
    t = line_tilts(_lines([1.0] * 8))
    assert t.horizon_tilt_deg == pytest.approx(1.0, abs=0.1)
    assert t.horizon_stability >= 0.9
    assert line_measure(_lines([1.0] * 8)).horizon_stability == t.horizon_stability


def test_two_directions_as_strong_as_each_other_read_unsteadily() -> None:
    # Half the lines at +1 deg, half at -1 deg (a page curving to its binding, a brick wall's two courses):
    # whichever is read, a resample that draws the other's segments more often moves the reading 2 deg.
    t = line_tilts(_lines([1.0, -1.0] * 4))
    assert t.horizon_stability <= 0.8


def test_a_witness_steadier_than_an_unsure_horizon_is_told_instead() -> None:
    # The cameraman's far skyline reads 0.7 deg off and unsteadily; the tripod's legs and the buildings read the
    # roll steadily: a retoucher is told the verticals' reading, not the horizon's.
    unsure = dict(horizon_tilt_deg=1.7, horizon_support=0.5, horizon_agreement=0.25, horizon_lines=3,
                  horizon_rival=0.6)
    witness = dict(verticals_tilt_deg=-1.0, verticals_support=1.0, verticals_agreement=WITNESS_AGREEMENT + 0.05,
                   verticals_lines=WITNESS_LINES, verticals_rival=WITNESS_RIVAL - 0.1)
    (op,) = _straighten(lines_record(**unsure, horizon_stability=0.5, **witness, verticals_stability=0.9))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params == {"angle_deg": 1.0, "axis": "verticals"}
    # A steadier horizon keeps its say, and a sure, steady one is applied whatever the verticals' steadiness.
    (op,) = _straighten(lines_record(**unsure, horizon_stability=0.95, **witness, verticals_stability=0.9))
    assert op.params == {"angle_deg": 1.7, "axis": "horizon"}
    (op,) = _straighten(lines_record(**SURE, horizon_stability=SURE_STABILITY, **{**witness, "verticals_tilt_deg": -1.2},
                                     verticals_stability=0.9))
    assert op.applied_by is AppliedBy.RENDERER and op.params == {"angle_deg": 1.2, "axis": "horizon"}
    # Where the steady verticals say the camera is level, a horizon that is only told is not told at all.
    assert not _straighten(lines_record(**unsure, horizon_stability=0.5, **{**witness, "verticals_tilt_deg": 0.1},
                                        verticals_stability=0.9))


def test_a_sure_horizon_that_moves_when_resampled_is_told_not_applied() -> None:
    # Two structures a few tenths apart (a room's glass-block rows and its floor line, read piece by piece) make
    # the bootstrap's readings jump between them: the turn is left to a retoucher, with the reason.
    (op,) = _straighten(lines_record(**SURE, horizon_stability=SURE_STABILITY - 0.05))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params == {"angle_deg": 1.2, "axis": "horizon"}
    assert "resampled" in op.reason
    (op,) = _straighten(lines_record(**SURE, horizon_stability=SURE_STABILITY))
    assert op.applied_by is AppliedBy.RENDERER
    # Records measured before the stability was: the other gates decide.
    (op,) = _straighten(lines_record(**SURE))
    assert op.applied_by is AppliedBy.RENDERER


def test_a_sure_horizon_the_steady_verticals_gainsay_is_told_as_it_reads() -> None:
    # A keystone the vanishing point cannot place (a wallpaper cut off-centre from its frame) leaves steady
    # verticals leaning 2 deg where the horizon is right: the horizon is told, with the verticals' say.
    witness = dict(verticals_tilt_deg=-3.2, verticals_support=2.8, verticals_agreement=WITNESS_AGREEMENT + 0.05,
                   verticals_lines=WITNESS_LINES + 5, verticals_rival=WITNESS_RIVAL - 0.2, verticals_stability=0.99)
    (op,) = _straighten(lines_record(**SURE, horizon_stability=0.9, **witness))
    assert op.applied_by is AppliedBy.RETOUCHER and op.params == {"angle_deg": 1.2, "axis": "horizon"}
    assert "verticals say +3.20" in op.reason
