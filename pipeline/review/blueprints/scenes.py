"""Scenes in the review app: which frames go together, and decisions for a whole scene.

``GET /api/scenes``: every scene and its frames, and each frame's scene.
``POST /api/scenes/<id>``: one decision for every frame of a scene, all or none
(:mod:`pipeline.review.scenes`), with a body of one of:

- ``{"action": "decide", "status": "accepted"}`` (rejected, done, pending);
- ``{"action": "exposure", "ev": 0.3}`` (every frame at +0.3 EV) or ``{"ev_delta": 0.3}``
  (every frame a third of a stop brighter than it is);
- ``{"action": "white_balance"}`` (every frame at the scene's median white) or
  ``{"action": "white_balance", "reference": "IMG_0003.dng"}`` (at that frame's).

``POST /api/scenes/propagate``: ``{"from": "IMG_0003.dng", "version": 4}``: what a reviewer
did to that frame's exposure and white balance, done to the rest of its scene.

Each answers ``{"scene_id", "frames", "changed": {source_path: new version}, "skipped": {source_path: why}}``.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, jsonify, request

from pipeline.review.context import review_context
from pipeline.review.errors import API_PREFIX, json_error
from pipeline.review.payloads import image_payload
from pipeline.review.scenes import decide_scene, propagate, scenes, set_scene_exposure, sync_scene_white_balance
from pipeline.review.store import Conflict, NotFound, ReviewError, clean_reviewer

scenes_api = Blueprint("scenes", __name__, url_prefix=API_PREFIX + "/scenes")

ACTIONS = ("decide", "exposure", "white_balance")


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReviewError(f"{name} must be a number")
    return float(value)


@scenes_api.get("")
def list_scenes() -> Response:
    found = scenes(review_context().store)
    return jsonify({
        "scenes": [{"scene_id": sid, "frames": frames} for sid, frames in sorted(found.items())],
        "by_path": {sp: sid for sid, frames in found.items() for sp in frames},
    })


@scenes_api.post("/<int:scene_id>")
def change_scene(scene_id: int) -> Response:
    context = review_context()
    body: Any = request.get_json(silent=True)
    if not isinstance(body, dict):
        return json_error(400, "body must be a JSON object")
    action = body.get("action")
    if action not in ACTIONS:
        return json_error(422, f"action must be one of {', '.join(ACTIONS)}")
    try:
        reviewer = clean_reviewer(body.get("reviewer"), context.settings.reviewer)
        if action == "decide":
            result = decide_scene(context.store, scene_id, str(body.get("status")), reviewer)
        elif action == "exposure":
            result = set_scene_exposure(context.store, scene_id, reviewer, ev=_number(body, "ev"),
                                        ev_delta=_number(body, "ev_delta"))
        else:
            reference = body.get("reference")
            if reference is not None and not isinstance(reference, str):
                return json_error(422, "reference must be a frame's source path")
            result = sync_scene_white_balance(context.store, scene_id, reviewer, reference)
    except NotFound:
        return json_error(404, f"no scene {scene_id}")
    return jsonify(result.to_json())


@scenes_api.post("/propagate")
def propagate_edit() -> Response:
    context = review_context()
    body: Any = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("from"), str):
        return json_error(400, "body must be a JSON object naming the frame: {\"from\": source_path}")
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        return json_error(400, "version must be an integer")
    source = body["from"]
    try:
        reviewer = clean_reviewer(body.get("reviewer"), context.settings.reviewer)
        result = propagate(context.store, source, reviewer, version)
    except NotFound:
        return json_error(404, f"no planned image {source!r}")
    except Conflict as exc:
        resp = jsonify({"error": str(exc), **image_payload(context.store, source, exc.doc, exc.version)})
        resp.status_code = 409
        return resp
    return jsonify(result.to_json())
