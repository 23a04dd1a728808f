"""The light and the exposure a frame was taken with, in terms every frame of a shoot shares.

Frames of one scene share the light and differ in how the camera took them:
its auto white balance aims at the light and misses by a different amount
from frame to frame, and its shutter, aperture and ISO change the exposure.
To compare frames, both are taken off:

- **White balance.** A RAW proxy is rendered with the camera's As Shot white
  balance (:class:`~pipeline.kernel.records.CameraRawDefaults`), so the colour
  its neutrals show (the measured cast) depends on that white. Scaled back by
  the As Shot white (channel by channel in linear sRGB, von Kries: a white
  balance is a gain per channel, and the renderer applies its corrections as
  gains in this space) the cast becomes the scene's light, the same for every
  frame under that light whatever the camera chose. A rendered file (JPEG) has
  no As Shot white to take off: its reference is its own rendering (D65).
  A correction is described the same way: the *white* a frame is rendered at
  (Camera Raw's Temperature/Tint, as a chromaticity) is the light its gains
  render neutral, scaled back by its As Shot white.
- **Exposure.** :func:`exposure_settings_ev` is the exposure the camera gave
  the sensor (shutter time times ISO over the f-number squared, in stops);
  the light a frame saw is its metered luminance less that.

Pure scalar maths in double precision; chromaticities are CIE 1931 ``(x, y)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pipeline.imaging.camera_raw import D65_XY, temperature_tint_to_xy, xy_to_temperature_tint, xy_to_xyz, xyz_to_xy

# Linear sRGB (Rec.709 primaries, D65) <-> XYZ, as measure.colour reads the proxy.
_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_XYZ_TO_SRGB = np.linalg.inv(_SRGB_TO_XYZ)
_D65_XYZ = _SRGB_TO_XYZ.sum(axis=1)
# Y of L* = 50: measure.colour reports the cast of the neutrals brought to mid grey.
_MID_GREY_Y = ((50.0 + 16.0) / 116.0) ** 3
# Floor of a channel before dividing by it (a white far outside the sRGB gamut).
_MIN_CHANNEL = 1e-4


def adapt(xy: tuple[float, float], source_white: tuple[float, float],
          target_white: tuple[float, float]) -> tuple[float, float]:
    """Chromaticity ``xy`` seen under ``source_white``, seen under ``target_white`` instead.

    Von Kries in linear sRGB: each channel is scaled by the ratio of the two
    whites' channels, as a camera's white balance (and the renderer's gains)
    scale channels. LibRaw balances in the camera's own space, close to this
    one for whites a few tens of mired apart.
    """
    src = np.clip(xy_to_rgb(source_white), _MIN_CHANNEL, None)
    dst = np.clip(xy_to_rgb(target_white), _MIN_CHANNEL, None)
    return rgb_to_xy(xy_to_rgb(xy) * dst / src)


def lab50_to_xy(a: float, b: float) -> tuple[float, float]:
    """Chromaticity of the CIE Lab colour ``(50, a, b)`` (D65 white): how measure_exposure reports a cast."""
    fy = (50.0 + 16.0) / 116.0
    fx, fz = fy + a / 500.0, fy - b / 200.0

    def finv(t: float) -> float:
        return t**3 if t > 6 / 29 else 3 * (6 / 29) ** 2 * (t - 4 / 29)

    xyz = _D65_XYZ * np.array([finv(fx), finv(fy), finv(fz)])
    return xyz_to_xy(xyz)


def xy_to_lab50(xy: tuple[float, float]) -> tuple[float, float]:
    """CIE Lab ``(a*, b*)`` of the chromaticity ``xy`` brought to L* = 50 (inverse of :func:`lab50_to_xy`)."""
    xyz = xy_to_xyz(*xy) * _MID_GREY_Y
    t = xyz / _D65_XYZ
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return float(500.0 * (f[0] - f[1])), float(200.0 * (f[1] - f[2]))


def rgb_to_xy(rgb: Sequence[float]) -> tuple[float, float]:
    """Chromaticity of a linear sRGB colour."""
    return xyz_to_xy(_SRGB_TO_XYZ @ np.asarray(rgb, dtype=np.float64))


def xy_to_rgb(xy: tuple[float, float]) -> np.ndarray:
    """Linear sRGB of a chromaticity at luminance 1 (unclipped)."""
    return _XYZ_TO_SRGB @ xy_to_xyz(*xy)


def scene_light(cast_a: float, cast_b: float, as_shot_xy: tuple[float, float] | None) -> tuple[float, float]:
    """The light a frame's neutrals were under, from their measured cast and the frame's As Shot white.

    Parameters
    ----------
    cast_a, cast_b : float
        CIE Lab a*, b* of the frame's near-neutral pixels at L* = 50 (the record's colour group).
    as_shot_xy : (float, float) or None
        The As Shot white the proxy was rendered with; None for a rendered
        file, whose reference is its own rendering (D65).

    Returns
    -------
    (float, float)
        Chromaticity of the light.
    """
    seen = lab50_to_xy(cast_a, cast_b)
    return seen if as_shot_xy is None else adapt(seen, D65_XY, as_shot_xy)


def rendered_white(gains: Sequence[float], as_shot_xy: tuple[float, float] | None) -> tuple[float, float]:
    """The white a frame is rendered at after ``gains``: the light they render neutral.

    The gains multiply the proxy's linear sRGB, so the colour they turn into
    grey is ``1 / gains``; adapted back to the As Shot white it is the light
    (Camera Raw's Temperature/Tint) the corrected frame is balanced for. Gains
    of 1 leave a frame at its As Shot white (D65 for a rendered file).

    Raises
    ------
    ValueError
        If a gain is not a positive number.
    """
    g = np.asarray(gains, dtype=np.float64)
    if g.shape != (3,) or not np.all(g > 0) or not np.all(np.isfinite(g)):
        raise ValueError(f"gains must be three positive numbers, got {list(gains)}")
    neutral = rgb_to_xy(1.0 / g)
    return neutral if as_shot_xy is None else adapt(neutral, D65_XY, as_shot_xy)


def gains_for_white(white_xy: tuple[float, float], as_shot_xy: tuple[float, float] | None) -> np.ndarray:
    """Linear gains that render a frame at ``white_xy`` (inverse of :func:`rendered_white`).

    The light ``white_xy`` shows in the frame's As Shot rendering as a colour;
    the gains turn that colour grey and keep its luminance, as
    :func:`pipeline.imaging.white_balance.white_balance_gains` does for a measured cast.
    """
    seen = white_xy if as_shot_xy is None else adapt(white_xy, as_shot_xy, D65_XY)
    colour = np.clip(xy_to_rgb(seen), _MIN_CHANNEL, None)
    gains = 1.0 / colour
    luma = _SRGB_TO_XYZ[1]
    return gains * (luma @ colour) / (luma @ (gains * colour))


def seen_as(white_xy: tuple[float, float], as_shot_xy: tuple[float, float] | None) -> tuple[float, float]:
    """The colour (Lab a*, b* at L* = 50) a neutral lit by ``white_xy`` shows in the frame's As Shot rendering."""
    return xy_to_lab50(white_xy if as_shot_xy is None else adapt(white_xy, as_shot_xy, D65_XY))


def as_shot_xy(temperature_k: float | None, tint: float | None) -> tuple[float, float] | None:
    """Chromaticity of Camera Raw's As Shot (Temperature, Tint); None when the file has none."""
    if temperature_k is None or tint is None or not temperature_k > 0:
        return None
    return temperature_tint_to_xy(temperature_k, tint)


def mired_tint(xy: tuple[float, float]) -> tuple[float, float]:
    """Camera Raw's (mired, Tint) of a white: 1e6 / Temperature, and the tint (+ magenta)."""
    temperature, tint = xy_to_temperature_tint(*xy)
    return 1e6 / temperature, tint


def xy_to_uv(xy: tuple[float, float]) -> tuple[float, float]:
    """CIE 1960 (u, v) of a chromaticity: near uniform for whites, where medians and blends are taken."""
    x, y = xy
    d = -2.0 * x + 12.0 * y + 3.0
    return 4.0 * x / d, 6.0 * y / d


def uv_to_xy(uv: tuple[float, float]) -> tuple[float, float]:
    """Inverse of :func:`xy_to_uv`."""
    u, v = uv
    d = 2.0 * u - 8.0 * v + 4.0
    return 3.0 * u / d, 2.0 * v / d


def exposure_settings_ev(shutter_s: float | None, aperture: float | None, iso: float | None) -> float | None:
    """The exposure the camera gave the picture, in stops: ``log2(shutter * ISO / 100 / f-number**2)``.

    One stop more is twice the light on the sensor (or twice the gain), so two
    frames of one scene taken at settings one stop apart come out one stop
    apart. None when a setting is missing or not positive.
    """
    if shutter_s is None or aperture is None or iso is None:
        return None
    if not (shutter_s > 0 and aperture > 0 and iso > 0):
        return None
    if not all(math.isfinite(v) for v in (shutter_s, aperture, iso)):
        return None
    return math.log2(shutter_s * iso / 100.0 / aperture**2)
