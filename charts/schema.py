"""The chart: a client's or a specialty's written post-production standard.

A chart says where exposure should land, how white balance is treated, which
faces get brightened, how images are straightened and cropped, which frames
are flagged or rejected, and which files are delivered (renditions) under
which names. It is data: planning reads it together with the measurements and
needs no pixels, so a changed chart re-plans a shoot in seconds.

The models are strict (unknown keys are errors), frozen, and every number
carries its bounds and unit, as darktable's ``$MIN/$MAX/$DEFAULT`` comments do
for its module parameters. Charts are versioned: :data:`CHART_SCHEMA_VERSION`
is the version this code reads, and :data:`MIGRATIONS` holds one function per
older version that rewrites a document to the next one. A migration fills
what the old version did not say from that version's *meaning*, not from
today's defaults (darktable's ``legacy_params()``): v1 crops were always
centred, so a migrated v1 crop says ``placement: center`` even though v2
defaults to ``face_aware``.

Charts stack (``extends``); see :mod:`charts.loader`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from charts.naming import NAMING_TOKENS, NamingTemplateError, check_template
from pipeline.imaging.icc import ColorSpace  # the output colour spaces postprod has ICC profiles for

CHART_SCHEMA_VERSION = 2

#: Where the committed JSON Schema of :class:`Chart` lives (editors use it for completion).
JSON_SCHEMA_PATH = Path(__file__).with_name("chart.schema.json")


class ChartRuleError(ValueError):
    """A rule between fields is broken; ``path`` names the offending key.

    Pydantic reports a model-level check at the model's own location; the
    loader appends ``path`` so the error points at the key to fix (and at the
    file and line where that key was written).
    """

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        self.path = tuple(path)
        super().__init__(message)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- enums -----------------------------------------------------------------


class WhiteBalancePolicy(StrEnum):
    NEUTRAL = "neutral"  # grey is grey: correct casts toward a neutral reference
    WARM = "warm"  # neutral, then shift warm by `warm_shift_mired` (food, hospitality)
    AS_SHOT = "as_shot"  # keep the camera's white balance (mixed light kept on purpose)


class RawToneCurve(StrEnum):
    CAMERA = "camera"  # a RAW developed through the camera-like curve, as raw converters and cameras develop one
    LINEAR = "linear"  # scene light delivered as it is: flat, a retoucher's starting point


class ExposureMeter(StrEnum):
    FACES_AND_FRAME = "faces_and_frame"
    FACES = "faces"


class CropPlacement(StrEnum):
    FACE_AWARE = "face_aware"  # keep detected faces inside, with headroom
    CENTER = "center"
    SALIENCY = "saliency"  # on the subject: the crop holding the most of its map (a dish, a product, an animal)


class CropOrientation(StrEnum):
    FIXED = "fixed"  # the aspect as written, whatever the picture's orientation
    SOURCE = "source"  # turned to the picture's: a 3:2 crop of an upright picture is 2:3


class ImageFormat(StrEnum):
    JPEG = "jpeg"
    WEBP = "webp"
    AVIF = "avif"
    TIFF = "tiff"
    PNG = "png"

    @property
    def extension(self) -> str:
        return {"jpeg": "jpg", "webp": "webp", "avif": "avif", "tiff": "tif", "png": "png"}[self.value]

    @property
    def lossy(self) -> bool:
        return self in (ImageFormat.JPEG, ImageFormat.WEBP, ImageFormat.AVIF)

    @property
    def max_side_px(self) -> int:
        """The longest side the format (as encoded here: libjpeg, libwebp, libavif, PNG, TIFF) can hold. An AVIF
        is a web delivery: 16,384 px, what browsers' decoders are held to (the AV1 frame's own limit is 65,536)."""
        return {"jpeg": 65_500, "webp": 16_383, "avif": 16_384, "tiff": 1 << 31, "png": 1 << 31}[self.value]


def avif_encoder() -> bool:
    """Whether this Pillow encodes AVIF (11.3 and later, built with libavif)."""
    from PIL import features

    return bool(features.check("avif"))


#: Largest exact box a rendition may ask for, in megapixels: rendering one peaks at about 25 bytes a pixel
#: (2.5 GB at 100 MP, the render stage's memory), and a box is produced at its size even from a small source.
MAX_BOX_MEGAPIXELS = 100


class UpscaleAction(StrEnum):
    DELIVER_SMALLER = "deliver_smaller"  # the box is scaled down to what max_upscale allows
    FLAG = "flag"  # the box is delivered at its size (enlarged) and the image flagged


class RenderingIntent(StrEnum):
    """How a CMYK rendition maps the colours its press cannot print (ICC rendering intents)."""

    RELATIVE = "relative"  # relative colorimetric with black point compensation: in-gamut colours exact
    PERCEPTUAL = "perceptual"  # the whole gamut compressed (the profile's perceptual table): gradations kept


class WatermarkAnchor(StrEnum):
    BOTTOM_RIGHT = "bottom_right"
    BOTTOM_LEFT = "bottom_left"
    TOP_RIGHT = "top_right"
    TOP_LEFT = "top_left"
    BOTTOM = "bottom"  # centred along the bottom edge
    TOP = "top"
    CENTER = "center"
    TILED = "tiled"  # repeated over the whole picture, every other row shifted by half: a proof no crop frees


class BlurFaces(StrEnum):
    """Which detected faces a chart delivers unrecognisable (privacy)."""

    NONE = "none"  # every face as photographed
    BYSTANDERS = "bystanders"  # faces smaller than faces.min_face_pct: passers-by, a crowd behind the subject
    ALL = "all"  # every face: occupants in a property's photos, people who signed no release


class NoiseSources(StrEnum):
    """Which sources a chart reduces the noise of."""

    RAW = "raw"  # RAW files only: a camera's JPEG, TIFF or phone picture has had its noise reduced by its maker
    ALL = "all"  # every source, rendered pictures too (a scan, a JPEG straight from a camera set to no reduction)


class AcceptanceAction(StrEnum):
    # "ignore", not "off": YAML 1.1 reads an unquoted `off` as the boolean false.
    IGNORE = "ignore"
    FLAG = "flag"  # delivered, marked for a retoucher to look at
    REJECT = "reject"  # not delivered


# --- sections --------------------------------------------------------------


class ExposureRules(_Strict):
    """Where exposure should land and how far off is acceptable."""

    target_ev: float = Field(
        0.0,
        ge=-3.0,
        le=3.0,
        description="Target exposure in EV against a well-exposed photograph (its median renders at about "
        "sRGB 118): 0 = the typical published photograph, +0.3 = the brighter, airy look of interiors and food.",
    )
    tolerance_ev: float = Field(
        0.33,
        ge=0.0,
        le=3.0,
        description="Images within this many EV of the target are left alone (1/3 EV is one bracketing step).",
    )
    max_correction_ev: float = Field(
        2.0,
        ge=0.0,
        le=5.0,
        description="Largest automatic correction in EV; an image further off is flagged for a retoucher.",
    )
    min_confidence: float = Field(
        0.8,
        ge=0.5,
        le=1.0,
        description="How sure (0.5-1) the plan must be that the image really is off, and in that direction, "
        "before it corrects it: the chance, given how far the meter's reading strays on well-exposed "
        "photographs (a night scene and a snowfield are both well exposed), that the offset is not the "
        "picture's own key. Below it the image is left as shot (its reading is still reported). 0.5 corrects "
        "every offset beyond the tolerance.",
    )
    meter: ExposureMeter = Field(
        ExposureMeter.FACES_AND_FRAME,
        description="What the exposure is read on when faces count: faces_and_frame weighs the faces with the "
        "whole frame, each by how far it strays on well-exposed photographs (a snapshot's faces alone are a poor "
        "meter); faces meters for skin alone, as a portrait photographer does: a headshot's backdrop (white, "
        "black, a brand colour) says nothing of its exposure, nor does its clipping: a bright picture is left as "
        "shot when the faces' skin holds its detail, whatever the backdrop. Faces that may be clipped are always "
        "read with the frame; without faces, the whole frame.",
    )
    keep_compensation: bool = Field(
        True,
        description="Keep the photographer's exposure compensation on camera JPEGs and other rendered sources "
        "(EXIF ExposureBiasValue): a picture read over by no more than the compensation the photographer dialled "
        "up (or under by no more than one dialled down) is as they meant it, and only the rest is corrected. "
        "RAWs are never judged so: their compensation is a capture choice (highlights kept) that the "
        "development is meant to undo.",
    )
    lift_backlit_shadows: bool = Field(
        True,
        description="Propose a lift of a backlit frame's shadows to a reviewer: where a sky or a window at white "
        "holds the exposure (its clipping over acceptance.clipped_highlights.max_pct) while the rest of the frame "
        "reads under the target as surely as a correction asks, and no face counts, a lift_shadows operation "
        "(applied once accepted) lifts what reads at the rest's key and under by a third of its gap to the target "
        "(at most 1.5 EV), easing off to nothing at the target: the highlights are left as they are. False leaves "
        "the clipped-highlights flag's note alone.",
    )
    raw_tone_curve: RawToneCurve = Field(
        RawToneCurve.CAMERA,
        description="How a RAW's scene light becomes a picture, after every correction: camera develops it through a "
        "film-like tone curve (shadows held down, mid-tones lifted, a soft shoulder into white), as raw converters "
        "and cameras do, and the curve the exposure target is read through, so a RAW exposed like a published "
        "photograph is delivered looking like one; linear delivers its scene light as it is (flat and darker in the "
        "mid-tones: a grading starting point). Rendered sources (JPEG, TIFF) carry their curve already.",
    )
    backdrop_white: bool = Field(
        True,
        description="Deliver a white backdrop white: where a frame has one (a product on a white sweep, a portrait "
        "on a white seamless; manifest exposure_backdrop_pct) and it would render short of 255 after the white "
        "balance and exposure (a sweep under a tinted light is light grey once neutral), the pixels of its colour "
        "are delivered white and the subject as corrected, as a retoucher cleans a packshot's background (a "
        "whiten_backdrop operation). False leaves the backdrop as the corrections render it.",
    )


class WhiteBalanceRules(_Strict):
    """White-balance policy."""

    policy: WhiteBalancePolicy = Field(WhiteBalancePolicy.NEUTRAL, description="neutral | warm | as_shot.")
    tolerance_mired: float = Field(
        10.0,
        ge=0.0,
        le=100.0,
        description="Casts smaller than this many mired from the policy's target are left alone "
        "(about 10 mired is the smallest shift most viewers notice).",
    )
    warm_shift_mired: float = Field(
        0.0,
        ge=0.0,
        le=100.0,
        description="With policy 'warm': shift this many mired warmer than neutral "
        "(a 1/8 CTO gel is about +20 mired).",
    )
    keep_warm: float = Field(
        0.0,
        ge=0.0,
        le=0.8,
        description="Share (0-0.8) of a warm ambience kept: of neutrals that read warmer than the policy's "
        "target (tungsten, candles, a low sun), this fraction of the difference is left in the picture. "
        "0 = neutral (real-estate interiors: white walls read white); 0.2-0.3 keeps the glow of a "
        "restaurant or a portrait.",
    )
    keep_cool: float = Field(
        0.0,
        ge=0.0,
        le=0.8,
        description="Share (0-0.8) of a cool ambience kept (shade, blue hour, overcast), as keep_warm.",
    )
    max_auto_shift_mired: float = Field(
        150.0,
        ge=0.0,
        le=400.0,
        description="Largest white-balance shift the renderer applies, in mired (about 160 mired turns "
        "tungsten into daylight, a full CTO gel). A bigger correction is applied up to this and flagged "
        "for a retoucher, who finishes it by eye.",
    )
    propose_above_mired: float = Field(
        50.0,
        ge=0.0,
        le=400.0,
        description="Largest white-balance shift the renderer applies unseen when the light is guessed from the "
        "picture (not read off a ColorChecker or a white backdrop, nor confirmed by the faces' skin), in mired "
        "(about a quarter to a half CTO gel; 160 turns tungsten into daylight). A bigger correction is proposed "
        "to a person, not applied: the renderer applies it once a reviewer accepts it. Firelight, a gilded "
        "altar under its lamps, foliage or a blue hour read as casts of 70-105 mired that the light estimates "
        "agree on, and a retoucher who sees them neutralised stops trusting the colour. At "
        "max_auto_shift_mired or more, every correction within that cap is applied unseen.",
    )
    min_confidence: float = Field(
        0.8,
        ge=0.5,
        le=1.0,
        description="How sure (0.5-1) the plan must be that the neutrals really are off, and in that "
        "direction, before it corrects them: the chance, given how far the four light estimates "
        "disagree, that the cast is not the picture's own colour. Below it nothing is applied and a cast "
        "beyond the tolerance is flagged for a retoucher.",
    )
    propose_unsure: bool = Field(
        False,
        description="A correction the plan is not sure of (under min_confidence) is proposed to a reviewer, "
        "applied once accepted (true), instead of a flag to check the colour by eye (false). For a chart whose "
        "warm rooms are casts whatever the cues' doubt (real estate: white walls read white): a click in the "
        "review app where a flag meant setting the white by hand. A reading the tint, the skin or a blown "
        "backdrop gainsays is still flagged.",
    )
    camera_daylight_ev: float | None = Field(
        12.0,
        ge=9.0,
        le=20.0,
        description="Trust the camera's automatic white balance in daylight: a frame its camera balanced "
        "automatically (EXIF WhiteBalance auto) at a scene light level of at least this EV (ISO 100, from "
        "the shutter, aperture and ISO it was shot at: 12 is a bright overcast day or open shade, 15 the "
        "sun; no indoor lamp lights a scene that brightly) was shot under the sun and sky, a light a "
        "camera's automatic white balance judges within a few tens of mired. What the neutrals then read "
        "beyond it is the scene's own colour (golden sand, autumn leaves, a field of yellow flowers, a "
        "low sun), and the colour is left as shot without a flag, unless the faces are not skin-coloured "
        "as shot and the correction makes them skin. A preset or a custom white (EXIF manual) is judged as "
        "any frame: it may be the wrong one. null: never.",
    )


class FaceRules(_Strict):
    """Which faces count and when they are brightened."""

    target_ev: float = Field(
        0.0,
        ge=-2.0,
        le=3.0,
        description="Where faces should sit, in EV, against a face in a well-exposed photograph (0: as the "
        "typical published portrait; + brighter), on top of the exposure target. With faces in the frame "
        "the exposure is keyed on them (the median of the faces in the brightest light lands here), as a "
        "portrait photographer meters for skin.",
    )
    brighten: bool = Field(True, description="Brighten faces that are darker than the rule below.")
    brighten_below_ev: float = Field(
        1.0,
        ge=0.0,
        le=4.0,
        description="Brighten a face in a shadow more than this many EV deep: how far it reads under the "
        "faces the exposure was keyed on, less what its skin's tone explains (a darker skin is not a shadow).",
    )
    max_brighten_ev: float = Field(
        1.0,
        ge=0.0,
        le=3.0,
        description="Largest local lift the renderer applies to a face, in EV; a deeper shadow, or the only face "
        "of a photo reading within a spread of a well-exposed face's level, goes to a retoucher with its amount. "
        "A face read further under than exposure.max_correction_ev is a check for a person, not a lift.",
    )
    confirm_lifts: bool = Field(
        True,
        description="A lift the renderer could apply (within max_brighten_ev, on a sure detection) is proposed to "
        "a reviewer first and applied once accepted in the review app: a darker skin in the same light reads as a "
        "shadow to the rule too. false: the renderer applies such lifts unseen.",
    )
    min_auto_score: float = Field(
        0.75,
        ge=0.0,
        le=1.0,
        description="Detector confidence (0-1) a face needs for its brightening to be applied automatically; "
        "a less certain detection (a face in a poster, a shadow) is left to a retoucher.",
    )
    min_face_pct: float = Field(
        5.0,
        ge=0.0,
        le=100.0,
        description="Faces smaller than this (box height as % of the image's short edge) are "
        "ignored: background people in a crowd are not retouched or required.",
    )
    red_eye: bool = Field(
        True,
        description="Correct the red eyes of a flash (a pupil many times redder than its green and blue, and than "
        "the skin around it, round, where a detected face's eye is): the renderer takes the red out of the pupil, "
        "each eye a reviewer can turn down. false leaves them as photographed.",
    )


class NoiseRules(_Strict):
    """Noise reduction: each delivered picture's noise read at its own size and taken down where it shows."""

    luminance: float = Field(
        1.0,
        ge=0.0,
        le=2.0,
        description="How far the brightness's grain is taken down: 1 the amount measured best against clean twins "
        "(benchmarks/NOISE.md), 0 none, 2 twice as far (smoother, less fine detail). A picture whose grain reads "
        "under a clean photograph's is left alone.",
    )
    colour: float = Field(
        1.0,
        ge=0.0,
        le=2.0,
        description="How far the colour noise (blotches of colour in flat areas) is taken down: 1 the measured "
        "amount, 0 none, 2 twice as far (colour bleeds further across soft edges).",
    )
    sources: NoiseSources = Field(
        NoiseSources.RAW,
        description="raw: RAW files only (a camera's or phone's JPEG has had its noise reduced already); all: "
        "rendered sources too.",
    )


class PrivacyRules(_Strict):
    """Faces delivered unrecognisable, where the client may not publish them."""

    blur_faces: BlurFaces = Field(
        BlurFaces.NONE,
        description="none | bystanders | all: the detected faces whose heads every rendition delivers blurred "
        "(a smooth field of a few of the head's own colours). bystanders: faces smaller than "
        "faces.min_face_pct (the chart's subjects stay sharp); all: every face (occupants of a property, people "
        "with no model release). A reviewer may turn one down; the frame is flagged for a person to look for a "
        "face the detector missed (turned away, masked, very small).",
    )
    confirm_unsure: bool = Field(
        False,
        description="The detector's unsure detections (a face turned away, behind goggles, far off; or a cloud, a "
        "leaf, a cat) are blurred like faces (false), or proposed to a reviewer and blurred once accepted (true): "
        "on 57 photos without a face, 7 had one or two such detections, none a face.",
    )


class LensRules(_Strict):
    """Lens profile corrections (Lightroom's "Enable Profile Corrections"), from the lensfun database.

    Made on RAW files whose body and lens the file names and lensfun profiles (see
    :mod:`pipeline.imaging.lens_profile`); a JPEG or TIFF is left as it is, since cameras correct their own.
    """

    distortion: bool = Field(
        False,
        description="Undo the lens's distortion (a wide angle's walls bowed outward), the picture scaled to fill "
        "the frame again.",
    )
    vignetting: bool = Field(
        False, description="Undo the lens's vignetting (its corners darker than its centre, most wide open)."
    )
    chromatic_aberration: bool = Field(
        False,
        description="Undo the lens's lateral chromatic aberration (red and blue fringes on the edges towards the "
        "corners: a window frame's), where the profile measured it.",
    )

    @property
    def asked(self) -> bool:
        """Whether any correction is asked for."""
        return self.distortion or self.vignetting or self.chromatic_aberration


class StraightenRules(_Strict):
    """Automatic levelling and perspective correction."""

    verticals: bool = Field(
        False, description="Level the verticals and correct their convergence (keystone: the camera pitched up or "
        "down), as Lightroom's Upright 'Vertical'; standard for architecture and interiors."
    )
    max_keystone_deg: float = Field(
        6.0,
        ge=0.0,
        le=15.0,
        description="Largest keystone corrected automatically, as the lean of the verticals at the frame's left "
        "and right edges against those at its centre, in degrees (the line measure reads up to 6 in a 3:2 frame); "
        "a stronger convergence is likely intentional (a tower looked up at) and is left to a retoucher.",
    )
    keystone_share: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of the verticals' convergence undone: 1 makes them parallel; some architectural "
        "photographers leave a trace (0.8) so a tall room does not look stretched; 0 levels the verticals only.",
    )
    horizon: bool = Field(True, description="Level a tilted horizon.")
    max_auto_angle_deg: float = Field(
        3.0,
        ge=0.0,
        le=15.0,
        description="Largest rotation applied automatically, in degrees; a larger tilt is "
        "likely intentional (a Dutch angle) and is flagged instead.",
    )
    tolerance_deg: float = Field(
        0.2,
        ge=0.0,
        le=5.0,
        description="Tilts smaller than this many degrees are left alone: levelling them would cost a "
        "sliver of the frame (the turned crop must fit) for a change hardly anyone sees.",
    )
    confirm_turns: bool = Field(
        True,
        description="A turn the lines read but not surely (or beyond max_auto_angle_deg) is proposed to a reviewer: "
        "the renderer turns the frame once it is accepted in the review app (its crops kept inside the turned "
        "frame), instead of a task by hand. false: such readings are told a retoucher only.",
    )


_ASPECT = re.compile(r"^([1-9][0-9]{0,2}):([1-9][0-9]{0,2})$")


def aspect_ratio(aspect: str) -> float:
    """Width / height of an aspect string such as ``"4:5"``."""
    w, h = _ASPECT.match(aspect).groups()  # type: ignore[union-attr]
    return int(w) / int(h)


def read_as_base_60(key: str, value: int) -> str:
    """The message for an aspect YAML read as a number: unquoted ``16:9`` is the base-60 integer 969 in YAML 1.1,
    which PyYAML follows; its digits are given back in the quotes it needs."""
    width, height = divmod(value, 60)
    return f"YAML read the {key} {width}:{height} as the number {value} (unquoted, a:b is base 60); quote it: " \
           f"'{width}:{height}'"


class CropSpec(_Strict):
    """One crop to produce, by aspect ratio."""

    aspect: str = Field(
        description="Width:height, e.g. '4:5', '16:9', '1:1'. Quote it in YAML: unquoted 4:5 is a base-60 number."
    )
    placement: CropPlacement = Field(CropPlacement.FACE_AWARE, description="face_aware | center | saliency.")
    orientation: CropOrientation = Field(
        CropOrientation.FIXED,
        description="fixed: the aspect as written, whatever the picture (a 4:5 profile crop of a landscape group) | "
        "source: turned to the picture's orientation, as Lightroom's crop turns with the photo: a 3:2 crop of an "
        "upright picture is 2:3 (a bathroom shot upright is delivered upright, not cut to a landscape strip); a "
        "rendition's exact box (width_px and height_px) turns with it.",
    )

    @field_validator("aspect", mode="before")
    @classmethod
    def _check_aspect(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(read_as_base_60("aspect", value))
        if not isinstance(value, str) or not _ASPECT.match(value):
            raise ValueError(f"aspect must look like '4:5' (two whole numbers 1-999), got {value!r}")
        ratio = aspect_ratio(value)
        if not 0.1 <= ratio <= 10:
            raise ValueError(f"aspect {value} is more extreme than 10:1")
        return value

    @property
    def ratio(self) -> float:
        return aspect_ratio(self.aspect)

    def turned_for(self, width: float, height: float) -> bool:
        """Whether the crop is turned to a ``width`` x ``height`` picture's orientation (``orientation: source``, the
        picture upright and the aspect landscape or the other way round; a square picture turns nothing)."""
        if self.orientation is not CropOrientation.SOURCE or width == height or self.ratio == 1.0:
            return False
        return (width < height) == (self.ratio > 1.0)


class SharpnessCheck(_Strict):
    min_laplacian_var: float = Field(
        15.0,
        ge=0.0,
        le=5000.0,
        description="Minimum `sharpness` (variance of the Laplacian of sRGB luma on a 512-px copy of the "
        "proxy, x1e4), judged after the planned exposure correction: sharp frames score 30-500, soft "
        "or missed-focus frames under ~15. A picture under 512 px on its long edge is not judged (enlarged to "
        "the copy, it would read soft however sharp).",
    )
    action: AcceptanceAction = Field(AcceptanceAction.FLAG, description="ignore | flag | reject.")


class ClippingCheck(_Strict):
    max_pct: float = Field(
        2.0, ge=0.0, le=100.0, description="Largest share of clipped pixels, in % of the image, before acting."
    )
    action: AcceptanceAction = Field(AcceptanceAction.FLAG, description="ignore | flag | reject.")


class ClippingRegion(StrEnum):
    FRAME = "frame"
    FACES = "faces"


class HighlightsCheck(ClippingCheck):
    region: ClippingRegion = Field(
        ClippingRegion.FRAME,
        description="Where the clipped share is counted: frame, the whole image; faces, the centre of each face "
        "that counts (the largest share), as a headshot is judged: its white seamless is blown on purpose, blown "
        "skin (a shiny forehead, a flash too close) is a retouch. A frame with no measured face that counts is "
        "judged on the whole image.",
    )


class DuplicateCheck(_Strict):
    max_hash_distance: int = Field(
        4,
        ge=0,
        le=64,
        description="Two frames whose 64-bit perceptual hashes differ in at most this many bits are "
        "near-duplicates: the later frame (in file order) is flagged or rejected, naming the earlier one "
        "(0 = identical only).",
    )
    action: AcceptanceAction = Field(AcceptanceAction.FLAG, description="ignore | flag | reject.")


class FaceRequiredCheck(_Strict):
    action: AcceptanceAction = Field(
        AcceptanceAction.IGNORE,
        description="What to do with a frame without a face of at least faces.min_face_pct: ignore | flag | reject.",
    )


class ColourCheckerCheck(_Strict):
    action: AcceptanceAction = Field(
        AcceptanceAction.FLAG,
        description="What to do with a frame that shows a ColorChecker (its white balance is read off the chart "
        "either way): flag, for a retoucher to remove the chart or leave the reference frame out; reject, a "
        "studio's reference frames are never delivered; ignore.",
    )


class AcceptanceRules(_Strict):
    """Thresholds that flag (deliver, mark for review) or reject (do not deliver) a frame."""

    sharpness: SharpnessCheck = Field(default_factory=SharpnessCheck, description="Blur check.")
    clipped_highlights: HighlightsCheck = Field(
        default_factory=lambda: HighlightsCheck(max_pct=2.0),
        description="Pixels with a channel at the white point, as shot (before the planned exposure).",
    )
    clipped_shadows: ClippingCheck = Field(
        default_factory=lambda: ClippingCheck(max_pct=5.0),
        description="Pixels at the black point in every channel (black pixels; a saturated colour with one channel "
        "at black is not counted), as shot (before the planned exposure).",
    )
    duplicates: DuplicateCheck = Field(default_factory=DuplicateCheck, description="Near-identical frames.")
    face_required: FaceRequiredCheck = Field(
        default_factory=FaceRequiredCheck, description="Frames that must show a face (headshots)."
    )
    colour_checker: ColourCheckerCheck = Field(
        default_factory=ColourCheckerCheck, description="Frames with a ColorChecker in them (reference shots)."
    )


class MetadataPolicy(_Strict):
    """What is written into, or stripped from, the delivered files."""

    creator: str | None = Field(None, max_length=200, description="IPTC Creator / EXIF Artist.")
    copyright: str | None = Field(None, max_length=300, description="IPTC Copyright Notice / EXIF Copyright.")
    credit: str | None = Field(None, max_length=200, description="IPTC Credit Line.")
    keywords: list[str] = Field(default_factory=list, max_length=50, description="IPTC Keywords.")
    strip_gps: bool = Field(True, description="Remove GPS position (a client's home, a private venue).")

    @field_validator("keywords")
    @classmethod
    def _check_keywords(cls, value: list[str]) -> list[str]:
        for i, kw in enumerate(value):
            if not kw.strip() or len(kw) > 64:
                raise ChartRuleError((i,), "a keyword must be 1 to 64 characters")
        return value


_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class Watermark(_Strict):
    """A mark laid over a rendition: a line of text or a logo (Lightroom's export watermark, a proof's notice).

    It is drawn on the delivered pixels after resizing and sharpening, the same size against the picture
    whatever the rendition's pixel size, so a proof and a web copy carry it alike.
    """

    text: str | None = Field(
        None, min_length=1, max_length=200, description="The line drawn, e.g. '(c) Studio Lumiere - proof'."
    )
    image: str | None = Field(
        None,
        description="A logo to draw instead of text: a PNG or WebP (its transparency kept), the path relative to "
        "the chart file that names it. Read when the chart is loaded; the exports are redone when it changes.",
    )
    font: str | None = Field(
        None,
        description="A TrueType or OpenType font file for the text, the path relative to the chart file; none = "
        "DejaVu Sans where the system has it, else the font Pillow ships. A character the font lacks stops the run.",
    )
    colour: str = Field("#ffffff", description="The text's colour, '#rrggbb' in sRGB.")
    anchor: WatermarkAnchor = Field(
        WatermarkAnchor.BOTTOM_RIGHT,
        description="Where it sits: bottom_right | bottom_left | top_right | top_left | bottom | top | center | "
        "tiled (repeated over the whole picture, its copies inset_pct apart: a proof's notice no crop removes).",
    )
    size_pct: float = Field(
        25.0, ge=1.0, le=100.0,
        description="The mark's longer side, in percent of the picture's short edge (the text's width, a logo's "
        "width or height), so it keeps its size against the picture in every rendition.",
    )
    inset_pct: float = Field(
        3.0, ge=0.0, le=25.0, description="Margin from the picture's edges, in percent of its short edge."
    )
    opacity: float = Field(0.6, ge=0.05, le=1.0, description="0.05-1: how much the mark covers what lies under it.")
    shadow: bool = Field(
        True, description="A soft dark shadow under the text, so white text reads on a bright sky (logos: none)."
    )

    @field_validator("colour")
    @classmethod
    def _check_colour(cls, value: str) -> str:
        if not _HEX_COLOUR.match(value):
            raise ValueError(f"colour must be '#rrggbb' (quoted: YAML reads # as a comment), got {value!r}")
        return value.lower()

    @model_validator(mode="after")
    def _one_mark(self) -> Watermark:
        if (self.text is None) == (self.image is None):
            raise ChartRuleError(("text",), "a watermark is either a text or an image: give one of them")
        if self.image is not None and self.font is not None:
            raise ChartRuleError(("font",), "a font is for a text watermark, not an image")
        return self

    @property
    def rgb8(self) -> tuple[int, int, int]:
        """The text's colour as 8-bit sRGB."""
        return int(self.colour[1:3], 16), int(self.colour[3:5], 16), int(self.colour[5:7], 16)


_RENDITION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class Rendition(_Strict):
    """A named export preset: size, format, colour, sharpening, metadata.

    Size is one of: ``long_edge_px`` (scale so the long edge fits, aspect
    kept), ``short_edge_px`` (the short edge, whatever the orientation),
    ``megapixels`` (a pixel count), ``width_px`` + ``height_px`` (an exact box,
    filled by cropping with the chart crop named in ``crop``), or none (full
    resolution). The first three never enlarge, as Lightroom's export sizes.
    """

    long_edge_px: int | None = Field(None, ge=16, le=30000, description="Long edge in pixels (aspect kept).")
    short_edge_px: int | None = Field(
        None, ge=16, le=30000,
        description="Short edge in pixels (aspect kept): 1080 delivers a portrait 1080 wide and a landscape 1080 "
        "tall (Lightroom's 'Short Edge').",
    )
    megapixels: float | None = Field(
        None, ge=0.01, le=250,
        description="Pixel count in millions (aspect kept): a stock agency's or a print lab's size whatever the "
        "frame's shape (Lightroom's 'Megapixels').",
    )
    width_px: int | None = Field(None, ge=16, le=30000, description="Exact box width in pixels (with height_px).")
    height_px: int | None = Field(None, ge=16, le=30000, description="Exact box height in pixels (with width_px).")
    crop: str | None = Field(
        None, description="Aspect of one of the chart's crops to export from, e.g. '4:5'; none = full frame."
    )
    format: ImageFormat = Field(ImageFormat.JPEG, description="jpeg | webp | avif | tiff | png.")
    quality: int = Field(
        90, ge=1, le=100,
        description="Encoder quality for jpeg, webp and avif (ignored by tiff and png, which are lossless)."
    )
    bit_depth: Literal[8, 16] = Field(8, description="Bits per channel: 16 only for tiff and png.")
    color_space: ColorSpace = Field(ColorSpace.SRGB, description="srgb | display_p3 | adobe_rgb (ICC profile embedded).")
    sharpen_amount: float = Field(
        0.5,
        ge=0.0,
        le=3.0,
        description="Output sharpening (unsharp-mask amount at the output size; 0 = none). "
        "Screens want ~0.5 after downsizing, matte paper more.",
    )
    max_file_kb: int | None = Field(
        None,
        ge=10,
        le=1_000_000,
        description="Largest file in KB (jpeg, webp and avif): quality is lowered until the file fits.",
    )
    metadata: MetadataPolicy | None = Field(
        None, description="Metadata for this rendition; none = the chart's `metadata`."
    )
    watermark: Watermark | None = Field(
        None, description="A text or logo laid over this rendition (a proof's notice, a brand's mark); none = no mark."
    )
    ppi: int = Field(
        72,
        ge=1,
        le=10000,
        description="Pixels per inch written in the file (EXIF and TIFF resolution, JPEG's JFIF density): the "
        "size it opens at in a layout or print dialog (2400 px at 300 ppi: 8 in). 72 is EXIF's value for none.",
    )
    max_upscale: float = Field(
        1.0,
        ge=1.0,
        le=8.0,
        description="Largest enlargement of the source's pixels an exact box may need (1.0 = never enlarge, "
        "Lightroom's 'Don't enlarge'); a long edge never enlarges whatever this says.",
    )
    beyond_max_upscale: UpscaleAction = Field(
        UpscaleAction.DELIVER_SMALLER,
        description="When a box needs more than max_upscale: deliver_smaller (the box's shape at the largest "
        "size max_upscale allows) | flag (the box as asked, enlarged, and the image flagged for a person).",
    )
    cmyk_profile: str | None = Field(
        None,
        description="Deliver the rendition in CMYK for print, separated through this output ICC profile (the "
        "press's or the printer's: ISO Coated v2 / FOGRA39, PSO Coated v3, GRACoL, SWOP ...), the path relative "
        "to the chart file that names it; the profile is embedded. The picture is rendered in color_space first "
        "(adobe_rgb holds more of a press's cyans and greens than srgb). An 8-bit tiff or jpeg. Read when the "
        "chart is loaded; the exports are redone when it changes.",
    )
    rendering_intent: RenderingIntent = Field(
        RenderingIntent.RELATIVE,
        description="With cmyk_profile: relative (relative colorimetric with black point compensation: the "
        "colours the press prints kept exactly, the others clipped to the nearest it prints; Photoshop's default "
        "for photographs) | perceptual (the profile's perceptual table: the whole gamut compressed, gradations "
        "in saturated colours kept).",
    )

    @field_validator("crop", mode="before")
    @classmethod
    def _check_crop(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(read_as_base_60("crop", value))
        if value is not None and (not isinstance(value, str) or not _ASPECT.match(value)):
            raise ValueError(f"crop must be an aspect like '4:5', got {value!r}")
        return value

    @field_validator("format")
    @classmethod
    def _check_format_encodes(cls, value: ImageFormat) -> ImageFormat:
        if value is ImageFormat.AVIF and not avif_encoder():
            raise ValueError("this installation's Pillow has no AVIF encoder (Pillow 11.3 or later, built with "
                             "libavif, as its wheels are): upgrade Pillow, or deliver webp")
        return value

    @field_validator("bit_depth")
    @classmethod
    def _check_bit_depth(cls, value: int, info: ValidationInfo) -> int:
        fmt = info.data.get("format")
        if value == 16 and fmt is not None and fmt.lossy:
            raise ValueError(f"{fmt.value} is 8-bit only; use tiff or png for 16-bit")
        return value

    @field_validator("max_file_kb")
    @classmethod
    def _check_max_file_kb(cls, value: int | None, info: ValidationInfo) -> int | None:
        fmt = info.data.get("format")
        if value is not None and fmt is not None and not fmt.lossy:
            raise ValueError(f"a file-size cap needs a lossy format (jpeg, webp or avif), not {fmt.value}")
        return value

    @model_validator(mode="after")
    def _check_size(self) -> Rendition:
        box = (self.width_px, self.height_px)
        if (box[0] is None) != (box[1] is None):
            missing = "height_px" if box[1] is None else "width_px"
            raise ChartRuleError((missing,), "an exact box needs both width_px and height_px")
        sizes = [k for k in ("long_edge_px", "short_edge_px", "megapixels", "width_px")
                 if getattr(self, k) is not None]
        if len(sizes) > 1:
            names = ["width_px/height_px" if k == "width_px" else k for k in sizes]
            raise ChartRuleError(
                (sizes[0],),
                f"give one size, not {' and '.join(names)} (to replace an inherited size, set {sizes[0]}: null)",
            )
        if box[0] is not None and box[1] is not None and box[0] * box[1] > MAX_BOX_MEGAPIXELS * 1_000_000:
            raise ChartRuleError(
                ("width_px",),
                f"a {box[0]}x{box[1]} box is {box[0] * box[1] / 1e6:.0f} MP; a rendition box may be at most "
                f"{MAX_BOX_MEGAPIXELS} MP (rendering takes about 25 bytes a pixel)",
            )
        for key in ("long_edge_px", "short_edge_px", "width_px", "height_px"):
            value = getattr(self, key)
            if value is not None and value > self.format.max_side_px:
                raise ChartRuleError(
                    (key,), f"{self.format.value} holds at most {self.format.max_side_px} px a side, not {value}"
                )
        if self.cmyk_profile is not None:
            if self.format not in (ImageFormat.TIFF, ImageFormat.JPEG):
                raise ChartRuleError(("cmyk_profile",),
                                     f"a CMYK rendition is a tiff or a jpeg, not {self.format.value}")
            if self.bit_depth != 8:
                raise ChartRuleError(("cmyk_profile",), "a CMYK rendition is 8-bit (bit_depth: 8)")
        return self

    @property
    def box(self) -> tuple[int, int] | None:
        """``(width, height)`` of an exact box, else None."""
        if self.width_px is None or self.height_px is None:
            return None
        return (self.width_px, self.height_px)

    def box_for(self, width: float, height: float) -> tuple[int, int] | None:
        """The exact box for a frame ``width`` x ``height``: turned where the frame is the other way round (the
        rendition of a crop turned to the picture's orientation, ``orientation: source``: an 8x10 print's 2400x3000
        box is 3000x2400 on a landscape picture); None without a box."""
        box = self.box
        if box is None or box[0] == box[1] or width == height or (box[0] > box[1]) == (width > height):
            return box
        return box[1], box[0]

    @property
    def extension(self) -> str:
        return self.format.extension


class ConsistencyRules(_Strict):
    """Shoot-level consistency: the frames of one scene delivered as one series.

    Frames are grouped into scenes (same place and light: capture time, the
    light level and colour each frame saw, read from the analysis proxy and
    the camera's settings) whatever this says; the scene is in the manifest
    (``scene_id``), the report and the review. When ``enabled``, the exposure
    and white balance of every frame of a scene are planned toward the scene's
    key and neutral (the median of what the image rules want for its frames,
    with each frame's own camera exposure and As Shot white taken off), after
    the image rules and before the faces are judged.
    """

    enabled: bool = Field(
        False,
        description="Plan the exposure and white balance of each scene's frames together, so a delivered "
        "series looks like one shoot (Lightroom's Match Total Exposures and white-balance sync).",
    )
    strictness: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of each frame's difference from its scene's key and neutral that is taken away: "
        "1 = every frame on the scene's key and neutral (food and real-estate series), 0.5 = halfway, each "
        "frame keeps half of its own look (events, where light and subjects change), 0 = each frame as the "
        "image rules plan it.",
    )
    max_gap_s: float = Field(
        1800.0,
        ge=0.0,
        le=7 * 86400.0,
        description="Frames taken more than this many seconds after the previous frame of the shoot start "
        "new scenes (a break, another room, another day); raise it to keep a team shot over several days "
        "as one scene.",
    )
    min_frames: int = Field(
        2,
        ge=2,
        le=1000,
        description="Scenes of fewer frames are left to the image rules.",
    )


class BracketRules(_Strict):
    """Exposure brackets: frames of one view shot in quick succession at different shutter speeds (a camera's
    AEB), for a scene brighter than one exposure holds (a room and its windows). With ``merge``, each bracket is
    delivered once: its middle exposure, with the highlights its darker frames held and the shadows its brighter
    frames held merged in (:mod:`pipeline.planning.rules.brackets`, :mod:`pipeline.imaging.merge`); the other
    frames are not delivered on their own."""

    merge: bool = Field(
        False,
        description="Merge each bracket of RAW frames into one delivery (Lightroom's Photo Merge > HDR); the other "
        "frames of a bracket are rejected as merged into it. False: every frame is delivered on its own.",
    )
    max_gap_s: float = Field(
        2.0,
        ge=0.0,
        le=60.0,
        description="Frames of a bracket follow each other within this many seconds after the previous frame's "
        "exposure ends (the camera's time stamps are whole seconds).",
    )
    min_span_ev: float = Field(
        1.0,
        ge=0.3,
        le=10.0,
        description="A bracket spans at least this many stops between its darkest and brightest frame (a meter "
        "following the light between two frames of a burst moves a third of a stop or so).",
    )
    max_frames: int = Field(9, ge=2, le=15, description="The most frames one bracket holds.")


class XmpPolicy(_Strict):
    """What the output folder holds for Lightroom and Camera Raw (``xmp/``)."""

    embed_copies: bool = Field(
        True,
        description="For DNG, JPEG, TIFF and PNG sources, whose settings Lightroom reads from the file itself: "
        "write a copy of each source with the settings embedded (xmp/<dir>/<file name>); false = only the "
        "packets, to embed yourself.",
    )


DEFAULT_NAMING = "{shoot}/{rendition}/{stem}.{ext}"


class Chart(_Strict):
    """A resolved post-production chart (after ``extends`` has been merged)."""

    schema_version: Literal[2] = Field(description="Version of the chart format (this postprod reads 2).")
    extends: str | None = Field(
        None,
        description="Parent chart: a name ('culinary') or a path relative to this file. "
        "Keys here override the parent's; lists replace; `null` removes an inherited key.",
    )
    description: str = Field("", max_length=500, description="What this chart is for.")
    client: str | None = Field(None, max_length=100, description="Client name (the {client} naming token).")
    exposure: ExposureRules = Field(default_factory=ExposureRules)
    white_balance: WhiteBalanceRules = Field(default_factory=WhiteBalanceRules)
    faces: FaceRules = Field(default_factory=FaceRules)
    privacy: PrivacyRules = Field(default_factory=PrivacyRules, description="Faces delivered blurred.")
    noise: NoiseRules = Field(default_factory=NoiseRules, description="Noise reduction.")
    straighten: StraightenRules = Field(default_factory=StraightenRules)
    lens: LensRules = Field(default_factory=LensRules)
    crops: list[CropSpec] = Field(default_factory=list, max_length=20, description="Crops to produce, by aspect.")
    acceptance: AcceptanceRules = Field(default_factory=AcceptanceRules)
    renditions: dict[str, Rendition] = Field(
        default_factory=dict, description="Export presets by name (the {rendition} naming token)."
    )
    metadata: MetadataPolicy = Field(
        default_factory=MetadataPolicy, description="Metadata for every rendition that does not set its own."
    )
    consistency: ConsistencyRules = Field(
        default_factory=ConsistencyRules, description="Scenes and their consistent exposure and white balance."
    )
    brackets: BracketRules = Field(
        default_factory=BracketRules, description="Exposure brackets: merged into one delivery, or each delivered."
    )
    xmp: XmpPolicy = Field(default_factory=XmpPolicy, description="Camera Raw settings for Lightroom (xmp/).")
    naming: str = Field(
        DEFAULT_NAMING,
        description="Output path template relative to the output folder; tokens: "
        + ", ".join("{" + t + "}" for t in NAMING_TOKENS)
        + ".",
    )

    @field_validator("naming", mode="before")
    @classmethod
    def _check_naming(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if any(v is not None for v in value.values()):  # keys with values: written as a section
                raise ValueError(f"naming is the template itself, one quoted string: "
                                 f'naming: "{{shoot}}/{{stem}}.{{ext}}", not a mapping ({", ".join(map(str, value))})')
            raise ValueError('quote the template in YAML: naming: "{shoot}/{stem}.{ext}" ({ starts a YAML mapping)')
        if isinstance(value, str):
            try:
                check_template(value)
            except NamingTemplateError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("crops")
    @classmethod
    def _check_crops(cls, value: list[CropSpec]) -> list[CropSpec]:
        seen: set[str] = set()
        for i, crop in enumerate(value):
            if crop.aspect in seen:
                raise ChartRuleError((i, "aspect"), f"crop {crop.aspect} is listed twice")
            seen.add(crop.aspect)
        return value

    @field_validator("renditions")
    @classmethod
    def _check_renditions(cls, value: dict[str, Rendition], info: ValidationInfo) -> dict[str, Rendition]:
        crops = {c.aspect: c for c in info.data.get("crops", [])}
        for name, r in value.items():
            if not _RENDITION_NAME.match(name):
                raise ChartRuleError(
                    (name,), "a rendition name is 1-40 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
                )
            if r.crop is not None and r.crop not in crops:
                listed = ", ".join(crops) or "none"
                raise ChartRuleError(
                    (name, "crop"), f"crop {r.crop} is not one of the chart's crops (listed: {listed})"
                )
            if r.box is not None:
                if r.crop is None:
                    raise ChartRuleError(
                        (name, "crop"),
                        f"an exact box {r.width_px}x{r.height_px} needs `crop:` naming the chart crop that fills it",
                    )
                box_ratio = r.width_px / r.height_px  # type: ignore[operator]
                if abs(box_ratio / aspect_ratio(r.crop) - 1) > 0.01:
                    raise ChartRuleError(
                        (name, "crop"),
                        f"box {r.width_px}x{r.height_px} is not {r.crop}; the crop would be stretched",
                    )
        return value

    @model_validator(mode="after")
    def _check_names_unique(self) -> Chart:
        tokens = check_template(self.naming)
        if len(self.renditions) > 1 and "rendition" not in tokens:
            exts = [r.extension for r in self.renditions.values()]
            if len(set(exts)) < len(exts):
                raise ChartRuleError(("naming",), "several renditions share an extension: add {rendition} to the template")
        if "client" in tokens and not self.client:
            raise ChartRuleError(("naming",), "the template uses {client} but the chart sets no `client`")
        if "stem" not in tokens and "seq" not in tokens:
            raise ChartRuleError(("naming",), "the template needs {stem} or {seq}, or every image gets the same name")
        return self

    def metadata_for(self, rendition: str) -> MetadataPolicy:
        """The metadata policy that applies to one rendition."""
        return self.renditions[rendition].metadata or self.metadata

    def crop(self, aspect: str) -> CropSpec:
        """The chart crop with this aspect (``KeyError`` if absent)."""
        for c in self.crops:
            if c.aspect == aspect:
                return c
        raise KeyError(aspect)


# --- migrations ------------------------------------------------------------
#
# Version 1 (the first chart format) differed from version 2 in three places:
#   white_balance: neutral          -> white_balance: {policy: neutral}
#   crops: ["4:5", "1:1"]           -> crops: [{aspect: "4:5", placement: center}, ...]
#                                      (v1 had no placement: every crop was centred)
#   naming: "{name}.{ext}"          -> naming: "{stem}.{ext}" (the token was renamed)
# A migration works on one file as written, which may be a partial chart that
# extends another: it rewrites only the keys present, so it cannot override a
# parent's value with a default the child never stated.


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The defaults of a model's optional fields, as plain YAML values."""
    optional = {name for name, f in model.model_fields.items() if not f.is_required()}
    return model.model_construct().model_dump(mode="json", include=optional)


def migrate_v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a version-1 chart document as version 2.

    Parameters
    ----------
    doc : dict
        A v1 document (possibly partial: a chart that extends another).

    Returns
    -------
    dict
        A new v2 document; ``doc`` is not modified.

    Raises
    ------
    ValueError
        Never for valid v1; malformed values are passed through for the v2
        validation to report at their line.
    """
    out = copy.deepcopy(doc)
    out["schema_version"] = 2
    wb = out.get("white_balance")
    if isinstance(wb, str):
        out["white_balance"] = {"policy": wb}
    crops = out.get("crops")
    if isinstance(crops, list):
        migrated = []
        for item in crops:
            if isinstance(item, (str, int)):
                # Start from v2's defaults, then state what v1 meant: centred.
                migrated.append({"aspect": item, **_defaults(CropSpec), "placement": CropPlacement.CENTER.value})
            else:
                migrated.append(item)
        out["crops"] = migrated
    naming = out.get("naming")
    if isinstance(naming, str):
        out["naming"] = naming.replace("{name}", "{stem}")
    return out


#: Old version -> function that rewrites a document of that version to the next one.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: migrate_v1_to_v2}


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a chart document of any known version up to :data:`CHART_SCHEMA_VERSION`.

    Raises
    ------
    ValueError
        If ``schema_version`` is missing, not an integer, newer than this
        code, or older than the oldest migration.
    """
    version = doc.get("schema_version")
    if version is None:
        raise ValueError(f"missing schema_version (this postprod writes version {CHART_SCHEMA_VERSION})")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError(f"schema_version must be an integer, got {version!r}")
    if version > CHART_SCHEMA_VERSION:
        raise ValueError(
            f"schema_version {version} is newer than this postprod understands ({CHART_SCHEMA_VERSION}); upgrade postprod"
        )
    if version < min(MIGRATIONS, default=CHART_SCHEMA_VERSION):
        raise ValueError(f"schema_version {version} is not a chart version (oldest is {min(MIGRATIONS)})")
    while version < CHART_SCHEMA_VERSION:
        doc = MIGRATIONS[version](doc)
        version = doc["schema_version"]
    return doc


# --- JSON Schema -------------------------------------------------------------


def chart_json_schema() -> dict[str, Any]:
    """The JSON Schema of one chart file (for editors: completion and checking as you type)."""
    schema = Chart.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
    }


def chart_json_schema_text() -> str:
    return json.dumps(chart_json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_json_schema(path: Path | str = JSON_SCHEMA_PATH) -> Path:
    """Regenerate the committed ``charts/chart.schema.json``."""
    path = Path(path)
    path.write_text(chart_json_schema_text(), encoding="utf-8")
    return path
