"""The JSON API: the shoot's images, one image, a change to its instructions, its history.

A change carries the version the view was made from; the store refuses it
with 409 and the current state when someone else changed the image meanwhile.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from pipeline.review.context import review_context
from pipeline.review.errors import API_PREFIX, json_error
from pipeline.review.payloads import image_payload, image_summary
from pipeline.review.store import (
    REVIEW_STATUSES,
    Conflict,
    NotFound,
    OpChange,
    ReviewError,
    ReviewStore,
    clean_reviewer,
    parse_change,
)  # fmt: skip

api = Blueprint("api", __name__, url_prefix=API_PREFIX)


@api.get("/images")
def list_images() -> Response:
    """Query: ``verdict`` (accept, flag, reject, failed), ``faces=1``, ``review`` (a review state)."""
    store = review_context().store
    verdict = request.args.get("verdict") or None
    faces = request.args.get("faces") in ("1", "true", "yes")
    state = request.args.get("review") or None
    items = []
    for entry, doc, version in store.documents():
        item = image_summary(entry, doc, version)
        if verdict and item.get("verdict", "failed" if entry.status == "failed" else None) != verdict:
            continue
        if faces and not item.get("faces_to_brighten"):
            continue
        if state and item.get("review_state") != state:
            continue
        items.append(item)
    return jsonify({"shoot": store.shoot_name, "chart": store.chart_name, "images": items})


@api.get("/images/<path:source_path>")
def get_image(source_path: str) -> Response:
    store = review_context().store
    try:
        doc, version = store.get(source_path)
    except NotFound:
        return json_error(404, f"no planned image {source_path!r}")
    return jsonify(image_payload(store, source_path, doc, version))


def _changes_for_all(store: ReviewStore, source_path: str, status: str) -> list[OpChange]:
    """``status`` for every operation still pending, or, for ``done``, every one not rejected."""
    doc, _ = store.get(source_path)
    wanted = [o["op_id"] for o in doc["operations"]
              if (o["review"]["status"] == "pending" if status != "done"
                  else o["review"]["status"] != "rejected")]
    return [parse_change({"op_id": op_id, "status": status}) for op_id in wanted]


@api.post("/images/<path:source_path>")
def change_image(source_path: str) -> Response:
    """Body: ``{"version": N, "reviewer": "...", "changes": [{"op_id", "status"?, "ev"?, "box"?, "comment"?}]}``
    or ``{"version": N, "all": {"status": ...}}`` for every operation still pending (or, for
    ``done``, every one not rejected)."""
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
            changes = _changes_for_all(store, source_path, status)
        else:
            raw = body.get("changes")
            if not isinstance(raw, list) or not raw:
                return json_error(400, "changes must be a non-empty list")
            changes = [parse_change(c) for c in raw]
        doc, version = store.update(source_path, version, changes, name)
    except NotFound:
        return json_error(404, f"no planned image {source_path!r}")
    except Conflict as exc:
        resp = jsonify({"error": str(exc), **image_payload(store, source_path, exc.doc, exc.version)})
        resp.status_code = 409
        return resp
    except ReviewError as exc:
        return json_error(422, str(exc))
    return jsonify(image_payload(store, source_path, doc, version))


@api.get("/history/<path:source_path>")
def history(source_path: str) -> Response:
    store = review_context().store
    try:
        return jsonify({"source_path": source_path, "history": store.history(source_path)})
    except NotFound:
        return json_error(404, f"no image {source_path!r}")
