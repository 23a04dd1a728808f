"""Error responses: JSON ``{"error": message}`` under ``/api/``, Flask's HTML pages elsewhere."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

API_PREFIX = "/api"

errors = Blueprint("errors", __name__)


def json_error(code: int, message: str) -> Response:
    """A JSON error response the browser's script shows as it is."""
    resp = jsonify({"error": message})
    resp.status_code = code
    return resp


@errors.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response | HTTPException:
    # By path, not by blueprint: a URL that matches no route (404) or no method
    # (405) under /api/ has no blueprint, and the script still reads JSON from it.
    if request.path.startswith(API_PREFIX + "/"):
        return json_error(exc.code or 500, exc.description or exc.name)
    return exc
