"""Horizon and verticals: the tilt of the picture's straight lines.

Canny edges and a probabilistic Hough transform say which edge pixels lie on
straight lines near the horizontal or vertical axis; those pixels' gradients
then give each line's angle to a fraction of a degree, and the family's tilt is
the angle most of the straight line length agrees on. How much line length
agrees, and what share of the family that is, say how sure the reading is.
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
    """Tilts from detected line segments; None when too few lines.

    ``*_support``: the length of straight edge that agrees with the reading
    (edge pixels within :data:`AGREEMENT_DEG`), in long edges of the picture;
    ``*_agreement``: their share of the family's edge strength. A real
    horizon or a row of level shelves is long and dominant; perspective lines
    (a guard rail, a receding table) scatter and agree with nothing much.
    """

    horizon_tilt_deg: float | None
    verticals_tilt_deg: float | None
    lines_found: int
    horizon_support: float | None = None
    horizon_agreement: float | None = None
    verticals_support: float | None = None
    verticals_agreement: float | None = None


#: Edge pixels whose direction is within this many degrees of the family's reading agree with it (a
#: pixel's gradient direction is good to about a degree on a crisp edge).
AGREEMENT_DEG = 1.0
# Width (degrees) of the Gaussian that turns the pixels' directions into a density whose peak is the reading.
_MODE_BANDWIDTH_DEG = 0.3
# Canny's thresholds follow the picture's own contrast (a misty horizon has a faint edge): the upper one
# is this percentile of the gradient magnitude (8-bit steps per pixel), never under the floor.
_CANNY_PERCENTILE = 90.0
_CANNY_FLOOR = 8.0


def line_tilts(
    luma: np.ndarray,
    max_deviation_deg: float = 10.0,
    min_lines: int = 3,
    min_length_frac: float = 0.06,
) -> LineTilts:
    """Horizon and verticals tilt from Canny edges and a probabilistic Hough transform.

    Segments within ``max_deviation_deg`` of horizontal (vertical) say which
    edge pixels lie on straight lines; those pixels' gradients give the angle
    to a fraction of a degree (Hough's bins are one degree), and the family's
    tilt is the peak of their strength-weighted density, refined as the
    weighted median of the pixels near it: the direction most straight edge
    shares, not an average that perspective lines pull.

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
        segments detected near either axis. Support and agreement of each.

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
    # Scharr, not Sobel: on rotated test lines Sobel's gradient direction reads
    # about 10 % of the tilt low, Scharr's about 3 %.
    gx = cv2.Scharr(smooth, cv2.CV_32F, 1, 0)
    gy = cv2.Scharr(smooth, cv2.CV_32F, 0, 1)
    ax, ay = np.abs(gx), np.abs(gy)
    magnitude8 = np.hypot(gx, gy) * (255.0 / 16.0)  # Scharr's kernel sums to 16
    high = max(_CANNY_FLOOR, float(np.percentile(magnitude8, _CANNY_PERCENTILE)))
    edges = cv2.Canny(enc8, high / 2.5, high, L2gradient=True)
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
    horiz = np.abs(angle) <= max_deviation_deg
    vert = np.abs(np.abs(angle) - 90.0) <= max_deviation_deg
    long_edge = float(max(enc8.shape))
    horizon = verticals = None
    if horiz.sum() >= min_lines:
        horizon = _family(edges, seg[horiz], ay > ax, lambda on: np.degrees(np.arctan(gx[on] / gy[on])),
                          np.hypot(gx, gy), max_deviation_deg, long_edge)
    if vert.sum() >= min_lines:
        verticals = _family(edges, seg[vert], ax > ay, lambda on: np.degrees(np.arctan(gy[on] / gx[on])),
                            np.hypot(gx, gy), max_deviation_deg, long_edge)
    return LineTilts(
        horizon[0] if horizon else None, verticals[0] if verticals else None, int(horiz.sum() + vert.sum()),
        horizon[1] if horizon else None, horizon[2] if horizon else None,
        verticals[1] if verticals else None, verticals[2] if verticals else None,
    )


def _family(edges: np.ndarray, segments: np.ndarray, along: np.ndarray, pixel_angle, strength: np.ndarray,
            max_deviation_deg: float, long_edge: float) -> tuple[float, float, float] | None:
    """(tilt, support, agreement) of one family of segments, or None when no segment has edge pixels.

    Every edge pixel on the family's segments votes with its gradient's
    direction, weighted by the gradient's strength; the tilt is the peak of
    the votes' density, refined as the weighted median of the votes near it.
    """
    mask = np.zeros_like(edges)
    for x0, y0, x1, y1 in segments.tolist():
        cv2.line(mask, (x0, y0), (x1, y1), 255, thickness=3)
    on = (mask > 0) & (edges > 0) & along
    if on.sum() < 5:
        return None
    a, w = pixel_angle(on), strength[on]
    keep = np.abs(a) <= max_deviation_deg + 5.0
    a, w = a[keep], w[keep]
    if a.size < 5:
        return None
    grid = np.arange(-max_deviation_deg - 5.0, max_deviation_deg + 5.0 + 1e-9, 0.05)
    hist = np.bincount(np.clip(np.round((a - grid[0]) / 0.05).astype(int), 0, grid.size - 1), weights=w,
                       minlength=grid.size)
    sigma = _MODE_BANDWIDTH_DEG / 0.05
    kernel = np.exp(-0.5 * (np.arange(-int(4 * sigma), int(4 * sigma) + 1) / sigma) ** 2)
    mode = grid[int(np.argmax(np.convolve(hist, kernel, mode="same")))]
    near = np.abs(a - mode) <= AGREEMENT_DEG
    tilt = _weighted_median(a[near], w[near])
    agree = np.abs(a - tilt) <= AGREEMENT_DEG
    return tilt, float(agree.sum() / long_edge), float(w[agree].sum() / w.sum())


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def line_measure(encoded_small: np.ndarray) -> LineMeasure:
    """The record's lines group from sRGB-encoded luma at :data:`WORK_LONG_EDGE`."""
    tilts = line_tilts_of_encoded(encoded_small)
    return LineMeasure(
        horizon_tilt_deg=tilts.horizon_tilt_deg,
        verticals_tilt_deg=tilts.verticals_tilt_deg,
        lines_found=tilts.lines_found,
        horizon_support=tilts.horizon_support,
        horizon_agreement=tilts.horizon_agreement,
        verticals_support=tilts.verticals_support,
        verticals_agreement=tilts.verticals_agreement,
    )
