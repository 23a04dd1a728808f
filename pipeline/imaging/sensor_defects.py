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
"""

from __future__ import annotations

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
_RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.uint8)


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


def _median9(plane: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Median of the 3x3 block (the photosite and its 8 same-colour neighbours) at given positions."""
    h, w = plane.shape
    stack = [
        plane[np.clip(rows + dr, 0, h - 1), np.clip(cols + dc, 0, w - 1)] for dr in (-1, 0, 1) for dc in (-1, 0, 1)
    ]
    return np.median(np.stack(stack), axis=0)


def _noise_model(plane: np.ndarray, black: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Noise sigma against signal level: robust spread of (photosite - 3x3 median) in brightness bins.

    ``plane`` holds raw values; levels and sigmas come out as fractions of the range.
    """
    h, w = plane.shape
    step = max(1, int(np.ceil(np.sqrt(plane.size / 100_000))))  # a regular subset is plenty for 16 bins
    rows, cols = np.mgrid[1 : h - 1 : step, 1 : w - 1 : step]
    rows, cols = rows.ravel(), cols.ravel()
    level = (_median9(plane, rows, cols).astype(np.float64) - black) * scale
    resid = (plane[rows, cols].astype(np.float64) - black) * scale - level
    order = np.argsort(level, kind="stable")
    centres, sigmas = [], []
    # Fewer bins on small sensors: each needs a few hundred photosites for a stable spread.
    for chunk in np.array_split(order, max(1, min(_NOISE_BINS, order.size // 300))):
        if chunk.size < 30:
            continue
        r = resid[chunk]
        # MAD of the residual to the 3x3 median; 1.4826 makes it a standard deviation for
        # Gaussian noise, and the median of 9 samples shrinks the residual a little (x1.1).
        sigmas.append(1.4826 * 1.1 * float(np.median(np.abs(r - np.median(r)))))
        centres.append(float(np.median(level[chunk])))
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
        for dx in (0, 1):
            colour = int(pattern[dy, dx])
            b = float(blacks[colour] if colour < blacks.size else blacks[0])
            if not white > b:
                raise ValueError(f"white level {white} must be above the black level {b}")
            found += _scan_plane(np.ascontiguousarray(cfa[dy::2, dx::2]), b, float(white), dy, dx, sigmas, min_excess)
    found.sort(key=lambda c: -c.sigmas)
    return PhotositeScan(
        sensor_width=width,
        sensor_height=height,
        candidates=tuple(found[:max_candidates]),
        truncated=len(found) > max_candidates,
    )


def _scan_plane(
    raw_plane: np.ndarray, black: float, white: float, dy: int, dx: int, sigmas: float, min_excess: float
) -> list[PhotositeCandidate]:
    """Candidates of one colour plane; works on the raw integers until the few candidates are known."""
    if raw_plane.dtype not in (np.uint8, np.uint16, np.float32):
        raw_plane = raw_plane.astype(np.float32)
    ring_max = cv2.dilate(raw_plane, _RING, borderType=cv2.BORDER_REFLECT)
    ring_min = cv2.erode(raw_plane, _RING, borderType=cv2.BORDER_REFLECT)
    gate = min_excess * (white - black)
    # Saturating differences: a cheap first gate on the raw values, no float copy of the sensor.
    bright = cv2.subtract(raw_plane, ring_max) > gate
    dark = cv2.subtract(ring_min, raw_plane) > gate
    if not (bright.any() or dark.any()):
        return []
    scale = 1.0 / (white - black)

    def norm(a: np.ndarray) -> np.ndarray:
        return (a.astype(np.float64) - black) * scale

    centres, noise = _noise_model(raw_plane, black, scale)
    out: list[PhotositeCandidate] = []
    for deviation, hits, nearest in (
        (PhotositeDeviation.BRIGHT, bright, ring_max),
        (PhotositeDeviation.DARK, dark, ring_min),
    ):
        rows, cols = np.nonzero(hits)
        if rows.size == 0:
            continue
        value = norm(raw_plane[rows, cols])
        excess = np.abs(value - norm(nearest[rows, cols]))
        level = norm(_median9(raw_plane, rows, cols))
        score = excess / np.interp(level, centres, noise)
        keep = score >= sigmas
        for r, c, v, s, m in zip(rows[keep], cols[keep], value[keep], score[keep], level[keep]):
            out.append(
                PhotositeCandidate(
                    row=int(r) * 2 + dy,
                    col=int(c) * 2 + dx,
                    deviation=deviation,
                    value=float(v),
                    neighbours=_ring_median(raw_plane, int(r), int(c), black, scale),
                    sigmas=float(s),
                )
            )
    return out


def _ring_median(plane: np.ndarray, r: int, c: int, black: float, scale: float) -> float:
    h, w = plane.shape
    rows = [min(max(r + d, 0), h - 1) for d in (-1, -1, -1, 0, 0, 1, 1, 1)]
    cols = [min(max(c + d, 0), w - 1) for d in (-1, 0, 1, -1, 1, -1, 0, 1)]
    return float((np.median(plane[rows, cols].astype(np.float64)) - black) * scale)


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
