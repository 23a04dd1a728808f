"""Crop and straightening geometry shared by the plan, the renderer and the XMP writer.

The model is Camera Raw's: a crop is an axis-aligned box in the oriented
full-resolution frame, turned by the straightening angle about its own
centre. The plan keeps every turned crop inside the image, so the renderer
never shows an empty corner.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

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


def box_through(box: Box, mapping: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> Box:
    """The box around the outline of ``box`` (x, y, w, h) carried by ``mapping`` (float32 points -> points): a lens
    correction bends a straight edge a little, a keystone tilts it; nine points an edge follow both."""
    x, y, w, h = box
    t = np.linspace(0.0, 1.0, 9, dtype=np.float32)
    xs = np.concatenate([x + w * t, x + w * t, np.full(9, x, np.float32), np.full(9, x + w, np.float32)])
    ys = np.concatenate([np.full(9, y, np.float32), np.full(9, y + h, np.float32), y + h * t, y + h * t])
    cx, cy = mapping(xs, ys)
    x0, y0 = float(cx.min()), float(cy.min())
    return x0, y0, float(cx.max()) - x0, float(cy.max()) - y0


def within_upscale(size: tuple[int, int], frame_w: float, frame_h: float,
                   max_upscale: float) -> tuple[tuple[int, int], float]:
    """An exact output ``size`` filled from a ``frame_w`` x ``frame_h`` frame, enlarging it at most ``max_upscale``.

    Returns the size delivered (``size`` itself when it needs no more than
    ``max_upscale``, else the largest of its shape that does) and the
    enlargement ``size`` as asked needs (output pixels per frame pixel).
    """
    bw, bh = size
    scale = max(bw / frame_w, bh / frame_h)
    if scale <= max_upscale + 1e-9:
        return (bw, bh), scale
    fit = max_upscale / scale
    return (max(1, round(bw * fit)), max(1, round(bh * fit))), scale


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


def turned_aspect(aspect: str) -> str:
    """``"3:2"`` -> ``"2:3"``: the aspect of a crop turned to the picture's orientation (a chart's ``orientation:
    source``)."""
    w, _, h = aspect.partition(":")
    return f"{h}:{w}"


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


def _clip(polygon: list[tuple[float, float]], a: tuple[float, float], b: tuple[float, float]) -> list[tuple[float, float]]:
    """The part of ``polygon`` on the left of the directed edge ``a -> b`` (Sutherland-Hodgman, one edge)."""
    def side(p: tuple[float, float]) -> float:
        return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])

    out: list[tuple[float, float]] = []
    for i, p in enumerate(polygon):
        q = polygon[(i + 1) % len(polygon)]
        sp, sq = side(p), side(q)
        if sp >= 0:
            out.append(p)
        if (sp >= 0) != (sq >= 0):
            t = sp / (sp - sq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def _area(polygon: list[tuple[float, float]]) -> float:
    return abs(sum(p[0] * q[1] - q[0] * p[1] for p, q in zip(polygon, polygon[1:] + polygon[:1]))) / 2


def kept_share(box: Box, angle_deg: float, region: Box) -> float:
    """The share of the axis-aligned ``region``'s area that ``box`` turned by ``angle_deg`` covers (0-1).

    A region of no area counts as kept when its corner lies inside the box (1.0), else 0.0.
    """
    rx, ry, rw, rh = region
    if angle_deg == 0.0:
        x, y, w, h = box
        ix = max(0.0, min(x + w, rx + rw) - max(x, rx))
        iy = max(0.0, min(y + h, ry + rh) - max(y, ry))
        if rw * rh <= 0:
            return float(x <= rx <= x + w and y <= ry <= y + h)
        return ix * iy / (rw * rh)
    # rotated_corners runs top-left, top-right, bottom-right, bottom-left: with y pointing down the inside
    # is where _clip's cross product is positive.
    corners = rotated_corners(box, angle_deg)
    poly = [(rx, ry), (rx + rw, ry), (rx + rw, ry + rh), (rx, ry + rh)]
    for a, b in zip(corners, corners[1:] + corners[:1]):
        poly = _clip(poly, a, b)
        if not poly:
            return 0.0
    if rw * rh <= 0:
        return 1.0
    return _area(poly) / (rw * rh)
