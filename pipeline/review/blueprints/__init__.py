"""The review app's features, one blueprint each, registered in one place.

A new feature (culling flags and stars, zoom tiles, side-by-side, re-render)
is a new module here with its own blueprint and URL prefix, added to
:data:`BLUEPRINTS`. A view reaches the store, the preview cache and the
settings through :func:`~pipeline.review.context.review_context`; JSON errors
come from :func:`~pipeline.review.errors.json_error`. The guard in
:mod:`~pipeline.review.security` covers every blueprint without being asked.
"""

from __future__ import annotations

from flask import Blueprint

from pipeline.review.blueprints.api import api
from pipeline.review.blueprints.decisions import decisions
from pipeline.review.blueprints.files import files
from pipeline.review.blueprints.pages import pages
from pipeline.review.blueprints.previews import previews
from pipeline.review.blueprints.render import render
from pipeline.review.blueprints.scenes import scenes_api
from pipeline.review.blueprints.tiles import tiles

BLUEPRINTS: tuple[Blueprint, ...] = (pages, api, decisions, previews, tiles, files, render, scenes_api)

__all__ = ["BLUEPRINTS"]
