"""Typed records that cross stage boundaries.

Stages exchange paths and these small records, never pixel arrays: the
analysis proxy lives only inside the worker that decoded it (see
:class:`WorkItem`). :mod:`pipeline.schema` is the Arrow image of these types and
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
    # Bookkeeping.
    status: Status = Status.OK
    error: str | None = None
    duplicate_of: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """Plain-Python row for Arrow (enums as strings, map as list of pairs)."""
        row = dataclasses.asdict(self)
        row["status"] = str(self.status)
        row["source_kind"] = str(self.source_kind)
        row["exposure_verdict"] = None if self.exposure_verdict is None else str(self.exposure_verdict)
        row["stage_seconds"] = list(self.stage_seconds.items())
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ImageRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in row.items() if k in known}
        values["status"] = Status(values["status"])
        values["source_kind"] = SourceKind(values["source_kind"])
        if values.get("exposure_verdict") is not None:
            values["exposure_verdict"] = ExposureVerdict(values["exposure_verdict"])
        seconds = values.get("stage_seconds") or {}
        values["stage_seconds"] = dict(seconds) if not isinstance(seconds, dict) else seconds
        return cls(**values)


RECORD_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(ImageRecord))

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
