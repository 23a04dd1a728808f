"""Crop and straightening geometry shared by the plan, the renderer and the XMP writer.

The model is Camera Raw's: a crop is an axis-aligned box in the oriented
full-resolution frame, turned by the straightening angle about its own
centre. The plan keeps every turned crop inside the image, so the renderer
never shows an empty corner.
"""

from __future__ import annotations

import math

Box = tuple[float, float, float, float]  # x, y, width, height


def rotated_corners(box: Box, angle_deg: float) -> list[tuple[float, float]]:
    """Corners of ``box`` turned by ``angle_deg`` (counter-clockwise on screen) about its centre."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    out = []
    for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        # Screen y points down: a counter-clockwise turn on screen is clockwise in maths axes.
        out.append((cx + dx * ca + dy * sa, cy - dx * sa + dy * ca))
    return out


def fits(box: Box, angle_deg: float, width: float, height: float, eps: float = 1e-6) -> bool:
    """Whether ``box`` turned by ``angle_deg`` lies inside a ``width`` x ``height`` image."""
    return all(-eps <= px <= width + eps and -eps <= py <= height + eps for px, py in rotated_corners(box, angle_deg))


def shrink_to_fit(box: Box, angle_deg: float, width: float, height: float) -> Box:
    """Largest box with ``box``'s centre and aspect whose turn fits in the image.

    The centre moves inwards if even a tiny box at that centre cannot fit.
    """
    x, y, w, h = box
    cx = min(max(x + w / 2, 0.0), width)
    cy = min(max(y + h / 2, 0.0), height)
    a = math.radians(abs(angle_deg))
    ca, sa = math.cos(a), math.sin(a)
    # Half-extents of the turned box along the image axes, per unit of scale.
    ex = (w * ca + h * sa) / 2
    ey = (w * sa + h * ca) / 2
    room = min(cx, width - cx) / ex if ex else 1.0
    room = min(room, min(cy, height - cy) / ey if ey else 1.0)
    s = min(1.0, room)
    if s <= 0:
        return box
    nw, nh = w * s, h * s
    return (cx - nw / 2, cy - nh / 2, nw, nh)


def inscribed_box(width: float, height: float, angle_deg: float, aspect: float | None = None) -> Box:
    """Largest centred box of ``aspect`` (default: the image's) whose turn fits in the image."""
    aspect = aspect or width / height
    if width / height >= aspect:
        w, h = height * aspect, height
    else:
        w, h = width, width / aspect
    return shrink_to_fit(((width - w) / 2, (height - h) / 2, w, h), angle_deg, width, height)


def parse_aspect(aspect: str) -> float:
    """``"4:5"`` -> 0.8 (width / height)."""
    w, _, h = aspect.partition(":")
    return float(w) / float(h)


def place_crop(
    width: float,
    height: float,
    aspect: float,
    angle_deg: float = 0.0,
    focus: tuple[float, float] | None = None,
    keep: Box | None = None,
) -> Box:
    """The largest ``aspect`` crop that fits the (straightened) image, placed on ``focus``.

    Parameters
    ----------
    width, height : float
        The oriented full-resolution frame.
    aspect : float
        Crop width / height.
    angle_deg : float
        Straightening angle; the turned crop must stay inside the frame.
    focus : (x, y), optional
        Point to centre on (faces' centroid, saliency peak); the frame's centre by default.
    keep : Box, optional
        A region to keep whole if possible (all faces): the crop slides to contain it.

    Returns
    -------
    Box
        ``(x, y, w, h)`` in full-resolution pixels.
    """
    base = inscribed_box(width, height, angle_deg, aspect)
    _, _, w, h = base
    fx, fy = focus if focus is not None else (width / 2, height / 2)
    x, y = fx - w / 2, fy - h / 2
    if keep is not None:
        kx, ky, kw, kh = keep
        # Slide so the kept region is inside when it can be (it is smaller than the crop).
        if kw <= w:
            x = min(max(x, kx + kw - w), kx)
        if kh <= h:
            y = min(max(y, ky + kh - h), ky)
    # Slide back inside the frame, then (when turned) shrink about the new centre.
    x = min(max(x, 0.0), width - w)
    y = min(max(y, 0.0), height - h)
    box = (x, y, w, h)
    if not fits(box, angle_deg, width, height):
        box = shrink_to_fit(box, angle_deg, width, height)
    return box
