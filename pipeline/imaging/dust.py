"""Sensor-dust evidence of one frame, from the linear proxy.

A dust particle on the sensor's cover glass casts a shadow: a soft, round
spot that takes away the same *fraction* of the light in every colour. At a
small aperture (f/11-f/22) the light cone is narrow and the shadow small and
dark; wide open it spreads into a faint blur nobody sees.

One frame cannot tell a dust shadow from a small dark round thing in the
scene (a mole, a rivet, a hole in a perforated panel: the generated corpus
is full of them); what a scene cannot do is put that thing at the same
*sensor* position in frame after frame while the pictures change. So this
module does not decide anything per frame. It writes, for each frame, a
coarse map of how much every place of the sensor looks like a dust shadow
(:class:`DustEvidence`, a few hundred kilobytes, no picture in it), and
:mod:`pipeline.equipment.findings` adds the maps of one body's frames up.

The per-place score is a matched filter with a local background model,
computed with Gaussian filters at every place and four octaves of scale: in a
window around the place, the log luminance is fitted by a plane (the scene's
shading) plus a round Gaussian dip of the candidate's size; the score is the
dip's amplitude over its standard error, so the same dip scores high on a
smooth wall and low in foliage. Log, because the shadow multiplies the
light: its depth is the same on a bright wall and a dark one. The same fit
on the two colour-difference channels (log R/G, log B/G) must find no dip:
a neutral shadow leaves colour alone, a coloured object does not, and its
score is discounted accordingly.

The map is kept in sensor coordinates (the stored, orientation-1 frame), so
frames shot in portrait line up with landscape ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.imaging.color import luminance

#: Long edge of the working copy, px (larger proxies are reduced to it, smaller ones kept).
WORK_LONG_EDGE = 1024
#: The smallest proxy side (px) a frame gives evidence from (a thumbnail shows no dust shadow).
MIN_SIDE_PX = 64
#: The shortest long edge (px) of a rendered file (a JPEG, a TIFF) that gives evidence: a camera writes its
#: own JPEGs at 2000 px or more, so a smaller one is a copy made for the web, resized and often cropped, whose
#: pixels no longer sit where the sensor's did, and where a dust shadow is a pixel or two, as deep as the
#: compression's own blocks. The working copy's size (not fitted): photoprism's example photos, 497 px copies
#: of a Canon EOS 6D's frames, gave six dust spots that none of the frames shows.
MIN_RASTER_LONG_EDGE = WORK_LONG_EDGE
#: Cells of the evidence map along the sensor's long edge (0.26 % of it each).
GRID_LONG_EDGE = 256
#: Dip templates (Gaussian sigma, px) tried at each octave of a 4-level pyramid:
#: shadow radii from ~1.5 to ~25 px of the working copy (0.1-1.6 % of the long edge).
TEMPLATE_SIGMAS = (1.0, 1.4)
OCTAVES = 4
#: Window (Gaussian sigma) of the local fit, in template sigmas.
WINDOW = 2.5
#: Log-luminance noise floor of the fit: quantisation and flat-field variation
#: that no real sensor is free of, so a dip on a clipped white wall is not infinite.
NOISE_FLOOR = 0.004
#: A colour-difference dip of this fraction of the luminance dip halves the score.
NEUTRAL_TOLERANCE = 0.35
#: Only where the scene is bright enough to show a shadow and not clipped.
LUMA_FLOOR, CHANNEL_CEILING = 0.01, 0.98
#: The score a dip must reach to show (about 3 robust sigmas of a typical frame's scores): the
#: sensitivity map gives the shallowest dip that reaches it at each place.
SHOWING_SCORE = 4.0


@dataclass(frozen=True)
class DustEvidence:
    """How much each place of the sensor looks like a dust shadow, in one frame.

    Maps are in sensor coordinates: row 0 is the top of the stored frame,
    :data:`GRID_LONG_EDGE` cells along its long edge.

    Attributes
    ----------
    score : ndarray, float16, (rows, cols)
        Dip score of the best template at each cell: amplitude over standard
        error, discounted for colour; 0 where the frame shows nothing (too
        dark, clipped). Not comparable between frames until standardised
        (:func:`standardised`).
    depth : ndarray, float16, (rows, cols)
        Fraction of the light the best-fitting dip takes away at its centre.
    radius : ndarray, float16, (rows, cols)
        Radius (Gaussian sigma x 1.5, about where the shadow fades) of the
        best-fitting dip, as a fraction of the sensor frame's width.
    sensitivity : ndarray, float16, (rows, cols)
        The shallowest dust shadow (fraction of the light taken at its
        centre) the frame could show at each place, with the most sensitive
        of the templates: about 0.01 on a clear sky, 0.3 or more in foliage,
        1 where the frame shows nothing (too dark, clipped). Lets a body's
        frames be averaged, place by place, over the ones that could show a spot.
    usable_fraction : float
        Share of the frame bright and unclipped enough to show a shadow.
    """

    score: np.ndarray
    depth: np.ndarray
    radius: np.ndarray
    sensitivity: np.ndarray
    usable_fraction: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.score.shape  # type: ignore[return-value]


def grid_shape(sensor_width: int, sensor_height: int) -> tuple[int, int]:
    """(rows, cols) of the evidence map of a sensor frame of this size."""
    if sensor_width >= sensor_height:
        return max(1, round(GRID_LONG_EDGE * sensor_height / sensor_width)), GRID_LONG_EDGE
    return GRID_LONG_EDGE, max(1, round(GRID_LONG_EDGE * sensor_width / sensor_height))


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < MIN_SIDE_PX:
        raise ValueError(f"expected a linear RGB image of shape (H>={MIN_SIDE_PX}, W>={MIN_SIDE_PX}, 3), "
                         f"got {rgb.shape}")
    if not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"expected a float linear image (1.0 = white), got dtype {rgb.dtype}")
    return rgb.astype(np.float32, copy=False)


def to_sensor_frame(img: np.ndarray, orientation: int | None) -> np.ndarray:
    """Turn a viewed image back to the sensor's stored frame (undo the EXIF orientation).

    Raises
    ------
    ValueError
        If ``orientation`` is not 1-8 (None counts as 1).
    """
    o = 1 if orientation is None else int(orientation)
    if o not in range(1, 9):
        raise ValueError(f"orientation must be an EXIF orientation 1-8, got {orientation}")
    # Viewed = stored turned by the orientation; apply the inverse.
    if o == 2:
        img = img[:, ::-1]
    elif o == 3:
        img = img[::-1, ::-1]
    elif o == 4:
        img = img[::-1]
    elif o == 5:
        img = np.swapaxes(img, 0, 1)
    elif o == 6:
        img = np.rot90(img, 1)
    elif o == 7:
        img = np.rot90(img[::-1], 1)
    elif o == 8:
        img = np.rot90(img, -1)
    return np.ascontiguousarray(img)


def _gauss(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    n = int(math.ceil(3.5 * sigma))
    x = np.arange(-n, n + 1, dtype=np.float64)
    g = np.exp(-x * x / (2 * sigma * sigma))
    return x, g / g.sum()


def _sep(img: np.ndarray, kx: np.ndarray, ky: np.ndarray) -> np.ndarray:
    return cv2.sepFilter2D(img, cv2.CV_32F, kx, ky, borderType=cv2.BORDER_REFLECT)


@dataclass(frozen=True)
class _DipKernels:
    """The window, its first moments and the window x template blur of one template size."""

    g: np.ndarray
    xg: np.ndarray
    gc: np.ndarray
    sx2: float
    k_t: float  # window mean of the template
    k_t2: float  # window variance of the template
    n_eff: float

    @classmethod
    def of(cls, template: float) -> _DipKernels:
        sw = WINDOW * template
        x, g = _gauss(sw)
        # Window x template is a Gaussian too: its sums are blurs at a combined sigma.
        s_c = (sw**-2 + template**-2) ** -0.5
        _, gc = _gauss(s_c)
        k_t = (s_c / sw) ** 2
        s_c2 = (sw**-2 + 2 * template**-2) ** -0.5
        f32 = np.float32
        return cls(g.astype(f32), (x * g).astype(f32), gc.astype(f32), float((x * x * g).sum()), k_t,
                   (s_c2 / sw) ** 2 - k_t * k_t, 4 * math.pi * sw * sw)


_KERNELS = {t: _DipKernels.of(t) for t in TEMPLATE_SIGMAS}


def _dip_fit(channels: list[np.ndarray], template: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Score, depth, chroma ratio and the shallowest showing depth of a Gaussian dip of sigma ``template``.

    ``channels`` are log luminance, log R/G and log B/G (contiguous float32).
    Weighted least squares in a Gaussian window: plane + amplitude x
    (template - its window mean). All sums are separable Gaussian filters
    (kernels made once per template size).
    """
    k = _KERNELS.get(template) or _DipKernels.of(template)
    lum, ch1, ch2 = channels
    m0 = _sep(lum, k.g, k.g)
    sq = lum * lum
    m2 = _sep(sq, k.g, k.g)
    gx = _sep(lum, k.xg, k.g)
    gy = _sep(lum, k.g, k.xg)
    t0 = _sep(lum, k.gc, k.gc)
    f32 = np.float32
    # Every step in place or into a map a step before it freed (these are whole-frame float32 maps, and
    # a new one costs as much as the arithmetic): the same operations in the same order, the same values.
    amp = np.subtract(t0, m0, out=t0)
    amp *= f32(k.k_t / k.k_t2)
    resid = np.multiply(m0, m0, out=m0)
    np.subtract(m2, resid, out=resid)
    gx *= gx
    gy *= gy
    gx += gy
    gx *= f32(1.0 / k.sx2)
    resid -= gx
    a2 = np.multiply(amp, amp, out=gy)
    a2 *= f32(k.k_t2)
    resid -= a2
    np.maximum(resid, 0, out=resid)
    resid += f32(NOISE_FLOOR**2)
    root = np.sqrt(resid, out=resid)
    gain = math.sqrt(k.k_t2 * k.n_eff)
    score = np.divide(amp, root, out=m2)
    score *= f32(-gain)
    depth = np.minimum(amp, 0.0, out=gx)
    depth *= f32(1.0 - k.k_t)
    np.exp(depth, out=depth)
    np.subtract(1.0, depth, out=depth)
    # The dip amplitude that would score SHOWING_SCORE against this place's own residual.
    root *= f32(-SHOWING_SCORE * (1.0 - k.k_t) / gain)
    showing = np.exp(root, out=root)
    np.subtract(1.0, showing, out=showing)
    chroma = None
    for ch in (ch1, ch2):
        amp_c = _sep(ch, k.gc, k.gc)
        amp_c -= _sep(ch, k.g, k.g)
        np.abs(amp_c, out=amp_c)
        chroma = amp_c if chroma is None else np.maximum(chroma, amp_c, out=chroma)
    chroma *= f32(k.k_t / k.k_t2)
    floor = np.abs(amp, out=sq)
    np.maximum(floor, f32(1e-6), out=floor)
    ratio = np.divide(chroma, floor, out=chroma)
    return score, depth, ratio, showing


def _pool_axis(a: np.ndarray, cells: int, axis: int, pool: np.ufunc) -> np.ndarray:
    """``pool`` over the cells along one axis: cell i covers [ceil(i n / cells), ceil((i + 1) n / cells)).

    As ``pool.reduceat``, but as a few whole-array ``pool`` calls on gathered
    rows (or columns), one per position in the tallest cell: reduceat is ten
    times slower on these sizes.
    """
    n = a.shape[axis]
    starts = -(-np.arange(cells) * n // cells)
    ends = np.append(starts[1:], n)
    out = np.take(a, starts, axis=axis)
    for j in range(1, int((ends - starts).max())):
        pool(out, np.take(a, np.minimum(starts + j, ends - 1), axis=axis), out=out)
    return out


def _to_grid(a: np.ndarray, rows: int, cols: int, pool: np.ufunc = np.maximum) -> np.ndarray:
    """Max-pool (or ``pool``-pool; nearest-upsample) a map to the evidence grid."""
    h, w = a.shape[:2]
    if h >= rows and w >= cols:
        # Every pixel in exactly one cell.
        return _pool_axis(_pool_axis(a, rows, 0, pool), cols, 1, pool)
    return cv2.resize(a, (cols, rows), interpolation=cv2.INTER_NEAREST)


def dust_evidence(rgb: np.ndarray, orientation: int | None = 1) -> DustEvidence:
    """The dust-shadow score of every place of the sensor, from one frame.

    Parameters
    ----------
    rgb : ndarray, float, (H, W, 3)
        The linear proxy (scene-linear RGB, 1.0 = white), as viewed: the
        orientation applied, as decode_raw's proxy is.
    orientation : int or None
        The frame's EXIF orientation, 1-8 (None: 1): the map is turned back
        to the sensor's own frame.

    Returns
    -------
    DustEvidence

    Raises
    ------
    ValueError
        If ``rgb`` is not a float (H, W, 3) image of at least 64 pixels a
        side, or the orientation is not 1-8.
    """
    rgb = _check_rgb(rgb)
    if orientation is not None and int(orientation) not in range(1, 9):
        raise ValueError(f"orientation must be an EXIF orientation 1-8, got {orientation}")
    h, w = rgb.shape[:2]
    # Larger proxies are brought down to the working size; smaller ones are used as they are
    # (enlarging adds no detail, only time). Reduced first, then turned to the sensor's frame:
    # the turn copies the smaller image.
    scale = min(1.0, WORK_LONG_EDGE / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(MIN_SIDE_PX, round(w * scale)), max(MIN_SIDE_PX, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
    rgb = to_sensor_frame(rgb, orientation)
    h, w = rgb.shape[:2]
    rows, cols = grid_shape(w, h)
    floor = np.float32(LUMA_FLOOR * 0.5)
    luma = luminance(rgb)
    r, g, b = cv2.split(rgb)
    usable = ((luma >= LUMA_FLOOR) & (cv2.max(cv2.max(r, g), b) <= CHANNEL_CEILING)).astype(np.float32)
    log_g = np.log(np.maximum(g, floor))
    # The fit's channels: log luminance, log R/G, log B/G.
    channels = [np.log(np.maximum(luma, floor)), np.log(np.maximum(r, floor)) - log_g,
                np.log(np.maximum(b, floor)) - log_g]
    best = np.zeros((rows, cols), np.float32)
    best_depth = np.zeros((rows, cols), np.float32)
    best_radius = np.zeros((rows, cols), np.float32)
    showing = np.ones((rows, cols), np.float32)
    usable_fraction = float(usable.mean())
    factor = 1.0
    for _ in range(OCTAVES):
        if min(channels[0].shape) < 32:
            break
        blind = (usable < 0.999).astype(np.float32)  # the whole window's centre must be seeable
        seen = 1.0 - blind
        for template in TEMPLATE_SIGMAS:
            score, depth, ratio, shows = _dip_fit(channels, template)
            ratio *= np.float32(1.0 / NEUTRAL_TOLERANCE)
            ratio *= ratio
            ratio += 1.0
            score /= ratio
            score *= seen
            np.maximum(shows, blind, out=shows)
            showing = np.minimum(showing, _to_grid(shows, rows, cols, np.minimum))
            s = _to_grid(score, rows, cols)
            np.copyto(depth, np.float32(0.0), where=~(score > 0))  # np.where's values, in place
            d = _to_grid(depth, rows, cols)
            better = s > best
            best = np.where(better, s, best)
            best_depth = np.where(better, d, best_depth)
            best_radius = np.where(better, np.float32(1.5 * template * factor / w), best_radius)
        half = (max(1, channels[0].shape[1] // 2), max(1, channels[0].shape[0] // 2))
        channels = [cv2.resize(c, half, interpolation=cv2.INTER_AREA) for c in channels]
        usable = cv2.resize(usable, half, interpolation=cv2.INTER_AREA)
        factor *= 2.0
    return DustEvidence(
        score=best.astype(np.float16),
        depth=best_depth.astype(np.float16),
        radius=best_radius.astype(np.float16),
        sensitivity=showing.astype(np.float16),
        usable_fraction=usable_fraction,
    )


def standardised(score: np.ndarray) -> np.ndarray:
    """A frame's scores in units of its own spread: (score - median) / robust sigma over seeable cells.

    Frames differ in noise, texture and exposure; standardised, a busy frame
    and a clean one weigh the same when a body's frames are added up. Cells
    that show nothing stay 0.
    """
    s = np.asarray(score, dtype=np.float32)
    seen = s > 0
    if seen.sum() < 100:
        return np.zeros_like(s)
    v = s[seen]
    med = float(np.median(v))
    spread = 1.4826 * float(np.median(np.abs(v - med))) + 1e-3
    return np.where(seen, (s - med) / spread, 0.0).astype(np.float32)
