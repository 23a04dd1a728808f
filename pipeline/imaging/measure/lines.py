"""Horizon and verticals: the tilt of the picture's straight lines.

Canny edges and a probabilistic Hough transform say which edge pixels lie on
straight lines near the horizontal or vertical axis; those pixels' gradients
then give the angle to a fraction of a degree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.imaging.measure.common import WORK_LONG_EDGE, check_luma, encode_luma, resize_long_edge
from pipeline.kernel.records import LineMeasure


@dataclass(frozen=True)
class LineTilts:
    """Tilts from detected line segments; None when too few lines."""

    horizon_tilt_deg: float | None
    verticals_tilt_deg: float | None
    lines_found: int


def line_tilts(
    luma: np.ndarray,
    max_deviation_deg: float = 10.0,
    min_lines: int = 3,
    min_length_frac: float = 0.06,
) -> LineTilts:
    """Horizon and verticals tilt from Canny edges and a probabilistic Hough transform.

    Segments within ``max_deviation_deg`` of horizontal (vertical) select the
    edge pixels that vote; the tilt is the median of those pixels' edge
    directions (from their gradients), weighted by gradient strength, so long,
    crisp lines count most.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance (resized to :data:`WORK_LONG_EDGE`).
    max_deviation_deg : float
        Segments further from horizontal/vertical than this are ignored.
    min_lines : int
        Fewer segments in a family than this gives None for that tilt.
    min_length_frac : float
        Shortest segment, as a fraction of the working copy's long edge.

    Returns
    -------
    LineTilts
        ``horizon_tilt_deg``: positive when horizontals rise to the right
        (the picture needs a clockwise turn). ``verticals_tilt_deg``:
        positive when verticals lean right at the top (the picture needs a
        counter-clockwise turn, or it has a keystone). ``lines_found``: all
        segments detected near either axis.

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8, or ``max_deviation_deg``
        is not in (0, 45).
    """
    luma = check_luma(luma)
    if not 0 < max_deviation_deg < 45:
        raise ValueError(f"max_deviation_deg must be in (0, 45), got {max_deviation_deg}")
    encoded = encode_luma(resize_long_edge(luma, WORK_LONG_EDGE))
    return line_tilts_of_encoded(encoded, max_deviation_deg, min_lines, min_length_frac)


def line_tilts_of_encoded(
    encoded: np.ndarray, max_deviation_deg: float = 10.0, min_lines: int = 3, min_length_frac: float = 0.06
) -> LineTilts:
    """:func:`line_tilts` of sRGB-encoded luma already at its working size (unchecked)."""
    smooth = cv2.GaussianBlur(encoded.astype(np.float32, copy=False), (3, 3), 0)
    enc8 = np.round(smooth * 255.0).astype(np.uint8)
    edges = cv2.Canny(enc8, 40, 120, L2gradient=True)
    # Scharr, not Sobel: on rotated test lines Sobel's gradient direction reads
    # about 10 % of the tilt low, Scharr's about 3 %.
    gx = cv2.Scharr(smooth, cv2.CV_32F, 1, 0)
    gy = cv2.Scharr(smooth, cv2.CV_32F, 0, 1)
    ax, ay = np.abs(gx), np.abs(gy)
    # Only edges running near an axis can vote; dropping the rest first halves
    # the Hough transform's work, its main cost.
    ratio = 1.0 / math.tan(math.radians(max_deviation_deg + 5.0))
    edges[(ax < ay * ratio) & (ay < ax * ratio)] = 0
    min_len = max(10, int(min_length_frac * max(enc8.shape)))
    segs = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=30, minLineLength=min_len, maxLineGap=3)
    if segs is None:
        return LineTilts(None, None, 0)
    seg = segs.reshape(-1, 4)
    dx, dy = (seg[:, 2] - seg[:, 0]).astype(np.float64), (seg[:, 3] - seg[:, 1]).astype(np.float64)
    # Image y grows downwards; flip it so angles turn counter-clockwise as seen.
    angle = (np.degrees(np.arctan2(-dy, dx)) + 90.0) % 180.0 - 90.0  # [-90, 90): no direction
    # Hough segments follow its 1-degree bins, so they only say which edge
    # pixels lie on straight lines; the angle itself comes from those pixels'
    # gradients, which resolve fractions of a degree.
    horizon = verticals = None
    horiz = np.abs(angle) <= max_deviation_deg
    vert = np.abs(np.abs(angle) - 90.0) <= max_deviation_deg
    if horiz.sum() >= min_lines:
        on = _on_segments(edges, seg[horiz]) & (ay > ax)
        horizon = _weighted_median(np.degrees(np.arctan(gx[on] / gy[on])), np.hypot(gx[on], gy[on]))
    if vert.sum() >= min_lines:
        on = _on_segments(edges, seg[vert]) & (ax > ay)
        verticals = _weighted_median(np.degrees(np.arctan(gy[on] / gx[on])), np.hypot(gx[on], gy[on]))
    return LineTilts(horizon, verticals, int(horiz.sum() + vert.sum()))


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def _on_segments(edges: np.ndarray, segments: np.ndarray) -> np.ndarray:
    mask = np.zeros_like(edges)
    for x0, y0, x1, y1 in segments.tolist():
        cv2.line(mask, (x0, y0), (x1, y1), 255, thickness=3)
    return (mask > 0) & (edges > 0)


def line_measure(encoded_small: np.ndarray) -> LineMeasure:
    """The record's lines group from sRGB-encoded luma at :data:`WORK_LONG_EDGE`."""
    tilts = line_tilts_of_encoded(encoded_small)
    return LineMeasure(
        horizon_tilt_deg=tilts.horizon_tilt_deg,
        verticals_tilt_deg=tilts.verticals_tilt_deg,
        lines_found=tilts.lines_found,
    )
