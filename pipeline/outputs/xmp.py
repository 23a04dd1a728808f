"""Adobe Camera Raw / Lightroom settings for an image's plan, in the form Lightroom reads.

Lightroom and Camera Raw read develop settings from a sidecar ``<stem>.xmp``
beside a proprietary RAW, and from the file itself for DNG, JPEG, TIFF and
PNG (a sidecar named after them is ignored). So, per source, the output folder
gets (:func:`xmp_target`):

* proprietary RAW (CR2, NEF, CRW, ...): ``xmp/<dir>/<stem>.xmp``, the sidecar
  to put beside the RAW (``photoshop:SidecarForExtension`` names the RAW's
  extension, as Camera Raw writes it);
* DNG, JPEG, TIFF, PNG: ``xmp/<dir>/<file name>.xmp``, the packet, and (chart
  key ``xmp.embed_copies``, on by default) ``xmp/<dir>/<file name>``, a copy
  of the source with the packet embedded, for Lightroom to import (patched here,
  :mod:`pipeline.outputs.xmp_embed`; by exiftool what that module cannot patch).

A RAW and a JPEG of one stem do not collide (the JPEG keeps its settings
inside). Two sidecar-type files of one stem (``IMG_2.CR2`` and ``IMG_2.NEF``)
would share ``IMG_2.xmp`` in Lightroom; the first in shoot order gets it and
the other's packet is written as ``<file name>.xmp`` with a note saying so.

The settings (:func:`xmp_packet`) follow Camera Raw's conventions, each
checked against XMP that Adobe software wrote (``tests/data/adobe_xmp``):

* white balance of a RAW as absolute ``crs:Temperature``/``crs:Tint``: the
  file's As Shot value (``record.camera_raw``, DNG spec maths) moved by the
  plan's shift; of a rendered file as ``crs:IncrementalTemperature``/
  ``IncrementalTint`` (-100..+100, a model of ours: Adobe does not publish
  the unit, see :func:`incremental_white_balance`);
* ``crs:Exposure2012`` relative to Camera Raw's baseline (DNG BaselineExposure);
* the primary rendition's crop and the straightening angle, as Camera Raw
  stores a rotated crop (:func:`crs_crop`), in the stored orientation,
  against Camera Raw's default crop; only what the renderer applies;
* faces to brighten as radial local corrections;
* not a white backdrop whitened (:mod:`pipeline.planning.rules.whiten_backdrop`): Camera Raw has no
  setting for it (a retoucher's mask), and the sidecar says so in its note;
* not a face blurred for privacy (:mod:`pipeline.planning.rules.privacy`): Camera Raw has no such setting, and the
  note says that an export from these settings shows those faces as photographed;
* not a backlit frame's shadows lifted (:mod:`pipeline.planning.rules.shadows`): Camera Raw's Shadows slider
  has no published scale in EV, so the note gives the lift and a retoucher sets the slider by eye;
* an image-level review decision (:class:`ImageDecision`) as ``xmp:Rating``,
  ``xmp:Label``, ``dc:subject`` and a pick or reject flag as Lightroom Classic 13.2 and later
  write theirs (``xmpDM:pick``), who and when in postprod's namespace.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from charts.naming import MAX_COMPONENT_BYTES
from charts.schema import Rendition
from pipeline import __version__
from pipeline.imaging.camera_raw import D65_XY, temperature_tint_to_xy, xy_to_temperature_tint, xy_to_xyz, xyz_to_xy
from pipeline.imaging.geometry import Box, fits, inscribed_box, shrink_to_fit
from pipeline.imaging.render import adjustments_from_operations, rendition_frame
from pipeline.kernel.files import file_mode, make_durable, temp_prefix, write_bytes_atomic
from pipeline.kernel.records import SourceKind, renderer_applies
from pipeline.outputs.instructions import hashed_name, operation_from_doc
from pipeline.outputs.xmp_embed import LayoutError, embed_xmp, embedded_xmp
from pipeline.planning.rules.white_balance import kelvin_shift, planned_lab

CRS_NS = "http://ns.adobe.com/camera-raw-settings/1.0/"
REVIEW_NS = "http://ns.postprod.dev/review/1.0/"
REVIEW_PREFIX = "postprodReview"
#: Source formats (as ingest names them) whose settings Lightroom keeps inside the file.
EMBEDDED_FORMATS = frozenset({"dng", "jpeg", "tiff", "png"})

TEMPERATURE_RANGE = (2000.0, 50000.0)  # Camera Raw's raw Temperature slider (K)
TINT_RANGE = 150.0  # raw Tint slider: -150..+150
INCREMENTAL_RANGE = 100  # rendered files: both sliders -100..+100
#: Adobe's own (Temperature, Tint) of D65, the white of an sRGB file: where a rendered file's sliders sit at 0.
RENDERED_WHITE = xy_to_temperature_tint(*D65_XY)
_MID_GREY_Y = 0.18418651851244416  # Y of L* = 50, where the measured cast is expressed
_D65_WHITE = (0.95047, 1.0, 1.08883)


def _mired(kelvin: float) -> float:
    return 1e6 / kelvin


# --- where the settings go ---------------------------------------------------------------


class XmpForm(StrEnum):
    SIDECAR = "sidecar"  # <stem>.xmp beside a proprietary RAW
    EMBEDDED = "embedded"  # inside the file: DNG, JPEG, TIFF, PNG


@dataclass(frozen=True)
class XmpTarget:
    """Where one image's Camera Raw settings go, relative to the output folder.

    Attributes
    ----------
    form : XmpForm
    packet : str
        The XMP packet: for a sidecar, the sidecar itself.
    copy : str or None
        The copy of the source with the packet embedded (embedded form, copies on).
    note : str or None
        For people: why the file is not where Lightroom would look (a stem shared with another RAW).
    """

    form: XmpForm
    packet: str
    copy: str | None = None
    note: str | None = None


def xmp_form(fmt: str) -> XmpForm:
    """Sidecar or embedded: how Lightroom reads settings for a source of format ``fmt`` (as ingest names it)."""
    return XmpForm.EMBEDDED if fmt in EMBEDDED_FORMATS else XmpForm.SIDECAR


#: File extensions of the embedded formats, for documents written before they named their format.
_EMBEDDED_EXTENSIONS = {"dng": "dng", "jpg": "jpeg", "jpeg": "jpeg", "jpe": "jpeg", "tif": "tiff", "tiff": "tiff",
                        "png": "png"}


def _doc_form(doc: dict[str, Any]) -> XmpForm:
    if doc.get("xmp_form"):
        return XmpForm(doc["xmp_form"])
    fmt = doc["image"].get("format") or _EMBEDDED_EXTENSIONS.get(PurePosixPath(doc["source_path"]).suffix.lower()[1:], "")
    return xmp_form(fmt)


def _rendered(doc: dict[str, Any]) -> bool:
    """Whether the source is a rendered file (JPEG, TIFF, PNG, ...) rather than a RAW."""
    kind = doc["image"].get("source_kind")
    if kind:
        return kind == SourceKind.RASTER
    return _doc_form(doc) is XmpForm.EMBEDDED and PurePosixPath(doc["source_path"]).suffix.lower() != ".dng"


def xmp_target(source_path: str, fmt: str, embed_copies: bool = True, stem_taken_by: str | None = None) -> XmpTarget:
    """The files one image's settings go to (see the module docstring).

    Parameters
    ----------
    source_path : str
        The source, relative to the shoot (POSIX).
    fmt : str
        Its format as ingest recognised it (``"dng"``, ``"jpeg"``, ``"cr2"``, ...).
    embed_copies : bool
        Whether embedded-form sources get a copy with the settings inside.
    stem_taken_by : str, optional
        Another sidecar-form source of the same folder and stem that came first.
    """
    p = PurePosixPath(source_path)
    folder = PurePosixPath("xmp") / p.parent
    if xmp_form(fmt) is XmpForm.EMBEDDED:
        copy = _usable_name(p.name, source_path, p.suffix)
        return XmpTarget(XmpForm.EMBEDDED, str(folder / _usable_name(f"{copy}.xmp", source_path, ".xmp")),
                         str(folder / copy) if embed_copies else None)
    sidecar = _usable_name(f"{p.stem}.xmp", source_path, ".xmp")
    if sidecar != f"{p.stem}.xmp":
        return XmpTarget(
            XmpForm.SIDECAR, str(folder / sidecar),
            note=f"{p.stem}.xmp is not a usable file name (over {MAX_COMPONENT_BYTES} bytes, or with a control "
                 f"character): to use these settings, rename {p.name} and this file to a stem of their own",
        )
    if stem_taken_by is None:
        return XmpTarget(XmpForm.SIDECAR, str(folder / sidecar))
    return XmpTarget(
        XmpForm.SIDECAR, str(folder / _usable_name(f"{p.name}.xmp", source_path, ".xmp")),
        note=f"{PurePosixPath(stem_taken_by).name} has the sidecar {p.stem}.xmp, which Lightroom would read for "
             f"{p.name} too; to use these settings, rename {p.name} and this file to a stem of their own",
    )


def _usable_name(name: str, source_path: str, suffix: str) -> str:
    """``name`` when it fits one file name and is printable, else a readable cut of it with a hash of the source.

    A source name of 250 bytes gets a 255-byte limit passed by the ``.xmp``; a
    newline in a name would also split exiftool's argument file.
    """
    if len(name.encode("utf-8", "surrogateescape")) <= MAX_COMPONENT_BYTES and name.isprintable():
        return name
    stem = name[: len(name) - len(suffix)] if suffix and name.endswith(suffix) else name
    return hashed_name(stem, source_path, suffix if suffix.isprintable() else "", MAX_COMPONENT_BYTES)


def xmp_targets(sources: Iterable[tuple[str, str]], embed_copies: bool = True) -> dict[str, XmpTarget]:
    """:func:`xmp_target` for a shoot's sources ``(source_path, format)``, sidecar stems shared once.

    The first source of a folder and stem (in path order) keeps ``<stem>.xmp``.
    """
    sources = sorted(sources)
    taken = sidecar_stems_taken(sources)
    return {sp: xmp_target(sp, fmt, embed_copies, taken.get(sp)) for sp, fmt in sources}


def sidecar_stems_taken(sources: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The sidecar-form sources whose ``<stem>.xmp`` another source of their folder took first (in path
    order), and that source: what :func:`xmp_target` needs as ``stem_taken_by``, for the few that have one."""
    owner: dict[tuple[str, str], str] = {}
    taken: dict[str, str] = {}
    for sp, fmt in sorted(sources):
        if xmp_form(fmt) is XmpForm.SIDECAR:
            p = PurePosixPath(sp)
            key = (str(p.parent), p.stem.lower())  # Lightroom's catalogues treat names case-insensitively
            first = owner.setdefault(key, sp)
            if first != sp:
                taken[sp] = first
    return taken


# --- review decisions --------------------------------------------------------------------

#: Lightroom's default colour-label set; a label is stored by its name (another set's names pass through).
LIGHTROOM_LABELS = ("Red", "Yellow", "Green", "Blue", "Purple")


@dataclass(frozen=True)
class ImageDecision:
    """A reviewer's decision on a whole image (the instruction document's ``review`` object).

    Attributes
    ----------
    rating : int or None
        -1 rejected, 0 unrated, 1-5 stars (``xmp:Rating``: Bridge's reject is -1).
    label : str or None
        Colour label by name (``xmp:Label``): Lightroom's default set is Red,
        Yellow, Green, Blue, Purple.
    keywords : tuple of str
        ``lr:hierarchicalSubject`` (``"Parent|Child"`` for a hierarchy) and each level in ``dc:subject``.
    by, at : str or None
        Who decided and when (ISO 8601, UTC), in postprod's review namespace.
    flag : str or None
        ``pick`` or ``reject`` (the review app's P and X, a culling tool's flag), written as Lightroom Classic 13.2
        and later write their flags (``xmpDM:pick`` 1 and ``xmpDM:good`` true, or -1 and false; an earlier
        Lightroom reads the reject's stars, -1).
    """

    rating: int | None = None
    label: str | None = None
    keywords: tuple[str, ...] = ()
    by: str | None = None
    at: str | None = None
    flag: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ImageDecision:
        """The image-level ``review`` of an instruction document; who/when default to its latest operation decision.

        Raises
        ------
        ValueError
            If the rating is not an integer in -1..5, the label is not short text
            or the keywords are not a list of text.
        """
        review = doc.get("review") or {}
        rating = review.get("rating")
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int) or not -1 <= rating <= 5):
            raise ValueError(f"review.rating must be an integer from -1 (rejected) to 5, got {rating!r}")
        label = review.get("label")
        if label is not None and (not isinstance(label, str) or not 0 < len(label) <= 64):
            raise ValueError(f"review.label must be 1-64 characters, got {label!r}")
        keywords = review.get("keywords") or []
        if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
            raise ValueError(f"review.keywords must be a list of words, got {keywords!r}")
        flag = review.get("flag")
        if flag not in (None, "pick", "reject"):
            raise ValueError(f"review.flag must be 'pick', 'reject' or null, got {flag!r}")
        by, at = review.get("by"), review.get("at")
        if by is None and at is None:
            by, at = latest_operation_decision(doc)
        return cls(rating, label, tuple(k.strip() for k in keywords), by, at, flag)


def latest_operation_decision(doc: dict[str, Any]) -> tuple[str | None, str | None]:
    """Who and when of the newest reviewed operation of a document (``(None, None)`` when untouched)."""
    seen = [(r["at"], r.get("by")) for o in doc.get("operations", []) if (r := o.get("review") or {}).get("at")]
    if not seen:
        return None, None
    at, by = max(seen)
    return by, at


def image_decision(doc: dict[str, Any]) -> ImageDecision:
    """What the XMP says about the whole image: the document's image-level ``review``, if any,
    with who and when of the latest decision on the image or any of its operations."""
    try:
        decision = ImageDecision.from_doc(doc)
    except ValueError as exc:
        logging.getLogger(__name__).warning("%s: image-level review left out of the XMP: %s", doc.get("source_path"), exc)
        decision = ImageDecision()
    by, at = latest_operation_decision(doc)
    if at and (decision.at is None or at > decision.at):
        decision = dataclasses.replace(decision, by=by, at=at)
    return decision


# --- framings: what each rendition shows ---------------------------------------------------


def framings(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """What each of the chart's renditions shows: box and angle in oriented full-resolution pixels.

    The renderer's own choice (:func:`pipeline.imaging.render.rendition_frame`) from
    the operations it applies, so reviewers' edits and rejections count. The
    first entry is the primary rendition, the one the XMP carries (Camera
    Raw holds one crop per file). A document without renditions gets one
    entry for its first crop (or the full frame).
    """
    w, h = int(doc["image"]["width"]), int(doc["image"]["height"])
    adjustments = adjustments_from_operations([operation_from_doc(o) for o in doc.get("operations", [])])
    renditions = doc.get("renditions")
    if not renditions:
        crops = [o["params"]["aspect"] for o in doc.get("operations", []) if o["kind"] == "crop"]
        renditions = [{"name": None, "crop": crops[0] if crops else None}]
    out = []
    for i, r in enumerate(renditions):
        box = rendition_frame(Rendition(crop=r["crop"]), adjustments, w, h)
        out.append({"rendition": r["name"], "crop": r["crop"], "box": [round(v, 1) for v in box],
                    "angle_deg": round(adjustments.angle_deg, 2), "in_xmp": i == 0})
    return out


# --- geometry: Camera Raw's frame and its rotated crop --------------------------------------

Point = tuple[float, float]


def display_to_stored(x: float, y: float, orientation: int, stored_w: float, stored_h: float) -> Point:
    """A point of the displayed (oriented) image in the stored image, for EXIF orientation 1-8."""
    return {
        1: (x, y), 2: (stored_w - x, y), 3: (stored_w - x, stored_h - y), 4: (x, stored_h - y),
        5: (y, x), 6: (y, stored_h - x), 7: (stored_w - y, stored_h - x), 8: (stored_w - y, x),
    }[orientation]  # fmt: skip


def _rotate(dx: float, dy: float, degrees: float) -> Point:
    """Turn ``(dx, dy)`` by ``degrees``, clockwise on screen (y points down): Camera Raw's CropAngle sense."""
    a = math.radians(degrees)
    return dx * math.cos(a) - dy * math.sin(a), dx * math.sin(a) + dy * math.cos(a)


def box_to_crs(cx: float, cy: float, w: float, h: float, crop_angle: float, frame_w: float,
               frame_h: float) -> tuple[float, float, float, float]:
    """Camera Raw's (CropLeft, CropTop, CropRight, CropBottom) of a turned crop box.

    The box (centre, size, in pixels of Camera Raw's frame) is turned by
    ``crop_angle`` (CropAngle: degrees, clockwise on screen) about its centre;
    Camera Raw stores its top-left and bottom-right corners as fractions of
    the frame's width and height. Checked on three Lightroom exports and
    Adobe's forum example (tests/test_xmp.py).
    """
    tl = _rotate(-w / 2, -h / 2, crop_angle)
    br = _rotate(w / 2, h / 2, crop_angle)
    return ((cx + tl[0]) / frame_w, (cy + tl[1]) / frame_h, (cx + br[0]) / frame_w, (cy + br[1]) / frame_h)


def crs_to_box(left: float, top: float, right: float, bottom: float, crop_angle: float, frame_w: float,
               frame_h: float) -> tuple[float, float, float, float]:
    """Inverse of :func:`box_to_crs`: ``(cx, cy, w, h)`` in pixels of Camera Raw's frame."""
    cx, cy = (left + right) / 2 * frame_w, (top + bottom) / 2 * frame_h
    ex, ey = _rotate(left * frame_w - cx, top * frame_h - cy, -crop_angle)
    return cx, cy, -2 * ex, -2 * ey


@dataclass(frozen=True)
class CameraRawFrame:
    """Camera Raw's uncropped frame in postprod's terms.

    Attributes
    ----------
    oriented_w, oriented_h : float
        postprod's full-resolution frame (oriented), where plan boxes live.
    orientation : int
        EXIF orientation of the source.
    crop : Box
        Camera Raw's default crop ``(x, y, w, h)`` in stored (unoriented) pixels of that frame.
    """

    oriented_w: float
    oriented_h: float
    orientation: int = 1
    crop: Box | None = None

    @property
    def stored_size(self) -> tuple[float, float]:
        if self.orientation in (5, 6, 7, 8):
            return self.oriented_h, self.oriented_w
        return self.oriented_w, self.oriented_h

    @property
    def default_crop(self) -> Box:
        return self.crop or (0.0, 0.0, *self.stored_size)

    @classmethod
    def of(cls, doc: dict[str, Any]) -> CameraRawFrame:
        image = doc["image"]
        orientation = int(image.get("orientation") or 1)
        crop = (doc.get("camera_raw") or {}).get("default_crop")
        return cls(float(image["width"]), float(image["height"]), orientation if 1 <= orientation <= 8 else 1,
                   tuple(crop) if crop else None)

    def turned_box(self, box: Box, angle_deg: float) -> tuple[float, float, float, float, float]:
        """A plan box turned by postprod's ``angle_deg`` -> ``(cx, cy, w, h, CropAngle)`` in Camera Raw's frame.

        postprod turns boxes counter-clockwise on screen, Camera Raw's
        CropAngle clockwise: the sign flips; it flips again in a mirrored
        orientation (2, 4, 5, 7). Sizes swap for orientations 5-8.
        """
        x, y, w, h = box
        sw, sh = self.stored_size
        cx, cy = display_to_stored(x + w / 2, y + h / 2, self.orientation, sw, sh)
        if self.orientation in (5, 6, 7, 8):
            w, h = h, w
        crop_angle = -angle_deg if self.orientation in (1, 3, 6, 8) else angle_deg
        fx, fy, _, _ = self.default_crop
        return cx - fx, cy - fy, w, h, crop_angle + 0.0

    def stored_rect(self, box: Box) -> tuple[float, float, float, float]:
        """An unturned box (a face) as (left, top, right, bottom) fractions of Camera Raw's frame."""
        x, y, w, h = box
        sw, sh = self.stored_size
        corners = [display_to_stored(px, py, self.orientation, sw, sh) for px, py in ((x, y), (x + w, y + h))]
        fx, fy, fw, fh = self.default_crop
        xs = sorted(c[0] - fx for c in corners)
        ys = sorted(c[1] - fy for c in corners)
        return xs[0] / fw, ys[0] / fh, xs[1] / fw, ys[1] / fh


@dataclass(frozen=True)
class CrsCrop:
    left: float
    top: float
    right: float
    bottom: float
    angle: float
    shrunk: bool = False  # the box had to shrink to fit Camera Raw's (smaller) default crop


def crs_crop(frame: CameraRawFrame, box: Box | None, angle_deg: float) -> CrsCrop | None:
    """Camera Raw's crop fields for a framing (None: no crop and no turn, ``HasCrop="False"``).

    Parameters
    ----------
    frame : CameraRawFrame
    box : Box or None
        The crop in postprod's oriented full-resolution pixels; None for the
        whole frame (then a turn gets the largest frame-shaped box that fits
        Camera Raw's default crop, as Camera Raw's straighten does).
    angle_deg : float
        postprod's turn (counter-clockwise on screen).
    """
    fx, fy, fw, fh = frame.default_crop
    if box is None:
        if abs(angle_deg) < 1e-9:
            return None
        crop_angle = -angle_deg if frame.orientation in (1, 3, 6, 8) else angle_deg
        x, y, w, h = inscribed_box(fw, fh, crop_angle)
        cx, cy, shrunk = x + w / 2, y + h / 2, False
    else:
        cx, cy, w, h, crop_angle = frame.turned_box(box, angle_deg)
        # Camera Raw's frame can be smaller than LibRaw's (CRW: 2272x1704 of 2312x1720): keep the box inside.
        # Half a pixel over is the plan's rounding (boxes are kept to 0.1 px), not a box to shrink.
        shrunk = not fits((cx - w / 2, cy - h / 2, w, h), -crop_angle, fw, fh, eps=0.5)
        if shrunk:
            x, y, w, h = shrink_to_fit((cx - w / 2, cy - h / 2, w, h), -crop_angle, fw, fh)
            cx, cy = x + w / 2, y + h / 2
    left, top, right, bottom = box_to_crs(cx, cy, w, h, crop_angle, fw, fh)
    clamp = lambda v: min(1.0, max(0.0, v))  # float noise at the frame's edge
    return CrsCrop(clamp(left), clamp(top), clamp(right), clamp(bottom), crop_angle, shrunk)


# --- white balance and exposure -------------------------------------------------------------


def _lab_to_xy(a: float, b: float) -> tuple[float, float]:
    """Chromaticity of the Lab colour (50, a, b) against D65 (how measure_exposure reports a cast)."""
    fy = (50.0 + 16) / 116
    fx, fz = fy + a / 500, fy - b / 200

    def finv(t: float) -> float:
        return t**3 if t > 6 / 29 else 3 * (6 / 29) ** 2 * (t - 4 / 29)

    X, Y, Z = (w * finv(t) for w, t in zip(_D65_WHITE, (fx, fy, fz)))
    s = X + Y + Z
    return X / s, Y / s


@dataclass(frozen=True)
class MeasuredCast:
    """measure_exposure's white-balance cast of an image (the document's measurements)."""

    a: float  # Lab a* of the neutrals at L* = 50 (D65)
    b: float  # Lab b*
    temperature_shift_k: float  # their CCT (McCamy) minus 6504 K, capped at 1e6 K
    mired: float | None = None  # their light in mired against D65 (+ warm), as the plan read it (wb_cast_mired)

    @classmethod
    def of(cls, measurements: dict[str, Any]) -> MeasuredCast | None:
        a, b, k = (measurements.get(n) for n in ("wb_cast_a", "wb_cast_b", "wb_temperature_shift_k"))
        m = measurements.get("wb_cast_mired")
        return None if a is None or b is None or k is None else cls(
            float(a), float(b), float(k), None if m is None else float(m))

    @classmethod
    def planned(cls, params: dict[str, Any]) -> MeasuredCast | None:
        """The light a white-balance operation corrected, as its ``gains`` and ``target_mired`` say it (the neutrals
        weighed with the faces' skin, their tint as far as it is believed: what the renderer applies), or None for
        an operation without them (a scene's matched white names its ``white``). Read from the measurements alone,
        a press photo's magenta neutrals, which the plan believed a quarter of, wrote a Tint 31 greener than the
        delivered file."""
        light = planned_lab(params)
        if light is None:
            return None
        m = float(params["cast_mired"])
        return cls(*light, kelvin_shift(m), m)


#: Bradford cone response (Lam 1985), the chromatic adaptation the DNG SDK uses between a white and its PCS.
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])


def planned_white(as_shot: tuple[float, float], mired_shift: float, cast: MeasuredCast) -> tuple[float, float]:
    """Camera Raw's (Temperature, Tint) that carries out a planned white-balance operation.

    The measured cast is the colour a neutral takes in the As Shot rendering
    (D65 output). Adapted back from D65 to the As Shot white (Bradford, as
    Camera Raw adapts between a white and its working space), it is the
    scene's light: the white balance at which Camera Raw renders the neutrals
    neutral. The chart's target (what the plan wanted left of the cast: 0,
    or a warm shift) is then taken off in mired, as the plan counts it; a
    higher Temperature renders warmer.

    Parameters
    ----------
    as_shot : (float, float)
        The file's As Shot (Temperature, Tint); D65's for a rendered file.
    mired_shift : float
        The operation's ``mired_shift`` (+ warmer).
    cast : MeasuredCast
        What the plan corrected.
    """
    # + warm, as plan_image reads it: its mired reading; the kelvin column (of a document without it) is capped
    # at 1e6 K, -153 mired, where a blue-cast JPEG's neutrals read -183.
    plan_cast = (cast.mired if cast.mired is not None
                 else _mired(6504.0 + cast.temperature_shift_k) - _mired(6504.0))
    target = mired_shift + plan_cast  # the cast the chart wants left (0 for neutral)
    src = _BRADFORD @ xy_to_xyz(*D65_XY)
    dst = _BRADFORD @ xy_to_xyz(*temperature_tint_to_xy(*as_shot))
    adapt = np.linalg.inv(_BRADFORD) @ np.diag(dst / src) @ _BRADFORD
    scene_t, scene_tint = xy_to_temperature_tint(*xyz_to_xy(adapt @ xy_to_xyz(*_lab_to_xy(cast.a, cast.b))))
    mired = max(_mired(scene_t) - target, _mired(TEMPERATURE_RANGE[1]) / 2)
    return 1e6 / mired, scene_tint


def incremental_white_balance(temperature: float, tint: float) -> tuple[int, int]:
    """A rendered file's (IncrementalTemperature, IncrementalTint) for a white point on Adobe's scale.

    Adobe documents only the range (-100..+100, 0 = the file as it is) and
    that Lightroom converts raw Kelvin settings to it approximately. Our model:
    the file's white is D65 (Adobe's 6504 K / +10: sRGB), and each slider's
    ends are the raw slider's ends, linear in mired on either side (+100 =
    50,000 K, -100 = 2,000 K; tint +-100 = +-150).
    """
    ref_t, ref_tint = RENDERED_WHITE
    m, ref = _mired(temperature), _mired(ref_t)
    if m <= ref:
        inc = 100.0 * (ref - m) / (ref - _mired(TEMPERATURE_RANGE[1]))
    else:
        inc = -100.0 * (m - ref) / (_mired(TEMPERATURE_RANGE[0]) - ref)
    inc_tint = 100.0 * (tint - ref_tint) / TINT_RANGE
    clamp = lambda v: int(max(-INCREMENTAL_RANGE, min(INCREMENTAL_RANGE, round(v))))
    return clamp(inc), clamp(inc_tint)


def _fmt(v: float, nd: int = 2, sign: bool = False) -> str:
    v = round(v + 0.0, nd) + 0.0  # no "-0.00"
    return f"{v:+.{nd}f}" if sign and v != 0 else f"{v:.{nd}f}"


def _short(v: float, nd: int = 6) -> str:
    """Camera Raw's number style for crop fields: up to 6 decimals, trailing zeros dropped."""
    text = f"{round(v + 0.0, nd) + 0.0:.{nd}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _signed_int(v: float) -> str:
    n = int(round(v))
    return f"+{n}" if n > 0 else str(n)


@dataclass
class CrsSettings:
    """The Camera Raw settings of one image, before serialisation (for tests and the field table)."""

    attrs: dict[str, str] = field(default_factory=dict)
    faces: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def crs_settings(doc: dict[str, Any]) -> CrsSettings:
    """Camera Raw settings for an instruction document (see the module docstring).

    Raises
    ------
    ValueError
        If an operation lacks a parameter the settings need.
    """
    out = CrsSettings()
    a = out.attrs
    a.update({"crs:Version": "15.0", "crs:ProcessVersion": "11.0", "crs:HasSettings": "True",
              "crs:AlreadyApplied": "False"})
    name = PurePosixPath(doc["source_path"]).name
    a["crs:RawFileName"] = name
    rendered = _rendered(doc)
    ops = [o for o in doc.get("operations", []) if (o.get("review") or {}).get("status") != "rejected"]
    applied = [o for o in ops if renderer_applies(o["applied_by"], o["params"], o.get("review"))]
    cast = MeasuredCast.of(doc.get("measurements") or {})
    wb = next((o for o in applied if o["kind"] == "white_balance"), None)
    if wb is not None and cast is not None:  # the light the plan corrected, where its operation says it
        cast = MeasuredCast.planned(wb["params"]) or cast
    # A white balance matched to its scene names the white it renders at (Camera Raw's Temperature, Tint),
    # unless a reviewer changed its gains without it (a temperature edit: read from the measured cast).
    edited = ((wb or {}).get("review") or {}).get("params") or {}
    white = (tuple(wb["params"]["white"]) if wb is not None and wb["params"].get("white")
             and ("gains" not in edited or "white" in edited) else None)
    if wb is not None and cast is None and white is None:
        wb = None  # a document edited by hand: nothing to measure the shift against
        out.notes.append("white balance not written: the document lacks the measured cast it corrects")

    # White balance.
    if rendered:
        if wb is None:
            a.update({"crs:WhiteBalance": "As Shot", "crs:IncrementalTemperature": "0", "crs:IncrementalTint": "0"})
        else:
            shift = float(wb["params"]["mired_shift"])
            inc_t, inc_tint = incremental_white_balance(*(white or planned_white(RENDERED_WHITE, shift, cast)))
            a.update({"crs:WhiteBalance": "Custom", "crs:IncrementalTemperature": _signed_int(inc_t),
                      "crs:IncrementalTint": _signed_int(inc_tint)})
    else:
        cr = doc.get("camera_raw") or {}
        as_shot = cr.get("as_shot_temperature_k"), cr.get("as_shot_tint")
        if as_shot[0] is None or as_shot[1] is None:
            a["crs:WhiteBalance"] = "As Shot"
            if wb is not None:
                out.notes.append("white balance not written: the file has no as-shot white balance Camera Raw "
                                 "could start from (see the operation's reason)")
        elif wb is None:
            a.update({"crs:WhiteBalance": "As Shot", "crs:Temperature": str(int(round(as_shot[0] / 50) * 50)),
                      "crs:Tint": _signed_int(as_shot[1])})
        else:
            t, tint = white or planned_white(as_shot, float(wb["params"]["mired_shift"]), cast)
            t = min(TEMPERATURE_RANGE[1], max(TEMPERATURE_RANGE[0], t))
            tint = min(TINT_RANGE, max(-TINT_RANGE, tint))
            a.update({"crs:WhiteBalance": "Custom", "crs:Temperature": str(int(round(t))),
                      "crs:Tint": _signed_int(tint)})

    # Exposure: the renderer's linear gain, less the baseline Camera Raw already applies.
    ev = sum(float(o["params"]["ev"]) for o in applied if o["kind"] == "exposure")
    baseline = 0.0 if rendered else float((doc.get("camera_raw") or {}).get("baseline_exposure_ev") or 0.0)
    a["crs:Exposure2012"] = _fmt(ev - baseline, 2, sign=True)
    whiten = next((o for o in applied if o["kind"] == "whiten_backdrop"), None)
    if whiten is not None:
        out.notes.append(f"the white backdrop, at {float(whiten['params']['level']):.0f} of 255 with these settings, "
                         "is delivered white by postprod: Camera Raw has no setting for it (mask the backdrop)")

    red = [o["params"] for o in applied if o["kind"] == "red_eye"]
    if red:
        eyes = sum(len(p["eyes"]) for p in red)
        out.notes.append(f"postprod takes the red out of {eyes} red eye{'s' if eyes > 1 else ''} from the flash: these "
                         "settings do not (use Camera Raw's red-eye tool)")

    noise = next((o["params"] for o in applied if o["kind"] == "reduce_noise"), None)
    if noise is not None:
        out.notes.append(f"postprod reduces the noise it reads at each delivered size (luminance "
                         f"{float(noise['luminance']):g}, colour {float(noise['colour']):g} of its measured amount): "
                         "these settings leave Camera Raw's noise reduction at its defaults")

    blurs = [o["params"] for o in applied if o["kind"] == "blur_face"]
    if blurs:
        faces = [str(int(p["face_index"]) + 1) for p in blurs if p.get("face_index") is not None]
        drawn = sum(bool(p.get("drawn")) for p in blurs)
        unsure = len(blurs) - len(faces) - drawn
        what = ([f"face{'s' if len(faces) > 1 else ''} {', '.join(faces)}"] if faces else []) + (
            [f"{unsure} unsure detection{'s' if unsure > 1 else ''}"] if unsure else []) + (
            [f"{drawn} face{'s' if drawn > 1 else ''} a reviewer marked"] if drawn else [])
        out.notes.append(f"postprod delivers {' and '.join(what)} blurred for privacy: Camera Raw has no setting for "
                         "it, and an export from these settings shows them as photographed (blur them before "
                         "publishing)")

    lens = next((o for o in applied if o["kind"] == "lens_correction"), None)
    if lens is not None:
        a["crs:LensProfileEnable"] = "1"
        out.notes.append(f"postprod corrects the lens ({lens['params']['lens_model']}) from lensfun's profile; "
                         "Camera Raw's profile corrections are turned on, with Adobe's own profile of the lens")

    keystone = next((o["params"]["keystone"] for o in applied
                     if o["kind"] == "straighten" and o["params"].get("keystone")), None)
    if keystone is not None:
        # Camera Raw's Upright "Vertical" (crs:PerspectiveUpright 4; 0 off, 1 auto, 2 full, 3 level, 5 guided): it
        # finds the verticals itself, as postprod did.
        a["crs:PerspectiveUpright"] = "4"
        out.notes.append(f"postprod undoes this frame's converging verticals ({float(keystone['edge_lean_deg']):.1f} "
                         "deg at the frame's edges); Camera Raw's Upright is set to Vertical, which finds them itself: "
                         "the crop is drawn in the corrected frame, so check it after Camera Raw's correction")

    lift = next((o for o in applied if o["kind"] == "lift_shadows" and float(o["params"]["ev"]) > 0), None)
    if lift is not None:
        out.notes.append(f"postprod lifts this frame's shadows {float(lift['params']['ev']):+.2f} EV, easing off "
                         "to none at the chart's target: not written, as Camera Raw's Shadows slider has no scale in "
                         "EV (set Shadows by eye)")

    merge = next((o for o in applied if o["kind"] == "merge_bracket"), None)
    if merge is not None:
        others = ", ".join(str(f["source_path"]) for f in merge["params"]["frames"])
        out.notes.append(f"postprod delivers this frame merged with its bracket ({others}): Camera Raw's settings "
                         "are the middle frame's alone (Lightroom: Photo Merge > HDR on the bracket)")

    # Crop and angle: the primary rendition's framing, as the renderer makes it.
    frame = CameraRawFrame.of(doc)
    primary = framings(doc)[0]
    full = [0.0, 0.0, float(doc["image"]["width"]), float(doc["image"]["height"])]
    box = None if primary["crop"] is None else tuple(primary["box"])
    if box is not None and not fits(box, primary["angle_deg"], full[2], full[3], eps=0.5):
        # A packshot's crop padded beyond the frame with its backdrop (pipeline.planning.rules.crops.Subject).
        out.notes.append(f"the {primary['crop']} crop reaches beyond the frame, padded with the white backdrop: "
                         "Camera Raw cannot widen a canvas, so no crop is written")
        box = None
    crop = crs_crop(frame, box if box is not None and list(box) != full else None, primary["angle_deg"])
    if crop is None:
        a["crs:HasCrop"] = "False"
    else:
        a.update({"crs:CropTop": _short(crop.top), "crs:CropLeft": _short(crop.left),
                  "crs:CropBottom": _short(crop.bottom), "crs:CropRight": _short(crop.right),
                  "crs:CropAngle": _short(crop.angle, 5), "crs:CropConstrainToWarp": "0", "crs:HasCrop": "True"})
        if crop.shrunk:
            out.notes.append("the crop was shrunk to fit Camera Raw's default crop, which is smaller than LibRaw's frame")

    # Faces to brighten, as radial local corrections (by hand or not: the retoucher starts from them).
    for o in ops:
        if o["kind"] == "brighten_face":
            p = o["params"]
            left, top, right, bottom = frame.stored_rect(tuple(p["box"]))
            out.faces.append({"index": None if p.get("face_index") is None else int(p["face_index"]),
                              "ev": float(p["ev"]), "rect": (left, top, right, bottom)})
    return out


# --- serialisation ---------------------------------------------------------------------------

_NAMESPACES = {
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "crs": CRS_NS,
    "tiff": "http://ns.adobe.com/tiff/1.0/",
    "xmpDM": "http://ns.adobe.com/xmp/1.0/DynamicMedia/",
    REVIEW_PREFIX: REVIEW_NS,
}


def _bag(tag: str, values: Sequence[str]) -> str:
    items = "".join(f"     <rdf:li>{escape(v)}</rdf:li>\n" for v in values)
    return f"   <{tag}>\n    <rdf:Bag>\n{items}    </rdf:Bag>\n   </{tag}>\n"


def _face_name(face: dict[str, Any]) -> str:
    """A face lift's name in Lightroom's masks: the plan's face number, or a reviewer's marked face."""
    return "face (marked)" if face["index"] is None else f"face {face['index'] + 1}"


def _radial(face: dict[str, Any]) -> str:
    left, top, right, bottom = face["rect"]
    return (
        "     <rdf:li>\n"
        f"      <rdf:Description crs:What=\"Correction\" crs:CorrectionAmount=\"1.000000\""
        f" crs:CorrectionActive=\"true\" crs:LocalExposure2012=\"{face['ev']:+.6f}\""
        f" crs:CorrectionName=\"postprod {_face_name(face)}\">\n"
        "       <crs:CorrectionMasks>\n        <rdf:Seq>\n"
        f"         <rdf:li crs:What=\"Mask/CircularGradient\" crs:MaskValue=\"1.000000\""
        f" crs:Top=\"{top:.6f}\" crs:Left=\"{left:.6f}\" crs:Bottom=\"{bottom:.6f}\" crs:Right=\"{right:.6f}\""
        " crs:Angle=\"0\" crs:Midpoint=\"50\" crs:Roundness=\"0\" crs:Feather=\"60\""
        " crs:Flipped=\"true\" crs:Version=\"2\"/>\n"
        "        </rdf:Seq>\n       </crs:CorrectionMasks>\n      </rdf:Description>\n"
        "     </rdf:li>\n"
    )


def xmp_packet(doc: dict[str, Any], decision: ImageDecision | None = None, form: XmpForm | None = None,
               settings: CrsSettings | None = None) -> str:
    """The XMP packet of one image's Camera Raw settings and review decision.

    Parameters
    ----------
    doc : dict
        The image's instruction document (``pipeline.outputs.instructions.instruction_doc``).
    decision : ImageDecision, optional
        The image-level decision; by default the document's own ``review``.
    form : XmpForm, optional
        Sidecar packets name the RAW's extension (``photoshop:SidecarForExtension``);
        by default the document's ``xmp_form``.
    settings : CrsSettings, optional
        :func:`crs_settings` of the document, when the caller has them already.

    Raises
    ------
    ValueError
        If the document's review or an operation is malformed.
    """
    decision = decision if decision is not None else ImageDecision.from_doc(doc)
    form = form or _doc_form(doc)
    settings = settings or crs_settings(doc)
    attrs: dict[str, str] = {"xmp:CreatorTool": f"postprod {__version__}"}
    if decision.rating is not None:
        attrs["xmp:Rating"] = str(decision.rating)
    if decision.label:
        attrs["xmp:Label"] = decision.label
    if decision.flag is not None or decision.rating == -1:  # as Lightroom Classic writes its P and X flags
        picked = decision.flag == "pick"
        attrs["xmpDM:pick"], attrs["xmpDM:good"] = ("1", "true") if picked else ("-1", "false")
    image = doc.get("image") or {}
    if form is XmpForm.SIDECAR:
        ext = PurePosixPath(doc["source_path"]).suffix.lstrip(".")
        if ext:
            attrs["photoshop:SidecarForExtension"] = ext
    # The turn the crop's stored coordinates were written in, as Lightroom keeps a RAW's in its XMP: a frame the
    # photographer turned in theirs (which this packet replaces, a sidecar's or a DNG's own) stays turned in Lightroom.
    orientation = image.get("orientation")
    turn_said = form is XmpForm.SIDECAR or image.get("turned_by_xmp")
    if turn_said and isinstance(orientation, int) and 1 <= orientation <= 8:
        attrs["tiff:Orientation"] = str(orientation)
    attrs.update(settings.attrs)
    review = {"Chart": (doc.get("chart") or {}).get("name") or None, "PlanVerdict": doc.get("verdict"),
              "ContentHash": doc.get("content_hash"), "ReviewedBy": decision.by, "ReviewedAt": decision.at}
    attrs.update({f"{REVIEW_PREFIX}:{k}": str(v) for k, v in review.items() if v})
    used = {k.split(":", 1)[0] for k in attrs}
    # As Lightroom writes keywords (refs 02, 07a): every keyword in lr:hierarchicalSubject ("Parent|Child"),
    # and each level of each in dc:subject.
    flat = [part.strip() for k in decision.keywords for part in k.split("|") if part.strip()]
    hierarchical = list(decision.keywords)
    if flat:
        used |= {"dc", "lr"}
    ns = "".join(f"\n    xmlns:{p}={quoteattr(uri)}" for p, uri in _NAMESPACES.items() if p in used)
    body = "".join(f"\n   {k}={quoteattr(v)}" for k, v in attrs.items())
    children = ""
    if flat:
        children += _bag("dc:subject", list(dict.fromkeys(flat)))
        children += _bag("lr:hierarchicalSubject", list(dict.fromkeys(hierarchical)))
    if settings.faces:
        children += ("   <crs:CircularGradientBasedCorrections>\n    <rdf:Seq>\n"
                     + "".join(_radial(f) for f in settings.faces)
                     + "    </rdf:Seq>\n   </crs:CircularGradientBasedCorrections>\n")
    description = f'  <rdf:Description rdf:about=""{ns}{body}'
    description += f">\n{children}  </rdf:Description>\n" if children else "/>\n"
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="postprod {__version__}">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f"{description}"
        " </rdf:RDF>\n</x:xmpmeta>\n"
        '<?xpacket end="w"?>\n'
    )


# --- writing ---------------------------------------------------------------------------------


#: Copies :func:`embed_packets` makes side by side. Each is a kernel-side file copy (no Python memory: a
#: 100 MP DNG's copy holds none of its 200 MB) and a few small writes, so threads overlap them.
EMBED_THREADS = 8


class EmbedError(RuntimeError):
    """exiftool could not write a copy with the settings inside."""


def exiftool_path() -> str | None:
    return shutil.which("exiftool")


def embed_packets(jobs: Sequence[tuple[Path, Path, Path]], exiftool: str | None = None,
                  exiftool_only: bool = False) -> dict[Path, str]:
    """Copies of sources with an XMP packet embedded: DNG, TIFF, JPEG and PNG here, the rest through one exiftool process.

    :func:`~pipeline.outputs.xmp_embed.embed_xmp` changes only the packet's place in the file (a 24 MP DNG's
    copy in about 20 ms, against exiftool's 0.2-0.3 s); a file that module cannot patch (BigTIFF, a malformed
    directory, a JPEG with extended XMP or a multi-picture index) goes to exiftool, all of them in one process.
    A copy that holds the packet already (a rerun with nothing changed: the packet carries the source's content
    hash) is left as it is, not written again.

    Parameters
    ----------
    jobs : sequence of (source, packet, destination)
        Each destination becomes a copy of its source whose XMP is the packet
        (the source's own XMP is replaced; its pixels and EXIF are kept). A
        destination is written atomically (a temporary file renamed over it).
    exiftool : str, optional
        The exiftool executable; found on PATH by default.
    exiftool_only : bool
        Every copy through exiftool, as before :mod:`~pipeline.outputs.xmp_embed` (the baseline of
        ``benchmarks/xmp_copies.py``).

    Returns
    -------
    dict
        destination -> why it was not written, for the jobs that failed.

    Raises
    ------
    EmbedError
        If a copy needs exiftool and it is not installed (``apt-get install libimage-exiftool-perl``).
    """
    if not jobs:
        return {}
    written: list[tuple[Path, Path]] = []
    failed: dict[Path, str] = {}
    rest: list[tuple[Path, Path, Path]] = list(jobs) if exiftool_only else []
    mine = [] if exiftool_only else list(jobs)
    # Bytes-bound (a 24 MP DNG's copy is 46 MB): the copies are made side by side, their outcomes taken in order.
    with ThreadPoolExecutor(max(1, min(EMBED_THREADS, len(mine), os.cpu_count() or 1))) as pool:
        for (source, packet, dest), (outcome, value) in zip(mine, pool.map(_embed_one, mine)):
            if outcome == "written":
                written.append((value, dest))
            elif outcome == "exiftool":
                rest.append((source, packet, dest))
            elif outcome == "failed":
                failed[dest] = value
    if rest:
        done, not_done = _embed_by_exiftool(rest, exiftool)
        written += done
        failed.update(not_done)
    if written:
        # On disk before they take their names, all at once: each is a whole copy of its source (46 MB for a
        # 24 MP DNG), and one flush of the lot lets the disk write them together.
        make_durable([tmp for tmp, _ in written], written[0][1].parent)
        for tmp, dest in written:
            os.replace(tmp, dest)
    return failed


def _embed_one(job: tuple[Path, Path, Path]) -> tuple[str, Any]:
    """One job of :func:`embed_packets` by :func:`embed_xmp`: ("written", the temporary copy), ("kept", None) when
    the copy holds the packet already, ("exiftool", None) for a layout left to exiftool, or ("failed", why)."""
    source, packet, dest = job
    try:
        data = packet.read_bytes()
    except OSError as exc:
        return "failed", f"the packet could not be read: {exc.strerror or exc}"
    if dest.is_file() and embedded_xmp(dest) == data:
        return "kept", None  # a rerun: the copy holds this packet already (and the packet names the source's hash)
    tmp = _temporary_name(dest)
    try:
        embed_xmp(source, data, tmp)
    except LayoutError:
        tmp.unlink(missing_ok=True)
        return "exiftool", None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        return "failed", f"the copy could not be written: {exc.strerror or exc}"
    return "written", tmp


def _temporary_name(dest: Path) -> Path:
    """A free temporary name beside ``dest`` (its folder made), for the copy to be renamed over ``dest``; the empty
    file there has the mode a plain write would give (``0o666`` less the umask), not ``mkstemp``'s ``0o600``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(dest), suffix=dest.suffix or ".tmp", dir=dest.parent)
    try:
        if hasattr(os, "fchmod"):  # not on Windows, where mkstemp's mode is not 0o600 anyway
            os.fchmod(fd, file_mode())
    finally:
        os.close(fd)
    return Path(tmp_name)


def _embed_by_exiftool(jobs: Sequence[tuple[Path, Path, Path]],
                       exiftool: str | None) -> tuple[list[tuple[Path, Path]], dict[Path, str]]:
    """:func:`embed_packets` through one exiftool process: the (temporary, destination) pairs it wrote, and why the
    others were not."""
    exe = shutil.which(exiftool) if exiftool else exiftool_path()
    if exe is None:
        raise EmbedError("exiftool is not installed (apt-get install libimage-exiftool-perl): "
                         "copies with the settings inside were not written")
    temps: list[tuple[Path, Path]] = []
    args: list[str] = []
    failed: dict[Path, str] = {}
    for source, packet, dest in jobs:
        if any(c in str(p) for p in (source, packet, dest) for c in "\r\n"):
            # exiftool's argument file holds one argument a line
            failed[dest] = "a path with a line break in it cannot be passed to exiftool"
            continue
        tmp = _temporary_name(dest)
        tmp.unlink()  # exiftool -o refuses to overwrite
        temps.append((tmp, dest))
        args += ["-o", str(tmp), f"-xmp<={packet}", str(source), "-execute"]
    if not temps:
        return [], failed
    with tempfile.NamedTemporaryFile("w", suffix=".args", delete=False, encoding="utf-8") as argfile:
        argfile.write("\n".join(args) + "\n")
    try:
        proc = subprocess.run([exe, "-charset", "filename=utf8", "-q", "-q", "-@", argfile.name],
                              capture_output=True, text=True, timeout=60 + 5 * len(jobs))
        errors = proc.stderr.strip()
    except subprocess.TimeoutExpired:
        errors = "exiftool timed out"
    finally:
        os.unlink(argfile.name)
    written: list[tuple[Path, Path]] = []
    for tmp, dest in temps:
        if tmp.is_file() and tmp.stat().st_size > 0:
            written.append((tmp, dest))
        else:
            tmp.unlink(missing_ok=True)
            failed[dest] = errors or "exiftool wrote nothing"
    return written, failed


def xmp_note(doc: dict[str, Any], settings: CrsSettings, target_note: str | None = None) -> str | None:
    """The document's ``xmp_note``: where the files are not what Lightroom expects, and what the settings left out."""
    return "; ".join(n for n in (target_note, *settings.notes) if n) or None


def files_note(doc: dict[str, Any]) -> str | None:
    """The part of a written document's ``xmp_note`` about its files (a sidecar's name, a copy not made): the note
    less what its settings left out, which :func:`xmp_note` makes again from the operations as a reviewer left them
    (a blur drawn, a lift turned down)."""
    if doc.get("renditions") is None:
        return doc.get("xmp_note")
    note = doc.get("xmp_note") or ""
    for said in crs_settings(doc).notes:
        note = note.replace(said, "")
    return "; ".join(part for part in (p.strip() for p in note.split("; ")) if part) or None


def write_xmp(out_dir: Path, doc: dict[str, Any], source: Path | None, decision: ImageDecision | None = None,
              embed: bool = True, settings: CrsSettings | None = None) -> dict[Path, str]:
    """Write one image's packet (and, for the embedded form, refresh its copy).

    Parameters
    ----------
    out_dir : Path
        The output folder.
    doc : dict
        The instruction document (``xmp``, ``xmp_copy`` name the files).
    source : Path or None
        The source file the copy is made from; the existing copy is reused when
        the source is not given or not there (a moved shoot).
    decision, settings : optional
        As for :func:`xmp_packet`.
    embed : bool
        Refresh the copy now; a run embeds every copy at once with :func:`embed_packets`.

    Returns
    -------
    dict
        Copy -> why it could not be written (empty when all went well).
    """
    packet = out_dir / doc["xmp"]
    write_bytes_atomic(packet, xmp_packet(doc, decision, settings=settings).encode("utf-8"))
    copy = doc.get("xmp_copy")
    if not embed or not copy:
        return {}
    dest = out_dir / copy
    origin = source if source is not None and source.is_file() else dest
    if not origin.is_file():
        return {dest: "neither the source nor an earlier copy is there to embed the settings into"}
    try:
        return embed_packets([(origin, packet, dest)])
    except EmbedError as exc:
        return {dest: str(exc)}
