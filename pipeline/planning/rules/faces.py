"""Faces: a local lift for each face that counts and is still too dark after the global correction."""

from __future__ import annotations

from charts.schema import Chart
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import rounded
from pipeline.planning.state import PlanState

# The lift fades out over a quarter of the face box's longer side beyond the
# box: wide enough that no edge shows on the forehead or jaw, narrow enough not
# to lift the background around a small face.
FEATHER_FRACTION = 0.25


def plan_faces(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """Brighten each face more than ``faces.brighten_below_ev`` under the face target after ``plan.exposure_ev``.

    The renderer applies a lift up to ``faces.max_brighten_ev`` on a detection
    at least ``faces.min_auto_score`` sure; a bigger lift or a less certain
    detection goes to a retoucher.
    """
    fr = chart.faces
    if not fr.brighten:
        return []
    face_target = chart.exposure.target_ev + fr.target_ev
    ops = []
    for i in plan.faces_that_count:
        f = record.faces[i]
        if f.exposure_ev is None:
            continue
        after = f.exposure_ev + plan.exposure_ev
        deficit = face_target - after
        if deficit <= fr.brighten_below_ev:
            continue
        auto = deficit <= fr.max_brighten_ev and f.score >= fr.min_auto_score
        ops.append(Operation(
            op_id=f"brighten_face-{i}", kind=OperationKind.BRIGHTEN_FACE,
            params={
                "face_index": i,
                "box": [rounded(v, 1) for v in (f.x, f.y, f.width, f.height)],
                "ev": rounded(deficit, 2),
                "feather_px": rounded(FEATHER_FRACTION * max(f.width, f.height), 1),
            },
            reason=f"face {i + 1} is {deficit:.2f} EV below the face target after the global correction"
                   + ("" if auto else (" (more than the automatic limit: retouch by hand)"
                                       if deficit > fr.max_brighten_ev else " (uncertain detection)")),
            measured=rounded(after, 2), target=rounded(face_target, 2), confidence=rounded(f.score, 2),
            applied_by=AppliedBy.RENDERER if auto else AppliedBy.RETOUCHER,
        ))
    return ops
