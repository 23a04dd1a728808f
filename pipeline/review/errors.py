"""Error responses: JSON ``{"error": message}`` under ``/api/``, Flask's HTML pages elsewhere.

These are JSON wherever they happen, since only the app's script sends
them: a request body over the app's ``MAX_CONTENT_LENGTH`` (413), a
review database another program or review holds locked (503, with
``Retry-After``; nothing was changed), a review paused by the run that is
writing the shoot (423), and a decision the store refuses (422: a value out
of range, a change the plan has no such operation for). Routes catch only
the errors whose answer depends on the route (404's wording, 409's payload).
"""

from __future__ import annotations

import sqlite3

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from pipeline.review.store import DB_NAME, Paused, ReviewError

API_PREFIX = "/api"

errors = Blueprint("errors", __name__)


def json_error(code: int, message: str) -> Response:
    """A JSON error response the browser's script shows as it is."""
    resp = jsonify({"error": message})
    resp.status_code = code
    return resp


@errors.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response | HTTPException:
    if exc.code == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        return json_error(413, f"request body over {limit // 1024} KB refused")
    # By path, not by blueprint: a URL that matches no route (404) or no method
    # (405) under /api/ has no blueprint, and the script still reads JSON from it.
    if request.path.startswith(API_PREFIX + "/"):
        return json_error(exc.code or 500, exc.description or exc.name)
    return exc


@errors.app_errorhandler(sqlite3.OperationalError)
def database_busy(exc: sqlite3.OperationalError) -> Response:
    if "locked" not in str(exc) and "busy" not in str(exc):
        raise exc  # any other database error is a bug: a 500 with its traceback in the log
    resp = json_error(503, f"the review database ({DB_NAME}) is locked by another program or review; "
                           "nothing was changed: try again in a moment")
    resp.headers["Retry-After"] = "5"
    return resp


@errors.app_errorhandler(Paused)
def review_paused(exc: Paused) -> Response:
    return json_error(423, str(exc))


@errors.app_errorhandler(ReviewError)
def decision_refused(exc: ReviewError) -> Response:
    return json_error(422, str(exc))
