"""Focus misses: is the frame's main subject sharp, and if not, where is the focus?

Sharpness measures such as the variance of the Laplacian say how much fine
detail a picture has, which depends on what was photographed as much as on
focus: a foggy field and a brick wall differ by 100x when both are sharp. This
module estimates the *blur itself*, in pixels, at the edges of the picture,
which does not depend on the edges' contrast (the re-blur gradient ratio of
Zhuo and Sim, "Defocus map estimation from a single image", 2011): an edge
blurred by a Gaussian of ``s`` px has, after smoothing with Gaussians of
``s1`` and ``s2`` px, gradient peaks in the ratio
``r = sqrt((s**2 + s2**2) / (s**2 + s1**2))``, so ``s`` follows from ``r``.

Per frame:

1. edges: Canny on the gamma-encoded luminance; at each edge pixel the blur
   ``s`` from the ratio (edges too weak for the frame's noise are left out);
2. the frame's *sharpest region*: the lowest blur (a low percentile, so a
   few sharp edges are enough) over a grid of regions;
3. the *subject's* blur: the same statistic inside the subject's box (the
   largest face, else the salient region of :func:`pipeline.imaging.measure.saliency_centre`).

A frame is a focus miss when

* its sharp part is blurred along one direction (camera shake: see
  :func:`frame_motion`), the shutter was long enough for a hand to shake
  it (:func:`shake_possible`; always, when EXIF does not say) and the main
  face, where one is judged, is dragged too (:func:`_drag_px`), or
* nothing in it is sharp (its sharp part blurs more than :data:`FRAME_SOFT_PX`), or
* its main face is softer than the frame's sharp part by a defocus of
  :data:`FACE_DEFOCUS_PX` or more (whatever its own blur: no floor on it).
  Blurs of independent causes add in quadrature (Gaussian blurs do), so the
  defocus the face has on top of what the frame's sharpest part has is
  ``sqrt(face**2 - sharp**2)``: a difference, not a ratio, so a frame whose
  sharpest part is itself a little soft (an enlarged photo, a small
  aperture's diffraction) still shows a face that focus missed.

Blurs are in pixels of a working copy of at most :data:`WORK_LONG_EDGE` px;
a soft-looking small image is not upscaled (low resolution is not a focus miss).

The thresholds were set on the tuning split of the generated corpus; the
held-out split is in ``benchmarks/EQUIPMENT.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.imaging.color import luminance, srgb_to_linear

#: Long edge of the working copy (px); smaller proxies are used as they are.
WORK_LONG_EDGE = 1536
#: The smallest side (px) focus is judged on: of the proxy, and of its copy at WORK_LONG_EDGE.
MIN_SIDE_PX = 32
#: Probe scales of the re-blur ratio (Gaussian sigma, px).
PROBE_FINE, PROBE_COARSE = 0.8, 2.4
#: Blur (Gaussian sigma, working px) above which the subject is soft. A face is judged by its
#: defocus on top of the frame's sharp part (:data:`FACE_DEFOCUS_PX`) alone; this floor only words
#: the verdicts ("sharp" or "a little soft") and sorts out the salient region of a frame without one.
SUBJECT_SOFT_PX = 1.6
#: ... and above which even the frame's sharp part is soft (nothing in focus). Set on the tuning
#: split, where sharp frames from the smallest photos (enlarged 1.5x) reach 1.66 and defocused
#: frames start at 1.95.
FRAME_SOFT_PX = 1.8
#: Camera shake: the motion blur across the drag, in the frame's sharper third of regions
#: (:func:`frame_motion`). Set at 1.25 on the regions' mean (tuning split, corpus v3: 7 shaken frames
#: 1.51-2.6, sharp ones at most 1.03) and kept when the median replaced the mean (one region's soft
#: shading made 3-3.5 px of "shake" in press portraits whose third sharpest region read 0.5 px): by the
#: median the three tuning splits' 30 shaken frames read 1.40-3.41, their sharp frames at a shutter too
#: slow for the EXIF to clear them at most 1.23 (1.15 would flag one more). Drags of 4, 6 and 8 px at six
#: angles in the accuracy benchmark's 24 tuning photos, recompressed: 55 / 101 / 134 of 144 found by the
#: mean, 50 / 91 / 130 by the median, 49 / 90 / 130 with the face's witness (`benchmarks/shake_fit.py`; the 4
#: and 6 px drags are 1.2-1.7 px across: at the threshold).
MOTION_MIN_PX = 1.25
#: ... and only when the blur's pattern over the four edge directions is a drag's (:func:`drag_misfit`) within this:
#: a drag of any direction widens the edges across it by the cosine of their angle, so the pooled squares of the
#: 0 and 90 degree classes add up to those of the 45 and 135 degree classes; an asymmetry of the picture's own
#: (soft shading that runs one way, the stripes of a facade, cables across a sky) does not. The estimate reads
#: the diagonals of a long drag low, so real drags misfit too: the three tuning splits' 30 shaken frames 0.03-0.64,
#: drags of 4, 6 and 8 px at six angles across the accuracy benchmark's 24 tuning photos up to 1.2. Chosen on
#: those: the least misfit that keeps the 6 px drags found without it within 5 % (98 of 102; 4 px drags 61 -> 53,
#: 8 px 136 -> 134 of 144; at 0.75 the 6 px drags fell to 94, the 4 px to 46). It takes back 2 of the 7 drags
#: read in those 24 photos as published, no EXIF to clear them (a frosted twig 1.05, skimage's rocket 0.94: its
#: median blur 2.7 px, 0.6 once recompressed).
#: Judged after, run through the pipeline on 187 published photos no constant saw (the held-out split 13 -> 11,
#: photoprism's examples 9 -> 5, 49 Wikimedia photos 5 -> 2, immich's test photos 2 -> 1, the Kodak suite 0):
#: 29 were reported shaken, 19 are; EQUIPMENT.md's nine splits (shaken and defocused frames found, sharp frames
#: flagged) are unchanged.
MOTION_MAX_MISFIT = 0.9
#: Camera shake is not reported for a shutter of this fraction of 1/focal length or shorter
#: (:func:`shake_possible`): the reciprocal rule, halved for sensors down to Four Thirds, whose focal
#: lengths EXIF gives as they are. Set from the rule, not fitted to any split.
SHAKE_RECIPROCAL = 0.5
#: Regions whose direction blurs are pooled for the motion: the sharper third of :data:`GRID`.
MOTION_REGIONS = 8
#: The focus missed the face when it has this much defocus (Gaussian sigma, working px) on top of
#: the frame's sharp part. Tuning split: missed faces 1.43-3.4 px, faces in sharp frames at most
#: 0.99, and 1.12 and 1.48 for a false face the detector found in out-of-focus foliage.
FACE_DEFOCUS_PX = 1.3
#: Percentile of the edge blurs taken as a region's blur: its sharper edges decide.
EDGE_PERCENTILE = 30
#: Regions of the frame searched for its sharpest part.
GRID = (6, 4)
#: Faces the focus is judged on: detector score and box width (fraction of the frame's width).
FACE_MIN_SCORE, FACE_MIN_WIDTH = 0.7, 0.03
#: Long edge (px) of a second look for the main face when the detector's first (at 1280 px) found none
#: sure enough: a back-focused face is blurred by a disc of 5-9 px of a 1500 px proxy, and YuNet scores
#: it 0.57-0.78 at 1280 px; at half the size the blur is half as wide and the same faces score
#: 0.71-0.87 (tuning splits). Half of the first look's size, not a fitted value.
FACE_SECOND_LOOK_LONG_EDGE = 640
#: The frame counts as sharp when this many of its regions are.
SHARP_REGIONS = 3
#: Fewer edge pixels than this in a region (or the subject) and it has no verdict.
MIN_EDGES = 40
_MAX_BLUR = 12.0
#: Pixel differences the noise of a frame is estimated from (rows of the frame, evenly spaced).
NOISE_SAMPLES = 400_000


@dataclass(frozen=True)
class FocusSubject:
    """The frame's main subject: a box in fractions 0-1 of the viewed frame.

    Attributes
    ----------
    x, y, width, height : float
    source : str
        ``"face"`` or ``"salient"``.
    """

    x: float
    y: float
    width: float
    height: float
    source: str = "face"

    @classmethod
    def from_face(cls, box: tuple[float, float, float, float], image_width: float, image_height: float) -> FocusSubject:
        """The largest face's box (pixels) grown by a third, to take in the hair and ears focus is judged on."""
        x, y, w, h = box
        cx, cy = x + w / 2, y + h / 2
        w, h = w * 1.35, h * 1.35
        return cls((cx - w / 2) / image_width, (cy - h / 2) / image_height, w / image_width, h / image_height, "face")

    @classmethod
    def main_face(
        cls, faces: list[tuple[tuple[float, float, float, float], float]], image_width: float, image_height: float
    ) -> FocusSubject | None:
        """The frame's main subject among detected faces ``[(box, score), ...]`` (boxes in pixels).

        The largest face the detector is sure of (score >= :data:`FACE_MIN_SCORE`)
        and large enough to judge (box width >= :data:`FACE_MIN_WIDTH` of the
        frame's width); None when there is none.
        """
        sure = [b for b, score in faces if score >= FACE_MIN_SCORE and b[2] >= FACE_MIN_WIDTH * image_width]
        if not sure:
            return None
        return cls.from_face(max(sure, key=lambda b: b[2] * b[3]), image_width, image_height)

    @classmethod
    def salient(cls, cx: float, cy: float, size: float = 0.3) -> FocusSubject:
        """A box of ``size`` of the frame around the salient region's centre (fractions)."""
        return cls(cx - size / 2, cy - size / 2, size, size, "salient")


@dataclass(frozen=True)
class FocusVerdict:
    """What :func:`assess_focus` found in one frame.

    Attributes
    ----------
    missed : bool
        The frame is a focus miss.
    subject_blur_px, sharpest_blur_px : float or None
        Estimated blur (Gaussian sigma, working px) of the subject and of the
        frame's sharpest region; None where there were too few edges.
    sharpest_x, sharpest_y : float or None
        Centre of the sharpest region (fractions of the viewed frame).
    work_long_edge : int
        Long edge of the working copy the blurs are measured in.
    subject : FocusSubject or None
        The subject judged.
    directional : bool
        The blur is much stronger across one direction than the other: motion
        (camera shake or a moving subject), not defocus.
    detail : str
        A sentence for people.
    """

    missed: bool
    subject_blur_px: float | None
    sharpest_blur_px: float | None
    sharpest_x: float | None
    sharpest_y: float | None
    work_long_edge: int
    subject: FocusSubject | None
    directional: bool
    detail: str


def _blur_from_ratio(ratio: np.ndarray) -> np.ndarray:
    r2 = np.maximum(ratio * ratio, 1.0 + 1e-6)
    s2 = (PROBE_COARSE**2 - r2 * PROBE_FINE**2) / (r2 - 1.0)
    return np.sqrt(np.clip(s2, 0.0, _MAX_BLUR**2))


def _gradients(gray: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    g = cv2.GaussianBlur(gray, (0, 0), sigma)
    return cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8.0, cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8.0


def _sobel_at(blurred: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_gradients` of an image already blurred, read at the flat indices ``at`` only.

    The Sobel responses are scaled to a slope per pixel at those values alone
    (the same float32 division as :func:`_gradients`, on a few percent of the frame).
    """
    return (cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3).ravel()[at] / 8.0,
            cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3).ravel()[at] / 8.0)


def _noise_gain(sigma: float) -> float:
    """Standard deviation of one gradient component at probe ``sigma`` for unit white noise."""
    noise = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    gx, _ = _gradients(noise, sigma)
    return float(gx[16:-16, 16:-16].std())


_GAIN_FINE, _GAIN_COARSE = _noise_gain(PROBE_FINE), _noise_gain(PROBE_COARSE)


def _noise(img: np.ndarray, step: int) -> float:
    """Robust spread (sigma) of one pixel's noise from the differences of neighbours on every ``step``-th row."""
    diff = img[::step, 1:] - img[::step, :-1]
    # Both medians partition the differences where they are (a median depends on the values, not their
    # order): the same figure without two copies of a frame's worth of samples.
    centre = np.median(diff, overwrite_input=True)
    np.subtract(diff, centre, out=diff)
    np.abs(diff, out=diff)
    return 1.4826 * float(np.median(diff, overwrite_input=True)) / math.sqrt(2.0)


def edge_blur(gray: np.ndarray, linear: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Blur estimates at the edges of a gamma-encoded grey image (values 0-1).

    Edges are found in the encoded image (where the eye sees them); the blur
    at each is measured in linear light (``linear``, else the encoded image
    decoded), where the lens blurred the scene and where the shadows are the
    least noisy part of the frame. In encoded values the sRGB curve multiplies
    the shadows' noise (its slope at 1 % of white is six times that at 20 %),
    so the frame's one noise figure, taken mostly from the mid-tones, left the
    shadows' noise in the fine probe and their edges read sharp: a defocused
    frame (a disc of 4.9 px) of dark towers against the sky read 1.3-1.5 px
    in its sharpest regions, 1.8-2.0 in light.

    The noise's share of each probe's gradient is taken out before the ratio
    (noise adds fine detail and would make a soft edge look sharp); edges
    next to clipped pixels are left out (clipping cuts an edge to a step
    whatever the focus).

    Parameters
    ----------
    gray : ndarray, (H, W)
        sRGB-encoded luminance, 0-1.
    linear : ndarray, (H, W), optional
        The same luminance in linear light (``gray`` decoded when not given).

    Returns
    -------
    (ys, xs, blur, angle) : ndarrays
        Edge pixel rows and columns, the blur (Gaussian sigma, px) at each,
        and the gradient direction (radians) there.

    Raises
    ------
    ValueError
        If ``gray`` is not a 2-D image of at least 32x32, or ``linear`` is not its shape.
    """
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2 or min(gray.shape) < 32:
        raise ValueError(f"expected a 2-D image of at least 32x32, got shape {gray.shape}")
    if linear is None:
        linear = srgb_to_linear(np.clip(gray, 0.0, 1.0)).astype(np.float32)
    linear = np.asarray(linear, dtype=np.float32)
    if linear.shape != gray.shape:
        raise ValueError(f"linear has shape {linear.shape}, the encoded image {gray.shape}: pass the same image")
    # Noise: robust spread of the finest differences (pixel noise, not texture), on a regular
    # subset of rows (at most about NOISE_SAMPLES differences: plenty for a median, and the
    # partition of every difference of the frame cost as much as the rest of the edge search).
    step = max(1, math.ceil(gray.size / NOISE_SAMPLES))
    noise, noise_lin = _noise(gray, step), _noise(linear, step)
    u8 = np.clip(gray * 255.0, 0, 255).astype(np.uint8)
    hi = max(12.0, 255.0 * 8 * noise)
    edges = cv2.Canny(cv2.GaussianBlur(u8, (0, 0), PROBE_FINE), hi / 2, hi, L2gradient=True)
    clipped = cv2.dilate(((gray >= 0.985) | (gray <= 0.015)).astype(np.uint8), np.ones((7, 7), np.uint8))
    # The probes' magnitudes are read at the edge pixels only (a few percent of the frame); a 1-D
    # search is several times faster than nonzero's 2-D one.
    at = np.flatnonzero((edges > 0) & (clipped == 0))
    fx, fy = _sobel_at(cv2.GaussianBlur(linear, (0, 0), PROBE_FINE), at)
    smooth = cv2.GaussianBlur(linear, (0, 0), PROBE_COARSE)
    cx, cy = _sobel_at(smooth, at)
    # The coarse gradient as the encoded image has it (the chain rule through the sRGB curve at the
    # edge's level), without a third pair of probes.
    level = np.maximum(smooth.ravel()[at], 0.0031308)
    slope = (1.055 / 2.4) * np.power(level, 1 / 2.4 - 1.0)
    ex, ey = cx * slope, cy * slope
    fine = np.sqrt(np.maximum(fx * fx + fy * fy - 2 * (_GAIN_FINE * noise_lin) ** 2, 0.0))
    coarse = np.sqrt(np.maximum(cx * cx + cy * cy - 2 * (_GAIN_COARSE * noise_lin) ** 2, 0.0))
    # The coarse probe must see the edge well above its own noise, or the ratio is mostly noise: as
    # the eye sees it (encoded) and in the light the ratio is taken in.
    seen = np.sqrt(np.maximum(ex * ex + ey * ey - 2 * (_GAIN_COARSE * noise) ** 2, 0.0))
    strong = (seen > max(0.004, 5 * _GAIN_COARSE * noise)) & (coarse > 5 * _GAIN_COARSE * noise_lin)
    ys, xs = np.divmod(at[strong], gray.shape[1])
    ratio = fine[strong] / np.maximum(coarse[strong], 1e-9)
    return ys, xs, _blur_from_ratio(ratio), np.arctan2(fy[strong], fx[strong])


def _percentiles(a: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """``np.percentile(a, q)`` (its linear method) for each q, with one partition at the ranks they need."""
    n = a.size
    spots = []
    for q in qs:
        idx = q / 100.0 * (n - 1)
        lo = int(math.floor(idx))
        spots.append((lo, min(lo + 1, n - 1), idx - lo))
    part = np.partition(a, sorted({r for lo, hi, _ in spots for r in (lo, hi)}))
    out = []
    for lo, hi, t in spots:
        a_lo, a_hi = float(part[lo]), float(part[hi])
        out.append(a_lo + (a_hi - a_lo) * t if t < 0.5 else a_hi - (a_hi - a_lo) * (1.0 - t))
    return out


@dataclass(frozen=True)
class _Region:
    """What the focus rules read of one region's edge blurs: counts and percentiles, all and per direction."""

    edges: int
    p30: float | None  # EDGE_PERCENTILE of all its blurs (None under MIN_EDGES)
    dir_edges: tuple[int, ...]  # per direction class
    dir_p30: tuple[float | None, ...]  # EDGE_PERCENTILE per class (None under MIN_EDGES // 4)
    dir_p50: tuple[float | None, ...]  # median per class (same)

    @classmethod
    def of(cls, blur: np.ndarray, per_direction: list[np.ndarray]) -> _Region:
        p30 = _percentiles(blur, (EDGE_PERCENTILE,))[0] if blur.size >= MIN_EDGES else None
        dirs = [_percentiles(b, (EDGE_PERCENTILE, 50)) if b.size >= MIN_EDGES // 4 else [None, None]
                for b in per_direction]
        return cls(blur.size, p30, tuple(b.size for b in per_direction), tuple(d[0] for d in dirs),
                   tuple(d[1] for d in dirs))


@dataclass(frozen=True)
class _GridEdges:
    """The edges of the frame's :data:`GRID` of regions, grouped once for every region statistic.

    ``regions[k]`` is region k (row by row); its statistics come from one
    array of the blurs ordered by region and direction (a radix sort of small
    integers, no sort of the blurs) and a partition per direction class.
    """

    regions: list[_Region]
    gx: int
    gy: int

    @classmethod
    def of(cls, ys: np.ndarray, xs: np.ndarray, blur: np.ndarray, angle: np.ndarray, width: int,
           height: int) -> _GridEdges:
        gx, gy = GRID if width >= height else GRID[::-1]
        cells = gx * gy
        cell = np.minimum((ys * gy) // height, gy - 1) * gx + np.minimum((xs * gx) // width, gx - 1)
        group = (cell * 4 + _direction_class(angle)).astype(np.uint16)
        grouped = blur[np.argsort(group, kind="stable")]
        bounds = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=cells * 4))])
        return cls(
            [_Region.of(grouped[bounds[4 * k] : bounds[4 * k + 4]],
                        [grouped[bounds[4 * k + d] : bounds[4 * k + d + 1]] for d in range(4)])
             for k in range(cells)],
            gx, gy,
        )  # fmt: skip


def _direction_class(angle: np.ndarray) -> np.ndarray:
    """Which of four direction classes (0, 45, 90, 135 degrees) each gradient direction is in."""
    return ((angle % math.pi) / (math.pi / 4) + 0.5).astype(int) % 4


def region_blur(blur: np.ndarray, angle: np.ndarray) -> tuple[float | None, bool]:
    """A region's blur from its edges' blurs and directions, and whether it is directional.

    Defocus blurs edges of every direction alike; motion blurs the edges
    across the motion and spares those along it. The region's blur is the
    second highest of the four direction classes' :data:`EDGE_PERCENTILE`
    blurs, so a camera shake is not hidden by the edges it spared, and one
    direction's odd edges do not decide alone.
    """
    return _region_blur(_region_of(blur, angle))


def _region_of(blur: np.ndarray, angle: np.ndarray) -> _Region:
    """The statistics of a region's edges (their blurs and gradient directions), all and per direction class."""
    bins = _direction_class(angle)
    return _Region.of(blur, [blur[bins == k] for k in range(4)])


def _region_blur(region: _Region) -> tuple[float | None, bool]:
    """:func:`region_blur` of a region's statistics."""
    if region.p30 is None:
        return None, False
    per_dir = sorted(p for p in region.dir_p30 if p is not None)
    overall = region.p30
    if len(per_dir) < 2:
        return overall, False
    directional = len(per_dir) >= 3 and per_dir[-1] >= 1.8 * max(per_dir[0], 0.5)
    return max(overall, per_dir[-2]), directional


def frame_motion(
    ys: np.ndarray, xs: np.ndarray, blur: np.ndarray, angle: np.ndarray, width: int, height: int
) -> tuple[bool, float]:
    """Whether the frame's sharp part is blurred along one direction, and by how much across it.

    Camera shake drags the whole picture one way: even the part in focus has
    its edges across the drag widened and those along it spared. Depth of
    field does the opposite (the part in focus is sharp every way, the rest
    soft every way), and out-of-focus highlights are often drawn out, so only
    the *sharper third* of the frame's regions (:data:`MOTION_REGIONS` of
    :data:`GRID`) is looked at. In each, the median blur of the edges of each
    of four directions; the squares are pooled over those regions by their
    median (a shake drags every region alike, so the typical region shows it;
    one region's soft shading or hair drawn one way does not decide, as it did
    by their mean), and the motion across the drag is ``sqrt(max - min)`` of
    the pooled squares: what the most blurred direction has on top of the least. Motion when that
    is at least :data:`MOTION_MIN_PX` and the four directions' blurs follow a
    drag's pattern (:func:`drag_misfit` at most :data:`MOTION_MAX_MISFIT`): a
    picture whose own edges are soft one way (shading, stripes) is not dragged.

    Returns
    -------
    (bool, float)
        Motion or not, and the motion blur across the drag (Gaussian sigma,
        working px; 0 when too few regions have edges of every direction).
    """
    return _frame_motion(_GridEdges.of(ys, xs, blur, angle, width, height))


def _frame_motion(grid: _GridEdges) -> tuple[bool, float]:
    """:func:`frame_motion` of edges already grouped by region."""
    regions = []
    for r in grid.regions:
        if r.p30 is None or min(r.dir_edges) < MIN_EDGES // 4:
            continue
        if max(r.dir_p50) >= _MAX_BLUR:
            # Half a direction's edges at the estimate's ceiling: their fine and coarse probes saw the same
            # slope (a texture, the compression's blocks), not a blur. One such region among the eight
            # added 12**2 / 8 to the pooled squares: 4.2 px of "motion" in sharp 500 px photos (photoprism's
            # corgi, a door, a robot on a wall, 4 of 76 such photos).
            continue
        regions.append((r.p30, list(r.dir_p50)))
    if len(regions) < SHARP_REGIONS:
        return False, 0.0
    regions.sort(key=lambda r: r[0])
    pooled = np.median([np.square(d) for _, d in regions[:MOTION_REGIONS]], axis=0)
    motion = _across(pooled)
    return motion >= MOTION_MIN_PX and drag_misfit(pooled) <= MOTION_MAX_MISFIT, motion


def _drag_px(region: _Region) -> float | None:
    """What the most blurred of a region's four edge directions has on top of the least (``sqrt(max - min)`` of
    their squared median blurs, as :func:`frame_motion` reads the frame); None when a direction has too few edges.

    A camera shake drags every part of the frame, the main face included: a sharp face in a frame that reads
    dragged (long straight hair over most of a portrait, serengil/deepface's press photos) was not shaken.
    """
    if any(p is None for p in region.dir_p50):
        return None
    return _across(np.square(np.asarray(region.dir_p50, dtype=float)))


def _across(squares: np.ndarray) -> float:
    """The blur a drag adds across itself, from the four edge directions' squared blurs: ``sqrt(max - min)``."""
    return math.sqrt(max(float(squares.max() - squares.min()), 0.0))


def drag_misfit(pooled: np.ndarray) -> float:
    """How far the pooled squared blurs of the four edge direction classes (0, 45, 90, 135 degrees) are from a
    drag's pattern: 0 for a drag, about 1 for one direction blurred alone.

    A drag along ``t`` widens an edge whose gradient points at ``a`` by ``cos(a - t)`` of its length, so the
    squared blurs are ``c + m**2 cos**2(a - t)``, a constant plus a sinusoid in ``2a``: sampled at the four
    classes, ``p0 + p90 == p45 + p135`` for any ``t`` and ``m``. The misfit is how far the two sums are apart,
    against the sinusoid's amplitude (half the spread of its fit): ``|(p0 + p90) - (p45 + p135)| / 2`` over
    ``sqrt(((p0 - p90) / 2)**2 + ((p45 - p135) / 2)**2)``.
    """
    p0, p45, p90, p135 = (float(v) for v in pooled)
    amplitude = math.hypot((p0 - p90) / 2.0, (p45 - p135) / 2.0)
    return abs((p0 + p90) - (p45 + p135)) / 2.0 / max(amplitude, 1e-9)


def shake_possible(shutter_s: float | None, focal_length_mm: float | None) -> bool:
    """Whether the shutter was open long enough for a hand-held camera to shake the picture.

    The reciprocal rule: hand-held, a shutter of 1/focal length (in 35 mm
    terms) is the slowest that stays sharp. EXIF gives the lens's own focal
    length, which on a smaller sensor is worth more (x1.5 APS-C, x2 Four
    Thirds), so shake is ruled out only when the shutter is :data:`SHAKE_RECIPROCAL`
    of that or shorter: safe for sensors down to half the 35 mm frame's size.
    Without the shutter time or the focal length, shake is always possible.
    """
    if not shutter_s or not focal_length_mm or shutter_s <= 0 or focal_length_mm <= 0:
        return True
    return shutter_s > SHAKE_RECIPROCAL / focal_length_mm


def _encoded_luma(rgb: np.ndarray) -> np.ndarray:
    """:func:`~pipeline.imaging.color.linear_to_srgb` of the luminance, the same float32 values (see :func:`_encode`)."""
    return _encode(luminance(rgb))


def _encode(luma: np.ndarray) -> np.ndarray:
    """:func:`~pipeline.imaging.color.linear_to_srgb` of float32 luminance, the same values, in place (half the time)."""
    v = np.clip(luma, 0.0, 1.0, out=luma)
    encoded = np.power(v, 1 / 2.4)
    encoded *= 1.055
    encoded -= 0.055
    np.copyto(encoded, v * 12.92, where=v <= 0.0031308)
    return encoded


def assess_focus(
    rgb: np.ndarray,
    subject: FocusSubject | None = None,
    *,
    saliency: tuple[float, float] | None = None,
    shutter_s: float | None = None,
    focal_length_mm: float | None = None,
    luma: np.ndarray | None = None,
) -> FocusVerdict:
    """Whether a frame's main subject is in focus.

    Parameters
    ----------
    rgb : ndarray, float, (H, W, 3)
        The linear proxy, as viewed.
    subject : FocusSubject, optional
        The main subject (the largest face). Without one, the salient region
        around ``saliency`` (or the frame's own saliency) is judged.
    saliency : (float, float), optional
        Centre of the salient region (fractions), as measure_exposure wrote it.
    shutter_s, focal_length_mm : float, optional
        Shutter time and focal length, to name camera shake as a cause when
        the shutter was slower than 1/focal length.
    luma : ndarray, (H, W), float32, optional
        ``luminance(rgb)`` when the caller has it already (``Proxy.luma``, which
        measure_exposure made); read, never changed.

    Returns
    -------
    FocusVerdict

    Raises
    ------
    ValueError
        If ``rgb`` is not an (H, W, 3) image of at least 32 px a side, or ``luma`` is not its float32 luminance's shape.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < MIN_SIDE_PX:
        raise ValueError(f"expected an (H, W, 3) linear image of at least {MIN_SIDE_PX} px a side, got {rgb.shape}")
    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_LONG_EDGE / max(h, w))
    if luma is None:
        luma = luminance(rgb)
    elif luma.shape != (h, w) or luma.dtype != np.float32:
        raise ValueError(f"luma must be the float32 luminance of the {w}x{h} image, got {luma.dtype} of shape "
                         f"{luma.shape}")
    elif scale >= 1.0:
        luma = luma.copy()  # _encode clips it in place below
    if scale < 1.0:  # a strip keeps MIN_SIDE_PX across (shrunk with the rest it would pass under it)
        # The luminance is shrunk, not the RGB: both are linear, so it is the same copy for a third
        # of the work (a 1600 px proxy: 7 ms less per frame).
        luma = cv2.resize(luma, (max(MIN_SIDE_PX, round(w * scale)), max(MIN_SIDE_PX, round(h * scale))),
                          interpolation=cv2.INTER_AREA)
    gray = _encode(luma)  # luma is clipped to 0-1 in place: the linear light the blur is measured in
    h, w = gray.shape
    work = max(h, w)
    ys, xs, blur, angle = edge_blur(gray, luma)

    # The frame's sharp part: the SHARP_REGIONS-th sharpest region of a grid, so one
    # region of glints or streetlights does not make a soft frame look sharp.
    grid = _GridEdges.of(ys, xs, blur, angle, w, h)
    regions = []
    for k, region in enumerate(grid.regions):
        b, _ = _region_blur(region)
        if b is not None:
            regions.append((b, (k % grid.gx + 0.5) / grid.gx, (k // grid.gx + 0.5) / grid.gy))
    regions.sort()
    best, best_xy = None, (None, None)
    if regions:
        b, bx, by = regions[min(SHARP_REGIONS, len(regions)) - 1]
        best, best_xy = b, (bx, by)

    if subject is None:
        if saliency is None:
            from pipeline.imaging.measure import saliency_centre

            small = cv2.resize(gray, (max(8, w // 4), max(8, h // 4)), interpolation=cv2.INTER_AREA)
            saliency = saliency_centre(small)
        subject = FocusSubject.salient(*saliency)
    x0, y0 = subject.x * w, subject.y * h
    x1, y1 = x0 + subject.width * w, y0 + subject.height * h
    inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    subject_edges = _region_of(blur[inside], angle[inside])
    subj, directional = _region_blur(subject_edges)

    motion, motion_px = _frame_motion(grid)
    what = "the face" if subject.source == "face" else "the salient region"
    missed, detail = False, ""
    # A texture drawn along one direction (grass, hair, brushed metal) reads as a drag too; a shutter
    # too short for a hand to drag the picture leaves the frame to the other rules.
    ruled_out = motion and not shake_possible(shutter_s, focal_length_mm)
    # ... and so does a face's long straight hair over most of a portrait; a shake drags the face too.
    face_drag = _drag_px(subject_edges) if motion and not ruled_out and subject.source == "face" else None
    face_still = face_drag is not None and face_drag < MOTION_MIN_PX
    if motion and not ruled_out and not face_still:
        missed = True
        detail = (
            f"the frame's sharp part is blurred along one direction ({motion_px:.1f} px of {work} across it more "
            "than along it): camera shake or a moving subject"
        )
    elif best is None or best > FRAME_SOFT_PX:
        missed = best is not None or subj is not None
        shown = best if best is not None else subj
        detail = f"nothing in the frame is sharp (its sharpest regions blur {shown:.1f} px of {work})" if missed else (
            "too few edges in the frame to judge focus"
        )
    elif subj is None:
        detail = f"{what} has too few edges to judge focus"
    elif subject.source == "face" and math.sqrt(subj**2 - min(best, subj) ** 2) >= FACE_DEFOCUS_PX:
        # The face's defocus on top of the frame's sharp part decides alone: a floor on the face's own
        # blur (SUBJECT_SOFT_PX) counts the blur the whole frame shares twice, and let a face read at
        # 1.5 px in a frame sharp to 0.6 px (1.4 px of defocus) pass for sharp. Back-focused faces read
        # that low: the sharp background beside the head weighs in the face's sharper edges.
        missed = True
        detail = (
            f"{what} is soft (blur {subj:.1f} px of {work}) while the frame is sharper elsewhere "
            f"({best:.1f} px, around {best_xy[0]:.0%} across, {best_xy[1]:.0%} down): focus missed the subject"
        )
    elif subj <= SUBJECT_SOFT_PX:
        detail = f"{what} is sharp (blur {subj:.1f} px of {work})"
    elif subject.source == "face":
        detail = f"{what} is a little soft ({subj:.1f} px of {work}) but nothing in the frame is much sharper"
    else:
        # Saliency guesses where the eye goes, not where the photographer focused: a soft
        # salient region in a frame sharp elsewhere is as often a shallow depth of field.
        detail = f"{what} is soft ({subj:.1f} px of {work}) but the frame is sharp elsewhere: no face to judge by"
    if face_still:
        detail += (
            f"; its sharp part looks blurred along one direction ({motion_px:.1f} px of {work}), but the face is "
            f"not ({face_drag:.1f} px): a texture drawn along one direction, not a shake"
        )
    if ruled_out:
        detail += (
            f"; its sharp part looks blurred along one direction ({motion_px:.1f} px of {work}), but "
            f"1/{1 / shutter_s:.0f} s at {focal_length_mm:.0f} mm is too short for camera shake: a texture "  # type: ignore[operator]
            "drawn along one direction"
        )
    if missed and shutter_s and focal_length_mm and shutter_s > 1.0 / focal_length_mm:
        detail += (
            f"; 1/{1 / shutter_s:.0f} s at {focal_length_mm:.0f} mm is slower than 1/focal length: camera shake is likely"
        )
    return FocusVerdict(
        missed=missed,
        subject_blur_px=subj,
        sharpest_blur_px=best,
        sharpest_x=best_xy[0],
        sharpest_y=best_xy[1],
        work_long_edge=work,
        subject=subject,
        directional=motion or directional,
        detail=detail,
    )
