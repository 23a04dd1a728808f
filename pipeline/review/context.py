"""What every request of the review app shares: the store, the preview caches, the re-render runs, the settings.

One :class:`ReviewContext` is made by :func:`~pipeline.review.app.create_app`
and kept in ``app.extensions``; views reach it through :func:`review_context`
rather than through closures, so that a blueprint is a plain module that can be
read, tested and added on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask, current_app

from pipeline.review.preview import PreviewCache
from pipeline.review.render_jobs import RenderJobs
from pipeline.review.store import ReviewStore
from pipeline.review.tiles import FullResCache

EXTENSION = "postprod_review"


@dataclass(frozen=True)
class ReviewSettings:
    """How the app was started (``postprod review`` options)."""

    reviewer: str  # recorded with a change when the browser sends no name
    token: str | None = field(default=None, repr=False)  # kept out of logs and tracebacks
    allowed_hosts: tuple[str, ...] = ()  # host names besides loopback ones, when there is no token


@dataclass(frozen=True)
class ReviewContext:
    """The state one review app serves: one output folder."""

    store: ReviewStore
    previews: PreviewCache
    settings: ReviewSettings
    fullres: FullResCache = field(default=None)  # type: ignore[assignment]  # made by create_app
    jobs: RenderJobs = field(default=None)  # type: ignore[assignment]  # made by create_app


def review_context(app: Flask | None = None) -> ReviewContext:
    """The context of ``app`` (default: the app handling the current request)."""
    context: ReviewContext = (app or current_app).extensions[EXTENSION]
    return context
