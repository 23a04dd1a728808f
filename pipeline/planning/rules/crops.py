"""Crops that keep people: one per chart aspect, the largest that fits the straightened frame, placed so that no
face is cut, and flagged when the aspect cannot hold everyone or would be delivered enlarged.

Every face at least :data:`FRAMING_MIN_FACE_FRACTION` of the short side wide
counts for framing, whatever its size for retouching (a guest at the end of a
table is small but cutting her in half is not). Each such face, with headroom
above it (its forehead and hair), must lie wholly inside the crop or wholly
outside it. Among the placements of the largest crop that cut nobody, the plan
keeps the most important faces (by area, and by how central they are in the
frame), then frames them as the chart's placement says: a head-and-shoulders
region for ``face_aware``, the subject for ``saliency`` (the crop that holds the most of the record's
``saliency_map``: :func:`salient_focus`), the centre for ``center``. A crop that leaves a face out, or that cannot avoid a cut, is
flagged with a ``crop`` check naming the aspect and the faces.

A rendition that fills an exact box from a crop needs ``box / crop`` pixels per
source pixel; beyond the rendition's ``max_upscale`` the renderer delivers it
smaller (:func:`pipeline.imaging.render.rendition_size`), or, where the chart
says ``flag``, delivers the box and the plan flags the enlargement (``upscale``).

A frame on a white backdrop (a packshot: ``exposure_backdrop_pct``; a person on a seamless, unless the chart frames
heads and shoulders, ``face_aware``) frames what stands on
it (``exposure_subject_box``, with :data:`SUBJECT_MARGIN` of air): where the chart's crop would cut it, the crop
slides to hold it, and where no crop of the aspect inside the frame can, the crop is widened beyond the frame,
the subject centred, and the renderer pads it with the backdrop's colour (``pad_rgb``), as a retoucher extends a
packshot's canvas with its white (a car on a sweep delivered square was cut at both ends). A side where the
subject meets the frame's edge (cut off by the photographer) is never padded; a subject that meets both edges of
the side to pad is cropped as before.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from charts.schema import Chart, CropOrientation, CropPlacement, Rendition, UpscaleAction
from pipeline.imaging.geometry import (
    Box,
    inscribed_box,
    kept_share,
    place_crop,
    rotated_corners,
    shrink_to_fit,
    turned_aspect,
    within_upscale,
)
from pipeline.imaging.perspective import frame_map
from pipeline.imaging.measure.content import decode_saliency_map
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.planning.operations import rounded
from pipeline.planning.state import PlanState

# A face box is only the face. The region a face-aware crop frames adds, as
# fractions of the faces' union: a margin on every side, headroom above (the
# hair and some air) and the shoulders below, as a head-and-shoulders portrait
# is framed.
FACE_MARGIN = 0.15
HEADROOM = 0.6
SHOULDERS = 1.2
#: Faces at least this wide, as a share of the image's short side, count for framing (issue 17):
#: no crop may cut one.
FRAMING_MIN_FACE_FRACTION = 0.04
#: What of a face a crop must keep whole: the box, with this much of its height above it (forehead
#: and hair over a brow-to-chin box) and this much of its width on either side (the ears: the detector's
#: boxes are narrower than a person draws them; on the accuracy benchmark's tuning split a crop edge at 5 %
#: still cut 6 % of a drawn face, 195 px wide, whose detected box was 166 px).
PROTECTED_HEADROOM = 0.3
PROTECTED_SIDES = 0.1
#: How far a drawn face may still reach beyond the detector's box: a crop edge stays clear of this wider
#: region where the frame leaves room (it never costs a face: see :func:`place_keeping_faces`). On the
#: accuracy benchmark's tuning split (28 drawn faces of 4 photos matched to their detections) a drawn box
#: reached past the detected one by up to 0.22 of its width on a side (95th percentile 0.20), and its
#: forehead and hair (a quarter of the drawn face above it) up to 0.34 of its height above.
CLEAR_HEADROOM = 0.35
CLEAR_SIDES = 0.25
#: A person's shoulders reach this many face widths beyond either side of the face's box: shoulder breadth (biacromial)
#: over face breadth (bizygomatic) is about 2.8 (ANSUR II's means, 39.8 / 14.0 cm for men, 36.6 / 13.2 for women),
#: so (2.8 - 1) / 2 on a side. Not fitted. Below the face, :data:`SHOULDERS` of its height.
SHOULDER_SIDES = 0.9
# Candidate crop edges stand this far clear of a face's protected region (px).
_SLACK_PX = 0.5
# A face is in when this much of its protected region is, out when this little is; between, cut.
_IN, _OUT = 0.999, 0.001
# A face-aware or saliency crop with nothing to place on (no face that counts,
# no salient region measured) falls back to the centre: likely fine, not sure.
CENTRED_FALLBACK_CONFIDENCE = 0.6
# A crop that leaves faces out or cuts one: the renderer still makes it, a person should look.
FLAGGED_CROP_CONFIDENCE = 0.5
#: Air around what stands on a white backdrop in its crop, as a share of its larger side (a packshot's subject
#: fills about 90 % of the frame's limiting side: marketplaces ask for 85 % or more).
SUBJECT_MARGIN = 0.06


def plan_crops(record: ImageRecord, chart: Chart, plan: PlanState) -> list[Operation]:
    """One crop per ``chart.crops`` entry, turned by ``plan.angle_deg``, that cuts no face (see the module)."""
    W, H = float(record.frame.width), float(record.frame.height)  # PlanState.start checked they are there
    framing = framing_faces(record)
    counted = [(f.x, f.y, f.width, f.height) for f in (record.faces[i] for i in plan.faces_that_count)]
    corrected = frame_map(plan.lens, plan.keystone, int(W), int(H))
    if corrected is not None:
        # The renderer corrects the lens or the keystone: crop boxes are in the corrected frame, where the faces have
        # moved (a wide angle's by up to 1-2 % of the frame near its edges; a keystone's by more).
        framing = {i: corrected.corrected_box(box) for i, box in framing.items()}
        counted = [corrected.corrected_box(box) for box in counted]
    # A picture padded with bars to another aspect (a listing portal's letterbox) is the picture inside them: its crops
    # are placed there, and the bars (read as a white backdrop) are no packshot's to pad.
    inside = picture_inside_bars(record) if corrected is None else None
    subject = Subject.of(record) if not plan.angle_deg and inside is None else None
    ops: list[Operation] = []
    for spec in chart.crops:
        focus, keep, how = None, None, "centre"
        # Turned to the picture's orientation where the chart says so (``orientation: source``): the picture inside
        # its bars, where it has some.
        turned = spec.turned_for(*((inside[2], inside[3]) if inside is not None else (W, H)))
        ratio = 1.0 / spec.ratio if turned else spec.ratio
        if spec.placement is CropPlacement.FACE_AWARE and (counted or framing):
            around = counted or list(framing.values())
            focus, keep, how = faces_centroid(around), faces_region(around, W, H), f"on {len(around)} face(s)"
        elif spec.placement is CropPlacement.SALIENCY and record.content.saliency_map:
            focus, how = salient_focus(decode_saliency_map(record.content.saliency_map), W, H,
                                       inscribed_box(W, H, plan.angle_deg, ratio)[2:]), "on the subject"
        elif spec.placement is CropPlacement.SALIENCY and record.content.saliency_x is not None:
            # A record measured before the subject's map was kept: the centre of its salient region.
            focus, how = (record.content.saliency_x * W, record.content.saliency_y * H), "on the salient region"
        if inside is None:
            placed = place_keeping_faces(W, H, ratio, plan.angle_deg, framing, focus, keep)
        else:
            placed = _placed_inside(inside, ratio, plan.angle_deg, framing, focus, keep)
            how += f", inside the picture's {bars_name(record)} (its bars left out)"
        left_out, cut = placed.left_out, placed.cut
        pad, product_cut = None, False
        # What stands on a backdrop is held whole: a product, or a person framed by the chart's saliency or centre
        # (a model on a seamless, arms raised, was cut at the hands by a crop framing her face). A head-and-
        # shoulders chart (face_aware) frames the faces.
        holds = subject is not None and (not framing or spec.placement is not CropPlacement.FACE_AWARE)
        if holds and kept_share(placed.box, 0.0, subject.box) < _IN:
            box, pad = subject.crop(ratio, W, H)
            if box is not None and all(kept_share(box, 0.0, protected_region(f, W, H)) >= _IN
                                       for f in framing.values()):
                placed, focus = Placement(box), (box[0] + box[2] / 2, box[1] + box[3] / 2)
                how = ("on what stands on the white backdrop, padded beyond the frame with its colour to hold it "
                       "whole" if pad else "on what stands on the white backdrop, held whole")
            elif not framing:
                product_cut = True
            else:
                pad = None  # a person it cannot hold whole is framed as people are
        aspect_id = spec.aspect.replace(":", "x")
        confidence = 1.0 if focus is not None or spec.placement is CropPlacement.CENTER else CENTRED_FALLBACK_CONFIDENCE
        if framing and not (left_out or cut):
            how += f", all {len(framing)} face(s) whole"
        turn_note = (f", turned to the picture's {'upright' if spec.ratio > 1.0 else 'landscape'} orientation "
                     f"({turned_aspect(spec.aspect)}),") if turned else ""
        notes, enlarged = _enlargements(chart, spec.aspect, placed.box)
        how += "".join(f"; {n}" for n in notes)
        ops.append(Operation(
            op_id=f"crop-{aspect_id}", kind=OperationKind.CROP,
            params={"aspect": spec.aspect, "box": [rounded(v, 1) for v in placed.box], "placement": str(spec.placement),
                    "angle_deg": rounded(plan.angle_deg, 2), **({"aspect_turned": True} if turned else {}),
                    # A crop that may follow the picture: a reviewer may turn it the other way round (review store).
                    **({"orientation": str(spec.orientation)} if spec.orientation is CropOrientation.SOURCE else {}),
                    **({"pad_rgb": [rounded(c, 4) for c in pad]} if pad else {}),
                    **({"pad_falloff": [rounded(c, 4) for c in subject.falloff]}
                       if pad and subject is not None and subject.falloff else {})},
            reason=f"{spec.aspect} crop{turn_note} placed {how}",
            confidence=FLAGGED_CROP_CONFIDENCE if (left_out or cut) else confidence,
            applied_by=AppliedBy.RENDERER,
        ))
        if left_out or cut:
            ops.append(_faces_flag(spec.aspect, cut, left_out, len(framing)))
        if product_cut:
            ops.append(_flag(f"crop-{aspect_id}", "crop",
                             f"no {spec.aspect} crop holds what stands on the white backdrop whole: it meets both "
                             "edges of the frame a pad would widen; check the framing by eye", aspect=spec.aspect))
        ops += enlarged
    return ops


def picture_inside_bars(record: ImageRecord) -> Box | None:
    """The picture inside the flat bars it was padded with (``content.border_bars``), in full-resolution pixels; None
    without bars."""
    bars = record.content.border_bars
    if not bars or len(bars) != 4:
        return None
    W, H = float(record.frame.width), float(record.frame.height)  # type: ignore[arg-type]
    left, top, right, bottom = (max(0.0, float(v)) for v in bars)
    if left + right >= 0.9 or top + bottom >= 0.9:
        return None
    return (left * W, top * H, W * (1.0 - left - right), H * (1.0 - top - bottom))


def bars_name(record: ImageRecord) -> str:
    """"letterbox" (bars above and below) or "pillarbox" (left and right), for the reasons."""
    bars = record.content.border_bars or [0.0, 0.0, 0.0, 0.0]
    return "letterbox" if bars[1] + bars[3] >= bars[0] + bars[2] else "pillarbox"


def _placed_inside(picture: Box, aspect: float, angle_deg: float, framing: dict[int, Box],
                   focus: tuple[float, float] | None, keep: Box | None) -> Placement:
    """:func:`place_keeping_faces` within ``picture`` (a box of the frame), in the frame's pixels. Turned, the crop is
    inscribed in the picture turned about its own centre, which lies within the bars' difference of the frame's (a
    few pixels: a tenth of a pixel off at 2 deg)."""
    x0, y0, w, h = picture

    def moved(box: Box) -> Box:
        return (box[0] - x0, box[1] - y0, box[2], box[3])

    placed = place_keeping_faces(w, h, aspect, angle_deg, {i: moved(b) for i, b in framing.items()},
                                 None if focus is None else (focus[0] - x0, focus[1] - y0),
                                 None if keep is None else moved(keep))
    bx, by, bw, bh = placed.box
    return Placement((bx + x0, by + y0, bw, bh), placed.cut, placed.left_out)


@dataclass(frozen=True)
class Subject:
    """What stands on a frame's white backdrop, with its air (:data:`SUBJECT_MARGIN`), in full-resolution pixels.

    Attributes
    ----------
    box : Box
        Its bounding box with the air, never beyond an edge of the frame it meets.
    meets : tuple of bool
        Whether it meets the frame's left, top, right and bottom edges (cut off there by the photographer).
    colour : tuple of float
        The backdrop's colour as decoded (``exposure_backdrop_rgb``), what a padded crop is filled with.
    falloff : list of float or None
        How the backdrop's light falls off across the frame (``exposure_backdrop_falloff``): the pad goes on from
        the frame's edge at its level there.
    """

    box: Box
    meets: tuple[bool, bool, bool, bool]
    colour: tuple[float, float, float]
    falloff: list[float] | None = None

    @classmethod
    def of(cls, record: ImageRecord) -> Subject | None:
        """The record's subject on its backdrop, or None without a backdrop (or its box or colour)."""
        ex = record.exposure
        if not ex.backdrop_pct or not ex.subject_box or not ex.backdrop_rgb:
            return None
        W, H = float(record.frame.width), float(record.frame.height)  # type: ignore[arg-type]
        x0, y0, x1, y1 = ex.subject_box[0] * W, ex.subject_box[1] * H, ex.subject_box[2] * W, ex.subject_box[3] * H
        edge = 0.01 * max(W, H)  # the backdrop's rim and the 256-px grid: within a hundredth is at the edge
        meets = (x0 <= edge, y0 <= edge, x1 >= W - edge, y1 >= H - edge)
        m = SUBJECT_MARGIN * max(x1 - x0, y1 - y0)
        x0, y0 = (0.0 if meets[0] else x0 - m), (0.0 if meets[1] else y0 - m)
        x1, y1 = (W if meets[2] else x1 + m), (H if meets[3] else y1 + m)
        r, g, b = (float(c) for c in ex.backdrop_rgb)
        return cls((x0, y0, x1 - x0, y1 - y0), meets, (r, g, b), ex.backdrop_falloff)

    def crop(self, aspect: float, width: float, height: float) -> tuple[Box | None, tuple[float, float, float] | None]:
        """The ``aspect`` crop that holds the subject whole: inside the frame where one can (no pad), else the
        smallest that holds it, centred on it and padded beyond the frame (with :attr:`colour`); ``(None, None)``
        when even that would pad a side the subject meets."""
        x, y, w, h = self.box
        inside = place_crop(width, height, aspect, 0.0, (x + w / 2, y + h / 2), self.box)
        if kept_share(inside, 0.0, self.box) >= _IN:
            return inside, None
        bw = max(w, h * aspect)
        bh = bw / aspect
        bx, by = x + w / 2 - bw / 2, y + h / 2 - bh / 2
        left, top, right, bottom = self.meets
        if (left and right and bw > width + 1e-6) or (top and bottom and bh > height + 1e-6):
            return None, None  # it would pad a side the subject meets
        # A side the subject meets stays the frame's edge: the box slides away from it, never past it.
        if left and bx < 0:
            bx = 0.0
        if right and bx + bw > width:
            bx = width - bw
        if top and by < 0:
            by = 0.0
        if bottom and by + bh > height:
            by = height - bh
        box = (bx, by, bw, bh)
        if kept_share(box, 0.0, self.box) < _IN:
            return None, None
        return box, self.colour


#: Placements of a crop tried along each axis the frame leaves it free on (:func:`salient_focus`): a 65th of the
#: slack, a pixel or two of a 16-cell map.
SALIENT_STEPS = 65
#: The air a crop placed on the subject keeps around it: what it holds less this share of its width and height on
#: each side counts again (:func:`salient_focus`), so a crop whose edge runs through the subject loses to one that
#: holds it with air. On ``benchmarks/subject_crops.py``'s tuning split (55 crops of its photos as shot, 208 of them
#: cut so the subject stands off the centre; maps made from the photos decoded directly), crops cutting the subject:
#: 5 and 26 with no air, 4 and 20 at 0.03, 3 and 18 at 0.05, 4 and 15 at 0.08, 5 and 20 at 0.12.
SALIENT_AIR = 0.08


def salient_focus(grid: np.ndarray, width: float, height: float, size: tuple[float, float]) -> tuple[float, float]:
    """The centre of the crop of ``size`` (w, h) inside the ``width`` x ``height`` frame that holds the most of the
    subject's map (``grid``, :func:`~pipeline.imaging.measure.content.salient_object_map`; each cell taken as spread
    evenly over its area), what it holds less :data:`SALIENT_AIR` on each side counted twice; among those that hold
    as much, the nearest the frame's centre (a map with no subject centres the crop).

    Placed on the centre of the salient region instead, a crop cut the subject more often than a centred one: the
    centre of a bird's cliff, of a dog beside its bicycle (``benchmarks/subject_crops.py``).
    """
    w, h = min(size[0], width), min(size[1], height)
    rows, cols = grid.shape
    integral = np.pad(grid.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    xs = np.linspace(0.0, width - w, SALIENT_STEPS) if width - w > 1e-6 else np.zeros(1)
    ys = np.linspace(0.0, height - h, SALIENT_STEPS) if height - h > 1e-6 else np.zeros(1)
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))

    def held(air: float) -> np.ndarray:
        x0, y0 = (x + air * w) / width * cols, (y + air * h) / height * rows
        x1, y1 = (x + (1 - air) * w) / width * cols, (y + (1 - air) * h) / height * rows
        return (_area_sum(integral, y1, x1) - _area_sum(integral, y0, x1) - _area_sum(integral, y1, x0)
                + _area_sum(integral, y0, x0))

    mass = held(SALIENT_AIR) + held(0.0)
    candidates = np.flatnonzero(mass >= mass.max() - 1e-9 * max(float(integral[-1, -1]), 1e-12))
    best = candidates[np.argmin(np.hypot(x[candidates] + w / 2 - width / 2, y[candidates] + h / 2 - height / 2))]
    return float(x[best] + w / 2), float(y[best] + h / 2)


def _area_sum(integral: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The summed-area table ``integral`` (one more row and column than its grid) at fractional cells ``y``, ``x``:
    bilinear, so a cell counts in proportion to the share of it inside."""
    rows, cols = integral.shape[0] - 1, integral.shape[1] - 1
    y, x = np.clip(y, 0, rows), np.clip(x, 0, cols)
    y0, x0 = np.minimum(y.astype(int), rows - 1), np.minimum(x.astype(int), cols - 1)
    fy, fx = y - y0, x - x0
    return (integral[y0, x0] * (1 - fy) * (1 - fx) + integral[y0 + 1, x0] * fy * (1 - fx)
            + integral[y0, x0 + 1] * (1 - fy) * fx + integral[y0 + 1, x0 + 1] * fy * fx)


def framing_faces(record: ImageRecord) -> dict[int, Box]:
    """The faces no crop may cut: index -> box, for every face at least
    :data:`FRAMING_MIN_FACE_FRACTION` of the short side wide (too small to retouch or not)."""
    short = min(record.frame.width or 0, record.frame.height or 0)
    return {i: (f.x, f.y, f.width, f.height) for i, f in enumerate(record.faces)
            if f.width >= FRAMING_MIN_FACE_FRACTION * short}


def protected_region(face: Box, width: float, height: float, headroom: float = PROTECTED_HEADROOM,
                     sides: float = PROTECTED_SIDES) -> Box:
    """A face's box with its headroom and sides (shares of its height and width: by default
    :data:`PROTECTED_HEADROOM`, :data:`PROTECTED_SIDES`), in the frame."""
    x, y, w, h = face
    x0, x1 = max(0.0, x - sides * w), min(width, x + w + sides * w)
    y0, y1 = max(0.0, y - headroom * h), min(height, y + h)
    return (x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))


def person_region(face: Box, width: float, height: float) -> Box:
    """A face's head and shoulders: its protected headroom above, :data:`SHOULDER_SIDES` of its width on either
    side and :data:`SHOULDERS` of its height below, in the frame. A crop edge through it slices the person (a
    man at a truck's side kept to his face and half his back; a partner's ear and shoulder at the edge of a crop
    that leaves him out)."""
    x, y, w, h = face
    x0, x1 = max(0.0, x - SHOULDER_SIDES * w), min(width, x + w + SHOULDER_SIDES * w)
    y0, y1 = max(0.0, y - PROTECTED_HEADROOM * h), min(height, y + h + SHOULDERS * h)
    return (x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))


def off_the_turned_edges(region: Box, face: Box, crop_w: float, crop_h: float, angle_deg: float, width: float,
                         height: float) -> Box:
    """A face's ``region`` less the strip along each frame edge it reaches that any ``crop_w`` x ``crop_h`` crop
    turned by ``angle_deg`` loses to the turn, never into the ``face`` box itself: a turned crop meets a frame edge at
    a corner only, and its side runs away from the edge by up to its length times sin(angle). A face whose headroom
    the photo itself cuts at the frame's top is not cut by a straightened crop that keeps all of it the turn allows (a
    press headshot turned 0.4 deg read "cuts face 1" for 2 px of hair at the top of the frame); a face the turn cuts
    into still is."""
    if not angle_deg:
        return region
    x, y, w, h = region
    fx, fy, fw, fh = face
    slope = math.sin(math.radians(abs(angle_deg)))
    top = min(crop_w * slope, max(0.0, fy - y)) if y <= 0.0 else 0.0
    bottom = min(crop_w * slope, max(0.0, y + h - fy - fh)) if y + h >= height else 0.0
    left = min(crop_h * slope, max(0.0, fx - x)) if x <= 0.0 else 0.0
    right = min(crop_h * slope, max(0.0, x + w - fx - fw)) if x + w >= width else 0.0
    return (x + left, y + top, max(0.0, w - left - right), max(0.0, h - top - bottom))


def importance(face: Box, width: float, height: float) -> float:
    """How much a face matters to a crop: its area, times 1.5 at the frame's centre falling to 0.5 in a corner."""
    x, y, w, h = face
    d = math.hypot(x + w / 2 - width / 2, y + h / 2 - height / 2) / math.hypot(width / 2, height / 2)
    return w * h * (1.5 - min(d, 1.0))


@dataclass(frozen=True)
class Placement:
    """A crop box and what it does to the faces: the indices it cuts and those it leaves out."""

    box: Box
    cut: tuple[int, ...] = ()
    left_out: tuple[int, ...] = ()


def place_keeping_faces(width: float, height: float, aspect: float, angle_deg: float, faces: dict[int, Box],
                        focus: tuple[float, float] | None = None, keep: Box | None = None) -> Placement:
    """The largest ``aspect`` crop (turned by ``angle_deg``) that cuts no face, keeps the most important ones, and
    among those is nearest the chart's framing (``focus``, ``keep``: see :func:`~pipeline.imaging.geometry.place_crop`).

    Candidate positions are where a crop edge meets a face's protected region
    (:func:`protected_region`) along either axis, plus the chart's own
    placement and the frame's edges; each is judged on the turned box, in
    order: the importance of the faces it cuts (none, if it can), the
    importance of those it keeps, the importance of the faces whose wider
    clear region (:data:`CLEAR_SIDES`, :data:`CLEAR_HEADROOM`: where a face the
    detector boxed tightly may still reach) an edge runs through, whether the
    framing region is whole, the importance of the people whose head and shoulders
    (:func:`person_region`) an edge slices, whether their face is in or out, and the distance from the framing's
    focus: a crop placed on a subject moves off it as far as it takes to hold a person whole or leave them out.

    Returns
    -------
    Placement
        The box, and the faces (indices into ``faces``) cut or left out.
    """
    preferred = place_crop(width, height, aspect, angle_deg, focus, keep)
    if not faces:
        return Placement(preferred)
    _, _, w, h = inscribed_box(width, height, angle_deg, aspect)
    regions = {i: off_the_turned_edges(protected_region(f, width, height), f, w, h, angle_deg, width, height)
               for i, f in faces.items()}
    clear = {i: off_the_turned_edges(protected_region(f, width, height, CLEAR_HEADROOM, CLEAR_SIDES), f, w, h,
                                     angle_deg, width, height) for i, f in faces.items()}
    people = {i: off_the_turned_edges(person_region(f, width, height), f, w, h, angle_deg, width, height)
              for i, f in faces.items()}
    weight = {i: importance(f, width, height) for i, f in faces.items()}
    xs = {preferred[0], 0.0, width - w}
    ys = {preferred[1], 0.0, height - h}
    # Each edge just clear of a region (by _SLACK_PX, so the box rounded to a tenth of a pixel in the plan
    # still holds it whole or leaves it wholly out).
    e = _SLACK_PX
    for rx, ry, rw, rh in [*regions.values(), *clear.values(), *people.values()]:
        xs |= {rx - e, rx + rw - w + e, rx + rw + e, rx - w - e}
        ys |= {ry - e, ry + rh - h + e, ry + rh + e, ry - h - e}
    xs = {min(max(x, 0.0), width - w) for x in xs}
    ys = {min(max(y, 0.0), height - h) for y in ys}
    fx, fy = (preferred[0] + preferred[2] / 2, preferred[1] + preferred[3] / 2)
    best, best_key = None, None
    for x, y in itertools.product(sorted(xs), sorted(ys)):
        box = (x, y, w, h)
        if angle_deg and not _fits(box, angle_deg, width, height):
            box = shrink_to_fit(box, angle_deg, width, height)
        shares = {i: kept_share(box, angle_deg, r) for i, r in regions.items()}
        cut = tuple(i for i, s in shares.items() if _OUT < s < _IN)
        inside = [i for i, s in shares.items() if s >= _IN]
        grazed = [i for i, r in clear.items() if _OUT < kept_share(box, angle_deg, r) < _IN]
        framed = keep is None or kept_share(box, angle_deg, keep) >= _IN
        sliced = [i for i, r in people.items() if _OUT < kept_share(box, angle_deg, r) < _IN]
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        key = (sum(weight[i] for i in cut), -sum(weight[i] for i in inside), sum(weight[i] for i in grazed),
               not framed, sum(weight[i] for i in sliced), math.hypot(cx - fx, cy - fy), -box[2])
        if best_key is None or key < best_key:
            best_key = key
            best = Placement(box, cut, tuple(i for i, s in shares.items() if s <= _OUT))
    assert best is not None
    return best


def faces_a_box_cuts(box: Box, angle_deg: float, faces: dict[int, Box], width: float,
                     height: float) -> Placement:
    """What a crop ``box`` turned by ``angle_deg`` does to ``faces`` (index -> box, those a crop frames:
    :func:`framing_faces`), judged as :func:`place_keeping_faces` judges its candidates: the faces whose protected
    region (headroom and sides, less what the turn takes off the frame's edges) it cuts, and those it leaves wholly
    out. For a box the plan did not place: a reviewer's move, resize or turn (the review's crop editor)."""
    _, _, w, h = box
    shares = {i: kept_share(box, angle_deg, off_the_turned_edges(protected_region(f, width, height), f, w, h,
                                                                  angle_deg, width, height))
              for i, f in faces.items()}
    return Placement(box, tuple(i for i, s in shares.items() if _OUT < s < _IN),
                     tuple(i for i, s in shares.items() if s <= _OUT))


def crop_reframed(op: Operation) -> bool:
    """Whether a reviewer's decision on a crop changes the frame its renditions are cut to: a box moved or resized,
    a turn, or the crop rejected (its renditions then cut centred)."""
    review = op.review or {}
    return op.kind is OperationKind.CROP and (
        review.get("status") == "rejected" or bool({"box", "rotate_deg"} & set(review.get("params") or {})))


def rejudge_crop_flags(record: ImageRecord, chart: Chart, aspects: set[str] | None = None) -> bool:
    """The flags of the crops of ``aspects`` judged again on the frames the renderer now cuts them to, as the plan
    judged its own boxes: a crop a reviewer moved, resized, turned or rejected (:func:`crop_reframed`) is flagged for
    the faces it now cuts or leaves out (``reviewed``), and its renditions' enlargement flags follow its new size
    (:func:`_enlargements`, ``reviewed`` too); a crop whose reviewer's frame was taken back gets the plan's flags
    again. A flag the frame no longer earns is dropped; one still earned keeps its own decision. The flag of a
    product a crop cuts is not judged again (the plan's stands). ``aspects`` None: the crops reframed now and those
    whose flags were judged on a reviewer's frame before (:func:`reviewed_crop_flags`).

    Returns
    -------
    bool
        Whether the operations changed.
    """
    from pipeline.imaging.render import adjustments_from_operations, rendition_frame  # the renderer's own rule

    if aspects is None:
        aspects = {str(op.params["aspect"]) for op in record.operations if crop_reframed(op)} \
            | reviewed_crop_flags(record)
    crops = {str(op.params["aspect"]): op for op in record.operations
             if op.kind is OperationKind.CROP and str(op.params.get("aspect")) in aspects}
    if not crops or record.frame.width is None or record.frame.height is None:
        return False
    W, H = int(record.frame.width), int(record.frame.height)
    adjustments = adjustments_from_operations(record.operations)
    faces = framing_faces(record)
    corrected = frame_map(adjustments.lens, adjustments.keystone, W, H) if faces else None
    if corrected is not None:
        faces = {i: corrected.corrected_box(b) for i, b in faces.items()}
    old = {op.op_id: op for op in record.operations if _judged_with(op, crops, chart)}
    new: list[Operation] = []
    after: dict[str, list[Operation]] = {}  # by crop op_id: its flags, put after it as the plan puts them
    for aspect, op in crops.items():
        start = len(new)
        frame = rendition_frame(Rendition(crop=aspect), adjustments, W, H)
        judged = faces_a_box_cuts(frame, adjustments.angle_deg + adjustments.crop_turns.get(aspect, 0.0), faces, W, H)
        how = None
        if crop_reframed(op):
            how = ("rejected, its renditions cut centred," if (op.review or {}).get("status") == "rejected"
                   else "as a reviewer placed it")
        if judged.cut or judged.left_out:
            new.append(_faces_flag(aspect, judged.cut, judged.left_out, len(faces), how))
        enlarged = _enlargements(chart, aspect, frame)[1]
        for flag in enlarged if how is not None else ():
            flag.params["reviewed"] = True
        new += enlarged
        after[op.op_id] = new[start:]
    for flag in new:
        if (before := old.get(flag.op_id)) is not None:
            flag.review = before.review
    if [(o.op_id, o.reason, o.params) for o in old.values()] == [(o.op_id, o.reason, o.params) for o in new]:
        return False
    kept = [o for o in record.operations if not _judged_with(o, crops, chart)]
    record.operations, crop = [], None
    for i, o in enumerate(kept):
        record.operations.append(o)
        if o.op_id in after and o.kind is OperationKind.CROP:
            crop = o
        # A crop's flags follow it, after any of its own that stay (a product it cuts), as in the plan's order.
        if crop is not None and not (i + 1 < len(kept) and _flag_of(kept[i + 1], crop)):
            record.operations += after.pop(crop.op_id)
            crop = None
    return True


def _flag_of(op: Operation, crop: Operation) -> bool:
    return op.kind is OperationKind.FLAG and op.params.get("check") == "crop" \
        and op.params.get("aspect") == crop.params.get("aspect")


def reviewed_crop_flags(record: ImageRecord) -> set[str]:
    """The crop aspects whose flags :func:`rejudge_crop_flags` judged on a reviewer's frame (marked ``reviewed``)."""
    return {str(op.params["aspect"]) for op in record.operations
            if op.kind is OperationKind.FLAG and op.params.get("reviewed") and op.params.get("aspect")}


def _judged_with(op: Operation, crops: dict[str, Operation], chart: Chart) -> bool:
    """Whether ``op`` is a flag :func:`rejudge_crop_flags` makes again for these ``crops``: a crop's faces flag
    (not a product's) or an enlargement flag of one of their renditions."""
    if op.kind is not OperationKind.FLAG:
        return False
    if op.params.get("check") == "crop":
        return op.params.get("aspect") in crops and "faces_cut" in op.params
    rendition = chart.renditions.get(str(op.params.get("rendition")))
    return op.params.get("check") == "upscale" and rendition is not None and rendition.crop in crops


def _fits(box: Box, angle_deg: float, width: float, height: float) -> bool:
    return all(-1e-6 <= px <= width + 1e-6 and -1e-6 <= py <= height + 1e-6
               for px, py in rotated_corners(box, angle_deg))


def _enlargements(chart: Chart, aspect: str, box: Box) -> tuple[list[str], list[Operation]]:
    """What the renditions filled from this crop do beyond their ``max_upscale``: notes for those delivered
    smaller (the crop's reason says so), flags for those the chart wants delivered enlarged."""
    notes, flags = [], []
    for name, r in chart.renditions.items():
        asked = r.box_for(box[2], box[3])  # turned with a crop turned to the picture's orientation
        if r.crop != aspect or asked is None:
            continue
        delivered, scale = within_upscale(asked, box[2], box[3], r.max_upscale)
        if scale <= r.max_upscale + 1e-9:
            continue
        if r.beyond_max_upscale is UpscaleAction.FLAG:
            flags.append(_flag(f"upscale-{name}", "upscale",
                               f"rendition {name} ({asked[0]}x{asked[1]}) enlarges the {aspect} crop "
                               f"({box[2]:.0f}x{box[3]:.0f} px) {scale:.1f}x, beyond its {r.max_upscale:g}x: "
                               "delivered enlarged; a larger original or a smaller delivery is needed",
                               rendition=name, aspect=aspect, upscale=rounded(scale, 2)))
        else:
            notes.append(f"{name} delivered at {delivered[0]}x{delivered[1]}, not {asked[0]}x{asked[1]} "
                         f"(it would need {scale:.1f}x, beyond max_upscale {r.max_upscale:g})")
    return notes, flags


def _numbers(indices: tuple[int, ...]) -> str:
    return ", ".join(str(i + 1) for i in indices)


def _faces_flag(aspect: str, cut: tuple[int, ...], left_out: tuple[int, ...], framed: int,
                reviewed: str | None = None) -> Operation:
    """The flag of a crop that cuts faces or leaves some out (of the ``framed`` it frames): the plan's, or with
    ``reviewed`` (how a reviewer left the crop) the flag of the crop as reviewed (:func:`rejudge_crop_flags`)."""
    why = ([f"cuts face(s) {_numbers(cut)}"] if cut else []) + (
        [f"leaves face(s) {_numbers(left_out)} out ({len(left_out)} of the {framed} it frames)"] if left_out else [])
    if reviewed is None:
        reason = (f"no {aspect} crop holds every face whole: it {' and '.join(why)}; kept the largest, most central; "
                  "check the framing by eye")
    else:
        reason = f"the {aspect} crop {reviewed} {' and '.join(why)}; check the framing by eye"
    return _flag(f"crop-{aspect.replace(':', 'x')}", "crop", reason, aspect=aspect, faces_cut=list(cut),
                 faces_left_out=list(left_out), **({"reviewed": True} if reviewed is not None else {}))


def _flag(op_id: str, check: str, reason: str, **params: object) -> Operation:
    return Operation(op_id=f"flag-{op_id}", kind=OperationKind.FLAG, params={"check": check, **params}, reason=reason,
                     confidence=1.0, applied_by=AppliedBy.RETOUCHER)


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
