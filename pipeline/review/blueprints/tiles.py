"""The 100% view: full-resolution tiles of an image, before or after the corrections (or with its pending
proposals accepted: ``proposed``).

``GET /tile/<variant>/<scale>/<col>/<row>/<source_path>?k=KEY``: one
:data:`~pipeline.review.tiles.TILE_PX` square tile at 1:``scale`` (1 = 100%),
rendered on demand by the export's path from the image's full-resolution
decode (:mod:`pipeline.review.tiles`). The URL carries the key of the
operations (:func:`~pipeline.review.payloads.after_key`), so the browser may
keep a tile: a changed amount is a new URL.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, abort

from pipeline.imaging.measure.metering import is_rendered
from pipeline.kernel.errors import InputError
from pipeline.kernel.records import SourceKind
from pipeline.review.blueprints.previews import cache_name, moved_key
from pipeline.review.context import review_context
from pipeline.review.payloads import proposed_key
from pipeline.review.errors import json_error
from pipeline.review.preview import (
    bracket_frames,
    develops,
    encode_jpeg,
    preview_adjustments,
    proposed_operations,
    tonal_operations,
)
from pipeline.review.store import NotFound
from pipeline.review.tiles import render_tile, tile_box

tiles = Blueprint("tiles", __name__, url_prefix="/tile")

TILE_QUALITY = 92


@tiles.get("/<variant>/<int:scale>/<int:col>/<int:row>/<path:source_path>")
def tile(variant: str, scale: int, col: int, row: int, source_path: str) -> Response:
    if variant not in ("before", "after", "proposed"):
        abort(404)
    context = review_context()
    store = context.store
    try:
        entry = store.planned(source_path)
        doc, _ = store.get(source_path)
    except NotFound:
        abort(404)
    if moved := moved_key(proposed_key(doc)):  # (the tiles' key: previews.py)
        return moved
    width, height = int(doc["image"]["width"]), int(doc["image"]["height"])
    try:
        tile_box(col, row, scale, width, height)
    except ValueError as exc:
        return json_error(404, str(exc))
    name, bracket = cache_name(source_path, entry.content_hash, entry), []
    operations = proposed_operations(doc) if variant == "proposed" else tonal_operations(doc)
    if variant != "before":  # a bracket's middle frame: the others merged in, as the export has them
        try:
            bracket = [(store.source_file(sp), offset) for sp, offset in bracket_frames(operations)]
        except NotFound:
            bracket = []  # (a frame no longer in the manifest: the middle frame alone)
        if bracket:
            name += ".merged-" + hashlib.sha256(repr(bracket).encode()).hexdigest()[:8]
    try:
        decoded = context.fullres.get(name, store.source_file(source_path), entry.source_kind, width, height,
                                      bracket, orientation=entry.orientation)
    except (InputError, OSError) as exc:
        return json_error(422, f"cannot decode {source_path} at full resolution: {exc}")
    develop_curve = develops(entry.source_kind, context.previews.develop_raw)
    adjustments = (preview_adjustments(operations, is_rendered(SourceKind(entry.source_kind)), develop_curve)
                   if variant != "before" else preview_adjustments([], develop_curve=develop_curve))
    pixels = render_tile(decoded, width, height, adjustments, col, row, scale)
    resp = Response(encode_jpeg(pixels, quality=TILE_QUALITY, full_chroma=True), mimetype="image/jpeg")
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp
