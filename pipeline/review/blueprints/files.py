"""Files of the output folder (instructions JSON, XMP sidecars, reports), and nothing outside it."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, send_file

from pipeline.review.context import review_context
from pipeline.review.store import DB_NAME

# Never served: the review database and the run's state.
PRIVATE_NAMES = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", ".postprod")

files = Blueprint("files", __name__, url_prefix="/files")


@files.get("/<path:rel>")
def output_file(rel: str) -> Response:
    root = review_context().store.out_dir
    parts = Path(rel).parts
    if not parts or Path(rel).is_absolute() or ".." in parts or parts[0] in PRIVATE_NAMES:
        abort(404)
    path = (root / rel).resolve()  # symlinks resolved: one that leads out is refused
    if root not in path.parents or not path.is_file():
        abort(404)
    if path.relative_to(root).parts[0] in PRIVATE_NAMES:  # nor one that leads to the database or the state
        abort(404)
    return send_file(path, max_age=0)
