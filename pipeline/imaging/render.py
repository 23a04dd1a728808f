"""Render the chart's renditions: one decode, the planned corrections, one resampling each.

The source is decoded once per image, at the smallest resolution that still
covers the largest rendition (LibRaw's half-size decode when it is enough, the
analysis proxy itself when *it* is enough), and never leaves the worker.

Every correction the renderer applies is linear in scene-linear light: white
balance and exposure are per-channel gains, a face lift is a smooth gain map.
Linear operations commute with (linear) resampling, so they are applied
*after* the geometry, on the rendition's own pixels, instead of on the full
decode: the result is the same to within interpolation rounding, and the
work scales with the output size, not the sensor's. The face gain map is
evaluated at each output pixel's position in the full-resolution frame, so it
is the map a full-resolution render would have, sampled.

Geometry follows Camera Raw's model (:mod:`pipeline.imaging.geometry`): a crop box in
the oriented full-resolution frame, turned by the straightening angle about
its centre. An unturned box shrunk by more than 1.25x is one area
resampling (``cv2.resize``) of the box, its edges on the decode's pixel grid;
otherwise turn, crop and scale are one ``cv2.warpAffine`` from the output
raster onto the turned box, where a large downscale first shrinks the box's
region with an area filter so the warp does not alias.

Where the plan reduces noise (``reduce_noise``), each picture's noise is read on its own raster as resampled (a
band across its middle: :func:`rendition_noise`) and taken out after the local corrections, before the gains
(:mod:`pipeline.imaging.denoise`): a web picture made small has averaged most of a sensor's noise away, a
full-size master has not.

Per rendition, after the gains: conversion to the rendition's colour space,
its transfer curve, output sharpening (unsharp mask on the encoded luminance,
so the halo is even across tones and colours do not fringe), and 8- or 16-bit
quantisation: :func:`render_renditions` returns, per rendition name, an
``(H, W, 3)`` RGB array, ``uint8`` or ``uint16``, encoded in the rendition's
colour space, which the export encodes to files.

Every picture of an image goes through :func:`render_frame`: the delivered
renditions, and the review's previews (:func:`render_preview`, the whole frame
at preview size), so a retoucher approves the corrections the export applies,
not an imitation of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from charts.schema import Chart, Rendition, UpscaleAction
from pipeline.imaging import denoise
from pipeline.imaging.color import brightest_channel
from pipeline.imaging.denoise import NoiseLevels
from pipeline.imaging.decode import (DEFAULT_DECODE_BUDGET_BYTES, decode_raster, decode_raw_linear, develop_flip,
                                    open_raw)
from pipeline.imaging.geometry import Box, inscribed_box, parse_aspect, place_crop, within_upscale
from pipeline.imaging.icc import ColorSpace, linear_srgb_to, rgb_to_xyz_matrix
from pipeline.imaging.lens_profile import LensGrid, LensProfile
from pipeline.imaging.measure.common import remap_points
from pipeline.imaging.measure.exposure import falloff_level
from pipeline.imaging.measure.metering import (
    DETAIL_REACH,
    LevelSplit,
    balance_display_referred,
    darken_display_referred,
    develop,
    display_push_ev,
    encoded_level,
    inverse_tone_curve,
    split_level,
)
from pipeline.imaging.perspective import Keystone, KeystoneMap, frame_map
from pipeline.imaging.red_eye import RED_RATIO, redness
from pipeline.imaging.shadow_lift import ShadowLift
from pipeline.imaging.watermark import file_digest, mark_file
from pipeline.kernel.beside import beside
from pipeline.kernel.records import (
    Operation,
    OperationKind,
    SourceKind,
    pixel_review,
    renderer_applies,
)

#: Bumped whenever a change to this module changes rendered pixels (part of :func:`render_key`).
#: 2: an unturned downscale is one area resampling (it was an area pre-shrink and a cubic warp) (branch perf);
#: 2: the highlight shoulder rolls a push's highlights off into white (branch exposure); 3: both;
#: 4: a rendered source is darkened in its scene light; 5: its white balance moves no colour further than the
#: curve's shoulder lets it (:func:`~pipeline.imaging.measure.metering.balance_display_referred`); 6: a rendered
#: source's darkening keeps its fine detail's displayed contrast (:func:`~pipeline.imaging.measure.metering.split_level`);
#: 7: and so does its white balance; 8: a rendered source's push is the display gain that moves its key as the push
#: moves scene light (:func:`~pipeline.imaging.measure.metering.display_push_ev`); 9: a RAW is developed through the
#: camera-like curve (:attr:`Adjustments.develop_curve`); 10: noise reduction (a ``reduce_noise`` operation).
RENDER_VERSION = 10

# A downscale by more than this is split: area-filter pre-shrink, then the warp.
# Bilinear/bicubic sampling only low-passes about one source pixel, so above
# ~1.5x it aliases (moire on fabric, jagged edges).
_PRESHRINK_ABOVE = 1.25
_U16 = np.float32(1.0 / 65535.0)


# --- what the plan asks the renderer to do ---------------------------------------------------


@dataclass(frozen=True)
class FaceLift:
    """A feathered local brightening of one face, in full-resolution pixels."""

    box: Box
    ev: float
    feather_px: float


@dataclass(frozen=True)
class FaceBlur:
    """A face made unrecognisable for privacy (a ``blur_face`` operation), in full-resolution pixels as shot.

    The ellipse inscribed in ``box`` (the head: :func:`~pipeline.planning.rules.privacy.head_box`) is delivered
    as the smooth field through :data:`BLUR_CELLS` x :data:`BLUR_CELLS` of its own mean colours, its edge
    feathered: the picture keeps a head's light and tone, and the features are gone (averaged away, not
    filtered: no deblurring brings back what a sixteenth of a head's mean does not hold).
    """

    box: Box


@dataclass(frozen=True)
class RedEye:
    """A flash's red pupil (a ``red_eye`` operation's eye), in full-resolution pixels as shot: its centre and radius.

    The renderer takes the red out of it (:func:`apply_red_eyes`)."""

    x: float
    y: float
    radius: float


@dataclass(frozen=True)
class NoiseReduction:
    """A ``reduce_noise`` operation: the strengths (0-2, 1 the tuned amount) of :func:`~pipeline.imaging.denoise.
    reduce_noise`, applied to each picture at its own size, by the noise read there."""

    luminance: float
    colour: float
    #: Of the noise each picture reads (brightness, red less green, blue less green), the share that is noise: 1,
    #: or less where the shoot's other frames from the same camera say the frame's reading is mostly fine texture
    #: (:func:`~pipeline.planning.rules.noise.noise_shares`).
    shares: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def of(self, levels: NoiseLevels | None) -> NoiseLevels | None:
        """The noise ``levels`` a picture reads, each times its :attr:`shares`."""
        if levels is None or self.shares == (1.0, 1.0, 1.0):
            return levels
        luma, red_green, blue_green = self.shares
        return NoiseLevels(levels.luma * luma, levels.red_green * red_green, levels.blue_green * blue_green)


@dataclass(frozen=True)
class Adjustments:
    """The renderer's share of an image's operations, in full-resolution pixels.

    Attributes
    ----------
    wb_gains : tuple of float
        Linear working-RGB multipliers (R, G, B); ``(1, 1, 1)`` leaves white balance alone.
    exposure_ev : float
        Global exposure change in EV (gain ``2**exposure_ev``; a rendered source's push: :attr:`gain_ev`).
    source_level : float or None
        A rendered source's level (:func:`source_level`), for a push's :attr:`gain_ev`: set by
        :meth:`for_source` from the decoded pixels; None before.
    faces : tuple of FaceLift
    blurs : tuple of FaceBlur
        Faces delivered unrecognisable (privacy), before the face lifts.
    angle_deg : float
        Straightening angle: every frame is turned by it (counter-clockwise on screen).
    crops : dict
        Chart crop aspect (``"4:5"``) -> crop box ``(x, y, w, h)``.
    crop_turns : dict
        Chart crop aspect -> a reviewer's extra turn of that crop in degrees,
        on top of ``angle_deg`` (a crop op's ``rotate_deg``); absent = none.
    display_referred : bool
        The source is a rendered picture (JPEG, TIFF): a darkening is applied in the scene light of
        its camera-like curve (:func:`scene_gain`), as its exposure was metered, not as a gain on its
        display light (which turns its whites grey).
    backdrop_rgb : tuple of float or None
        A white backdrop's colour as decoded (a ``whiten_backdrop`` operation): its pixels are delivered white
        (:func:`backdrop_alpha`); None leaves every pixel as the corrections render it.
    backdrop_falloff : tuple of float or None
        How that backdrop's light falls off across the image (the operation's ``falloff``,
        :func:`~pipeline.imaging.measure.exposure.falloff_level`): its white is read against its level at each
        place (:func:`backdrop_levels`); None: one level, ``backdrop_rgb``, everywhere.
    crop_pads : dict
        Chart crop aspect -> the colour (linear, as decoded) a crop reaching beyond the frame is padded with
        (a crop op's ``pad_rgb``: a packshot's canvas extended with its backdrop); absent = not padded.
    pad_rgb : tuple of float or None
        The pad of the frame being rendered (:meth:`for_crop`): the part of an unturned frame beyond the image
        is filled with it (:func:`padded_split`); None repeats the image's edge, as before.
    pad_falloff : tuple of float or None
        The backdrop's falloff across the image (a padded crop op's ``pad_falloff``): the pad goes on from the
        image's edge at the backdrop's level there (:func:`falloff_level`), so no seam shows where it joins a sweep
        that falls off; None: ``pad_rgb`` throughout.
    shadow_lift : ShadowLift or None
        A ``lift_shadows`` operation's tone curve (:class:`~pipeline.imaging.shadow_lift.ShadowLift`), applied
        after the exposure; None leaves the shadows as the corrections render them.
    lens : LensProfile or None
        A ``lens_correction`` operation's profile (:mod:`pipeline.imaging.lens_profile`): its distortion,
        vignetting and chromatic aberration undone in the resampling; None renders the picture as the lens drew it.
    keystone : Keystone or None
        A straighten operation's ``keystone`` (:mod:`pipeline.imaging.perspective`): the verticals' convergence undone
        in the resampling, after the lens's correction; None leaves it.
    develop_curve : bool
        The source is scene light (a RAW) developed through the camera-like curve
        (:func:`~pipeline.imaging.measure.metering.develop`), after every correction, as a raw converter develops
        one: the look the exposure meter's well-exposed photograph is defined by. False: scene light is delivered as
        it is (a rendered source, whose curve is in its pixels already, or a chart's ``raw_tone_curve: linear``).
    noise : NoiseReduction or None
        A ``reduce_noise`` operation: each picture's noise read at its size (:func:`rendition_noise`) and taken out
        (:func:`~pipeline.imaging.denoise.reduce_noise`) after the face lifts; None leaves the grain.
    """

    wb_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    exposure_ev: float = 0.0
    source_level: float | None = None
    faces: tuple[FaceLift, ...] = ()
    blurs: tuple[FaceBlur, ...] = ()
    red_eyes: tuple[RedEye, ...] = ()
    angle_deg: float = 0.0
    crops: Mapping[str, Box] = field(default_factory=dict)
    crop_turns: Mapping[str, float] = field(default_factory=dict)
    display_referred: bool = False
    backdrop_rgb: tuple[float, float, float] | None = None
    backdrop_falloff: tuple[float, ...] | None = None
    crop_pads: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)
    pad_rgb: tuple[float, float, float] | None = None
    pad_falloff: tuple[float, ...] | None = None
    shadow_lift: ShadowLift | None = None
    lens: LensProfile | None = None
    keystone: Keystone | None = None
    develop_curve: bool = False
    noise: NoiseReduction | None = None

    def for_crop(self, aspect: str | None) -> Adjustments:
        """These adjustments as the frame of a rendition cropped to ``aspect`` is turned and padded."""
        turn = self.crop_turns.get(aspect, 0.0) if aspect is not None else 0.0
        pad = self.crop_pads.get(aspect) if aspect is not None else None
        if not turn and pad == self.pad_rgb:
            return self
        return dataclasses.replace(self, angle_deg=self.angle_deg + turn, pad_rgb=pad)

    @property
    def gain_ev(self) -> float:
        """The exposure as the gain on the decoded pixels, in EV: ``exposure_ev``, but a rendered source's push is the
        gain on its display light that moves its level as ``exposure_ev`` moves scene light
        (:func:`~pipeline.imaging.measure.metering.display_push_ev`, at ``source_level``)."""
        if self.display_referred and self.exposure_ev > 0:
            return display_push_ev(self.exposure_ev, self.source_level)
        return self.exposure_ev

    def for_source(self, decoded: np.ndarray) -> Adjustments:
        """These adjustments with a rendered source's push matched at its own level (:func:`source_level`),
        read once from the whole decoded picture, so that every rendition and preview gets the same gain."""
        if not (self.display_referred and self.exposure_ev > 0) or self.source_level is not None:
            return self
        return dataclasses.replace(self, source_level=source_level(decoded))


def _box(value: Any, op: Operation) -> Box:
    try:
        x, y, w, h = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"operation {op.op_id}: box must be [x, y, w, h], got {value!r}") from None
    if not (w > 0 and h > 0):
        raise ValueError(f"operation {op.op_id}: box {value!r} has no area")
    return (x, y, w, h)


def _colour(value: Any, name: str, op: Operation) -> tuple[float, float, float]:
    c = np.asarray(value, dtype=np.float64)
    if c.shape != (3,) or not np.all(np.isfinite(c)) or not np.all(c > 0):
        raise ValueError(f"operation {op.op_id}: {name} must be three positive numbers, got {value!r}")
    return float(c[0]), float(c[1]), float(c[2])


def _falloff(value: Any, op: Operation) -> tuple[float, ...] | None:
    if value is None:
        return None
    c = np.asarray(value, dtype=np.float64)
    if c.shape != (6,) or not np.all(np.isfinite(c)):
        raise ValueError(f"operation {op.op_id}: falloff must be six numbers, got {value!r}")
    return tuple(float(v) for v in c)


def adjustments_from_operations(operations: Sequence[Operation], display_referred: bool = False,
                                develop_curve: bool = False) -> Adjustments:
    """Collect the operations the renderer carries out (``applied_by == renderer``).

    Parameters
    ----------
    operations : sequence of Operation
        The plan's operations for one image (see :class:`pipeline.kernel.records.Operation`).
        Kinds read: ``exposure {"ev"}``, ``white_balance {"gains": [r, g, b]}``,
        ``brighten_face {"box", "ev", "feather_px"}``, ``blur_face {"box"}``, ``red_eye {"eyes"}``,
        ``straighten {"angle_deg", "keystone"?}``,
        ``crop {"aspect", "box", "rotate_deg"?, "pad_rgb"?, "pad_falloff"?}``,
        ``whiten_backdrop {"backdrop_rgb": [r, g, b], "falloff"?}``, ``lift_shadows {"ev", "start", "end"}``,
        ``lens_correction`` (:meth:`~pipeline.imaging.lens_profile.LensProfile.as_params`),
        ``reduce_noise {"luminance", "colour"}``. Flag
        and reject, every operation left to a retoucher (but one marked ``render_on_accept`` that a reviewer
        accepted: :func:`~pipeline.kernel.records.renderer_applies`) and every operation a reviewer rejected are
        ignored.
    display_referred : bool
        The source is a rendered picture (:attr:`Adjustments.display_referred`).
    develop_curve : bool
        Develop the scene light through the camera-like curve (:attr:`Adjustments.develop_curve`): a RAW's.

    Returns
    -------
    Adjustments
        Several exposure or white-balance operations compose (gains multiply, EVs add).

    Raises
    ------
    ValueError
        If an operation the renderer must apply lacks a parameter or has a
        malformed one (the plan and the renderer disagree: a programming error).
    """
    gains = np.ones(3)
    ev = 0.0
    angle = 0.0
    faces: list[FaceLift] = []
    blurs: list[FaceBlur] = []
    red_eyes: list[RedEye] = []
    crops: dict[str, Box] = {}
    turns: dict[str, float] = {}
    pads: dict[str, tuple[float, float, float]] = {}
    backdrop: tuple[float, float, float] | None = None
    falloff: tuple[float, ...] | None = None
    pad_falloff: tuple[float, ...] | None = None
    lift: ShadowLift | None = None
    lens: LensProfile | None = None
    keystone: Keystone | None = None
    noise: NoiseReduction | None = None
    for op in operations:
        if not renderer_applies(op.applied_by, op.params, op.review):
            continue  # a person's job, or turned down by a reviewer
        p = op.params
        try:
            if op.kind == OperationKind.EXPOSURE:
                ev += float(p["ev"])
            elif op.kind == OperationKind.WHITE_BALANCE:
                g = np.asarray(p["gains"], dtype=np.float64)
                if g.shape != (3,) or not np.all(np.isfinite(g)) or not np.all(g > 0):
                    raise ValueError(f"operation {op.op_id}: gains must be three positive numbers, got {p['gains']!r}")
                gains = gains * g
            elif op.kind == OperationKind.BRIGHTEN_FACE:
                faces.append(FaceLift(_box(p["box"], op), float(p["ev"]), max(0.0, float(p.get("feather_px", 0.0)))))
            elif op.kind == OperationKind.BLUR_FACE:
                blurs.append(FaceBlur(_box(p["box"], op)))
            elif op.kind == OperationKind.RED_EYE:
                for eye in p["eyes"]:
                    x, y, r = (float(v) for v in eye)
                    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(r) and r > 0):
                        raise ValueError(f"operation {op.op_id}: an eye must be x, y and a positive radius, "
                                         f"got {eye!r}")
                    red_eyes.append(RedEye(x, y, r))
            elif op.kind == OperationKind.STRAIGHTEN:
                angle += float(p["angle_deg"])
                if p.get("keystone") is not None:
                    keystone = Keystone.from_params(p["keystone"])
            elif op.kind == OperationKind.CROP:
                crops[str(p["aspect"])] = _box(p["box"], op)
                if float(p.get("rotate_deg") or 0.0):
                    turns[str(p["aspect"])] = float(p["rotate_deg"])
                if p.get("pad_rgb") is not None:
                    pads[str(p["aspect"])] = _colour(p["pad_rgb"], "pad_rgb", op)
                    pad_falloff = _falloff(p.get("pad_falloff"), op) or pad_falloff
            elif op.kind == OperationKind.WHITEN_BACKDROP:
                backdrop = _colour(p["backdrop_rgb"], "backdrop_rgb", op)
                falloff = _falloff(p.get("falloff"), op)
            elif op.kind == OperationKind.LIFT_SHADOWS and float(p["ev"]) > 0:  # a reviewer's 0: no lift
                lift = ShadowLift(float(p["ev"]), float(p["start"]), float(p["end"]), rendered=display_referred)
            elif op.kind == OperationKind.LENS_CORRECTION:
                lens = LensProfile.from_params(p)
            elif op.kind == OperationKind.REDUCE_NOISE:
                strengths = float(p["luminance"]), float(p["colour"])
                if not all(0.0 <= v <= 2.0 for v in strengths):
                    raise ValueError(f"operation {op.op_id}: strengths must be in 0-2, got {strengths}")
                shares = tuple(float(v) for v in p.get("read_shares", (1.0, 1.0, 1.0)))
                if len(shares) != 3 or not all(0.0 < v <= 1.0 for v in shares):
                    raise ValueError(f"operation {op.op_id}: read_shares must be three numbers in (0, 1], got {shares}")
                noise = NoiseReduction(*strengths, shares=shares) if any(strengths) else None  # type: ignore[arg-type]
        except KeyError as exc:
            raise ValueError(f"operation {op.op_id} ({op.kind}) lacks parameter {exc.args[0]!r}") from None
    return Adjustments(
        wb_gains=(float(gains[0]), float(gains[1]), float(gains[2])),
        exposure_ev=ev,
        faces=tuple(faces),
        blurs=tuple(blurs),
        red_eyes=tuple(red_eyes),
        angle_deg=angle,
        crops=crops,
        crop_turns=turns,
        display_referred=display_referred,
        backdrop_rgb=backdrop,
        backdrop_falloff=falloff,
        crop_pads=pads,
        pad_falloff=pad_falloff,
        shadow_lift=lift,
        lens=lens,
        keystone=keystone,
        develop_curve=develop_curve and not display_referred,
        noise=noise,
    )


# --- frames and sizes ---------------------------------------------------------------------


def rendition_frame(rendition: Rendition, adjustments: Adjustments, width: int, height: int) -> Box:
    """The (unturned) box of the full-resolution frame a rendition shows.

    The plan's crop for the rendition's ``crop`` aspect; a centred crop of that
    aspect when the plan made none (an older plan, or a crop it left to a
    retoucher); with no crop, the largest frame-shaped box that the
    straightening turn keeps inside the image (the whole frame at angle 0).

    Raises
    ------
    ValueError
        If ``width`` or ``height`` is not positive.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    angle = adjustments.angle_deg
    if rendition.crop is not None:
        box = adjustments.crops.get(rendition.crop)
        if box is not None:
            return box
        return place_crop(width, height, parse_aspect(rendition.crop), angle)
    if angle == 0.0:
        return (0.0, 0.0, float(width), float(height))
    return inscribed_box(width, height, angle)


def rendition_size(rendition: Rendition, frame: Box) -> tuple[int, int]:
    """Output ``(width, height)`` of a rendition showing ``frame``.

    An exact box is produced at its size while that enlarges the frame's pixels
    at most ``rendition.max_upscale`` times; beyond, it is delivered at the
    largest size that allows (its shape kept) unless the chart says
    ``beyond_max_upscale: flag`` (the box as asked; the plan flags it). A long
    edge, a short edge or a pixel count never enlarges (Lightroom's "don't
    enlarge"), and no size means the frame at full resolution.
    """
    _, _, w, h = frame
    box = rendition.box_for(w, h)  # turned with a crop turned to the picture's orientation
    if box is not None:
        if rendition.beyond_max_upscale is UpscaleAction.FLAG:
            return box
        return within_upscale(box, w, h, rendition.max_upscale)[0]
    scale = 1.0
    if rendition.long_edge_px is not None:
        scale = min(1.0, rendition.long_edge_px / max(w, h))
    elif rendition.short_edge_px is not None:
        scale = min(1.0, rendition.short_edge_px / min(w, h))
    elif rendition.megapixels is not None:
        scale = min(1.0, math.sqrt(rendition.megapixels * 1e6 / (w * h)))
    return max(1, round(w * scale)), max(1, round(h * scale))


def required_scale(renditions: Mapping[str, Rendition], adjustments: Adjustments, width: int, height: int) -> float:
    """Decoded pixels needed per full-resolution pixel by the largest rendition (0 when none)."""
    need = 0.0
    for r in renditions.values():
        frame = rendition_frame(r, adjustments.for_crop(r.crop), width, height)
        out_w, out_h = rendition_size(r, frame)
        need = max(need, out_w / frame[2], out_h / frame[3])
    return need


def raw_half_size(scale: float) -> bool:
    """Whether LibRaw's half-size decode gives ``scale`` decoded pixels per full-resolution pixel."""
    return scale <= 0.5


def decode_covers(decoded_width: int, width: int, scale: float) -> bool:
    """Whether a decode ``decoded_width`` pixels wide (of a ``width`` px image) gives ``scale``."""
    return decoded_width >= scale * width - 0.5


#: Above this many megapixels a RAW's full-resolution renditions are rendered by regions of its
#: photosites (:mod:`pipeline.imaging.bayer`), the others from LibRaw's half-size decode (the render
#: stage's ``whole_decode_max_megapixels``). LibRaw's whole demosaic takes about 17 MB per megapixel.
WHOLE_DECODE_MAX_MEGAPIXELS = 40.0


def render_reuses_decode(
    renditions: Mapping[str, Rendition],
    width: int,
    height: int,
    half_size: bool,
    whole_decode_max_megapixels: float = WHOLE_DECODE_MAX_MEGAPIXELS,
) -> bool:
    """Whether the render of these renditions will make this very LibRaw decode (half size or full).

    The render's own choice (:func:`decode_for_render`) for uncropped frames:
    a crop the plan adds later can only ask for more pixels, and then a kept
    decode goes unused, never wrongly used. A sensor above
    ``whole_decode_max_megapixels`` renders its full-resolution renditions by
    regions, so its half-size decode serves every other rendition.
    """
    need = required_scale(renditions, Adjustments(), width, height)
    if need <= 0:
        return False
    if half_size and width * height > whole_decode_max_megapixels * 1e6:
        return any(raw_half_size(required_scale({k: r}, Adjustments(), width, height)) for k, r in renditions.items())
    return raw_half_size(need) == half_size


# --- geometry: one resampling ---------------------------------------------------------


def _translate(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _scale(sx: float, sy: float) -> np.ndarray:
    return np.diag([sx, sy, 1.0])


def output_to_frame(frame: Box, angle_deg: float, out_size: tuple[int, int]) -> np.ndarray:
    """3x3 affine: output pixel index ``(u, v)`` -> continuous full-resolution coordinates.

    Pixel centres sit at index + 0.5 in continuous coordinates on both sides,
    so the turned box's corners map exactly onto the output raster's corners.
    The turn matches :func:`pipeline.imaging.geometry.rotated_corners`.
    """
    x, y, w, h = frame
    out_w, out_h = out_size
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    turn = np.array([[ca, sa, x + w / 2], [-sa, ca, y + h / 2], [0.0, 0.0, 1.0]])
    return turn @ _translate(-w / 2, -h / 2) @ _scale(w / out_w, h / out_h) @ _translate(0.5, 0.5)


def warp_frame(
    src: np.ndarray,
    frame: Box,
    angle_deg: float,
    out_size: tuple[int, int],
    src_scale: tuple[float, float] = (1.0, 1.0),
    lens: LensGrid | KeystoneMap | None = None,
) -> np.ndarray:
    """Turn, crop and scale ``src`` onto an ``out_size`` raster in one resampling.

    Parameters
    ----------
    src : ndarray, (H, W, 3), uint16 or float32
        The decoded image (linear light).
    frame : Box
        The crop box in full-resolution pixels (before the turn).
    angle_deg : float
        Turn of the box about its centre (counter-clockwise on screen).
    out_size : (int, int)
        Output width and height.
    src_scale : (float, float)
        Decoded pixels per full-resolution pixel along x and y (0.5 for a
        half-size decode).
    lens : LensGrid or KeystoneMap, optional
        A lens profile's correction of the full-resolution frame, or a keystone's
        (:func:`~pipeline.imaging.perspective.frame_map`): ``frame`` is a box of the
        corrected picture, each of its pixels read where the lens (and the
        camera's pitch) put it, with the vignetting's gain there.

    Returns
    -------
    ndarray, (out_h, out_w, 3), float32
        Linear light, 1.0 = white (uint16 input is normalised).

    Raises
    ------
    ValueError
        If ``src`` is not an (H, W, 3) image or ``out_size`` is not positive.
    """
    if src.ndim != 3 or src.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {src.shape}")
    out_w, out_h = int(out_size[0]), int(out_size[1])
    if out_w < 1 or out_h < 1:
        raise ValueError(f"output size must be positive, got {out_size}")
    sx, sy = src_scale
    to_frame = output_to_frame(frame, angle_deg, (out_w, out_h))
    to_frame, lens = _projective(to_frame, lens)
    if lens is not None:
        return _warp_through_lens(lambda box: src[box[1]:box[3], box[0]:box[2]], (src.shape[1], src.shape[0]),
                                  to_frame, out_w, out_h, src_scale, lens)
    return _warp(src, _scale(sx, sy) @ to_frame, out_w, out_h)


def _projective(to_frame: np.ndarray, geometry: LensGrid | KeystoneMap | None
                ) -> tuple[np.ndarray, LensGrid | KeystoneMap | None]:
    """A keystone alone is a homography: folded into the raster's map (one ``cv2.warpPerspective``, as a turn is one
    affine warp), with no map left to read point by point; a lens correction is read through its grid."""
    if isinstance(geometry, KeystoneMap) and geometry.lens is None:
        return geometry.to_source @ to_frame, None
    return to_frame, geometry


def _warp_through_lens(region_of: Callable[[tuple[int, int, int, int]], np.ndarray], src_size: tuple[int, int],
                       to_frame: np.ndarray, out_w: int, out_h: int, src_scale: tuple[float, float],
                       lens: LensGrid | KeystoneMap) -> np.ndarray:
    """:func:`warp_frame` through a lens correction: each output pixel read at its place on the sensor
    (:meth:`LensGrid.on_raster`; each colour at its own where the chromatic aberration is corrected) in the source
    ``region_of(box)`` gives (``box``: x0, y0, x1, y1 of a ``src_size`` source), area-filtered first where it
    shrinks, as :func:`_warp` does; the vignetting's gain applied there."""
    sx, sy = src_scale
    places, gain = lens.on_raster(to_frame, out_w, out_h)
    for xs, ys in places:
        xs *= np.float32(sx)
        ys *= np.float32(sy)
    src_w, src_h = src_size
    spans = [cv2.minMaxLoc(a)[:2] for place in places for a in place]  # one pass an array for its least and most
    x0 = max(0, int(math.floor(min(lo for lo, _ in spans[0::2]))) - 3)
    y0 = max(0, int(math.floor(min(lo for lo, _ in spans[1::2]))) - 3)
    x1 = min(src_w, int(math.ceil(max(hi for _, hi in spans[0::2]))) + 3)
    y1 = min(src_h, int(math.ceil(max(hi for _, hi in spans[1::2]))) + 3)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"the frame lies outside the {src_w}x{src_h} image")
    region = region_of((x0, y0, x1, y1))
    # Source pixels per output pixel (the lens changes it by a few per cent across the frame).
    down = min(float(np.hypot(to_frame[0, 0] * sx, to_frame[1, 0] * sy)),
               float(np.hypot(to_frame[0, 1] * sx, to_frame[1, 1] * sy)))
    kx = ky = 1.0
    if down > _PRESHRINK_ABOVE:
        rw, rh = region.shape[1], region.shape[0]
        new_w, new_h = max(1, round(rw / down)), max(1, round(rh / down))
        region = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
        kx, ky = new_w / rw, new_h / rh
    # cv2 indexes pixels by their centres: continuous coordinate = index + 0.5.
    for xs, ys in places:
        xs -= np.float32(x0)
        xs *= np.float32(kx)
        xs -= np.float32(0.5)
        ys -= np.float32(y0)
        ys *= np.float32(ky)
        ys -= np.float32(0.5)
    if len(places) == 1:
        out = remap_points(region, *places[0], cv2.INTER_CUBIC)
    else:
        out = np.dstack([remap_points(np.ascontiguousarray(region[..., c]), *places[c], cv2.INTER_CUBIC)
                         for c in range(3)])
    out = _to_float(out, copy=False)
    if gain is not None:
        out *= gain[..., None]
    return out


def _source_box(to_src: np.ndarray, out_w: int, out_h: int, src_w: int, src_h: int) -> tuple[int, int, int, int]:
    """Pixels of the source an output raster maps onto (continuous coords), with room for the filter."""
    corners = to_src @ np.array([[0, out_w, out_w, 0], [0, 0, out_h, out_h], [1, 1, 1, 1]], dtype=np.float64)
    corners = corners[:2] / corners[2]  # a keystone's map is projective; an affine one's last row is (0, 0, 1)
    x0 = max(0, int(math.floor(corners[0].min())) - 3)
    y0 = max(0, int(math.floor(corners[1].min())) - 3)
    x1 = min(src_w, int(math.ceil(corners[0].max())) + 3)
    y1 = min(src_h, int(math.ceil(corners[1].max())) + 3)
    return x0, y0, x1, y1


def _warp(src: np.ndarray, to_src: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """:func:`warp_frame` given the map from output pixel index to ``src``'s continuous coordinates."""
    src_h, src_w = src.shape[:2]
    x0, y0, x1, y1 = _source_box(to_src, out_w, out_h, src_w, src_h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"the frame lies outside the {src_w}x{src_h} image")
    region = src[y0:y1, x0:x1]
    to_region = _translate(-x0, -y0) @ to_src
    projective = bool(to_region[2, 0] or to_region[2, 1])
    # Source pixels per output pixel along each output axis (a projective map's least, over the raster's corners).
    step_x, step_y = _steps(to_region, out_w, out_h) if projective else (
        float(np.hypot(to_region[0, 0], to_region[1, 0])), float(np.hypot(to_region[0, 1], to_region[1, 1])))
    down = min(step_x, step_y)
    if down > _PRESHRINK_ABOVE and to_region[0, 1] == 0.0 and to_region[1, 0] == 0.0 and not projective:
        # An unturned downscale: one area resampling of the box straight onto the output raster.
        return _area_resample(region, to_region, out_w, out_h)
    if down > _PRESHRINK_ABOVE:
        # Area-filter to the output's sampling density; the warp then resamples ~1:1.
        rw, rh = region.shape[1], region.shape[0]
        new_w, new_h = max(1, round(rw / down)), max(1, round(rh / down))
        region = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
        to_region = _scale(new_w / rw, new_h / rh) @ to_region
    # cv2 indexes pixels by their centres: continuous coordinate = index + 0.5.
    if projective:
        out = cv2.warpPerspective(region, _translate(-0.5, -0.5) @ to_region, (out_w, out_h),
                                  flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        return _to_float(out, copy=False)
    m = (_translate(-0.5, -0.5) @ to_region)[:2].astype(np.float64)
    identity = np.allclose(m, [[1, 0, m[0, 2]], [0, 1, m[1, 2]]], atol=1e-9) and np.allclose(
        m[:, 2], np.round(m[:, 2]), atol=1e-6
    )
    if identity:
        # Unturned, unscaled and pixel-aligned (a full-resolution master): a plain copy.
        tx, ty = int(round(m[0, 2])), int(round(m[1, 2]))
        out = region[ty : ty + out_h, tx : tx + out_w]
        if out.shape[:2] == (out_h, out_w):
            return _to_float(out, copy=True)
    out = cv2.warpAffine(
        region,
        m,
        (out_w, out_h),
        flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return _to_float(out, copy=False)


def _steps(to_src: np.ndarray, out_w: int, out_h: int) -> tuple[float, float]:
    """The least source pixels per output pixel along each output axis of a projective map, over the raster's
    corners (its Jacobian's columns there)."""
    steps = []
    for u, v in ((0.0, 0.0), (out_w, 0.0), (0.0, out_h), (out_w, out_h)):
        x, y, w = to_src @ np.array([u, v, 1.0])
        # d(x / w) / du = (a w - x g) / w^2, with a and g the map's first column's entries.
        du = (to_src[:2, 0] * w - np.array([x, y]) * to_src[2, 0]) / (w * w)
        dv = (to_src[:2, 1] * w - np.array([x, y]) * to_src[2, 1]) / (w * w)
        steps.append((float(np.hypot(*du)), float(np.hypot(*dv))))
    return min(s[0] for s in steps), min(s[1] for s in steps)


def _area_resample(region: np.ndarray, to_region: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """Area-average the box ``to_region`` maps the output raster onto, one resampling.

    ``to_region`` must be a scale and a shift (no turn). Its box's edges are
    snapped to the region's pixel grid (at most half a decoded pixel each),
    where OpenCV's area filter works; the output then averages exactly the
    decoded pixels under each of its own, instead of being area-shrunk to
    about its size and warped again (two resamplings, the second a cubic
    blur).
    """
    rh, rw = region.shape[:2]
    # Output pixel u's centre lands on a * u + b; its box's edges are at u = -1/2 and out_w - 1/2.
    (a, _, b), (_, e, f) = to_region[0], to_region[1]
    left, top = b - a / 2, f - e / 2
    x0 = min(max(0, round(float(left))), rw - 1)
    y0 = min(max(0, round(float(top))), rh - 1)
    x1 = min(rw, max(x0 + 1, round(float(left + a * out_w))))
    y1 = min(rh, max(y0 + 1, round(float(top + e * out_h))))
    out = cv2.resize(region[y0:y1, x0:x1], (out_w, out_h), interpolation=cv2.INTER_AREA)
    return _to_float(out, copy=False)


def _to_float(a: np.ndarray, copy: bool) -> np.ndarray:
    if a.dtype == np.uint16:
        out = a.astype(np.float32)
        out *= _U16
        return out
    if a.dtype != np.float32:
        raise ValueError(f"expected uint16 or float32 pixels, got {a.dtype}")
    return a.copy() if copy else a


# --- tone: gains in linear light -------------------------------------------------------


def face_lift_mask(
    coords_x: np.ndarray, coords_y: np.ndarray, box: Box, feather_px: float
) -> np.ndarray:
    """Soft elliptical mask of a face: 1 inside the box's inscribed ellipse, 0 beyond the feather.

    Parameters
    ----------
    coords_x, coords_y : ndarray, float32
        Full-resolution coordinates of the pixels to evaluate.
    box : Box
        The face box ``(x, y, w, h)``.
    feather_px : float
        Width of the fall-off outside the ellipse, full-resolution pixels
        (smoothstep, so the lift has no visible edge); 0 = a hard edge.

    Returns
    -------
    ndarray, float32, same shape as ``coords_x``

    Raises
    ------
    ValueError
        If the box has no area.
    """
    x, y, w, h = box
    if not (w > 0 and h > 0):
        raise ValueError(f"face box {box} has no area")
    dx = coords_x - np.float32(x + w / 2)
    dy = coords_y - np.float32(y + h / 2)
    radial = np.sqrt(dx * dx + dy * dy)
    norm = np.sqrt((dx / np.float32(w / 2)) ** 2 + (dy / np.float32(h / 2)) ** 2)
    # Distance past the ellipse along the ray from the centre: |p| (1 - 1/d).
    outside = np.where(norm > 1.0, radial * (1.0 - 1.0 / np.maximum(norm, 1e-6)), 0.0).astype(np.float32)
    if feather_px <= 0:
        return (outside <= 0).astype(np.float32)
    t = np.clip(outside / np.float32(feather_px), 0.0, 1.0)
    return (1.0 - t * t * (3.0 - 2.0 * t)).astype(np.float32)


def apply_face_lifts(rgb: np.ndarray, faces: Sequence[FaceLift], to_frame: np.ndarray,
                     lens: LensGrid | KeystoneMap | None = None) -> np.ndarray:
    """Brighten (or darken) faces on a rendered raster, in place.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3), float32
        Linear light (the output of :func:`warp_frame`).
    faces : sequence of FaceLift
        Gain ``2**(ev * mask)`` with :func:`face_lift_mask`; where faces
        overlap the larger lift wins (two lifts do not add up).
    to_frame : ndarray, (3, 3)
        :func:`output_to_frame` of this raster: where each pixel lies in the
        full-resolution frame, so the masks are those of a full-resolution render.
    lens : LensGrid or KeystoneMap, optional
        The raster's lens or keystone correction: the faces were found in the
        picture as shot, so each pixel's mask is read where the lens put it.

    Returns
    -------
    ndarray
        ``rgb``, modified.

    Raises
    ------
    ValueError
        If ``rgb`` is not float32 (H, W, 3).
    """
    if rgb.dtype != np.float32 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected float32 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if faces:
        _lift_faces(rgb, faces, to_frame, lens)
    return rgb


def _patch(box: Box, feather: float, to_out: np.ndarray, lens: LensGrid | KeystoneMap | None,
           out_w: int, out_h: int) -> tuple[int, int, int, int] | None:
    """The output pixels ``(u0, v0, u1, v1)`` a full-resolution box and its feather land on; None when none."""
    x, y, w, h = box
    if lens is not None:
        # Through a lens or keystone correction the box lies in the corrected frame where its outline lands.
        x, y, w, h = lens.corrected_box((x - feather - 1.0, y - feather - 1.0, w + 2.0 * feather + 2.0,
                                         h + 2.0 * feather + 2.0))
        feather = 0.0
    xs = [x - feather, x + w + feather]
    ys = [y - feather, y + h + feather]
    pts = to_out @ np.array([[xs[0], xs[1], xs[1], xs[0]], [ys[0], ys[0], ys[1], ys[1]], [1, 1, 1, 1]])
    u0 = max(0, int(math.floor(pts[0].min())) - 1)
    v0 = max(0, int(math.floor(pts[1].min())) - 1)
    u1 = min(out_w, int(math.ceil(pts[0].max())) + 1)
    v1 = min(out_h, int(math.ceil(pts[1].max())) + 1)
    return (u0, v0, u1, v1) if u1 > u0 and v1 > v0 else None


def _patch_points(to_frame: np.ndarray, lens: LensGrid | KeystoneMap | None,
                  patch: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel of an output patch lies in the full-resolution picture as shot (float32 x, y)."""
    u0, v0, u1, v1 = patch
    uu, vv = np.meshgrid(np.arange(u0, u1, dtype=np.float32), np.arange(v0, v1, dtype=np.float32), copy=False)
    m = to_frame.astype(np.float32)
    fx = m[0, 0] * uu + m[0, 1] * vv + m[0, 2]
    fy = m[1, 0] * uu + m[1, 1] * vv + m[1, 2]
    if lens is not None:
        fx, fy = lens.source(fx, fy)
    return fx, fy


def _lift_faces(rgb: np.ndarray, faces: Sequence[FaceLift], to_frame: np.ndarray,
                lens: LensGrid | KeystoneMap | None) -> None:
    out_h, out_w = rgb.shape[:2]
    to_out = np.linalg.inv(to_frame)
    patches = [(face, patch) for face in faces if face.ev != 0.0
               and (patch := _patch(face.box, face.feather_px, to_out, lens, out_w, out_h)) is not None]
    if not patches:
        return
    # One log-gain map over the faces' union; overlapping faces take the larger lift, not the sum.
    u0 = min(p[0] for _, p in patches)
    v0 = min(p[1] for _, p in patches)
    u1 = max(p[2] for _, p in patches)
    v1 = max(p[3] for _, p in patches)
    log_gain = np.zeros((v1 - v0, u1 - u0), dtype=np.float32)
    for face, patch in patches:
        fx, fy = _patch_points(to_frame, lens, patch)
        lift = face_lift_mask(fx, fy, face.box, face.feather_px) * np.float32(face.ev)
        pu0, pv0, pu1, pv1 = patch
        view = log_gain[pv0 - v0 : pv1 - v0, pu0 - u0 : pu1 - u0]
        np.maximum(view, lift, out=view) if face.ev > 0 else np.minimum(view, lift, out=view)
    gain = np.exp2(log_gain)
    rgb[v0:v1, u0:u1] *= gain[..., None]


#: A blurred head (:class:`FaceBlur`) keeps this many mean colours across and down: each averages a sixteenth of
#: the head, so the eyes, the nose and the mouth fall within one or two cells with the skin around them. Pixelating
#: a face into 8 x 8 blocks or more still lets a trained network recognise it (McPherson, Shokri and Shmatikov,
#: "Defeating Image Obfuscation with Deep Learning", 2016); 4 x 4 is the coarsest field that still reads as a head
#: lit from one side rather than a patch of flat colour.
BLUR_CELLS = 4
#: The blurred ellipse's edge fades out over this share of the head box's longer side beyond it.
BLUR_FEATHER = 0.12
#: The grain a blurred head takes from the picture around it (a retoucher's "add noise" after a blur, so the head
#: does not stand out as a smooth patch on a grainy frame) is read beyond the feather, out to this share of the head
#: box on each side, at the raster's own scale, with a kernel blind to flat and linearly shaded parts: the median
#: of its response, the level of an even grain itself, which the texture of a minority of pixels (hair, an edge)
#: does not move.
GRAIN_MARGIN = 0.25
#: A large head's surroundings are read on bands of this many rows spread over them, this many pixels in all.
GRAIN_BAND = 16
GRAIN_MAX_PIXELS = 1 << 18
#: Immerkær's noise kernel ("Fast noise variance estimation", CVIU 1996): the difference of two Laplacians. White
#: noise of standard deviation s comes out of it normal with standard deviation 6 s; half of it beyond 0.6745 of that.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
_NOISE_MEDIAN = 6.0 * 0.6745
#: Fewer pixels than this around a head to read its grain from: none given.
_GRAIN_MIN_PIXELS = 16

#: What a blur reads of the source around a head: ``(box, scale)`` -> ``(box clipped to the picture,
#: (BLUR_CELLS, BLUR_CELLS, 3) float32 linear light, (4,) grain)``, the grain's per-channel standard deviation of
#: the square root of linear light at ``scale`` raster pixels per full-resolution pixel and the share the channels
#: have in common (:func:`grain_sigma`); None where the box lies outside the picture.
BlurSampler = Callable[[Box, float], "tuple[Box, np.ndarray, np.ndarray] | None"]


def blur_cells(pixels: np.ndarray) -> np.ndarray:
    """The :data:`BLUR_CELLS` x :data:`BLUR_CELLS` mean colours of a region (uint16 or float32 linear light)."""
    return cv2.resize(_to_float(pixels, copy=False), (BLUR_CELLS, BLUR_CELLS), interpolation=cv2.INTER_AREA)


def grain_sigma(pixels: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """The grain of ``pixels`` where ``outside`` holds: per channel, the standard deviation of white noise, in the
    square root of linear light (where a sensor's photon noise is about even at every level), read by Immerkær's
    kernel (:data:`_NOISE_KERNEL`): the median of its response's size there; and, fourth, how much of it the
    channels share (the correlation, 0 for a colour noise, 1 for a grey grain: a camera's noise reduction leaves
    mostly grey), from the grain of their mean. Zeros where fewer than :data:`_GRAIN_MIN_PIXELS` pixels (away from
    the region's edge) are outside.

    Parameters
    ----------
    pixels : ndarray, (h, w, 3), float32
        Linear light.
    outside : ndarray, (h, w), bool
        Where to read (beyond the blurred ellipse and its feather).
    """
    inner = outside[1:-1, 1:-1]
    if inner.sum() < _GRAIN_MIN_PIXELS:
        return np.zeros(4, dtype=np.float32)
    root = np.sqrt(np.maximum(pixels, 0.0, dtype=np.float32))
    root = np.concatenate([root, root.mean(axis=2, keepdims=True)], axis=2)
    response = np.abs(cv2.filter2D(root, -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT))[1:-1, 1:-1]
    *sigma, grey = (np.median(response[inner], axis=0) / np.float32(_NOISE_MEDIAN)).tolist()
    # The mean of three channels of grain s with correlation c: (sum s^2 + 2 c sum_pairs s s') / 9 in variance.
    pairs = sigma[0] * sigma[1] + sigma[0] * sigma[2] + sigma[1] * sigma[2]
    shared = (9.0 * grey * grey - sum(v * v for v in sigma)) / (2.0 * pairs) if pairs > 0 else 0.0
    return np.array([*sigma, min(1.0, max(0.0, shared))], dtype=np.float32)


def _head_surround(region: np.ndarray, at: tuple[float, float], step: float, box: Box, scale: float) -> np.ndarray:
    """:func:`grain_sigma` of a region read around a head (``at``: its full-resolution top-left corner, ``step``:
    full-resolution px per region px), brought to ``scale`` raster px per full-resolution px first (never enlarged:
    an enlarged grain is the source's); of a large region, bands of :data:`GRAIN_BAND` rows spread over it, about
    :data:`GRAIN_MAX_PIXELS` in all (an even grain is read as well on a sample of it)."""
    pixels = region
    factor = min(1.0, scale * step)
    if factor < 1.0:
        size = (max(1, round(region.shape[1] * factor)), max(1, round(region.shape[0] * factor)))
        pixels = cv2.resize(_to_float(region, copy=False), size, interpolation=cv2.INTER_AREA)
        step = step * region.shape[1] / size[0]
    h, w = pixels.shape[:2]
    rows = np.arange(h)
    if h * w > GRAIN_MAX_PIXELS:
        every = math.ceil(h * w / GRAIN_MAX_PIXELS)
        rows = np.concatenate([np.arange(r, min(h, r + GRAIN_BAND)) for r in range(0, h, GRAIN_BAND * every)])
        pixels = pixels[rows]
    pixels = _to_float(pixels, copy=False)
    fx = (np.float32(at[0]) + (np.arange(w, dtype=np.float32) + np.float32(0.5)) * np.float32(step))[None, :]
    fy = (np.float32(at[1]) + (rows.astype(np.float32) + np.float32(0.5)) * np.float32(step))[:, None]
    fx, fy = np.broadcast_to(fx, (rows.size, w)), np.broadcast_to(fy, (rows.size, w))
    outside = face_lift_mask(fx, fy, box, BLUR_FEATHER * max(box[2], box[3])) == 0
    joins = np.flatnonzero(np.diff(rows) != 1)  # the kernel must not read across two bands
    outside[joins] = False
    outside[joins + 1] = False
    return grain_sigma(pixels, outside)


def _surround(box: Box) -> Box:
    x, y, w, h = box
    return (x - GRAIN_MARGIN * w, y - GRAIN_MARGIN * h, (1 + 2 * GRAIN_MARGIN) * w, (1 + 2 * GRAIN_MARGIN) * h)


def _clipped(box: Box, width: int, height: int) -> tuple[int, int, int, int] | None:
    x, y, w, h = box
    x0, y0 = max(0, int(math.floor(x))), max(0, int(math.floor(y)))
    x1, y1 = min(width, int(math.ceil(x + w))), min(height, int(math.ceil(y + h)))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def decoded_sampler(decoded: np.ndarray, width: int, height: int) -> BlurSampler:
    """A :data:`BlurSampler` reading a decode of any size of a ``width`` x ``height`` picture."""
    sx, sy = decoded.shape[1] / width, decoded.shape[0] / height

    def rows_cols(c: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = c
        r0, c0 = int(math.floor(y0 * sy)), int(math.floor(x0 * sx))
        return r0, c0, max(r0 + 1, int(math.ceil(y1 * sy))), max(c0 + 1, int(math.ceil(x1 * sx)))

    def sample(box: Box, scale: float) -> tuple[Box, np.ndarray, np.ndarray] | None:
        if (c := _clipped(box, width, height)) is None:
            return None
        x0, y0, x1, y1 = c
        r0, c0, r1, c1 = rows_cols(c)
        cells = blur_cells(decoded[r0:r1, c0:c1])
        a = _clipped(_surround(box), width, height)
        assert a is not None  # (it holds the box)
        q0, p0, q1, p1 = rows_cols(a)
        grain = _head_surround(decoded[q0:q1, p0:p1], (p0 / sx, q0 / sy), 1.0 / sx, box, scale)
        return (float(x0), float(y0), float(x1 - x0), float(y1 - y0)), cells, grain

    return sample


def region_sampler(region_of: Callable[[int, int, int, int], np.ndarray], width: int, height: int) -> BlurSampler:
    """A :data:`BlurSampler` reading the full-resolution picture by regions (:func:`render_rows`'s ``region_of``).

    It remembers what it read: the strips of one rendition that a head spans share one sampler
    (:func:`render_rows`'s ``sampler``), and the head's surroundings are read and measured once, not once a strip.
    """
    read: dict[tuple[Box, float], tuple[Box, np.ndarray, np.ndarray] | None] = {}

    def sample(box: Box, scale: float) -> tuple[Box, np.ndarray, np.ndarray] | None:
        if (box, scale) in read:
            return read[(box, scale)]
        if (c := _clipped(box, width, height)) is None:
            return None
        x0, y0, x1, y1 = c
        a0, b0, a1, b1 = _clipped(_surround(box), width, height) or c
        region = region_of(a0, b0, a1, b1)
        cells = blur_cells(region[y0 - b0 : y1 - b0, x0 - a0 : x1 - a0])
        grain = _head_surround(region, (float(a0), float(b0)), 1.0, box, scale)
        read[(box, scale)] = (float(x0), float(y0), float(x1 - x0), float(y1 - y0)), cells, grain
        return read[(box, scale)]

    return sample


#: A red pupil's correction reaches this share of its radius beyond it, fading out (the red blob's edge is soft) ...
RED_EYE_FEATHER = 0.5
#: ... and takes a pixel's red down to its green and blue in full where the red is at least
#: :data:`pipeline.imaging.red_eye.RED_RATIO` times them, not at all where it is at most this (skin, an iris).
RED_EYE_FROM = 2.0


def apply_red_eyes(rgb: np.ndarray, eyes: Sequence[RedEye], to_frame: np.ndarray,
                   lens: LensGrid | KeystoneMap | None = None) -> np.ndarray:
    """Take a flash's red out of pupils, on a rendered raster (linear light, before the white balance's gains, in the
    light the eyes were found in), in place: in a soft disc over each, a pixel's red comes down to the larger of its
    green and blue as far as it stands above them (:data:`RED_EYE_FROM` to the finder's ratio), so the pupil is
    as dark as it is, and its catch light, the iris and the skin (not that red) keep their colour."""
    out_h, out_w = rgb.shape[:2]
    to_out = np.linalg.inv(to_frame) if eyes else None
    for eye in eyes:
        r = eye.radius
        box = (eye.x - r, eye.y - r, 2.0 * r, 2.0 * r)
        patch = _patch(box, RED_EYE_FEATHER * r, to_out, lens, out_w, out_h)
        if patch is None:
            continue
        fx, fy = _patch_points(to_frame, lens, patch)
        u0, v0, u1, v1 = patch
        view = rgb[v0:v1, u0:u1]
        weight = face_lift_mask(fx, fy, box, RED_EYE_FEATHER * r)
        weight *= np.clip((redness(view) - np.float32(RED_EYE_FROM)) / np.float32(RED_RATIO - RED_EYE_FROM), 0.0, 1.0)
        others = np.maximum(view[..., 1], view[..., 2])
        view[..., 0] -= weight * np.maximum(view[..., 0] - others, 0.0)
    return rgb


def grain_field(u0: int, v0: int, u1: int, v1: int, seed: int) -> np.ndarray:
    """Unit grain for raster pixels ``[v0, v1) x [u0, u1)``: about normal (the sum of four uniform bytes of a hash of
    each pixel's place), the same for a pixel whatever part of the raster is rendered (strips join without a seam)."""
    u = np.arange(u0, u1, dtype=np.uint32)[None, :] * np.uint32(0x9E3779B1)
    v = np.arange(v0, v1, dtype=np.uint32)[:, None] * np.uint32(0x85EBCA77) + np.uint32(seed * 0xC2B2AE3D % 2**32)
    with np.errstate(over="ignore"):  # arithmetic modulo 2**32 is the point
        h = u + v
        for shift, mult in ((16, 0x7FEB352D), (15, 0x846CA68B)):  # a 32-bit integer hash's finaliser
            h ^= h >> np.uint32(shift)
            h *= np.uint32(mult)
        h ^= h >> np.uint32(16)
    parts = h.view(np.uint8).reshape(*h.shape, 4).astype(np.float32)
    return (parts.sum(axis=2) - np.float32(4 * 127.5)) / np.float32(math.sqrt(4 * (256**2 - 1) / 12.0))


def apply_face_blurs(rgb: np.ndarray, blurs: Sequence[FaceBlur], to_frame: np.ndarray, sample: BlurSampler,
                     lens: LensGrid | KeystoneMap | None = None, first_row: int = 0) -> np.ndarray:
    """Deliver faces unrecognisable (privacy), on a rendered raster, in place.

    Each :class:`FaceBlur`'s ellipse takes the smooth (bicubic) field through its head's
    :data:`BLUR_CELLS` x :data:`BLUR_CELLS` mean colours as shot, read by ``sample`` from the source (the same
    whatever part of the picture the raster shows: strips of a large rendition join without a seam, and
    every rendition of a decode blurs alike), with the grain of the picture around the head at this raster's scale
    (:func:`grain_sigma`, :func:`grain_field`: a smooth patch on a grainy frame would stand out), blended out over
    :data:`BLUR_FEATHER` of the head beyond it.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3), float32
        Linear light (the output of :func:`warp_frame`).
    blurs : sequence of FaceBlur
    to_frame : ndarray, (3, 3)
        :func:`output_to_frame` of this raster.
    sample : callable
        :func:`decoded_sampler` or :func:`region_sampler` of the source.
    lens : LensGrid or KeystoneMap, optional
        The raster's lens or keystone correction (the heads were found in the picture as shot).
    first_row : int
        Where the raster's first row lies in the rendition (a strip's): the grain is the rendition's, not the strip's.

    Returns
    -------
    ndarray
        ``rgb``, modified.
    """
    out_h, out_w = rgb.shape[:2]
    to_out = np.linalg.inv(to_frame) if blurs else None
    scale = 1.0 / math.sqrt(abs(float(np.linalg.det(to_frame[:2, :2])))) if blurs else 1.0
    for k, blur in enumerate(blurs):
        feather = BLUR_FEATHER * max(blur.box[2], blur.box[3])
        patch = _patch(blur.box, feather, to_out, lens, out_w, out_h)
        if patch is None or (read := sample(blur.box, scale)) is None:
            continue
        (cx, cy, cw, ch), grid, grain = read
        fx, fy = _patch_points(to_frame, lens, patch)
        gx = (fx - np.float32(cx)) * np.float32(BLUR_CELLS / cw) - np.float32(0.5)
        gy = (fy - np.float32(cy)) * np.float32(BLUR_CELLS / ch) - np.float32(0.5)
        field_ = cv2.remap(grid, gx, gy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        np.maximum(field_, 0.0, out=field_)  # the cubic's overshoot
        u0, v0, u1, v1 = patch
        if grain[:3].any():
            rows = (u0, v0 + first_row, u1, v1 + first_row)
            shared = grain_field(*rows, 4 * k) * np.float32(math.sqrt(grain[3]))
            apart = np.float32(math.sqrt(1.0 - grain[3]))
            root = np.sqrt(field_)
            for c in range(3):
                root[..., c] += (shared + apart * grain_field(*rows, 4 * k + 1 + c)) * grain[c]
            np.maximum(root, 0.0, out=root)
            field_ = root * root
        mask = face_lift_mask(fx, fy, blur.box, feather)[..., None]
        view = rgb[v0:v1, u0:u1]
        view += mask * (field_ - view)
    return rgb


# --- output: colour space, curve, sharpening, bits -----------------------------------------


def _flat(a: np.ndarray) -> np.ndarray:
    # OpenCV applies a Python scalar to the first channel only; a one-channel
    # view of the same memory makes scalar arithmetic apply to every value.
    return a.reshape(a.shape[0], -1)


_SRGB_KNEE = 0.0031308


def encode_fast(space: ColorSpace | str, linear: np.ndarray, in_place: bool = False) -> np.ndarray:
    """:func:`pipeline.imaging.icc.encode` in OpenCV: same values (to 1e-6), about a third of the time.

    The sRGB curve is written branch-free: ``f(max(v, k)) + 12.92 * (min(v, k) - k)``
    is the power segment above the knee ``k`` and the linear toe below it
    (the two meet at ``k`` to 2e-5, a thousandth of an 8-bit code).

    Parameters
    ----------
    space : ColorSpace or str
    linear : ndarray, float32, C-contiguous
        Linear values; clipped to [0, 1] first.
    in_place : bool
        Use ``linear`` as scratch (it is overwritten): saves allocating, and
        page-faulting, one more image-sized array.

    Raises
    ------
    ValueError
        If ``linear`` is not a C-contiguous float32 array.
    """
    if linear.dtype != np.float32 or not linear.flags.c_contiguous:
        raise ValueError(f"expected C-contiguous float32, got {linear.dtype}")
    space = ColorSpace(space)
    v = _flat(linear if in_place else linear.copy())
    np.clip(v, 0.0, 1.0, out=v)
    if space == ColorSpace.ADOBE_RGB:
        cv2.pow(v, 256 / 563, dst=v)
        return v.reshape(linear.shape)
    a = cv2.max(v, _SRGB_KNEE)
    cv2.pow(a, 1 / 2.4, dst=a)
    cv2.addWeighted(a, 1.055, a, 0.0, -0.055 - 12.92 * _SRGB_KNEE, dst=a)
    cv2.min(v, _SRGB_KNEE, dst=v)
    cv2.scaleAdd(v, 12.92, a, dst=a)
    return a.reshape(linear.shape)


#: Where the highlight shoulder starts, in linear light after the gains (sRGB 188): tones below
#: it keep exactly the exposure the plan asked for; the stops above it, up to the source's
#: highlights pushed by the gains, are compressed into the one stop left below display white.
SHOULDER_KNEE = 0.5
#: Where the source's highlights land (sRGB 253.7 of 255): short of 8-bit white, so that only what
#: was at full scale in the source (blown already) is delivered at 255; above it, up to that full
#: scale, the last 1 % of the range.
SHOULDER_TOP = 0.99


#: :data:`SHOULDER_TOP` for a RAW developed through the camera-like curve: the scene light the curve takes to it
#: (about 0.905), so a push's highlights land short of 8-bit white after the development as they do without it.
DEVELOPED_SHOULDER_TOP = float(inverse_tone_curve(SHOULDER_TOP))


def highlight_shoulder(rgb_linear: np.ndarray, white: float, knee: float = SHOULDER_KNEE,
                       full_scale: float | None = None, top: float = SHOULDER_TOP) -> np.ndarray:
    """Roll the highlights off below display white instead of clipping them, in place.

    A gain that pushes the source's highlights to ``white`` > 1 would clip
    every tone above ``1 / white`` of them. Each pixel whose brightest
    channel is above ``knee`` is scaled so that channel is compressed in log2
    (stops) by a rational shoulder, ``s / (1 + b * s)`` of
    its stops ``s`` above the knee, with ``b`` chosen so that ``white`` lands
    on ``top``: the curve leaves the identity with slope 1 at the knee (no
    visible kink) and is increasing (tones keep their order). Between
    ``white`` and ``full_scale`` (where the gains take the source's full
    scale; ``white`` when not given) the stops map linearly onto ``top`` to
    1.0, so what was blown in the source stays white and nothing else
    reaches it. The other channels scale with the brightest (hue and
    saturation kept). Nothing changes when ``white <= 1``.

    Parameters
    ----------
    rgb_linear : ndarray, float32, (H, W, 3)
        Linear light after the gains; overwritten.
    white : float
        The level the gains take the source's highlights to (:func:`shoulder_white`).
    knee : float
        Start of the shoulder, in (0, ``top``).
    full_scale : float, optional
        The level the gains take the source's full scale (1.0) to, at least ``white``.
    top : float
        Where ``white`` lands, in (``knee``, 1].

    Returns
    -------
    ndarray
        ``rgb_linear``, rolled off.

    Raises
    ------
    ValueError
        If ``knee`` or ``top`` is out of range, or ``white`` is not positive.
    """
    if not 0.0 < knee < top <= 1.0:
        raise ValueError(f"shoulder knee must be in (0, top) and top in (knee, 1], got knee {knee}, top {top}")
    if not white > 0:
        raise ValueError(f"white must be positive, got {white}")
    if white <= 1.0:
        return rgb_linear
    full = white if full_scale is None else max(full_scale, white)
    span_in, span_out = math.log2(white / knee), math.log2(top / knee)
    b = (span_in - span_out) / (span_in * span_out)
    # On each pixel's brightest channel, the others scaled with it: hue and saturation are kept (a
    # curve per channel would bleach a bright yellow toward white before it reaches the top).
    pixels = rgb_linear.reshape(-1, 3)
    brightest = brightest_channel(pixels)
    above = np.flatnonzero(brightest > knee)
    x = brightest[above]
    stops = np.log2(np.minimum(x, np.float32(white)) / np.float32(knee))
    y = np.float32(knee) * np.exp2(stops / (1.0 + np.float32(b) * stops))
    if full > white:  # the source's last stretch below its full scale: onto the last 1 % below white
        beyond = x > white
        t = np.log2(x[beyond] / np.float32(white)) / np.float32(math.log2(full / white))
        y[beyond] = np.float32(top) * np.exp2(np.minimum(t, 1.0) * np.float32(math.log2(1.0 / top)))
    y[x >= np.float32(full * (1.0 - 1e-6))] = 1.0  # blown in the source (or pushed past it): white
    pixels[above] *= (np.minimum(y, np.float32(1.0)) / x)[:, None]
    if not np.shares_memory(pixels, rgb_linear):  # a strided view was copied by the reshape
        rgb_linear[...] = pixels.reshape(rgb_linear.shape)
    return rgb_linear


#: A channel this close to the source's full scale may be blown (JPEG noise and a camera's own roll-off keep
#: blown areas a few levels short of 255: sRGB 241) ...
BLOWN_FROM = 0.88
#: ... and from this level it is (sRGB 252.5): see :func:`blown_after_gains`.
BLOWN_AT = 0.98


def blown_after_gains(rgb_linear: np.ndarray, gains: Sequence[float], rendered: bool = False,
                      split: LevelSplit | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The pixels whose source may be blown, and their values after the white-balance ``gains``, keeping white white.

    A channel blown in the source holds full scale whatever the light was, so
    a white-balance gain below the others' turns a blown lamp or sky cyan or
    magenta (full-scale white with red cut to 0.7 is 221, 255, 255). A channel
    blown in the source is instead scaled by the pixel's largest gain, as the
    channels that clip with it are: blown white stays white (or, under a
    darkening, a neutral grey), and a yellow lamp blown in red and green stays
    yellow. A channel near blown alone (a face's red highlight, a red sign) takes
    its own gain, as the unclipped skin or paint around it does: scaled by the
    largest, a face's red highlights turned pink under a cooling correction.
    Between :data:`BLOWN_FROM` and :data:`BLOWN_AT` a smooth step of the channel
    times one of the pixel's middle channel blends the two gains, so tones keep
    their order and no edge appears. ``rendered``: the gains are a rendered
    source's, applied as :func:`~pipeline.imaging.measure.metering.balance_display_referred`
    applies them (with ``split``, the level split of ``rgb_linear``'s pixels, read at its base).

    Returns
    -------
    (ndarray, ndarray)
        The flat indices of the pixels with a channel above :data:`BLOWN_FROM`
        (a few percent of a photo, in a few of its strips: one OpenCV pass tells
        a strip without any, a second finds them) and their
        values after the gains, (n, 3) float32: what the plain gains give every
        other pixel is left to the caller's one pass.
    """
    g = np.asarray(gains, np.float32)
    if cv2.minMaxLoc(rgb_linear.reshape(rgb_linear.shape[0], -1))[1] <= BLOWN_FROM:  # most strips: nothing near
        return np.empty(0, np.intp), np.empty((0, 3), np.float32)
    below = cv2.inRange(rgb_linear, np.zeros(3), np.full(3, BLOWN_FROM))  # 255 where no channel is above
    near = np.flatnonzero(below.reshape(-1) == 0)
    source = rgb_linear.reshape(-1, 3)[near]
    # A channel takes the largest gain as far as it and the pixel's middle channel are near blown: a highlight
    # blown in two channels or three (a lamp, a sky, a yellow bulb), not a face's red alone.
    middle = source.sum(axis=1) - source.max(axis=1) - source.min(axis=1)
    w = np.clip((np.concatenate([source, middle[:, None]], axis=1) - np.float32(BLOWN_FROM))
                * np.float32(1.0 / (BLOWN_AT - BLOWN_FROM)), 0.0, 1.0)
    w *= w * (np.float32(3.0) - np.float32(2.0) * w)  # smooth step
    w = w[:, :3] * w[:, 3:]
    if rendered:  # each gain as balance_display_referred applies it: the own one, blended to the largest
        part = None if split is None else LevelSplit(split.base.reshape(-1)[near], split.detail.reshape(-1)[near])
        own = balance_display_referred(source, g, split=part)
        top = balance_display_referred(source, np.full(3, g.max(), np.float32), split=part)
        return near, own + w * (top - own)
    w *= g.max() - g
    w += g
    source *= w
    return near, source


def finish_rendition(
    rgb_linear: np.ndarray,
    color_space: ColorSpace | str,
    sharpen_amount: float,
    bit_depth: int,
    gains: Sequence[float] = (1.0, 1.0, 1.0),
    sharpen_sigma: float = 0.8,
    white: float = 1.0,
    full_scale: float | None = None,
    scene_gain: float = 1.0,
    backdrop: Sequence[float] | None = None,
    backdrop_levels: np.ndarray | None = None,
    balance: Sequence[float] | None = None,
    lift: ShadowLift | None = None,
    develop_curve: bool = False,
) -> np.ndarray:
    """Linear working-RGB raster -> encoded pixels of a rendition.

    Parameters
    ----------
    rgb_linear : ndarray, (H, W, 3), float32
        Linear light with sRGB primaries; overwritten (used as scratch).
    color_space : ColorSpace or str
        ``srgb``, ``display_p3`` or ``adobe_rgb``.
    sharpen_amount : float
        Unsharp-mask amount on the encoded luminance (0 = none).
    bit_depth : int
        8 or 16.
    gains : sequence of 3 float
        Per-channel linear gains applied first (white balance times
        exposure), keeping what the source blew white
        (:func:`blown_after_gains`); folded into the colour matrix, so they
        cost no extra pass, unless ``white`` asks for the highlight shoulder
        between the two.
    sharpen_sigma : float
        Gaussian radius of the unsharp mask in output pixels (screens want
        under a pixel after downsizing).
    white : float
        Where the gains take the source's white (:func:`shoulder_white`):
        above 1, :func:`highlight_shoulder` rolls the highlights off after the
        gains, before the colour space's matrix.
    full_scale : float, optional
        Where the gains take the source's full scale (see :func:`highlight_shoulder`).
    scene_gain : float
        Below 1: a rendered source's exposure darkening, applied after the gains in the scene light
        of its camera-like curve (:func:`~pipeline.imaging.measure.metering.darken_display_referred`;
        :attr:`Adjustments.display_referred`), not folded into them.
    backdrop : sequence of 3 float, optional
        A white backdrop's colour in ``rgb_linear``'s light (:attr:`Adjustments.backdrop_rgb`): its pixels
        are delivered white, blended in by :func:`backdrop_alpha`.
    backdrop_levels : ndarray, (H, W), float32, optional
        The backdrop's level at each pixel against its brightest, where its light falls off
        (:func:`backdrop_levels`): its white is read against it.
    balance : sequence of 3 float, optional
        A rendered source's white-balance gains (:func:`scene_balance`), applied first, by
        :func:`~pipeline.imaging.measure.metering.balance_display_referred` (what the source blew kept white, as
        :func:`blown_after_gains` keeps it); ``gains`` then carry the exposure alone.
    lift : ShadowLift, optional
        The shadows' lift (:attr:`Adjustments.shadow_lift`), after the gains, the shoulder and a darkening.
    develop_curve : bool
        A RAW's development (:attr:`Adjustments.develop_curve`): scene light through the camera-like curve after
        every correction, before the colour space's matrix.

    Returns
    -------
    ndarray, (H, W, 3), uint8 or uint16
        RGB encoded with the space's transfer curve (the ICC profile
        :func:`pipeline.imaging.icc.icc_profile` describes these values).

    Raises
    ------
    ValueError
        If ``bit_depth`` is not 8 or 16, ``sharpen_amount`` is negative, or
        ``rgb_linear`` is not float32 (H, W, 3).
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, got {bit_depth}")
    if sharpen_amount < 0:
        raise ValueError(f"sharpen amount must be >= 0, got {sharpen_amount}")
    if rgb_linear.dtype != np.float32 or rgb_linear.ndim != 3 or rgb_linear.shape[2] != 3:
        raise ValueError(f"expected float32 (H, W, 3), got {rgb_linear.dtype} {rgb_linear.shape}")
    if not 0.0 < scene_gain <= 1.0:
        raise ValueError(f"scene gain must be in (0, 1], got {scene_gain}")
    if backdrop is not None and not (len(backdrop) == 3 and min(backdrop) > 0):
        raise ValueError(f"backdrop must be three positive levels, got {backdrop!r}")
    space = ColorSpace(color_space)
    gain_matrix = np.diag(np.asarray(gains, dtype=np.float64))
    shoulder = white > 1.0
    darken = scene_gain < 1.0
    # With a shoulder, a darkening or a development the gains come first, alone; without, they fold into the colour
    # matrix.
    alone = shoulder or darken or develop_curve
    to_space = linear_srgb_to(space)
    matrix = to_space if alone else to_space @ gain_matrix
    matrix32 = None if np.allclose(matrix, np.eye(3)) else matrix.astype(np.float32)
    gains32 = gain_matrix.astype(np.float32) if alone and not np.allclose(gain_matrix, np.eye(3)) else None
    # Unequal gains (a white balance) would tint what the source blew: those pixels get their own values.
    coloured = not np.allclose(gains, np.max(gains))
    space32 = None if np.allclose(to_space, np.eye(3)) else to_space.T.astype(np.float32)
    luma_weights = rgb_to_xyz_matrix(space)[1].astype(np.float32).reshape(1, 3)
    enc = np.ascontiguousarray(rgb_linear)
    h = enc.shape[0]
    luma = np.empty(enc.shape[:2], dtype=np.float32) if sharpen_amount > 0 else None
    # Strips of rows that stay in cache through every per-pixel step: one
    # trip through memory instead of one per step (2-3x faster at web sizes).
    rows = _strip_rows(enc.shape[1])

    def lit(y: int) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
        """Strip ``y``'s white balance, gains and shoulder, in place; its backdrop's whitening and blown pixels."""
        strip = enc[y : y + rows]
        whiten = None if backdrop is None else backdrop_alpha(
            strip, backdrop, None if backdrop_levels is None else backdrop_levels[y : y + rows])
        if balance is not None:
            split = split_level(source_level, (y, y + strip.shape[0]))
            kept = blown_after_gains(strip, balance, rendered=True, split=split)
            balance_display_referred(strip, balance, out=strip, split=split)
            strip.reshape(-1, 3)[kept[0]] = kept[1]
        blown = blown_after_gains(strip, gains) if coloured else None
        if gains32 is not None:
            cv2.transform(strip, gains32, dst=strip)
        if blown is not None and alone:
            strip.reshape(-1, 3)[blown[0]] = blown[1]
        if shoulder:
            highlight_shoulder(strip, white, full_scale=full_scale,
                               top=DEVELOPED_SHOULDER_TOP if develop_curve else SHOULDER_TOP)
        return whiten, blown

    # A white balance and a darkening read each pixel's level from the whole picture's base (its fine detail kept
    # as displayed: :func:`~pipeline.imaging.measure.metering.split_level`): the balance the source's, the
    # darkening the lit picture's, so every strip is lit first, then the rest follows.
    source_level = encoded_level(enc) if balance is not None else None
    if darken:
        staged = [(y, *lit(y)) for y in range(0, h, rows)]
        source_level = None  # no longer needed: one level plane at a time
        level = encoded_level(enc)  # as lit: the strips darkened in place leave it as it was
    else:
        staged, level = ((y, *lit(y)) for y in range(0, h, rows)), None
    for y, whiten, blown in staged:
        strip = enc[y : y + rows]
        if level is not None:
            darken_display_referred(strip, scene_gain, out=strip, split=split_level(level, (y, y + strip.shape[0])))
        if lift is not None:
            lift.apply(strip)
        if develop_curve:
            develop(strip, out=strip)
        if matrix32 is not None:
            cv2.transform(strip, matrix32, dst=strip)
        if blown is not None and not alone:  # the gains were folded into the matrix: the space's alone here
            strip.reshape(-1, 3)[blown[0]] = blown[1] if space32 is None else blown[1] @ space32
        encoded = encode_fast(space, strip, in_place=True)
        if whiten is not None:  # toward white by alpha: 1 - (1 - alpha) * (1 - e)
            np.subtract(np.float32(1.0), encoded, out=encoded)
            encoded *= (np.float32(1.0) - whiten)[..., None]
            np.subtract(np.float32(1.0), encoded, out=encoded)
        strip[...] = encoded
        if luma is not None:
            luma[y : y + rows] = cv2.transform(strip, luma_weights).reshape(strip.shape[:2])
    dtype, full = (np.uint8, 255.0) if bit_depth == 8 else (np.uint16, 65535.0)
    out = np.empty(enc.shape, dtype=dtype)
    detail = None
    if luma is not None:
        blurred = cv2.GaussianBlur(luma, (0, 0), sharpen_sigma)
        detail = cv2.addWeighted(luma, float(sharpen_amount), blurred, -float(sharpen_amount), 0.0)
        del luma, blurred
    for y in range(0, h, rows):
        strip = enc[y : y + rows]
        if detail is not None:
            d = detail[y : y + rows]
            cv2.add(strip, cv2.merge([d, d, d]), dst=strip)
        # Saturating conversion: below 0 -> 0, above 1 -> full scale, rounded to nearest.
        out[y : y + rows] = cv2.multiply(_flat(strip), full, dtype=cv2.CV_8U if bit_depth == 8 else cv2.CV_16U).reshape(
            strip.shape
        )
    return out


def _strip_rows(width: int, budget_bytes: int = 1 << 20) -> int:
    return max(8, budget_bytes // (width * 3 * 4))


def correction_gains(adjustments: Adjustments) -> np.ndarray:
    """Per-channel linear gains of white balance times exposure (one multiply per pixel); a rendered
    source's darkening (:func:`scene_gain`) and white balance (:func:`scene_balance`) are not among them."""
    wb = 1.0 if scene_balance(adjustments) is not None else np.asarray(adjustments.wb_gains)
    return wb * np.full(3, 1.0 if scene_gain(adjustments) < 1.0 else 2.0**adjustments.gain_ev)


def scene_balance(adjustments: Adjustments) -> tuple[float, float, float] | None:
    """A rendered source's white-balance gains, which :func:`finish_rendition` applies by
    :func:`~pipeline.imaging.measure.metering.balance_display_referred` (no colour moved further than the curve's
    shoulder lets it); None for a RAW (its pixels are scene light: a plain gain) or without a white balance."""
    if not adjustments.display_referred or np.allclose(adjustments.wb_gains, 1.0):
        return None
    return adjustments.wb_gains


def scene_gain(adjustments: Adjustments) -> float:
    """The exposure gain :func:`finish_rendition` applies in a rendered source's scene light: ``2**exposure_ev``
    when the source is display-referred and the exposure darkens it, else 1 (a push rolls its highlights off
    with the shoulder instead, and a RAW's pixels are scene light already)."""
    if adjustments.display_referred and adjustments.exposure_ev < 0:
        return float(2.0**adjustments.exposure_ev)
    return 1.0


#: Share of the source's pixels allowed to clip after a push: the source's white for the shoulder
#: is the level of its brightest channel this far from the top (a few specular pixels do not
#: hold the whole picture's highlights down).
SOURCE_WHITE_PERCENTILE = 99.9


def source_white(decoded: np.ndarray) -> float:
    """The level of the source's highlights, in linear light (1.0 = full scale): the
    :data:`SOURCE_WHITE_PERCENTILE` of each pixel's brightest channel, on about 250 000 pixels.

    Raises
    ------
    ValueError
        If ``decoded`` is not an (H, W, 3) image.
    """
    return _brightest_percentile(decoded, SOURCE_WHITE_PERCENTILE)


def source_level(decoded: np.ndarray) -> float:
    """The level of a rendered source's mid-tones, in linear light (1.0 = full scale): the median of each pixel's
    brightest channel, on about 250 000 pixels, the level its camera-like curve acts on (a film-like curve sets the
    brightest channel; a saturated colour's luminance sits well below it). Where a push is matched
    (:meth:`Adjustments.for_source`).

    Raises
    ------
    ValueError
        If ``decoded`` is not an (H, W, 3) image.
    """
    return _brightest_percentile(decoded, 50.0)


def _brightest_percentile(decoded: np.ndarray, percentile: float) -> float:
    if decoded.ndim != 3 or decoded.shape[2] != 3 or decoded.size == 0:
        raise ValueError(f"expected an (H, W, 3) image, got {decoded.shape}")
    step = max(1, int(math.sqrt(decoded.shape[0] * decoded.shape[1] / 250_000)))
    brightest = brightest_channel(decoded[::step, ::step])
    level = float(np.percentile(brightest, percentile))
    return level / 65535.0 if decoded.dtype == np.uint16 else level


def shoulder_white(adjustments: Adjustments, white_of_source: float = 1.0) -> float:
    """Where the exposure gain takes the source's highlights: above 1, they roll off into white.

    ``2**exposure_ev * white_of_source`` for a push (:func:`source_white`), so an
    under-exposed source whose highlights sit at a quarter of full scale is
    pushed two stops by the plain gain, with no roll-off, and its highlights
    land on white as they were shot. The exposure alone decides it (a
    white-balance gain is a colour, not a push), so a frame the plan does not
    brighten renders exactly as before.
    """
    if adjustments.exposure_ev <= 0:
        return 1.0
    return 2.0**adjustments.gain_ev * max(white_of_source, 1e-6)


#: A pixel at this share of a white backdrop's colour or less, in the channel furthest under it, is the subject
#: (or its rim, blending into the white) and rendered as it is ...
BACKDROP_WHITE_FROM = 0.85
#: ... and from this share it is the backdrop, delivered white (a sweep's JPEG noise and its unevenness are a
#: few levels under its median); in between, blended by a smooth step.
BACKDROP_WHITE_AT = 0.97


def backdrop_alpha(rgb_linear: np.ndarray, backdrop: Sequence[float], levels: np.ndarray | None = None) -> np.ndarray:
    """How far each pixel is a white backdrop's white, (H, W) float32 in [0, 1].

    A sweep lit white, but read a little short of it (250 of 255) or blown in its brightest channel alone
    under a tinted light, renders light grey once the white balance makes it neutral (a sweep 45 mired warm,
    at 237 of 255: the gains keep luminance). Its pixels are its colour, ``backdrop`` (the median of its
    white, :func:`~pipeline.imaging.measure.exposure.backdrop_colour`), in every channel: those at
    :data:`BACKDROP_WHITE_AT` of it or more in the channel furthest under it are the backdrop, delivered
    white; the subject, in any colour, falls under it in some channel, and is rendered as it is, with no
    levels move on it (a white point set on the sweep clipped 3-8 % of a red cup's highlights); its rim blends
    between (:data:`BACKDROP_WHITE_FROM`). Where the sweep's light falls off towards the corners, ``levels`` (the
    same shape as the picture, :func:`backdrop_levels`) is its level against its brightest at each pixel: there
    its colour is ``backdrop`` times that level.
    """
    k = 1.0 / (BACKDROP_WHITE_AT - BACKDROP_WHITE_FROM)
    # Each channel over the backdrop's, scaled onto the step, in one OpenCV pass; the least of the three.
    scaled = cv2.transform(rgb_linear, np.diag(k / np.asarray(backdrop, np.float64)).astype(np.float32))
    r, g, b = cv2.split(scaled)
    t = cv2.min(cv2.min(r, g), b)
    if levels is not None:
        cv2.divide(t, levels, dst=t)
    t -= np.float32(BACKDROP_WHITE_FROM * k)
    np.clip(t, 0.0, 1.0, out=t)
    return t * t * (np.float32(3.0) - np.float32(2.0) * t)


def backdrop_levels(adjustments: Adjustments, to_frame: np.ndarray, size: tuple[int, int], width: int,
                    height: int) -> np.ndarray | None:
    """A white backdrop's level against its brightest at each pixel of a ``size`` raster, (H, W) float32, from its
    falloff (:attr:`Adjustments.backdrop_falloff`); ``to_frame`` maps the raster's pixels onto the ``width`` x
    ``height`` image (:func:`output_to_frame`); a pad beyond it has the level of the image's edge. None when the
    picture is not whitened or its backdrop is evenly lit."""
    if adjustments.backdrop_rgb is None or adjustments.backdrop_falloff is None:
        return None
    return _falloff_on(adjustments.backdrop_falloff, to_frame, size, width, height)


def _falloff_on(falloff: Sequence[float], to_frame: np.ndarray, size: tuple[int, int], width: int,
                height: int) -> np.ndarray:
    """:func:`~pipeline.imaging.measure.exposure.falloff_level` at each pixel of a ``size`` raster that ``to_frame``
    maps onto the ``width`` x ``height`` image, (H, W) float32 (beyond the image: its edge's level)."""
    out_w, out_h = size
    u = np.arange(out_w, dtype=np.float64)[None, :]
    v = np.arange(out_h, dtype=np.float64)[:, None]
    x = (to_frame[0, 0] * u + to_frame[0, 1] * v + to_frame[0, 2]) / width
    y = (to_frame[1, 0] * u + to_frame[1, 1] * v + to_frame[1, 2]) / height
    return falloff_level(falloff, x, y)


def backdrop_level(adjustments: Adjustments, color_space: ColorSpace | str, white: float = 1.0,
                   full_scale: float | None = None) -> float:
    """The encoded level, 0-1, a white backdrop (:attr:`Adjustments.backdrop_rgb`) renders at in its darkest
    channel with the picture's gains, shoulder and darkening, before it is whitened (1.0 without one)."""
    if adjustments.backdrop_rgb is None:
        return 1.0
    probe = np.asarray(adjustments.backdrop_rgb, np.float32).reshape(1, 1, 3).copy()
    encoded = finish_rendition(probe, color_space, 0.0, 16, correction_gains(adjustments), white=white,
                               full_scale=full_scale, scene_gain=scene_gain(adjustments),
                               balance=scene_balance(adjustments), develop_curve=adjustments.develop_curve)
    return float(encoded.min()) / 65535.0


def padded_split(frame: Box, width: int, height: int, size: tuple[int, int]) -> tuple[Box, tuple[int, int, int, int]] | None:
    """For an unturned frame reaching beyond the image: its part inside the image, and where that lands in the
    ``size`` output, ``(x, y, w, h)`` whole pixels; None for a frame inside the image.

    Raises
    ------
    ValueError
        If the frame lies wholly outside the image.
    """
    x, y, w, h = frame
    if x >= 0 and y >= 0 and x + w <= width and y + h <= height:
        return None
    ix0, iy0, ix1, iy1 = max(0.0, x), max(0.0, y), min(float(width), x + w), min(float(height), y + h)
    if ix1 <= ix0 or iy1 <= iy0:
        raise ValueError(f"frame {frame} lies outside the {width}x{height} image")
    out_w, out_h = size
    ox0, oy0 = round((ix0 - x) * out_w / w), round((iy0 - y) * out_h / h)
    ox1, oy1 = max(ox0 + 1, round((ix1 - x) * out_w / w)), max(oy0 + 1, round((iy1 - y) * out_h / h))
    ox0, oy0 = min(ox0, out_w - 1), min(oy0, out_h - 1)
    ox1, oy1 = min(ox1, out_w), min(oy1, out_h)
    return (ix0, iy0, ix1 - ix0, iy1 - iy0), (ox0, oy0, ox1 - ox0, oy1 - oy0)


def _pad(rows: int, cols: int, adjustments: Adjustments, to_frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """A ``rows`` x ``cols`` linear raster of the frame's pad colour (:attr:`Adjustments.pad_rgb`), at the
    backdrop's level where it falls off (:attr:`Adjustments.pad_falloff`; ``to_frame`` maps the raster onto the
    ``width`` x ``height`` image)."""
    canvas = np.empty((rows, cols, 3), np.float32)
    canvas[...] = np.asarray(adjustments.pad_rgb, np.float32)
    if adjustments.pad_falloff is not None:
        canvas *= _falloff_on(adjustments.pad_falloff, to_frame, (cols, rows), width, height)[..., None]
    return canvas


def _padding(adjustments: Adjustments, frame: Box, width: int, height: int,
             size: tuple[int, int]) -> tuple[Box, tuple[int, int, int, int]] | None:
    """:func:`padded_split` of a padded frame (:attr:`Adjustments.pad_rgb`), unturned (a reviewer's turn of a
    padded crop repeats the image's edge instead)."""
    if adjustments.pad_rgb is None or adjustments.angle_deg:
        return None
    return padded_split(frame, width, height, size)


def render_frame(
    decoded: np.ndarray,
    width: int,
    height: int,
    adjustments: Adjustments,
    frame: Box,
    size: tuple[int, int],
    color_space: ColorSpace | str,
    sharpen_amount: float,
    bit_depth: int,
    sharpen_sigma: float = 0.8,
    white_of_source: float | None = None,
    noise: NoiseLevels | None = None,
) -> np.ndarray:
    """One picture of an image: ``frame`` turned, resampled to ``size``, corrected and encoded.

    The render path every picture takes, the delivered renditions
    (:func:`render_renditions`) and the review's previews (:func:`render_preview`)
    alike: :func:`warp_frame`, :func:`apply_face_blurs`, :func:`apply_face_lifts`, then
    :func:`finish_rendition` with the white-balance and exposure gains.

    Parameters
    ----------
    decoded : ndarray, (h, w, 3), uint16 or float32
        The oriented decode, linear light, at any resolution.
    width, height : int
        Full-resolution size of the oriented image (the operations' coordinates).
    adjustments : Adjustments
        From :func:`adjustments_from_operations`; its ``angle_deg`` turns ``frame``.
    frame : Box
        The box of the full-resolution frame to show (see :func:`rendition_frame`).
    size : (int, int)
        Output width and height.
    color_space, sharpen_amount, bit_depth, sharpen_sigma
        As in :func:`finish_rendition`.
    white_of_source : float, optional
        :func:`source_white` of ``decoded``, when the caller has it already (it
        renders several pictures of one decode); measured here when not given.
    noise : NoiseLevels, optional
        Where the adjustments reduce noise: the noise of the picture this one is part of (a tile of the 100% view:
        the whole picture's at that scale, :func:`rows_noise`); by default read on this picture
        (:func:`rendition_noise`).

    Returns
    -------
    ndarray, (size[1], size[0], 3), uint8 or uint16

    Raises
    ------
    ValueError
        On malformed inputs (see :func:`warp_frame` and :func:`finish_rendition`).
    """
    src_scale = (decoded.shape[1] / width, decoded.shape[0] / height)
    adjustments = adjustments.for_source(decoded)
    # The whole source's highlights, not this frame's: every rendition and preview rolls off alike.
    if adjustments.exposure_ev > 0 and white_of_source is None:
        white_of_source = source_white(decoded)
    white = shoulder_white(adjustments, white_of_source if adjustments.exposure_ev > 0 else 1.0)
    split = _padding(adjustments, frame, width, height, size)
    to_frame = output_to_frame(frame, adjustments.angle_deg, size)
    lens = frame_map(adjustments.lens, adjustments.keystone, width, height)
    if split is None:
        linear = warp_frame(decoded, frame, adjustments.angle_deg, size, src_scale, lens)
    else:  # the image's part inside, on the pad
        inner, (ox, oy, ow, oh) = split
        linear = _pad(size[1], size[0], adjustments, to_frame, width, height)
        linear[oy : oy + oh, ox : ox + ow] = warp_frame(decoded, inner, 0.0, (ow, oh), src_scale, lens)
    levels = None if adjustments.noise is None else noise or rendition_noise(linear, adjustments.noise)
    apply_red_eyes(linear, adjustments.red_eyes, to_frame, lens)
    apply_face_blurs(linear, adjustments.blurs, to_frame, decoded_sampler(decoded, width, height), lens)
    apply_face_lifts(linear, adjustments.faces, to_frame, lens)
    _reduce_noise(linear, adjustments.noise, levels)
    full = 2.0**adjustments.gain_ev if white > 1.0 else None
    return finish_rendition(
        linear, color_space, sharpen_amount, bit_depth, correction_gains(adjustments), sharpen_sigma, white, full,
        scene_gain(adjustments), adjustments.backdrop_rgb, backdrop_levels(adjustments, to_frame, size, width, height),
        scene_balance(adjustments), adjustments.shadow_lift, adjustments.develop_curve,
    )


def render_rows(
    region_of: Callable[[int, int, int, int], np.ndarray],
    width: int,
    height: int,
    adjustments: Adjustments,
    frame: Box,
    size: tuple[int, int],
    rows: tuple[int, int],
    color_space: ColorSpace | str,
    sharpen_amount: float,
    bit_depth: int,
    sharpen_sigma: float = 0.8,
    white_of_source: float = 1.0,
    sampler: BlurSampler | None = None,
    noise: NoiseLevels | None = None,
) -> np.ndarray:
    """Rows ``[v0, v1)`` of :func:`render_frame`'s picture, from a full-resolution source read by regions.

    The same steps as :func:`render_frame`, on the output rows asked for and
    the source pixels under them: the rows are rendered with a margin as
    wide as the sharpening's reach, so strips put together are the picture
    rendered whole (to the bit for an unturned frame at full resolution with
    OpenCV 5.0, and but for a pixel or two at its right edge, 1 of 65535 apart,
    with 5.1; a turned one or face lifts may round a value differently).

    Parameters
    ----------
    region_of : callable
        ``(x0, y0, x1, y1)`` -> the oriented full-resolution decode's pixels
        ``[y0:y1, x0:x1]``, linear light (:meth:`pipeline.imaging.bayer.BayerFrame.region`).
    rows : (int, int)
        First and past-last output row.
    width, height, adjustments, frame, size, color_space, sharpen_amount, bit_depth, sharpen_sigma
        As :func:`render_frame`.
    white_of_source : float
        The whole source's highlights (:func:`source_white`), for the highlight
        shoulder of a push: no region sees them all, so the caller measures
        them once (on a smaller decode of the same source) and every strip
        and every rendition of the image rolls off alike.
    sampler : BlurSampler, optional
        What the blurred heads read of the source: one :func:`region_sampler` of ``region_of`` shared by a
        rendition's strips reads each head once; by default, one of this call's own.
    noise : NoiseLevels, optional
        The picture's noise where the adjustments reduce it: read once for all its strips
        (:func:`rows_noise`, the rows :func:`render_frame` reads it on); by default, read on these rows.

    Returns
    -------
    ndarray, (v1 - v0, size[0], 3), uint8 or uint16

    Raises
    ------
    ValueError
        If ``rows`` is not a non-empty range of the output, or as :func:`render_frame`.
    """
    out_w, out_h = int(size[0]), int(size[1])
    v0, v1 = rows
    if not 0 <= v0 < v1 <= out_h:
        raise ValueError(f"rows {rows} are not a non-empty range of a {out_h}-row picture")
    reach = math.ceil(4 * sharpen_sigma) + 2 if sharpen_amount > 0 else 0
    # A white balance's split and a darkening's read the level around each row (split_level), one after the other.
    reach += DETAIL_REACH * ((scene_balance(adjustments) is not None) + (scene_gain(adjustments) < 1.0))
    reach += denoise.REACH if adjustments.noise is not None else 0
    a0, a1 = max(0, v0 - reach), min(out_h, v1 + reach)
    linear, to_frame, lens = _resampled_rows(region_of, width, height, adjustments, frame, (out_w, out_h), (a0, a1))
    if adjustments.noise is not None and noise is None:
        noise = rendition_noise(linear, adjustments.noise)
    apply_red_eyes(linear, adjustments.red_eyes, to_frame, lens)
    sampler = sampler or region_sampler(region_of, width, height)
    apply_face_blurs(linear, adjustments.blurs, to_frame, sampler, lens, a0)
    apply_face_lifts(linear, adjustments.faces, to_frame, lens)
    _reduce_noise(linear, adjustments.noise, noise)
    white = shoulder_white(adjustments, white_of_source)
    full = 2.0**adjustments.gain_ev if white > 1.0 else None
    out = finish_rendition(
        linear, color_space, sharpen_amount, bit_depth, correction_gains(adjustments), sharpen_sigma, white, full,
        scene_gain(adjustments), adjustments.backdrop_rgb,
        backdrop_levels(adjustments, to_frame, (out_w, a1 - a0), width, height), scene_balance(adjustments),
        adjustments.shadow_lift, adjustments.develop_curve,
    )
    return out[v0 - a0 : v1 - a0]


def rendition_noise(linear: np.ndarray, reduction: NoiseReduction | None = None) -> NoiseLevels | None:
    """The noise of a picture's raster as resampled, before any local correction (:func:`~pipeline.imaging.denoise.
    picture_noise`), the share of it a ``reduction`` takes for noise (:meth:`NoiseReduction.of`)."""
    levels = denoise.picture_noise(linear)
    return levels if reduction is None else reduction.of(levels)


def rows_noise(region_of: Callable[[int, int, int, int], np.ndarray], width: int, height: int,
               adjustments: Adjustments, frame: Box, size: tuple[int, int]) -> NoiseLevels | None:
    """:func:`rendition_noise` of a picture rendered in strips (:func:`render_rows`): its noise band resampled alone."""
    band = denoise.noise_band(int(size[0]), int(size[1]))
    levels = denoise.noise_levels(_resampled_rows(region_of, width, height, adjustments, frame, size, band)[0])
    return levels if adjustments.noise is None else adjustments.noise.of(levels)


def _resampled_rows(region_of: Callable[[int, int, int, int], np.ndarray], width: int, height: int,
                    adjustments: Adjustments, frame: Box, size: tuple[int, int], rows: tuple[int, int]
                    ) -> tuple[np.ndarray, np.ndarray, LensGrid | KeystoneMap | None]:
    """Rows ``[a0, a1)`` of a picture's raster as resampled (laid on its pad, where it has one), before any
    correction; with the map from them to the frame, and the lens's (:func:`render_rows`, :func:`rows_noise`)."""
    out_w, out_h = int(size[0]), int(size[1])
    a0, a1 = rows
    to_frame = output_to_frame(frame, adjustments.angle_deg, (out_w, out_h)) @ _translate(0.0, a0)
    split = _padding(adjustments, frame, width, height, (out_w, out_h))
    lens = frame_map(adjustments.lens, adjustments.keystone, width, height)
    if split is None:
        return _rows_of(region_of, to_frame, out_w, a1 - a0, width, height, frame, lens), to_frame, lens
    inner, (ox, oy, ow, oh) = split  # the image's part inside, on the pad, as render_frame lays it
    linear = _pad(a1 - a0, out_w, adjustments, to_frame, width, height)
    r0, r1 = max(a0, oy), min(a1, oy + oh)
    if r0 < r1:
        to_inner = output_to_frame(inner, 0.0, (ow, oh)) @ _translate(0.0, r0 - oy)
        linear[r0 - a0 : r1 - a0, ox : ox + ow] = _rows_of(region_of, to_inner, ow, r1 - r0, width, height,
                                                           inner, lens)
    return linear, to_frame, lens


def noise_acting(adjustments: Adjustments, levels: NoiseLevels | None) -> Adjustments:
    """``adjustments`` for a picture whose noise reads ``levels`` (:func:`rows_noise`): without their noise
    reduction where it would do nothing there (no reading, or noise as low as a clean photograph's), so a picture
    rendered by parts (strips, tiles) reads no margin of neighbours for it."""
    if adjustments.noise is None or (levels is not None and any(denoise.strengths(
            levels, adjustments.noise.luminance, adjustments.noise.colour))):
        return adjustments
    return dataclasses.replace(adjustments, noise=None)


def _reduce_noise(linear: np.ndarray, noise: NoiseReduction | None, levels: NoiseLevels | None) -> None:
    if noise is not None and levels is not None:
        denoise.reduce_noise(linear, levels, noise.luminance, noise.colour)


def _rows_of(region_of: Callable[[int, int, int, int], np.ndarray], to_frame: np.ndarray, out_w: int, out_h: int,
             width: int, height: int, frame: Box, lens: LensGrid | KeystoneMap | None = None) -> np.ndarray:
    """The ``out_w`` x ``out_h`` raster ``to_frame`` maps onto the image, read by regions (:func:`render_rows`)."""
    to_frame, lens = _projective(to_frame, lens)
    if lens is not None:
        return _warp_through_lens(lambda box: region_of(*box), (width, height), to_frame, out_w, out_h, (1.0, 1.0),
                                  lens)
    x0, y0, x1, y1 = _source_box(to_frame, out_w, out_h, width, height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"frame {frame} lies outside the {width}x{height} image")
    return _warp(region_of(x0, y0, x1, y1), _translate(-x0, -y0) @ to_frame, out_w, out_h)


@dataclass
class RenditionStrips:
    """A rendition too large to hold, rendered strip by strip as it is read (written).

    Attributes
    ----------
    width, height : int
        Pixel size.
    bit_depth : int
        8 or 16 (``uint8`` or ``uint16`` strips).
    render : callable
        ``(v0, v1)`` -> the encoded rows ``[v0, v1)`` (:func:`render_rows`).
    rows_per_strip : int
        Rows :meth:`strips` renders at a time.
    close : callable, optional
        Releases the source (the open RAW file) once the strips are written.
    """

    width: int
    height: int
    bit_depth: int
    render: Callable[[int, int], np.ndarray]
    rows_per_strip: int = 256
    close: Callable[[], None] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, 3)

    def strips(self) -> Iterator[np.ndarray]:
        """The picture's rows, ``rows_per_strip`` at a time, top to bottom."""
        for v0 in range(0, self.height, self.rows_per_strip):
            yield self.render(v0, min(self.height, v0 + self.rows_per_strip))

    def release(self) -> None:
        if self.close is not None:
            self.close()
            self.close = None


def render_renditions(
    decoded: np.ndarray,
    width: int,
    height: int,
    adjustments: Adjustments,
    renditions: Mapping[str, Rendition],
    sharpen_sigma: float = 0.8,
    white_of_source: float | None = None,
    threads: int = 1,
) -> dict[str, np.ndarray]:
    """Every rendition of one image from its decode.

    Parameters
    ----------
    decoded : ndarray, (h, w, 3), uint16 or float32
        The oriented decode, linear light (any resolution: half size, the proxy, full).
    width, height : int
        Full-resolution size of the oriented image (the operations' coordinates).
    adjustments : Adjustments
        From :func:`adjustments_from_operations`.
    renditions : mapping of str to Rendition
        The chart's renditions.
    sharpen_sigma : float
        Unsharp-mask radius in output pixels.
    white_of_source : float, optional
        :func:`source_white` of ``decoded`` if the caller has it; else measured
        here, once for every rendition of a push.
    threads : int
        Above 1, the renditions are rendered beside each other (:mod:`pipeline.kernel.beside`) while their output
        pixels add up to at most :data:`BESIDE_MAX_PIXELS`; the same pixels.

    Returns
    -------
    dict
        Rendition name -> encoded ``uint8``/``uint16`` RGB array.

    Raises
    ------
    ValueError
        On malformed inputs (see :func:`warp_frame`).
    """
    if adjustments.exposure_ev > 0 and white_of_source is None and renditions:
        white_of_source = source_white(decoded)
    adjustments = adjustments.for_source(decoded)  # once for every rendition
    plans = {}
    for name, r in renditions.items():
        turned = adjustments.for_crop(r.crop)  # a crop a reviewer turned further
        frame = rendition_frame(r, turned, width, height)
        plans[name] = (r, turned, frame, rendition_size(r, frame))
    # Beside each other only while their float working copies together stay small: a full-size master of a large
    # sensor beside another rendition would hold both at once.
    together = len(plans) > 1 and sum(w * h for *_, (w, h) in plans.values()) <= BESIDE_MAX_PIXELS
    pending = {
        name: beside(
            threads if together else 1, render_frame,
            decoded, width, height, turned, frame, size, r.color_space, r.sharpen_amount, r.bit_depth,
            sharpen_sigma, white_of_source,
        )  # fmt: skip
        for name, (r, turned, frame, size) in plans.items()
    }
    return {name: rendered.result() for name, rendered in pending.items()}


#: :func:`render_renditions` renders a chart's renditions beside each other (given threads) while their output
#: pixels add up to at most this many (each holds a float32 working copy of about 12 bytes a pixel, and more
#: while it is resampled and sharpened): a web set, not a 45 MP master beside a print crop.
BESIDE_MAX_PIXELS = 24_000_000


def preview_size(width: int, height: int, long_edge: int) -> tuple[int, int]:
    """``(w, h)`` of a whole-frame picture with at most ``long_edge`` on its long side (never enlarged)."""
    scale = min(1.0, long_edge / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def render_preview(decoded: np.ndarray, width: int, height: int, adjustments: Adjustments) -> np.ndarray:
    """The review's picture of an image: the whole frame at the decode's own size, as it will be delivered.

    The same path as the renditions (:func:`render_frame`): white balance,
    exposure and face lifts exactly as the export applies them, encoded to
    8-bit sRGB, with no output sharpening (a rendition's sharpening belongs to
    its output size). Straightening and crops are left out: the review draws
    them over the whole, unturned frame.

    Parameters
    ----------
    decoded : ndarray, (h, w, 3), uint16 or float32
        The oriented decode, linear light, at preview size.
    width, height : int
        Full-resolution size of the oriented image (the operations' coordinates).
    adjustments : Adjustments
        From :func:`adjustments_from_operations`.

    Returns
    -------
    ndarray, (h, w, 3), uint8
        sRGB.

    Raises
    ------
    ValueError
        If ``width`` or ``height`` is not positive, or ``decoded`` is not an (h, w, 3) image.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if decoded.ndim != 3 or decoded.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {decoded.shape}")
    unturned = dataclasses.replace(adjustments, angle_deg=0.0)
    size = (decoded.shape[1], decoded.shape[0])
    frame = (0.0, 0.0, float(width), float(height))
    return render_frame(decoded, width, height, unturned, frame, size, ColorSpace.SRGB, 0.0, 8)


# --- decode ----------------------------------------------------------------------------


def decode_for_render(
    path: Path,
    kind: SourceKind,
    width: int,
    height: int,
    scale: float,
    max_pixels: int,
    max_bytes: int = DEFAULT_DECODE_BUDGET_BYTES,
    orientation: int | None = None,
) -> np.ndarray:
    """Decode a source at the smallest size that gives ``scale`` decoded px per full-res px.

    RAW: LibRaw half size (no demosaic, several times faster, exact) when half
    the full resolution is enough, else the full demosaic; ``uint16``, the
    same LibRaw settings as the analysis proxy. Raster: Pillow at full size,
    or JPEG's DCT scaling to no less than the needed long edge; ``float32``,
    never resampled here (the render resamples it once).

    Parameters
    ----------
    max_bytes : int
        Memory budget of a raster decode (see :func:`~pipeline.imaging.decode.decode_raster`).
    orientation : int, optional
        A RAW's turn as its record has it (the photographer's XMP may have turned it:
        :func:`~pipeline.imaging.decode.develop_flip`); None: the file's own.

    Raises
    ------
    InputError
        If the source cannot be decoded.
    """
    if kind is SourceKind.RASTER:
        long_edge = math.ceil(scale * max(width, height))
        rgb, _ = decode_raster(path, long_edge if scale < 1.0 else None, max_pixels, max_bytes, downscale=False)
        return rgb
    with open_raw(path) as handle:
        return decode_raw_linear(handle, half_size=raw_half_size(scale), flip=develop_flip(handle, orientation))


def render_key(content_hash: str, chart: Chart, operations: Sequence[Operation]) -> str:
    """SHA-256 naming exactly what the exports of an image were made from.

    Same source bytes, same resolved chart, same operations and the same
    :data:`RENDER_VERSION` give the same key, so a resumed run can keep exports
    whose key matches and redo the others.
    """
    return RenderKeys(chart).key(content_hash, operations)


_KEY_JSON = {"sort_keys": True, "default": str, "separators": (",", ":")}


class RenderKeys:
    """:func:`render_key` for many images of one chart: the chart is serialised once.

    The key is the SHA-256 of the JSON of ``{"chart", "operations",
    "render_version", "source"}`` with sorted keys; the chart's part is
    written once here and spliced in, which gives the same text (the review
    app checks thousands of images for stale exports this way).
    """

    def __init__(self, chart: Chart) -> None:
        dump = chart.model_dump(mode="json", exclude={"extends", "description"})
        self._head = '{"chart":' + json.dumps(dump, **_KEY_JSON)  # type: ignore[arg-type]
        # A watermark's logo or font, and a CMYK rendition's profile, are named by their paths: what they hold is
        # keyed too, so a new logo or a press's new profile redoes the exports.
        files = sorted({mark_file(r.watermark) for r in chart.renditions.values() if r.watermark is not None}
                       | {r.cmyk_profile for r in chart.renditions.values() if r.cmyk_profile is not None})
        if files:
            digests = {path: file_digest(path) for path in files}
            self._head += ',"mark_files":' + json.dumps(digests, **_KEY_JSON)  # type: ignore[arg-type]
        self._head += ',"operations":'

    def key(self, content_hash: str, operations: Sequence[Operation]) -> str:
        ops = [
            # Of a reviewer's decision what changes pixels, as the journal keys on it (pixel_review).
            {"op_id": o.op_id, "kind": str(o.kind), "params": o.params, "applied_by": str(o.applied_by),
             **pixel_review(o.params, o.review)}
            for o in operations
        ]
        text = (self._head + json.dumps(ops, **_KEY_JSON)  # type: ignore[arg-type]
                + ',"render_version":' + json.dumps(RENDER_VERSION) + ',"source":' + json.dumps(content_hash) + "}")
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
