"""Acceptance checks: flag or reject a frame that fails one of the chart's limits."""

from __future__ import annotations

from charts.schema import Chart
from pipeline.kernel.records import ImageRecord, Operation
from pipeline.planning.operations import check_operation
from pipeline.planning.state import PlanState

# Variance of the Laplacian of sRGB values scales with contrast squared; after a
# gain of 2**ev in linear light, sRGB contrast grows by about 2**(ev/2.2).
SHARPNESS_EV_EXPONENT = 2 / 2.2
# Confidence that a frame is soft: a coin toss just under the limit, rising by
# the shortfall as a fraction of the limit (certain at half the limit).
SOFT_AT_LIMIT_CONFIDENCE = 0.5


def check_sharpness(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """Soft or missed focus: sharpness, as it will look after ``plan.exposure_ev``, under the chart's minimum."""
    if record.focus.sharpness is None:
        return []
    seen = record.focus.sharpness * 2 ** (plan.exposure_ev * SHARPNESS_EV_EXPONENT)
    limit = chart.acceptance.sharpness.min_laplacian_var
    if seen < limit:
        return check_operation(chart.acceptance.sharpness.action, "sharpness",
                               f"soft or out of focus: sharpness {seen:.1f} < {limit:g}", seen, limit,
                               confidence=min(1.0, (limit - seen) / limit + SOFT_AT_LIMIT_CONFIDENCE))
    return []


def check_clipped_highlights(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """More of the frame clipped at white than ``acceptance.clipped_highlights.max_pct``."""
    clipped, rule = record.exposure.clipped_highlights_pct, chart.acceptance.clipped_highlights
    if clipped is not None and clipped > rule.max_pct:
        return check_operation(rule.action, "clipped_highlights",
                               f"{clipped:.1f}% of pixels clipped in the highlights (max {rule.max_pct:g}%)",
                               clipped, rule.max_pct)
    return []


def check_clipped_shadows(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """More of the frame crushed to black, in its worst channel, than ``acceptance.clipped_shadows.max_pct``."""
    ex, rule = record.exposure, chart.acceptance.clipped_shadows
    shadows = [v for v in (ex.clipped_shadows_pct_r, ex.clipped_shadows_pct_g, ex.clipped_shadows_pct_b)
               if v is not None]
    if shadows and max(shadows) > rule.max_pct:
        return check_operation(rule.action, "clipped_shadows",
                               f"{max(shadows):.1f}% of pixels crushed to black (max {rule.max_pct:g}%)",
                               max(shadows), rule.max_pct)
    return []


def check_face_required(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """No face that counts, where the chart requires one (headshots)."""
    if plan.faces_that_count:
        return []
    return check_operation(chart.acceptance.face_required.action, "face_required",
                           "no face large enough for this chart" if record.faces else "no face found", 0.0, 1.0)
