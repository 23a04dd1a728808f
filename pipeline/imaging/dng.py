"""Write real Bayer DNG files that LibRaw decodes like a camera's.

Modern 20-60 MP camera RAWs are too large to collect as test data, so tests,
benchmarks and the demo shoot make their own: a real photograph, mosaicked in
linear light through an RGGB filter, stored as an uncompressed 16-bit CFA
image in a DNG 1.4 file (one IFD0 holding the raw image, an Exif IFD for the
shooting data). The layout is the minimal one the DNG specification allows;
LibRaw (rawpy) and exiftool both read it.

Colour follows the DNG model LibRaw implements: ``ColorMatrix1`` maps XYZ to
camera RGB under D65, ``AsShotNeutral`` is the camera RGB of a neutral
surface, and LibRaw's white-balance multipliers are its reciprocal.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import rawpy

from pipeline.imaging.libraw_ids import read_raw_make_model
from pipeline.kernel.files import write_bytes_atomic

# LibRaw's (and IEC 61966-2-1's) linear sRGB -> XYZ (D65). A camera whose
# ColorMatrix1 is its inverse has sRGB primaries: LibRaw's sRGB output is then
# the camera's white-balanced RGB itself.
SRGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
XYZ_TO_SRGB = np.linalg.inv(SRGB_TO_XYZ)

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
_CHANNEL = {"R": 0, "G": 1, "B": 2}
# LibRaw's flip code (rawpy's sizes.flip) -> EXIF orientation, and back for the turns (LibRaw's user_flip).
LIBRAW_FLIP_TO_EXIF = {0: 1, 3: 3, 5: 8, 6: 6}
EXIF_TO_LIBRAW_FLIP = {exif: flip for flip, exif in LIBRAW_FLIP_TO_EXIF.items()}
_ILLUMINANT_D65 = 21

# TIFF field types.
_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED, _SRATIONAL = 1, 2, 3, 4, 5, 7, 10
_TYPE_FORMAT = {_BYTE: "B", _ASCII: "B", _SHORT: "H", _LONG: "I", _UNDEFINED: "B"}
_TYPE_SIZE = {_BYTE: 1, _ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8, _UNDEFINED: 1, _SRATIONAL: 8}

Entry = tuple[int, int, object]  # (tag, TIFF type, values)


def mosaic(rgb_linear: np.ndarray, pattern: str = "RGGB") -> np.ndarray:
    """Sample a linear RGB image through a Bayer colour filter array.

    Parameters
    ----------
    rgb_linear : ndarray, float, (H, W, 3)
        Scene-linear camera RGB.
    pattern : str
        The 2x2 filter layout read row by row from the top-left photosite:
        one of ``"RGGB"``, ``"BGGR"``, ``"GRBG"``, ``"GBRG"``.

    Returns
    -------
    ndarray, same dtype, (H, W)
        Each photosite keeps the one channel its filter passes.

    Raises
    ------
    ValueError
        If the image is not (H, W, 3) or the pattern is not a Bayer layout.
    """
    rgb = np.asarray(rgb_linear)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    layout = _check_pattern(pattern)
    cfa = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    for dy in (0, 1):
        for dx in (0, 1):
            cfa[dy::2, dx::2] = rgb[dy::2, dx::2, layout[dy * 2 + dx]]
    return cfa


def write_dng(path: Path | str, cfa: np.ndarray, **tags: Any) -> Path:
    """Write a Bayer CFA image as an uncompressed 16-bit DNG, atomically.

    The file is written beside ``path`` under a temporary name and moved into
    place, so a reader never sees half a file. Same inputs, same bytes: no
    field is taken from the clock.

    Parameters
    ----------
    path : Path or str
        Destination (``.dng``).
    cfa : ndarray, uint16, (H, W)
        Raw photosite values, as the sensor's ADC produced them (black level
        included). LibRaw refuses images under 22 photosites a side.
    pattern : str
        Bayer layout of the top-left 2x2 block (see :func:`mosaic`).
    black_level : int, or 4 ints, or (2, 2) array
        Sensor black: one value, or one per position of the 2x2 pattern block
        in row order (DNG ``BlackLevelRepeatDim`` 2x2), not per colour.
    white_level : int
        Raw value at which the sensor saturates.
    color_matrix1 : (3, 3) array
        DNG ``ColorMatrix1``: XYZ to camera RGB, for a D65 illuminant.
    as_shot_neutral : 3 floats
        DNG ``AsShotNeutral``: camera RGB of a neutral surface (LibRaw's
        camera white balance is its reciprocal).
    make, model : str
        Camera maker and model (TIFF ``Make``, ``Model``).
    unique_camera_model : str, optional
        DNG ``UniqueCameraModel``; ``"make model"`` when omitted.
    orientation : int
        EXIF orientation, 1-8, of the stored pixels.
    pixel_aspect : float
        Width over height of one photosite (DNG ``DefaultScale``); 1 for
        every current camera, not 1 for some early ones (Kodak DC120).
    captured_at : datetime, optional
        Capture time (``DateTimeOriginal``, local time, no zone).
    iso, exposure_time, f_number, focal_length : float, optional
        Shooting data: ISO speed, shutter time in seconds, aperture f-number,
        focal length in mm.
    baseline_exposure : float
        DNG ``BaselineExposure`` in EV (how much brighter a default render is).
    extra_tags : mapping, optional
        More IFD0 tags, ``{tag: (TIFF type, values)}`` (a second colour
        matrix and illuminant, AnalogBalance, ...); they replace written ones.
    artist : str, optional
        The photographer (TIFF ``Artist``).
    body_serial : str, optional
        The camera body's serial number: EXIF ``BodySerialNumber`` and DNG
        ``CameraSerialNumber``, where cameras and converters put it.
    lens_model : str, optional
        EXIF ``LensModel``.
    flash : int, optional
        EXIF ``Flash`` (bit 0: the flash fired).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If ``cfa`` is not a 2-D uint16 array, the pattern is not Bayer, levels
        are out of range or inconsistent, the matrix is not 3x3, the neutral
        is not three positive numbers, the orientation is not 1-8 or the
        pixel aspect is not in 0.1..10.
    """
    return write_bytes_atomic(Path(path), dng_bytes(cfa, **tags))


def dng_bytes(
    cfa: np.ndarray,
    *,
    pattern: str = "RGGB",
    black_level: int | Sequence[int] | np.ndarray = 0,
    white_level: int = 65535,
    color_matrix1: np.ndarray | Sequence[Sequence[float]] = XYZ_TO_SRGB,
    as_shot_neutral: Sequence[float] = (1.0, 1.0, 1.0),
    make: str = "postprod",
    model: str = "Synthetic DNG",
    unique_camera_model: str | None = None,
    orientation: int = 1,
    pixel_aspect: float = 1.0,
    captured_at: datetime | None = None,
    iso: float | None = None,
    exposure_time: float | None = None,
    f_number: float | None = None,
    focal_length: float | None = None,
    baseline_exposure: float = 0.0,
    extra_tags: Mapping[int, tuple[int, object]] | None = None,
    artist: str | None = None,
    body_serial: str | None = None,
    lens_model: str | None = None,
    flash: int | None = None,
) -> bytes:
    """The bytes of the DNG :func:`write_dng` writes (same parameters, no path).

    Raises
    ------
    ValueError
        As :func:`write_dng`.
    """
    cfa = np.asarray(cfa)
    if cfa.ndim != 2 or cfa.dtype != np.uint16:
        raise ValueError(f"cfa must be a 2-D uint16 array, got {cfa.dtype} with shape {cfa.shape}")
    height, width = cfa.shape
    if height < 2 or width < 2:
        raise ValueError(f"cfa must be at least 2x2 photosites, got {width}x{height}")
    layout = _check_pattern(pattern)
    if not 1 <= int(white_level) <= 65535:
        raise ValueError(f"white_level must be in 1..65535, got {white_level}")
    blacks = np.asarray(black_level, dtype=np.int64).reshape(-1)
    if blacks.size not in (1, 4):
        raise ValueError(f"black_level must be one value or 4 (one per 2x2 pattern position), got {blacks.size}")
    if blacks.min() < 0 or blacks.max() >= white_level:
        raise ValueError(f"black_level {blacks.tolist()} must be >= 0 and below white_level {white_level}")
    matrix = np.asarray(color_matrix1, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        raise ValueError(f"color_matrix1 must be a finite 3x3 matrix, got shape {matrix.shape}")
    neutral = np.asarray(as_shot_neutral, dtype=np.float64).reshape(-1)
    if neutral.size != 3 or not np.all(neutral > 0) or not np.all(np.isfinite(neutral)):
        raise ValueError(f"as_shot_neutral must be three positive numbers, got {list(as_shot_neutral)}")
    if int(orientation) not in range(1, 9):
        raise ValueError(f"orientation must be an EXIF orientation 1-8, got {orientation}")
    if not 0.1 <= pixel_aspect <= 10:
        raise ValueError(f"pixel_aspect must be in 0.1..10, got {pixel_aspect}")

    stamp = captured_at.strftime("%Y:%m:%d %H:%M:%S") if captured_at else None
    pixels = np.ascontiguousarray(cfa, dtype="<u2").tobytes()
    ifd0: list[Entry] = [
        (254, _LONG, [0]),  # NewSubFileType: the main (raw) image
        (256, _LONG, [width]),
        (257, _LONG, [height]),
        (258, _SHORT, [16]),
        (259, _SHORT, [1]),  # uncompressed
        (262, _SHORT, [32803]),  # PhotometricInterpretation: CFA
        (271, _ASCII, make),
        (272, _ASCII, model),
        (273, _LONG, [0]),  # StripOffsets, filled in by _assemble
        (274, _SHORT, [int(orientation)]),
        (277, _SHORT, [1]),
        (278, _LONG, [height]),  # one strip: the whole image
        (279, _LONG, [len(pixels)]),
        (282, _RATIONAL, [300.0]),
        (283, _RATIONAL, [300.0]),
        (284, _SHORT, [1]),
        (296, _SHORT, [2]),  # ResolutionUnit: inch
        (305, _ASCII, "postprod"),
    ]
    if stamp:
        ifd0.append((306, _ASCII, stamp))
    if artist:
        ifd0.append((315, _ASCII, artist))
    if body_serial:
        ifd0.append((50735, _ASCII, body_serial))  # DNG CameraSerialNumber
    ifd0 += [
        (33421, _SHORT, [2, 2]),  # CFARepeatPatternDim
        (33422, _BYTE, list(layout)),  # CFAPattern: 0 red, 1 green, 2 blue
        (34665, _LONG, [0]),  # Exif IFD offset, filled in by _assemble
        (50706, _BYTE, [1, 4, 0, 0]),  # DNGVersion
        (50707, _BYTE, [1, 1, 0, 0]),  # DNGBackwardVersion
        (50708, _ASCII, unique_camera_model or f"{make} {model}"),
        (50710, _BYTE, [0, 1, 2]),  # CFAPlaneColor
        (50711, _SHORT, [1]),  # CFALayout: rectangular
    ]
    if blacks.size == 4:
        ifd0 += [(50713, _SHORT, [2, 2]), (50714, _LONG, blacks.tolist())]
    else:
        ifd0.append((50714, _LONG, blacks.tolist()))
    ifd0 += [
        (50717, _LONG, [int(white_level)]),
        (50718, _RATIONAL, [float(pixel_aspect), 1.0]),  # DefaultScale
        (50721, _SRATIONAL, matrix.reshape(-1).tolist()),
        (50728, _RATIONAL, neutral.tolist()),
        (50730, _SRATIONAL, [float(baseline_exposure)]),
        (50778, _SHORT, [_ILLUMINANT_D65]),  # CalibrationIlluminant1
    ]
    if extra_tags:
        ifd0 = [e for e in ifd0 if e[0] not in extra_tags]
        ifd0 += [(int(tag), int(ftype), values) for tag, (ftype, values) in extra_tags.items()]
    exif: list[Entry] = []
    if exposure_time:
        exif.append((33434, _RATIONAL, [float(exposure_time)]))
    if f_number:
        exif.append((33437, _RATIONAL, [float(f_number)]))
    if iso:
        exif.append((34855, _SHORT, [min(65535, int(round(iso)))]))
    exif.append((36864, _UNDEFINED, b"0231"))  # ExifVersion
    if stamp:
        exif += [(36867, _ASCII, stamp), (36868, _ASCII, stamp)]
    if flash is not None:
        exif.append((37385, _SHORT, [int(flash)]))  # Flash
    if focal_length:
        exif.append((37386, _RATIONAL, [float(focal_length)]))
    if body_serial:
        exif.append((42033, _ASCII, body_serial))  # BodySerialNumber
    if lens_model:
        exif.append((42036, _ASCII, lens_model))
    return _assemble(ifd0, exif, pixels)


def write_dng_from_linear_rgb(
    path: Path | str,
    rgb_linear: np.ndarray,
    *,
    white_balance: Sequence[float] = (2.0, 1.0, 1.5),
    make: str = "postprod",
    model: str = "Synthetic DNG",
    pattern: str = "RGGB",
    bits: int = 14,
    black_level: int | None = None,
    unique_camera_model: str | None = None,
    orientation: int = 1,
    captured_at: datetime | None = None,
    iso: float | None = None,
    exposure_time: float | None = None,
    f_number: float | None = None,
    focal_length: float | None = None,
    baseline_exposure: float = 0.0,
    artist: str | None = None,
    body_serial: str | None = None,
    lens_model: str | None = None,
    flash: int | None = None,
) -> Path:
    """Photograph a linear sRGB image with a synthetic camera and save its DNG.

    The camera has sRGB primaries (``ColorMatrix1`` is XYZ to linear sRGB),
    so LibRaw's sRGB output with the camera white balance, no
    auto-brightening and a linear curve gives back ``rgb_linear`` (clipped to
    [0, 1], quantised, demosaicked). The sensor sees each channel divided by
    the white-balance gain the camera will apply, as under a real illuminant;
    gains are normalised so the smallest is 1, because LibRaw scales the
    smallest multiplier to 1 and any other normalisation would shift
    exposure.

    Parameters
    ----------
    path : Path or str
        Destination (``.dng``).
    rgb_linear : ndarray, float, (H, W, 3)
        Scene-linear RGB, Rec.709/sRGB primaries, D65 white, 1.0 = sensor
        white; in the stored (sensor) orientation: ``orientation`` says how a
        viewer turns it.
    white_balance : 3 floats
        Gains (R, G, B) the camera applies to make a neutral neutral.
    make, model : str
        Camera maker and model.
    pattern : str
        Bayer layout (see :func:`mosaic`).
    bits : int
        ADC depth, 14 or 16: white level ``2**bits - 1``.
    black_level : int, optional
        Sensor black; ``2**(bits - 5)`` (512 at 14 bits) when omitted.
    unique_camera_model, orientation, captured_at, iso, exposure_time, f_number, focal_length, baseline_exposure
        As :func:`write_dng`.
    artist, body_serial, lens_model, flash
        As :func:`write_dng`.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If the image is not (H, W, 3) or not finite, the gains are not three
        positive numbers, ``bits`` is not 14 or 16, or as :func:`write_dng`.
    """
    cfa, kwargs = _synthetic_capture(rgb_linear, white_balance, pattern, bits, black_level)
    return write_dng(
        path,
        cfa,
        pattern=pattern,
        make=make,
        model=model,
        unique_camera_model=unique_camera_model,
        orientation=orientation,
        captured_at=captured_at,
        iso=iso,
        exposure_time=exposure_time,
        f_number=f_number,
        focal_length=focal_length,
        baseline_exposure=baseline_exposure,
        artist=artist,
        body_serial=body_serial,
        lens_model=lens_model,
        flash=flash,
        **kwargs,
    )


def dng_bytes_from_linear_rgb(
    rgb_linear: np.ndarray,
    *,
    white_balance: Sequence[float] = (2.0, 1.0, 1.5),
    pattern: str = "RGGB",
    bits: int = 14,
    black_level: int | None = None,
    **tags: object,
) -> bytes:
    """The bytes :func:`write_dng_from_linear_rgb` writes (``tags`` as there).

    Raises
    ------
    ValueError
        As :func:`write_dng_from_linear_rgb`.
    """
    cfa, kwargs = _synthetic_capture(rgb_linear, white_balance, pattern, bits, black_level)
    return dng_bytes(cfa, pattern=pattern, **kwargs, **tags)  # type: ignore[arg-type]


def _synthetic_capture(
    rgb_linear: np.ndarray, white_balance: Sequence[float], pattern: str, bits: int, black_level: int | None
) -> tuple[np.ndarray, dict]:
    rgb = np.asarray(rgb_linear, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    if not np.all(np.isfinite(rgb)):
        raise ValueError("rgb_linear holds NaN or infinite values")
    gains = np.asarray(white_balance, dtype=np.float64).reshape(-1)
    if gains.size != 3 or not np.all(gains > 0) or not np.all(np.isfinite(gains)):
        raise ValueError(f"white_balance must be three positive gains (R, G, B), got {list(white_balance)}")
    if bits not in (14, 16):
        raise ValueError(f"bits must be 14 or 16, got {bits}")
    gains = gains / gains.min()
    white = 2**bits - 1
    black = 2 ** (bits - 5) if black_level is None else int(black_level)
    if not 0 <= black < white // 2:
        raise ValueError(f"black_level must be in 0..{white // 2 - 1} for {bits} bits, got {black}")
    sensor = np.clip(mosaic(rgb, pattern) / _cfa_tile(gains[list(_check_pattern(pattern))], rgb.shape[:2]), 0.0, 1.0)
    cfa = np.rint(black + sensor * (white - black)).astype(np.uint16)
    neutral = 1.0 / gains  # camera RGB of a white surface
    return cfa, dict(
        black_level=black,
        white_level=white,
        color_matrix1=XYZ_TO_SRGB,
        as_shot_neutral=(neutral / neutral[1]).tolist(),
    )


def rescale_raw_to_dng(src_raw_path: Path | str, dst_path: Path | str, factor: float) -> Path:
    """Re-expose a real camera RAW by ``factor`` and save it as a DNG.

    The signal above black of every photosite is multiplied by ``factor`` and
    clipped at the sensor's white, as if the shutter had been open ``factor``
    times as long (without the extra noise). Black, white, colour matrix,
    camera white balance, orientation and shooting data are carried over, so
    LibRaw renders the DNG as it renders the original, ``log2(factor)`` EV
    brighter.

    Parameters
    ----------
    src_raw_path : Path or str
        A RAW file LibRaw reads, from a Bayer (RGB 2x2 CFA) camera.
    dst_path : Path or str
        Destination DNG.
    factor : float
        Exposure factor, > 0 (2 is one stop more).

    Returns
    -------
    Path
        ``dst_path``.

    Raises
    ------
    ValueError
        If ``factor`` is not positive, or the camera's sensor is not a Bayer
        RGB mosaic (Foveon, X-Trans, CMYG, 4-colour and linear RAWs are not
        re-mosaicked here).
    rawpy.LibRawError
        If LibRaw cannot read the file.
    """
    if not factor > 0 or not np.isfinite(factor):
        raise ValueError(f"factor must be a positive finite number, got {factor}")
    src_raw_path = Path(src_raw_path)
    with rawpy.imread(str(src_raw_path)) as raw:
        pattern_idx = raw.raw_pattern
        desc = raw.color_desc.decode("ascii", "replace")
        if raw.raw_type != rawpy.RawType.Flat or pattern_idx is None:
            raise ValueError(
                f"{src_raw_path.name}: holds full-colour pixels ({raw.raw_type.name}), not a colour filter "
                "mosaic; only Bayer RAWs can be rescaled"
            )
        colors = raw.raw_colors_visible
        top = colors[:2, :2]
        letters = "".join(desc[int(c)] if int(c) < len(desc) else "?" for c in top.reshape(-1))
        if pattern_idx.shape != (2, 2) or raw.num_colors != 3 or letters not in BAYER_PATTERNS:
            raise ValueError(
                f"{src_raw_path.name}: sensor layout {desc!r} with pattern {pattern_idx.tolist()} is not a Bayer "
                "RGB 2x2 mosaic; only Bayer RAWs can be rescaled"
            )
        cfa = raw.raw_image_visible.astype(np.float64)
        black_by_colour = np.asarray(raw.black_level_per_channel, dtype=np.float64)
        white = int(raw.white_level)
        black = black_by_colour[colors]
        out = np.clip(black + (cfa - black) * factor, 0, white)
        cfa16 = np.rint(out).astype(np.uint16)
        black_2x2 = [int(round(black_by_colour[int(c)])) for c in top.reshape(-1)]
        matrix = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
        rgb_cam = np.asarray(raw.color_matrix, dtype=np.float64)[:, :3]
        if not np.any(matrix) and abs(np.linalg.det(rgb_cam)) > 1e-6:
            # DNG sources keep their matrix in rgb_cam (camera -> sRGB) only.
            matrix = np.linalg.inv(rgb_cam) @ XYZ_TO_SRGB
        elif not np.any(matrix):
            # No matrix at all: LibRaw outputs camera RGB as is, which is
            # what a camera with sRGB primaries gives.
            matrix = XYZ_TO_SRGB
        wb = _camera_wb_rgb(raw.camera_whitebalance, desc) or _camera_wb_rgb(raw.daylight_whitebalance, desc)
        neutral = [wb[1] / w for w in wb] if wb else [1.0, 1.0, 1.0]
        other = raw.other
        orientation = LIBRAW_FLIP_TO_EXIF.get(raw.sizes.flip, 1)
        pixel_aspect = float(raw.sizes.pixel_aspect or 1.0)
        ts = other.timestamp
    make, model = read_raw_make_model(src_raw_path)
    return write_dng(
        dst_path,
        cfa16,
        pattern=letters,
        black_level=black_2x2,
        white_level=white,
        color_matrix1=matrix,
        as_shot_neutral=neutral,
        make=make or "unknown",
        model=model or "unknown",
        orientation=orientation,
        pixel_aspect=pixel_aspect,
        captured_at=ts if ts and ts.year > 1970 else None,
        iso=other.iso_speed or None,
        exposure_time=other.shutter_speed or None,
        f_number=other.aperture or None,
        focal_length=other.focal_length or None,
    )


def _camera_wb_rgb(multipliers: Sequence[float], desc: str) -> list[float] | None:
    """R, G, B white-balance multipliers from LibRaw's per-colour list."""
    m = [float(v) for v in multipliers]
    if len(m) < 3 or min(m[:3]) <= 0:
        return None
    return [m[desc.index("R")], m[desc.index("G")], m[desc.index("B")]]


def _check_pattern(pattern: str) -> tuple[int, int, int, int]:
    p = str(pattern).upper()
    if p not in BAYER_PATTERNS:
        raise ValueError(f"pattern must be one of {', '.join(BAYER_PATTERNS)}, got {pattern!r}")
    return tuple(_CHANNEL[c] for c in p)  # type: ignore[return-value]


def _cfa_tile(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Repeat a 2x2 block given in row order over an (H, W) grid."""
    h, w = shape
    tile = np.asarray(values, dtype=np.float64).reshape(2, 2)
    return np.tile(tile, ((h + 1) // 2, (w + 1) // 2))[:h, :w]


# --- TIFF structure ---------------------------------------------------------
def _rational(x: float, signed: bool) -> tuple[int, int]:
    limit = 2**31 - 1 if signed else 2**32 - 1
    if not signed and x < 0:
        raise ValueError(f"unsigned rational cannot hold {x}")
    f = Fraction(x).limit_denominator(1_000_000)
    while abs(f.numerator) > limit or f.denominator > limit:
        f = Fraction(x).limit_denominator(max(1, f.denominator // 10))
        if f.denominator == 1 and abs(f.numerator) > limit:
            raise ValueError(f"rational out of range: {x}")
    return f.numerator, f.denominator


def _encode(ftype: int, values: object) -> tuple[int, bytes]:
    """Count and little-endian payload of one IFD entry."""
    if ftype == _ASCII:
        raw = str(values).encode("ascii", "replace") + b"\0"
        return len(raw), raw
    if ftype == _UNDEFINED:
        return len(values), bytes(values)  # type: ignore[arg-type]
    seq = list(values)  # type: ignore[call-overload]
    if ftype in (_RATIONAL, _SRATIONAL):
        fmt = "<ii" if ftype == _SRATIONAL else "<II"
        return len(seq), b"".join(struct.pack(fmt, *_rational(v, ftype == _SRATIONAL)) for v in seq)
    return len(seq), struct.pack(f"<{len(seq)}{_TYPE_FORMAT[ftype]}", *seq)


def _ifd_size(entries: list[Entry]) -> int:
    size = 2 + 12 * len(entries) + 4
    for _, ftype, values in entries:
        _, payload = _encode(ftype, values)
        if len(payload) > 4:
            size += len(payload) + (len(payload) & 1)
    return size


def _ifd(entries: list[Entry], offset: int) -> bytes:
    """One IFD at file ``offset``, its out-of-line values right after it."""
    entries = sorted(entries, key=lambda e: e[0])  # TIFF requires ascending tags
    extra_at = offset + 2 + 12 * len(entries) + 4
    head, extra = [struct.pack("<H", len(entries))], []
    for tag, ftype, values in entries:
        count, payload = _encode(ftype, values)
        if len(payload) <= 4:
            head.append(struct.pack("<HHI", tag, ftype, count) + payload.ljust(4, b"\0"))
        else:
            head.append(struct.pack("<HHII", tag, ftype, count, extra_at))
            padded = payload + b"\0" * (len(payload) & 1)  # values start on word boundaries
            extra.append(padded)
            extra_at += len(padded)
    head.append(struct.pack("<I", 0))  # no next IFD
    return b"".join(head + extra)


def _assemble(ifd0: list[Entry], exif: list[Entry], pixels: bytes) -> bytes:
    ifd0_at = 8
    exif_at = ifd0_at + _ifd_size(ifd0)
    data_at = exif_at + _ifd_size(exif)
    data_at += -data_at % 16  # align the strip: cheap, and some readers mmap it
    ifd0 = [(t, ft, [data_at] if t == 273 else [exif_at] if t == 34665 else v) for t, ft, v in ifd0]
    head = b"II*\0" + struct.pack("<I", ifd0_at) + _ifd(ifd0, ifd0_at) + _ifd(exif, exif_at)
    assert len(head) <= data_at, "IFD sizes changed between passes"
    return head + b"\0" * (data_at - len(head)) + pixels
