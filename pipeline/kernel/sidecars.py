"""The photographer's culling, read from the XMP sidecars a shoot arrives with.

Photographers cull before they upload. Photo Mechanic, Lightroom and Bridge
write what they decided into an XMP sidecar beside the RAW: stars
(``xmp:Rating`` 1-5), a reject (``xmp:Rating`` -1, as Bridge and Lightroom
write it), a colour label (``xmp:Label``) and keywords (``dc:subject``).
Adobe's tools name the sidecar ``IMG_0002.xmp``; darktable, digiKam and
Photo Mechanic (as an option) ``IMG_0002.CR2.xmp``.

The scan reads them (:func:`photographer_culling`): a rejected frame is not
developed unless the run asks for it (``--photographer-rejects process``),
and the stars, label and keywords become the image's decision in its
instructions and in the XMP postprod writes, until a reviewer decides
otherwise. Without that, the sidecar postprod delivers beside the RAW (one
name, ``IMG_0002.xmp``) would replace the photographer's and lose the culling.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: What a run does with a frame the photographer rejected (``--photographer-rejects``).
PHOTOGRAPHER_REJECTS = ("skip", "process")
#: The reason a rejected frame is skipped with (one text, so the summary counts them in one line).
REJECTED_REASON = "rejected by the photographer (xmp:Rating -1 in its XMP sidecar; --photographer-rejects process develops it)"
#: Who decided, in an instructions document's ``review``, when the decision is the sidecar's.
PHOTOGRAPHER = "photographer"

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Culling:
    """One frame's culling as its sidecar states it.

    Attributes
    ----------
    rating : int or None
        -1 rejected, 0 unrated, 1-5 stars; None when the sidecar has no valid ``xmp:Rating``.
    label : str or None
        The colour label by name (``xmp:Label``: Lightroom's are Red, Yellow, Green, Blue, Purple).
    keywords : tuple of str
        ``dc:subject``.
    sidecar : str
        The sidecar, relative to the shoot.
    """

    rating: int | None
    label: str | None
    keywords: tuple[str, ...]
    sidecar: str

    @property
    def rejected(self) -> bool:
        return self.rating == -1

    def review(self) -> dict[str, Any]:
        """The instructions document's image-level ``review`` (the keys the XMP writer and the review app read)."""
        return {"rating": self.rating if self.rating is not None else 0, "label": self.label,
                "keywords": list(self.keywords), "flag": "reject" if self.rejected else None,
                "by": f"{PHOTOGRAPHER} ({os.path.basename(self.sidecar)})", "at": None}


def is_photographers(review: dict[str, Any] | None) -> bool:
    """Whether an image-level ``review`` is a sidecar's (:meth:`Culling.review`), not a reviewer's."""
    by = (review or {}).get("by")
    return isinstance(by, str) and by.startswith(PHOTOGRAPHER + " (")


def sidecar_owners(sidecars: list[str], files: list[str]) -> dict[str, str]:
    """Which sidecar each file takes its culling from: file -> sidecar (paths relative to the shoot).

    A sidecar is in the file's folder and named after it: ``IMG_0002.CR2.xmp`` for that file alone,
    ``IMG_0002.xmp`` for every file of the stem (a RAW+JPEG pair is one photo to Lightroom, one
    rating). The first is the more precise and wins where both exist. Names compare without case,
    as Lightroom's catalogues do.
    """
    named: dict[tuple[str, str], str] = {}  # (folder, the sidecar's name less .xmp) -> sidecar
    for sidecar in sorted(sidecars):
        folder, _, name = sidecar.rpartition("/")
        named.setdefault((folder, os.path.splitext(name)[0].casefold()), sidecar)
    owners: dict[str, str] = {}
    for path in files:
        folder, _, name = path.rpartition("/")
        found = named.get((folder, name.casefold())) or named.get((folder, os.path.splitext(name)[0].casefold()))
        if found is not None:
            owners[path] = found
    return owners


def read_culling(root: Path, sidecar: str) -> Culling | None:
    """The culling a sidecar states, or None when it states none (no stars, reject, label or keyword), or
    exiv2 cannot read it (logged)."""
    from pipeline.imaging.identity import read_exiv2_tags

    tags = read_exiv2_tags(root / sidecar, readers=("read_xmp",))
    if not tags:
        _log.warning("%s: no XMP read from this sidecar (damaged, or not XMP): its culling is left out", sidecar)
        return None
    rating = _rating(tags.get("Xmp.xmp.Rating"))
    label = tags.get("Xmp.xmp.Label")
    label = label.strip() or None if isinstance(label, str) else None
    subject = tags.get("Xmp.dc.subject")
    keywords = tuple(k for k in ([subject] if isinstance(subject, str) else subject or []) if isinstance(k, str) and k)
    if not rating and label is None and not keywords:  # (0: unrated, what Camera Raw writes by default)
        return None
    return Culling(rating, label, keywords, sidecar)


def _rating(value: Any) -> int | None:
    """``xmp:Rating`` as an integer -1..5 (XMP allows a real: "3.0"), None when absent or out of range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or round(number) != number or not -1 <= number <= 5:
        return None
    return int(number)


def photographer_culling(root: Path, sidecars: list[str], files: list[str]) -> dict[str, Culling]:
    """The culling of each of ``files`` that has a sidecar stating one (:func:`sidecar_owners`), each
    sidecar read once (exiv2, well under a millisecond a sidecar)."""
    owners = sidecar_owners(sidecars, files)
    read: dict[str, Culling | None] = {s: read_culling(root, s) for s in sorted(set(owners.values()))}
    return {f: c for f, s in owners.items() if (c := read[s]) is not None}
