"""The HTML pages: the gallery and one image. Both are shells that ``review.js`` fills from the API."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from pipeline.review.context import review_context
from pipeline.review.store import NotFound

pages = Blueprint("pages", __name__)


@pages.get("/")
def gallery() -> str:
    context = review_context()
    store = context.store
    return render_template("gallery.html", shoot=store.shoot_name, chart=store.chart_name,
                           reviewer=context.settings.reviewer)


@pages.get("/image/<path:source_path>")
def image_page(source_path: str) -> str:
    context = review_context()
    try:
        context.store.planned(source_path)
    except NotFound:
        abort(404)
    return render_template("image.html", shoot=context.store.shoot_name, source_path=source_path,
                           reviewer=context.settings.reviewer)
