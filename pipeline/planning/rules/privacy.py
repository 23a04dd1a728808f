"""Faces delivered unrecognisable where the client may not publish them (the chart's ``privacy.blur_faces``).

A property's photos show its occupants, a brand's street shoot shows passers-by who signed no release: before a
listing or a post goes out, a retoucher blurs their faces, one by one. The rule asks the renderer to do it for
every face the detector found (``all``) or for those smaller than the chart's subjects (``bystanders``: under
``faces.min_face_pct`` of the short edge), each its own ``blur_face`` operation so that a reviewer can turn one
down (the client's own face in a crowd). The detector's unsure detections (``unsure_faces``: scoring under its
threshold down to ``detect_faces.unsure_score``, or not found again at a second scale) are blurred too, as the
chart's choice names them: a face turned away or behind goggles scores low, and a blurred patch of a wall costs
less than a face delivered. The renderer replaces the head's ellipse with a smooth field of a few of
its own mean colours (:class:`~pipeline.imaging.render.FaceBlur`), in every rendition and in the review's
pictures. A detector misses faces (turned away, masked, very small, half hidden): a frame with a blurred face is
flagged for a person to look for the others before delivery.
"""

from __future__ import annotations

from charts.schema import AcceptanceAction, BlurFaces, Chart
from pipeline.imaging.geometry import Box
from pipeline.kernel.records import AppliedBy, Face, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import check_operation, proposed, rounded
from pipeline.planning.state import PlanState, subject_sized

#: The head around a detected face, in face-box widths and heights: a head is about one and a half faces wide with
#: its ears and hair, and the cranium and hair rise about half a face above the brows the detector's box starts at.
#: Below, the ellipse inscribed in the head's box must still hold the detector's whole box, its lower corners (the
#: jaw) too: with those two, that takes 0.22 of a face below the chin; a quarter. Set from a head's proportions and
#: that geometry, not fitted on any photo.
HEAD_WIDTH = 1.5
HEAD_ABOVE = 0.5
HEAD_BELOW = 0.25


def head_box(face: Face | Box) -> Box:
    """The box of the head around a detected face (a :class:`Face` or its box), in full-resolution pixels as shot."""
    x, y, fw, fh = (face.x, face.y, face.width, face.height) if isinstance(face, Face) else face
    w = HEAD_WIDTH * fw
    return (x + 0.5 * fw - 0.5 * w, y - HEAD_ABOVE * fh, w, (1.0 + HEAD_ABOVE + HEAD_BELOW) * fh)


def unsure_faces(record: ImageRecord) -> list[tuple[Box, float]]:
    """The record's ``unsure_faces``: each detection's box and score (malformed entries left out)."""
    out = []
    for item in (record.unsure_faces or "").split(";"):
        try:
            x, y, w, h, score = (float(v) for v in item.split(","))
        except ValueError:
            continue
        if w > 0 and h > 0:
            out.append(((x, y, w, h), score))
    return out


def _blurred(mode: BlurFaces, height: float, record: ImageRecord, chart: Chart) -> bool:
    return mode is BlurFaces.ALL or (mode is BlurFaces.BYSTANDERS and not subject_sized(height, record, chart))


def faces_to_blur(record: ImageRecord, chart: Chart) -> list[int]:
    """Indices of the detected faces the chart delivers blurred."""
    mode = chart.privacy.blur_faces
    return [i for i, f in enumerate(record.faces) if _blurred(mode, f.height, record, chart)]


def plan_blur_faces(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """A ``blur_face`` operation for each face (and unsure detection) the chart's ``privacy.blur_faces`` names, and a
    flag to look for more."""
    mode = chart.privacy.blur_faces
    if mode is BlurFaces.NONE:
        return []
    chosen = faces_to_blur(record, chart)
    unsure = [(k, box, score) for k, (box, score) in enumerate(unsure_faces(record))
              if _blurred(mode, box[3], record, chart)]
    if not chosen and not unsure:
        return []
    which = ("every face" if mode is BlurFaces.ALL else
             f"the faces under {chart.faces.min_face_pct:g} % of the short edge, its subjects'")

    def blur(op_id: str, box: Box, score: float, index: dict[str, int], reason: str) -> Operation:
        return Operation(
            op_id=op_id, kind=OperationKind.BLUR_FACE,
            params={**index, "box": [rounded(v, 1) for v in head_box(box)], "face_box": [rounded(v, 1) for v in box]},
            reason=f"{reason} blurred for privacy (the chart blurs {which})",
            confidence=rounded(score, 2), applied_by=AppliedBy.RENDERER,
        )

    ops = [blur(f"blur_face-{i}", (f.x, f.y, f.width, f.height), f.score, {"face_index": i}, f"face {i + 1}")
           for i in chosen for f in (record.faces[i],)]
    doubtful = [blur(f"blur_face-unsure-{k}", box, score, {"unsure_index": k},
                     f"a detection not sure enough to be a face (score {score:.2f})") for k, box, score in unsure]
    if chart.privacy.confirm_unsure:
        doubtful = [proposed(op, "it may be no face: blurred once a reviewer accepts it") for op in doubtful]
    ops += doubtful
    n = len(ops)
    return ops + check_operation(
        AcceptanceAction.FLAG, "privacy",
        f"{n} face{'s' if n > 1 else ''} blurred for privacy: look for faces the detector missed (turned away, "
        "masked, half hidden, small in the distance, in a reflection or a picture on the wall) before delivery, and "
        "blur them in the review app (m: a box dragged over the head)"
        + (f"; {len(unsure)} of the blurs are on detections not sure to be faces ("
           + ("accept those that are" if chart.privacy.confirm_unsure else "turn down any that is none") + ")"
           if unsure else ""),
        n, None, faces=[i + 1 for i in chosen], unsure=len(unsure),
    )
