"""Lens profile corrections: a lens's distortion and vignetting undone, from the lensfun database.

Every converter a studio uses does this from a measured profile of the lens
(Lightroom's "Enable Profile Corrections", darktable's and RawTherapee's lens
modules): a wide-angle zoom bends a room's straight walls outward (barrel
distortion) and darkens its corners by a stop or more wide open (vignetting),
the same way in every frame at a given focal length and aperture, and many
fringe the edges towards the corners red and blue (lateral chromatic
aberration: each colour's image a little larger or smaller than the green's). postprod
reads the profiles of lensfun (about 1,300 lenses on 950 bodies; the library
is LGPL, its database CC BY-SA, through ``lensfunpy``, which ships both).

A profile is used only when the file names its body and lens without doubt
(:func:`find_profile`): the body exactly, the lens by its name (or, on a
compact whose lens cannot change, the body's one lens), the focal length
within the lens's range. A name that matches two profiles about as well (a
kit zoom's "VR" and "VR II") is not guessed between.

The correction is part of the render's one resampling: each pixel of the
corrected picture is taken from where the lens put it on the sensor (lensfun's
geometry map, scaled so the corrected picture fills the frame, as Lightroom's
"Constrain crop" does; each colour from its own place where the chromatic
aberration is corrected), and the vignetting gain read there. lensfun computes
both on a coarse grid (:class:`LensGrid`, :data:`GRID_LONG_EDGE` points along the
long edge), which is interpolated: the maps are smooth, and on a 10 mm lens at
4272 px the grid reads the map lensfun computes at the full size within 0.1 px
(median; 0.7 at the very corners), about what lensfun's own maps at two sizes
differ by. The plan's
places (faces, crops) are those of the picture as shot; a face's lift is laid
where the face was, through the same map.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Mapping

import cv2
import numpy as np

from pipeline.imaging.geometry import box_through
from pipeline.imaging.measure.common import remap_points

if TYPE_CHECKING:
    import lensfunpy

#: Points of the correction's grid along the frame's long edge (lensfun's maps are smooth: see the module's
#: docstring for how closely the interpolated grid reads them).
GRID_LONG_EDGE = 512
#: The focus distance (m) the profiles are read at: EXIF seldom states it, and distortion and vignetting change
#: little with it beyond a few metres (lensfun's own default).
FOCUS_DISTANCE_M = 1000.0
#: A lens named in the file matches the one profile of its name (see :func:`_same_lens`), else the profile lensfun
#: scores at least this ...
MIN_LENS_SCORE = 50
#: ... and the next profile, when there is one, this much less.
LENS_SCORE_MARGIN = 10
#: A focal length this far outside the lens's range (mm, rounding in EXIF) still matches it.
FOCAL_SLACK_MM = 0.5
# Fixed-point steps of LensGrid.corrected (the inverse of its map).
_INVERSE_STEPS = 6
# How far beyond the frame the map reaches, as a share of its long edge (a 10 mm lens's zoom leaves 1-2 % out).
_MARGIN = 0.1


def _lensfun():  # noqa: ANN202 - the module
    """lensfunpy, imported when a lens is first looked up: its library and database take 0.1 s to load, which
    every process would pay (the CLI, each worker) where no chart corrects a lens."""
    import lensfunpy

    return lensfunpy


@functools.lru_cache(maxsize=1)
def _database() -> lensfunpy.Database:
    return _lensfun().Database()


@dataclass(frozen=True)
class LensProfile:
    """What the renderer needs to correct one frame's lens: the profile's names and the frame's settings.

    Attributes
    ----------
    camera_maker, camera_model, lens_maker, lens_model : str
        lensfun's names of the body and the lens.
    crop_factor : float
        The body's crop factor (the profile scales to it).
    focal_mm : float
        Focal length of the frame.
    aperture : float or None
        F-number of the frame (vignetting needs it; None: no vignetting correction).
    distortion, vignetting, chromatic_aberration : bool
        Which corrections to make (chromatic aberration: the red and blue images of the picture scaled to the
        green's, the colour fringes a lens draws towards the corners).
    """

    camera_maker: str
    camera_model: str
    lens_maker: str
    lens_model: str
    crop_factor: float
    focal_mm: float
    aperture: float | None
    distortion: bool
    vignetting: bool
    chromatic_aberration: bool = False

    def as_params(self) -> dict[str, Any]:
        """The operation's parameters (JSON), read back by :meth:`from_params`."""
        return asdict(self)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> LensProfile:
        """From an operation's parameters.

        Raises
        ------
        KeyError
            If a parameter is missing.
        """
        aperture = params["aperture"]
        return cls(str(params["camera_maker"]), str(params["camera_model"]), str(params["lens_maker"]),
                   str(params["lens_model"]), float(params["crop_factor"]), float(params["focal_mm"]),
                   None if aperture is None else float(aperture), bool(params["distortion"]),
                   bool(params["vignetting"]), bool(params.get("chromatic_aberration", False)))

    @property
    def corrections(self) -> str:
        """What is corrected, in words ("distortion and vignetting")."""
        done = [w for w, on in (("distortion", self.distortion), ("vignetting", self.vignetting),
                                ("chromatic aberration", self.chromatic_aberration)) if on]
        return ", ".join(done[:-1]) + " and " + done[-1] if len(done) > 1 else "".join(done)


@dataclass(frozen=True)
class LensMatch:
    """The profile found for a frame, or why none is used (``why``, for the instructions)."""

    profile: LensProfile | None
    why: str


def _simple(name: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "", name.lower())


def find_profile(make: str | None, model: str | None, lens: str | None, focal_mm: float | None,
                 aperture: float | None, *, distortion: bool = True, vignetting: bool = True,
                 chromatic_aberration: bool = False) -> LensMatch:
    """The lensfun profile of a frame's body and lens, when the file names them without doubt.

    Parameters
    ----------
    make, model : str or None
        The body, as the file states it (EXIF Make and Model).
    lens : str or None
        The lens, as the file states it (EXIF LensModel); None on most compacts, whose one lens is then used.
    focal_mm, aperture : float or None
        The frame's focal length and f-number.
    distortion, vignetting, chromatic_aberration : bool
        Which corrections are wanted; a profile without the calibration for one leaves it out.

    Returns
    -------
    LensMatch
        ``profile`` None when no profile is used, ``why`` saying why (or what was matched).
    """
    if not (distortion or vignetting or chromatic_aberration):
        return LensMatch(None, "no lens correction asked for")
    if not make or not model:
        return LensMatch(None, "the file does not name its camera")
    if not focal_mm or focal_mm <= 0:
        return LensMatch(None, "the file does not state the focal length")
    found = _body_and_lens(make, model, lens or None)
    if isinstance(found, str):
        return LensMatch(None, found)
    camera, best = found
    if not (best.min_focal or 0) - FOCAL_SLACK_MM <= focal_mm <= (best.max_focal or focal_mm) + FOCAL_SLACK_MM:
        return LensMatch(None, f"{focal_mm:g} mm is outside the {best.model}'s range")
    has_distortion = distortion and best.interpolate_distortion(float(focal_mm)) is not None
    has_vignetting = (vignetting and aperture is not None and aperture > 0
                      and best.interpolate_vignetting(float(focal_mm), float(aperture), FOCUS_DISTANCE_M) is not None)
    has_tca = chromatic_aberration and best.interpolate_tca(float(focal_mm)) is not None
    if not (has_distortion or has_vignetting or has_tca):
        return LensMatch(None, f"lensfun's profile of the {best.model} has no calibration at {focal_mm:g} mm")
    profile = LensProfile(camera.maker, camera.model, best.maker, best.model, float(camera.crop_factor),
                          float(focal_mm), None if aperture is None else float(aperture), has_distortion,
                          has_vignetting, has_tca)
    return LensMatch(profile, f"{best.model} at {focal_mm:.4g} mm" + (f" f/{aperture:.2g}" if aperture else ""))


@functools.lru_cache(maxsize=256)
def _body_and_lens(make: str, model: str, lens: str | None) -> tuple[lensfunpy.Camera, lensfunpy.Lens] | str:
    """lensfun's body and lens for the names a file gives (a shoot repeats a few: looked up once each), or why
    none is taken."""
    db = _database()
    # LibRaw names bodies without their maker ("EOS 450D"), lensfun with it ("Canon EOS 450D"): the same body
    # when one name ends with the other and the makers agree.
    maker, body = _simple(make), _simple(model)
    cameras = [c for c in db.find_cameras(make, model, loose_search=True)
               if (_simple(c.maker) in maker or maker in _simple(c.maker))
               and (_simple(c.model).endswith(body) or body.endswith(_simple(c.model)))]
    if len(cameras) != 1:
        return (f"the camera {make} {model} is not in lensfun's database" if not cameras
                else f"the camera {make} {model} matches {len(cameras)} bodies in lensfun's database")
    camera = cameras[0]
    if lens:
        lenses = sorted(db.find_lenses(camera, None, lens, loose_search=False), key=lambda x: -x.score)
        if not lenses:
            return f"the lens {lens} is not in lensfun's database"
        # The profile of that very name (but for case, spaces, punctuation and the maker's name before it:
        # Canon's files say "EF70-200mm f/2.8L IS II USM", lensfun "Canon EF 70-200mm f/2.8L IS II USM") ...
        named = [x for x in lenses if _same_lens(x, lens)]
        if len(named) == 1:
            return _rectilinear(camera, named[0])
        # ... else lensfun's best, when no other comes close.
        best = lenses[0]
        close = len(lenses) > 1 and best.score - lenses[1].score < LENS_SCORE_MARGIN
        if best.score < MIN_LENS_SCORE or close:
            return f"the lens {lens} matches no profile without doubt ({', '.join(x.model for x in lenses[:3])})"
        return _rectilinear(camera, best)
    # No lens named: a compact's own (the one lens on the body's own mount), else nothing to go on.
    fixed = [x for x in db.find_lenses(camera) if camera.mount in x.mounts]
    standard = [x for x in fixed if "standard" in x.model.lower()] or fixed
    if len(standard) != 1:
        return "the file does not name its lens"
    return _rectilinear(camera, standard[0])


def _same_lens(lens: lensfunpy.Lens, name: str) -> bool:
    """Whether lensfun's ``lens`` is the one a file calls ``name``: the same name but for case, spaces and
    punctuation, and the maker's name lensfun puts before it."""
    full, short = _simple(lens.model), _simple(name)
    return bool(short) and (full == short or (full.endswith(short) and full[:-len(short)] == _simple(lens.maker)))


def _rectilinear(camera: lensfunpy.Camera, lens: lensfunpy.Lens) -> tuple[lensfunpy.Camera, lensfunpy.Lens] | str:
    """The pair, unless the lens is a fisheye: correcting one would remap it to another projection, a choice of
    look, not a correction."""
    if lens.type != _lensfun().LensType.RECTILINEAR:
        return f"the {lens.model} is a fisheye: its projection is left as it is"
    return camera, lens


def _lens_of(profile: LensProfile) -> tuple[lensfunpy.Camera, lensfunpy.Lens]:
    db = _database()
    camera = next(c for c in db.find_cameras(profile.camera_maker, profile.camera_model, loose_search=False)
                  if c.model == profile.camera_model)
    lens = next(x for x in db.find_lenses(camera, profile.lens_maker, profile.lens_model, loose_search=False)
                if x.model == profile.lens_model)
    return camera, lens


class LensGrid:
    """One frame size's correction: where each point of the corrected frame lies on the sensor, and the gain the
    vignetting asks for there.

    Coordinates are continuous full-resolution ones of the oriented frame (a pixel's centre at index + 0.5), the
    render's own. The grid holds each point's *shift* (where the lens put it, less where it is), which changes
    slowly across the frame: OpenCV interpolates at 1/32 of a cell, and a shift's error there is a few
    thousandths of a pixel where the coordinates' own would be a tenth.

    Parameters
    ----------
    profile : LensProfile
    width, height : int
        The oriented full-resolution frame (the plan's coordinates).

    Raises
    ------
    LookupError
        If the profile is not in this lensfun database.
    """

    def __init__(self, profile: LensProfile, width: int, height: int) -> None:
        try:
            _, lens = _lens_of(profile)
        except StopIteration:
            raise LookupError(f"lensfun has no profile {profile.lens_maker} {profile.lens_model} on "
                              f"{profile.camera_maker} {profile.camera_model}") from None
        step = max(1.0, max(width, height) / GRID_LONG_EDGE)
        gw, gh = max(8, round(width / step)), max(8, round(height / step))
        # lensfun places an image's first and last pixels at the same places whatever its size (its coordinates
        # are normalised by the size less one): grid point i is full-resolution pixel i * k, continuous i * k + 0.5.
        self.kx, self.ky = (width - 1) / (gw - 1), (height - 1) / (gh - 1)
        self.width, self.height = width, height
        self._picture_map: tuple[np.ndarray, np.ndarray] | None = None  # corrected_picture's, made on first use
        lf = _lensfun()
        flags = ((lf.ModifyFlags.DISTORTION | lf.ModifyFlags.SCALE if profile.distortion else 0)
                 | (lf.ModifyFlags.VIGNETTING if profile.vignetting else 0)
                 | (lf.ModifyFlags.TCA if profile.chromatic_aberration else 0))
        mod = lf.Modifier(lens, profile.crop_factor, gw, gh)
        mod.initialize(profile.focal_mm, profile.aperture or 8.0, FOCUS_DISTANCE_M, scale=0.0,
                       pixel_format=np.float32, flags=int(flags))
        # The map reaches :data:`_MARGIN` of the frame beyond it on every side: what the correction's zoom leaves
        # out of the frame (a face in a corner of the picture as shot) still has a place in it.
        m = self._margin = max(2, math.ceil(_MARGIN * max(gw, gh)))
        window = (-m, -m, gw + 2 * m, gh + 2 * m)
        # Each grid point's continuous full-resolution coordinates, and lensfun's place for it (grid index units).
        gx = np.arange(-m, gw + m, dtype=np.float32) * np.float32(self.kx) + np.float32(0.5)
        gy = np.arange(-m, gh + m, dtype=np.float32) * np.float32(self.ky) + np.float32(0.5)

        def shifts(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (np.ascontiguousarray(xy[..., 0] * np.float32(self.kx) + np.float32(0.5) - gx[None, :]),
                    np.ascontiguousarray(xy[..., 1] * np.float32(self.ky) + np.float32(0.5) - gy[:, None]))

        coords = mod.apply_geometry_distortion(*window) if profile.distortion else None
        zero = np.zeros((gy.size, gx.size), np.float32)
        self._shift = shifts(coords) if coords is not None else (zero, zero)
        #: The largest distance (px) between a point of the corrected frame and where it lies on the sensor.
        self.max_shift = float(np.hypot(*self._shift)[m:-m, m:-m].max())
        # Chromatic aberration: each colour's own shifts (red and blue scaled to green's, with the distortion).
        self._channels: list[tuple[np.ndarray, np.ndarray]] | None = None
        if profile.chromatic_aberration:
            sub = mod.apply_subpixel_geometry_distortion(*window)
            if sub is not None:
                self._channels = [shifts(sub[..., c, :]) for c in range(3)]
        # Vignetting: lensfun's gain on the sensor, read at each grid point's place there (the gain of what the
        # corrected frame shows at that point).
        self._gain: np.ndarray | None = None
        if profile.vignetting:
            ones = np.ones((gh, gw, 3), np.float32)
            if mod.apply_color_modification(ones):
                on_sensor = _extended(ones[..., 1])
                px, py = gx[None, :] + self._shift[0], gy[:, None] + self._shift[1]
                self._gain = np.ascontiguousarray(self._lookup((on_sensor,), px, py, 1)[0])

    def _to_grid(self, margin: int) -> np.ndarray:
        """3x3 affine: continuous full-resolution coordinates -> the index of a grid with ``margin`` cells beyond
        the frame."""
        return np.array([[1.0 / self.kx, 0.0, margin - 0.5 / self.kx], [0.0, 1.0 / self.ky, margin - 0.5 / self.ky],
                         [0.0, 0.0, 1.0]])

    def _lookup(self, grids: tuple[np.ndarray, ...], x: np.ndarray, y: np.ndarray, margin: int) -> list[np.ndarray]:
        """The ``grids`` (of ``margin`` cells beyond the frame) read at the points ``(x, y)``, bilinearly."""
        a = self._to_grid(margin)
        gx = np.asarray(x, np.float32) * np.float32(a[0, 0]) + np.float32(a[0, 2])
        gy = np.asarray(y, np.float32) * np.float32(a[1, 1]) + np.float32(a[1, 2])
        gx, gy = (np.ascontiguousarray(g) for g in np.broadcast_arrays(gx, gy))
        return [remap_points(grid, gx, gy) for grid in grids]

    def source(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the points ``(x, y)`` of the corrected frame lie on the sensor (float32 arrays of their shape)."""
        x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
        dx, dy = self._lookup(self._shift, x, y, self._margin)
        return x + dx, y + dy

    def on_raster(self, to_frame: np.ndarray, out_w: int, out_h: int
                  ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray | None]:
        """Where each pixel of an ``out_w`` x ``out_h`` raster lies on the sensor, and the vignetting's gain for it.

        ``to_frame`` (3x3, output pixel index -> the corrected frame's continuous coordinates: the render's
        ``output_to_frame``) is affine, so the grids are read through it in one affine warp each, with no
        coordinate array made for the lookup.

        Returns
        -------
        list of (ndarray, ndarray), and ndarray or None
            The places, float32 (out_h, out_w) each: one for all colours, or red's, green's and blue's where the
            chromatic aberration is corrected; the gain (out_h, out_w), or None without a vignetting correction.
        """
        m = np.asarray(to_frame, np.float64)
        to_grid = self._to_grid(self._margin) @ m

        def read(grid: np.ndarray) -> np.ndarray:
            return cv2.warpAffine(grid, to_grid[:2], (out_w, out_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REPLICATE)

        u = np.arange(out_w, dtype=np.float64)
        v = np.arange(out_h, dtype=np.float64)
        # The frame's coordinates of each pixel, one pass each: a row part and a column part.
        fx = (m[0, 0] * u + m[0, 2]).astype(np.float32)[None, :] + (m[0, 1] * v).astype(np.float32)[:, None]
        fy = (m[1, 1] * v + m[1, 2]).astype(np.float32)[:, None] + (m[1, 0] * u).astype(np.float32)[None, :]
        places = []
        for dx, dy in self._channels or [self._shift]:
            places.append((fx + read(dx), fy + read(dy)))
        return places, None if self._gain is None else read(self._gain)

    def at(self, x: np.ndarray, y: np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray | None]:
        """:meth:`on_raster` at the points ``(x, y)`` of the corrected frame (float32 arrays of one shape): where
        they lie on the sensor (one place, or each colour's) and the vignetting's gain there (or None)."""
        x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
        grids = self._channels or [self._shift]
        read = self._lookup(tuple(g for pair in grids for g in pair) + (() if self._gain is None else (self._gain,)),
                            x, y, self._margin)
        places = [(x + read[2 * i], y + read[2 * i + 1]) for i in range(len(grids))]
        return places, None if self._gain is None else read[-1]

    def corrected_picture(self, picture: np.ndarray) -> np.ndarray:
        """A one-channel ``picture`` of this grid's frame size as the correction delivers its geometry: each pixel
        read where the lens put it (bilinear; the vignetting left alone). The line measure reads straight lines
        there, not the bowed ones the lens drew."""
        h, w = picture.shape[:2]
        if (w, h) != (self.width, self.height):
            raise ValueError(f"a {w}x{h} picture for a {self.width}x{self.height} lens grid")
        if self._picture_map is None:  # made once: every frame of a body and lens at one focal length shares it
            pixel_centres = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
            places, _ = self.on_raster(pixel_centres, w, h)
            xs, ys = places[len(places) // 2]  # green's, where each colour has its own
            self._picture_map = (xs - np.float32(0.5), ys - np.float32(0.5))
        return remap_points(np.ascontiguousarray(picture, np.float32), *self._picture_map, cv2.INTER_LINEAR)

    def corrected(self, x_source: np.ndarray, y_source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where points of the sensor (the picture as shot) land in the corrected frame: :meth:`source` inverted,
        by fixed-point steps (the map is the identity but for a few per cent: each step divides the error by
        tens; after :data:`_INVERSE_STEPS` it is under a thousandth of a pixel)."""
        qx, qy = np.asarray(x_source, np.float32), np.asarray(y_source, np.float32)
        x, y = qx.copy(), qy.copy()
        for _ in range(_INVERSE_STEPS):
            sx, sy = self.source(x, y)
            x += qx - sx
            y += qy - sy
        return x, y

    def corrected_box(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """The box (x, y, w, h) of the picture as shot, in the corrected frame: the box around its outline's
        points there (a straight edge of the picture as shot bends a little in the corrected frame)."""
        return box_through(box, self.corrected)


def _extended(grid: np.ndarray) -> np.ndarray:
    """``grid`` with one more row and column on each side, extrapolated linearly: the points of the frame's outer
    half cell lie beyond the grid's first and last points, and the gain keeps its slope there."""
    g = np.asarray(grid, np.float32)
    g = np.concatenate([2 * g[:1] - g[1:2], g, 2 * g[-1:] - g[-2:-1]], axis=0)
    g = np.concatenate([2 * g[:, :1] - g[:, 1:2], g, 2 * g[:, -1:] - g[:, -2:-1]], axis=1)
    return np.ascontiguousarray(g)


@functools.lru_cache(maxsize=4)
def lens_grid(profile: LensProfile, width: int, height: int) -> LensGrid:
    """:class:`LensGrid` of ``profile`` for a ``width`` x ``height`` frame, made once for the renditions of a frame
    (about 10 MB with the chromatic aberration's maps: a zoom's every focal length is a profile of its own, so
    only the last few are kept; making one takes about 20 ms)."""
    return LensGrid(profile, int(width), int(height))
