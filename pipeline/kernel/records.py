"""Typed records that cross stage boundaries.

Stages exchange paths and these small records, never pixel arrays: the
analysis proxy lives only inside the worker that decoded it (see
:class:`WorkItem`). :mod:`pipeline.kernel.schema` is the Arrow image of these types and
a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow as pa


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"


class Failure(StrEnum):
    """Why a file failed, which decides whether a rerun tries it again."""

    INPUT = "input"  # the file's content (corrupt, unsupported): the same bytes fail the same way
    TRANSIENT = "transient"  # the machine (a worker killed, out of memory, an I/O error): retried
    INTERNAL = "internal"  # postprod's own error on the file (a bug, a library's on input it did not expect): retried


#: The failures a rerun tries again (the machine's, postprod's own), not journalled as done.
RETRIED_FAILURES = frozenset({Failure.TRANSIENT, Failure.INTERNAL})


class ExposureVerdict(StrEnum):
    UNDER = "under"
    OK = "ok"
    OVER = "over"


class SourceKind(StrEnum):
    RAW = "raw"
    RASTER = "raster"
    UNKNOWN = "unknown"


@dataclass
class Face:
    """One detected face, in full-resolution pixels of the oriented image.

    Travels on :attr:`ImageRecord.faces`; written to ``faces.parquet`` (one
    row per face, see :data:`pipeline.kernel.schema.FACES_SCHEMA`), not to the manifest.

    Attributes
    ----------
    x, y, width, height : float
        Face box (top-left corner and size).
    score : float
        Detector confidence in [0, 1].
    landmarks : list of float
        Ten numbers, five ``(x, y)`` points: the eye on the image's left, the
        eye on the image's right, the nose tip, the mouth corner on the image's
        left, the mouth corner on the image's right.
    exposure_ev : float or None
        log2(scene light of the face's centre / that of a face in a well-exposed
        photograph), on the whole image meter's scale: 0 is exposed like a typical
        published portrait, -1 a stop darker. None when the box is outside the image.
    sharpness : float or None
        Variance of the Laplacian of the face's grey values (0-255), resampled
        to 128 px wide so faces of any size compare; higher is sharper.
    too_small : bool
        Smaller than the stage's minimum face size: kept, but too small to
        retouch or judge reliably.
    colour_rgb : list of float or None
        Median linear RGB (working space, 1.0 = white) of the face's centre, the
        region its exposure is read on: the white-balance rule checks that skin
        stays skin after its correction. None when the box is outside the image.
    surround_ev : float or None
        log2(the face centre's luminance / its neighbourhood's lit surfaces)
        (:func:`pipeline.imaging.faces.face_surround_ev`): how much darker the
        face is than the light around it. None when not measured.
    clipped_pct : float or None
        Percent of the face centre's pixels (where its exposure is read) with a
        channel clipped at white (:func:`pipeline.imaging.faces.face_clipped_pct`):
        the skin's highlights lost. None when not measured.
    skin_ev : float or None
        The face's skin under its eyes, cheeks and nose (:func:`pipeline.imaging.faces.face_skin_ev`), on
        ``exposure_ev``'s scale: read clear of dark glasses, brows and teeth. None when not measured or the
        landmarks leave no such band (a face in profile).
    red_eyes : list of float or None
        The face's red pupils (:func:`pipeline.imaging.red_eye.find_red_eyes`): ``x, y, radius`` in
        full-resolution pixels, three numbers a red eye (none, one or two). None when not measured.
    """

    x: float
    y: float
    width: float
    height: float
    score: float
    landmarks: list[float]
    exposure_ev: float | None = None
    sharpness: float | None = None
    too_small: bool = False
    colour_rgb: list[float] | None = None
    surround_ev: float | None = None
    clipped_pct: float | None = None
    skin_ev: float | None = None
    red_eyes: list[float] | None = None


class OperationKind(StrEnum):
    EXPOSURE = "exposure"
    WHITE_BALANCE = "white_balance"
    BRIGHTEN_FACE = "brighten_face"
    BLUR_FACE = "blur_face"  # a face delivered unrecognisable for privacy (the chart's privacy.blur_faces)
    RED_EYE = "red_eye"  # a flash's red pupils taken back to dark (the chart's faces.red_eye)
    REDUCE_NOISE = "reduce_noise"  # the sensor's noise taken down, read at each picture's size (the chart's noise)
    STRAIGHTEN = "straighten"
    WHITEN_BACKDROP = "whiten_backdrop"
    LIFT_SHADOWS = "lift_shadows"  # a backlit frame's dark part lifted, its highlights left as they are
    LENS_CORRECTION = "lens_correction"  # the lens's distortion and vignetting undone from its profile
    MERGE_BRACKET = "merge_bracket"  # the other frames of an exposure bracket merged into this one
    CROP = "crop"
    FLAG = "flag"
    REJECT = "reject"


class AppliedBy(StrEnum):
    """Who carries an operation out."""

    RENDERER = "renderer"  # postprod applies it in the render stage
    RETOUCHER = "retoucher"  # a person must (postprod only describes it)


#: An operation parameter: a person's operation (``applied_by: retoucher``) that the renderer carries out once a
#: reviewer accepts it (a face's lift the renderer could apply, which the plan wants seen first; a darkening only a
#: frame's blown part asks for).
RENDER_ON_ACCEPT = "render_on_accept"


def renderer_applies(applied_by: str, params: Mapping[str, Any], review: Mapping[str, Any] | None) -> bool:
    """Whether the renderer carries an operation out: the renderer's own unless a reviewer rejected it, and a
    person's marked :data:`RENDER_ON_ACCEPT` once a reviewer accepted it."""
    status = (review or {}).get("status")
    if status == "rejected":
        return False
    return applied_by == AppliedBy.RENDERER or (status == "accepted" and bool(params.get(RENDER_ON_ACCEPT)))


def awaiting_decision(params: Mapping[str, Any], review: Mapping[str, Any] | None) -> bool:
    """Whether an operation is a proposal still to confirm: marked :data:`RENDER_ON_ACCEPT`, and no reviewer
    accepted or rejected it yet."""
    return bool(params.get(RENDER_ON_ACCEPT)) and (review or {}).get("status") not in ("accepted", "rejected")


def pixel_review(params: Mapping[str, Any], review: Mapping[str, Any] | None) -> dict[str, bool]:
    """Of a reviewer's decision on an operation, what changes the exports' pixels (the journal's key and the
    exports' render key read it): a rejection (edited amounts are in ``params`` already), and for a person's
    operation marked :data:`RENDER_ON_ACCEPT`, an acceptance. Accepting anything else, marking done or commenting
    changes none."""
    status = (review or {}).get("status")
    return {"rejected": status == "rejected"} | ({"accepted": status == "accepted"} if params.get(RENDER_ON_ACCEPT)
                                                 else {})


class Verdict(StrEnum):
    """What the plan says about an image as a whole."""

    ACCEPT = "accept"
    FLAG = "flag"  # deliverable, but a person should look
    REJECT = "reject"  # not deliverable under the chart


@dataclass
class Operation:
    """One retouch instruction for one image.

    Attributes
    ----------
    op_id : str
        Stable within the image (``"exposure"``, ``"brighten_face-2"``, ``"crop-4x5"``),
        so a reviewer's decision can refer to it across re-plans.
    kind : OperationKind
    params : dict
        Kind-specific values, in full-resolution pixels of the oriented image:
        exposure ``{"ev", "render_on_accept"?}`` (:data:`RENDER_ON_ACCEPT`: a darkening proposed, not applied, since
        only the frame's blown part asks for it); white_balance ``{"gains": [r, g, b]`` (linear multipliers
        the renderer applies), ``"temperature_shift_k", "tint_shift", "mired_shift"}`` (for people);
        brighten_face ``{"face_index", "box": [x, y, w, h], "ev", "feather_px", "render_on_accept"?}``
        (:data:`RENDER_ON_ACCEPT`: a person's lift the renderer applies once a reviewer accepts it) or, drawn by a
        reviewer on a face the plan did not lift, ``{"box", "ev", "feather_px", "drawn": true}``; red_eye
        ``{"face_index", "eyes": [[x, y, radius], ...]}`` (the red pupils the renderer takes the red out of);
        reduce_noise ``{"luminance", "colour"}`` (strengths 0-2, 1 the tuned amount:
        :func:`pipeline.imaging.denoise.reduce_noise`, at each picture's own size and noise);
        blur_face ``{"face_index" | "unsure_index", "box": [x, y, w, h], "face_box"}`` (the head's box the renderer
        blurs, and the detector's box of the face, or of the record's unsure detection) or, drawn by a reviewer
        on a face the detector missed, ``{"box", "drawn": true}``;
        straighten ``{"angle_deg", "axis": "horizon"|"verticals"}`` (the crop rectangle's turn,
        counter-clockwise on screen positive, equal to the measured tilt);
        crop ``{"aspect", "box": [x, y, w, h], "placement", "angle_deg"}`` (Camera Raw's model: the
        box turned by angle_deg about its centre); flag/reject ``{"check", ...}`` (the faces rule's
        ``face_shadow`` check also ``{"face_index", "box", "ev", "surround_ev"?}``: a face its peers
        read in a shadow ``ev`` deep that its surroundings do not confirm, or one read further under than
        the chart's ``exposure.max_correction_ev`` (no ``surround_ev``), not lifted; the
        ``skin_exposure`` check ``{"faces"}``: the 1-based faces the exposure correction, or a scene's
        matched white, takes skin colour from; the ``exposure_skin`` check ``{"faces"}``: the 1-based
        faces a fuller darkening would have greyed, the exposure held short of it; the ``sky_white_balance`` check:
        a scene's matched white that would turn the frame's blue sky, said in the reason).
    reason : str
        Why, in the retoucher's words ("face 2 is 1.3 EV below the target").
    measured, target : float or None
        The measured value and the chart's target it was compared with.
    confidence : float
        0-1: how sure the plan is (detector score, line count, margin to threshold).
    applied_by : AppliedBy
    review : dict or None
        The reviewer's decision (``postprod review``): status pending, accepted,
        rejected or done, who, when, a comment, and ``params`` the reviewer
        changed (they replace the plan's). The renderer skips rejected operations, and applies a person's
        operation marked :data:`RENDER_ON_ACCEPT` once accepted (:func:`renderer_applies`).
    """

    op_id: str
    kind: OperationKind
    params: dict[str, Any]
    reason: str
    measured: float | None = None
    target: float | None = None
    confidence: float = 1.0
    applied_by: AppliedBy = AppliedBy.RENDERER
    # A reviewer's decision ({"status", "by", "at", "comment", "params"?}), carried
    # over from the instructions file across re-plans; None while untouched.
    review: dict[str, Any] | None = None


@dataclass
class ExportedFile:
    """One delivered file (a rendition of one image)."""

    rendition: str
    path: str  # relative to the output folder, POSIX
    width: int
    height: int
    bytes: int
    format: str
    sha256: str


# --- the image record: ingest facts, typed measurement groups, the plan --------------------
#
# Every value that becomes a manifest column is declared once, here, with its
# column name, Arrow type and description (:func:`column`);
# :data:`pipeline.kernel.schema.MANIFEST_SCHEMA` is generated from these
# declarations, so a new field cannot be left out of the Parquet file.


def column(name: str, arrow: pa.DataType, description: str, nullable: bool = True,
           default: Any = None, required: bool = False) -> Any:
    """A record field that is also the manifest column ``name`` (``required``: no default)."""
    return field(default=dataclasses.MISSING if required else default, metadata={"column": name, "arrow": arrow, "description": description,
                                            "nullable": nullable})


@dataclass
class Camera:
    """What the source file says about its capture (written by decode_raw)."""

    make: str | None = column("camera_make", pa.string(), "Camera maker as the file states it.")
    model: str | None = column("camera_model", pa.string(), "Camera model as the file states it.")
    lens: str | None = column("lens", pa.string(), "Lens model, when the file states it.")
    iso: float | None = column("iso", pa.float64(), "ISO speed.")
    shutter_s: float | None = column("shutter_s", pa.float64(), "Exposure time in seconds.")
    aperture: float | None = column("aperture", pa.float64(), "F-number.")
    focal_length_mm: float | None = column("focal_length_mm", pa.float64(), "Focal length in millimetres.")
    white_balance_mode: str | None = column(
        "white_balance_mode", pa.string(),
        "The camera's white balance as EXIF WhiteBalance states it: auto (the camera judged the light) or manual "
        "(a preset or a custom white); null when the file does not say.")
    exposure_compensation_ev: float | None = column(
        "exposure_compensation_ev", pa.float64(),
        "The photographer's exposure compensation in EV as EXIF ExposureBiasValue states it (+ = brighter than the "
        "camera's meter); null when the file does not say.")
    flash_fired: bool | None = column(
        "flash_fired", pa.bool_(), "Whether the flash fired, as EXIF Flash states it; null when the file does not say.")
    captured_at: datetime | None = column("captured_at", pa.timestamp("ms"),
                                          "Capture time (camera clock, no time zone).")


@dataclass
class Frame:
    """Orientation and sizes of the oriented image (written by decode_raw)."""

    orientation: int | None = column(
        "orientation", pa.int8(), "EXIF orientation code of the source (1-8); pixels are stored oriented.")
    width: int | None = column("width", pa.int32(), "Width of the oriented full-resolution image in pixels.")
    height: int | None = column("height", pa.int32(), "Height of the oriented full-resolution image in pixels.")
    proxy_width: int | None = column("proxy_width", pa.int32(), "Width of the analysis proxy in pixels.")
    proxy_height: int | None = column("proxy_height", pa.int32(), "Height of the analysis proxy in pixels.")
    turned_by_xmp: bool | None = column(
        "turned_by_xmp", pa.bool_(), "A RAW developed in the turn the photographer's XMP states (tiff:Orientation, "
        "a frame turned while culling), not the one the file stores.")


@dataclass
class CameraRawDefaults:
    """Camera Raw's starting point for a RAW file (written by decode_raw; null for raster files).

    What Lightroom and Camera Raw take as "As Shot" white balance, zero
    exposure and the uncropped frame: the XMP writer (``pipeline.outputs.xmp``)
    expresses the plan relative to them. See ``pipeline.imaging.camera_raw``.
    """

    as_shot_temperature_k: float | None = column(
        "as_shot_temperature_k", pa.float64(),
        "Camera Raw's As Shot temperature in kelvin (DNG spec neutral-to-xy, Adobe's temperature scale), unrounded.")
    as_shot_tint: float | None = column(
        "as_shot_tint", pa.float64(), "Camera Raw's As Shot tint (+ magenta, - green), unrounded.")
    wb_source: str | None = column(
        "as_shot_wb_source", pa.string(),
        "dng (the DNG's AsShotNeutral and colour matrices) or libraw (LibRaw's as-shot multipliers and "
        "Adobe D65 matrix, one illuminant); null when the file has neither.")
    baseline_exposure_ev: float | None = column(
        "baseline_exposure_ev", pa.float64(),
        "DNG BaselineExposure + BaselineExposureOffset in EV: Camera Raw's zero exposure; null when unknown "
        "(proprietary RAWs keep it inside Camera Raw).")
    default_crop_x: float | None = column(
        "default_crop_x", pa.float64(), "Left of Camera Raw's default crop, stored (unrotated) full-resolution pixels.")
    default_crop_y: float | None = column(
        "default_crop_y", pa.float64(), "Top of Camera Raw's default crop, stored full-resolution pixels.")
    default_crop_width: float | None = column(
        "default_crop_width", pa.float64(), "Width of Camera Raw's default crop, stored full-resolution pixels.")
    default_crop_height: float | None = column(
        "default_crop_height", pa.float64(), "Height of Camera Raw's default crop, stored full-resolution pixels.")


@dataclass
class ExposureMeasure:
    """Exposure and clipping of the whole image (written by measure_exposure; no chart involved)."""

    meter_ev: float | None = column(
        "exposure_meter_ev", pa.float64(),
        "The whole frame's exposure in EV of scene light against a well-exposed photograph (the meter's "
        "reading; rendered sources through the inverse of a camera-like tone curve); negative = darker. "
        "The plan's exposure_ev keys on the faces that count, or on this when there are none.")
    white_ev: float | None = column(
        "exposure_white_ev", pa.float64(),
        "The whole frame's white point (99.9th percentile of luminance) in EV of scene light against a "
        "well-exposed photograph's; the meter never reads the frame darker than this, nor a plan metered on "
        "faces alone (exposure.meter: faces). About +0.3 when the white point is clipped.")
    unclipped_key_ev: float | None = column(
        "exposure_unclipped_key_ev", pa.float64(),
        "The key (median luminance) of the frame's pixels with no channel clipped at white, in EV of scene light "
        "against a well-exposed photograph's key: what the frame reads without its blown part. A frame read over "
        "and clipped beyond the chart's limit whose unclipped pixels would not be read over (by the plan's own "
        "gate) may be over only because of what is clipped (a blown sky or window): the plan proposes its "
        "darkening to a person instead of applying it. Null when (nearly) every pixel is clipped.")
    backdrop_pct: float | None = column(
        "exposure_backdrop_pct", pa.float64(),
        "Percent of the frame that is a white backdrop (a seamless or light tent blown to white on purpose: "
        "white of one colour, a light's tint allowed, connected to the frame's edge and beside the subject, "
        "not only above it, around a subject under 5 % clipped or that it surrounds); 0 for none. "
        "The meter, the percentiles and the clipping are then read on the subject, and the plan does not "
        "darken the frame (that would grey the backdrop) unless the subject is blown 5 % or more.")
    backdrop_rgb: list[float] | None = column(
        "exposure_backdrop_rgb", pa.list_(pa.float64()),
        "The white backdrop's colour as decoded [r, g, b], linear (1.0 = full scale): the median of its white "
        "pixels. The plan's whiten_backdrop operation delivers it white; null without a backdrop.")
    backdrop_falloff: list[float] | None = column(
        "exposure_backdrop_falloff", pa.list_(pa.float64()),
        "How the white backdrop's light falls off across the frame (a sweep lit by one light, darker towards the "
        "corners): log2 of its level against its brightest as a quadratic in x and y, fractions of the width and "
        "height, [1, x, y, x^2, xy, y^2] (exposure_backdrop_rgb is its colour where brightest); the backdrop's white "
        "is read, and whitened, against that level. Null without a backdrop or where it is evenly lit (within 0.1 EV).")
    subject_box: list[float] | None = column(
        "exposure_subject_box", pa.list_(pa.float64()),
        "What stands on the white backdrop (the product, the person, their shadow on the sweep): its bounding box "
        "[x0, y0, x1, y1], as fractions of the width and height of the image as oriented for viewing; a crop that "
        "would cut it slides to hold it, or reaches beyond the frame, padded with the backdrop's colour. Null "
        "without a backdrop.")
    reference: float | None = column(
        "exposure_target", pa.float64(),
        "The meter's 0 EV: the median scene-linear luminance of a well-exposed photograph.")
    shadow_contrast: float | None = column(
        "shadow_contrast", pa.float64(),
        "log2 of the median log2-luminance gradient of the darkest 5 % (512-px copy); low = lifted, "
        "washed-out shadows.")
    luminance_p01: float | None = column(
        "luminance_p01", pa.float64(), "1st percentile of linear luminance (Rec.709 Y, 1.0 = white).")
    luminance_p05: float | None = column("luminance_p05", pa.float64(), "5th percentile of linear luminance.")
    luminance_p50: float | None = column(
        "luminance_p50", pa.float64(), "Median linear luminance (the metered value).")
    luminance_p95: float | None = column("luminance_p95", pa.float64(), "95th percentile of linear luminance.")
    luminance_p99: float | None = column("luminance_p99", pa.float64(), "99th percentile of linear luminance.")
    clipped_highlights_pct: float | None = column(
        "clipped_highlights_pct", pa.float64(), "Percent of pixels with at least one channel clipped at white.")
    clipped_highlights_pct_r: float | None = column(
        "clipped_highlights_pct_r", pa.float64(), "Percent of pixels whose red channel is clipped at white.")
    clipped_highlights_pct_g: float | None = column(
        "clipped_highlights_pct_g", pa.float64(), "Percent of pixels whose green channel is clipped at white.")
    clipped_highlights_pct_b: float | None = column(
        "clipped_highlights_pct_b", pa.float64(), "Percent of pixels whose blue channel is clipped at white.")
    clipped_shadows_pct: float | None = column(
        "clipped_shadows_pct", pa.float64(),
        "Percent of pixels crushed to black: every channel at the black point (the acceptance check's share). A "
        "saturated colour with one channel at black, a deep blue sky's red, is not: see the per-channel columns.")
    clipped_shadows_pct_r: float | None = column(
        "clipped_shadows_pct_r", pa.float64(), "Percent of pixels whose red channel is crushed to black.")
    clipped_shadows_pct_g: float | None = column(
        "clipped_shadows_pct_g", pa.float64(), "Percent of pixels whose green channel is crushed to black.")
    clipped_shadows_pct_b: float | None = column(
        "clipped_shadows_pct_b", pa.float64(), "Percent of pixels whose blue channel is crushed to black.")


@dataclass
class ColourMeasure:
    """White-balance cast: the light of the image's neutral surfaces (written by measure_exposure)."""

    cast_a: float | None = column(
        "wb_cast_a", pa.float64(), "CIE Lab a* of the neutral's light at L*=50 (D65): + magenta, - green cast.")
    cast_b: float | None = column(
        "wb_cast_b", pa.float64(), "CIE Lab b* of the neutral's light at L*=50 (D65): + yellow/warm, - blue cast.")
    temperature_shift_k: float | None = column(
        "wb_temperature_shift_k", pa.float64(),
        "CCT of the neutral's light minus 6504 K: negative = warm cast, positive = cool (from wb_cast_mired; "
        "capped at 1e6 K).")
    cast_mired: float | None = column(
        "wb_cast_mired", pa.float64(),
        "The neutral's light in mired against D65, on the Planckian locus by its red/blue ratio: + = warm cast.")
    tint: float | None = column(
        "wb_tint", pa.float64(), "log2 green excess of the neutral's light over the locus: + green, - magenta cast.")
    uncertainty_mired: float | None = column(
        "wb_uncertainty_mired", pa.float64(),
        "How far off wb_cast_mired may be (one standard deviation, mired): the scatter of the four cues, or of a "
        "ColorChecker's greys.")
    tint_uncertainty: float | None = column(
        "wb_tint_uncertainty", pa.float64(),
        "How far off wb_tint may be (one spread, log2): from the four cues' scatter on it (null with fewer than "
        "two cues). The plan takes a tint out as far as it is believed over what lights are.")
    colour_checker: bool | None = column(
        "wb_colour_checker", pa.bool_(),
        "True when the light was read off the grey patches of a ColorChecker 24 in the frame, not the scene's cues.")
    colour_checker_box: list[float] | None = column(
        "wb_colour_checker_box", pa.list_(pa.float64()),
        "That ColorChecker's bounding box [x0, y0, x1, y1], as fractions of the width and height of the image as "
        "oriented for viewing (null without one).")
    backdrop: bool | None = column(
        "wb_backdrop", pa.bool_(),
        "True when the light was read off the frame's white backdrop (exposure_backdrop_pct), which is neutral by "
        "intent, not the scene's cues: where no ColorChecker is and the backdrop's white is not blown in more "
        "than its brightest channel.")
    chroma_p99: float | None = column(
        "chroma_p99", pa.float64(),
        "99th percentile of the pixels' chroma: the largest minus the smallest sRGB-encoded channel (0-1). "
        "About 0 for a black-and-white picture, which the plan leaves without a colour judgement.")
    off_tone_chroma_p99: float | None = column(
        "off_tone_chroma_p99", pa.float64(),
        "99th percentile of the chroma beyond the colour the picture's brightness alone sets (the median colour of "
        "each brightness taken off; 0-1). Low for a toned black-and-white picture (sepia, a cyanotype), whose tone "
        "the plan keeps: its neutralising is proposed, not applied.")
    sky_share: float | None = column(
        "sky_share", pa.float64(),
        "The share of the frame's top quarter that is blue sky (bright, blue, smooth; 0-1): a daylight scene's shade "
        "lit by it reads cool by nature, which the plan does not send a retoucher to check.")
    sky_rgb: list[float] | None = column(
        "sky_rgb", pa.list_(pa.float64()),
        "That sky's colour: the median of its pixels, linear RGB as the proxy's (null without a sky): a white-balance "
        "correction that would turn it teal or purple is proposed, not applied.")


@dataclass
class FocusMeasure:
    """Focus and noise (written by measure_exposure)."""

    sharpness: float | None = column(
        "sharpness", pa.float64(), "Variance of the Laplacian of sRGB luma on a 512-px copy, x1e4; higher = sharper.")
    sharpness_peak: float | None = column(
        "sharpness_peak", pa.float64(),
        "The same of the frame's sharpest part: the mean of its 3 sharpest tiles of an 8x6 grid; a subject in focus "
        "before a blurred background reads high here and low in sharpness.")
    noise_sigma: float | None = column(
        "noise_sigma", pa.float64(), "Noise standard deviation on the proxy, in 8-bit gamma-2.2 code values.")
    noise_luma: float | None = column(
        "noise_luma", pa.float64(),
        "The proxy's noise as the renderer reads a picture's (pipeline.imaging.denoise.picture_noise): of its "
        "brightness, in the square root of linear light; null where too little of it is clear of white and black.")
    noise_red_green: float | None = column(
        "noise_red_green", pa.float64(), "The same of its colour: the square root of red less that of green.")
    noise_blue_green: float | None = column(
        "noise_blue_green", pa.float64(), "The same of its colour: the square root of blue less that of green.")


@dataclass
class LineMeasure:
    """Tilt of the horizon and of the verticals (written by measure_exposure)."""

    horizon_tilt_deg: float | None = column(
        "horizon_tilt_deg", pa.float64(),
        "Tilt of near-horizontal lines in degrees, + = rising to the right; null if too few lines.")
    verticals_tilt_deg: float | None = column(
        "verticals_tilt_deg", pa.float64(),
        "Lean of near-vertical lines at the frame's centre in degrees (converging lines read through their "
        "vanishing point), + = top leans right; null if too few lines.")
    lines_found: int | None = column(
        "lines_found", pa.int32(), "Line segments found near the horizontal or vertical axis.")
    horizon_support: float | None = column(
        "horizon_support", pa.float64(),
        "Length of the near-horizontal line segments that agree with horizon_tilt_deg (within 0.3 deg), in long "
        "edges.")
    horizon_agreement: float | None = column(
        "horizon_agreement", pa.float64(), "Their share (0-1) of all near-horizontal line length.")
    verticals_support: float | None = column(
        "verticals_support", pa.float64(),
        "Length of the near-vertical line segments that agree with verticals_tilt_deg (within 0.3 deg), in long "
        "edges.")
    verticals_agreement: float | None = column(
        "verticals_agreement", pa.float64(), "Their share (0-1) of all near-vertical line length.")
    horizon_lines: int | None = column(
        "horizon_lines", pa.int32(), "Separate straight lines (not pieces of one) among the agreeing horizontals.")
    verticals_lines: int | None = column(
        "verticals_lines", pa.int32(), "Separate straight lines (not pieces of one) among the agreeing verticals.")
    horizon_rival: float | None = column(
        "horizon_rival", pa.float64(),
        "Line length agreeing with the strongest other near-horizontal direction (1 deg or more away), as a share "
        "of horizon_support: near 1, two directions compete (text curving to a binding, a brick texture).")
    verticals_rival: float | None = column(
        "verticals_rival", pa.float64(),
        "Line length agreeing with the strongest other near-vertical direction, as a share of verticals_support.")
    horizon_stability: float | None = column(
        "horizon_stability", pa.float64(),
        "Share (0-1) of readings of resampled near-horizontal segments (the bootstrap) within 0.15 deg of "
        "horizon_tilt_deg: near 1, the reading rests on many segments that agree; low, on one line or a near rival.")
    verticals_stability: float | None = column(
        "verticals_stability", pa.float64(),
        "Share (0-1) of readings of resampled near-vertical segments within 0.15 deg of verticals_tilt_deg.")
    verticals_convergence: float | None = column(
        "verticals_convergence", pa.float64(),
        "How the near-vertical lines' lean changes across the frame, in degrees per long edge to the right: 0 when "
        "they are read as parallel, negative when they meet above the frame (the camera pitched up: a keystone).")
    verticals_convergence_stability: float | None = column(
        "verticals_convergence_stability", pa.float64(),
        "Share (0-1) of readings of resampled near-vertical segments (the bootstrap) whose convergence is within 1 "
        "degree per long edge of verticals_convergence; null when the lines are read as parallel.")
    verticals_one_sided: bool | None = column(
        "verticals_one_sided", pa.bool_(),
        "The near-vertical lines converge but lie on one side of the frame's centre, and are read as parallel: their "
        "lean (verticals_tilt_deg) is the camera's pitch as much as its roll.")
    lines_undistorted: bool | None = column(
        "lines_undistorted", pa.bool_(),
        "The lines were read with the lens's distortion undone (a RAW whose body and lens lensfun profiles): straight "
        "where the lens bowed them, in the geometry a lens correction delivers.")


@dataclass
class ContentMeasure:
    """What the picture shows, for grouping and framing (written by measure_exposure)."""

    phash: str | None = column(
        "phash", pa.string(), "64-bit DCT perceptual hash as 16 hex digits (near-duplicate and burst grouping).")
    saliency_x: float | None = column(
        "saliency_x", pa.float64(), "Centre of the salient region (spectral residual), as a fraction of the width.")
    saliency_y: float | None = column(
        "saliency_y", pa.float64(), "Centre of the salient region, as a fraction of the height.")
    saliency_map: str | None = column(
        "saliency_map", pa.string(),
        "Where the subject is, for placing crops: the minimum barrier distance to the frame's border, 16 cells along "
        "the long edge, as 'WxH:' and a byte (0-255) a cell in hex, row by row.")
    palette: str | None = column(
        "palette", pa.string(),
        "The colours the frame shows, for grouping scenes: the histogram of its pixels' colours around its "
        "median colour (5x5 bins of ln R/G, ln B/G), each bin's square-rooted share as one hex digit (25 digits).")
    border_bars: list[float] | None = column(
        "border_bars", pa.list_(pa.float64()),
        "The flat bars the picture was padded with to fit another aspect (a letterbox above and below, a pillarbox "
        "left and right), as shares of the width and height [left, top, right, bottom]: crops are placed inside "
        "them. Null without.")


@dataclass
class Identity:
    """Who made the frame and with what (written by inspect_equipment; the photographer by the run).

    The body serial is what equipment findings are kept by; the photographer
    is decided in the driver at the end of each run (``--photographer``, the
    body register, else EXIF Artist: :mod:`pipeline.equipment.photographers`),
    so a changed option takes effect without analysing again.
    """

    camera_serial: str | None = column(
        "camera_serial", pa.string(),
        "Camera body serial number as the maker prints it (EXIF BodySerialNumber, DNG CameraSerialNumber, or the "
        "maker note through exiftool); null when the file records none.")
    camera_serial_tag: str | None = column(
        "camera_serial_tag", pa.string(), "Where the serial was read (Exif.Photo.BodySerialNumber, exiftool:Canon:SerialNumber...).")
    lens_serial: str | None = column("lens_serial", pa.string(), "Lens serial number, when the camera records it.")
    artist: str | None = column(
        "artist", pa.string(), "EXIF Artist (else XMP dc:creator, IPTC By-line): the name set in the camera or converter.")
    photographer: str | None = column(
        "photographer", pa.string(), "Who shot the frame: --photographer, else the body register, else EXIF Artist.")
    photographer_source: str | None = column(
        "photographer_source", pa.string(), "Where photographer came from: option, register or exif_artist.")


@dataclass
class EquipmentCheck:
    """Per-frame equipment evidence and the focus verdict (written by inspect_equipment).

    The dust evidence map and the photosite candidates are too large for a
    record: they go to ``evidence_path`` and the end of the run adds them up
    per body (``equipment.parquet``).
    """

    evidence_path: str | None = column(
        "equipment_evidence", pa.string(),
        "This frame's dust evidence map and photosite candidates (.npz), relative to the output folder; "
        "postprod's own working file, removed with the frame.")
    photosite_candidates: int | None = column(
        "photosite_candidates", pa.int32(),
        "Photosites far from all their same-colour neighbours in this frame (hot, dead or stuck photosites "
        "are the ones that come back frame after frame); null for non-RAW files.")
    photosite_scan_skipped: str | None = column(
        "photosite_scan_skipped", pa.string(), "Why the RAW data was not scanned for photosites (not a Bayer sensor).")
    dust_usable_pct: float | None = column(
        "dust_usable_pct", pa.float64(), "Percent of the frame bright and unclipped enough to show a dust shadow.")
    focus_miss: bool | None = column(
        "focus_miss", pa.bool_(), "The main face (else the salient region) is out of focus, or the frame is shaken.")
    focus_subject: str | None = column("focus_subject", pa.string(), "What focus was judged on: face or salient.")
    focus_subject_x: float | None = column(
        "focus_subject_x", pa.float64(), "Centre of the judged subject, fraction of the oriented frame's width.")
    focus_subject_y: float | None = column(
        "focus_subject_y", pa.float64(), "Centre of the judged subject, fraction of the oriented frame's height.")
    focus_subject_blur_px: float | None = column(
        "focus_subject_blur_px", pa.float64(),
        "Blur of the subject's edges (Gaussian sigma) in pixels of a copy of at most 1536 px long edge.")
    focus_sharpest_blur_px: float | None = column(
        "focus_sharpest_blur_px", pa.float64(), "Blur of the frame's sharp part, same units.")
    focus_motion: bool | None = column(
        "focus_motion", pa.bool_(),
        "The frame's sharp part, or the subject, is blurred along one direction (camera shake or motion).")
    focus_detail: str | None = column("focus_detail", pa.string(), "The focus verdict in words.")


@dataclass
class PlanSummary:
    """The plan's word on the image (written by plan_retouch; its operations are on the record)."""

    exposure_ev: float | None = column(
        "exposure_ev", pa.float64(),
        "The exposure offset the plan corrects, in EV of scene light against the chart's target: keyed on the "
        "faces that count when there are any, otherwise on the whole frame (exposure_meter_ev), or on its scene's "
        "key when the chart asks for consistency; negative = needs brightening. The exposure operation's ev is "
        "its opposite (capped at the chart's maximum, scaled by the consistency's strictness); none within the "
        "chart's tolerance.")
    exposure_verdict: ExposureVerdict | None = column(
        "exposure_verdict", pa.string(), "under, ok or over: exposure_ev against the chart's tolerance.")
    exposure_keyed_on: str | None = column(
        "exposure_keyed_on", pa.string(),
        "faces (the faces that count, with the whole frame's meter), frame (the whole frame's meter alone) or "
        "scene (its scene's key): what exposure_ev was read from.")
    verdict: Verdict | None = column(
        "verdict", pa.string(), "accept, flag or reject: the plan's word on the image under the chart.")
    faces_to_brighten: int | None = column(
        "faces_to_brighten", pa.int32(), "Faces the plan brightens (or asks a retoucher to).")
    scene_id: int | None = column(
        "scene_id", pa.int32(),
        "The scene the frame belongs to (same place and light; 1, 2, ... in order of each scene's first "
        "frame); null for a failed file.")


#: Record fields that hold a group of columns, and the group's type.
GROUPS: dict[str, type] = {
    "camera": Camera,
    "frame": Frame,
    "camera_raw": CameraRawDefaults,
    "exposure": ExposureMeasure,
    "colour": ColourMeasure,
    "focus": FocusMeasure,
    "lines": LineMeasure,
    "content": ContentMeasure,
    "identity": Identity,
    "equipment": EquipmentCheck,
    "plan": PlanSummary,
}


@dataclass
class ImageRecord:
    """One row of ``manifest.parquet``: what is known about one source file.

    The ingest facts come first; each stage then fills its groups (a group's
    values are ``None`` until its stage writes them). Faces, operations and
    exports go to side tables of their own (``faces.parquet``,
    ``instructions.parquet``, ``exports.parquet``).
    """

    # Written by ingest.
    source_path: str = column(
        "source_path", pa.string(), "Path of the source file relative to the shoot folder (POSIX).", False, required=True)
    content_hash: str = column("content_hash", pa.string(), "SHA-256 of the file's bytes (hex).", False, required=True)
    file_size: int = column("file_size", pa.int64(), "Size of the source file in bytes.", False, required=True)
    format: str = column(
        "format", pa.string(), "Container format recognised from the content (crw, dng, jpeg, ...).", False, required=True)
    source_kind: SourceKind = column("source_kind", pa.string(), "raw, raster or unknown.", False, required=True)
    # Written by decode_raw.
    camera: Camera = field(default_factory=Camera)
    frame: Frame = field(default_factory=Frame)
    camera_raw: CameraRawDefaults = field(default_factory=CameraRawDefaults)
    # Written by measure_exposure.
    exposure: ExposureMeasure = field(default_factory=ExposureMeasure)
    colour: ColourMeasure = field(default_factory=ColourMeasure)
    focus: FocusMeasure = field(default_factory=FocusMeasure)
    lines: LineMeasure = field(default_factory=LineMeasure)
    content: ContentMeasure = field(default_factory=ContentMeasure)
    # Written by detect_faces (the faces themselves go to faces.parquet).
    face_count: int | None = column(
        "face_count", pa.int32(), "Faces detected (including too_small ones); the faces are in faces.parquet.")
    unsure_faces: str | None = column(
        "unsure_faces", pa.string(),
        "Detections not sure enough to be faces (under the detector's threshold, down to detect_faces.unsure_score, "
        "or not found again at a second scale) that overlap no face: 'x,y,w,h,score' in full-resolution pixels, "
        "';' between them; a chart that blurs faces for privacy blurs these too. Null when none or not recorded.")
    faces: list[Face] = field(default_factory=list)
    # Written by inspect_equipment (the photographer: by the run, at the end).
    identity: Identity = field(default_factory=Identity)
    equipment: EquipmentCheck = field(default_factory=EquipmentCheck)
    # Written by write_preview.
    preview_path: str | None = column(
        "preview_path", pa.string(), "Small sRGB JPEG of the image, relative to the output folder.")
    # Written by find_keypoints.
    keypoints_path: str | None = column(
        "keypoints_path", pa.string(),
        "The frame's keypoints (ORB corners, descriptors and surface colours of the analysis proxy, for "
        "grouping scenes), an .npz relative to the output folder; null when not found.")
    # Written by plan_retouch (operations go to instructions.parquet).
    plan: PlanSummary = field(default_factory=PlanSummary)
    operations: list[Operation] = field(default_factory=list)
    # Written by render/export (exports go to exports.parquet).
    render_key: str | None = column(
        "render_key", pa.string(), "Hash of source, resolved chart and code version the exports were made with.")
    exports: list[ExportedFile] = field(default_factory=list)
    # Bookkeeping.
    status: Status = column("status", pa.string(), "ok or failed.", False, Status.OK)
    error: str | None = column(
        "error", pa.string(),
        "Why the file failed, readable by a person; on an ok row, warnings (an export above its size cap).")
    failure: Failure | None = column(
        "failure", pa.string(),
        "On a failed row, why: input (the file itself; a rerun with the same bytes and code does not retry it) "
        "or transient (a worker was killed or ran out of memory, an I/O error; every rerun retries it), or internal "
        "(postprod's own error on the file, a bug to report: every rerun retries it).")
    duplicate_of: str | None = column(
        "duplicate_of", pa.string(), "source_path of the identical file that was processed instead.")
    stage_seconds: dict[str, float] = field(
        default_factory=dict,
        metadata={"column": "stage_seconds", "arrow": pa.map_(pa.string(), pa.float64()),
                  "description": "Wall-clock seconds spent in each stage.", "nullable": True},
    )

    def to_row(self) -> dict[str, Any]:
        """Plain-Python manifest row for Arrow: every column of :data:`MANIFEST_COLUMNS`, groups flattened.

        Faces, operations and exports are left out: they go to their own tables
        (``pipeline.kernel.schema.face_rows``).
        """
        row: dict[str, Any] = {}
        for col in MANIFEST_COLUMNS:
            value = self.column(col.name)
            if isinstance(value, StrEnum):
                value = str(value)
            elif isinstance(value, dict):  # stage_seconds: Arrow map as a list of pairs
                value = list(value.items())
            row[col.name] = value
        return row

    def column(self, name: str) -> Any:
        """The value of manifest column ``name`` (``exposure_ev`` is ``self.plan.exposure_ev``).

        Raises
        ------
        KeyError
            If no record field is that column.
        """
        col = COLUMNS_BY_NAME[name]
        return getattr(getattr(self, col.group), col.attr) if col.group else getattr(self, col.attr)

    def set_column(self, name: str, value: Any) -> None:
        """Set the record field that is manifest column ``name``.

        Raises
        ------
        KeyError
            If no record field is that column.
        """
        col = COLUMNS_BY_NAME[name]
        setattr(getattr(self, col.group) if col.group else self, col.attr, value)

    @classmethod
    def from_row(cls, row: dict[str, Any], faces: list[Face] | None = None) -> ImageRecord:
        """Rebuild a record from a manifest row (and its faces, read from faces.parquet)."""
        top: dict[str, Any] = {}
        groups: dict[str, dict[str, Any]] = {g: {} for g in GROUPS}
        for col in MANIFEST_COLUMNS:
            if col.name not in row:
                continue
            (groups[col.group] if col.group else top)[col.attr] = row[col.name]
        top.update({g: GROUPS[g](**values) for g, values in groups.items()})
        seconds = top.get("stage_seconds") or {}
        top["stage_seconds"] = seconds if isinstance(seconds, dict) else dict(seconds)
        top["faces"] = [f if isinstance(f, Face) else Face(**f) for f in faces or []]
        return _with_enums(cls(**top))


def _with_enums(record: ImageRecord) -> ImageRecord:
    """Turn the enum-valued fields that came in as strings back into their enums."""
    record.status = Status(record.status)
    if record.failure is not None:
        record.failure = Failure(record.failure)
    record.source_kind = SourceKind(record.source_kind)
    if record.plan.exposure_verdict is not None:
        record.plan.exposure_verdict = ExposureVerdict(record.plan.exposure_verdict)
    if record.plan.verdict is not None:
        record.plan.verdict = Verdict(record.plan.verdict)
    return record


@dataclass(frozen=True)
class Column:
    """One manifest column: where it lives on the record, its Arrow type and meaning."""

    name: str
    group: str | None  # the record field holding it (None: a field of the record itself)
    attr: str
    arrow: pa.DataType
    description: str
    nullable: bool


def _columns() -> tuple[Column, ...]:
    out: list[Column] = []
    for f in dataclasses.fields(ImageRecord):
        if f.name in GROUPS:
            for g in dataclasses.fields(GROUPS[f.name]):
                m = g.metadata
                out.append(Column(m["column"], f.name, g.name, m["arrow"], m["description"], m["nullable"]))
        elif "column" in f.metadata:
            m = f.metadata
            out.append(Column(m["column"], None, f.name, m["arrow"], m["description"], m["nullable"]))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise TypeError(f"two record fields map to one manifest column: {sorted(n for n in names if names.count(n) > 1)}")
    return tuple(out)


#: The manifest's columns, in order: generated from the record's declarations.
MANIFEST_COLUMNS: tuple[Column, ...] = _columns()
MANIFEST_FIELDS: tuple[str, ...] = tuple(c.name for c in MANIFEST_COLUMNS)
COLUMNS_BY_NAME: dict[str, Column] = {c.name: c for c in MANIFEST_COLUMNS}

#: Record fields that are not manifest columns: each has a table of its own.
SIDE_TABLE_FIELDS: frozenset[str] = frozenset({"faces", "operations", "exports"})

#: What a stage may name in ``reads``/``writes``: a record field, a group, or ``group.field``.
RECORD_FIELDS: frozenset[str] = frozenset(
    [f.name for f in dataclasses.fields(ImageRecord)]
    + [f"{g}.{f.name}" for g, t in GROUPS.items() for f in dataclasses.fields(t)]
)

INGEST_FIELDS: frozenset[str] = frozenset({"source_path", "content_hash", "file_size", "format", "source_kind"})
#: Fields the runner keeps (status, error, timings): every stage may read them.
BOOKKEEPING_FIELDS: frozenset[str] = frozenset({"status", "error", "failure", "duplicate_of", "stage_seconds"})


def covers(declared: frozenset[str] | set[str], name: str) -> bool:
    """Whether a declaration set covers ``name`` (``exposure`` covers ``exposure.meter_ev``, and vice versa for groups).

    A group is covered by its own name; ``group.field`` by itself or its group.
    """
    if name in declared:
        return True
    return "." in name and name.split(".", 1)[0] in declared


def produced(writes: frozenset[str] | set[str], name: str) -> bool:
    """Whether writing ``writes`` makes ``name`` available to a later reader."""
    if covers(writes, name):
        return True
    # Reading a whole group is satisfied when some stage wrote any of its fields.
    return name in GROUPS and any(w.startswith(name + ".") for w in writes)


@dataclass(frozen=True, slots=True, init=False)
class SourceTask:
    """What a worker receives for one image: a path and the ingest facts.

    The driver holds one for every image of the shoot from the scan to the
    end of the run, so it is kept small: slots, and the file's location as
    text (:attr:`path` makes the :class:`~pathlib.Path` when asked). A ``Path``
    held an image cost about 430 bytes (its parts list, each part interned by
    pathlib) and the instance dict about 100 more: 5 MB of the driver's
    10,000-image peak (RESULTS.md, target 5).
    """

    location: str  # the file, as os.fspath gives it
    source_path: str
    content_hash: str
    file_size: int
    format: str
    source_kind: SourceKind
    seq: int  # 1-based position in the shoot (path order), for {seq} in names
    stem: str  # export name stem, unique within the shoot (RAW+JPEG pairs differ)
    # A RAW's EXIF orientation as the photographer's XMP states it (a frame turned while culling), None without one:
    # the decode develops it in that turn where it is not the file's own (pipeline.kernel.sidecars.xmp_orientation).
    orientation: int | None

    def __init__(self, path: Path | str, source_path: str, content_hash: str, file_size: int, format: str,
                 source_kind: SourceKind, seq: int = 0, stem: str = "", orientation: int | None = None) -> None:
        set_ = object.__setattr__  # frozen: the dataclass's own __init__ writes the same way
        set_(self, "location", os.fspath(path))
        set_(self, "source_path", source_path)
        set_(self, "content_hash", content_hash)
        set_(self, "file_size", file_size)
        set_(self, "format", format)
        set_(self, "source_kind", source_kind)
        set_(self, "seq", seq)
        set_(self, "stem", stem)
        set_(self, "orientation", orientation)

    @property
    def path(self) -> Path:
        """The file to read."""
        return Path(self.location)

    def new_record(self) -> ImageRecord:
        return ImageRecord(
            source_path=self.source_path,
            content_hash=self.content_hash,
            file_size=self.file_size,
            format=self.format,
            source_kind=self.source_kind,
        )


@dataclass
class WorkItem:
    """An image in flight inside one worker.

    ``artifacts`` holds what must not leave the worker (the analysis proxy,
    decoded pixels); it is dropped when the worker returns the record.
    """

    task: SourceTask
    record: ImageRecord
    artifacts: dict[str, Any] = field(default_factory=dict)


def record_to_json(record: ImageRecord) -> dict[str, Any]:
    """A JSON-ready dict of a record, groups and side tables included (for the journal and inspect)."""

    def plain(v: Any) -> Any:
        if isinstance(v, StrEnum):
            return str(v)
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(record))


def record_from_json(data: dict[str, Any]) -> ImageRecord:
    """Inverse of :func:`record_to_json`.

    Raises
    ------
    TypeError, KeyError, ValueError
        When ``data`` is not a record of this version's shape (a journal written
        by an older postprod): callers treat that as "not there".
    """
    values = dict(data)
    for name, group in GROUPS.items():
        g = dict(values.get(name) or {})
        if name == "camera" and isinstance(g.get("captured_at"), str):
            g["captured_at"] = datetime.fromisoformat(g["captured_at"])
        values[name] = group(**g)
    values["faces"] = [Face(**f) for f in values.get("faces") or []]
    values["operations"] = [
        Operation(**{**o, "kind": OperationKind(o["kind"]), "applied_by": AppliedBy(o["applied_by"])})
        for o in values.get("operations") or []
    ]
    values["exports"] = [ExportedFile(**e) for e in values.get("exports") or []]
    return _with_enums(ImageRecord(**values))
