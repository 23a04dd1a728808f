"""Typed records that cross stage boundaries.

Stages exchange paths and these small records, never pixel arrays: the
analysis proxy lives only inside the worker that decoded it (see
:class:`WorkItem`). :mod:`pipeline.kernel.schema` is the Arrow image of these types and
a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"


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
        log2(median linear luminance of the face's centre / exposure target):
        0 is on target, -1 a stop under. None when the box is outside the image.
    sharpness : float or None
        Variance of the Laplacian of the face's grey values (0-255), resampled
        to 128 px wide so faces of any size compare; higher is sharper.
    too_small : bool
        Smaller than the stage's minimum face size: kept, but too small to
        retouch or judge reliably.
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


class OperationKind(StrEnum):
    EXPOSURE = "exposure"
    WHITE_BALANCE = "white_balance"
    BRIGHTEN_FACE = "brighten_face"
    STRAIGHTEN = "straighten"
    CROP = "crop"
    FLAG = "flag"
    REJECT = "reject"


class AppliedBy(StrEnum):
    """Who carries an operation out."""

    RENDERER = "renderer"  # postprod applies it in the render stage
    RETOUCHER = "retoucher"  # a person must (postprod only describes it)


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
        exposure ``{"ev"}``; white_balance ``{"gains": [r, g, b]`` (linear multipliers
        the renderer applies), ``"temperature_shift_k", "tint_shift", "mired_shift"}`` (for people);
        brighten_face ``{"face_index", "box": [x, y, w, h], "ev", "feather_px"}``;
        straighten ``{"angle_deg", "axis": "horizon"|"verticals"}`` (the crop rectangle's turn,
        counter-clockwise on screen positive, equal to the measured tilt);
        crop ``{"aspect", "box": [x, y, w, h], "placement", "angle_deg"}`` (Camera Raw's model: the
        box turned by angle_deg about its centre); flag/reject ``{"check", ...}``.
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
        changed (they replace the plan's). The renderer skips rejected operations.
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


@dataclass
class ImageRecord:
    """One row of ``manifest.parquet``: what is known about one source file.

    Every field but the ingest ones is ``None`` until a stage writes it.
    """

    # Written by ingest.
    source_path: str
    content_hash: str
    file_size: int
    format: str
    source_kind: SourceKind
    # Written by decode_raw.
    camera_make: str | None = None
    camera_model: str | None = None
    lens: str | None = None
    iso: float | None = None
    shutter_s: float | None = None
    aperture: float | None = None
    focal_length_mm: float | None = None
    captured_at: datetime | None = None
    orientation: int | None = None
    width: int | None = None
    height: int | None = None
    proxy_width: int | None = None
    proxy_height: int | None = None
    # Written by measure_exposure.
    exposure_ev: float | None = None
    exposure_verdict: ExposureVerdict | None = None
    exposure_target: float | None = None
    shadow_contrast: float | None = None
    luminance_p01: float | None = None
    luminance_p05: float | None = None
    luminance_p50: float | None = None
    luminance_p95: float | None = None
    luminance_p99: float | None = None
    clipped_highlights_pct: float | None = None
    clipped_highlights_pct_r: float | None = None
    clipped_highlights_pct_g: float | None = None
    clipped_highlights_pct_b: float | None = None
    clipped_shadows_pct_r: float | None = None
    clipped_shadows_pct_g: float | None = None
    clipped_shadows_pct_b: float | None = None
    wb_cast_a: float | None = None
    wb_cast_b: float | None = None
    wb_temperature_shift_k: float | None = None
    sharpness: float | None = None
    noise_sigma: float | None = None
    horizon_tilt_deg: float | None = None
    verticals_tilt_deg: float | None = None
    lines_found: int | None = None
    phash: str | None = None
    saliency_x: float | None = None
    saliency_y: float | None = None
    # Written by detect_faces (faces go to faces.parquet, not to the manifest).
    face_count: int | None = None
    faces: list[Face] = field(default_factory=list)
    # Written by write_preview.
    preview_path: str | None = None
    # Written by plan_retouch (operations go to instructions.parquet).
    verdict: Verdict | None = None
    faces_to_brighten: int | None = None
    operations: list[Operation] = field(default_factory=list)
    # Written by render/export (exports go to exports.parquet).
    render_key: str | None = None
    exports: list[ExportedFile] = field(default_factory=list)
    # Bookkeeping.
    status: Status = Status.OK
    error: str | None = None
    duplicate_of: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """Plain-Python manifest row for Arrow (enums as strings, map as list of pairs).

        Fields in :data:`SIDE_TABLE_FIELDS` (faces, operations, exports) are left out: they go to
        their own tables (``pipeline.kernel.schema.face_rows``).
        """
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in SIDE_TABLE_FIELDS}
        row["status"] = str(self.status)
        row["source_kind"] = str(self.source_kind)
        row["exposure_verdict"] = None if self.exposure_verdict is None else str(self.exposure_verdict)
        row["verdict"] = None if self.verdict is None else str(self.verdict)
        row["stage_seconds"] = list(self.stage_seconds.items())
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any], faces: list[Face] | None = None) -> ImageRecord:
        """Rebuild a record from a manifest row (and its faces, read from faces.parquet)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in row.items() if k in known}
        values["status"] = Status(values["status"])
        values["source_kind"] = SourceKind(values["source_kind"])
        if values.get("exposure_verdict") is not None:
            values["exposure_verdict"] = ExposureVerdict(values["exposure_verdict"])
        if values.get("verdict") is not None:
            values["verdict"] = Verdict(values["verdict"])
        seconds = values.get("stage_seconds") or {}
        values["stage_seconds"] = dict(seconds) if not isinstance(seconds, dict) else seconds
        given = faces if faces is not None else values.get("faces") or []
        values["faces"] = [f if isinstance(f, Face) else Face(**f) for f in given]
        return cls(**values)


RECORD_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(ImageRecord))

#: Record fields that are not manifest columns: each has a table of its own.
SIDE_TABLE_FIELDS: frozenset[str] = frozenset({"faces", "operations", "exports"})

#: The manifest's columns, in order (``MANIFEST_SCHEMA`` must list exactly these).
MANIFEST_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(ImageRecord) if f.name not in SIDE_TABLE_FIELDS
)

INGEST_FIELDS: frozenset[str] = frozenset({"source_path", "content_hash", "file_size", "format", "source_kind"})


@dataclass(frozen=True)
class SourceTask:
    """What a worker receives for one image: a path and the ingest facts."""

    path: Path
    source_path: str
    content_hash: str
    file_size: int
    format: str
    source_kind: SourceKind
    seq: int = 0  # 1-based position in the shoot (path order), for {seq} in names
    stem: str = ""  # export name stem, unique within the shoot (RAW+JPEG pairs differ)

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
    """A JSON-ready dict of a record, side tables included (for the journal and inspect)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        v = getattr(record, f.name)
        if f.name in ("faces", "operations", "exports"):
            v = [dataclasses.asdict(x) for x in v]
            for x in v:
                for k, val in list(x.items()):
                    if isinstance(val, StrEnum):
                        x[k] = str(val)
        elif isinstance(v, StrEnum):
            v = str(v)
        elif isinstance(v, datetime):
            v = v.isoformat()
        out[f.name] = v
    return out


def record_from_json(data: dict[str, Any]) -> ImageRecord:
    """Inverse of :func:`record_to_json`."""
    values = dict(data)
    values["status"] = Status(values["status"])
    values["source_kind"] = SourceKind(values["source_kind"])
    if values.get("exposure_verdict") is not None:
        values["exposure_verdict"] = ExposureVerdict(values["exposure_verdict"])
    if values.get("verdict") is not None:
        values["verdict"] = Verdict(values["verdict"])
    if isinstance(values.get("captured_at"), str):
        values["captured_at"] = datetime.fromisoformat(values["captured_at"])
    values["faces"] = [Face(**f) for f in values.get("faces") or []]
    values["operations"] = [
        Operation(**{**o, "kind": OperationKind(o["kind"]), "applied_by": AppliedBy(o["applied_by"])})
        for o in values.get("operations") or []
    ]
    values["exports"] = [ExportedFile(**e) for e in values.get("exports") or []]
    known = {f.name for f in dataclasses.fields(ImageRecord)}
    return ImageRecord(**{k: v for k, v in values.items() if k in known})
