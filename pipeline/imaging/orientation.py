"""Positions on the sensor and in the picture as it is viewed.

A camera held upright (portrait) writes the sensor's pixels as they are and
an EXIF orientation (6 or 8) that tells viewers to turn them; LibRaw's and
Pillow's decodes apply it. Whatever lives on the sensor (a dust spot, a hot
photosite) is at a fixed *sensor* position and moves around the *viewed*
frame with the orientation, so equipment findings are kept in sensor
coordinates: fractions of the stored (orientation 1) frame, x to the right
and y down.
"""

from __future__ import annotations

# EXIF orientation -> viewed (x, y) as a function of stored (x, y), in fractions 0-1.
# 6: the stored top row becomes the right-hand column; 8: it becomes the left one.
_TO_VIEWED = {
    1: lambda x, y: (x, y),
    2: lambda x, y: (1.0 - x, y),
    3: lambda x, y: (1.0 - x, 1.0 - y),
    4: lambda x, y: (x, 1.0 - y),
    5: lambda x, y: (y, x),
    6: lambda x, y: (1.0 - y, x),
    7: lambda x, y: (1.0 - y, 1.0 - x),
    8: lambda x, y: (y, 1.0 - x),
}
_TO_STORED = {
    1: lambda u, v: (u, v),
    2: lambda u, v: (1.0 - u, v),
    3: lambda u, v: (1.0 - u, 1.0 - v),
    4: lambda u, v: (u, 1.0 - v),
    5: lambda u, v: (v, u),
    6: lambda u, v: (v, 1.0 - u),
    7: lambda u, v: (1.0 - v, 1.0 - u),
    8: lambda u, v: (1.0 - v, u),
}


def _check(orientation: int | None) -> int:
    o = 1 if orientation is None else int(orientation)
    if o not in _TO_VIEWED:
        raise ValueError(f"orientation must be an EXIF orientation 1-8, got {orientation}")
    return o


def sensor_to_viewed(x: float, y: float, orientation: int | None) -> tuple[float, float]:
    """Where a sensor position (fractions of the stored frame) appears in the viewed frame.

    Raises
    ------
    ValueError
        If ``orientation`` is not 1-8 (None counts as 1).
    """
    return _TO_VIEWED[_check(orientation)](float(x), float(y))


def viewed_to_sensor(u: float, v: float, orientation: int | None) -> tuple[float, float]:
    """The sensor position (fractions of the stored frame) of a point of the viewed frame.

    Raises
    ------
    ValueError
        If ``orientation`` is not 1-8 (None counts as 1).
    """
    return _TO_STORED[_check(orientation)](float(u), float(v))


def swaps_axes(orientation: int | None) -> bool:
    """Whether the viewed frame's width is the sensor's height (a quarter turn)."""
    return _check(orientation) in (5, 6, 7, 8)
