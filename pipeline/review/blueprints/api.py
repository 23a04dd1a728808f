"""The JSON API: the shoot's images, one image, a change to its instructions, its history, a crop's deliveries.

A change carries the version the view was made from; the store refuses it
with 409 and the current state when someone else changed the image meanwhile.
"""

from __future__ import annotations

import json
import math
from typing import Any
from weakref import WeakKeyDictionary

from flask import Blueprint, Response, jsonify, request

from pipeline.review.context import review_context
from pipeline.review.culling import LABELS, Decision
from pipeline.review.errors import API_PREFIX, json_error
from pipeline.review.payloads import (
    box_deliveries,
    box_faces,
    framed_faces,
    image_payload,
    image_summary,
    turned_box,
)
from pipeline.review.store import (
    REVIEW_STATUSES,
    NotFound,
    StaleDecision,
    clean_reviewer,
    parse_change,
)  # fmt: skip

api = Blueprint("api", __name__, url_prefix=API_PREFIX)
# Gallery tiles per store and image: what made the tile, the tile, its JSON.
_TILES: WeakKeyDictionary[Any, dict[str, tuple[Any, dict[str, Any], str]]] = WeakKeyDictionary()


@api.get("/images")
def list_images() -> Response:
    """Query: ``verdict`` (accept, flag, reject, failed), ``faces=1``, ``review`` (a review state),
    ``flag`` (pick, reject, none), ``stars`` (at least N), ``label`` (a colour or none), ``stale=1``,
    ``proposed=1`` (a correction proposed to a person and not decided yet), ``check`` (flagged for that check:
    ``privacy``, ``white_balance``, ...). The answer's ``checks`` counts the frames of the whole shoot flagged
    for each check (whatever the filters)."""
    store = review_context().store
    verdict = request.args.get("verdict") or None
    faces = request.args.get("faces") in ("1", "true", "yes")
    state = request.args.get("review") or None
    flag = request.args.get("flag") or None
    label = request.args.get("label") or None
    stale_only = request.args.get("stale") in ("1", "true", "yes")
    proposed_only = request.args.get("proposed") in ("1", "true", "yes")
    check = request.args.get("check") or None
    try:
        min_stars = int(request.args.get("stars") or 0)
    except ValueError:
        return json_error(400, "stars must be a whole number")
    if flag not in (None, "pick", "reject", "none"):
        return json_error(400, "flag must be pick, reject or none")
    if label is not None and label != "none" and label not in LABELS:
        return json_error(400, f"label must be one of {', '.join(LABELS)} or none")
    documents = store.documents()
    culling = store.culling()
    texts = []
    checks: dict[str, int] = {}
    tiles = _TILES.setdefault(store, {})
    for entry, doc, version in documents:
        sp = entry.source_path
        stale = store.stale(sp, doc) if doc is not None else None
        mine = culling.get(sp)
        # A tile is made (and written as JSON) again only when its image changed: 2,000 of them in ~50 ms.
        key = (store.doc_sha(sp, doc) if doc is not None else None, version, entry.status, stale,
               tuple(mine.values()) if mine else None)
        hit = tiles.get(sp)
        if hit is not None and key[0] is not None and hit[0] == key:
            item, text = hit[1], hit[2]
        else:
            item = image_summary(entry, doc, version, mine, stale)
            text = json.dumps(item, separators=(",", ":"))
            tiles[sp] = (key, item, text)
        for name in item.get("checks", ()):
            checks[name] = checks.get(name, 0) + 1
        if verdict and item.get("verdict", "failed" if entry.status == "failed" else None) != verdict:
            continue
        if faces and not item.get("faces_to_brighten"):
            continue
        if state and item.get("review_state") != state:
            continue
        if flag and (item.get("flag") or "none") != flag:
            continue
        if min_stars and (item.get("stars") or 0) < min_stars:
            continue
        if label and (item.get("label") or "none") != label:
            continue
        if stale_only and not item.get("stale"):
            continue
        if proposed_only and not item.get("proposed"):
            continue
        if check and check not in item.get("checks", ()):
            continue
        texts.append(text)
    head = json.dumps({"shoot": store.shoot_name, "chart": store.chart_name, "checks": dict(sorted(checks.items()))})[:-1]
    return Response(head + ',"images":[' + ",".join(texts) + "]}", mimetype="application/json")


@api.get("/images/<path:source_path>")
def get_image(source_path: str) -> Response:
    store = review_context().store
    try:
        doc, version = store.get(source_path)
    except NotFound:
        return json_error(404, f"no planned image {source_path!r}")
    return jsonify(image_payload(store, source_path, doc, version))


@api.post("/images/<path:source_path>")
def change_image(source_path: str) -> Response:
    """Body: ``{"version": N, "reviewer": "...", "changes": [{"op_id", "status"?, "ev"?, "box"?, "comment"?,
    "temperature_shift_k"?, "tint_shift"?, "angle_deg"?, "rotate_deg"?}]}`` or ``{"version": N, "all":
    {"status": ...}}``: accepted/rejected for every pending automatic correction (never a flag or a
    retoucher's task), done for every operation not rejected. A change ``{"add": "blur_face", "box": [x, y, w,
    h]}`` blurs a region a reviewer drew (a face the detector missed; full-resolution pixels), kept across
    re-plans; ``{"op_id", "remove": true}`` takes such a drawn one away (the plan's own are rejected); ``box``
    on a blur draws it again. The answer carries ``undo``, a ``POST /api/decisions`` item that takes the change
    back."""
    context = review_context()
    store = context.store
    body: Any = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(400, "body must be a JSON object")
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        return json_error(400, "version (the one the view was made from) is required")
    try:
        name = clean_reviewer(body.get("reviewer"), context.settings.reviewer)
        if "all" in body:
            status = body["all"].get("status") if isinstance(body["all"], dict) else None
            if status not in REVIEW_STATUSES:
                return json_error(422, "all.status must be accepted, rejected, done or pending")
            decision = Decision(source_path, version, all_status=status)
        else:
            raw = body.get("changes")
            if not isinstance(raw, list) or not raw:
                return json_error(400, "changes must be a non-empty list")
            decision = Decision(source_path, version, changes=tuple(parse_change(c) for c in raw))
        (done,) = store.decide([decision], name)
        doc, version = done.doc, done.version
    except StaleDecision as exc:
        doc, current = exc.stale[source_path]
        resp = jsonify({"error": f"image changed since it was read (now version {current})",
                        **image_payload(store, source_path, doc, current)})
        resp.status_code = 409
        return resp
    except NotFound:
        return json_error(404, f"no planned image {source_path!r}")
    return jsonify({**image_payload(store, source_path, doc, version), "undo": done.undo})


@api.get("/history/<path:source_path>")
def history(source_path: str) -> Response:
    store = review_context().store
    try:
        return jsonify({"source_path": source_path, "history": store.history(source_path)})
    except NotFound:
        return json_error(404, f"no image {source_path!r}")


@api.get("/deliveries/<path:source_path>")
def deliveries(source_path: str) -> Response:
    """``?op=<crop op_id>&box=x,y,w,h``: what that crop's renditions would deliver from ``box`` (a crop being moved,
    resized or turned, before it is saved), by the renderer's own sizing (:func:`box_deliveries`), and the faces
    it would cut or leave out (:func:`box_faces`). With ``&turn=1``, of the box turned the other way round and
    placed as the plan places a crop (:func:`turned_box`), which the answer's ``box`` gives."""
    store = review_context().store
    try:
        doc, _ = store.get(source_path)
    except NotFound:
        return json_error(404, f"no planned image {source_path!r}")
    op_id = request.args.get("op", "")
    op = next((o for o in doc["operations"] if o["op_id"] == op_id and o["kind"] == "crop"), None)
    if op is None:
        return json_error(404, f"no crop {op_id!r} in {source_path}")
    try:
        box = [float(v) for v in request.args.get("box", "").split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or not all(math.isfinite(v) for v in box) or not (box[2] > 0 and box[3] > 0):
        return json_error(422, "box must be x,y,width,height (width and height above 0)")
    framed = framed_faces(doc)
    if request.args.get("turn") == "1":  # the box turned the other way round, placed as the plan places crops
        box = turned_box(op, box, framed)
    chart = store.run_chart()
    rows = box_deliveries(chart.chart, op["params"]["aspect"], box) if chart is not None else []
    faces = box_faces(doc, box, float(op["params"].get("angle_deg") or 0.0), framed)
    return jsonify({"op_id": op_id, "box": box, "deliveries": rows, "faces": faces})
