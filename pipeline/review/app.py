"""The review web app (Flask): the factory that puts its blueprints together, and a server.

The app is one :class:`~pipeline.review.context.ReviewContext` (store,
preview cache, settings) in ``app.extensions`` and these blueprints:

- :mod:`~pipeline.review.security`: the guard before every request (token or
  loopback host, JSON changes from the app's own origin) and the security headers;
- :mod:`~pipeline.review.errors`: JSON errors under ``/api/``, a JSON 413 for a
  body over :data:`MAX_REQUEST_BYTES`, a JSON 503 while the review database is locked;
- :mod:`~pipeline.review.blueprints`: the features (pages, API, decisions across images,
  previews, 100% tiles, files, re-render).

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

import threading
from pathlib import Path
from typing import Any

from flask import Flask

from charts.schema import RawToneCurve
from pipeline.review.blueprints import BLUEPRINTS
from pipeline.review.context import EXTENSION, ReviewContext, ReviewSettings, review_context
from pipeline.review.errors import errors
from pipeline.review.preview import PreviewCache
from pipeline.review.render_jobs import RenderJobs
from pipeline.review.security import guard, is_loopback
from pipeline.review.store import ReviewStore, default_reviewer
from pipeline.review.tiles import FullResCache

HERE = Path(__file__).parent
#: Largest request body accepted (a review change is a few hundred bytes); larger ones get a JSON 413.
MAX_REQUEST_BYTES = 1 << 20


def create_app(out_dir: Path, *, shoot_dir: Path | None = None, token: str | None = None,
               reviewer: str | None = None, allowed_hosts: tuple[str, ...] = (), warm: bool = False) -> Flask:
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
    warm : bool
        Read every instruction file in a background thread now, so the first
        gallery does not wait for them (a 2,000-image shoot takes about a second).

    Raises
    ------
    FileNotFoundError
        If ``out_dir`` is not an output folder or the shoot folder is missing.
    """
    app = Flask(__name__, static_folder=str(HERE / "static"), template_folder=str(HERE / "templates"))
    app.json.sort_keys = False  # keys in the order the payloads build them
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    store = ReviewStore(out_dir, shoot_dir)
    settings = ReviewSettings(reviewer=reviewer or default_reviewer(), token=token,
                              allowed_hosts=tuple(allowed_hosts))
    chart = store.run_chart()  # RAWs previewed as the run developed them (its exposure.raw_tone_curve)
    develop_raw = chart is None or chart.chart.exposure.raw_tone_curve is RawToneCurve.CAMERA
    previews = PreviewCache(store.out_dir, develop_raw=develop_raw)
    app.extensions[EXTENSION] = ReviewContext(store=store, previews=previews, settings=settings,
                                              fullres=FullResCache(store.out_dir), jobs=RenderJobs(store))
    for blueprint in (guard, errors, *BLUEPRINTS):
        app.register_blueprint(blueprint)
    if warm:
        threading.Thread(target=store.warm, name="postprod-review-warm", daemon=True).start()
    return app


def serve(app: Flask, host: str, port: int) -> Any:
    """A threaded WSGI server for ``app`` (call ``serve_forever()``; ``server_port`` is the bound port).

    HTTP/1.1 with keep-alive: a gallery asks for dozens of thumbnails at once,
    and a new connection for each costs more than serving the file.
    """
    import socket

    from werkzeug.serving import WSGIRequestHandler, get_sockaddr, make_server, select_address_family

    class KeepAlive(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"

    # Bound here, so a port in use raises OSError to the caller: werkzeug's own bind prints its message and exits.
    family = select_address_family(host, port)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(get_sockaddr(host, port, family))
        sock.listen(128)
        server = make_server(host, port, app, threaded=True, request_handler=KeepAlive, fd=sock.fileno())
    server.server_port = server.socket.getsockname()[1]  # as socketserver's own bind sets it (port 0: the one given)
    return server


__all__ = ["MAX_REQUEST_BYTES", "create_app", "is_loopback", "review_context", "serve"]
