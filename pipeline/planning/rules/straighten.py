"""Straightening: level the verticals (interiors) or else the horizon."""

from __future__ import annotations

from charts.schema import Chart
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import rounded
from pipeline.planning.state import PlanState

# A tilt read from fewer line segments than this may come from one slanted
# object (a leaning chair, a roof line) rather than the frame: a retoucher looks.
MIN_LINES_FOR_AUTO = 5
# The confidence rises with the segments that agree on the tilt, reaching 1 at
# this many (a room or a skyline gives dozens; a portrait a handful).
LINES_FOR_FULL_CONFIDENCE = 20.0


def plan_straightening(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """Turn the frame by a measured tilt beyond ``straighten.tolerance_deg``; at most one axis.

    Verticals come first when the chart corrects them (a leaning door frame
    matters more than a horizon indoors). A tilt beyond
    ``straighten.max_auto_angle_deg``, or read from too few lines, is likely
    intentional (a Dutch angle) and goes to a retoucher. Sets
    ``plan.angle_deg`` when the renderer applies the turn.
    """
    st = chart.straighten
    lines = record.lines.lines_found or 0
    for axis, enabled, tilt in (("verticals", st.verticals, record.lines.verticals_tilt_deg),
                                ("horizon", st.horizon, record.lines.horizon_tilt_deg)):
        if not enabled or tilt is None or abs(tilt) < st.tolerance_deg:
            continue
        auto = abs(tilt) <= st.max_auto_angle_deg and lines >= MIN_LINES_FOR_AUTO
        if auto:
            plan.angle_deg = float(tilt)
        return [Operation(
            op_id="straighten", kind=OperationKind.STRAIGHTEN,
            # angle_deg turns the crop rectangle (counter-clockwise on screen, as the
            # tilted line rises to the right): its content comes out level.
            params={"angle_deg": rounded(float(tilt), 2), "axis": axis},
            reason=f"{axis} tilted {tilt:+.2f} deg ({lines} lines)"
                   + ("" if auto else f"; beyond the automatic {st.max_auto_angle_deg:g} deg or too few lines: "
                                      "intentional? check by eye"),
            measured=rounded(float(tilt), 2), target=0.0,
            confidence=rounded(min(1.0, lines / LINES_FOR_FULL_CONFIDENCE), 2),
            applied_by=AppliedBy.RENDERER if auto else AppliedBy.RETOUCHER,
        )]
    return []
