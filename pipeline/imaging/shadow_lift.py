"""A lift of a picture's shadows: what a retoucher's Shadows slider does to a backlit frame.

A window or a sky at white holds a backlit frame's exposure where it is (a global push clips it further),
while the room or the foreground reads stops under. The retoucher's move is a tone curve that lifts what
reads under a level and leaves what reads above it alone: a lift of ``ev`` EV at and under ``start``,
easing off to nothing at ``end`` (a smoothstep in log luminance), so the highlights, the sky and the
midtones from ``end`` up are exactly as the corrections render them and no pixel clips that did not.

The curve keeps its order (a darker pixel never ends brighter than a lighter one) and at least half its
contrast anywhere (:data:`MIN_SLOPE`): where the two levels are too close for the lift asked, the ease-off
is widened upward (a reviewer asking for more than the plan proposed lifts into the midtones too), up to
white: a lift whose ease-off would reach past white is held to the most that ends there, so no pixel clips.

Each pixel's RGB is multiplied by the gain its luminance asks for, so its hue and saturation stay as they
were. A rendered source (a JPEG) is lifted in the scene light of its camera-like curve
(:func:`~pipeline.imaging.measure.metering.inverse_tone_curve`), as its exposure is metered: the levels and
the lift are scene light, and the gain is read back in its display light.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from pipeline.imaging.color import luminance
from pipeline.imaging.measure.metering import tone_curve

#: The least slope of the curve in log luminance (1 = contrast kept; 0 = flat): the ease-off from the lift to
#: none spans at least ``1.5 * ev / (1 - MIN_SLOPE)`` EV (a smoothstep's steepest slope is 1.5 its mean).
MIN_SLOPE = 0.5
#: The steepest slope of a smoothstep against its mean.
SMOOTHSTEP_PEAK = 1.5
_LUT_SIZE = 2048
_LUT_FLOOR_LOG2 = -24.0


@dataclass(frozen=True)
class ShadowLift:
    """Lift what reads under ``start`` by ``ev`` EV, easing off to nothing at ``end`` (module docstring).

    Attributes
    ----------
    ev : float
        The lift at and under ``start``, in EV (> 0).
    start, end : float
        Linear luminance levels, ``0 < start < end``, in the light the corrections render (scene light for a
        rendered source): the lift is whole under ``start`` and none from ``end`` (or higher, where the lift
        needs a wider ease-off to keep :data:`MIN_SLOPE`).
    rendered : bool
        The pixels are a rendered source's display light: lifted in its scene light.

    Raises
    ------
    ValueError
        If ``ev`` is not positive and finite, or the levels are not ``0 < start < end``.
    """

    ev: float
    start: float
    end: float
    rendered: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ev) and self.ev > 0):
            raise ValueError(f"a shadow lift must be a positive number of EV, got {self.ev!r}")
        if not (math.isfinite(self.start) and math.isfinite(self.end) and 0 < self.start < self.end):
            raise ValueError(f"a shadow lift's levels must be 0 < start < end, got {self.start!r}, {self.end!r}")

    @property
    def span_ev(self) -> float:
        """The ease-off's width in EV: from ``start`` to ``end``, or wider where the lift needs it, up to white
        (1.0): a lift past white would clip what it lifts."""
        wanted = max(math.log2(self.end / self.start), SMOOTHSTEP_PEAK * self.ev / (1.0 - MIN_SLOPE))
        return min(wanted, max(-math.log2(self.start), math.log2(self.end / self.start)))

    @property
    def lift(self) -> float:
        """The lift applied under ``start``, in EV: :attr:`ev`, or less where its ease-off would reach past white."""
        return min(self.ev, self.span_ev * (1.0 - MIN_SLOPE) / SMOOTHSTEP_PEAK)

    def lift_ev(self, luminance: np.ndarray | float) -> np.ndarray:
        """The lift, in EV, of pixels at ``luminance`` (linear, the light of :attr:`start`)."""
        u = np.log2(np.maximum(np.asarray(luminance, dtype=np.float64), 2.0**_LUT_FLOOR_LOG2))
        t = np.clip((u - math.log2(self.start)) / self.span_ev, 0.0, 1.0)
        return self.lift * (1.0 - t * t * (3.0 - 2.0 * t))

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(luminance, gain)`` samples over the pixels' own light (display light for a rendered source), up to
        the ease-off's top (white, for a rendered source); the gain is 1 above."""
        top = math.log2(self.start) + self.span_ev
        if not self.rendered:
            y = np.concatenate([[0.0], np.logspace(_LUT_FLOOR_LOG2, top, _LUT_SIZE - 1, base=2.0)])
            return y.astype(np.float32), (2.0 ** self.lift_ev(y)).astype(np.float32)
        scene = np.concatenate([[0.0], np.logspace(_LUT_FLOOR_LOG2, min(top, 0.0), _LUT_SIZE - 1, base=2.0)])
        y = np.asarray(tone_curve(scene), dtype=np.float64)
        lifted = np.asarray(tone_curve(np.minimum(scene * 2.0 ** self.lift_ev(scene), 1.0)), dtype=np.float64)
        keep = np.concatenate([[True], np.diff(y) > 0])  # the curve's flat foot: one sample per level
        y, lifted = y[keep], lifted[keep]
        gain = lifted / np.maximum(y, 2.0**_LUT_FLOOR_LOG2)
        gain[0] = gain[1]
        return y.astype(np.float32), gain.astype(np.float32)

    def gains(self, luminance: np.ndarray) -> np.ndarray:
        """The gain each pixel of ``luminance`` (the pixels' own light) is multiplied by; 1 from the ease-off's
        top up."""
        y, gain = self._table
        return np.interp(luminance, y, gain, right=1.0).astype(np.float32)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Lift ``rgb`` (float32, (..., 3), linear with sRGB primaries) in place; returns it."""
        rgb *= self.gains(luminance(rgb))[..., None]
        return rgb
