"""ICC v2 matrix/TRC profiles for the output colour spaces, built from their primaries.

Writing the profiles ourselves keeps the exports independent of whatever ICC
files a machine has installed; LittleCMS (through Pillow's ImageCms) reads
them like any other display profile.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np

D65 = (0.3127, 0.3290)
D50_XYZ = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


class ColorSpace(StrEnum):
    SRGB = "srgb"
    DISPLAY_P3 = "display_p3"
    ADOBE_RGB = "adobe_rgb"


# (primaries r, g, b as xy; transfer: "srgb" piecewise curve or a pure gamma)
_SPACES: dict[ColorSpace, tuple[tuple[tuple[float, float], ...], str | float, str]] = {
    ColorSpace.SRGB: (((0.64, 0.33), (0.30, 0.60), (0.15, 0.06)), "srgb", "sRGB IEC61966-2.1 (postprod)"),
    ColorSpace.DISPLAY_P3: (((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), "srgb", "Display P3 (postprod)"),
    ColorSpace.ADOBE_RGB: (((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), 563 / 256, "Adobe RGB (1998) compatible (postprod)"),
}


def _xy_to_xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz_matrix(space: ColorSpace | str) -> np.ndarray:
    """Linear RGB (D65 white) -> CIE XYZ (D65) for ``space``."""
    primaries, _, _ = _SPACES[ColorSpace(space)]
    m = np.stack([_xy_to_xyz(*p) for p in primaries], axis=1)
    s = np.linalg.solve(m, _xy_to_xyz(*D65))
    return m * s


def linear_srgb_to(space: ColorSpace | str) -> np.ndarray:
    """3x3 matrix: linear sRGB (the working space) -> linear ``space`` RGB."""
    return np.linalg.solve(rgb_to_xyz_matrix(space), rgb_to_xyz_matrix(ColorSpace.SRGB))


def encode(space: ColorSpace | str, linear: np.ndarray) -> np.ndarray:
    """Apply ``space``'s transfer curve to linear values in [0, 1]."""
    _, trc, _ = _SPACES[ColorSpace(space)]
    v = np.clip(linear, 0.0, 1.0)
    if trc == "srgb":
        return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)
    return np.power(v, 1 / float(trc))


def _s15(v: float) -> bytes:
    return struct.pack(">i", int(round(v * 65536)))


def _xyz_tag(xyz: np.ndarray) -> bytes:
    return b"XYZ " + b"\0" * 4 + b"".join(_s15(float(c)) for c in xyz)


def _curve_tag(trc: str | float) -> bytes:
    if trc == "srgb":
        x = np.linspace(0, 1, 1024)
        y = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
        table = np.round(y * 65535).astype(">u2").tobytes()
        return b"curv" + b"\0" * 4 + struct.pack(">I", 1024) + table
    return b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", int(round(float(trc) * 256)))


def _desc_tag(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return (b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_)) + ascii_
            + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67)


def _text_tag(text: str) -> bytes:
    return b"text" + b"\0" * 4 + text.encode("ascii") + b"\0"


def rgb_to_pcs_matrix(space: ColorSpace | str) -> np.ndarray:
    """Linear RGB -> the profile connection space's XYZ (D50) for ``space``: its primaries adapted from D65
    (Bradford), the colorants its ICC profile carries."""
    m = rgb_to_xyz_matrix(space)
    cone_src, cone_dst = _BRADFORD @ (m @ np.ones(3)), _BRADFORD @ D50_XYZ
    return np.linalg.inv(_BRADFORD) @ np.diag(cone_dst / cone_src) @ _BRADFORD @ m


@lru_cache(maxsize=None)
def icc_profile(space: ColorSpace | str) -> bytes:
    """The ICC v2 display profile of ``space`` (bytes to embed in an export)."""
    space = ColorSpace(space)
    _, trc, name = _SPACES[space]
    m50 = rgb_to_pcs_matrix(space)
    curve = _curve_tag(trc)
    tags = [
        (b"desc", _desc_tag(name)),
        (b"cprt", _text_tag("No copyright, use freely")),
        (b"wtpt", _xyz_tag(D50_XYZ)),
        (b"rXYZ", _xyz_tag(m50[:, 0])),
        (b"gXYZ", _xyz_tag(m50[:, 1])),
        (b"bXYZ", _xyz_tag(m50[:, 2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    placed: dict[bytes, int] = {}
    for sig, body in tags:
        if body in placed:  # the three TRCs share one curve
            table += sig + struct.pack(">II", placed[body], len(body))
            continue
        while (offset + len(data)) % 4:
            data += b"\0"
        placed[body] = offset + len(data)
        table += sig + struct.pack(">II", placed[body], len(body))
        data += body
    body = struct.pack(">I", len(tags)) + table + data
    size = 128 + len(body)
    header = (
        struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"APPL" + b"\0" * 4 + b"\0" * 8
        + b"\0" * 8 + struct.pack(">I", 0) + b"".join(_s15(float(c)) for c in D50_XYZ) + b"ppdp"
        + b"\0" * 16 + b"\0" * 28
    )
    assert len(header) == 128
    return header + body


# --- reading a matrix/TRC profile --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatrixShaper:
    """An RGB matrix/TRC ICC profile, read: each channel's tone curve and the colorants (PCS XYZ, D50).

    The working spaces a master is saved in (sRGB, Adobe RGB, ProPhoto, Display P3) are all of this kind, and
    converting one to another is then two curves and a matrix, in floating point: what Pillow's LittleCMS does
    only at 8 bits for a colour picture.

    Attributes
    ----------
    colorants : ndarray, (3, 3)
        Columns rXYZ, gXYZ, bXYZ.
    curves : list of (kind, values)
        Per channel: ``("gamma", [g])``, ``("table", samples)`` or ``("para", [type, params...])``.
    """

    colorants: np.ndarray
    curves: list[tuple[str, np.ndarray]]

    def to_linear(self, encoded: np.ndarray) -> np.ndarray:
        """Encoded values (0-1, (..., 3)) to linear ones, each channel through its curve."""
        out = np.empty_like(encoded, dtype=np.float32)
        for c, (kind, v) in enumerate(self.curves):
            x = np.clip(encoded[..., c], 0.0, 1.0)
            if kind == "gamma":
                y = x ** v[0]
            elif kind == "table":
                y = np.interp(x, np.linspace(0.0, 1.0, v.size), v)
            else:
                y = _parametric(x, v)
            out[..., c] = y
        return out


def _parametric(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """ICC's parametric curve (``para``) of type ``v[0]`` with parameters ``v[1:]``."""
    kind, p = int(v[0]), v[1:]
    g = p[0]
    if kind == 0:
        return x**g
    a, b = p[1], p[2]
    if kind == 1:
        return np.where(x >= -b / a, np.maximum(a * x + b, 0.0) ** g, 0.0)
    if kind == 2:
        c = p[3]
        return np.where(x >= -b / a, np.maximum(a * x + b, 0.0) ** g + c, c)
    if kind == 3:
        c, d = p[3], p[4]
        return np.where(x >= d, np.maximum(a * x + b, 0.0) ** g, c * x)
    c, d, e, f = p[3], p[4], p[5], p[6]
    return np.where(x >= d, np.maximum(a * x + b, 0.0) ** g + e, c * x + f)


_PARA_COUNTS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}


def read_matrix_shaper(icc: bytes) -> MatrixShaper | None:
    """The curves and colorants of an RGB matrix/TRC profile; None for any other profile (a LUT-based one, a
    grey or CMYK one) or a damaged one."""
    try:
        if len(icc) < 132 or icc[16:20] != b"RGB " or icc[20:24] != b"XYZ ":
            return None
        count = struct.unpack_from(">I", icc, 128)[0]
        tags = {}
        for i in range(min(count, 100)):
            sig, off, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
            tags[sig] = icc[off : off + size]
        if b"A2B0" in tags:  # a LUT profile's own conversion would take precedence over its colorants
            return None
        cols = []
        for sig in (b"rXYZ", b"gXYZ", b"bXYZ"):
            t = tags[sig]
            if t[:4] != b"XYZ ":
                return None
            cols.append([v / 65536.0 for v in struct.unpack_from(">3i", t, 8)])
        curves: list[tuple[str, np.ndarray]] = []
        for sig in (b"rTRC", b"gTRC", b"bTRC"):
            t = tags[sig]
            if t[:4] == b"curv":
                n = struct.unpack_from(">I", t, 8)[0]
                if n == 0:
                    curves.append(("gamma", np.array([1.0])))
                elif n == 1:
                    curves.append(("gamma", np.array([struct.unpack_from(">H", t, 12)[0] / 256.0])))
                else:
                    table = np.array(struct.unpack_from(f">{n}H", t, 12), dtype=np.float64) / 65535.0
                    curves.append(("table", table))
            elif t[:4] == b"para":
                kind = struct.unpack_from(">H", t, 8)[0]
                if kind not in _PARA_COUNTS:
                    return None
                params = [v / 65536.0 for v in struct.unpack_from(f">{_PARA_COUNTS[kind]}i", t, 12)]
                curves.append(("para", np.array([kind, *params])))
            else:
                return None
        return MatrixShaper(np.array(cols, dtype=np.float64).T, curves)
    except (KeyError, struct.error, ValueError):
        return None


@lru_cache(maxsize=1)
def _srgb_from_pcs() -> np.ndarray:
    """PCS XYZ (D50) to linear sRGB: the inverse of sRGB's colorants (:func:`rgb_to_pcs_matrix`)."""
    return np.linalg.inv(rgb_to_pcs_matrix(ColorSpace.SRGB))


def to_linear_srgb(encoded: np.ndarray, profile: MatrixShaper) -> np.ndarray:
    """Encoded RGB in ``profile``'s space (0-1, (..., 3)) to linear sRGB. A colour sRGB cannot show (a ProPhoto
    green) is clipped at 0 where an sRGB channel goes negative, as LittleCMS clips it; above 1 is left for the
    renderer, which clips at white."""
    linear = profile.to_linear(encoded)
    m = (_srgb_from_pcs() @ profile.colorants).astype(np.float32)
    return np.maximum(linear @ m.T, 0.0)
