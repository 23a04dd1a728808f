"""A CMYK output ICC profile for the tests, written from a simple printing model.

No CMYK profile ships with Pillow or the Python packages the project installs, and a press's own
(ISO Coated v2, GRACoL) may not be redistributed; the tests make one. Version 2, output class
(``prtr``), CMYK data, Lab connection space: ``A2B0`` (CMYK to Lab) and ``B2A0`` (Lab to CMYK) as
``lut16Type`` tables, which LittleCMS uses for every intent. The model: each ink takes away its
complement from the paper's white, black takes away from all three (``R = (1 - C)(1 - K)``, in a
1.8 gamma, on a paper of L* 95), inks a quarter impure (their colours mixed with grey: a gamut smaller
than sRGB's, as a press's is), the RGB read as sRGB primaries; the inverse puts the grey
component in black (80 % grey component replacement), so a neutral prints mostly with black, as a
press separation does.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_D50 = np.array([0.9642, 1.0, 0.8249])
_SRGB_TO_XYZ_D65 = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
_D65 = _SRGB_TO_XYZ_D65.sum(axis=1)
_ADAPT = np.linalg.inv(_BRADFORD) @ np.diag((_BRADFORD @ _D50) / (_BRADFORD @ _D65)) @ _BRADFORD
_RGB_TO_XYZ_D50 = _ADAPT @ _SRGB_TO_XYZ_D65
_PAPER = 0.88  # the paper's reflectance (L* about 95)
_GAMMA = 1.8
_GCR = 0.8
_IMPURITY = 0.25  # each ink's colour mixed with grey: a press's gamut, smaller than sRGB's in saturated blues


def _lab(xyz: np.ndarray) -> np.ndarray:
    t = xyz / _D50
    f = np.where(t > (6 / 29) ** 3, np.cbrt(np.maximum(t, 0.0)), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def _xyz(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    t = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    return t * _D50


def cmyk_to_lab(cmyk: np.ndarray) -> np.ndarray:
    """The model's Lab (D50) of ink amounts 0-1, (..., 4)."""
    c, m, y, k = (cmyk[..., i] for i in range(4))
    rgb = np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], axis=-1)
    rgb = (1 - _IMPURITY) * rgb + _IMPURITY * rgb.mean(axis=-1, keepdims=True)  # inks that are not pure
    linear = _PAPER * rgb**_GAMMA
    return _lab(linear @ _RGB_TO_XYZ_D50.T)


def lab_to_cmyk(lab: np.ndarray) -> np.ndarray:
    """The model's separation of Lab (D50), (..., 3): ink amounts 0-1, out-of-gamut colours clipped."""
    linear = _xyz(lab) @ np.linalg.inv(_RGB_TO_XYZ_D50).T
    rgb = np.clip(np.clip(linear / _PAPER, 0.0, 1.0) ** (1 / _GAMMA), 0.0, 1.0)
    rgb = np.clip((rgb - _IMPURITY * rgb.mean(axis=-1, keepdims=True)) / (1 - _IMPURITY), 0.0, 1.0)
    k = _GCR * (1 - rgb.max(axis=-1))
    rest = np.maximum(1 - k, 1e-6)[..., None]
    cmy = np.clip(1 - rgb / rest, 0.0, 1.0)
    return np.concatenate([cmy, k[..., None]], axis=-1)


def _lab16(lab: np.ndarray) -> np.ndarray:
    """ICC v2's 16-bit Lab encoding (L 0-100 on 0-0xFF00, a and b -128-128 on 0-0xFFFF, 0 at 0x8000)."""
    out = np.stack([lab[..., 0] * 652.80, (lab[..., 1] + 128) * 256, (lab[..., 2] + 128) * 256], axis=-1)
    return np.clip(np.rint(out), 0, 65535).astype(">u2")


def _lut16(in_ch: int, out_ch: int, grid: int, clut: np.ndarray) -> bytes:
    identity = struct.pack(">9i", 65536, 0, 0, 0, 65536, 0, 0, 0, 65536)
    ramp = np.array([0, 65535], ">u2").tobytes()
    head = b"mft2" + bytes(4) + struct.pack(">BBBB", in_ch, out_ch, grid, 0) + identity + struct.pack(">HH", 2, 2)
    return head + ramp * in_ch + clut.astype(">u2").tobytes() + ramp * out_ch


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + struct.pack(">II", 0, 0) + bytes(3 + 67)


def write_cmyk_profile(path: Path, description: str = "postprod test CMYK (simple press model)") -> Path:
    """Write the profile to ``path``; returns it."""
    grid4, grid3 = 9, 33
    axis4 = np.linspace(0.0, 1.0, grid4)
    cmyk = np.stack(np.meshgrid(axis4, axis4, axis4, axis4, indexing="ij"), axis=-1).reshape(-1, 4)
    a2b = _lut16(4, 3, grid4, _lab16(cmyk_to_lab(cmyk)))
    codes = np.linspace(0.0, 65535.0, grid3)
    l16, a16, b16 = np.meshgrid(codes, codes, codes, indexing="ij")
    lab = np.stack([l16 / 652.80, a16 / 256 - 128, b16 / 256 - 128], axis=-1).reshape(-1, 3)
    b2a = _lut16(3, 4, grid3, np.clip(np.rint(lab_to_cmyk(lab) * 65535), 0, 65535))
    wtpt = b"XYZ " + bytes(4) + struct.pack(">3i", *(round(v * 65536) for v in _D50))
    tags = [(b"desc", _desc(description)), (b"cprt", b"text" + bytes(4) + b"No copyright, use freely\0"),
            (b"wtpt", wtpt), (b"A2B0", a2b), (b"B2A0", b2a)]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, body = [], b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        entries.append(struct.pack(">4sII", sig, offset + len(body), len(data)))
        body += data
    size = 128 + table_size + len(body)
    header = struct.pack(">I4sI4s4s4s", size, b"lcms", 0x02100000, b"prtr", b"CMYK", b"Lab ")
    header += bytes(12) + b"acsp" + b"APPL" + bytes(4) + bytes(8) + bytes(8) + struct.pack(">I", 0)
    header += struct.pack(">3i", *(round(v * 65536) for v in _D50)) + b"lcms" + bytes(44)
    assert len(header) == 128, len(header)
    path.write_bytes(header + struct.pack(">I", len(tags)) + b"".join(entries) + body)
    return path
