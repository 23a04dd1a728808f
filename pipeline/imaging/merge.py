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
- a pixel no frame holds (clipped in the darkest) reads the darkest frame's
  full scale (at least that bright).

Frames shot hand-held are aligned to the reference first by their whole-frame
translation (phase correlation of their log luminance, on a proxy); a frame
shifted more than :data:`MAX_SHIFT` of its long edge is left out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator

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
    out = decoded.astype(np.float32)  # a copy the merge may scale in place: the caller's decode is never changed
    if decoded.dtype == np.uint16:
        out *= np.float32(1.0 / 65535.0)
    return out


def _hold(v: np.ndarray) -> np.ndarray:
    """Each pixel's weight for how far its brightest channel ``v`` is from clipping (1 below FADE_FROM, 0 above
    CLIPPED_AT)."""
    return np.clip((np.float32(CLIPPED_AT) - v) / np.float32(CLIPPED_AT - FADE_FROM), 0.0, 1.0)


def _luma_proxy(rgb: np.ndarray, step: int) -> np.ndarray:
    small = rgb[::step, ::step]
    if small.dtype == np.uint16:
        small = small.astype(np.float32) * np.float32(1.0 / 65535.0)
    return small @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def _proxy_step(shape: tuple[int, ...]) -> int:
    return max(1, math.ceil(max(shape[0], shape[1]) / ALIGN_LONG_EDGE))


def translation(reference_luma: np.ndarray, frame: np.ndarray, gain: float) -> tuple[float, float] | None:
    """The shift (dx, dy, full-resolution pixels) that lays ``frame`` (given ``gain`` times the reference's
    light) onto the reference, whose luminance proxy (:func:`_luma_proxy`) is ``reference_luma``, by phase
    correlation of their log luminance where both read the scene; None when it is more than :data:`MAX_SHIFT`
    of the long edge (not one view)."""
    h, w = frame.shape[:2]
    step = _proxy_step(frame.shape)
    top = np.float32(0.9 * min(1.0, 1.0 / gain))  # the scene level both frames still hold
    a = np.log2(np.clip(reference_luma, 1e-3, top))
    b = np.log2(np.clip(_luma_proxy(frame, step) / np.float32(gain), 1e-3, top))
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(b.astype(np.float32), a.astype(np.float32), window)
    dx, dy = dx * step, dy * step
    if math.hypot(dx, dy) > MAX_SHIFT * max(h, w):
        return None
    return dx, dy


def merge_bracket(reference: np.ndarray, frames: Iterable[tuple[np.ndarray, float, str]]) -> np.ndarray:
    """The bracket merged in the reference's scale, float32 linear light (above 1 where the reference clipped).

    Memory: the merge (three float planes and one float image) and one frame at a time, about 8 times a
    frame's 16-bit decode at its peak besides the frames it is given (``benchmarks/brackets.py``).

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
    ref_luma = _luma_proxy(reference, _proxy_step(reference.shape))
    merged = _float(reference)
    v_ref = brightest_channel(merged)
    weight_sum = _hold(v_ref)  # the reference's own weight: 1 where it holds the pixel
    sure = (weight_sum >= 1.0) & (v_ref > NOISE_FLOOR)  # where the reference's own reading is kept
    merged *= weight_sum[..., None]
    least_light = 1.0  # the darkest frame's share of the reference's light
    apart = np.float32(2.0**GHOST_STOPS)  # more than GHOST_STOPS either way, without a logarithm a pixel
    for decoded, offset_ev, name in frames:
        if decoded.shape != reference.shape:
            raise ValueError(f"bracket frame {name} is {decoded.shape[1]}x{decoded.shape[0]}, the reference "
                             f"{reference.shape[1]}x{reference.shape[0]}")
        frame = _float(decoded)
        del decoded
        gain = 2.0**offset_ev
        shift = translation(ref_luma, frame, gain)
        if shift is None:
            _log.warning("bracket frame %s does not lie on the reference's view (moved more than %.0f%% of the "
                         "frame): left out of the merge", name, MAX_SHIFT * 100)
            continue
        if math.hypot(*shift) >= MIN_SHIFT_PX:
            m = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
            frame = cv2.warpAffine(frame, m, (frame.shape[1], frame.shape[0]), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
        v = brightest_channel(frame)
        w = _hold(v)
        w *= np.float32(gain)
        v *= np.float32(1.0 / gain)  # into the reference's scale
        np.putmask(w, sure & ((v > v_ref * apart) | (v_ref > v * apart)), np.float32(0.0))
        del v
        frame *= (w * np.float32(1.0 / gain))[..., None]  # the frame in the reference's scale, weighted
        merged += frame
        weight_sum += w
        least_light = min(least_light, gain)
        del frame, w
    held = weight_sum > 0
    np.divide(merged, weight_sum[..., None], out=merged, where=held[..., None])
    if not held.all():  # blown in every frame: at least as bright as the darkest frame's full scale
        unheld = ~held
        merged[unheld] = _float(reference[unheld]) * np.float32(1.0 / least_light)
    return merged


def merge_for_delivery(reference: np.ndarray, frames: Iterable[tuple[np.ndarray, float, str]]) -> np.ndarray:
    """:func:`merge_bracket` with each frame brought to the reference's size first where it differs (a reference
    from a smaller decode: the analysis proxy, a preview), rolled off within white (:func:`within_white`): the
    merge the renderer delivers and the review app's previews and 100 % tiles show."""
    h, w = reference.shape[:2]

    def sized() -> Iterator[tuple[np.ndarray, float, str]]:
        for decoded, offset_ev, name in frames:
            if decoded.shape != reference.shape:
                decoded = cv2.resize(decoded, (w, h), interpolation=cv2.INTER_AREA)
            yield decoded, offset_ev, name

    return within_white(merge_bracket(reference, sized()))


def within_white(merged: np.ndarray) -> np.ndarray:
    """A merge's light above full scale rolled off below white, in place, by the highlight shoulder a push's
    highlights take (:func:`~pipeline.imaging.render.highlight_shoulder`), then clipped to [0, 1]: a decode the
    renderer and the review app's previews take as any frame's."""
    from pipeline.imaging.render import highlight_shoulder, source_white

    white = source_white(merged)
    if white > 1.0:
        highlight_shoulder(merged, white)
    return np.clip(merged, 0.0, 1.0, out=merged)
