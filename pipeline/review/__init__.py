"""``postprod review``: a local web app in which retouchers work through the plan.

The instructions JSON of each image is the durable record of every decision
(``pipeline.kernel.run`` keeps reviews across re-plans); ``OUT/review.sqlite`` is the
working store: per-image versions for optimistic concurrency, the reviewers'
edits of planned amounts, and an audit trail of every change.

Modules: :mod:`~pipeline.review.app` (``create_app``, ``serve``: the factory),
:mod:`~pipeline.review.context` (``ReviewContext``: store, previews, settings),
:mod:`~pipeline.review.security` (the guard before every request),
:mod:`~pipeline.review.errors` (JSON errors under ``/api/``),
:mod:`~pipeline.review.payloads` (the JSON shapes the script reads),
:mod:`~pipeline.review.blueprints` (the features: pages, API, previews, files),
:mod:`~pipeline.review.store` (``ReviewStore``), :mod:`~pipeline.review.preview`
(pure numpy previews). Nothing is imported here, so that ``postprod --help``
does not load Flask.
"""
