"""Retouch instructions as people and tools read them.

Per image: ``instructions/<name>.json`` (validated by
``pipeline/instructions.schema.json``) and an XMP sidecar with Adobe Camera
Raw settings (``xmp/<source dir>/<stem>.xmp``) so a retoucher opening the RAW
with its sidecar in Lightroom or Camera Raw finds the plan applied. Per shoot:
``instructions.parquet`` (one row per operation).

The shoot's sources are never written to: sidecars go into the output folder,
mirroring the shoot's folders, to be copied beside the RAW files.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any
from xml.sax.saxutils import quoteattr

import pyarrow as pa

from pipeline import __version__
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind, SourceKind

INSTRUCTIONS_FORMAT = "postprod.instructions/1"
SCHEMA_PATH = Path(__file__).with_name("instructions.schema.json")
REVIEW_PENDING = "pending"

# The measurements a retoucher sees next to the plan.
MEASUREMENT_FIELDS = (
    "exposure_ev", "exposure_verdict", "exposure_target", "luminance_p50", "clipped_highlights_pct",
    "clipped_shadows_pct_r", "clipped_shadows_pct_g", "clipped_shadows_pct_b", "wb_cast_a", "wb_cast_b",
    "wb_temperature_shift_k", "sharpness", "noise_sigma", "horizon_tilt_deg", "verticals_tilt_deg",
    "lines_found", "phash",
)  # fmt: skip


def _f(name: str, t: pa.DataType, description: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, t, nullable=nullable, metadata={"description": description})


INSTRUCTIONS_SCHEMA = pa.schema(
    [
        _f("source_path", pa.string(), "Source file, relative to the shoot.", False),
        _f("op_id", pa.string(), "Operation id, stable within the image.", False),
        _f("kind", pa.string(), "exposure, white_balance, brighten_face, straighten, crop, flag or reject.", False),
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


def _hashed_name(readable: str, key: str, suffix: str, limit: int) -> str:
    """``<readable, cut>___<16 hex of SHA-256(key)><suffix>``, at most ``limit`` bytes."""
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
        return _hashed_name("__".join(parts), source_path, ".json", MAX_INSTRUCTION_NAME_BYTES)
    return plain


def xmp_relpath(record: ImageRecord) -> str:
    """Where the image's XMP sidecar goes, relative to the output folder.

    RAW files take ``<stem>.xmp`` (what Lightroom and Camera Raw look for);
    raster files ``<name>.<ext>.xmp`` so a RAW+JPEG pair doesn't share one.
    A name too long for the file system (over 255 bytes with the ``.xmp``)
    or holding a non-printable character is cut and given a hash of the
    source path, as :func:`instruction_name` does.
    """
    from charts.naming import MAX_COMPONENT_BYTES

    p = PurePosixPath(record.source_path)
    name = f"{p.stem}.xmp" if record.source_kind is SourceKind.RAW else f"{p.name}.xmp"
    if len(name.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES or not name.isprintable():
        name = _hashed_name(name[:-4], record.source_path, ".xmp", MAX_COMPONENT_BYTES)
    return str(PurePosixPath("xmp") / p.parent / name)


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


def summary_line(record: ImageRecord) -> str:
    """One line a production director reads: "3 faces to brighten; straighten +1.2 deg; crop 4:5"."""
    ops = record.operations
    parts = []
    n = record.faces_to_brighten or 0
    if n:
        by_hand = sum(o.kind is OperationKind.BRIGHTEN_FACE and o.applied_by is AppliedBy.RETOUCHER for o in ops)
        parts.append(f"{n} face{'s' if n > 1 else ''} to brighten" + (f" ({by_hand} by hand)" if by_hand else ""))
    for o in ops:
        if o.kind is OperationKind.EXPOSURE:
            parts.append(f"exposure {o.params['ev']:+.2f} EV")
        elif o.kind is OperationKind.WHITE_BALANCE:
            parts.append(f"white balance {o.params['temperature_shift_k']:+.0f} K")
        elif o.kind is OperationKind.STRAIGHTEN:
            parts.append(f"straighten {o.params['angle_deg']:+.1f} deg")
    crops = [o.params["aspect"] for o in ops if o.kind is OperationKind.CROP]
    if crops:
        parts.append("crop " + ", ".join(crops))
    for o in ops:
        if o.kind in (OperationKind.FLAG, OperationKind.REJECT):
            parts.append(f"{o.kind}: {o.params['check']}")
    return "; ".join(parts) or "nothing to do"


def instruction_doc(record: ImageRecord, chart_name: str, chart_hash: str) -> dict[str, Any]:
    """The JSON document of one image's instructions (see the JSON Schema)."""
    return {
        "format": INSTRUCTIONS_FORMAT,
        "postprod_version": __version__,
        "source_path": record.source_path,
        "content_hash": record.content_hash,
        "chart": {"name": chart_name, "hash": chart_hash},
        "image": {
            "width": record.width,
            "height": record.height,
            "orientation": record.orientation,
            "camera_make": record.camera_make,
            "camera_model": record.camera_model,
            "captured_at": _clean(record.captured_at),
        },
        "measurements": {k: _clean(getattr(record, k)) for k in MEASUREMENT_FIELDS},
        "faces": [
            {"face_index": i, "box": [f.x, f.y, f.width, f.height], "score": f.score,
             "exposure_ev": f.exposure_ev, "sharpness": f.sharpness, "too_small": f.too_small}
            for i, f in enumerate(record.faces)
        ],
        "verdict": str(record.verdict) if record.verdict else None,
        "faces_to_brighten": record.faces_to_brighten or 0,
        "summary": summary_line(record),
        "operations": [operation_doc(op) for op in record.operations],
        "exports": [asdict(e) for e in record.exports],
        "xmp": xmp_relpath(record),
    }


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


# --- XMP for Adobe Camera Raw ---------------------------------------------------

def _to_sensor(box: tuple[float, float, float, float], w: float, h: float, orientation: int) -> tuple[float, ...]:
    """Normalised (left, top, right, bottom) of an oriented-frame box in the stored (sensor) frame.

    Camera Raw keeps crops relative to the image as stored, before the EXIF
    orientation is applied.
    """
    x, y, bw, bh = box
    l, t, r, b = x / w, y / h, (x + bw) / w, (y + bh) / h
    if orientation == 3:  # 180
        return (1 - r, 1 - b, 1 - l, 1 - t)
    if orientation == 6:  # stored image is turned 90 CCW from the view
        return (t, 1 - r, b, 1 - l)
    if orientation == 8:  # stored image is turned 90 CW from the view
        return (1 - b, l, 1 - t, r)
    return (l, t, r, b)


def _fmt(v: float, nd: int = 2, sign: bool = False) -> str:
    v = v + 0.0  # no "-0.00"
    if round(v, nd) == 0:
        v = 0.0
    return f"{v:+.{nd}f}" if sign else f"{v:.{nd}f}"


def xmp_sidecar(doc: dict[str, Any], only_accepted: bool = False) -> str:
    """An XMP packet with Camera Raw settings for one image's plan.

    Exposure (``crs:Exposure2012``), white balance (``crs:IncrementalTemperature``
    and ``crs:IncrementalTint``, which Camera Raw applies to rendered files; for
    a RAW file postprod does not know Camera Raw's absolute as-shot temperature,
    so the retoucher sets it from the operation's reason), the first crop
    with the straightening angle (``crs:HasCrop``, ``crs:Crop*``), and one radial
    local correction (``crs:CircularGradientBasedCorrections``) per face to
    brighten. Operations a reviewer rejected are left out.
    """
    attrs: dict[str, str] = {
        "crs:Version": "15.0",
        "crs:ProcessVersion": "11.0",
        "crs:HasSettings": "True",
        "crs:AlreadyApplied": "False",
    }
    w = float(doc["image"]["width"] or 1)
    h = float(doc["image"]["height"] or 1)
    orientation = int(doc["image"]["orientation"] or 1)
    faces: list[dict[str, Any]] = []
    crop_done = False
    angle = 0.0
    ops = [o for o in doc["operations"] if (o.get("review") or {}).get("status") != "rejected"]
    if only_accepted:
        ops = [o for o in ops if (o.get("review") or {}).get("status") in ("accepted", "done")]
    for op in ops:
        p = op["params"]
        if op["kind"] == "straighten":
            angle = float(p["angle_deg"])
    for op in ops:
        kind, p = op["kind"], op["params"]
        if kind == "exposure":
            attrs["crs:Exposure2012"] = _fmt(float(p["ev"]), 2, sign=True)
        elif kind == "white_balance":
            attrs["crs:WhiteBalance"] = "Custom"
            attrs["crs:IncrementalTemperature"] = str(int(round(float(p["temperature_shift_k"]) / 50)))
            attrs["crs:IncrementalTint"] = str(int(round(float(p["tint_shift"]))))
        elif kind == "crop" and not crop_done:
            l, t, r, b = _to_sensor(tuple(p["box"]), w, h, orientation)
            attrs.update({
                "crs:HasCrop": "True", "crs:CropLeft": _fmt(l, 6), "crs:CropTop": _fmt(t, 6),
                "crs:CropRight": _fmt(r, 6), "crs:CropBottom": _fmt(b, 6),
                "crs:CropAngle": _fmt(-angle + 0.0, 2), "crs:CropConstrainToWarp": "0",
            })
            crop_done = True
        elif kind == "brighten_face":
            faces.append(p)
    if angle and not crop_done:
        attrs.update({"crs:HasCrop": "True", "crs:CropLeft": "0", "crs:CropTop": "0", "crs:CropRight": "1",
                      "crs:CropBottom": "1", "crs:CropAngle": _fmt(-angle, 2)})
    body = "\n".join(f"    {k}={quoteattr(v)}" for k, v in attrs.items())
    local = ""
    if faces:
        items = []
        for p in faces:
            l, t, r, b = _to_sensor(tuple(p["box"]), w, h, orientation)
            items.append(
                "      <rdf:li>\n"
                f"       <rdf:Description crs:What=\"Correction\" crs:CorrectionAmount=\"1.000000\""
                f" crs:CorrectionActive=\"true\" crs:LocalExposure2012=\"{float(p['ev']):+.6f}\""
                f" crs:CorrectionName=\"postprod face {int(p['face_index']) + 1}\">\n"
                "        <crs:CorrectionMasks>\n         <rdf:Seq>\n"
                f"          <rdf:li crs:What=\"Mask/CircularGradient\" crs:MaskValue=\"1.000000\""
                f" crs:Top=\"{t:.6f}\" crs:Left=\"{l:.6f}\" crs:Bottom=\"{b:.6f}\" crs:Right=\"{r:.6f}\""
                " crs:Angle=\"0\" crs:Midpoint=\"50\" crs:Roundness=\"0\" crs:Feather=\"60\""
                " crs:Flipped=\"true\" crs:Version=\"2\"/>\n"
                "         </rdf:Seq>\n        </crs:CorrectionMasks>\n       </rdf:Description>\n"
                "      </rdf:li>"
            )
        local = ("\n   <crs:CircularGradientBasedCorrections>\n    <rdf:Seq>\n" + "\n".join(items)
                 + "\n    </rdf:Seq>\n   </crs:CircularGradientBasedCorrections>\n  ")
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="postprod {__version__}">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"\n'
        f"{body}>{local}"
        "</rdf:Description>\n"
        " </rdf:RDF>\n</x:xmpmeta>\n"
        '<?xpacket end="w"?>\n'
    )
