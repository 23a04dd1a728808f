"""Hot, dead and stuck photosites, read from the RAW data itself.

A defective photosite is one value, on one photosite, that has nothing to do
with the light around it. Demosaicing smears it over its neighbours and
half-size decoding averages it with three others, so it is looked for in the
colour filter array before any of that: every photosite is compared with its
eight nearest neighbours *of the same colour* (two photosites away on a Bayer
sensor). Per frame this finds candidates; the same photosite turning up in
frame after frame while the scene changes is what makes a defect (see
:mod:`pipeline.equipment.findings`). Scene detail cannot do that: lens blur
and the anti-aliasing filter spread every real point of light over several
photosites, and what is left (a specular glint, a cosmic-ray hit) does not
stay on one photosite across different pictures.

The test, per photosite, on the signal above black as a fraction of the
sensor's range:

* *too bright* (a hot photosite): ``value - max(8 neighbours)`` is more than
  :data:`OUTLIER_SIGMAS` noise standard deviations;
* *too dark* (a dead one): ``min(8 neighbours) - value`` is.

Comparing with the extreme of the neighbours, not their average, keeps edges
and fine texture out: at an edge some neighbours are as bright as the
photosite. The noise is measured on the frame itself (the spread of every
photosite around the median of its neighbours, by brightness), so a high-ISO
frame needs a larger excess than a base-ISO one. For pure noise the chance of
beating the largest of eight neighbours by 7 standard deviations is about
1e-12: no false candidate on any sensor made.

Every frame of a RAW shoot is scanned, because the scan is cheap enough to
(about 0.05 CPU-seconds per 6 MP frame, see ``benchmarks/EQUIPMENT.md``; 0.09
per 24 MP frame): OpenCV's dilation and erosion of the mosaic by the ring of
same-colour neighbours (the brightest and the darkest of them) are the only
passes over the whole sensor, and only the few photosites beyond them have
their neighbours read again (the noise model reads a regular subset of each
colour plane). Scanning a sample of frames instead would make a body's
finding wait for :data:`pipeline.equipment.findings.PHOTOSITE_MIN_FRAMES`
*scanned* frames, so a small shoot would rarely prove a defect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import cv2
import numpy as np

#: Excess over the brightest (or deficit under the darkest) same-colour neighbour,
#: in noise standard deviations, for a photosite to be a candidate in one frame.
OUTLIER_SIGMAS = 7.0
#: ... and never less than this fraction of the sensor's range (quantisation, banding).
MIN_EXCESS = 0.02
#: At most this many candidates per frame (the strongest): keeps the record small
#: on a frame full of glints; a defect is strong in most frames and stays in.
MAX_CANDIDATES = 500
_NOISE_BINS = 16
# The 8 same-colour neighbours, as a ring in a colour plane (centre excluded).
_RING_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
# ... and in the mosaic, where they are 2 photosites away.
_RING_KERNEL = np.array([[1, 0, 1, 0, 1], [0] * 5, [1, 0, 0, 0, 1], [0] * 5, [1, 0, 1, 0, 1]], np.uint8)
_PLANES = ((0, 0), (0, 1), (1, 0), (1, 1))
# Devillard's median-of-9 network (opt_med9): after these compare-exchanges, the 5th is the median.
_MEDIAN9_EXCHANGES = (
    (1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
    (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2),
)  # fmt: skip
#: Rows of the mosaic whose neighbours' extremes are taken at once (bounded memory on a 100 MP sensor).
_BAND_ROWS = 256


class PhotositeDeviation(StrEnum):
    """Which way a photosite departs from its neighbours in one frame."""

    BRIGHT = "bright"  # above every neighbour: hot (or stuck high)
    DARK = "dark"  # below every neighbour: dead (or stuck low)


@dataclass(frozen=True)
class PhotositeCandidate:
    """One photosite far from its same-colour neighbours in one frame.

    Attributes
    ----------
    row, col : int
        Position in the visible sensor area, in the sensor's own orientation
        (``raw_image_visible``): the same photosite has the same position in
        every frame, whichever way the camera was held.
    deviation : PhotositeDeviation
    value : float
        Its signal above black, as a fraction of the sensor's range (0 black, 1 white).
    neighbours : float
        Median of its eight same-colour neighbours, same units.
    sigmas : float
        How far beyond the nearest-valued neighbour, in noise standard deviations.
    """

    row: int
    col: int
    deviation: PhotositeDeviation
    value: float
    neighbours: float
    sigmas: float


@dataclass(frozen=True)
class PhotositeScan:
    """The photosite candidates of one frame.

    Attributes
    ----------
    sensor_width, sensor_height : int
        Size of the visible sensor area (positions are fractions of these).
    candidates : tuple of PhotositeCandidate
        Strongest first, at most :data:`MAX_CANDIDATES`.
    truncated : bool
        More candidates than that were found (a frame full of glints).
    skipped : str or None
        Why the frame could not be scanned (a sensor that is not a 2x2 Bayer
        mosaic: X-Trans, Foveon, linear DNG); candidates are then empty.
    """

    sensor_width: int
    sensor_height: int
    candidates: tuple[PhotositeCandidate, ...] = ()
    truncated: bool = False
    skipped: str | None = None


def _noise_model(plane: np.ndarray, black: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Noise sigma against signal level: robust spread of (photosite - 3x3 median) in brightness bins.

    ``plane`` holds raw values (a colour plane, a view of the mosaic is fine); levels and sigmas
    come out as fractions of the range.
    """
    h, w = plane.shape
    step = max(1, int(np.ceil(np.sqrt(plane.size / 100_000))))  # a regular subset is plenty for 16 bins
    rows, cols = slice(1, h - 1, step), slice(1, w - 1, step)
    med = _median3x3(plane, rows, cols).ravel()
    level = (med.astype(np.float64) - black) * scale
    resid = (plane[rows, cols].ravel().astype(np.float64) - black) * scale - level
    # The raw medians sort as their levels do; a stable sort of 16-bit integers is a radix sort.
    order = np.argsort(med, kind="stable")
    centres, sigmas = [], []
    # Fewer bins on small sensors: each needs a few hundred photosites for a stable spread.
    bins = max(1, min(_NOISE_BINS, order.size // 300))
    # np.array_split's bins: the first (size % bins) one photosite longer than the rest. Bins of one
    # length are the rows of one array, whose medians along the rows are np.median's of each row.
    size, longer = divmod(order.size, bins)
    start = 0
    for count, length in ((longer, size + 1), (bins - longer, size)):
        chunks = order[start : start + count * length].reshape(count, length)
        start += count * length
        if count == 0 or length < 30:
            continue
        r = resid[chunks]
        # MAD of the residual to the 3x3 median; 1.4826 makes it a standard deviation for
        # Gaussian noise, and the median of 9 samples shrinks the residual a little (x1.1).
        spread = np.median(np.abs(r - np.median(r, axis=1)[:, None]), axis=1)
        sigmas += [1.4826 * 1.1 * float(v) for v in spread]
        # A bin runs in order of level: its median is its middle (np.median's value, no partition).
        middle = level[chunks[:, [(length - 1) // 2, length // 2]]]
        centres += [float(np.mean(pair)) for pair in middle]
    if not centres:
        return np.array([0.0, 1.0]), np.array([1e-3, 1e-3])
    # Noise grows with the signal: keep the curve non-decreasing, so texture in one
    # bin cannot make a brighter bin look quieter than a darker one.
    return np.asarray(centres), np.maximum.accumulate(np.maximum(np.asarray(sigmas), 1e-4))


def find_photosite_outliers(
    cfa: np.ndarray,
    pattern: np.ndarray,
    black: np.ndarray | float,
    white: float,
    *,
    sigmas: float = OUTLIER_SIGMAS,
    min_excess: float = MIN_EXCESS,
    max_candidates: int = MAX_CANDIDATES,
) -> PhotositeScan:
    """Photosites far brighter or darker than all their same-colour neighbours.

    Parameters
    ----------
    cfa : ndarray, (H, W), integer or float
        The raw photosite values of the visible area, black level included
        (rawpy's ``raw_image_visible``).
    pattern : ndarray, (2, 2), int
        Colour index of each position of the 2x2 filter block (rawpy's
        ``raw_pattern``); only its shape and layout are used: each of the four
        positions is compared within its own plane.
    black : float or ndarray (4,)
        Black level, one value or one per colour index (rawpy's
        ``black_level_per_channel``).
    white : float
        Raw value at which the sensor saturates (rawpy's ``white_level``).
    sigmas : float
        Required excess over the nearest-valued neighbour, in noise standard deviations.
    min_excess : float
        Required excess as a fraction of the sensor's range, at least.
    max_candidates : int
        Keep at most this many, the strongest.

    Returns
    -------
    PhotositeScan

    Raises
    ------
    ValueError
        If ``cfa`` is not 2-D with at least 6x6 photosites, ``pattern`` is not
        2x2, ``min_excess`` is negative, or ``white`` is not above the black level.
    """
    cfa = np.asarray(cfa)
    pattern = np.asarray(pattern)
    if cfa.ndim != 2 or min(cfa.shape) < 6:
        raise ValueError(f"cfa must be a 2-D array of at least 6x6 photosites, got shape {cfa.shape}")
    if pattern.shape != (2, 2):
        raise ValueError(f"pattern must be the 2x2 Bayer block, got shape {pattern.shape}")
    if not min_excess >= 0:
        raise ValueError(f"min_excess must be a fraction of the range >= 0, got {min_excess}")
    blacks = np.asarray(black, dtype=np.float64).reshape(-1)
    if blacks.size == 0:
        raise ValueError("black level is empty: give one value or one per colour index")
    plane_blacks = {}
    for dy, dx in _PLANES:
        colour = int(pattern[dy, dx])
        b = float(blacks[colour] if colour < blacks.size else blacks[0])
        if not white > b:
            raise ValueError(f"white level {white} must be above the black level {b}")
        plane_blacks[dy, dx] = b
    if cfa.dtype not in (np.uint8, np.uint16, np.float32):
        cfa = cfa.astype(np.float32)
    height, width = cfa.shape
    # One gate for the whole mosaic, the lowest of the planes' (black levels differ by colour):
    # each plane then holds its few photosites to its own.
    rows, cols = _beyond_neighbours(cfa, min(min_excess * (white - b) for b in plane_blacks.values()))
    found: list[_Found] = []
    for (dy, dx), b in plane_blacks.items():
        mine = (rows % 2 == dy) & (cols % 2 == dx)
        if mine.any():
            plane = cfa[dy::2, dx::2]  # a view: the plane is never copied
            found += _scan_plane(plane, rows[mine] // 2, cols[mine] // 2, b, float(white), dy, dx, sigmas, min_excess)
    # Strongest first (a stable sort: equal scores keep the planes' order), and only the kept ones
    # become records: a frame full of glints finds tens of thousands (24 MP DNGs of the benchmark:
    # up to 28,000), and making each a candidate to keep 500 cost 0.1 s of its scan.
    total = sum(f.sigmas.size for f in found)
    kept: tuple[PhotositeCandidate, ...] = ()
    if total:
        row, col, dark, value, neighbours, score = (np.concatenate([getattr(f, k) for f in found])
                                                    for k in _Found._fields)
        top = np.argsort(-score, kind="stable")[:max_candidates]
        kept = tuple(
            PhotositeCandidate(row=int(row[i]), col=int(col[i]),
                               deviation=PhotositeDeviation.DARK if dark[i] else PhotositeDeviation.BRIGHT,
                               value=float(value[i]), neighbours=float(neighbours[i]), sigmas=float(score[i]))
            for i in top.tolist()
        )
    return PhotositeScan(
        sensor_width=width,
        sensor_height=height,
        candidates=kept,
        truncated=total > max_candidates,
    )


class _Found(NamedTuple):
    """One plane's candidates of one deviation, as arrays (sensor rows and columns; ``dark``: a dead one)."""

    row: np.ndarray
    col: np.ndarray
    dark: np.ndarray
    value: np.ndarray
    neighbours: np.ndarray
    sigmas: np.ndarray


def _beyond_neighbours(cfa: np.ndarray, gate: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the mosaic's photosites more than ``gate`` above or below all 8 same-colour neighbours.

    A superset (by a hair, for float data) that :func:`_scan_plane` holds to
    the exact test. The brightest and the darkest of every photosite's 8
    neighbours (2 photosites away) are one dilation and one erosion of the
    mosaic by that ring, a band of rows at a time (memory stays small on a
    100 MP sensor). Only photosites 2 or more from every edge can be beyond
    them by a ``gate`` >= 0: on the edge of its colour plane a photosite is
    one of its own neighbours (:func:`_ring` clamps, as a replicated border does).
    """
    height, width = cfa.shape
    # A whole number beats the gate exactly when it beats the gate's floor; float data's
    # differences are rounded to float32, so those are held to a hair less than the gate.
    level = math.floor(gate) if cfa.dtype.kind == "u" else gate * (1.0 - 1e-6)
    rows, cols = [], []
    for top in range(2, height - 2, _BAND_ROWS):
        bottom = min(top + _BAND_ROWS, height - 2)
        band = cfa[top - 2 : bottom + 2]
        excess = cv2.dilate(band, _RING_KERNEL)  # the band's own border rows and columns are cut below
        deficit = cv2.erode(band, _RING_KERNEL)
        # Saturating for integer data: a photosite below its brightest neighbour gives 0, not a wrap-around.
        cv2.subtract(band, excess, dst=excess)
        cv2.subtract(deficit, band, dst=deficit)
        cv2.max(excess, deficit, dst=excess)
        r, c = np.divmod(np.flatnonzero(excess[2:-2, 2:-2] > level), width - 4)
        rows.append(r + top)
        cols.append(c + 2)
    return np.concatenate(rows), np.concatenate(cols)


def _ring(plane: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The 8 same-colour neighbours of given photosites of a colour plane, (8, N), in the plane's type.

    Positions beyond the plane's edge are mirrored onto its edge row or column
    (for a photosite on the edge, itself), as OpenCV's replicated border does:
    the indices are clamped, so no bordered copy of the plane is made.
    """
    h, w = plane.shape
    row_of = {-1: np.maximum(rows - 1, 0), 0: rows, 1: np.minimum(rows + 1, h - 1)}
    col_of = {-1: np.maximum(cols - 1, 0), 0: cols, 1: np.minimum(cols + 1, w - 1)}
    return np.stack([plane[row_of[dr], col_of[dc]] for dr, dc in _RING_OFFSETS])


def _median3x3(plane: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """The median of each photosite's 3x3 block of its colour plane, at ``plane[rows, cols]``, in its type.

    The slices must keep one photosite from the plane's edges (start >= 1,
    stop <= size - 1): the nine blocks are then shifted views of the plane.
    """
    def shifted(s: slice, by: int) -> slice:
        return slice(s.start + by, s.stop + by, s.step)

    p = [plane[shifted(rows, dr), shifted(cols, dc)] for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
    # The 19 exchanges that leave the middle value in p[4], as OpenCV's 3x3 median does: elementwise
    # minima and maxima of whole arrays, where np.median or np.partition would sort nine values at a time.
    for i, j in _MEDIAN9_EXCHANGES:
        p[i], p[j] = np.minimum(p[i], p[j]), np.maximum(p[i], p[j])
    return p[4]


def _scan_plane(
    plane: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    black: float,
    white: float,
    dy: int,
    dx: int,
    sigmas: float,
    min_excess: float,
) -> list[_Found]:
    """Candidates of one colour plane among the photosites at ``rows``, ``cols`` (of the plane), bright ones
    first, each group in the order of ``rows``.

    Works on the raw values: the photosites :func:`_beyond_neighbours` found
    are the only ones whose neighbours are read, held to this plane's gate
    exactly, and scored against the plane's noise.
    """
    gate = min_excess * (white - black)
    value_raw = plane[rows, cols].astype(np.float64)
    ring = _ring(plane, rows, cols)
    ring_max = ring.max(axis=0).astype(np.float64)
    ring_min = ring.min(axis=0).astype(np.float64)
    bright = value_raw - ring_max > gate
    dark = ring_min - value_raw > gate
    if not (bright.any() or dark.any()):
        return []
    scale = 1.0 / (white - black)
    centres, noise = _noise_model(plane, black, scale)
    out: list[_Found] = []
    for deviation, hits, nearest in (
        (PhotositeDeviation.BRIGHT, bright, ring_max),
        (PhotositeDeviation.DARK, dark, ring_min),
    ):
        if not hits.any():
            continue
        value = (value_raw[hits] - black) * scale
        excess = np.abs(value - (nearest[hits] - black) * scale)
        # The 3x3 median of each: its ring and itself (never on the plane's edge, so no clamped repeat).
        block = np.concatenate([ring[:, hits], plane[rows[hits], cols[hits]][None]])
        level = (np.median(block.astype(np.float64), axis=0) - black) * scale
        score = excess / np.interp(level, centres, noise)
        keep = score >= sigmas
        ring_median = (np.median(ring[:, hits][:, keep].astype(np.float64), axis=0) - black) * scale
        if keep.any():
            out.append(_Found(rows[hits][keep].astype(np.int64) * 2 + dy, cols[hits][keep].astype(np.int64) * 2 + dx,
                              np.full(int(keep.sum()), deviation is PhotositeDeviation.DARK), value[keep],
                              ring_median, score[keep]))
    return out


def scan_raw(raw: object, **kwargs: float) -> PhotositeScan:
    """:func:`find_photosite_outliers` on an open ``rawpy.RawPy`` (unpacked, not postprocessed).

    Sensors that are not a 2x2 Bayer mosaic (Fujifilm X-Trans, Foveon,
    4-colour CMYG, linear DNGs) give a scan with ``skipped`` set, not an error:
    the rest of the frame's analysis goes on.
    """
    import rawpy

    sizes = raw.sizes  # type: ignore[attr-defined]
    width, height = int(sizes.width), int(sizes.height)
    pattern = raw.raw_pattern  # type: ignore[attr-defined]
    if raw.raw_type != rawpy.RawType.Flat or pattern is None or np.asarray(pattern).shape != (2, 2):  # type: ignore[attr-defined]
        layout = "no colour filter mosaic" if pattern is None else f"a {np.asarray(pattern).shape} filter pattern"
        return PhotositeScan(width, height, skipped=f"{layout}: only 2x2 Bayer sensors are scanned for defects")
    if raw.num_colors not in (3, 4) or len(set(np.asarray(pattern).ravel().tolist())) < 3:  # type: ignore[attr-defined]
        return PhotositeScan(width, height, skipped="not an RGB Bayer sensor")
    return find_photosite_outliers(
        raw.raw_image_visible,  # type: ignore[attr-defined]
        pattern,
        np.asarray(raw.black_level_per_channel, dtype=np.float64),  # type: ignore[attr-defined]
        float(raw.white_level),  # type: ignore[attr-defined]
        **kwargs,
    )
