"""Converging verticals undone: the keystone of a camera pitched up or down (Lightroom's Upright "Vertical").

A camera tilted up to get a room's ceiling in makes its verticals meet above
the frame; tilted down, below. The line measure reads where they meet as the
change of their lean across the frame (``verticals_convergence``, degrees per
long edge) about their lean at the centre (``verticals_tilt_deg``). The
correction is the camera turned level about its horizontal axis: a homography
``K R K^-1`` (Hartley and Zisserman, *Multiple View Geometry*, 8.4) whose
turn sends the verticals' vanishing point to infinity. Only where it lands
depends on the focal length (the picture's height against its width after the
turn): the lens's 35 mm equivalent where the file and lensfun say it, else
:data:`DEFAULT_FOCAL_35MM`. The lean at the centre is left to the straightening's
turn of the crop (the picture is unrolled for the keystone and rolled back), so
that turn, the crops and the XMP's angle keep their meaning.

The turned picture is a trapezoid; the corrected frame is the largest box of the
frame's shape inside it (a small linear programme), scaled to the frame's size,
so the crops and renditions downstream see a full frame of the same size, as
after a lens correction's zoom to fill. Coordinates are the render's: continuous
full-resolution ones of the oriented frame, a pixel's centre at index + 0.5.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.imaging.geometry import box_through
from pipeline.imaging.lens_profile import LensGrid, LensProfile, lens_grid

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The focal length (35 mm equivalent) assumed where the file does not give one that lensfun can scale: a wide
#: normal, the interiors' usual. It only sets the corrected picture's height against its width.
DEFAULT_FOCAL_35MM = 24.0
_FULL_FRAME_LONG_MM = 36.0


@dataclass(frozen=True)
class Keystone:
    """One frame's converging verticals, as the line measure read them.

    Attributes
    ----------
    lean_deg : float
        The verticals' lean at the frame's centre (degrees, + = top to the right): the camera's roll, which the
        straightening's turn levels.
    convergence : float
        The change of their lean across the frame, degrees per long edge to the right (negative: they meet above
        the frame).
    focal_px : float
        The focal length in full-resolution pixels of the long edge.
    """

    lean_deg: float
    convergence: float
    focal_px: float

    def as_params(self) -> dict[str, Any]:
        """The operation's parameters (a straighten operation's ``keystone``)."""
        return {"lean_deg": round(self.lean_deg, 4), "convergence": round(self.convergence, 4),
                "focal_px": round(self.focal_px, 1)}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Keystone:
        """The keystone of a straighten operation's ``keystone`` parameters.

        Raises
        ------
        ValueError
            If a parameter is missing or not a finite number, or the focal length is not positive.
        """
        try:
            lean, conv, focal = (float(params[k]) for k in ("lean_deg", "convergence", "focal_px"))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a keystone needs lean_deg, convergence and focal_px numbers, got {params!r}") from exc
        if not all(math.isfinite(v) for v in (lean, conv, focal)) or focal <= 0:
            raise ValueError(f"a keystone needs finite numbers and a positive focal_px, got {params!r}")
        return cls(lean, conv, focal)

    def edge_lean_deg(self, width: int, height: int) -> float:
        """How far the verticals at the frame's left and right edges lean from those at its centre (degrees, +)."""
        return abs(edge_lean(self.convergence, width, height))

    def pitch_deg(self, width: int, height: int) -> float:
        """The camera's pitch the convergence says, at this focal length (degrees, + = up)."""
        distance = self.vanishing_distance(width, height)
        return 0.0 if distance is None else math.degrees(math.atan(self.focal_px / distance))

    def vanishing_distance(self, width: int, height: int) -> float | None:
        """The vanishing point's distance from the centre along the unrolled vertical (px, + = above), or None
        when the verticals are parallel."""
        if self.convergence == 0.0:
            return None
        # lean(x) = lean_deg + convergence * x / L: lines through a point D above the centre lean by -x / D (rad).
        d = -max(width, height) * 180.0 / (math.pi * self.convergence)
        return d / math.cos(math.radians(self.lean_deg))


def edge_lean(convergence: float, width: int, height: int) -> float:
    """The lean at a ``width`` x ``height`` frame's left and right edges, from those at its centre, of verticals whose
    lean changes by ``convergence`` degrees per long edge (degrees, + = they meet above the frame: the camera
    pitched up)."""
    return -convergence * width / (2.0 * max(width, height))


def focal_px(width: int, height: int, focal_mm: float | None, crop_factor: float | None) -> float:
    """The focal length in pixels of the long edge: the file's focal length scaled to 35 mm by the crop factor
    lensfun gives its body, else :data:`DEFAULT_FOCAL_35MM`."""
    f35 = focal_mm * crop_factor if focal_mm and crop_factor else DEFAULT_FOCAL_35MM
    return f35 / _FULL_FRAME_LONG_MM * max(width, height)


def _turn(deg: float) -> np.ndarray:
    """3x3: a turn of the centred plane by ``deg`` (screen coordinates, y down)."""
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def keystone_matrix(keystone: Keystone, width: int, height: int) -> np.ndarray:
    """3x3 homography: the picture as shot (full-resolution continuous coordinates) -> the corrected frame.

    Unrolled by the lean at the centre, the vanishing point lies straight above (or below) the centre at a
    distance ``d``; the camera turned by ``atan(f / d)`` about its horizontal axis sends it to infinity, and the
    picture is rolled back (the straightening's turn levels it). The largest box of the frame's shape inside the
    turned picture is then scaled onto the frame.
    """
    distance = keystone.vanishing_distance(width, height)
    centre = np.array([[1.0, 0.0, -width / 2.0], [0.0, 1.0, -height / 2.0], [0.0, 0.0, 1.0]])
    if distance is None:
        return np.eye(3)
    f = keystone.focal_px
    tan = f / distance
    # The camera turned about x by a (tan a = f / d), K = diag(f, f, 1): [[1/cos a, 0, 0], [0, 1, -f tan a],
    # [0, tan a / f, 1]] up to scale; a point d above the centre goes to infinity.
    cos = 1.0 / math.sqrt(1.0 + tan * tan)
    pitch = np.array([[1.0 / cos, 0.0, 0.0], [0.0, 1.0, -f * tan], [0.0, tan / f, 1.0]])
    turned = _turn(keystone.lean_deg) @ pitch @ _turn(-keystone.lean_deg) @ centre
    corners = _apply(turned, np.array([0.0, width, width, 0.0]), np.array([0.0, 0.0, height, height]))
    x0, y0, scale = _inscribed(np.stack(corners, axis=1), width / height)
    fill = np.array([[width / scale, 0.0, 0.0], [0.0, width / scale, 0.0], [0.0, 0.0, 1.0]]) @ np.array(
        [[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])
    return fill @ turned


def _apply(m: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = m[2, 0] * x + m[2, 1] * y + m[2, 2]
    return (m[0, 0] * x + m[0, 1] * y + m[0, 2]) / w, (m[1, 0] * x + m[1, 1] * y + m[1, 2]) / w


def _inscribed(quad: np.ndarray, aspect: float) -> tuple[float, float, float]:
    """The largest axis-aligned box of ``aspect`` (width / height) inside the convex quadrilateral ``quad`` (4 x 2,
    in order round it): its top-left corner and width.

    Each edge is a half-plane ``a x + b y <= c``; a box of width ``w`` at ``(x0, y0)`` lies inside when its four
    corners do, which is linear in ``(x0, y0, w)``: maximise ``w``."""
    from scipy.optimize import linprog  # here, not at the top: scipy.optimize takes 0.2 s to import, and most
    # frames are never keystoned (the renderer's module, which imports this one, is in every worker and the CLI)
    rows, bounds = [], []
    (ax, ay), (bx, by) = quad[1] - quad[0], quad[2] - quad[1]
    orient = np.sign(ax * by - ay * bx)
    for i in range(4):
        p, q = quad[i], quad[(i + 1) % 4]
        # (a, b): the edge's outward normal, whichever way round the corners go (orient).
        a, b = (q[1] - p[1]) * orient, -(q[0] - p[0]) * orient
        c = a * p[0] + b * p[1]
        for fx, fy in ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0 / aspect), (0.0, 1.0 / aspect)):
            rows.append([a, b, a * fx + b * fy])
            bounds.append(c)
    result = linprog([0.0, 0.0, -1.0], A_ub=np.array(rows), b_ub=np.array(bounds),
                     bounds=[(None, None), (None, None), (1e-6, None)], method="highs")
    if not result.success:
        raise ValueError("the turned picture holds no box of the frame's shape")
    x0, y0, w = (float(v) for v in result.x)
    return x0, y0, w


class KeystoneMap:
    """One frame's keystone correction, optionally through a lens correction: where each point of the corrected
    frame lies in the picture as shot (:meth:`source`), and back (:meth:`corrected`).

    The corrected frame is the keystone's; the picture it is read from is the lens-corrected one when ``lens`` is
    given (the render's one resampling reads each output pixel through both), else the picture as shot. The same
    interface as :class:`~pipeline.imaging.lens_profile.LensGrid`, which the renderer and the crops use alike.
    """

    def __init__(self, keystone: Keystone, width: int, height: int, lens: LensGrid | None = None) -> None:
        self.width, self.height = width, height
        self.to_corrected = keystone_matrix(keystone, width, height)
        self.to_source = np.linalg.inv(self.to_corrected)
        self._to_source32 = self.to_source.astype(np.float32)  # the points it maps are float32
        self.lens = lens

    def _unturned(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _apply(self._to_source32, x, y)

    def source(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the points ``(x, y)`` of the corrected frame lie in the picture as shot (float32, their shape)."""
        sx, sy = self._unturned(np.asarray(x, np.float32), np.asarray(y, np.float32))
        return (sx, sy) if self.lens is None else self.lens.source(sx, sy)

    def on_raster(self, to_frame: np.ndarray, out_w: int, out_h: int
                  ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray | None]:
        """Where each pixel of an ``out_w`` x ``out_h`` raster lies in the picture as shot, and the lens's
        vignetting gain for it (see :meth:`LensGrid.on_raster`)."""
        m = np.asarray(to_frame, np.float64)
        u = np.arange(out_w, dtype=np.float64)
        v = np.arange(out_h, dtype=np.float64)
        fx = (m[0, 0] * u + m[0, 2]).astype(np.float32)[None, :] + (m[0, 1] * v).astype(np.float32)[:, None]
        fy = (m[1, 1] * v + m[1, 2]).astype(np.float32)[:, None] + (m[1, 0] * u).astype(np.float32)[None, :]
        sx, sy = self._unturned(fx, fy)
        if self.lens is None:
            return [(sx, sy)], None
        return self.lens.at(sx, sy)

    def corrected(self, x_source: np.ndarray, y_source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where points of the picture as shot land in the corrected frame (float32 arrays of their shape)."""
        x, y = np.asarray(x_source, np.float32), np.asarray(y_source, np.float32)
        if self.lens is not None:
            x, y = self.lens.corrected(x, y)
        cx, cy = _apply(self.to_corrected, x.astype(np.float64), y.astype(np.float64))
        return cx.astype(np.float32), cy.astype(np.float32)

    def corrected_box(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """The box (x, y, w, h) of the picture as shot, in the corrected frame: the box around its outline there."""
        return box_through(box, self.corrected)


@functools.lru_cache(maxsize=4)
def keystone_map(keystone: Keystone, width: int, height: int, lens: LensGrid | None = None) -> KeystoneMap:
    """:class:`KeystoneMap` of ``keystone`` for a ``width`` x ``height`` frame, made once for a frame's
    renditions."""
    return KeystoneMap(keystone, int(width), int(height), lens)


def frame_map(lens: LensProfile | None, keystone: Keystone | None, width: int, height: int
              ) -> LensGrid | KeystoneMap | None:
    """The map between the corrected frame the plan and the renderer work in and the picture as shot: the lens
    correction's, the keystone's (through the lens's when both), or None when neither is made."""
    grid = None if lens is None else lens_grid(lens, width, height)
    if keystone is None:
        return grid
    return keystone_map(keystone, width, height, grid)
