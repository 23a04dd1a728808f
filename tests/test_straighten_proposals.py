"""A turn the lines read but not surely is proposed to a reviewer (``straighten.confirm_turns``), not a task by hand.

Line readings written into records, planned under the bundled charts: what the plan proposes, what the renderer
and the XMP do with the proposal before and after a reviewer accepts it, and what the summary line says. The review
app's side (the crops kept inside the turned frame once accepted) is tests/test_review_culling.py's
``test_accepting_a_proposed_turn_turns_the_crops_and_the_frame``.
"""

from __future__ import annotations

import dataclasses

from planning_inputs import chart_with, lines_record

from charts.loader import load_chart
from pipeline.imaging.render import adjustments_from_operations
from pipeline.kernel.records import RENDER_ON_ACCEPT, AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.outputs.instructions import instruction_doc, summary_line
from pipeline.outputs.xmp import crs_settings
from pipeline.planning.plan import plan_image
from pipeline.planning.rules.straighten import (
    MIN_AGREEMENT_TO_REPORT,
    MIN_SUPPORT_TO_REPORT,
    SURE_AGREEMENT,
    SURE_LINES,
    SURE_RIVAL,
    SURE_STABILITY,
    SURE_SUPPORT,
    WITNESS_RIVAL,
)

BASE = load_chart("base").chart
#: A horizon worth telling but not sure (too little line length to turn the frame), rising 1.5 deg to the right.
TOLD = dict(horizon_tilt_deg=1.5, horizon_support=MIN_SUPPORT_TO_REPORT + 0.2, horizon_agreement=MIN_AGREEMENT_TO_REPORT
            + 0.1, horizon_lines=3, horizon_rival=0.4)
#: A sure horizon, 1.2 deg.
SURE = dict(horizon_tilt_deg=1.2, horizon_support=SURE_SUPPORT + 1.0, horizon_agreement=SURE_AGREEMENT + 0.1,
            horizon_lines=SURE_LINES + 2, horizon_rival=SURE_RIVAL / 2, horizon_stability=SURE_STABILITY + 0.05)


def _planned(record: ImageRecord, chart=BASE) -> list[Operation]:  # noqa: ANN001
    record.operations = plan_image(record, chart)
    return record.operations


def _straighten(ops: list[Operation]) -> Operation:
    (op,) = [o for o in ops if o.kind is OperationKind.STRAIGHTEN]
    return op


def _accepted(ops: list[Operation]) -> list[Operation]:
    return [dataclasses.replace(o, review={"status": "accepted"}) if o.kind is OperationKind.STRAIGHTEN else o
            for o in ops]


def test_a_turn_not_sure_is_proposed_and_turns_nothing_until_accepted() -> None:
    record = lines_record(**TOLD)
    ops = _planned(record)
    op = _straighten(ops)
    assert op.applied_by is AppliedBy.RETOUCHER and op.params == {"angle_deg": 1.5, "axis": "horizon",
                                                                  RENDER_ON_ACCEPT: True}
    assert op.reason.endswith("check by eye; proposed: turned once a reviewer accepts it")
    assert adjustments_from_operations(ops).angle_deg == 0.0
    assert summary_line(ops, 0) == "straighten +1.5 deg (to confirm)"
    # CropAngle only for angles the renderer applies (issue 17 item 5): none while the proposal waits.
    pending = crs_settings(instruction_doc(record, "base", "h")).attrs
    assert pending.get("crs:HasCrop") == "False" and "crs:CropAngle" not in pending
    # Accepted: the renderer turns the frame, the XMP carries the turn (Camera Raw's CropAngle is clockwise on
    # screen: the opposite sign), and the turn is done.
    record.operations = _accepted(ops)
    assert adjustments_from_operations(record.operations).angle_deg == 1.5
    assert float(crs_settings(instruction_doc(record, "base", "h")).attrs["crs:CropAngle"]) == -1.5
    assert summary_line(record.operations, 0) == "straighten +1.5 deg"


def test_a_chart_without_confirm_turns_tells_the_turn_by_hand() -> None:
    record = lines_record(**TOLD)
    ops = _planned(record, chart_with(BASE, "straighten", confirm_turns=False))
    op = _straighten(ops)
    assert op.applied_by is AppliedBy.RETOUCHER and RENDER_ON_ACCEPT not in op.params
    assert "proposed" not in op.reason and summary_line(ops, 0) == "straighten +1.5 deg (by hand)"
    record.operations = _accepted(ops)  # accepting a task by hand says it is done; it turns nothing
    assert adjustments_from_operations(record.operations).angle_deg == 0.0


def test_a_sure_turn_is_the_renderers_and_beyond_the_automatic_angle_a_proposal() -> None:
    op = _straighten(_planned(lines_record(**SURE)))
    assert op.applied_by is AppliedBy.RENDERER and RENDER_ON_ACCEPT not in op.params
    # The same reading beyond the chart's max_auto_angle_deg (a Dutch angle?): the reviewer decides.
    ops = _planned(lines_record(**SURE), chart_with(BASE, "straighten", max_auto_angle_deg=1.0))
    op = _straighten(ops)
    assert op.applied_by is AppliedBy.RETOUCHER and op.params[RENDER_ON_ACCEPT] is True
    assert "beyond the automatic 1 deg" in op.reason and adjustments_from_operations(ops).angle_deg == 0.0


def test_a_proposal_says_how_far_its_reading_is_from_sure() -> None:
    """The operation's confidence is 1.0 only for a reading that passes every gate: verticals whose rival is 61 % of
    their length (a listing kitchen's, houses/134_kitchen) fall short of the verticals' 50 %, however long their
    lines; a horizon that passes all but its steadiness falls short of that."""
    verticals = chart_with(BASE, "straighten", verticals=True)
    op = _straighten(_planned(lines_record(verticals_tilt_deg=-1.5, verticals_support=1.7, verticals_agreement=0.31,
                                           verticals_lines=10, verticals_rival=0.61), verticals))
    assert RENDER_ON_ACCEPT in op.params and op.confidence == round(WITNESS_RIVAL / 0.61, 2)
    unsteady = _straighten(_planned(lines_record(**{**SURE, "horizon_stability": SURE_STABILITY / 2})))
    assert RENDER_ON_ACCEPT in unsteady.params and unsteady.confidence == 0.5
    assert _straighten(_planned(lines_record(**SURE))).confidence == 1.0
