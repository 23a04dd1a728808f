"""Preview images: the source as shot, after the automatic correction, a thumbnail, clipped highlights, and the
"proposed" picture (the corrections with every pending proposal accepted: what an accept would deliver).

A thumbnail is the corrected picture: the one the render made
(``previews/<hash>.after.jpg``) while the image's decisions are those it was
rendered with, else one rendered now by the same path from the run's preview.

Sources are reached only through the manifest's ``source_path``, never a path
the client sends. The "after" URL carries a key of the operations applied
(:func:`~pipeline.review.payloads.after_key`), so the browser may keep it
for an hour: a changed amount is a new URL. A URL whose key is no longer the
image's (a tab that has not reloaded since another decided) is redirected to
the current one: the picture of the operations the image has now is never kept
under another set's name, where an undo would find it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, abort, redirect, request, send_file

from pipeline.kernel.errors import InputError
from pipeline.kernel.records import SourceKind
from pipeline.outputs.instructions import instruction_name
from pipeline.outputs.shoot import after_preview_name
from pipeline.review.context import review_context
from pipeline.review.errors import json_error
from pipeline.review.payloads import after_key, proposed_key
from pipeline.review.preview import bracket_frames, proposed_operations, tonal_operations
from pipeline.review.store import ImageEntry, NotFound

VARIANTS = ("before", "after", "proposed", "thumb", "clip")

previews = Blueprint("previews", __name__, url_prefix="/preview")


def moved_key(current: str) -> Response | None:
    """A redirect to this request's URL under the ``current`` key, when it asks for another (never cached); or
    None."""
    wanted = request.args.get("k")
    if wanted is None or wanted == current:
        return None
    resp = redirect(f"{request.path}?{urlencode({**request.args, 'k': current})}", code=307)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@previews.get("/<variant>/<path:source_path>")
def preview(variant: str, source_path: str) -> Response:
    if variant not in VARIANTS:
        abort(404)
    context = review_context()
    store = context.store
    try:
        entry = store.planned(source_path)
        # The file as it stands: a picture needs no version, and 50 thumbnails at once need no database.
        doc = store.peek(source_path) if variant in ("after", "proposed", "thumb") else None
    except NotFound:
        abort(404)
    if doc is not None and (moved := moved_key(proposed_key(doc) if variant == "proposed" else after_key(doc))):
        return moved
    if variant == "thumb" and doc is not None and doc.get("exports") and store.stale(source_path, doc) is False:
        # Nothing changed since the render: its own picture of the corrections is the thumbnail.
        rendered = store.out_dir / after_preview_name(entry.content_hash)
        if rendered.is_file():
            resp = send_file(rendered, mimetype="image/jpeg", max_age=0)
            resp.headers["Cache-Control"] = "private, max-age=3600"
            return resp
    run_preview = None
    if entry.preview_path and not entry.preview_path.startswith("/") and ".." not in entry.preview_path.split("/"):
        run_preview = store.out_dir / entry.preview_path
    operations = (None if not doc else proposed_operations(doc) if variant == "proposed" else tonal_operations(doc))
    try:  # a bracket's middle frame: the others merged in, as the export has them
        bracket = [(store.source_file(sp), offset) for sp, offset in bracket_frames(operations or [])]
    except NotFound:
        bracket = []  # (a frame no longer in the manifest: the middle frame alone)
    try:
        path = context.previews.get(
            cache_name(source_path, entry.content_hash, entry), store.source_file(source_path), entry.source_kind,
            variant, operations=operations, orientation=entry.orientation,
            width=doc["image"]["width"] if doc else None,
            height=doc["image"]["height"] if doc else None,
            after_key=(proposed_key(doc) if variant == "proposed" else after_key(doc)) if doc else "",
            run_preview=run_preview, bracket=bracket,
        )
    except (InputError, OSError) as exc:
        return json_error(422, f"cannot make a preview of {source_path}: {exc}")
    resp = send_file(path, mimetype="image/png" if variant == "clip" else "image/jpeg", max_age=0)
    # "after" and thumbnails are named by the operations' key: a changed decision is a new URL.
    resp.headers["Cache-Control"] = ("private, max-age=3600" if variant in ("after", "proposed", "thumb")
                                     else "no-cache")
    return resp


def cache_name(source_path: str, content_hash: str, entry: ImageEntry | None = None) -> str:
    """Stem of an image's cached pictures: its instruction name and content hash, and a RAW's turn when it has one
    (the photographer may turn it in its XMP between two runs: the same bytes, another picture)."""
    turn = entry.orientation if entry is not None and entry.source_kind == SourceKind.RAW.value else None
    return f"{instruction_name(source_path)[:-5]}.{content_hash[:12]}" + (f".o{turn}" if turn not in (None, 1) else "")
