"""Straightening only when sure: level the verticals (interiors) or else the horizon.

The measurement gives each family's tilt with how much straight line length
agrees with it (``*_support``, in long edges of the picture), what share of
the family that is (``*_agreement``) and on how many separate lines it lies
(``*_lines``). The renderer turns the frame only when the reading is sure: a
long run of segments on more than one line that make up a fair share of their
family (a horizon with its shore, a row of shelves). A weaker reading, or one
resting on a single line (a sea horizon, or a sloping ridge), goes to a
retoucher with the angle measured, and one resting on a few stray edges is not
reported at all. Whatever a retoucher is left, the renderer
does not turn, so crops and the XMP's ``CropAngle`` follow only applied turns.

The thresholds are fitted on known tilts of photos outside the accuracy
benchmark's held-out split (``benchmarks/straighten_fit.py``): with them no
untilted photo was turned and no turn applied was off by more than 0.5 deg;
reporting from 0.2 long edges (not 0.3) tells a retoucher of more untilted
photos (20 of 34, not 13) but of the single-line horizons too.
A confirmation by the other family was tried and dropped: on brick walls and
coins the two families agreed on wrong angles more often than on right ones.
"""

from __future__ import annotations

from charts.schema import Chart
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import rounded
from pipeline.planning.state import PlanState

#: A reading resting on less agreeing line length than this (long edges of the picture) is not reported:
#: a few stray edges (a stem, a fold) say nothing about the camera.
MIN_SUPPORT_TO_REPORT = 0.2
#: Sure: at least this much agreeing segment length (both scales of the measure count) ...
SURE_SUPPORT = 1.0
#: ... making up at least this share of its family (perspective lines scatter; a horizon dominates) ...
SURE_AGREEMENT = 0.3
#: ... on at least this many separate lines: one line may slope (a ridge, a receding wall).
SURE_LINES = 2
# Records measured before the support was (older manifests): the line count decides, as it used to.
MIN_LINES_FOR_AUTO = 5
LINES_FOR_FULL_CONFIDENCE = 20.0


def plan_straightening(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """Turn the frame by a sure tilt beyond ``straighten.tolerance_deg``; at most one axis.

    Verticals come first when the chart corrects them (a leaning door frame
    matters more than a horizon indoors). A tilt beyond
    ``straighten.max_auto_angle_deg`` is likely intentional (a Dutch angle) and
    goes to a retoucher, as does one the lines do not make sure of (see the
    module docstring). Sets ``plan.angle_deg`` when the renderer applies the turn.
    """
    st, lines = chart.straighten, record.lines
    # Both families as the turn they call for (counter-clockwise positive): verticals leaning right
    # at the top need the picture turned counter-clockwise, so their turn is minus their lean.
    horizon = _reading(lines.horizon_tilt_deg, lines.horizon_support, lines.horizon_agreement, lines.horizon_lines)
    verticals = _reading(None if lines.verticals_tilt_deg is None else -lines.verticals_tilt_deg,
                         lines.verticals_support, lines.verticals_agreement, lines.verticals_lines)
    order = (("verticals", st.verticals, verticals), ("horizon", st.horizon, horizon))
    for axis, enabled, reading in order:
        if not enabled or reading is None:
            continue
        turn, support, agreement, separate = reading
        if abs(turn) < st.tolerance_deg:
            return []
        if support is None:  # an older record: the line count decides
            sure = (lines.lines_found or 0) >= MIN_LINES_FOR_AUTO
            confidence = min(1.0, (lines.lines_found or 0) / LINES_FOR_FULL_CONFIDENCE)
            why = f"{lines.lines_found or 0} lines"
        elif support < MIN_SUPPORT_TO_REPORT:
            continue
        else:
            # (Records measured before the separate lines were counted: the support and agreement decide.)
            agreement = agreement or 0.0
            sure = support >= SURE_SUPPORT and agreement >= SURE_AGREEMENT and (separate or SURE_LINES) >= SURE_LINES
            confidence = min(1.0, support / SURE_SUPPORT) * min(1.0, agreement / SURE_AGREEMENT)
            on = "" if separate is None else f" on {separate} lines"
            why = f"{support:.1f} frame widths of lines agree{on} ({agreement:.0%} of them)"
        auto = sure and abs(turn) <= st.max_auto_angle_deg
        if auto:
            plan.angle_deg = float(turn)
        doubt = "" if auto else ("; beyond the automatic " f"{st.max_auto_angle_deg:g} deg: intentional? check by eye"
                                 if sure else "; the lines do not make it sure (perspective?): check by eye")
        return [Operation(
            op_id="straighten", kind=OperationKind.STRAIGHTEN,
            # angle_deg turns the crop rectangle (counter-clockwise on screen, as the
            # tilted line rises to the right): its content comes out level.
            params={"angle_deg": rounded(float(turn), 2), "axis": axis},
            reason=f"{axis} tilted {turn:+.2f} deg ({why})" + doubt,
            measured=rounded(float(turn), 2), target=0.0, confidence=rounded(confidence, 2),
            applied_by=AppliedBy.RENDERER if auto else AppliedBy.RETOUCHER,
        )]
    return []


def _reading(turn: float | None, support: float | None, agreement: float | None,
             separate: int | None) -> tuple[float, float | None, float | None, int | None] | None:
    return None if turn is None else (float(turn), support, agreement, separate)
