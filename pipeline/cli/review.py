"""``postprod review OUT_DIR``: work through a shoot's instructions in a browser."""

from __future__ import annotations

from pathlib import Path

import click

MIN_TOKEN_CHARS = 16


class ReviewUsageError(click.ClickException):
    """A refused setting, shown without a traceback; exit code 2 like the other usage errors."""

    exit_code = 2


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address (127.0.0.1, ::1, localhost) "
                   "needs an access token.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--token", envvar="POSTPROD_REVIEW_TOKEN", default=None,
              help="Access token (also read from POSTPROD_REVIEW_TOKEN): every request must carry it, as "
                   "'Authorization: Bearer TOKEN' or through the cookie set by opening a page with ?token=TOKEN. "
                   f"At least {MIN_TOKEN_CHARS} characters.")
@click.option("--reviewer", default=None,
              help="Name recorded with each decision when the browser gives none [default: the OS user].")
@click.option("--shoot", "shoot_dir", default=None, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The shoot folder, when it moved since processing [default: the one in manifest.parquet].")
@click.option("--allow-host", "allowed_hosts", multiple=True,
              help="Extra host name the browser may use to reach a loopback server (e.g. behind an SSH tunnel "
                   "with another name); repeatable.")
def review(out_dir: Path, host: str, port: int, token: str | None, reviewer: str | None, shoot_dir: Path | None,
           allowed_hosts: tuple[str, ...]) -> None:
    """Review the instructions of an output folder in a browser.

    Serves a gallery of the shoot (corrected thumbnails, verdicts, faces to
    brighten, review progress, flags, stars and colour labels; P/X/U, 0-5 and
    6-9 cull the selection) and a view per image with its overlays (faces,
    crops, clipped highlights, straightening), the plan's instructions, before
    and after side by side, a 100% view and a filmstrip. Decisions (flags,
    stars, labels, accept, reject, done, changed amounts and crops, comments,
    and the faces and red eyes a reviewer marks: m blurs a face, n lifts one,
    e takes the red out of a pupil, each a box dragged over it) are written, with who and when, into the image's instructions JSON,
    instructions.parquet and the XMP sidecar; their history is kept in
    OUT_DIR/review.sqlite. Exports a decision made stale are re-rendered with
    the Re-render button (or `postprod render OUT_DIR`). Stop with Ctrl-C.
    """
    from pipeline.review.app import create_app, review_context, serve  # Flask only when reviewing
    from pipeline.review.security import is_loopback

    # A blank or short token (16 spaces passed the old length check) guards nothing: refuse it rather than
    # serve with it, or quietly serve without one.
    if token is not None and len("".join(token.split())) < MIN_TOKEN_CHARS:
        raise ReviewUsageError(
            f"--token must hold at least {MIN_TOKEN_CHARS} characters other than spaces; make one with: "
            "python -c \"import secrets; print(secrets.token_urlsafe())\"")
    if not is_loopback(host) and token is None:
        raise ReviewUsageError(
            f"refusing to listen on {host} without an access token: anyone who can reach it could change the "
            "instructions. Set --token or POSTPROD_REVIEW_TOKEN, or listen on 127.0.0.1 (the default).")
    try:
        app = create_app(out_dir, shoot_dir=shoot_dir, token=token, reviewer=reviewer, allowed_hosts=allowed_hosts,
                         warm=True)
    except FileNotFoundError as exc:
        raise ReviewUsageError(str(exc)) from None
    try:
        server = serve(app, host, port)
    except OSError as exc:
        raise ReviewUsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "HOSTNAME"
    url = f"http://{shown}:{server.server_port}/"
    click.echo(f"Reviewing {out_dir} as {review_context(app).store.shoot_name}")
    # As Jupyter does: the operator's own terminal shows the address with the token.
    click.echo(f"Open {url}" + (f"?token={token}" if token else ""))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
