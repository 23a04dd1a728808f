"""``postprod review``: a local web app in which retouchers work through the plan.

The instructions JSON of each image is the durable record of every decision
(``pipeline.run`` keeps reviews across re-plans); ``OUT/review.sqlite`` is the
working store: per-image versions for optimistic concurrency, the reviewers'
edits of planned amounts, and an audit trail of every change.
"""

from pipeline.review.app import create_app
from pipeline.review.store import Conflict, ReviewStore

__all__ = ["create_app", "Conflict", "ReviewStore"]
