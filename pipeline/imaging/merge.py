"""Merging an exposure bracket in scene light (what Lightroom's Photo Merge > HDR does before its tone mapping).

The frames of a bracket are RAW decodes of one view, linear in scene light,
each given ``2**offset_ev`` times the light of the reference frame. Divided by
that, every frame reads the same scene in the reference's scale, and each
pixel is the weighted mean of the frames that hold it:

- a channel at or near the frame's full scale holds nothing (clipped: at
  least that bright, no more is known): its weight fades to 0 between
  :data:`FADE_FROM` and :data:`CLIPPED_AT`;
- otherwise a frame counts in proportion to the light it got (its photon
  noise, in the reference's scale, falls as ``1 / sqrt(2**offset)``: the
  inverse-variance weight is ``2**offset``), so the shadows come from the
  brightest frame that holds them and the highlights from the darkest;
- where the reference holds a pixel (not near clipping, above the noise) and
  another frame reads it more than :data:`GHOST_STOPS` away, that frame saw
  something else there (a person walking, a curtain moving): the reference
  keeps it (no ghost);
- a pixel no frame holds (clipped in the darkest) keeps the darkest frame's
  reading.

Frames shot hand-held are aligned to the reference first by their whole-frame
translation (phase correlation of their log luminance, on a proxy); a frame
shifted more than :data:`MAX_SHIFT` of its long edge is left out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import cv2
import numpy as np

from pipeline.imaging.color import brightest_channel

#: A channel fades out of the merge from this share of full scale ...
FADE_FROM = 0.85
#: ... and holds nothing from this one (LibRaw's decode of a clipped photosite lands at or just below 1).
CLIPPED_AT = 0.95
#: Below this (in the frame's own scale) a pixel is noise rather than a reading, for the ghost test.
NOISE_FLOOR = 0.01
#: A frame reading a pixel the reference holds this many stops away saw something else there (photon noise above
#: :data:`NOISE_FLOOR` is well under it at base ISO).
GHOST_STOPS = 0.5
#: The largest translation aligned, as a share of the long edge (a tripod's bracket moves none; a hand-held
#: one a few pixels).
MAX_SHIFT = 0.02
#: A shift under this many pixels is not applied: a tripod's frames read a few tenths of a pixel apart on their
#: noise and demosaic alone, and resampling them would soften the merge.
MIN_SHIFT_PX = 1.0
#: Long edge of the luminance proxy the translation is measured on.
ALIGN_LONG_EDGE = 1024

_log = logging.getLogger(__name__)


def _float(decoded: np.ndarray) -> np.ndarray:
    if decoded.dtype == np.uint16:
        return decoded.astype(np.float32) * np.float32(1.0 / 65535.0)
    return decoded.astype(np.float32, copy=False)


def _hold(v: np.ndarray) -> np.ndarray:
    """Each pixel's weight for how far its brightest channel ``v`` is from clipping (1 below FADE_FROM, 0 above
    CLIPPED_AT)."""
    return np.clip((np.float32(CLIPPED_AT) - v) / np.float32(CLIPPED_AT - FADE_FROM), 0.0, 1.0)


def _luma_proxy(rgb: np.ndarray, step: int) -> np.ndarray:
    small = rgb[::step, ::step]
    return small @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def translation(reference: np.ndarray, frame: np.ndarray, gain: float) -> tuple[float, float] | None:
    """The shift (dx, dy, full-resolution pixels) that lays ``frame`` (given ``gain`` times the reference's
    light) onto ``reference``, by phase correlation of their log luminance where both read the scene; None when
    it is more than :data:`MAX_SHIFT` of the long edge (not one view)."""
    h, w = reference.shape[:2]
    step = max(1, math.ceil(max(h, w) / ALIGN_LONG_EDGE))
    top = np.float32(0.9 * min(1.0, 1.0 / gain))  # the scene level both frames still hold
    a = np.log2(np.clip(_luma_proxy(reference, step), 1e-3, top))
    b = np.log2(np.clip(_luma_proxy(frame, step) / np.float32(gain), 1e-3, top))
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(b.astype(np.float32), a.astype(np.float32), window)
    dx, dy = dx * step, dy * step
    if math.hypot(dx, dy) > MAX_SHIFT * max(h, w):
        return None
    return dx, dy


def merge_bracket(reference: np.ndarray, frames: Iterable[tuple[np.ndarray, float, str]]) -> np.ndarray:
    """The bracket merged in the reference's scale, float32 linear light (above 1 where the reference clipped).

    Parameters
    ----------
    reference : ndarray, (H, W, 3), uint16 or float32
        The reference frame's decode (linear, 1.0 or 65535 = full scale).
    frames : iterable of (decode, offset_ev, name)
        The other frames, one at a time (each is let go before the next is read): their decodes at the
        reference's size, how many stops more light each got than the reference, and a name for the log.

    Raises
    ------
    ValueError
        If a frame's size differs from the reference's.
    """
    ref = _float(reference)
    v_ref = brightest_channel(ref)
    holds_ref = _hold(v_ref)
    sure = (holds_ref >= 1.0) & (v_ref > NOISE_FLOOR)  # where the reference's own reading is kept
    weight_sum = holds_ref.copy()
    merged = ref * holds_ref[..., None]
    darkest: tuple[np.ndarray, float] | None = None
    for decoded, offset_ev, name in frames:
        if decoded.shape != reference.shape:
            raise ValueError(f"bracket frame {name} is {decoded.shape[1]}x{decoded.shape[0]}, the reference "
                             f"{reference.shape[1]}x{reference.shape[0]}")
        frame = _float(decoded)
        del decoded
        gain = 2.0**offset_ev
        shift = translation(ref, frame, gain)
        if shift is None:
            _log.warning("bracket frame %s does not lie on the reference's view (moved more than %.0f%% of the "
                         "frame): left out of the merge", name, MAX_SHIFT * 100)
            continue
        if math.hypot(*shift) >= MIN_SHIFT_PX:
            m = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
            frame = cv2.warpAffine(frame, m, (frame.shape[1], frame.shape[0]), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
        v = brightest_channel(frame)
        w = _hold(v) * np.float32(gain)
        frame *= np.float32(1.0 / gain)  # into the reference's scale
        v *= np.float32(1.0 / gain)
        apart = np.float32(2.0**GHOST_STOPS)  # more than GHOST_STOPS either way, without a logarithm a pixel
        np.putmask(w, sure & ((v > v_ref * apart) | (v_ref > v * apart)), np.float32(0.0))
        merged += frame * w[..., None]
        weight_sum += w
        if offset_ev < 0 and (darkest is None or offset_ev < darkest[1]):
            darkest = (frame, offset_ev)
        del frame, v, w
    held = weight_sum > 0
    np.divide(merged, weight_sum[..., None], out=merged, where=held[..., None])
    if not held.all():
        np.copyto(merged, darkest[0] if darkest is not None else ref, where=~held[..., None])
    return merged


def within_white(merged: np.ndarray) -> np.ndarray:
    """A merge's light above full scale rolled off below white, in place, by the highlight shoulder a push's
    highlights take (:func:`~pipeline.imaging.render.highlight_shoulder`), then clipped to [0, 1]: a decode the
    renderer and the review app's previews take as any frame's."""
    from pipeline.imaging.render import highlight_shoulder, source_white

    white = source_white(merged)
    if white > 1.0:
        highlight_shoulder(merged, white)
    return np.clip(merged, 0.0, 1.0, out=merged)
