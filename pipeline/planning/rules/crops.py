"""Crops: one per chart aspect, the largest that fits the straightened frame, placed on what matters."""

from __future__ import annotations

from charts.schema import Chart, CropPlacement
from pipeline.imaging.geometry import Box, place_crop
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import rounded
from pipeline.planning.state import PlanState

# A face box is only the face. The region a face-aware crop keeps whole adds,
# as fractions of the faces' union: a margin on every side, headroom above
# (the hair and some air) and the shoulders below, as a head-and-shoulders
# portrait is framed.
FACE_MARGIN = 0.15
HEADROOM = 0.6
SHOULDERS = 1.2
# A face-aware or saliency crop with nothing to place on (no face that counts,
# no salient region measured) falls back to the centre: likely fine, not sure.
CENTRED_FALLBACK_CONFIDENCE = 0.6


def plan_crops(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """One crop per ``chart.crops`` entry, turned by ``plan.angle_deg`` and placed by its ``placement``."""
    W, H = float(record.frame.width), float(record.frame.height)  # PlanState.start checked they are there
    faces = [(record.faces[i].x, record.faces[i].y, record.faces[i].width, record.faces[i].height)
             for i in plan.faces_that_count]
    ops = []
    for spec in chart.crops:
        focus, keep, how = None, None, "centre"
        if spec.placement is CropPlacement.FACE_AWARE and faces:
            focus, keep, how = faces_centroid(faces), faces_region(faces, W, H), f"on {len(faces)} face(s)"
        elif spec.placement is CropPlacement.SALIENCY and record.content.saliency_x is not None:
            focus, how = (record.content.saliency_x * W, record.content.saliency_y * H), "on the salient region"
        box = place_crop(W, H, spec.ratio, plan.angle_deg, focus, keep)
        ops.append(Operation(
            op_id=f"crop-{spec.aspect.replace(':', 'x')}", kind=OperationKind.CROP,
            params={"aspect": spec.aspect, "box": [rounded(v, 1) for v in box], "placement": str(spec.placement),
                    "angle_deg": rounded(plan.angle_deg, 2)},
            reason=f"{spec.aspect} crop placed {how}",
            confidence=1.0 if focus is not None or spec.placement is CropPlacement.CENTER
            else CENTRED_FALLBACK_CONFIDENCE,
            applied_by=AppliedBy.RENDERER,
        ))
    return ops


def faces_centroid(boxes: list[Box]) -> tuple[float, float]:
    """Centre of the face boxes, weighted by area: the biggest (nearest) face pulls most."""
    areas = [b[2] * b[3] for b in boxes]
    cx = sum((b[0] + b[2] / 2) * a for b, a in zip(boxes, areas)) / sum(areas)
    cy = sum((b[1] + b[3] / 2) * a for b, a in zip(boxes, areas)) / sum(areas)
    return cx, cy


def faces_region(boxes: list[Box], width: float, height: float) -> Box:
    """The union of the face boxes with margin, headroom and shoulders, clipped to the frame."""
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    mw, mh = (x1 - x0) * FACE_MARGIN, (y1 - y0) * FACE_MARGIN
    x0, x1 = max(0.0, x0 - mw), min(width, x1 + mw)
    y0, y1 = max(0.0, y0 - HEADROOM * (y1 - y0) - mh), min(height, y1 + SHOULDERS * (y1 - y0) + mh)
    return (x0, y0, x1 - x0, y1 - y0)
