"""``postprod review``: a local web app in which retouchers work through the plan.

The instructions JSON of each image is the durable record of every decision
(``pipeline.kernel.run`` keeps reviews across re-plans); ``OUT/review.sqlite`` is the
working store: per-image versions for optimistic concurrency, the reviewers'
edits of planned amounts, and an audit trail of every change.

Modules: :mod:`~pipeline.review.app` (``create_app``, ``serve``),
:mod:`~pipeline.review.store` (``ReviewStore``), :mod:`~pipeline.review.preview`
(pure numpy previews). Nothing is imported here, so that ``postprod --help``
does not load Flask.
"""
