"""Faces: a local lift for each face that counts and sits in a shadow the global correction leaves."""

from __future__ import annotations

import math

import numpy as np

from charts.schema import Chart
from pipeline.imaging.measure.metering import FACE_LOG2, is_rendered, tone_curve
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import rounded
from pipeline.planning.state import PlanState

# The lift fades out over a quarter of the face box's longer side beyond the
# box: wide enough that no edge shows on the forehead or jaw, narrow enough not
# to lift the background around a small face.
FEATHER_FRACTION = 0.25


def shown_ev(face_ev: float, rendered: bool) -> float:
    """A face's reading (EV of scene light against a well-exposed face) in the light the renderer multiplies.

    The renderer's gains act on the decoded pixels: scene light for a RAW, the
    tone-mapped display light for a rendered source. A lift that brings a face
    back to its neighbours is the difference of this value, so a face in a
    shadow one stop deep in a JPEG is lifted one stop, not the larger
    difference its scene light shows through the curve's toe.
    """
    if not rendered:
        return face_ev
    return math.log2(max(float(tone_curve(2.0 ** (FACE_LOG2 + face_ev))), 2.0**-24)) - FACE_LOG2


def plan_faces(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """Brighten each face more than ``faces.brighten_below_ev`` under where it should be after ``plan.exposure_ev``.

    Where a face should be: level with the faces the exposure was keyed on
    (``plan.key_faces``, those in the brightest light), and as much brighter
    as an under-exposure beyond ``exposure.max_correction_ev`` leaves them
    (the global correction stops at the cap). The difference is read in the
    light the renderer multiplies (:func:`shown_ev`).
    The renderer applies a lift up to ``faces.max_brighten_ev`` on a detection
    at least ``faces.min_auto_score`` sure; a bigger lift or a less certain
    detection goes to a retoucher.
    """
    fr = chart.faces
    if not fr.brighten or not plan.key_faces or plan.exposure_offset_ev is None:
        return []
    rendered = is_rendered(record.source_kind)
    key = float(np.median([shown_ev(record.faces[i].exposure_ev, rendered) for i in plan.key_faces]))  # type: ignore[arg-type]
    # Of an under-exposure, what the capped global correction leaves: the faces take the rest.
    capped = max(0.0, -plan.exposure_offset_ev - chart.exposure.max_correction_ev)
    face_target = chart.exposure.target_ev + fr.target_ev
    ops = []
    for i in plan.faces_that_count:
        f = record.faces[i]
        if f.exposure_ev is None:
            continue
        deficit = key - shown_ev(f.exposure_ev, rendered) + capped
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
            measured=rounded(face_target - deficit, 2), target=rounded(face_target, 2), confidence=rounded(f.score, 2),
            applied_by=AppliedBy.RENDERER if auto else AppliedBy.RETOUCHER,
        ))
    return ops
