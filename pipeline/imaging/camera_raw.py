"""Camera Raw's starting point for a RAW file: as-shot white balance, baseline exposure, default crop.

Lightroom and Camera Raw describe white balance as an absolute ``Temperature``
(kelvin) and ``Tint`` computed from the file's as-shot neutral and colour
matrices; their exposure slider is an offset from the file's baseline
exposure; their crops are fractions of the file's default crop. postprod
writes settings for them (:mod:`pipeline.outputs.xmp`), so it needs the same
three starting points, read here while the RAW is open.

The white-balance maths follows the DNG specification 1.7.1 (chapter 6,
"Mapping Camera Color Space to CIE XYZ Space") and the Adobe DNG SDK 1.7.1
(``dng_temperature.cpp``: the Robertson isotemperature table of Wyszecki &
Stiles, Color Science 2nd ed. p. 228, and a tint of -3000 x the distance from
the locus in CIE 1960 uv; ``dng_color_spec.cpp``: the neutral-to-xy iteration
and the inverse-temperature interpolation between two calibration
illuminants). Transcribed in numpy; on an ACR-written DNG it gives 6211 K /
-1.2 where Camera Raw shows "As Shot 6200 / -1" (tests/test_camera_raw.py).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# --- Adobe's temperature / tint scale (dng_temperature.cpp) -------------------------

TINT_SCALE = -3000.0
# (mired = 1e6 / K, u, v, slope of the isotemperature line) in CIE 1960 uv.
_ROBERTSON = (
    (0, 0.18006, 0.26352, -0.24341), (10, 0.18066, 0.26589, -0.25479),
    (20, 0.18133, 0.26846, -0.26876), (30, 0.18208, 0.27119, -0.28539),
    (40, 0.18293, 0.27407, -0.30470), (50, 0.18388, 0.27709, -0.32675),
    (60, 0.18494, 0.28021, -0.35156), (70, 0.18611, 0.28342, -0.37915),
    (80, 0.18740, 0.28668, -0.40955), (90, 0.18880, 0.28997, -0.44278),
    (100, 0.19032, 0.29326, -0.47888), (125, 0.19462, 0.30141, -0.58204),
    (150, 0.19962, 0.30921, -0.70471), (175, 0.20525, 0.31647, -0.84901),
    (200, 0.21142, 0.32312, -1.0182), (225, 0.21807, 0.32909, -1.2168),
    (250, 0.22511, 0.33439, -1.4512), (275, 0.23247, 0.33904, -1.7298),
    (300, 0.24010, 0.34308, -2.0637), (325, 0.24702, 0.34655, -2.4681),
    (350, 0.25591, 0.34951, -2.9641), (375, 0.26400, 0.35200, -3.5814),
    (400, 0.27218, 0.35407, -4.3633), (425, 0.28039, 0.35577, -5.3762),
    (450, 0.28863, 0.35714, -6.7262), (475, 0.29685, 0.35823, -8.5955),
    (500, 0.30505, 0.35907, -11.324), (525, 0.31320, 0.35968, -15.628),
    (550, 0.32129, 0.36011, -23.325), (575, 0.32931, 0.36038, -40.770),
    (600, 0.33724, 0.36051, -116.45),
)  # fmt: skip

D50_XY = (0.3457, 0.3585)
D65_XY = (0.3127, 0.3290)
STD_A_XY = (0.4476, 0.4074)

#: EXIF LightSource code of a DNG CalibrationIlluminant -> kelvin (dng_camera_profile.cpp IlluminantToTemperature).
ILLUMINANT_TEMPERATURE = {
    17: 2850.0, 3: 2850.0, 24: 3200.0, 23: 5000.0, 20: 5500.0, 1: 5500.0, 9: 5500.0, 4: 5500.0, 18: 5500.0,
    21: 6500.0, 19: 6500.0, 10: 6500.0, 22: 7500.0, 11: 7500.0, 12: 6400.0, 13: 5050.0, 14: 4150.0, 2: 4150.0,
    15: 3525.0, 16: 2925.0,
}  # fmt: skip


def _unit(du: float, dv: float) -> tuple[float, float]:
    n = math.hypot(du, dv)
    return du / n, dv / n


def xy_to_temperature_tint(x: float, y: float) -> tuple[float, float]:
    """Camera Raw's (Temperature in K, Tint) of a white point given as CIE xy.

    Parameters
    ----------
    x, y : float
        Chromaticity of the white (the illuminant the image is balanced for).

    Returns
    -------
    (float, float)
        Temperature (kelvin) and tint (+ magenta correction, - green), unrounded.

    Raises
    ------
    ValueError
        If ``(x, y)`` is not a chromaticity (``1.5 - x + 6y`` must be positive).
    """
    denom = 1.5 - x + 6.0 * y
    if not denom > 0:
        raise ValueError(f"({x}, {y}) is not a chromaticity")
    u, v = 2.0 * x / denom, 3.0 * y / denom
    last_dt = last_du = last_dv = 0.0
    for i in range(1, len(_ROBERTSON)):
        du, dv = _unit(1.0, _ROBERTSON[i][3])
        uu, vv = u - _ROBERTSON[i][1], v - _ROBERTSON[i][2]
        dt = -uu * dv + vv * du  # signed distance from isotemperature line i
        if dt <= 0.0 or i == len(_ROBERTSON) - 1:
            dt = -min(dt, 0.0)
            f = 0.0 if i == 1 else dt / (last_dt + dt)
            r0, r1 = _ROBERTSON[i - 1], _ROBERTSON[i]
            temperature = 1.0e6 / (r0[0] * f + r1[0] * (1.0 - f))
            uu = u - (r0[1] * f + r1[1] * (1.0 - f))
            vv = v - (r0[2] * f + r1[2] * (1.0 - f))
            du, dv = _unit(du * (1.0 - f) + last_du * f, dv * (1.0 - f) + last_dv * f)
            return temperature, (uu * du + vv * dv) * TINT_SCALE
        last_dt, last_du, last_dv = dt, du, dv
    raise AssertionError("unreachable")  # pragma: no cover


def temperature_tint_to_xy(temperature: float, tint: float) -> tuple[float, float]:
    """CIE xy of Camera Raw's (Temperature, Tint): the inverse of :func:`xy_to_temperature_tint`.

    Raises
    ------
    ValueError
        If ``temperature`` is not positive.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    r = 1.0e6 / temperature
    offset = tint / TINT_SCALE
    last = len(_ROBERTSON) - 2
    for i in range(last + 1):
        if r < _ROBERTSON[i + 1][0] or i == last:
            r0, r1 = _ROBERTSON[i], _ROBERTSON[i + 1]
            f = (r1[0] - r) / (r1[0] - r0[0])
            u = r0[1] * f + r1[1] * (1.0 - f)
            v = r0[2] * f + r1[2] * (1.0 - f)
            u0, v0 = _unit(1.0, r0[3])
            u1, v1 = _unit(1.0, r1[3])
            du, dv = _unit(u0 * f + u1 * (1.0 - f), v0 * f + v1 * (1.0 - f))
            u, v = u + du * offset, v + dv * offset
            return 1.5 * u / (u - 4.0 * v + 2.0), v / (u - 4.0 * v + 2.0)
    raise AssertionError("unreachable")  # pragma: no cover


def xy_to_xyz(x: float, y: float) -> np.ndarray:
    """XYZ with Y = 1 of a chromaticity, clamped as the DNG SDK's ``XYtoXYZ`` does."""
    x = min(max(x, 1e-6), 0.999999)
    y = min(max(y, 1e-6), 0.999999)
    if x + y > 0.999999:
        s = 0.999999 / (x + y)
        x, y = x * s, y * s
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def xyz_to_xy(xyz: np.ndarray) -> tuple[float, float]:
    """Chromaticity of an XYZ colour; D50 for a non-positive sum (the DNG SDK's ``XYZtoXY``)."""
    s = float(np.sum(xyz))
    return (float(xyz[0]) / s, float(xyz[1]) / s) if s > 0 else D50_XY


@dataclass(frozen=True)
class ColourSpec:
    """A camera's XYZ-to-camera model, single or dual illuminant (the DNG SDK's ``dng_color_spec``).

    Build it with :meth:`single` (one matrix, as LibRaw gives for proprietary
    RAWs) or :meth:`from_dng` (a DNG's tags).
    """

    matrix1: np.ndarray  # XYZ -> camera at temperature1, AnalogBalance and CameraCalibration folded in
    matrix2: np.ndarray
    temperature1: float
    temperature2: float

    @classmethod
    def single(cls, xyz_to_camera: np.ndarray) -> ColourSpec:
        m = np.asarray(xyz_to_camera, dtype=np.float64)
        return cls(m, m, 5000.0, 5000.0)

    @classmethod
    def from_dng(cls, tags: DngColourTags) -> ColourSpec:
        """The DNG SDK's colour spec from a DNG's IFD0 colour tags.

        Raises
        ------
        ValueError
            If ColorMatrix1 is missing or not 3 (or 4) rows of 3.
        """
        if tags.color_matrix1 is None:
            raise ValueError("the DNG has no ColorMatrix1")
        n = tags.color_matrix1.shape[0]
        ab = np.diag(tags.analog_balance) if tags.analog_balance is not None and len(tags.analog_balance) == n else np.eye(n)
        # CameraCalibration applies only to the profile it was measured for (DNG spec, CameraCalibrationSignature).
        use_cc = tags.camera_calibration_signature in (None, "", tags.profile_calibration_signature)
        cc1 = tags.camera_calibration1 if use_cc and tags.camera_calibration1 is not None else np.eye(n)
        cc2 = tags.camera_calibration2 if use_cc and tags.camera_calibration2 is not None else np.eye(n)
        t1 = ILLUMINANT_TEMPERATURE.get(tags.illuminant1 or 0, 0.0)
        t2 = ILLUMINANT_TEMPERATURE.get(tags.illuminant2 or 0, 0.0)
        m1 = ab @ cc1[:n, :n] @ tags.color_matrix1
        if tags.color_matrix2 is None or t1 <= 0 or t2 <= 0 or t1 == t2:
            return cls(m1, m1, 5000.0, 5000.0)
        m2 = ab @ cc2[:n, :n] @ tags.color_matrix2
        if t1 > t2:
            m1, m2, t1, t2 = m2, m1, t2, t1
        return cls(m1, m2, t1, t2)

    def xyz_to_camera(self, xy: tuple[float, float]) -> np.ndarray:
        """The matrix for a white ``xy``: inverse-temperature interpolation between the two."""
        if self.temperature1 == self.temperature2:
            return self.matrix1
        t, _ = xy_to_temperature_tint(*xy)
        if t <= self.temperature1:
            g = 1.0
        elif t >= self.temperature2:
            g = 0.0
        else:
            g = (1.0 / t - 1.0 / self.temperature2) / (1.0 / self.temperature1 - 1.0 / self.temperature2)
        return g * self.matrix1 + (1.0 - g) * self.matrix2

    def neutral_to_xy(self, neutral: np.ndarray, passes: int = 30) -> tuple[float, float]:
        """White ``xy`` of a camera neutral (DNG spec p. 102: guess, invert, iterate from D50)."""
        neutral = np.asarray(neutral, dtype=np.float64)
        last = D50_XY
        for p in range(passes):
            nxt = xyz_to_xy(np.linalg.pinv(self.xyz_to_camera(last)) @ neutral)
            if abs(nxt[0] - last[0]) + abs(nxt[1] - last[1]) < 1e-7:
                return nxt
            if p == passes - 1:  # a two-value oscillation: take the middle
                nxt = ((last[0] + nxt[0]) / 2, (last[1] + nxt[1]) / 2)
            last = nxt
        return last

    def xy_to_neutral(self, xy: tuple[float, float]) -> np.ndarray:
        """Camera neutral (largest component 1) of a white ``xy``."""
        n = self.xyz_to_camera(xy) @ xy_to_xyz(*xy)
        return np.clip(n / n.max(), 0.001, 1.0)


# --- DNG colour tags (IFD0), read without a library ------------------------------------

_TIFF_TYPES = {1: ("B", 1), 2: ("B", 1), 3: ("H", 2), 4: ("I", 4), 5: ("II", 8), 6: ("b", 1), 7: ("B", 1),
               8: ("h", 2), 9: ("i", 4), 10: ("ii", 8), 11: ("f", 4), 12: ("d", 8)}  # fmt: skip
_WANTED = {50706, 50721, 50722, 50723, 50724, 50727, 50728, 50729, 50730, 50778, 50779, 50931, 50932, 51109}


@dataclass(frozen=True)
class DngColourTags:
    """The colour tags of a DNG's IFD0 that fix Camera Raw's as-shot white balance and exposure."""

    dng_version: tuple[int, ...] | None = None  # None: a TIFF-based file that is not a DNG (CR2, NEF, ...)
    as_shot_neutral: np.ndarray | None = None
    as_shot_white_xy: tuple[float, float] | None = None
    color_matrix1: np.ndarray | None = None
    color_matrix2: np.ndarray | None = None
    illuminant1: int | None = None
    illuminant2: int | None = None
    camera_calibration1: np.ndarray | None = None
    camera_calibration2: np.ndarray | None = None
    camera_calibration_signature: str | None = None
    profile_calibration_signature: str | None = None
    analog_balance: np.ndarray | None = None
    baseline_exposure: float = 0.0
    baseline_exposure_offset: float = 0.0


def _tiff_values(raw: bytes, endian: str, ftype: int, count: int) -> Any:
    code, _ = _TIFF_TYPES[ftype]
    if ftype == 2:
        return raw[:count].split(b"\0", 1)[0].decode("latin-1").strip()
    if ftype in (5, 10):
        pairs = struct.unpack_from(f"{endian}{2 * count}{'i' if ftype == 10 else 'I'}", raw)
        return [n / d if d else 0.0 for n, d in zip(pairs[::2], pairs[1::2])]
    return list(struct.unpack_from(f"{endian}{count}{code}", raw))


def read_dng_colour_tags(path: Path) -> DngColourTags:
    """The colour tags of a DNG's first IFD (where the DNG spec puts them).

    Parameters
    ----------
    path : Path
        A DNG file.

    Raises
    ------
    ValueError
        If the file is not a TIFF, or its first IFD runs past the end of the file.
    """
    found: dict[int, Any] = {}
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or head[:4] not in (b"II*\0", b"MM\0*"):
            raise ValueError(f"{Path(path).name} is not a TIFF-based DNG")
        endian = "<" if head[:2] == b"II" else ">"
        try:
            (offset,) = struct.unpack_from(endian + "I", head, 4)
            f.seek(offset)
            (count,) = struct.unpack(endian + "H", f.read(2))
            entries = f.read(12 * count)
            for i in range(count):
                tag, ftype, n = struct.unpack_from(endian + "HHI", entries, 12 * i)
                if tag not in _WANTED or ftype not in _TIFF_TYPES or n > 64:
                    continue
                size = _TIFF_TYPES[ftype][1] * n
                if size <= 4:
                    raw = entries[12 * i + 8 : 12 * i + 8 + size]
                else:
                    (at,) = struct.unpack_from(endian + "I", entries, 12 * i + 8)
                    f.seek(at)
                    raw = f.read(size)
                if len(raw) < size:
                    raise struct.error(f"tag {tag} runs past the end of the file")
                found[tag] = _tiff_values(raw, endian, ftype, n)
        except struct.error as exc:
            raise ValueError(f"{Path(path).name}: truncated TIFF directory ({exc})") from None

    def matrix(tag: int) -> np.ndarray | None:
        v = found.get(tag)
        if not v or len(v) % 3:
            return None
        return np.asarray(v, dtype=np.float64).reshape(-1, 3)

    def square(tag: int) -> np.ndarray | None:
        v = found.get(tag)
        n = int(round(math.sqrt(len(v)))) if v else 0
        return np.asarray(v, dtype=np.float64).reshape(n, n) if n and n * n == len(v) else None

    def text(tag: int) -> str | None:
        v = found.get(tag)
        if isinstance(v, list):  # BYTE-typed signatures
            v = bytes(v).split(b"\0", 1)[0].decode("latin-1")
        return v or None

    def first(tag: int) -> Any:
        v = found.get(tag)
        return v[0] if v else None

    neutral = found.get(50728)
    white = found.get(50729)
    return DngColourTags(
        dng_version=tuple(found[50706]) if found.get(50706) else None,
        as_shot_neutral=np.asarray(neutral, dtype=np.float64) if neutral else None,
        as_shot_white_xy=(white[0], white[1]) if white and len(white) == 2 else None,
        color_matrix1=matrix(50721),
        color_matrix2=matrix(50722),
        illuminant1=first(50778),
        illuminant2=first(50779),
        camera_calibration1=square(50723),
        camera_calibration2=square(50724),
        camera_calibration_signature=text(50931),
        profile_calibration_signature=text(50932),
        analog_balance=np.asarray(found[50727], dtype=np.float64) if found.get(50727) else None,
        baseline_exposure=float(first(50730) or 0.0),
        baseline_exposure_offset=float(first(51109) or 0.0),
    )


# --- what a decode worker records --------------------------------------------------------


class WhiteBalanceSource:
    """How the as-shot temperature was found (a column value, so plain strings)."""

    DNG = "dng"  # the DNG's AsShotNeutral and its one or two ColorMatrix tags: Camera Raw's own inputs
    LIBRAW = "libraw"  # LibRaw's as-shot multipliers and its (Adobe DNG Converter) D65 matrix: one illuminant


@dataclass(frozen=True)
class CameraRawBaseline:
    """Camera Raw's starting point for one RAW file.

    Attributes
    ----------
    as_shot_temperature_k, as_shot_tint : float or None
        Camera Raw's "As Shot" white balance, unrounded (Camera Raw shows it
        rounded to 50 K and a whole tint). None when the file has no usable
        as-shot white balance or colour matrix.
    wb_source : str or None
        :class:`WhiteBalanceSource` of the two numbers.
    baseline_exposure_ev : float or None
        The DNG's BaselineExposure + BaselineExposureOffset; None for a
        proprietary RAW, whose baseline Camera Raw keeps to itself.
    default_crop : (x, y, width, height)
        Camera Raw's default crop in pixels of the stored (unrotated) image
        as LibRaw outputs it: the DNG's DefaultCrop, a Canon's sensor borders.
    """

    as_shot_temperature_k: float | None
    as_shot_tint: float | None
    wb_source: str | None
    baseline_exposure_ev: float | None
    default_crop: tuple[float, float, float, float]


def default_crop(sizes: Any) -> tuple[float, float, float, float]:
    """Camera Raw's default crop in LibRaw's stored output pixels (before the flip).

    LibRaw's ``raw_inset_crops[0]`` (rawpy ``sizes.crop_*``) holds the DNG
    DefaultCrop tags, or a maker's own crop (Canon sensor borders), in raw
    coordinates; LibRaw's output starts at the visible area's margins and is
    stretched by the pixel aspect.
    """
    w, h = float(sizes.width), float(sizes.height)
    x, y, cw, ch = 0.0, 0.0, w, h
    if sizes.crop_width and sizes.crop_height:
        x = float(max(0, sizes.crop_left_margin - sizes.left_margin))
        y = float(max(0, sizes.crop_top_margin - sizes.top_margin))
        cw = float(min(sizes.crop_width, w - x))
        ch = float(min(sizes.crop_height, h - y))
    # LibRaw stretches non-square photosites to square output pixels (rounded as in decode).
    aspect = sizes.pixel_aspect or 1.0
    out_w = int(w * aspect + 0.5) if aspect > 1.0 else w
    out_h = int(h / aspect + 0.5) if aspect < 1.0 else h
    sx, sy = out_w / w, out_h / h
    return (x * sx, y * sy, cw * sx, ch * sy)


def camera_raw_baseline(raw: Any, path: Path, is_dng: bool | None = None) -> CameraRawBaseline:
    """Camera Raw's as-shot white balance, baseline exposure and default crop of an open RAW.

    Parameters
    ----------
    raw : rawpy.RawPy
        The open file.
    path : Path
        Its path (DNG colour tags are read from the file: LibRaw exposes only one matrix).
    is_dng : bool, optional
        Whether the file is a DNG; by default, whether its first IFD has a DNGVersion.

    Raises
    ------
    ValueError
        If a DNG's first IFD is unreadable (the caller decides whether that fails the image).
    """
    crop = default_crop(raw.sizes)
    temperature = tint = None
    source = baseline = None
    tags = None
    if is_dng is None:
        try:
            tags = read_dng_colour_tags(path)
        except ValueError:  # not TIFF-based: not a DNG
            tags = None
        is_dng = tags is not None and tags.dng_version is not None
    if is_dng:
        tags = tags or read_dng_colour_tags(path)
        baseline = tags.baseline_exposure + tags.baseline_exposure_offset
        xy = None
        if tags.color_matrix1 is not None and tags.as_shot_neutral is not None and np.all(tags.as_shot_neutral > 0):
            spec = ColourSpec.from_dng(tags)
            if spec.matrix1.shape[0] == tags.as_shot_neutral.size:
                xy = spec.neutral_to_xy(tags.as_shot_neutral)
        elif tags.as_shot_white_xy is not None:
            xy = tags.as_shot_white_xy
        if xy is not None:
            temperature, tint = xy_to_temperature_tint(*xy)
            source = WhiteBalanceSource.DNG
    else:
        n = 4 if raw.num_colors == 4 else 3
        multipliers = np.asarray(raw.camera_whitebalance[:n], dtype=np.float64)
        matrix = np.asarray(raw.rgb_xyz_matrix[:n], dtype=np.float64)
        if np.all(multipliers > 0) and np.any(matrix):
            xy = ColourSpec.single(matrix).neutral_to_xy(1.0 / multipliers)
            temperature, tint = xy_to_temperature_tint(*xy)
            source = WhiteBalanceSource.LIBRAW
    return CameraRawBaseline(temperature, tint, source, baseline, crop)
