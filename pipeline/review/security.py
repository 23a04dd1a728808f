"""The review app's guard, run before every request (pages, API, previews, files, static files).

Without a token the app serves loopback only and accepts only requests
addressed to a loopback host name (or one given with ``--allow-host``), so a
web page cannot reach it through DNS rebinding. With a token every request
must carry it: ``Authorization: Bearer TOKEN``, or the cookie that opening
any page with ``?token=TOKEN`` sets. A change (any method but GET and HEAD)
must be JSON from the app's own origin, which a cross-site form cannot send.
Every response carries headers that keep the pages out of frames and stop
scripts from elsewhere.
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, redirect, request

from pipeline.review.context import ReviewSettings, review_context
from pipeline.review.errors import json_error

TOKEN_COOKIE = "postprod_review_token"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self';"
        " frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

guard = Blueprint("guard", __name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only reaches this machine."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_token(token: str) -> Response | None:
    given = request.args.get("token")
    if given is not None and request.method == "GET":
        if not hmac.compare_digest(given.encode(), token.encode()):
            return json_error(401, "wrong access token")
        # Keep the token out of history and Referer: set the cookie, drop the query.
        args = {k: v for k, v in request.args.items(multi=True) if k != "token"}
        resp = redirect(request.path + ("?" + urlencode(args) if args else ""), code=303)
        resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/")
        return resp
    auth = request.headers.get("Authorization", "")
    bearer = auth[7:] if auth.startswith("Bearer ") else None
    presented = bearer or request.cookies.get(TOKEN_COOKIE) or ""
    if not hmac.compare_digest(presented.encode(), token.encode()):
        return json_error(401, "access token required: open the address printed by `postprod review`")
    return None


def _check_host(settings: ReviewSettings) -> Response | None:
    hostname = urlsplit("//" + request.host).hostname or ""
    if not is_loopback(hostname) and hostname not in settings.allowed_hosts:
        return json_error(421, f"requests to host {hostname!r} are refused (serving loopback only)")
    return None


def _check_change() -> Response | None:
    if request.method in ("GET", "HEAD"):
        return None
    if not request.is_json:
        return json_error(415, "changes must be sent as application/json")
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        return json_error(403, "cross-origin change refused")
    return None


@guard.before_app_request
def check_request() -> Response | None:
    """Refuse a request without the token, to a foreign host name, or a cross-site change."""
    settings = review_context().settings
    refused = _check_token(settings.token) if settings.token else _check_host(settings)
    return refused or _check_change()


@guard.after_app_request
def add_security_headers(resp: Response) -> Response:
    resp.headers.update(SECURITY_HEADERS)
    return resp
