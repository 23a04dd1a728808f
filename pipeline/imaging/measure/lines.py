"""Horizon and verticals: the tilt of the picture's straight lines.

A line segment detector (LSD, von Gioi et al. 2012, as OpenCV ships it) finds
the straight edges of a copy large enough for sub-degree angles
(:data:`LSD_LONG_EDGE`) and of a quarter-size one. Each segment near the horizontal or vertical axis is
then moved onto the edge it traces in the working copy (:data:`LINE_LONG_EDGE`, larger than LSD's), to a
tenth of a pixel: a line fitted to the peaks of the gradient across it (:func:`_refine`, a sub-pixel
edge fit as in Canny's or Devernay's edge localisation); and pieces of one edge (a horizon broken by a
mast, a row of glass blocks broken at every joint, the same edge found at both scales) are read as one
line through all their ends (:data:`COLLINEAR_PX`), whose span, not each piece's, sets the angle's
precision. Each segment votes for its family's tilt with its length. The tilt is the peak of the
votes' density, refined as the mean of the segments that agree with it,
weighted by their squared length (a segment's angle is good to about its
endpoints' error over its length). How much line length agrees, what share of
the family that is, and on how many separate lines it lies say how sure the
reading is: a row of level shelves or a horizon with a shore below it is many
lines agreeing; a sloping ridge or a receding wall is one line, or lines that
scatter; a brick texture or a page curving to its binding has a rival direction
as strong as the reading. Verticals photographed with the camera pitched meet
at a vanishing point: their lean is read at the frame's centre, through the
slope across the frame that gathers them best (:data:`CONVERGENCE_GAIN`).
How steady a reading is, the share of bootstrap resamples of the family's
segments that read the same direction (:data:`STABLE_DEG`), tells a reading
resting on many agreeing lines from one that a single line or a near rival
decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.imaging.measure.common import check_luma, encode_luma, remap_points, resize_long_edge
from pipeline.kernel.records import LineMeasure


@dataclass(frozen=True)
class LineTilts:
    """Tilts from detected line segments; None when too few lines.

    ``*_support``: the length of the segments that agree with the reading
    (within :data:`AGREEMENT_DEG`), in long edges of the picture;
    ``*_agreement``: their share of the family's segment length; ``*_lines``:
    on how many separate lines they lie; ``*_rival``: the line length agreeing with the strongest
    other direction (at least :data:`RIVAL_APART_DEG` away), as a share of the reading's; ``*_stability``: the share
    of bootstrap resamples of the segments read within :data:`STABLE_DEG` of the reading. A real horizon or a row of level
    shelves is long and dominant; perspective lines (a guard rail, a receding
    table) scatter and agree with nothing much. ``verticals_convergence``: how the verticals' lean changes across the
    frame, in degrees per long edge to the right (0 when they are read as parallel; negative when they meet above
    the frame: a camera pitched up); ``verticals_convergence_stability``: the share of bootstrap resamples that read
    it within :data:`SLOPE_STABLE` (None when the lines are read as parallel); ``verticals_one_sided``: the verticals
    converge but lie on one side of the centre (:data:`STRADDLE`), and are read as parallel: their lean is the pitch's
    as much as the roll's.
    """

    horizon_tilt_deg: float | None
    verticals_tilt_deg: float | None
    lines_found: int
    horizon_support: float | None = None
    horizon_agreement: float | None = None
    verticals_support: float | None = None
    verticals_agreement: float | None = None
    horizon_lines: int | None = None
    verticals_lines: int | None = None
    horizon_rival: float | None = None
    verticals_rival: float | None = None
    horizon_stability: float | None = None
    verticals_stability: float | None = None
    verticals_convergence: float | None = None
    verticals_convergence_stability: float | None = None
    verticals_one_sided: bool | None = None


#: Segments whose angle is within this many degrees of the family's reading agree with it (LSD's
#: angles are good to about a tenth of a degree on a segment a tenth of the frame long; on the
#: tuning tilts of benchmarks/straighten_fit.py 0.3 deg read the turns closer than 0.5).
AGREEMENT_DEG = 0.3
#: Long edge (px) of the lines' working copy: the default proxy's (1600), never enlarged. Segment
#: lengths and the lines' separation are measured against it; LSD itself runs on smaller copies.
LINE_LONG_EDGE = 1600
#: Long edge (px) of the copy LSD runs on: its cost grows with the pixels (on a busy 1600 px proxy about
#: 235 ms at 1600, 85 ms at 1024). On the tuning tilts of the level-lines photos (rocket aside) the
#: horizon read the turns as closely at 1024 as at 1600 (median |error| 0.26 deg both; 0.28 at 800).
LSD_LONG_EDGE = 1024
# Width (degrees) of the Gaussian that turns the segments' angles into a density whose peak is the reading.
_MODE_BANDWIDTH_DEG = 0.15
# LSD runs on the LSD_LONG_EDGE copy and on a copy a quarter the working copy's size: a soft horizon
# (mist, a far shore) is a few short segments at full size and one long one at a quarter (on the tuning
# tilts the median horizon error fell from 0.41 to 0.36 deg).
_COARSE_SCALE = 0.25
#: A rival direction is one at least this many degrees from the reading (nearer, it is the reading's own spread).
#: Wider was tried (2026-12-04): the tuning split's wine photo (a glass-block wall behind a pallet table) read its
#: turns within 0.26 deg (most within 0.1) but was declined at 8 of 24 turns for its rival (the three measured: a
#: direction 1.0-1.5 deg off the reading). On benchmarks/straighten_fit.py's 51 photos x 24 turns, 1.5 and 2.0
#: declined fewer level-lines turns (47 -> 44 %) but told more readings more than 0.5 deg off (90 -> 100 and 106);
#: the share within 0.3 deg stayed 56 %.
RIVAL_APART_DEG = 1.0
#: Converging lines: verticals photographed with the camera pitched up or down meet at a vanishing point,
#: each leaning by the angle its offset from the centre subtends from that point, and only the lean at the
#: frame's centre is the camera's roll. The lean may change across the frame by at most this much per long
#: edge (deg; a vanishing point 4.8 long edges away: about 12 deg of pitch with a normal lens) ...
SLOPE_MAX_DEG = 12.0
_SLOPE_STEP_DEG = 0.25  # a step changes a lean at the frame's edge by 0.125 deg, under AGREEMENT_DEG
#: ... and the lines are read as converging only when that gathers this much more line length into one
#: direction (the peak of the density) than reading them as parallel: a slope is one more thing fitted, and
#: some slope always gathers a little more by chance (fitted on benchmarks/straighten_fit.py: 1.1 to 1.5 read
#: the turns alike, 1.0 let chance slopes through) ...
CONVERGENCE_GAIN = 1.2
#: ... and when the lines that agree lie on both sides of the centre, at least this share of their length on
#: each: a lean at the centre read from lines all on one side is extrapolated, and the slope makes it up.
STRADDLE = 0.2
#: A resampled reading this close to the family's reading confirms it (half the agreement band: a reading
#: that moves less than this moves the turn by less than the target's 0.3 deg).
STABLE_DEG = 0.15
# Resamples of the segments behind a reading's stability (the bootstrap; 64 draws: 1.6 % steps).
_RESAMPLES = 64
_RESAMPLE_CHUNK = 16  # the slope's resamples searched 16 at a time (the histograms of every slope of each)
#: A resampled slope this close to the reading's (degrees per long edge; the slope's search runs at twice
#: :data:`_SLOPE_STEP_DEG` for it) confirms the convergence: a vanishing point that moves less leaves verticals at
#: the edges of a 3:2 frame leaning by less than a quarter of this.
SLOPE_STABLE = 1.0
_RESAMPLE_COARSER = 5  # the resamples' density on a 0.05 deg grid
# Agreeing segments whose perpendicular offsets are closer than this (share of the long edge) lie on one line.
_SAME_LINE = 0.01
#: Each segment is refined on the working copy within this many pixels either side of where LSD put it (LSD
#: runs on a smaller copy, good to about a pixel of it at each end).
REFINE_BAND_PX = 3.0
_BAND_STEP = 0.5  # the profiles across a segment are sampled every half pixel
#: Segments whose both ends lie within this many pixels (of the working copy) of a longer segment's line, at an
#: angle within :data:`COLLINEAR_DEG` of it, are pieces of that line. On benchmarks/straighten_fit.py's level-lines
#: photos (24 turns each) the horizon read the turns with a median error of 0.32 deg from refined segments
#: alone, 0.18 with their pieces joined (0.40 before either): a room's glass-block rows, read piece by piece,
#: split into two directions 0.8 deg apart; joined, they read within 0.1 deg at every turn.
COLLINEAR_PX = 1.5
COLLINEAR_DEG = 1.0


def line_tilts(
    luma: np.ndarray,
    max_deviation_deg: float = 10.0,
    min_length_frac: float = 0.04,
) -> LineTilts:
    """Horizon and verticals tilt from the line segments of the picture.

    Segments within ``max_deviation_deg`` of horizontal (vertical) vote for
    their family's tilt with their length; the tilt is the peak of the votes'
    density, refined as the squared-length-weighted mean of the segments that
    agree with it (within :data:`AGREEMENT_DEG`): the direction most straight
    edge shares, not an average that perspective lines pull.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Linear luminance, any size. Lengths are measured against a working
        copy of at most :data:`LINE_LONG_EDGE` (a smaller picture is not
        enlarged); LSD runs on a copy of at most :data:`LSD_LONG_EDGE`.
    max_deviation_deg : float
        Segments further from horizontal/vertical than this are ignored.
    min_length_frac : float
        Shortest segment, as a fraction of the working copy's long edge.

    Returns
    -------
    LineTilts
        ``horizon_tilt_deg``: positive when horizontals rise to the right
        (the picture needs a counter-clockwise turn of the crop). ``verticals_tilt_deg``:
        positive when verticals lean right at the top (the picture needs a
        clockwise turn), at the frame's centre when they converge (a keystone). ``lines_found``: all
        segments detected near either axis. Support, agreement, the number
        of separate agreeing lines, the rival and the stability of each.

    Raises
    ------
    ValueError
        If ``luma`` is not a 2-D image of at least 8x8, ``max_deviation_deg``
        is not in (0, 45) or ``min_length_frac`` not in (0, 1).
    """
    luma = check_luma(luma)
    if not 0 < max_deviation_deg < 45:
        raise ValueError(f"max_deviation_deg must be in (0, 45), got {max_deviation_deg}")
    if not 0 < min_length_frac < 1:
        raise ValueError(f"min_length_frac must be in (0, 1), got {min_length_frac}")
    # Lengths and offsets are in the pixels of the working copy; LSD's own copy is made straight from
    # the proxy (no full-size copy is encoded: that alone cost a tenth of the measure).
    long_edge = float(min(max(luma.shape), LINE_LONG_EDGE))
    lsd_copy = luma if max(luma.shape) <= LSD_LONG_EDGE else resize_long_edge(luma, LSD_LONG_EDGE)
    encoded = np.round(np.clip(encode_luma(lsd_copy), 0.0, 1.0) * 255.0).astype(np.uint8)
    segments = _segments(encoded, _COARSE_SCALE * long_edge / max(encoded.shape)) * (long_edge / max(encoded.shape))
    # LSD's segments are good to about a pixel of its smaller copy at each end; each is moved onto the edge it
    # traces in the working copy, to a tenth of a pixel.
    work = luma if max(luma.shape) <= LINE_LONG_EDGE else resize_long_edge(luma, LINE_LONG_EDGE)
    work = encode_luma(work)  # a new float32 array: clipped in place (no two more copies of the working copy)
    np.clip(work, 0.0, 1.0, out=work)
    segments = _refine(work, segments, long_edge, max_deviation_deg, min_length_frac)
    return _tilts(segments, luma.shape, long_edge, max_deviation_deg, min_length_frac)


def _refine(work: np.ndarray, segments: np.ndarray, long_edge: float, max_deviation_deg: float,
            min_length_frac: float) -> np.ndarray:
    """The segments near either axis moved onto the edge each traces in ``work`` (the working copy, encoded).

    Across each segment, at every pixel along it, the edge lies where the luma's gradient across the segment
    peaks (within :data:`REFINE_BAND_PX`, the segment's own polarity, the peak placed between samples by a
    parabola); a line fitted to those positions, weighted by the gradient (the contrast), with positions
    more than a pixel off it dropped, is the refined segment. A segment whose edge is found at fewer than
    half its pixels, or whose fit leaves the band, is kept as LSD found it."""
    if segments.size == 0:
        return segments
    x0, y0, x1, y1 = segments.T
    dx, dy = x1 - x0, y1 - y0
    length = np.hypot(dx, dy)
    angle = np.degrees(np.arctan2(-dy, dx)) % 180.0
    near = np.minimum(np.abs((angle + 90.0) % 180.0 - 90.0), np.abs(90.0 - angle))
    pick = np.flatnonzero((length >= max(8.0, min_length_frac * long_edge)) & (near <= max_deviation_deg))
    if pick.size == 0:
        return segments
    out = segments.copy()
    offs = np.arange(-REFINE_BAND_PX, REFINE_BAND_PX + _BAND_STEP / 2, _BAND_STEP)
    ux, uy = dx[pick] / length[pick], dy[pick] / length[pick]
    nx, ny = -uy, ux
    counts = np.floor(length[pick]).astype(int) + 1
    seg = np.repeat(np.arange(pick.size), counts)
    t = np.arange(seg.size) - np.repeat(np.cumsum(counts) - counts, counts)
    t = t.astype(np.float32)
    px = x0[pick][seg] + t * ux[seg]
    py = y0[pick][seg] + t * uy[seg]
    mapx = (px[:, None] + offs[None, :] * nx[seg][:, None]).astype(np.float32)
    mapy = (py[:, None] + offs[None, :] * ny[seg][:, None]).astype(np.float32)
    smooth = cv2.GaussianBlur(work, (0, 0), 0.8)
    prof = remap_points(smooth, mapx, mapy)
    inside = ((mapx >= 0) & (mapx <= work.shape[1] - 1) & (mapy >= 0) & (mapy <= work.shape[0] - 1)).all(axis=1)
    g = np.gradient(prof, axis=1)
    polarity = np.sign(np.bincount(seg, weights=g.sum(axis=1), minlength=pick.size))
    g = g * polarity[seg][:, None]
    k = np.argmax(g, axis=1)
    rows = np.arange(g.shape[0])
    ok = inside & (k > 0) & (k < offs.size - 1)
    kc = np.clip(k, 1, offs.size - 2)
    gm, g0, gp = g[rows, kc - 1], g[rows, kc], g[rows, kc + 1]
    curv = gm - 2 * g0 + gp
    ok &= (curv < 0) & (g0 > 0)
    sub = np.where(ok, 0.5 * (gm - gp) / np.where(curv < 0, curv, -1.0), 0.0)
    s = offs[kc] + sub * _BAND_STEP  # the edge's offset across the segment (px)
    w = np.where(ok, g0, 0.0)
    n = pick.size
    total = np.bincount(seg, minlength=n).astype(float)
    good = w > 0
    a = b = np.zeros(n)
    for _ in range(3):
        ww = np.where(good, w, 0.0)
        sw = np.bincount(seg, ww, n)
        st = np.bincount(seg, ww * t, n)
        ss = np.bincount(seg, ww * s, n)
        stt = np.bincount(seg, ww * t * t, n)
        sts = np.bincount(seg, ww * t * s, n)
        den = sw * stt - st * st
        b = np.where(den > 0, (sw * sts - st * ss) / np.where(den > 0, den, 1.0), 0.0)
        a = np.where(sw > 0, (ss - b * st) / np.where(sw > 0, sw, 1.0), 0.0)
        good = (w > 0) & (np.abs(s - (a[seg] + b[seg] * t)) <= 1.0)
    valid = np.bincount(seg, good.astype(float), n)
    fine = (valid >= np.maximum(8, 0.5 * total)) & (np.abs(a) <= REFINE_BAND_PX) & (np.abs(b) <= 0.05)
    j = pick[fine]
    a, b, L = a[fine], b[fine], length[j]
    ux, uy, nx, ny = ux[fine], uy[fine], nx[fine], ny[fine]
    out[j] = np.stack([x0[j] + a * nx, y0[j] + a * ny,
                       x0[j] + L * ux + (a + b * L) * nx, y0[j] + L * uy + (a + b * L) * ny], axis=1)
    return out


def _tilts(segments: np.ndarray, shape: tuple[int, int], long_edge: float, max_deviation_deg: float,
           min_length_frac: float) -> LineTilts:
    """:func:`line_tilts` from the segments (x0, y0, x1, y1 rows in the working copy's pixels) of a picture
    of ``shape``."""
    if segments.size == 0:
        return LineTilts(None, None, 0)
    x0, y0, x1, y1 = segments.T
    dx, dy = x1 - x0, y1 - y0
    length = np.hypot(dx, dy)
    keep = length >= max(8.0, min_length_frac * long_edge)
    # Image y grows downwards; flip it so angles turn counter-clockwise as seen. Direction-free: [0, 180).
    angle = np.degrees(np.arctan2(-dy, dx)) % 180.0
    horizon_angle = (angle + 90.0) % 180.0 - 90.0  # rise to the right, in [-90, 90)
    lean = 90.0 - angle  # top to the right, in (-90, 90]
    horiz = keep & (np.abs(horizon_angle) <= max_deviation_deg)
    vert = keep & (np.abs(lean) <= max_deviation_deg)
    # Perpendicular offsets of each segment's midpoint: segments of one line share it.
    mx, my = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    # The lines' working copy's centre, the principal point the converging lines are read against.
    scale = long_edge / max(shape)
    # Horizontals are read as parallel: those of a wall seen at an angle meet on the horizon, at a row
    # the picture does not give, so their lean at the centre row is not the roll.
    # Pieces of one edge (a horizon broken by a mast, a shelf's edge by its objects, the same edge at both
    # scales) are read as one line: their angle is the slope across the whole edge.
    horizon_angle[horiz] = _collinear(x0[horiz], y0[horiz], x1[horiz], y1[horiz], horizon_angle[horiz],
                                      length[horiz], vertical=False)
    lean[vert] = _collinear(x0[vert], y0[vert], x1[vert], y1[vert], lean[vert], length[vert], vertical=True)
    horizon = _family(horizon_angle[horiz], length[horiz], my[horiz], max_deviation_deg, long_edge,
                      shape[0] * scale / 2.0, converge=False)
    verticals = _family(lean[vert], length[vert], mx[vert], max_deviation_deg, long_edge,
                        shape[1] * scale / 2.0, converge=True, along=(my[vert] - shape[0] * scale / 2.0) / long_edge)
    return LineTilts(
        horizon[0] if horizon else None, verticals[0] if verticals else None, int(horiz.sum() + vert.sum()),
        horizon[1] if horizon else None, horizon[2] if horizon else None,
        verticals[1] if verticals else None, verticals[2] if verticals else None,
        horizon[3] if horizon else None, verticals[3] if verticals else None,
        horizon[4] if horizon else None, verticals[4] if verticals else None,
        horizon[5] if horizon else None, verticals[5] if verticals else None,
        verticals[6] if verticals else None, verticals[7] if verticals else None,
        verticals[8] if verticals else None,
    )


def _collinear(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, angle: np.ndarray,
               length: np.ndarray, vertical: bool) -> np.ndarray:
    """Each segment's angle read off the line it shares with other segments of its family.

    From the longest segment down, the segments whose both ends lie within :data:`COLLINEAR_PX` of its line
    (and whose angle is within :data:`COLLINEAR_DEG` of its own) join it; a line fitted through all their
    ends, weighted by their length, is searched again, three times. Every segment of a line of two or more
    takes the line's angle: its ends span the whole edge, where each piece spans only itself. ``vertical``:
    the segments are verticals (``angle`` their lean), else horizontals (``angle`` their rise)."""
    if vertical:  # read x as a function of y: swap the axes, and the angle's sign follows
        x0, y0, x1, y1 = y0, x0, y1, x1
    out = angle.copy()
    free = np.ones(angle.size, bool)
    for i in np.argsort(-length):
        if not free[i]:
            continue
        m = (y1[i] - y0[i]) / (x1[i] - x0[i]) if x1[i] != x0[i] else 0.0
        c = y0[i] - m * x0[i]
        members = np.array([i])
        for _ in range(3):
            dist = np.maximum(np.abs(y0 - (c + m * x0)), np.abs(y1 - (c + m * x1))) / np.hypot(1.0, m)
            cand = free & (dist <= COLLINEAR_PX) & (np.abs(angle - angle[i]) <= COLLINEAR_DEG)
            cand[i] = True
            members = np.flatnonzero(cand)
            if members.size < 2:
                break
            w = np.concatenate([length[members], length[members]])
            xs = np.concatenate([x0[members], x1[members]])
            ys = np.concatenate([y0[members], y1[members]])
            xm = np.average(xs, weights=w)
            ym = np.average(ys, weights=w)
            m = np.sum(w * (xs - xm) * (ys - ym)) / max(np.sum(w * (xs - xm) ** 2), 1e-9)
            c = ym - m * xm
        free[members] = False
        if members.size >= 2:
            # Image y grows downwards: a line rising to the right has a negative slope (verticals: x leaning
            # right at the top grows as y falls, the same sign).
            out[members] = np.degrees(np.arctan(-m))
    return out


def _segments(encoded8: np.ndarray, coarse: float) -> np.ndarray:
    """LSD's segments of an 8-bit picture and of a copy ``coarse`` times its size, as (N, 4) float64
    rows x0, y0, x1, y1 in the picture's pixels (none: shape (0, 4))."""
    out = [np.zeros((0, 4))]
    lsd = cv2.createLineSegmentDetector(cv2.LSD_REFINE_STD)
    for scale in (1.0, min(1.0, coarse)):
        img = encoded8 if scale == 1.0 else cv2.resize(encoded8, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found = lsd.detect(img)[0]
        if found is not None:
            out.append(found.reshape(-1, 4).astype(np.float64) / scale)
    return np.concatenate(out)


def _family(angles: np.ndarray, length: np.ndarray, offset: np.ndarray, max_deviation_deg: float,
            long_edge: float, centre: float, converge: bool, along: np.ndarray | None = None
            ) -> tuple[float, float, float, int, float, float, float, float | None, bool] | None:
    """(tilt, support, agreement, separate lines, rival, stability, slope, the slope's stability: None when the lines
    are read as parallel, one-sided: converging lines read as parallel because they lie on one side of the centre)
    of one family of segments, or None without segments.

    With ``converge``, the family's lines may meet at a vanishing point: each segment's angle is read
    as the tilt at the frame's centre of the line through it and the point a slope places (:func:`_through`;
    ``along``: the segments' other coordinate from the frame's centre, in long edges, + = down), the
    slope that gathers the most line length into one direction, and the tilt is the one at the centre."""
    if angles.size == 0:
        return None
    step = 0.01
    grid = np.arange(-max_deviation_deg, max_deviation_deg + step / 2, step)
    x = (offset - centre) / long_edge
    y = np.zeros_like(x) if along is None else along
    slopes = np.array([0.0])
    if converge:
        slopes = np.round(np.arange(-SLOPE_MAX_DEG, SLOPE_MAX_DEG + _SLOPE_STEP_DEG / 2, _SLOPE_STEP_DEG) / _SLOPE_STEP_DEG) * _SLOPE_STEP_DEG
    read, hists, density = _densities(angles, length, x, y, slopes, grid, step)
    peaks = density.max(axis=1)
    level = int(np.flatnonzero(slopes == 0.0)[0])
    best = int(np.argmax(peaks))
    one_sided = False
    if peaks[best] < CONVERGENCE_GAIN * peaks[level]:
        best = level  # parallel lines unless meeting at a point gathers clearly more of them
    elif best != level:
        # The tilt at the centre is read between the converging lines, not extrapolated past them.
        tilt = float(grid[int(np.argmax(density[best]))])
        near = np.abs(read[best] - tilt) <= AGREEMENT_DEG
        side = length[near & (x < 0)].sum(), length[near & (x > 0)].sum()
        if min(side) < STRADDLE * max(sum(side), 1e-9):
            # Read as parallel, but said: lines that converge on one side of the frame lean there by the pitch as much
            # as by the roll, and their lean is not the camera's roll.
            best, one_sided = level, True
    slope, angles, hist, peak = float(slopes[best]), read[best], hists[best], density[best]
    if best != level:
        # The slope to a fifth of the search's step: the finer slopes about the one found, the one that gathers most.
        fine = slope + np.arange(-2, 3) * (_SLOPE_STEP_DEG / 5.0)
        fine = fine[(np.abs(fine) <= SLOPE_MAX_DEG) & (fine != 0.0)]
        f_read, f_hists, f_density = _densities(angles=read[level], length=length, x=x, y=y, slopes=fine, grid=grid,
                                                step=step)
        k = int(np.argmax(f_density.max(axis=1)))
        slope, angles, hist, peak = float(fine[k]), f_read[k], f_hists[k], f_density[k]
    tilt = float(grid[int(np.argmax(peak))])
    tilt = _mean_shift(angles, length, tilt)
    agree = np.abs(angles - tilt) <= AGREEMENT_DEG
    offsets = np.sort(offset[agree])
    lines = int(1 + np.count_nonzero(np.diff(offsets) > _SAME_LINE * long_edge))
    # The rival: the most line length that agrees with any direction at least RIVAL_APART_DEG away.
    reach = int(round(AGREEMENT_DEG / step))
    within = np.convolve(hist, np.ones(2 * reach + 1), mode="same")
    apart = np.abs(grid - tilt) >= RIVAL_APART_DEG
    support = float(length[agree].sum())
    rival = float(within[apart].max() / support) if apart.any() and support > 0 else 0.0
    steady = None if best == level else _slope_stability(read, length, slopes, slope, grid, step)
    return (tilt, support / long_edge, support / float(length.sum()), lines, rival,
            _stability(angles, length, tilt, grid, step), slope, steady, one_sided)


def _slope_stability(read: np.ndarray, length: np.ndarray, slopes: np.ndarray, slope: float, grid: np.ndarray,
                     step: float) -> float:
    """The share of resampled segment sets (the bootstrap, as :func:`_stability`) whose converging lines are read
    at a slope within :data:`SLOPE_STABLE` of ``slope``: the search of :func:`_family` (every other slope of
    ``slopes``, whose readings of the segments are ``read``; the parallel one unless meeting at a point gathers
    :data:`CONVERGENCE_GAIN` times more) on each resample. A vanishing point that many lines agree on is
    found whichever are drawn; one that a few lines or a curve's pieces (an arcade's arches) make up moves."""
    rng = np.random.default_rng(1)  # the same draws for every picture: a measurement, not a sample
    grid, step = grid[::_RESAMPLE_COARSER], step * _RESAMPLE_COARSER
    sigma = _MODE_BANDWIDTH_DEG / step
    taps = 2 * int(4 * sigma) + 1
    every_other = (np.arange(slopes.size) % 2 == 0) | (slopes == 0.0)
    read, slopes = read[every_other], slopes[every_other]
    level = int(np.flatnonzero(slopes == 0.0)[0])
    bins = np.round((read - grid[0]) / step).astype(np.int64)
    inside = (bins >= 0) & (bins < grid.size)
    found = []
    for _ in range(_RESAMPLES // _RESAMPLE_CHUNK):
        weights = rng.poisson(1.0, (_RESAMPLE_CHUNK, length.size)) * length[None, :]
        cell = np.arange(_RESAMPLE_CHUNK)[:, None, None] * slopes.size + np.arange(slopes.size)[None, :, None]
        flat = (cell * grid.size + bins[None, :, :])[:, inside]
        w = np.broadcast_to(weights[:, None, :], (_RESAMPLE_CHUNK, slopes.size, length.size))[:, inside]
        hists = np.bincount(flat.ravel(), weights=w.ravel(), minlength=_RESAMPLE_CHUNK * slopes.size * grid.size)
        density = cv2.GaussianBlur(hists.reshape(-1, grid.size), (taps, 1), sigmaX=sigma, sigmaY=0.1,
                                   borderType=cv2.BORDER_CONSTANT)
        peaks = density.max(axis=1).reshape(_RESAMPLE_CHUNK, slopes.size)
        best = np.argmax(peaks, axis=1)
        parallel = peaks[np.arange(_RESAMPLE_CHUNK), best] < CONVERGENCE_GAIN * peaks[:, level]
        found.append(np.where(parallel, 0.0, slopes[best]))
    return float(np.mean(np.abs(np.concatenate(found) - slope) <= SLOPE_STABLE))


def _through(angles: np.ndarray, x: np.ndarray, y: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """Each segment's angle (degrees) read, for each slope, as the tilt at the frame's centre of the line through the
    segment and the vanishing point the slope places: (slopes, segments).

    A slope ``s`` (degrees per long edge: how the lean of lines through a point changes across the centre row) puts
    the point ``d = -180 / (pi s)`` long edges above the centre (below: negative). A segment at ``(x, y)`` (long
    edges from the centre, y down) leaning ``a`` meets the point's row at ``X = x + (d + y) tan a``; the line from
    there to the centre's row leans ``atan(X / d)`` there. Exactly, not as ``a - s x``: a segment near the top or
    bottom of a frame lies nearer to or further from the point, and leans more or less than one at the centre row
    (by 6 % at a 7 deg pitch seen at 24 mm, which a linear reading scatters out of the agreement band)."""
    out = np.repeat(angles[None, :].astype(np.float64), slopes.size, axis=0)
    moving = slopes != 0.0
    if moving.any():
        d = -180.0 / (np.pi * slopes[moving])[:, None]
        meet = x[None, :] + (d + y[None, :]) * np.tan(np.radians(angles))[None, :]
        out[moving] = np.degrees(np.arctan(meet / d))
    return out


def _densities(angles: np.ndarray, length: np.ndarray, x: np.ndarray, y: np.ndarray, slopes: np.ndarray,
               grid: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each slope, the segments' readings (:func:`_through`), their length's histogram over ``grid`` and its
    density (the histogram smoothed by :data:`_MODE_BANDWIDTH_DEG`): (slopes, segments), (slopes, grid) twice."""
    read = _through(angles, x, y, slopes)
    bins = np.round((read - grid[0]) / step).astype(int)
    inside = (bins >= 0) & (bins < grid.size)
    flat = (np.arange(slopes.size)[:, None] * grid.size + np.clip(bins, 0, grid.size - 1))[inside]
    hists = np.bincount(flat, weights=np.broadcast_to(length, read.shape)[inside],
                        minlength=slopes.size * grid.size).reshape(slopes.size, grid.size)
    sigma = _MODE_BANDWIDTH_DEG / step
    taps = 2 * int(4 * sigma) + 1
    density = cv2.GaussianBlur(hists, (taps, 1), sigmaX=sigma, sigmaY=0.1, borderType=cv2.BORDER_CONSTANT)
    return read, hists, density


def _mean_shift(angles: np.ndarray, length: np.ndarray, tilt: float) -> float:
    """The reading refined from the density's peak: the mean of the segments that agree with it, the long
    ones counting most (a segment's angle is good to its endpoints' error over its length)."""
    for _ in range(3):
        near = np.abs(angles - tilt) <= AGREEMENT_DEG
        tilt = float(np.average(angles[near], weights=length[near] ** 2))
    return tilt


def _stability(angles: np.ndarray, length: np.ndarray, tilt: float, grid: np.ndarray, step: float) -> float:
    """The share of readings of resampled segment sets that land within :data:`STABLE_DEG` of ``tilt``.

    Each resample weighs every segment by a Poisson(1) count (the bootstrap), and is read as the family is
    (the density's peak, then the mean shift; converging lines at the slope already found). A horizon and
    its shore, a row of shelves, read the same whichever segments are drawn; a reading that rests on one
    line, or that a rival direction nearly matches, jumps when that line or a few of the rival's segments
    are drawn more or less often."""
    rng = np.random.default_rng(0)  # the same draws for every picture: a measurement, not a sample
    weights = rng.poisson(1.0, (_RESAMPLES, angles.size)) * length[None, :]
    # The density's peak only seeds the mean shift (whose window is AGREEMENT_DEG wide): a coarser grid finds it
    # as well at a fifth of the cost.
    grid, step = grid[::_RESAMPLE_COARSER], step * _RESAMPLE_COARSER
    sigma = _MODE_BANDWIDTH_DEG / step
    taps = 2 * int(4 * sigma) + 1
    bins = np.round((angles - grid[0]) / step).astype(int)
    inside = (bins >= 0) & (bins < grid.size)
    flat = (np.arange(_RESAMPLES)[:, None] * grid.size + bins[None, inside]).ravel()
    hists = np.bincount(flat, weights=weights[:, inside].ravel(), minlength=_RESAMPLES * grid.size
                        ).reshape(_RESAMPLES, grid.size)
    density = cv2.GaussianBlur(hists, (taps, 1), sigmaX=sigma, sigmaY=0.1, borderType=cv2.BORDER_CONSTANT)
    read = grid[np.argmax(density, axis=1)]
    for _ in range(3):
        near = (np.abs(angles[None, :] - read[:, None]) <= AGREEMENT_DEG) * weights * length[None, :]
        total = near.sum(axis=1)
        read = np.where(total > 0, (near * angles[None, :]).sum(axis=1) / np.maximum(total, 1e-12), read)
    return float(np.mean(np.abs(read - tilt) <= STABLE_DEG))


def line_measure(luma: np.ndarray, undistorted: bool = False) -> LineMeasure:
    """The record's lines group from the proxy's linear luminance (see :func:`line_tilts`); ``undistorted``: that
    luminance has its lens's distortion undone (recorded as ``lines_undistorted``)."""
    tilts = line_tilts(luma)
    return LineMeasure(
        horizon_tilt_deg=tilts.horizon_tilt_deg,
        verticals_tilt_deg=tilts.verticals_tilt_deg,
        lines_found=tilts.lines_found,
        horizon_support=tilts.horizon_support,
        horizon_agreement=tilts.horizon_agreement,
        verticals_support=tilts.verticals_support,
        verticals_agreement=tilts.verticals_agreement,
        horizon_lines=tilts.horizon_lines,
        verticals_lines=tilts.verticals_lines,
        horizon_rival=tilts.horizon_rival,
        verticals_rival=tilts.verticals_rival,
        horizon_stability=tilts.horizon_stability,
        verticals_stability=tilts.verticals_stability,
        verticals_convergence=tilts.verticals_convergence,
        verticals_convergence_stability=tilts.verticals_convergence_stability,
        verticals_one_sided=tilts.verticals_one_sided,
        lines_undistorted=undistorted,
    )
