"""Image-level decisions (culling) and one reviewer's decision across images, as the API receives them.

Culling is what Lightroom's Library and Photo Mechanic do before any
correction: a pick or reject flag (P, X, U), stars 0-5 and a colour label.
They are kept in the review database and written into the instruction file
under ``doc["review"]`` with the keys the XMP writer reads:

- ``rating``: -1 rejected, 0 unrated, 1-5 stars (``xmp:Rating``; -1 is how
  Bridge and Lightroom write a rejected photo);
- ``label``: ``Red``, ``Yellow``, ``Green``, ``Blue``, ``Purple`` or None (``xmp:Label``);
- ``keywords``: kept as they are (``dc:subject``);
- ``flag``: ``pick``, ``reject`` or None; ``by`` and ``at``: who and when (UTC).

The stars under a reject are kept in the database, so unflagging a rejected
photo gives its stars back.

A :class:`Decision` is one image's share of a request: culling fields,
changes to its instructions, and two shorthands a gallery sends for many
images at once (every pending automatic correction accepted or rejected, an
amount set on every operation of a kind). Parsing is pure: no store, no Flask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # the store imports this module
    from pipeline.review.store import OpChange

FLAGS = ("pick", "reject")
LABELS = ("Red", "Yellow", "Green", "Blue", "Purple")
MAX_STARS = 5
CULLING_FIELDS = ("flag", "stars", "label")
#: Statuses a gallery may set on many instructions at once.
BULK_STATUSES = ("accepted", "rejected", "done", "pending")
#: Kinds whose amount a gallery may set on many images at once (``{"kind", "ev"}``).
AMOUNT_KINDS = ("exposure", "brighten_face", "lift_shadows")
#: Images one request may change (a whole shoot selected, with room to spare).
MAX_ITEMS = 20000


class CullingError(ValueError):
    """A culling value or a decision the API refuses (HTTP 422)."""


def default_culling() -> dict[str, Any]:
    return {"flag": None, "stars": 0, "label": None}


def parse_culling(data: Any) -> dict[str, Any]:
    """The culling fields a client sends (a subset of flag, stars, label), checked.

    Raises
    ------
    CullingError
        On an unknown field, a flag other than pick/reject/null, stars outside
        0-5 or not a whole number, or a label that is not one of the five.
    """
    if not isinstance(data, dict):
        raise CullingError("image must be an object with flag, stars and/or label")
    unknown = set(data) - set(CULLING_FIELDS)
    if unknown:
        raise CullingError(f"unknown image fields: {sorted(unknown)} (flag, stars, label)")
    out: dict[str, Any] = {}
    if "flag" in data:
        if data["flag"] is not None and data["flag"] not in FLAGS:
            raise CullingError("flag must be 'pick', 'reject' or null")
        out["flag"] = data["flag"]
    if "stars" in data:
        stars = data["stars"]
        if isinstance(stars, bool) or not isinstance(stars, (int, float)) or not math.isfinite(stars) \
                or stars != int(stars) or not 0 <= stars <= MAX_STARS:
            raise CullingError(f"stars must be a whole number from 0 to {MAX_STARS}")
        out["stars"] = int(stars)
    if "label" in data:
        if data["label"] is not None and data["label"] not in LABELS:
            raise CullingError(f"label must be one of {', '.join(LABELS)} or null")
        out["label"] = data["label"]
    return out


def review_doc(culling: Mapping[str, Any], keywords: list[str], by: str | None, at: str | None) -> dict[str, Any]:
    """``doc["review"]`` for these culling values (see the module's docstring)."""
    return {
        "rating": -1 if culling["flag"] == "reject" else int(culling["stars"]),
        "label": culling["label"],
        "keywords": list(keywords),
        "flag": culling["flag"],
        "by": by,
        "at": at,
    }


def culling_from_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Culling values as an instruction file states them (defaults when it has none).

    A rating of -1 without a flag (written by another tool) reads as rejected.
    """
    review = doc.get("review") or {}
    rating = review.get("rating")
    flag = review.get("flag")
    if flag not in FLAGS:
        flag = "reject" if rating == -1 else None
    stars = rating if isinstance(rating, int) and 0 <= rating <= MAX_STARS else 0
    label = review.get("label") if review.get("label") in LABELS else None
    return {"flag": flag, "stars": stars, "label": label}


@dataclass(frozen=True)
class Decision:
    """One image's share of a reviewer's decision.

    Attributes
    ----------
    source_path : str
    version : int
        The version the client's view was made from (a stale one gets 409).
    culling : mapping
        Culling fields to set (a subset of flag, stars, label).
    changes : tuple of OpChange
        Changes to single instructions, applied in order.
    all_status : str, optional
        ``accepted``/``rejected``: every pending automatic correction (the
        renderer's operations, never a flag, a reject or a retoucher's task);
        ``done``: every instruction not rejected; ``pending``: every one.
    all_proposals : bool
        With ``all_status`` accepted or rejected: every pending correction proposed to a person instead (a
        retoucher's operation the renderer applies once accepted, ``render_on_accept``), and nothing else: the
        gallery's "Accept proposals" after a look at them, never part of accepting the automatic ones.
    amount : (kind, ev), optional
        Set this amount on every operation of ``kind`` (exposure, brighten_face, lift_shadows).
    """

    source_path: str
    version: int
    culling: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    changes: tuple[OpChange, ...] = ()
    all_status: str | None = None
    amount: tuple[str, float] | None = None
    all_proposals: bool = False


def parse_decisions(body: Any, parse_change: Any, max_abs_ev: float) -> tuple[list[Decision], str | None]:
    """The decisions and the reviewer's name of a ``POST /api/decisions`` body.

    Body: ``{"reviewer"?: str, "items": [{"source_path", "version", "image"?: {flag, stars, label},
    "changes"?: [...], "all"?: {"status"}, "amount"?: {"kind", "ev"}}]}``.

    Raises
    ------
    CullingError
        On any malformed part, naming the item.
    """
    if not isinstance(body, dict):
        raise CullingError("body must be a JSON object")
    unknown = set(body) - {"reviewer", "items"}
    if unknown:
        raise CullingError(f"unknown fields: {sorted(unknown)}")
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise CullingError("items must be a non-empty list")
    if len(items) > MAX_ITEMS:
        raise CullingError(f"at most {MAX_ITEMS} images per request")
    reviewer = body.get("reviewer")
    if reviewer is not None and not isinstance(reviewer, str):
        raise CullingError("reviewer must be text")
    out: list[Decision] = []
    seen: set[str] = set()
    for n, item in enumerate(items):
        where = f"items[{n}]"
        if not isinstance(item, dict):
            raise CullingError(f"{where} must be an object")
        unknown = set(item) - {"source_path", "version", "image", "changes", "all", "amount"}
        if unknown:
            raise CullingError(f"{where}: unknown fields {sorted(unknown)}")
        sp, version = item.get("source_path"), item.get("version")
        if not isinstance(sp, str) or not sp:
            raise CullingError(f"{where}: source_path is required")
        if sp in seen:
            raise CullingError(f"{where}: {sp!r} appears twice")
        seen.add(sp)
        if not isinstance(version, int) or isinstance(version, bool):
            raise CullingError(f"{where}: version (the one the view was made from) is required")
        try:
            culling = parse_culling(item["image"]) if "image" in item else {}
            raw = item.get("changes") or []
            if not isinstance(raw, list):
                raise CullingError("changes must be a list")
            changes = tuple(parse_change(c) for c in raw)
        except ValueError as exc:  # CullingError and the store's ReviewError
            raise CullingError(f"{where} ({sp}): {exc}") from None
        all_status, all_proposals = None, False
        if "all" in item:
            all_status = item["all"].get("status") if isinstance(item["all"], dict) else None
            if all_status not in BULK_STATUSES:
                raise CullingError(f"{where}: all.status must be one of {', '.join(BULK_STATUSES)}")
            all_proposals = item["all"].get("proposals", False)
            if not isinstance(all_proposals, bool) or (all_proposals and all_status not in ("accepted", "rejected")):
                raise CullingError(f"{where}: all.proposals must be true or false, and true only to accept or reject")
        amount = None
        if "amount" in item:
            a = item["amount"]
            ev = a.get("ev") if isinstance(a, dict) else None
            if not isinstance(a, dict) or a.get("kind") not in AMOUNT_KINDS or isinstance(ev, bool) \
                    or not isinstance(ev, (int, float)) or not math.isfinite(ev) or abs(ev) > max_abs_ev:
                raise CullingError(f"{where}: amount must be {{kind: {' or '.join(AMOUNT_KINDS)}, "
                                   f"ev: a number within +-{max_abs_ev:g}}}")
            amount = (a["kind"], round(float(ev), 2))
        if not (culling or changes or all_status or amount):
            raise CullingError(f"{where} ({sp}): nothing to change")
        out.append(Decision(sp, version, MappingProxyType(culling), changes, all_status, amount, all_proposals))
    return out, reviewer
