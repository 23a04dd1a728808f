"""A flash's red eyes taken back to dark (the chart's ``faces.red_eye``).

detect_faces finds each face's red pupils (:func:`pipeline.imaging.red_eye.find_red_eyes`: a round blob many times
redder than its green and blue, and than the skin around it, on the eye); the rule asks the renderer to take the
red out of them, one ``red_eye`` operation a face so that a reviewer can turn one down (a red contact lens, a
costume's eyes), and writes what Camera Raw's settings cannot carry into the instructions' note.
"""

from __future__ import annotations

from charts.schema import Chart
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import rounded
from pipeline.planning.state import PlanState


def plan_red_eyes(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """A ``red_eye`` operation for each face with a red pupil, where the chart corrects red eyes."""
    if not chart.faces.red_eye:
        return []
    ops = []
    flash = " (the flash fired)" if record.camera.flash_fired else ""
    for i, face in enumerate(record.faces):
        values = face.red_eyes or []
        eyes = [[rounded(v, 1) for v in values[k : k + 3]] for k in range(0, len(values) - 2, 3)]
        if not eyes:
            continue
        ops.append(Operation(
            op_id=f"red_eye-{i}", kind=OperationKind.RED_EYE,
            params={"face_index": i, "eyes": eyes},
            reason=f"face {i + 1}: {'both eyes' if len(eyes) > 1 else 'an eye'} red from a flash{flash}: the red "
                   "taken out of the pupil",
            confidence=rounded(face.score, 2), applied_by=AppliedBy.RENDERER,
        ))
    return ops
