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
(about 0.05 CPU-seconds per 6 MP frame, see ``benchmarks/EQUIPMENT.md``): per
colour plane, OpenCV's dilation and erosion by the ring of eight neighbours
(the brightest and the darkest of them) are the only passes over the whole
sensor, and only the few photosites beyond them have their neighbours read
(and the plane its 3x3 median, for the noise model). Scanning a sample of frames instead would make a
body's finding wait for :data:`pipeline.equipment.findings.PHOTOSITE_MIN_FRAMES`
*scanned* frames, so a small shoot would rarely prove a defect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

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
_RING_KERNEL = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.uint8)


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


def _noise_model(plane: np.ndarray, median: np.ndarray, black: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Noise sigma against signal level: robust spread of (photosite - 3x3 median) in brightness bins.

    ``plane`` holds raw values and ``median`` its 3x3 median; levels and sigmas come out as
    fractions of the range.
    """
    h, w = plane.shape
    step = max(1, int(np.ceil(np.sqrt(plane.size / 100_000))))  # a regular subset is plenty for 16 bins
    med = median[1 : h - 1 : step, 1 : w - 1 : step].ravel()
    level = (med.astype(np.float64) - black) * scale
    resid = (plane[1 : h - 1 : step, 1 : w - 1 : step].ravel().astype(np.float64) - black) * scale - level
    # The raw medians sort as their levels do; a stable sort of 16-bit integers is a radix sort.
    order = np.argsort(med, kind="stable")
    centres, sigmas = [], []
    # Fewer bins on small sensors: each needs a few hundred photosites for a stable spread.
    for chunk in np.array_split(order, max(1, min(_NOISE_BINS, order.size // 300))):
        if chunk.size < 30:
            continue
        r = resid[chunk]
        # MAD of the residual to the 3x3 median; 1.4826 makes it a standard deviation for
        # Gaussian noise, and the median of 9 samples shrinks the residual a little (x1.1).
        sigmas.append(1.4826 * 1.1 * float(np.median(np.abs(r - np.median(r)))))
        # The chunk runs in order of level: its median is its middle (np.median's value, no partition).
        centres.append(float(np.mean(level[chunk[[(chunk.size - 1) // 2, chunk.size // 2]]])))
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
        2x2, or ``white`` is not above the black level.
    """
    cfa = np.asarray(cfa)
    pattern = np.asarray(pattern)
    if cfa.ndim != 2 or min(cfa.shape) < 6:
        raise ValueError(f"cfa must be a 2-D array of at least 6x6 photosites, got shape {cfa.shape}")
    if pattern.shape != (2, 2):
        raise ValueError(f"pattern must be the 2x2 Bayer block, got shape {pattern.shape}")
    blacks = np.asarray(black, dtype=np.float64).reshape(-1)
    if blacks.size == 0:
        raise ValueError("black level is empty: give one value or one per colour index")
    height, width = cfa.shape
    found: list[PhotositeCandidate] = []
    for dy in (0, 1):
        for dx, plane in enumerate(_colour_planes(cfa, dy)):
            colour = int(pattern[dy, dx])
            b = float(blacks[colour] if colour < blacks.size else blacks[0])
            if not white > b:
                raise ValueError(f"white level {white} must be above the black level {b}")
            found += _scan_plane(plane, b, float(white), dy, dx, sigmas, min_excess)
    found.sort(key=lambda c: -c.sigmas)
    return PhotositeScan(
        sensor_width=width,
        sensor_height=height,
        candidates=tuple(found[:max_candidates]),
        truncated=len(found) > max_candidates,
    )


def _colour_planes(cfa: np.ndarray, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """The two colour planes of the mosaic's rows ``dy``, ``dy + 2``, ...: columns 0, 2, ... and 1, 3, ..., contiguous.

    A row of photosites is a row of (even, odd) pairs: OpenCV splits the two
    channels in one SIMD pass, where numpy's copy of a strided column slice
    takes three times as long (18 ms a plane at 24 MP).
    """
    rows = cfa[dy::2]
    if rows.dtype in (np.uint8, np.uint16, np.float32) and rows.shape[1] % 2 == 0:
        even, odd = cv2.split(rows.reshape(rows.shape[0], -1, 2))
        return even, odd
    return np.ascontiguousarray(rows[:, 0::2]), np.ascontiguousarray(rows[:, 1::2])


def _beyond_neighbours(plane: np.ndarray, gate: float) -> np.ndarray:
    """Flat indices of the photosites of a colour plane more than ``gate`` above or below all 8 neighbours.

    A superset (by a hair, for float planes) that :func:`_scan_plane` holds
    to the exact test: the brightest and the darkest of every photosite's 8
    neighbours are one dilation and one erosion by the ring, with the border
    replicated as :func:`_ring` clamps (so a photosite on the plane's edge,
    one of its own neighbours there, is never beyond them).
    """
    excess = cv2.dilate(plane, _RING_KERNEL, borderType=cv2.BORDER_REPLICATE)
    deficit = cv2.erode(plane, _RING_KERNEL, borderType=cv2.BORDER_REPLICATE)
    # In place (two plane-sized buffers, not five); saturating for integer planes: a photosite
    # below its brightest neighbour gives 0, not a wrap-around.
    cv2.subtract(plane, excess, dst=excess)
    cv2.subtract(deficit, plane, dst=deficit)
    cv2.max(excess, deficit, dst=excess)
    # A whole number beats the gate exactly when it beats the gate's floor; a float plane's
    # differences are rounded to float32, so those are held to a hair less than the gate.
    level = math.floor(gate) if plane.dtype.kind == "u" else gate * (1.0 - 1e-6)
    return np.flatnonzero(excess > level)


def _ring(plane: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The 8 same-colour neighbours of given photosites of a colour plane, (8, N), in the plane's type.

    Positions beyond the plane's edge are mirrored onto its edge row or column
    (for a photosite on the edge, itself), as OpenCV's replicated border does:
    the indices are clamped, so no bordered copy of the plane is made.
    """
    h, w = plane.shape
    flat = plane.ravel()
    row_of = {-1: np.maximum(rows - 1, 0) * w, 0: rows * w, 1: np.minimum(rows + 1, h - 1) * w}
    col_of = {-1: np.maximum(cols - 1, 0), 0: cols, 1: np.minimum(cols + 1, w - 1)}
    return np.stack([flat[row_of[dr] + col_of[dc]] for dr, dc in _RING_OFFSETS])


def _scan_plane(
    raw_plane: np.ndarray, black: float, white: float, dy: int, dx: int, sigmas: float, min_excess: float
) -> list[PhotositeCandidate]:
    """Candidates of one colour plane; works on the raw integers until the few candidates are known.

    The passes over the whole plane are OpenCV's (SIMD): the extremes of the
    8 neighbours of every photosite (:func:`_beyond_neighbours`), and, only on
    a plane where some photosite is beyond them, the 3x3 median the noise
    model needs. The few photosites beyond the gate are the only ones whose
    neighbours are read again, for the exact test and their scores.
    """
    if raw_plane.dtype not in (np.uint8, np.uint16, np.float32):
        raw_plane = raw_plane.astype(np.float32)
    gate = min_excess * (white - black)
    flat_index = _beyond_neighbours(raw_plane, gate)
    if flat_index.size == 0:
        return []
    rows, cols = np.divmod(flat_index, raw_plane.shape[1])
    value_raw = raw_plane.ravel()[flat_index].astype(np.float64)
    ring = _ring(raw_plane, rows, cols)
    ring_max = ring.max(axis=0).astype(np.float64)
    ring_min = ring.min(axis=0).astype(np.float64)
    bright = value_raw - ring_max > gate
    dark = ring_min - value_raw > gate
    if not (bright.any() or dark.any()):
        return []
    scale = 1.0 / (white - black)
    median = cv2.medianBlur(raw_plane, 3)  # borders replicated: the clipped 3x3 block
    centres, noise = _noise_model(raw_plane, median, black, scale)
    out: list[PhotositeCandidate] = []
    for deviation, hits, nearest in (
        (PhotositeDeviation.BRIGHT, bright, ring_max),
        (PhotositeDeviation.DARK, dark, ring_min),
    ):
        if not hits.any():
            continue
        value = (value_raw[hits] - black) * scale
        excess = np.abs(value - (nearest[hits] - black) * scale)
        level = (median.ravel()[flat_index[hits]].astype(np.float64) - black) * scale
        score = excess / np.interp(level, centres, noise)
        keep = score >= sigmas
        ring_median = (np.median(ring[:, hits][:, keep].astype(np.float64), axis=0) - black) * scale
        for r, c, v, s, m in zip(rows[hits][keep], cols[hits][keep], value[keep], score[keep], ring_median):
            out.append(
                PhotositeCandidate(
                    row=int(r) * 2 + dy,
                    col=int(c) * 2 + dx,
                    deviation=deviation,
                    value=float(v),
                    neighbours=float(m),
                    sigmas=float(s),
                )
            )
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
