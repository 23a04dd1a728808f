"""The JSON the review app's script reads: a gallery tile, an image with its links.

Pure functions of the store's documents (no request, no Flask), so the shapes
can be read in one place and tested without a server. URLs are built here, as
the script uses them (``quote`` of the manifest's ``source_path``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from charts.schema import Rendition
from pipeline.imaging.geometry import within_upscale
from pipeline.imaging.perspective import frame_map
from pipeline.imaging.render import adjustments_from_operations, rendition_frame, rendition_size
from pipeline.outputs.instructions import instruction_name, operation_from_doc
from pipeline.planning.rules.crops import FRAMING_MIN_FACE_FRACTION, faces_a_box_cuts, place_keeping_faces
from pipeline.review.culling import culling_from_doc
from pipeline.review.preview import pending_proposals, proposed_operations, tonal_operations
from pipeline.review.store import ImageEntry, ReviewStore
from pipeline.review.tiles import TILE_PX


def crop_renditions(store: ReviewStore) -> dict[str, list[str]]:
    """The chart's renditions per crop aspect (``{"4:5": ["feed_portrait"]}``), to name each crop frame."""
    chart = store.run_chart()
    out: dict[str, list[str]] = {}
    if chart is not None:
        for name, r in chart.chart.renditions.items():
            if r.crop is not None:
                out.setdefault(r.crop, []).append(name)
    return out


def doc_adjustments(doc: dict[str, Any]) -> Any:
    """The renderer's share of a document's operations (:func:`~pipeline.imaging.render.adjustments_from_operations`:
    a reviewer's edits and rejections count), made once for an image's payload."""
    return adjustments_from_operations([operation_from_doc(o) for o in doc["operations"]])


def crop_frames(doc: dict[str, Any], adjustments: Any) -> dict[str, tuple[str, Any, float]]:
    """Each crop op's aspect, the frame the renderer cuts its renditions to
    (:func:`~pipeline.imaging.render.rendition_frame`) and the turn it is cut at: the crop's box, or, for a crop a
    reviewer rejected, the centred crop of its aspect the renderer falls back to (the client's format is still
    delivered)."""
    W, H = int(doc["image"]["width"]), int(doc["image"]["height"])
    out = {}
    for op in doc["operations"]:
        if op["kind"] == "crop":
            aspect = op["params"]["aspect"]
            frame = rendition_frame(Rendition(crop=aspect), adjustments, W, H)
            out[op["op_id"]] = (aspect, frame, adjustments.angle_deg + adjustments.crop_turns.get(aspect, 0.0))
    return out


def crop_deliveries(store: ReviewStore, frames: dict[str, tuple[str, Any, float]]) -> dict[str, list[dict[str, Any]]]:
    """What each crop's renditions deliver from its frame as the renderer cuts it (:func:`crop_frames`: a
    reviewer's move, resize, turn or rejection included): :func:`box_deliveries` per crop op_id. The plan's
    ``upscale`` flags are judged on the planned box; this is the box the exports will be made from."""
    chart = store.run_chart()
    if chart is None:
        return {}
    return {op_id: box_deliveries(chart.chart, aspect, frame) for op_id, (aspect, frame, _) in frames.items()}


def crop_faces(doc: dict[str, Any], frames: dict[str, tuple[str, Any, float]],
               adjustments: Any) -> dict[str, dict[str, Any]]:
    """What each crop does to the faces it frames, from its frame as the renderer cuts it (:func:`crop_frames`):
    :func:`box_faces` per crop op_id."""
    framed = framed_faces(doc, adjustments) if frames else None  # once: a lens's map takes tens of ms to make
    return {op_id: box_faces(doc, frame, angle, framed) for op_id, (_, frame, angle) in frames.items()}


def framed_faces(doc: dict[str, Any], adjustments: Any = None) -> tuple[dict[int, Any], float, float]:
    """The faces a crop frames (index -> box: at least 4 % of the short side wide), in the frame the renderer
    corrects a lens or a keystone in (``adjustments``: :func:`doc_adjustments`, made here when not given), where the
    crops lie; and that frame's width and height."""
    W, H = float(doc["image"]["width"]), float(doc["image"]["height"])
    short = min(W, H)
    faces = {int(f["face_index"]): tuple(float(v) for v in f["box"]) for f in doc.get("faces") or []
             if float(f["box"][2]) >= FRAMING_MIN_FACE_FRACTION * short}
    if faces:
        adjustments = adjustments if adjustments is not None else doc_adjustments(doc)
        corrected = frame_map(adjustments.lens, adjustments.keystone, int(W), int(H))
        if corrected is not None:
            faces = {i: corrected.corrected_box(b) for i, b in faces.items()}  # type: ignore[arg-type]
    return faces, W, H


def box_faces(doc: dict[str, Any], box: Sequence[float], angle_deg: float,
              framed: tuple[dict[int, Any], float, float] | None = None) -> dict[str, Any]:
    """The faces (numbered from 1, as the review shows them) a crop at ``box`` turned by ``angle_deg`` would cut
    or leave wholly out, judged as the plan judges its own crops
    (:func:`~pipeline.planning.rules.crops.faces_a_box_cuts`, on :func:`framed_faces`, or ``framed`` when read
    already), and how many it frames: a reviewer who moves, resizes or turns a crop sees a head it would cut
    before saving."""
    faces, W, H = framed if framed is not None else framed_faces(doc)
    frame = tuple(float(v) for v in box)
    judged = faces_a_box_cuts(frame, float(angle_deg), faces, W, H)  # type: ignore[arg-type]
    return {"cut": [i + 1 for i in judged.cut], "left_out": [i + 1 for i in judged.left_out], "framed": len(faces)}


def turned_box(op: dict[str, Any], box: Sequence[float], framed: tuple[dict[int, Any], float, float]) -> list[float]:
    """The crop ``op`` at ``box`` turned the other way round (a 4:5 box to 5:4), placed as the plan places a crop
    (:func:`~pipeline.planning.rules.crops.place_keeping_faces`, on the faces ``framed``: :func:`framed_faces`): the
    largest of the turned aspect at the crop's turn that cuts no face and keeps the most important, nearest the box's
    centre. The review's "Turn to" drafts it.
    """
    faces, W, H = framed
    x, y, w, h = (float(v) for v in box)
    angle = float(op["params"].get("angle_deg") or 0.0)
    placed = place_keeping_faces(W, H, h / w, angle, faces, focus=(x + w / 2, y + h / 2))  # type: ignore[arg-type]
    return [round(v, 1) for v in placed.box]


def box_deliveries(chart: Any, aspect: str, box: Sequence[float]) -> list[dict[str, Any]]:
    """What the renditions of the crop ``aspect`` would deliver from ``box`` (x, y, width, height), by the renderer's
    own rule (:func:`~pipeline.imaging.render.rendition_size`): each rendition's name, the size delivered, its
    pixels per crop pixel (``scale``), and for an exact box the size asked and whether it enlarges beyond the
    chart's ``max_upscale`` (``beyond``) and what the chart does then (``action``: delivered smaller, or as asked
    and flagged)."""
    frame = tuple(float(v) for v in box)
    rows: list[dict[str, Any]] = []
    if not (frame[2] > 0 and frame[3] > 0):
        return rows
    for name, r in chart.renditions.items():
        if r.crop != aspect:
            continue
        w, h = rendition_size(r, frame)
        asked = r.box_for(frame[2], frame[3])
        need = within_upscale(asked, frame[2], frame[3], r.max_upscale)[1] if asked is not None else None
        rows.append({"name": name, "width": w, "height": h, "scale": round(max(w / frame[2], h / frame[3]), 2),
                     "asked": list(asked) if asked is not None else None,
                     "beyond": need is not None and need > r.max_upscale + 1e-9,
                     "max_upscale": r.max_upscale, "action": str(r.beyond_max_upscale)})
    return rows


def image_badges(doc: dict[str, Any] | None) -> dict[str, Any]:
    """What the gallery shows on a tile: counts per review status and the image's review state."""
    if doc is None:
        return {}
    statuses = [(o.get("review") or {}).get("status", "pending") for o in doc["operations"]]
    counts = {s: statuses.count(s) for s in ("pending", "accepted", "rejected", "done")}
    if statuses and counts["pending"] == len(statuses):
        state = "pending"
    elif counts["pending"]:
        state = "in_progress"
    elif counts["done"] and counts["done"] + counts["rejected"] == len(statuses):
        state = "done"  # every instruction carried out or dismissed
    else:
        state = "reviewed"
    return {"counts": counts, "review_state": state}


def after_key(doc: dict[str, Any]) -> str:
    """Names the "after" preview of the operations the renderer would apply now."""
    return _key(tonal_operations(doc))


def proposed_key(doc: dict[str, Any]) -> str:
    """Names the "proposed" preview (:func:`~pipeline.review.preview.proposed_operations`); the same as
    :func:`after_key` when nothing is pending."""
    return _key(proposed_operations(doc))


def _key(operations: list[dict[str, Any]]) -> str:
    ops = [(o["kind"], o["params"]) for o in operations]
    return hashlib.sha256(json.dumps(ops, sort_keys=True).encode()).hexdigest()[:12]


def image_summary(entry: ImageEntry, doc: dict[str, Any] | None, version: int,
                  culling: dict[str, Any] | None = None, stale: bool | None = None) -> dict[str, Any]:
    """One gallery tile; an image without a plan (failed) has its status and error only.

    The thumbnail is the corrected picture (the "after" of the current
    decisions), named by :func:`after_key` so the browser may keep it.
    """
    q = quote(entry.source_path)
    item: dict[str, Any] = {
        "source_path": entry.source_path,
        "status": entry.status,
        "error": entry.error,
        "version": version,
        "url": f"/image/{q}" if doc is not None else None,
        "thumb": f"/preview/thumb/{q}?k={after_key(doc)}" if doc is not None else None,
    }
    if doc is not None:
        item.update(culling or culling_from_doc(doc))
        item["stale"] = stale
        item.update({
            "verdict": doc["verdict"],
            "faces_to_brighten": sum(o["kind"] == "brighten_face" for o in doc["operations"]
                                     if o["review"]["status"] != "rejected"),
            "flagged": doc["verdict"] == "flag",
            "rejected": doc["verdict"] == "reject",
            "summary": doc["summary"],
            "operations": len(doc["operations"]),
            # Corrections proposed to a person, the renderer's once accepted, not decided yet ("to confirm").
            "proposed": len(pending_proposals(doc)),
            "kinds": sorted({o["kind"] for o in doc["operations"]}),
            # What the frame is flagged for (a flag or reject's check, not turned down): the gallery's Check filter.
            "checks": sorted({str(o["params"]["check"]) for o in doc["operations"]
                              if o["kind"] in ("flag", "reject") and o["params"].get("check")
                              and o["review"]["status"] != "rejected"}),
            **image_badges(doc),
        })
    return item


def image_payload(store: ReviewStore, source_path: str, doc: dict[str, Any], version: int) -> dict[str, Any]:
    """One image as its page shows it: the document, its culling, previews, 100% tiles and files, its neighbours.

    Raises
    ------
    NotFound
        If ``source_path`` has no plan.
    """
    entry = store.planned(source_path)
    q = quote(source_path)
    order = [sp for sp in sorted(store.entries) if store.entries[sp].doc_path is not None]
    i = order.index(source_path)
    key, proposed = after_key(doc), proposed_key(doc)
    adjustments = doc_adjustments(doc)
    frames = crop_frames(doc, adjustments)
    return {
        "source_path": source_path,
        "version": version,
        "doc": doc,
        "culling": store.culling_of(source_path, doc),
        "stale": store.stale(source_path, doc),
        "renditions": crop_renditions(store),
        # What each crop's renditions deliver, and whom the crop cuts, from its frame as the renderer cuts it.
        "crop_frames": {op_id: {"box": [round(v, 1) for v in frame], "angle_deg": round(angle, 2)}
                        for op_id, (_, frame, angle) in frames.items()},
        "deliveries": crop_deliveries(store, frames),
        "crop_faces": crop_faces(doc, frames, adjustments),
        # The plan's values of what a reviewer changed, by op_id and parameter (taken back by "Plan's values").
        "planned": store.planned_values(source_path),
        "previews": {
            "before": f"/preview/before/{q}",
            "after": f"/preview/after/{q}?k={key}",
            # Every pending proposal accepted (None without one): what an accept would deliver.
            "proposed": f"/preview/proposed/{q}?k={proposed}" if pending_proposals(doc) else None,
            "clip": f"/preview/clip/{q}",
            "thumb": f"/preview/thumb/{q}?k={key}",
        },
        # Full-resolution tiles, rendered on demand: {variant} before/after, {scale} 1 = 100%, {col}/{row}.
        # (Keyed by the proposed operations, which hold the applied ones: a changed proposal is a new URL too.)
        "tiles": {"size": TILE_PX, "url": f"/tile/{{variant}}/{{scale}}/{{col}}/{{row}}/{q}?k={proposed}"},
        "files": {"instructions": f"/files/instructions/{quote(instruction_name(source_path))}",
                  "xmp": f"/files/{quote(doc['xmp'])}"},
        "prev": order[i - 1] if i > 0 else None,
        "next": order[i + 1] if i + 1 < len(order) else None,
        "source_kind": entry.source_kind,
    }
