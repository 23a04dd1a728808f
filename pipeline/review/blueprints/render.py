"""Closing the loop: re-render the images whose decisions changed, from the review app.

``GET /api/render``: the current run (or the last one) and how many images
are stale; ``POST /api/render``: start re-rendering them
(:mod:`pipeline.review.render_jobs`, the same run as `postprod render OUT`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from pipeline.review.context import review_context
from pipeline.review.errors import API_PREFIX, json_error
from pipeline.review.render_jobs import RenderBusy
from pipeline.review.store import ReviewError, clean_reviewer

render = Blueprint("render", __name__, url_prefix=API_PREFIX)


@render.get("/render")
def render_status() -> Response:
    context = review_context()
    status = context.jobs.status()
    if status.get("state") != "running":
        status["stale"] = len(context.store.stale_images())
    return jsonify(status)


@render.post("/render")
def start_render() -> Response:
    """Body: ``{"reviewer"?: str}``. 202 with the run's status; 409 while one runs."""
    context = review_context()
    body: Any = request.get_json(silent=True) or {}
    try:
        name = clean_reviewer(body.get("reviewer") if isinstance(body, dict) else None, context.settings.reviewer)
        status = context.jobs.start(name)
    except RenderBusy as exc:
        return json_error(409, str(exc))
    except (FileNotFoundError, ReviewError) as exc:
        return json_error(422, str(exc))
    resp = jsonify(status)
    resp.status_code = 202
    return resp
