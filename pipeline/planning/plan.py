"""Turn measurements and a chart into retouch instructions. No pixels.

Planning is cheap and deterministic: the same records and chart always give
the same operations, so a shoot can be re-planned after a chart change
(``postprod process --only plan``) without decoding anything. It is a
shoot-scope stage: it sees every image at once, which the near-duplicate
check needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from charts.schema import AcceptanceAction, Chart, CropPlacement, WhiteBalancePolicy
from pipeline.imaging.geometry import Box, place_crop
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind, Status, Verdict

NEUTRAL_CCT = 6504.0
# Variance of the Laplacian of sRGB values scales with contrast squared; after a
# gain of 2**ev in linear light, sRGB contrast grows by about 2**(ev/2.2).
_SHARPNESS_EV_EXPONENT = 2 / 2.2


def _round(v: float, nd: int = 3) -> float:
    return float(round(v, nd))


def _mired(cct: float) -> float:
    return 1e6 / cct


def cct_to_xy(cct: float) -> tuple[float, float]:
    """Chromaticity of the Planckian locus at ``cct`` kelvin (Kim et al. 2002 cubic fit, 1667-25000 K)."""
    t = min(max(cct, 1667.0), 25000.0)
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


_XYZ_TO_SRGB = np.array(
    [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]]
)
_D65_XYZ = np.array([0.95047, 1.0, 1.08883])


def _xy_to_srgb_white(x: float, y: float) -> np.ndarray:
    rgb = _XYZ_TO_SRGB @ np.array([x / y, 1.0, (1 - x - y) / y])
    return rgb / rgb[1]


def lab_to_linear_srgb(L: float, a: float, b: float) -> np.ndarray:
    """CIE Lab (D65 white) -> linear sRGB."""
    fy = (L + 16) / 116
    fx, fz = fy + a / 500, fy - b / 200

    def finv(t: float) -> float:
        return t**3 if t > 6 / 29 else 3 * (6 / 29) ** 2 * (t - 4 / 29)

    xyz = _D65_XYZ * np.array([finv(fx), finv(fy), finv(fz)])
    return _XYZ_TO_SRGB @ xyz


def white_balance_gains(cast_a: float, cast_b: float, target_cct: float = NEUTRAL_CCT) -> list[float]:
    """Linear RGB multipliers that move the measured neutral to the target white.

    The measured neutral is the Lab colour ``(50, cast_a, cast_b)`` of the
    near-neutral pixels; the target is the Planckian white at ``target_cct``
    (D65 for a neutral policy). Gains are normalised to keep luminance.
    """
    measured = np.clip(lab_to_linear_srgb(50.0, cast_a, cast_b), 1e-4, None)
    target = np.ones(3) if abs(target_cct - NEUTRAL_CCT) < 1 else _xy_to_srgb_white(*cct_to_xy(target_cct))
    target = target * (measured[1] / target[1])
    gains = target / measured
    luma = np.array([0.2126, 0.7152, 0.0722])
    gains /= (luma @ (gains * measured)) / (luma @ measured)
    return [_round(g, 4) for g in gains]


def _face_counts(record: ImageRecord, chart: Chart) -> list[int]:
    """Indices of the faces the chart cares about (big enough)."""
    short = min(record.frame.width or 0, record.frame.height or 0) or 1
    return [i for i, f in enumerate(record.faces) if 100.0 * f.height / short >= chart.faces.min_face_pct]


def _union(boxes: list[Box], margin: float, width: float, height: float) -> Box:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    mw, mh = (x1 - x0) * margin, (y1 - y0) * margin
    # Headroom above, shoulders below: a face box is only the face.
    x0, x1 = max(0.0, x0 - mw), min(width, x1 + mw)
    y0, y1 = max(0.0, y0 - 0.6 * (y1 - y0) - mh), min(height, y1 + 1.2 * (y1 - y0) + mh)
    return (x0, y0, x1 - x0, y1 - y0)


def _check(ops: list[Operation], action: AcceptanceAction, check: str, reason: str,
           measured: float | None, target: float | None, confidence: float = 1.0, **params: Any) -> None:
    if action is AcceptanceAction.IGNORE:
        return
    kind = OperationKind.REJECT if action is AcceptanceAction.REJECT else OperationKind.FLAG
    ops.append(Operation(
        op_id=f"{kind}-{check}", kind=kind, params={"check": check, **params}, reason=reason,
        measured=None if measured is None else _round(measured), target=target,
        confidence=_round(confidence, 2), applied_by=AppliedBy.RETOUCHER,
    ))


def plan_image(record: ImageRecord, chart: Chart) -> list[Operation]:
    """The operations one image needs under ``chart``.

    Parameters
    ----------
    record : ImageRecord
        An analysed image (``status == ok``; exposure and face fields filled).
    chart : Chart
        The resolved chart.

    Returns
    -------
    list of Operation
        In the order a retoucher would work: white balance, exposure, faces,
        straightening, crops, then flags and rejections.

    Raises
    ------
    ValueError
        If the record was not analysed (no size); failed records have no plan.
    """
    if record.frame.width is None or record.frame.height is None:
        raise ValueError(f"{record.source_path}: cannot plan an image that was not analysed")
    W, H = float(record.frame.width), float(record.frame.height)
    ops: list[Operation] = []

    # White balance, in mired: equal steps look equal whatever the temperature.
    wb = chart.white_balance
    if wb.policy is not WhiteBalancePolicy.AS_SHOT and record.colour.temperature_shift_k is not None:
        measured_cct = NEUTRAL_CCT + record.colour.temperature_shift_k
        cast_mired = _mired(measured_cct) - _mired(NEUTRAL_CCT)  # + = warm cast
        target_mired = wb.warm_shift_mired if wb.policy is WhiteBalancePolicy.WARM else 0.0
        shift = target_mired - cast_mired
        if abs(shift) > wb.tolerance_mired:
            target_cct = 1e6 / (_mired(NEUTRAL_CCT) + target_mired)
            ops.append(Operation(
                op_id="white_balance", kind=OperationKind.WHITE_BALANCE,
                params={
                    "gains": white_balance_gains(record.colour.cast_a or 0.0, record.colour.cast_b or 0.0, target_cct),
                    "mired_shift": _round(shift, 1),
                    # Lightroom-style: + = warmer. Neutrals at measured_cct move to target_cct.
                    "temperature_shift_k": _round(measured_cct - target_cct, 0),
                    "tint_shift": _round(-(record.colour.cast_a or 0.0), 2),
                },
                reason=f"neutrals read {abs(cast_mired):.0f} mired {'warm' if cast_mired > 0 else 'cool'}"
                       f" ({measured_cct:.0f} K); the chart wants {wb.policy}",
                measured=_round(cast_mired, 1), target=target_mired,
                confidence=0.8, applied_by=AppliedBy.RENDERER,
            ))

    # Exposure: keyed on the faces when there are faces that count (meter for
    # skin), on the whole scene otherwise.
    ex, fr = chart.exposure, chart.faces
    counted = _face_counts(record, chart)
    face_evs = sorted(record.faces[i].exposure_ev for i in counted if record.faces[i].exposure_ev is not None)
    applied_ev = 0.0
    if face_evs:
        key_ev = float(np.median(face_evs)) - fr.target_ev
        keyed_on = f"keyed on {len(face_evs)} face(s)"
    else:
        key_ev = record.exposure.ev
        keyed_on = "keyed on the scene"
    if key_ev is not None:
        needed = ex.target_ev - key_ev
        if abs(needed) > ex.tolerance_ev:
            applied_ev = max(-ex.max_correction_ev, min(ex.max_correction_ev, needed))
            beyond = abs(needed) > ex.max_correction_ev
            ops.append(Operation(
                op_id="exposure", kind=OperationKind.EXPOSURE, params={"ev": _round(applied_ev, 2)},
                reason=f"image is {abs(needed):.2f} EV {'under' if needed > 0 else 'over'} the target ({keyed_on})"
                       + (f"; correction capped at {ex.max_correction_ev:g} EV" if beyond else ""),
                measured=_round(key_ev, 2), target=ex.target_ev,
                confidence=_round(min(1.0, abs(needed) / (2 * ex.tolerance_ev + 1e-6)), 2),
                applied_by=AppliedBy.RENDERER,
            ))
            if beyond:
                _check(ops, AcceptanceAction.FLAG, "exposure_range",
                       f"needs {needed:+.2f} EV, beyond the automatic {ex.max_correction_ev:g} EV: check by eye",
                       key_ev, ex.target_ev)

    # Faces: compared after the global correction, against the face target.
    face_target = ex.target_ev + fr.target_ev
    if fr.brighten:
        for i in counted:
            f = record.faces[i]
            if f.exposure_ev is None:
                continue
            after = f.exposure_ev + applied_ev
            deficit = face_target - after
            if deficit <= fr.brighten_below_ev:
                continue
            auto = deficit <= fr.max_brighten_ev and f.score >= 0.75
            ops.append(Operation(
                op_id=f"brighten_face-{i}", kind=OperationKind.BRIGHTEN_FACE,
                params={
                    "face_index": i,
                    "box": [_round(v, 1) for v in (f.x, f.y, f.width, f.height)],
                    "ev": _round(deficit, 2),
                    "feather_px": _round(0.25 * max(f.width, f.height), 1),
                },
                reason=f"face {i + 1} is {deficit:.2f} EV below the face target after the global correction"
                       + ("" if auto else (" (more than the automatic limit: retouch by hand)"
                                           if deficit > fr.max_brighten_ev else " (uncertain detection)")),
                measured=_round(after, 2), target=_round(face_target, 2), confidence=_round(f.score, 2),
                applied_by=AppliedBy.RENDERER if auto else AppliedBy.RETOUCHER,
            ))

    # Straightening: verticals (interiors) before the horizon.
    st = chart.straighten
    angle = 0.0
    lines = record.lines.lines_found or 0
    for axis, enabled, tilt in (("verticals", st.verticals, record.lines.verticals_tilt_deg),
                                ("horizon", st.horizon, record.lines.horizon_tilt_deg)):
        if not enabled or tilt is None or abs(tilt) < 0.2:
            continue
        confidence = _round(min(1.0, lines / 20.0), 2)
        auto = abs(tilt) <= st.max_auto_angle_deg and lines >= 5
        if auto:
            angle = float(tilt)
        ops.append(Operation(
            op_id="straighten", kind=OperationKind.STRAIGHTEN,
            # angle_deg turns the crop rectangle (counter-clockwise on screen, as the
            # tilted line rises to the right): its content comes out level.
            params={"angle_deg": _round(float(tilt), 2), "axis": axis},
            reason=f"{axis} tilted {tilt:+.2f} deg ({lines} lines)"
                   + ("" if auto else f"; beyond the automatic {st.max_auto_angle_deg:g} deg or too few lines: "
                                      "intentional? check by eye"),
            measured=_round(float(tilt), 2), target=0.0, confidence=confidence,
            applied_by=AppliedBy.RENDERER if auto else AppliedBy.RETOUCHER,
        ))
        break

    # Crops, placed on the faces that count.
    face_boxes = [(record.faces[i].x, record.faces[i].y, record.faces[i].width, record.faces[i].height) for i in counted]
    for spec in chart.crops:
        focus, keep, how = None, None, "centre"
        if spec.placement is CropPlacement.FACE_AWARE and face_boxes:
            areas = [b[2] * b[3] for b in face_boxes]
            cx = sum((b[0] + b[2] / 2) * a for b, a in zip(face_boxes, areas)) / sum(areas)
            cy = sum((b[1] + b[3] / 2) * a for b, a in zip(face_boxes, areas)) / sum(areas)
            focus, keep, how = (cx, cy), _union(face_boxes, 0.15, W, H), f"on {len(face_boxes)} face(s)"
        elif spec.placement is CropPlacement.SALIENCY and record.content.saliency_x is not None:
            focus, how = (record.content.saliency_x * W, record.content.saliency_y * H), "on the salient region"
        box = place_crop(W, H, spec.ratio, angle, focus, keep)
        ops.append(Operation(
            op_id=f"crop-{spec.aspect.replace(':', 'x')}", kind=OperationKind.CROP,
            params={"aspect": spec.aspect, "box": [_round(v, 1) for v in box], "placement": str(spec.placement),
                    "angle_deg": _round(angle, 2)},
            reason=f"{spec.aspect} crop placed {how}",
            confidence=1.0 if focus is not None or spec.placement is CropPlacement.CENTER else 0.6,
            applied_by=AppliedBy.RENDERER,
        ))

    # Acceptance checks.
    acc = chart.acceptance
    if record.focus.sharpness is not None:
        seen = record.focus.sharpness * 2 ** (applied_ev * _SHARPNESS_EV_EXPONENT)
        limit = acc.sharpness.min_laplacian_var
        if seen < limit:
            _check(ops, acc.sharpness.action, "sharpness",
                   f"soft or out of focus: sharpness {seen:.1f} < {limit:g}", seen, limit,
                   confidence=min(1.0, (limit - seen) / limit + 0.5))
    if record.exposure.clipped_highlights_pct is not None and record.exposure.clipped_highlights_pct > acc.clipped_highlights.max_pct:
        _check(ops, acc.clipped_highlights.action, "clipped_highlights",
               f"{record.exposure.clipped_highlights_pct:.1f}% of pixels clipped in the highlights "
               f"(max {acc.clipped_highlights.max_pct:g}%)",
               record.exposure.clipped_highlights_pct, acc.clipped_highlights.max_pct)
    shadows = [v for v in (record.exposure.clipped_shadows_pct_r, record.exposure.clipped_shadows_pct_g, record.exposure.clipped_shadows_pct_b)
               if v is not None]
    if shadows and max(shadows) > acc.clipped_shadows.max_pct:
        _check(ops, acc.clipped_shadows.action, "clipped_shadows",
               f"{max(shadows):.1f}% of pixels crushed to black (max {acc.clipped_shadows.max_pct:g}%)",
               max(shadows), acc.clipped_shadows.max_pct)
    if not counted:
        _check(ops, acc.face_required.action, "face_required",
               "no face large enough for this chart" if record.faces else "no face found", 0.0, 1.0)
    return ops


def verdict_of(ops: list[Operation]) -> Verdict:
    if any(op.kind is OperationKind.REJECT for op in ops):
        return Verdict.REJECT
    if any(op.kind is OperationKind.FLAG or op.applied_by is AppliedBy.RETOUCHER for op in ops):
        return Verdict.FLAG
    return Verdict.ACCEPT


def near_duplicates(records: list[ImageRecord], max_distance: int) -> dict[int, int]:
    """Index -> index of the earliest frame it nearly duplicates (perceptual hash).

    Every pair is compared, as numpy popcounts of the XORed 64-bit hashes:
    the driver's one quadratic step (2.6 s of Python at 10,000 images, 0.2 s so).
    """
    kept = [(i, int(r.content.phash, 16)) for i, r in enumerate(records) if r.content.phash and r.status is Status.OK
            and r.duplicate_of is None]
    out: dict[int, int] = {}
    if not kept:
        return out
    index = np.array([i for i, _ in kept])
    hashes = np.array([h for _, h in kept], dtype=np.uint64)
    for k in range(1, len(kept)):
        close = np.flatnonzero(np.bitwise_count(hashes[:k] ^ hashes[k]) <= max_distance)
        if close.size:
            out[int(index[k])] = int(index[close[0]])
    return out


def plan_shoot(records: list[ImageRecord], chart: Chart) -> None:
    """Plan every analysed record in place (operations, verdict, faces_to_brighten)."""
    dups = near_duplicates(records, chart.acceptance.duplicates.max_hash_distance)
    for i, r in enumerate(records):
        if r.status is not Status.OK:
            continue
        ops = plan_image(r, chart)
        if i in dups:
            other = records[dups[i]]
            distance = (int(r.content.phash, 16) ^ int(other.content.phash, 16)).bit_count()
            _check(ops, chart.acceptance.duplicates.action, "duplicates",
                   f"near-duplicate of {other.source_path} (hash distance {distance})", float(distance),
                   float(chart.acceptance.duplicates.max_hash_distance), duplicate_of=other.source_path)
        r.operations = ops
        r.plan.faces_to_brighten = sum(op.kind is OperationKind.BRIGHTEN_FACE for op in ops)
        r.plan.verdict = verdict_of(ops)
