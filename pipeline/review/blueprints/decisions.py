"""Decisions across images: culling (flag, stars, label), batch accept/reject, batch amounts, undo.

``POST /api/decisions`` takes one reviewer's decision over one or many
images (see :func:`pipeline.review.culling.parse_decisions`). It is all or
none: when any image changed since the client read it, nothing is written
and the answer is 409 with the current state of the images that changed.
The answer of a change carries ``undo``, a body that takes it back; posting
that body answers with the ``undo`` that redoes it, so a browser keeps its
undo and redo stacks as plain request bodies.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from pipeline.review.context import review_context
from pipeline.review.culling import CullingError, parse_decisions
from pipeline.review.errors import API_PREFIX, json_error
from pipeline.review.payloads import image_summary
from pipeline.review.store import MAX_ABS_EV, NotFound, StaleDecision, clean_reviewer, parse_change

decisions = Blueprint("decisions", __name__, url_prefix=API_PREFIX)


@decisions.post("/decisions")
def decide() -> Response:
    """Body: ``{"reviewer"?, "items": [{"source_path", "version", "image"?: {"flag"?, "stars"?, "label"?},
    "changes"?: [...], "all"?: {"status", "proposals"?}, "amount"?: {"kind", "ev"}}]}`` (``all.proposals``: the
    corrections proposed to a person instead of the automatic ones).

    Answers ``{"images": [gallery tiles of the images], "changed": N, "undo": body or null}``;
    404 for an unknown image, 409 (``stale``: the current tiles) when one changed meanwhile,
    422 for a value out of range (stars outside 0-5, a label not among the five, ...).
    """
    context = review_context()
    store = context.store
    body: Any = request.get_json(silent=True)
    try:
        wanted, reviewer = parse_decisions(body, parse_change, MAX_ABS_EV)
        name = clean_reviewer(reviewer, context.settings.reviewer)
        done = store.decide(wanted, name)
    except CullingError as exc:
        code = 400 if str(exc).startswith(("body must", "items must")) else 422
        return json_error(code, str(exc))
    except NotFound as exc:
        return json_error(404, f"no planned image {exc.args[0]!r}")
    except StaleDecision as exc:
        resp = jsonify({"error": str(exc), "stale": [_tile(store, sp, doc, v) for sp, (doc, v) in exc.stale.items()]})
        resp.status_code = 409
        return resp
    undo_items = [d.undo for d in done if d.undo is not None]
    return jsonify({
        "images": [_tile(store, d.source_path, d.doc, d.version) for d in done],
        "changed": len(undo_items),
        "undo": {"reviewer": name, "items": undo_items} if undo_items else None,
    })


def _tile(store: Any, source_path: str, doc: dict[str, Any], version: int) -> dict[str, Any]:
    return image_summary(store.planned(source_path), doc, version, store.culling_of(source_path, doc),
                         store.stale(source_path, doc))
