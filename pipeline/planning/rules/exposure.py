"""Exposure: one global correction toward the chart's target, keyed on the faces that count."""

from __future__ import annotations

import numpy as np

from charts.schema import AcceptanceAction, Chart
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import check_operation, rounded
from pipeline.planning.state import PlanState

# Confidence grows with the error measured in tolerances: an image just outside
# the tolerance may be a metering quirk, one twice the tolerance away is
# certainly off (confidence 1).
CERTAIN_AT_TOLERANCES = 2.0
# Keeps the confidence finite under a chart with tolerance_ev: 0.
_NO_ZERO_DIVISION = 1e-6


def plan_exposure(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """Correct an image further than ``exposure.tolerance_ev`` from the target; flag one beyond the cap.

    With faces that count, the exposure is keyed on them (their median lands
    ``faces.target_ev`` above the target, as a portrait photographer meters for
    skin); otherwise on the scene. Sets ``plan.exposure_ev``.
    """
    ex = chart.exposure
    face_evs = sorted(record.faces[i].exposure_ev for i in plan.faces_that_count
                      if record.faces[i].exposure_ev is not None)
    if face_evs:
        key_ev = float(np.median(face_evs)) - chart.faces.target_ev
        keyed_on = f"keyed on {len(face_evs)} face(s)"
    else:
        key_ev = record.exposure.ev
        keyed_on = "keyed on the scene"
    if key_ev is None:
        return []
    needed = ex.target_ev - key_ev
    if not abs(needed) > ex.tolerance_ev:  # (not <=: a NaN measurement plans nothing)
        return []
    plan.exposure_ev = max(-ex.max_correction_ev, min(ex.max_correction_ev, needed))
    beyond = abs(needed) > ex.max_correction_ev
    ops = [Operation(
        op_id="exposure", kind=OperationKind.EXPOSURE, params={"ev": rounded(plan.exposure_ev, 2)},
        reason=f"image is {abs(needed):.2f} EV {'under' if needed > 0 else 'over'} the target ({keyed_on})"
               + (f"; correction capped at {ex.max_correction_ev:g} EV" if beyond else ""),
        measured=rounded(key_ev, 2), target=ex.target_ev,
        confidence=rounded(min(1.0, abs(needed) / (CERTAIN_AT_TOLERANCES * ex.tolerance_ev + _NO_ZERO_DIVISION)), 2),
        applied_by=AppliedBy.RENDERER,
    )]
    if beyond:
        ops += check_operation(
            AcceptanceAction.FLAG, "exposure_range",
            f"needs {needed:+.2f} EV, beyond the automatic {ex.max_correction_ev:g} EV: check by eye",
            key_ev, ex.target_ev)
    return ops
