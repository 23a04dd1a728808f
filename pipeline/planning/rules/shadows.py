"""A backlit frame's shadows lifted, as a retoucher's Shadows slider lifts them: proposed to a reviewer.

A dusk sky or a window at white holds a backlit frame's exposure near the target (the meter is never read
darker than its white point), so the room or the foreground stays stops under, and a global push would clip
the sky further. The clipped-highlights flag says what the rest reads
(:func:`~pipeline.planning.rules.checks.backlit_rest_ev`); this rule proposes the retoucher's answer, a tone
curve (:class:`~pipeline.imaging.shadow_lift.ShadowLift`) that lifts what reads at the rest's key and under,
easing off to nothing at the chart's target, so the highlights, the sky and everything from the target up are
as the corrections render them. The lift is the most such a curve gives while keeping half its contrast
(:data:`~pipeline.imaging.shadow_lift.MIN_SLOPE`): a third of the gap from the rest's key to the target (0.7 EV
for the FiveK balcony, whose table and diner read 2.1 EV under), at most :data:`MAX_LIFT_EV`.

Proposed, not applied (the renderer applies it once a reviewer accepts it, and the review app previews it): a
sunset's silhouettes read the same as a backlit room, and only the eye tells a foreground dark by intent. Not
where faces count (their exposure and lifts are the faces rule's), nor where the chart's
``exposure.lift_backlit_shadows`` is false.
"""

from __future__ import annotations

from charts.schema import Chart
from pipeline.imaging.measure.metering import KEY_LOG2
from pipeline.imaging.shadow_lift import MIN_SLOPE, SMOOTHSTEP_PEAK
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import proposed, rounded
from pipeline.planning.rules.checks import backlit_rest_ev, lifts_backlit_shadows
from pipeline.planning.rules.exposure import tolerated_clipping_pct
from pipeline.planning.state import PlanState

#: The largest lift proposed, in EV: a curve's lift past it flattens a room into a grey wash.
MAX_LIFT_EV = 1.5


def plan_shadow_lift(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """A proposed ``lift_shadows`` operation for a backlit frame (module docstring); none otherwise.

    Its parameters: ``ev`` (the lift at and under ``start``), ``start`` (the rest's key after the plan's
    correction) and ``end`` (the chart's target), levels of linear luminance in the light the corrections render
    (scene light for a rendered source), and ``rest_ev`` (what the rest reads against the target).
    """
    rest = backlit_rest(record, chart, plan)
    if rest is None:
        return []
    gap = -rest
    ev = min(MAX_LIFT_EV, gap * (1.0 - MIN_SLOPE) / SMOOTHSTEP_PEAK)
    end = 2.0 ** (KEY_LOG2 + chart.exposure.target_ev)
    op = Operation(
        op_id="lift_shadows", kind=OperationKind.LIFT_SHADOWS,
        params={"ev": rounded(ev, 2), "start": rounded(end * 2.0**rest, 6), "end": rounded(end, 6),
                "rest_ev": rounded(rest, 2)},
        reason=f"backlit: the frame is {record.exposure.clipped_highlights_pct:.1f}% clipped while the rest reads "
               f"{rest:+.2f} EV: its shadows lifted {ev:+.2f} EV, easing off to none at the target (the highlights "
               "as they are)",
        measured=rounded(rest, 2), target=0.0, confidence=1.0, applied_by=AppliedBy.RENDERER,
    )
    return [proposed(op, "a foreground dark by intent (a silhouette) reads the same: confirm by eye")]


def backlit_rest(record: ImageRecord, chart: Chart, plan: PlanState) -> float | None:
    """What the rest of a backlit frame reads (:func:`~pipeline.planning.rules.checks.backlit_rest_ev`), where
    the chart lifts backlit shadows, the frame is clipped over what it tolerates of a frame that holds its
    highlights' detail (:func:`~pipeline.planning.rules.exposure.tolerated_clipping_pct`: the chart's
    ``acceptance.clipped_highlights.max_pct`` on the whole frame, never under base's 2 %; read on the whole frame,
    not a merged bracket's), and no face counts; None otherwise.

    A chart stricter on clipping than base (``culinary`` 1 %, ``print`` 0.5 %) flags more frames for their
    highlights, but a frame with a lamp or a sun's disc at white is no more backlit for it: under ``culinary``,
    drewnoakes/metadata-extractor-images' 150 camera JPEGs, right as they are, got 21 lifts proposed against base's
    6, of a casino at night (1.5 EV), two sunsets' silhouettes (1.2 and 0.78 EV), a snowy sunset, a whale in a
    museum hall and a red phone box in the sun among them. Not fitted: base's limit.
    """
    clipped = record.exposure.clipped_highlights_pct
    if not lifts_backlit_shadows(chart, plan) or plan.merged_clipped_pct is not None:
        return None
    if clipped is None or clipped <= tolerated_clipping_pct(chart):
        return None
    return backlit_rest_ev(record, chart, plan)
