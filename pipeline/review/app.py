"""The review web app (Flask): gallery, per-image view, JSON API, previews.

Security model: by default the app listens on the loopback interface only
and accepts only requests addressed to a loopback host name (a web page
cannot reach it through DNS rebinding). A change must be a JSON request from
the app's own origin (a cross-site form cannot post one). Listening on any
other address needs an access token, and then every request (pages, API,
images, static files) must carry it: ``Authorization: Bearer TOKEN``, or the
cookie that opening any page with ``?token=TOKEN`` sets. Files are served
only from inside the output folder; sources only through the preview
endpoint, looked up by the manifest's ``source_path``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, send_file
from werkzeug.exceptions import HTTPException

from pipeline.kernel.errors import InputError
from pipeline.outputs.instructions import instruction_name
from pipeline.review.preview import PreviewCache, tonal_operations
from pipeline.review.store import (
    DB_NAME,
    Conflict,
    NotFound,
    ReviewError,
    ReviewStore,
    clean_reviewer,
    default_reviewer,
    parse_change,
)  # fmt: skip

TOKEN_COOKIE = "postprod_review_token"
MAX_REQUEST_BYTES = 1 << 20
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# Never served from the output folder: the review database and the run's state.
PRIVATE_NAMES = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", ".postprod")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only reaches this machine."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def image_badges(doc: dict[str, Any] | None) -> dict[str, Any]:
    """What the gallery shows on a tile."""
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
    ops = [(o["kind"], o["params"]) for o in tonal_operations(doc)]
    return hashlib.sha256(json.dumps(ops, sort_keys=True).encode()).hexdigest()[:12]


def create_app(out_dir: Path, *, shoot_dir: Path | None = None, token: str | None = None,
               reviewer: str | None = None, allowed_hosts: tuple[str, ...] = ()) -> Flask:
    """The review app for one output folder.

    Parameters
    ----------
    out_dir : Path
        A ``postprod process`` output folder.
    shoot_dir : Path, optional
        The sources, when the shoot moved since processing.
    token : str, optional
        Access token; when set, every request must carry it.
    reviewer : str, optional
        Name recorded with a change when the browser sends none (default: the OS user).
    allowed_hosts : tuple of str
        Host names (besides loopback ones) requests may be addressed to when
        there is no token; with a token any host name is accepted.

    Raises
    ------
    FileNotFoundError
        If ``out_dir`` is not an output folder or the shoot folder is missing.
    """
    here = Path(__file__).parent
    app = Flask(__name__, static_folder=str(here / "static"), template_folder=str(here / "templates"))
    app.json.sort_keys = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES  # a review change is a few hundred bytes
    store = ReviewStore(out_dir, shoot_dir)
    previews = PreviewCache(store.out_dir)
    default_name = reviewer or default_reviewer()
    app.extensions["postprod_review"] = store

    @app.before_request
    def guard() -> Response | None:
        if token:
            given = request.args.get("token")
            if given is not None and request.method == "GET":
                if not hmac.compare_digest(given.encode(), token.encode()):
                    return _error(401, "wrong access token")
                # Keep the token out of history and Referer: set the cookie, drop the query.
                args = {k: v for k, v in request.args.items(multi=True) if k != "token"}
                resp = redirect(request.path + ("?" + urlencode(args) if args else ""), code=303)
                resp.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/")
                return resp
            auth = request.headers.get("Authorization", "")
            bearer = auth[7:] if auth.startswith("Bearer ") else None
            presented = bearer or request.cookies.get(TOKEN_COOKIE) or ""
            if not hmac.compare_digest(presented.encode(), token.encode()):
                return _error(401, "access token required: open the address printed by `postprod review`")
        else:
            hostname = urlsplit("//" + request.host).hostname or ""
            if not is_loopback(hostname) and hostname not in allowed_hosts:
                return _error(421, f"requests to host {hostname!r} are refused (serving loopback only)")
        if request.method not in ("GET", "HEAD"):
            if not request.is_json:
                return _error(415, "changes must be sent as application/json")
            origin = request.headers.get("Origin")
            if origin and urlsplit(origin).netloc != request.host:
                return _error(403, "cross-origin change refused")
        return None

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self';"
            " frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
        )
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        return resp

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if exc.code == 413:
            return _error(413, f"request body over {MAX_REQUEST_BYTES // 1024} KB refused")
        if request.path.startswith("/api/"):
            return _error(exc.code or 500, exc.description or exc.name)
        return exc  # type: ignore[return-value]

    @app.errorhandler(sqlite3.OperationalError)
    def database_busy(exc: sqlite3.OperationalError) -> Response:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise exc
        resp = _error(503, f"the review database ({DB_NAME}) is locked by another program or review; "
                           "nothing was changed: try again in a moment")
        resp.headers["Retry-After"] = "5"
        return resp

    # --- pages ------------------------------------------------------------------

    @app.get("/")
    def gallery() -> str:
        return render_template("gallery.html", shoot=store.shoot_name, chart=store.chart_name,
                               reviewer=default_name)

    @app.get("/image/<path:source_path>")
    def image_page(source_path: str) -> str:
        try:
            store.planned(source_path)
        except NotFound:
            abort(404)
        return render_template("image.html", shoot=store.shoot_name, source_path=source_path,
                               reviewer=default_name)

    # --- API --------------------------------------------------------------------

    def _summary(entry: Any, doc: dict[str, Any] | None, version: int) -> dict[str, Any]:
        q = quote(entry.source_path)
        item: dict[str, Any] = {
            "source_path": entry.source_path,
            "status": entry.status,
            "error": entry.error,
            "version": version,
            "url": f"/image/{q}" if doc is not None else None,
            "thumb": f"/preview/thumb/{q}" if doc is not None else None,
        }
        if doc is not None:
            item.update({
                "verdict": doc["verdict"],
                "faces_to_brighten": sum(o["kind"] == "brighten_face" for o in doc["operations"]
                                         if o["review"]["status"] != "rejected"),
                "flagged": doc["verdict"] == "flag",
                "rejected": doc["verdict"] == "reject",
                "summary": doc["summary"],
                "operations": len(doc["operations"]),
                **image_badges(doc),
            })
        return item

    @app.get("/api/images")
    def list_images() -> Response:
        verdict = request.args.get("verdict") or None
        faces = request.args.get("faces") in ("1", "true", "yes")
        state = request.args.get("review") or None
        items = []
        for entry, doc, version in store.documents():
            item = _summary(entry, doc, version)
            if verdict and item.get("verdict", "failed" if entry.status == "failed" else None) != verdict:
                continue
            if faces and not item.get("faces_to_brighten"):
                continue
            if state and item.get("review_state") != state:
                continue
            items.append(item)
        return jsonify({"shoot": store.shoot_name, "chart": store.chart_name, "images": items})

    def _image_payload(source_path: str, doc: dict[str, Any], version: int) -> dict[str, Any]:
        entry = store.planned(source_path)
        q = quote(source_path)
        order = [sp for sp in sorted(store.entries) if store.entries[sp].doc_path is not None]
        i = order.index(source_path)
        return {
            "source_path": source_path,
            "version": version,
            "doc": doc,
            "previews": {
                "before": f"/preview/before/{q}",
                "after": f"/preview/after/{q}?k={after_key(doc)}",
                "clip": f"/preview/clip/{q}",
            },
            "files": {"instructions": f"/files/instructions/{quote(instruction_name(source_path))}",
                      "xmp": f"/files/{quote(doc['xmp'])}"},
            "prev": order[i - 1] if i > 0 else None,
            "next": order[i + 1] if i + 1 < len(order) else None,
            "source_kind": entry.source_kind,
        }

    @app.get("/api/images/<path:source_path>")
    def get_image(source_path: str) -> Response:
        try:
            doc, version = store.get(source_path)
        except NotFound:
            return _error(404, f"no planned image {source_path!r}")
        return jsonify(_image_payload(source_path, doc, version))

    @app.post("/api/images/<path:source_path>")
    def change_image(source_path: str) -> Response:
        """Body: ``{"version": N, "reviewer": "...", "changes": [{"op_id", "status"?, "ev"?, "box"?, "comment"?}]}``
        or ``{"version": N, "all": {"status": ...}}`` for every operation still pending (or, for
        ``done``, every one not rejected)."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object")
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            return _error(400, "version (the one the view was made from) is required")
        try:
            name = clean_reviewer(body.get("reviewer"), default_name)
            if "all" in body:
                status = body["all"].get("status") if isinstance(body["all"], dict) else None
                if status not in ("accepted", "rejected", "done", "pending"):
                    return _error(422, "all.status must be accepted, rejected, done or pending")
                doc, _ = store.get(source_path)
                wanted = [o["op_id"] for o in doc["operations"]
                          if (o["review"]["status"] == "pending" if status != "done"
                              else o["review"]["status"] != "rejected")]
                changes = [parse_change({"op_id": op_id, "status": status}) for op_id in wanted]
            else:
                raw = body.get("changes")
                if not isinstance(raw, list) or not raw:
                    return _error(400, "changes must be a non-empty list")
                changes = [parse_change(c) for c in raw]
            doc, version = store.update(source_path, version, changes, name)
        except NotFound:
            return _error(404, f"no planned image {source_path!r}")
        except Conflict as exc:
            resp = jsonify({"error": str(exc), **_image_payload(source_path, exc.doc, exc.version)})
            resp.status_code = 409
            return resp
        except ReviewError as exc:
            return _error(422, str(exc))
        return jsonify(_image_payload(source_path, doc, version))

    @app.get("/api/history/<path:source_path>")
    def history(source_path: str) -> Response:
        try:
            return jsonify({"source_path": source_path, "history": store.history(source_path)})
        except NotFound:
            return _error(404, f"no image {source_path!r}")

    # --- files ------------------------------------------------------------------

    @app.get("/preview/<variant>/<path:source_path>")
    def preview(variant: str, source_path: str) -> Response:
        if variant not in ("before", "after", "thumb", "clip"):
            abort(404)
        try:
            entry = store.planned(source_path)
            doc, _ = store.get(source_path) if variant == "after" else (None, 0)
        except NotFound:
            abort(404)
        name = f"{instruction_name(source_path)[:-5]}.{entry.content_hash[:12]}"
        try:
            path = previews.get(
                name, store.source_file(source_path), entry.source_kind, variant,
                operations=tonal_operations(doc) if doc else None,
                width=doc["image"]["width"] if doc else None,
                after_key=after_key(doc) if doc else "",
            )
        except (InputError, OSError) as exc:
            return _error(422, f"cannot make a preview of {source_path}: {exc}")
        resp = send_file(path, mimetype="image/png" if variant == "clip" else "image/jpeg", max_age=0)
        resp.headers["Cache-Control"] = "no-cache" if variant != "after" else "private, max-age=3600"
        return resp

    @app.get("/files/<path:rel>")
    def files(rel: str) -> Response:
        root = store.out_dir
        parts = Path(rel).parts
        if not parts or Path(rel).is_absolute() or ".." in parts or parts[0] in PRIVATE_NAMES:
            abort(404)
        path = (root / rel).resolve()  # symlinks resolved: one that leads out is refused
        if root not in path.parents or not path.is_file():
            abort(404)
        if path.relative_to(root).parts[0] in PRIVATE_NAMES:  # nor one that leads to the database or state
            abort(404)
        return send_file(path, max_age=0)

    return app


def _error(code: int, message: str) -> Response:
    resp = jsonify({"error": message})
    resp.status_code = code
    return resp


def serve(app: Flask, host: str, port: int) -> Any:
    """A threaded WSGI server for ``app`` (call ``serve_forever()``; ``server_port`` is the bound port)."""
    from werkzeug.serving import make_server

    return make_server(host, port, app, threaded=True)
