"""The JSON the review app's script reads: a gallery tile, an image with its links.

Pure functions of the store's documents (no request, no Flask), so the shapes
can be read in one place and tested without a server. URLs are built here, as
the script uses them (``quote`` of the manifest's ``source_path``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from pipeline.outputs.instructions import instruction_name
from pipeline.review.preview import tonal_operations
from pipeline.review.store import ImageEntry, ReviewStore


def image_badges(doc: dict[str, Any] | None) -> dict[str, Any]:
    """What the gallery shows on a tile: counts per review status and the image's review state."""
    if doc is None:
        return {}
    statuses = [(o.get("review") or {}).get("status", "pending") for o in doc["operations"]]
    counts = {s: statuses.count(s) for s in ("pending", "accepted", "rejected", "done")}
    if statuses and counts["pending"] == len(statuses):
        state = "pending"
    elif counts["pending"]:
        state = "in_progress"
    elif counts["done"] and counts["done"] + counts["rejected"] == len(statuses):
        state = "done"  # every instruction carried out or dismissed
    else:
        state = "reviewed"
    return {"counts": counts, "review_state": state}


def after_key(doc: dict[str, Any]) -> str:
    """Names the "after" preview of the operations the renderer would apply now."""
    ops = [(o["kind"], o["params"]) for o in tonal_operations(doc)]
    return hashlib.sha256(json.dumps(ops, sort_keys=True).encode()).hexdigest()[:12]


def image_summary(entry: ImageEntry, doc: dict[str, Any] | None, version: int) -> dict[str, Any]:
    """One gallery tile; an image without a plan (failed) has its status and error only."""
    q = quote(entry.source_path)
    item: dict[str, Any] = {
        "source_path": entry.source_path,
        "status": entry.status,
        "error": entry.error,
        "version": version,
        "url": f"/image/{q}" if doc is not None else None,
        "thumb": f"/preview/thumb/{q}" if doc is not None else None,
    }
    if doc is not None:
        item.update({
            "verdict": doc["verdict"],
            "faces_to_brighten": sum(o["kind"] == "brighten_face" for o in doc["operations"]
                                     if o["review"]["status"] != "rejected"),
            "flagged": doc["verdict"] == "flag",
            "rejected": doc["verdict"] == "reject",
            "summary": doc["summary"],
            "operations": len(doc["operations"]),
            **image_badges(doc),
        })
    return item


def image_payload(store: ReviewStore, source_path: str, doc: dict[str, Any], version: int) -> dict[str, Any]:
    """One image as its page shows it: the document, its previews and files, its neighbours.

    Raises
    ------
    NotFound
        If ``source_path`` has no plan.
    """
    entry = store.planned(source_path)
    q = quote(source_path)
    order = [sp for sp in sorted(store.entries) if store.entries[sp].doc_path is not None]
    i = order.index(source_path)
    return {
        "source_path": source_path,
        "version": version,
        "doc": doc,
        "previews": {
            "before": f"/preview/before/{q}",
            "after": f"/preview/after/{q}?k={after_key(doc)}",
            "clip": f"/preview/clip/{q}",
        },
        "files": {"instructions": f"/files/instructions/{quote(instruction_name(source_path))}",
                  "xmp": f"/files/{quote(doc['xmp'])}"},
        "prev": order[i - 1] if i > 0 else None,
        "next": order[i + 1] if i + 1 < len(order) else None,
        "source_kind": entry.source_kind,
    }
