"""Retouch instructions as people and tools read them.

Per image: ``instructions/<name>.json`` (validated by
``pipeline/outputs/instructions.schema.json``); per shoot: ``instructions.parquet``
(one row per operation). The same plan as Camera Raw settings for Lightroom
is :mod:`pipeline.outputs.xmp`; the document names its files.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipeline import __version__
from pipeline.kernel.records import (
    RENDER_ON_ACCEPT,
    AppliedBy,
    ImageRecord,
    Operation,
    OperationKind,
    awaiting_decision,
)

if TYPE_CHECKING:
    from pipeline.outputs.xmp import XmpTarget

INSTRUCTIONS_FORMAT = "postprod.instructions/1"
SCHEMA_PATH = Path(__file__).with_name("instructions.schema.json")
REVIEW_PENDING = "pending"

# The measurements a retoucher sees next to the plan.
MEASUREMENT_FIELDS = (
    "exposure_ev", "exposure_verdict", "exposure_keyed_on", "exposure_meter_ev", "exposure_white_ev", "exposure_target",
    "exposure_backdrop_pct", "exposure_unclipped_key_ev",
    "luminance_p50", "clipped_highlights_pct",
    "clipped_shadows_pct", "clipped_shadows_pct_r", "clipped_shadows_pct_g", "clipped_shadows_pct_b",
    "wb_cast_a", "wb_cast_b",
    "wb_temperature_shift_k", "wb_cast_mired", "wb_tint", "wb_uncertainty_mired", "wb_tint_uncertainty",
    "sharpness", "sharpness_peak",
    "noise_sigma",
    "horizon_tilt_deg", "verticals_tilt_deg", "lines_found", "phash", "saliency_map",
)  # fmt: skip
# The cast in mired beside its kelvin: a strong blue cast lies past infinite kelvin, where the kelvin column
# reads its cap: 6 of 20 real wrong-white-balance JPEGs said 993496 K (chispita_666: -183 mired, 77 either way).


def _f(name: str, t: pa.DataType, description: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, t, nullable=nullable, metadata={"description": description})


INSTRUCTIONS_SCHEMA = pa.schema(
    [
        _f("source_path", pa.string(), "Source file, relative to the shoot.", False),
        _f("op_id", pa.string(), "Operation id, stable within the image.", False),
        _f("kind", pa.string(),
           "exposure, white_balance, whiten_backdrop, lift_shadows, merge_bracket, brighten_face, blur_face, red_eye, "
           "reduce_noise, lens_correction, straighten, crop, flag or reject.",
           False),
        _f("params_json", pa.string(), "Kind-specific parameters as JSON (full-resolution pixels).", False),
        _f("reason", pa.string(), "Why, in the retoucher's words.", False),
        _f("measured", pa.float64(), "Measured value the rule compared."),
        _f("target", pa.float64(), "The chart's target or limit."),
        _f("confidence", pa.float64(), "0-1 confidence of the plan.", False),
        _f("applied_by", pa.string(), "renderer (automatic) or retoucher (a person must).", False),
        _f("review_status", pa.string(), "pending, accepted, rejected or done.", False),
        _f("reviewed_by", pa.string(), "Who reviewed it."),
        _f("reviewed_at", pa.string(), "When (ISO 8601, UTC)."),
        _f("comment", pa.string(), "Reviewer's comment."),
    ],
    metadata={"postprod.table": "instructions"},
)


#: Longest instructions file name in bytes: the review app's preview names add about 30 bytes to it,
#: and a file or folder name may have 255.
MAX_INSTRUCTION_NAME_BYTES = 200
_NAME_HASH = 16


def _unsafe_component(part: str) -> bool:
    return "__" in part or part.startswith("_") or part.endswith("_") or not part.isprintable()


def hashed_name(readable: str, key: str, suffix: str, limit: int) -> str:
    """``<readable, cut>___<16 hex of SHA-256(key)><suffix>``, at most ``limit`` bytes.

    For a name that cannot be used as it stands (ambiguous, too long, or with
    a non-printable character): ``key`` (the source path) keeps it unique,
    the readable prefix lets people find it; non-printable characters and
    slashes become ``_``.
    """
    from charts.naming import fit_bytes

    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:_NAME_HASH]
    clean = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in readable)
    room = limit - len(suffix.encode()) - 3 - _NAME_HASH
    return f"{fit_bytes(clean, room)}___{digest}{suffix}"


def instruction_name(source_path: str) -> str:
    """File name of an image's instructions: its path with folders joined by ``__``.

    A path the join would make ambiguous (a folder or file name with ``__``
    in it, or beginning or ending with ``_``), that holds a non-printable
    character (a newline), or that is too long for one file name (more than
    :data:`MAX_INSTRUCTION_NAME_BYTES` bytes) is named
    ``<readable prefix>___<16 hex digits of its SHA-256>.json`` instead: a
    plain name never holds three underscores in a row, so the two kinds can
    not meet, and every source path gets its own file.
    """
    parts = source_path.split("/")
    plain = "__".join(parts) + ".json"
    if any(_unsafe_component(p) for p in parts) or len(plain.encode("utf-8", "surrogateescape")) > MAX_INSTRUCTION_NAME_BYTES:
        return hashed_name("__".join(parts), source_path, ".json", MAX_INSTRUCTION_NAME_BYTES)
    return plain


def _clean(v: Any) -> Any:
    """A JSON-ready value: NaN -> null, datetimes -> ISO 8601, enums -> their string."""
    if isinstance(v, float):
        return None if math.isnan(v) else v
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, Enum):
        return str(v)
    return v


def operation_doc(op: Operation) -> dict[str, Any]:
    doc = asdict(op)
    doc["kind"] = str(op.kind)
    doc["applied_by"] = str(op.applied_by)
    doc["review"] = op.review or {"status": REVIEW_PENDING, "by": None, "at": None, "comment": None}
    return doc


def operation_from_doc(doc: dict[str, Any]) -> Operation:
    """The typed operation an instruction file's operation document describes (inverse of :func:`operation_doc`).

    ``params`` are taken as they stand in the file, where a reviewer's
    changes have already replaced the plan's values.

    Raises
    ------
    ValueError
        If ``kind`` or ``applied_by`` is not one this version knows.
    KeyError
        If the document lacks ``kind`` or ``params``.
    """
    return Operation(
        op_id=str(doc.get("op_id", doc["kind"])),
        kind=OperationKind(doc["kind"]),
        params=doc["params"],
        reason=doc.get("reason", ""),
        measured=doc.get("measured"),
        target=doc.get("target"),
        confidence=doc.get("confidence", 1.0),
        applied_by=AppliedBy(doc.get("applied_by", AppliedBy.RENDERER)),
        review=doc.get("review"),
    )


def white_balance_words(params: dict[str, Any]) -> str:
    """A white-balance operation in a line: "white balance 50 mired warmer" (kelvin only for a document from
    before ``mired_shift``: a step in kelvin says little, +12,400 K being as far as 100 mired cooler than D65)."""
    shift = params.get("mired_shift")
    if shift is None:
        return f"white balance {params['temperature_shift_k']:+.0f} K"
    if round(float(shift)) == 0:
        return "white balance: tint only"
    return f"white balance {abs(float(shift)):.0f} mired {'warmer' if shift > 0 else 'cooler'}"


def _to_confirm(op: Operation) -> bool:
    """A person's operation marked :data:`~pipeline.kernel.records.RENDER_ON_ACCEPT` that no reviewer decided yet
    (:func:`~pipeline.kernel.records.awaiting_decision`)."""
    return awaiting_decision(op.params, op.review)


def reviewed_summary(ops: list[Operation]) -> str:
    """The summary line of the operations a reviewer has not rejected, its faces counted among them: what the
    review app writes after a decision (:func:`pipeline.review.store.refresh_summary`) and what a re-plan that
    carried the decisions writes (a rejected proposal is neither "to confirm" nor done)."""
    kept = [o for o in ops if (o.review or {}).get("status") != "rejected"]
    return summary_line(kept, sum(o.kind is OperationKind.BRIGHTEN_FACE for o in kept))


def summary_line(ops: list[Operation], faces_to_brighten: int | None) -> str:
    """One line a production director reads: "3 faces to brighten; straighten +1.2 deg; crop 4:5"."""
    parts = []
    n = faces_to_brighten or 0
    if n:
        lifts = [o for o in ops if o.kind is OperationKind.BRIGHTEN_FACE and o.applied_by is AppliedBy.RETOUCHER]
        confirm = sum(_to_confirm(o) for o in lifts)  # the renderer's once accepted (then neither)
        by_hand = sum(not o.params.get(RENDER_ON_ACCEPT) for o in lifts)
        notes = ([f"{by_hand} by hand"] if by_hand else []) + ([f"{confirm} to confirm"] if confirm else [])
        parts.append(f"{n} face{'s' if n > 1 else ''} to brighten" + (f" ({', '.join(notes)})" if notes else ""))
    if red := [o for o in ops if o.kind is OperationKind.RED_EYE]:
        parts.append(f"red eyes on {len(red)} face{'s' if len(red) > 1 else ''}")
    if blurred := [o for o in ops if o.kind is OperationKind.BLUR_FACE]:
        confirm = sum(_to_confirm(o) for o in blurred)
        parts.append(f"{len(blurred)} face{'s' if len(blurred) > 1 else ''} blurred"
                     + (f" ({confirm} to confirm)" if confirm else ""))
    for o in ops:
        if o.kind is OperationKind.EXPOSURE:
            confirm = " (to confirm)" if _to_confirm(o) else ""  # proposed, not applied yet
            parts.append(f"exposure {o.params['ev']:+.2f} EV{confirm}")
        elif o.kind is OperationKind.WHITE_BALANCE:
            parts.append(white_balance_words(o.params) + (" (to confirm)" if _to_confirm(o) else ""))
        elif o.kind is OperationKind.WHITEN_BACKDROP:
            parts.append("backdrop to white")
        elif o.kind is OperationKind.LIFT_SHADOWS:
            parts.append(f"shadows {o.params['ev']:+.2f} EV" + (" (to confirm)" if _to_confirm(o) else ""))
        elif o.kind is OperationKind.LENS_CORRECTION:
            parts.append("lens profile")
        elif o.kind is OperationKind.STRAIGHTEN:
            keystone = o.params.get("keystone")
            parts.append(f"straighten {o.params['angle_deg']:+.1f} deg"
                         + (f", keystone {float(keystone['edge_lean_deg']):.1f} deg" if keystone else "")
                         + (" (to confirm)" if _to_confirm(o) else " (by hand)"
                            if o.applied_by is AppliedBy.RETOUCHER and not o.params.get(RENDER_ON_ACCEPT) else ""))
    crops = [o.params["aspect"] for o in ops if o.kind is OperationKind.CROP]
    if crops:
        parts.append("crop " + ", ".join(crops))
    for o in ops:
        if o.kind in (OperationKind.FLAG, OperationKind.REJECT):
            parts.append(f"{o.kind}: {o.params['check']}")
    return "; ".join(parts) or "nothing to do"


def instruction_doc(record: ImageRecord, chart_name: str, chart_hash: str,
                    renditions: list[tuple[str, str | None]] | None = None, xmp: XmpTarget | None = None,
                    review: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document of one image's instructions (see the JSON Schema).

    Parameters
    ----------
    record : ImageRecord
        A planned image.
    chart_name, chart_hash : str
        The chart it was planned under.
    renditions : list of (name, crop aspect or None), optional
        The chart's renditions in order; the first is the one the XMP carries.
    xmp : XmpTarget, optional
        Where its Camera Raw settings go (:func:`pipeline.outputs.xmp.xmp_targets`
        for a whole shoot, which settles shared stems); by default this image's own.
    review : dict, optional
        An image-level decision to keep (``rating``, ``label``, ``keywords``,
        ``by``, ``at``; the review app writes it).
    """
    from pipeline.outputs.xmp import framings, xmp_target  # the XMP writer reads these documents

    target = xmp or xmp_target(record.source_path, record.format)
    cr = record.camera_raw
    crop = (cr.default_crop_x, cr.default_crop_y, cr.default_crop_width, cr.default_crop_height)
    doc = {
        "format": INSTRUCTIONS_FORMAT,
        "postprod_version": __version__,
        "source_path": record.source_path,
        "content_hash": record.content_hash,
        "chart": {"name": chart_name, "hash": chart_hash},
        "image": {
            "width": record.frame.width,
            "height": record.frame.height,
            "orientation": record.frame.orientation,
            "camera_make": record.camera.make,
            "camera_model": record.camera.model,
            "captured_at": _clean(record.camera.captured_at),
            "format": record.format,
            "source_kind": str(record.source_kind),
            # (said only when so: a frame the photographer turned while culling, developed in that turn)
            **({"turned_by_xmp": True} if record.frame.turned_by_xmp else {}),
        },
        "camera_raw": {
            "as_shot_temperature_k": cr.as_shot_temperature_k,
            "as_shot_tint": cr.as_shot_tint,
            "wb_source": cr.wb_source,
            "baseline_exposure_ev": cr.baseline_exposure_ev,
            "default_crop": list(crop) if None not in crop else None,
        },
        "measurements": {k: _clean(record.column(k)) for k in MEASUREMENT_FIELDS},
        "faces": [
            {"face_index": i, "box": [f.x, f.y, f.width, f.height], "score": f.score,
             "exposure_ev": f.exposure_ev, "sharpness": f.sharpness, "too_small": f.too_small,
             "clipped_pct": f.clipped_pct}
            for i, f in enumerate(record.faces)
        ],
        "scene_id": record.plan.scene_id,
        "verdict": str(record.plan.verdict) if record.plan.verdict else None,
        "faces_to_brighten": record.plan.faces_to_brighten or 0,
        "summary": reviewed_summary(record.operations),
        "operations": [operation_doc(op) for op in record.operations],
        "renditions": [{"name": n, "crop": c} for n, c in renditions or []],
        "exports": [asdict(e) for e in record.exports],
        "review": review,
        "xmp": target.packet,
        "xmp_form": str(target.form),
        "xmp_copy": target.copy,
        "xmp_note": target.note,
    }
    doc["framings"] = framings(doc)
    return doc


def instruction_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of ``instructions.parquet`` for one document."""
    rows = []
    for op in doc["operations"]:
        review = op.get("review") or {}
        rows.append({
            "source_path": doc["source_path"],
            "op_id": op["op_id"],
            "kind": op["kind"],
            "params_json": json.dumps(op["params"], sort_keys=True),
            "reason": op["reason"],
            "measured": op["measured"],
            "target": op["target"],
            "confidence": op["confidence"],
            "applied_by": op["applied_by"],
            "review_status": review.get("status") or REVIEW_PENDING,
            "reviewed_by": review.get("by"),
            "reviewed_at": review.get("at"),
            "comment": review.get("comment"),
        })
    return rows
