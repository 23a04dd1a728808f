"""Preview images: the source as shot, after the automatic correction, a thumbnail, clipped highlights.

Sources are reached only through the manifest's ``source_path``, never a path
the client sends. The "after" URL carries a key of the operations applied
(:func:`~pipeline.review.payloads.after_key`), so the browser may keep it
for an hour: a changed amount is a new URL.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, send_file

from pipeline.kernel.errors import InputError
from pipeline.outputs.instructions import instruction_name
from pipeline.review.context import review_context
from pipeline.review.errors import json_error
from pipeline.review.payloads import after_key
from pipeline.review.preview import tonal_operations
from pipeline.review.store import NotFound

VARIANTS = ("before", "after", "thumb", "clip")

previews = Blueprint("previews", __name__, url_prefix="/preview")


@previews.get("/<variant>/<path:source_path>")
def preview(variant: str, source_path: str) -> Response:
    if variant not in VARIANTS:
        abort(404)
    context = review_context()
    store = context.store
    try:
        entry = store.planned(source_path)
        doc, _ = store.get(source_path) if variant == "after" else (None, 0)
    except NotFound:
        abort(404)
    name = f"{instruction_name(source_path)[:-5]}.{entry.content_hash[:12]}"
    try:
        path = context.previews.get(
            name, store.source_file(source_path), entry.source_kind, variant,
            operations=tonal_operations(doc) if doc else None,
            width=doc["image"]["width"] if doc else None,
            height=doc["image"]["height"] if doc else None,
            after_key=after_key(doc) if doc else "",
        )
    except (InputError, OSError) as exc:
        return json_error(422, f"cannot make a preview of {source_path}: {exc}")
    resp = send_file(path, mimetype="image/png" if variant == "clip" else "image/jpeg", max_age=0)
    resp.headers["Cache-Control"] = "no-cache" if variant != "after" else "private, max-age=3600"
    return resp
