"""Faces delivered unrecognisable where the client may not publish them (the chart's ``privacy.blur_faces``).

A property's photos show its occupants, a brand's street shoot shows passers-by who signed no release: before a
listing or a post goes out, a retoucher blurs their faces, one by one. The rule asks the renderer to do it for
every face the detector found (``all``) or for those smaller than the chart's subjects (``bystanders``: under
``faces.min_face_pct`` of the short edge), each its own ``blur_face`` operation so that a reviewer can turn one
down (the client's own face in a crowd). The renderer replaces the head's ellipse with a smooth field of a few of
its own mean colours (:class:`~pipeline.imaging.render.FaceBlur`), in every rendition and in the review's
pictures. A detector misses faces (turned away, masked, very small, half hidden): a frame with a blurred face is
flagged for a person to look for the others before delivery.
"""

from __future__ import annotations

from charts.schema import AcceptanceAction, BlurFaces, Chart
from pipeline.imaging.geometry import Box
from pipeline.kernel.records import AppliedBy, Face, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import check_operation, rounded
from pipeline.planning.state import PlanState

#: The head around a detected face, in face-box widths and heights: a head is about one and a half faces wide with
#: its ears and hair, and the cranium and hair rise about half a face above the brows the detector's box starts at.
#: Below, the ellipse inscribed in the head's box must still hold the detector's whole box, its lower corners (the
#: jaw) too: with those two, that takes 0.22 of a face below the chin; a quarter. Set from a head's proportions and
#: that geometry, not fitted on any photo.
HEAD_WIDTH = 1.5
HEAD_ABOVE = 0.5
HEAD_BELOW = 0.25


def head_box(face: Face) -> Box:
    """The box of the head around a detected face, in the face's full-resolution pixels as shot."""
    w = HEAD_WIDTH * face.width
    return (face.x + 0.5 * face.width - 0.5 * w, face.y - HEAD_ABOVE * face.height, w,
            (1.0 + HEAD_ABOVE + HEAD_BELOW) * face.height)


def faces_to_blur(record: ImageRecord, chart: Chart) -> list[int]:
    """Indices of the detected faces the chart delivers blurred."""
    mode = chart.privacy.blur_faces
    if mode is BlurFaces.NONE or not record.faces:
        return []
    if mode is BlurFaces.ALL:
        return list(range(len(record.faces)))
    short = min(record.frame.width or 0, record.frame.height or 0) or 1
    return [i for i, f in enumerate(record.faces) if 100.0 * f.height / short < chart.faces.min_face_pct]


def plan_blur_faces(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """A ``blur_face`` operation for each face the chart's ``privacy.blur_faces`` names, and a flag to look for more."""
    chosen = faces_to_blur(record, chart)
    if not chosen:
        return []
    which = ("every face" if chart.privacy.blur_faces is BlurFaces.ALL else
             f"the faces under {chart.faces.min_face_pct:g} % of the short edge, its subjects'")
    ops = [
        Operation(
            op_id=f"blur_face-{i}", kind=OperationKind.BLUR_FACE,
            params={"face_index": i, "box": [rounded(v, 1) for v in head_box(f)],
                    "face_box": [rounded(v, 1) for v in (f.x, f.y, f.width, f.height)]},
            reason=f"face {i + 1} blurred for privacy (the chart blurs {which})",
            confidence=rounded(f.score, 2), applied_by=AppliedBy.RENDERER,
        )
        for i in chosen
        for f in (record.faces[i],)
    ]
    n = len(ops)
    return ops + check_operation(
        AcceptanceAction.FLAG, "privacy",
        f"{n} face{'s' if n > 1 else ''} blurred for privacy: look for faces the detector missed (turned away, "
        "masked, half hidden, small in the distance, in a reflection or a picture on the wall) before delivery",
        n, None, faces=[i + 1 for i in chosen],
    )
