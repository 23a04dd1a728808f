"""What one frame says about its lens: brightness and fine detail, place by place across the sensor.

A lens that is soft on one side (a decentred or tilted element) or that
darkens the corners more than it should (a filter stack, a wrong hood, a lens
made for a smaller sensor) does it in every frame, at the same place of the
sensor; the scene does not. One frame cannot tell a soft right side from a
picture whose right side is a blurred background, nor a vignette from a dark
corner of the room. So, as for dust, nothing is decided per frame: this
module reduces each frame to a coarse grid of a few numbers per cell
(:class:`LensField`, under 2 KB), and :mod:`pipeline.equipment.lens` adds one
body+lens's frames up, where the scene's own left/right and centre/corner
differences average out and the lens's stay.

Per cell of a :data:`GRID_LONG_EDGE`-cell grid over the sensor frame
(orientation undone, so portrait frames line up with landscape ones):

* ``log_luma``: log2 of the mean linear luminance, NaN where the cell is
  clipped or too dark to say (a corner of blown sky is not a bright corner);
* ``fine`` and ``coarse``: the mean squared Laplacian (detail energy) of the
  square root of the luminance at two levels of a 2x pyramid of the working
  copy (:data:`FINE_LEVEL`, :data:`COARSE_LEVEL`: 2 px and 8 px scales), and
  per frame the energy that noise alone gives the fine one (``noise``: the
  flattest tiles' level). Less the noise, the ratio of fine to coarse is a
  blur measure that depends little on the scene's contrast (both scale with
  it) and much on the lens's resolution: a blur of a few pixels takes the
  fine detail away and leaves the coarse. The noise must come off:
  it is added on the sensor, after the lens, so a soft side stays as noisy
  as a sharp one and its fine energy does not fall without the subtraction.
  The square root as the encoding makes the photon noise about the same at
  every brightness, so one noise level serves the whole frame and a dark
  (vignetted) side does not look sharper for being noisier.

Cost: the proxy's luminance and clipped mask, an area reduction of the
luminance to the working copy when the proxy is larger than
:data:`WORK_LONG_EDGE` px, a three-level pyramid, two Laplacians and a few
area reductions to the grid: a few ms per 1500 x 1000 proxy
(``benchmarks/equipment.py`` measures it). Brightness is read at the proxy's
size, detail at the working copy's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.imaging.color import LUMA_709
from pipeline.imaging.dust import to_sensor_frame

#: Long edge of the working copy for detail (px): decode_raw's proxy size, so the proxy is used as it is
#: (a larger one is reduced to it, a smaller one kept).
WORK_LONG_EDGE = 1600
#: The clipped share of a cell is counted on every CLIP_STEP-th pixel each way.
CLIP_STEP = 4
#: Pyramid levels (2x area reductions of the working copy) of the fine and the coarse detail: a lens
#: blur of 1-4 px of the proxy takes much of level 1's detail (2 px scale) and little of level 3's
#: (8 px, the scene's structure). Level 0 (the proxy's own pixels) is mostly noise and demosaicing.
FINE_LEVEL, COARSE_LEVEL = 1, 3
#: Noise energy: this percentile of the fine energy over tiles of this size (the flattest tiles of a
#: frame hold noise and next to no scene detail; a frame has hundreds of them).
NOISE_PERCENTILE, NOISE_TILE_PX = 10, 16
#: Cells along the sensor's long edge (12 x 8 on a 3:2 sensor).
GRID_LONG_EDGE = 12
#: The smallest proxy side (px) a frame gives a lens field from.
MIN_SIDE_PX = 96
#: A cell says nothing about brightness with more than this share of clipped pixels, or a mean
#: luminance under LUMA_FLOOR (the noise and the black level decide there, not the lens).
CLIPPED_SHARE, CHANNEL_CEILING, LUMA_FLOOR = 0.02, 0.98, 0.004


@dataclass(frozen=True)
class LensField:
    """One frame's brightness and detail per cell of the sensor frame.

    Attributes
    ----------
    log_luma : ndarray, float32, (rows, cols)
        log2 of the cell's mean linear luminance; NaN where clipped or too dark.
    fine : ndarray, float32, (rows, cols)
        Mean squared Laplacian of sqrt(luminance) at pyramid level :data:`FINE_LEVEL`.
    coarse : ndarray, float32, (rows, cols)
        The same at level :data:`COARSE_LEVEL`.
    noise : float
        The fine energy noise alone gives (the :data:`NOISE_PERCENTILE` th
        percentile over tiles of :data:`NOISE_TILE_PX` working-copy px);
        noise gives the coarse one 4**-(COARSE_LEVEL - FINE_LEVEL) of it
        (each 2x reduction averages four pixels).
    """

    log_luma: np.ndarray
    fine: np.ndarray
    coarse: np.ndarray
    noise: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        return self.log_luma.shape  # type: ignore[return-value]


def lens_grid_shape(width: int, height: int) -> tuple[int, int]:
    """(rows, cols) of the grid over a sensor frame of this size."""
    if width >= height:
        return max(2, round(GRID_LONG_EDGE * height / width)), GRID_LONG_EDGE
    return GRID_LONG_EDGE, max(2, round(GRID_LONG_EDGE * width / height))


def _to_grid(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = shape
    return cv2.resize(img, (cols, rows), interpolation=cv2.INTER_AREA)


def lens_field(rgb: np.ndarray, orientation: int | None = 1) -> LensField:
    """The :class:`LensField` of one frame.

    Parameters
    ----------
    rgb : ndarray, float, (H, W, 3)
        The linear proxy (1.0 = white), oriented as viewed.
    orientation : int or None
        The frame's EXIF orientation (1-8), undone so cells are sensor places.

    Raises
    ------
    ValueError
        If ``rgb`` is not a float RGB image of at least :data:`MIN_SIDE_PX`
        a side (use the analysis proxy), or ``orientation`` is not 1-8.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < MIN_SIDE_PX:
        raise ValueError(f"expected a linear RGB proxy of shape (H>={MIN_SIDE_PX}, W>={MIN_SIDE_PX}, 3), "
                         f"got {rgb.shape}")
    if not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"expected a float linear image (1.0 = white), got dtype {rgb.dtype}")
    rgb = rgb.astype(np.float32, copy=False)
    # cv2.transform and cv2.threshold instead of numpy's reductions over the channel axis: ten times cheaper.
    y = cv2.transform(rgb, np.asarray(LUMA_709, np.float32).reshape(1, 3))
    # The clipped share of a cell need not be exact: every 4th pixel each way (a 16th of the work).
    sub = np.ascontiguousarray(rgb[::CLIP_STEP, ::CLIP_STEP])
    clipped = cv2.transform(cv2.threshold(sub, CHANNEL_CEILING, 1.0, cv2.THRESH_BINARY)[1], np.ones((1, 3), np.float32))
    y, clipped = to_sensor_frame(y, orientation), to_sensor_frame(np.minimum(clipped, 1.0), orientation)
    shape = lens_grid_shape(y.shape[1], y.shape[0])
    mean = _to_grid(y, shape)
    clip_share = _to_grid(clipped, shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_luma = np.where((clip_share <= CLIPPED_SHARE) & (mean >= LUMA_FLOOR), np.log2(mean), np.nan)
    h, w = y.shape
    scale = min(1.0, WORK_LONG_EDGE / max(h, w))
    if scale < 1.0:
        y = cv2.resize(y, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    g = np.sqrt(np.maximum(y, 0.0))
    levels = [g]
    for _ in range(COARSE_LEVEL):
        top = levels[-1]
        levels.append(cv2.resize(top, (max(1, top.shape[1] // 2), max(1, top.shape[0] // 2)),
                                 interpolation=cv2.INTER_AREA))
    fine_px = cv2.Laplacian(levels[FINE_LEVEL], cv2.CV_32F, ksize=1)
    fine_px *= fine_px
    coarse_px = cv2.Laplacian(levels[COARSE_LEVEL], cv2.CV_32F, ksize=1)
    coarse_px *= coarse_px
    tile = max(1, NOISE_TILE_PX >> FINE_LEVEL)
    tiles = cv2.resize(fine_px, (max(1, fine_px.shape[1] // tile), max(1, fine_px.shape[0] // tile)),
                       interpolation=cv2.INTER_AREA)
    noise = float(np.percentile(tiles, NOISE_PERCENTILE))
    return LensField(log_luma.astype(np.float32), _to_grid(fine_px, shape).astype(np.float32),
                     _to_grid(coarse_px, shape).astype(np.float32), noise)
