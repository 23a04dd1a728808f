"""The Arrow schema of the Parquet outputs: the contract with downstream tools.

``MANIFEST_SCHEMA`` describes ``manifest.parquet``, one row per input file.
Its version goes into the Parquet metadata; bump it on any change that a
reader could notice and keep :data:`pipeline.kernel.records.ImageRecord` in step (a
test checks the two agree).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import __version__
from pipeline.kernel.files import write_bytes_atomic

SCHEMA_VERSION = 1


def _f(name: str, type_: pa.DataType, description: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": description})


MANIFEST_SCHEMA = pa.schema(
    [
        _f("source_path", pa.string(), "Path of the source file relative to the shoot folder (POSIX).", False),
        _f("content_hash", pa.string(), "SHA-256 of the file's bytes (hex).", False),
        _f("file_size", pa.int64(), "Size of the source file in bytes.", False),
        _f("format", pa.string(), "Container format recognised from the content (crw, dng, jpeg, ...).", False),
        _f("source_kind", pa.string(), "raw, raster or unknown.", False),
        _f("camera_make", pa.string(), "Camera maker as the file states it."),
        _f("camera_model", pa.string(), "Camera model as the file states it."),
        _f("lens", pa.string(), "Lens model, when the file states it."),
        _f("iso", pa.float64(), "ISO speed."),
        _f("shutter_s", pa.float64(), "Exposure time in seconds."),
        _f("aperture", pa.float64(), "F-number."),
        _f("focal_length_mm", pa.float64(), "Focal length in millimetres."),
        _f("captured_at", pa.timestamp("ms"), "Capture time (camera clock, no time zone)."),
        _f("orientation", pa.int8(), "EXIF orientation code of the source (1-8); pixels are stored oriented."),
        _f("width", pa.int32(), "Width of the oriented full-resolution image in pixels."),
        _f("height", pa.int32(), "Height of the oriented full-resolution image in pixels."),
        _f("proxy_width", pa.int32(), "Width of the analysis proxy in pixels."),
        _f("proxy_height", pa.int32(), "Height of the analysis proxy in pixels."),
        # Written by measure_exposure.
        _f("exposure_ev", pa.float64(), "Exposure offset from the target in EV (stops); negative = under-exposed."),
        _f("exposure_verdict", pa.string(), "under, ok or over: exposure_ev against the tolerance."),
        _f("exposure_target", pa.float64(), "Linear luminance the image's exposure was measured against (0 EV); faces use the same."),
        _f("shadow_contrast", pa.float64(), "log2 of the median log2-luminance gradient of the darkest 5 % (512-px copy); low = lifted, washed-out shadows."),
        _f("luminance_p01", pa.float64(), "1st percentile of linear luminance (Rec.709 Y, 1.0 = white)."),
        _f("luminance_p05", pa.float64(), "5th percentile of linear luminance."),
        _f("luminance_p50", pa.float64(), "Median linear luminance (the metered value)."),
        _f("luminance_p95", pa.float64(), "95th percentile of linear luminance."),
        _f("luminance_p99", pa.float64(), "99th percentile of linear luminance."),
        _f("clipped_highlights_pct", pa.float64(), "Percent of pixels with at least one channel clipped at white."),
        _f("clipped_highlights_pct_r", pa.float64(), "Percent of pixels whose red channel is clipped at white."),
        _f("clipped_highlights_pct_g", pa.float64(), "Percent of pixels whose green channel is clipped at white."),
        _f("clipped_highlights_pct_b", pa.float64(), "Percent of pixels whose blue channel is clipped at white."),
        _f("clipped_shadows_pct_r", pa.float64(), "Percent of pixels whose red channel is crushed to black."),
        _f("clipped_shadows_pct_g", pa.float64(), "Percent of pixels whose green channel is crushed to black."),
        _f("clipped_shadows_pct_b", pa.float64(), "Percent of pixels whose blue channel is crushed to black."),
        _f("wb_cast_a", pa.float64(), "CIE Lab a* of the near-neutral pixels at L*=50 (D65): + magenta, - green cast."),
        _f("wb_cast_b", pa.float64(), "CIE Lab b* of the near-neutral pixels at L*=50 (D65): + yellow/warm, - blue cast."),
        _f("wb_temperature_shift_k", pa.float64(), "CCT of the near-neutral pixels minus 6504 K: negative = warm cast, positive = cool."),
        _f("sharpness", pa.float64(), "Variance of the Laplacian of sRGB luma on a 512-px copy, x1e4; higher = sharper."),
        _f("noise_sigma", pa.float64(), "Noise standard deviation on the proxy, in 8-bit gamma-2.2 code values."),
        _f("horizon_tilt_deg", pa.float64(), "Tilt of near-horizontal lines in degrees, + = rising to the right; null if too few lines."),
        _f("verticals_tilt_deg", pa.float64(), "Lean of near-vertical lines in degrees, + = top leans right; null if too few lines."),
        _f("lines_found", pa.int32(), "Line segments found near the horizontal or vertical axis."),
        _f("phash", pa.string(), "64-bit DCT perceptual hash as 16 hex digits (near-duplicate and burst grouping)."),
        _f("saliency_x", pa.float64(), "Centre of the salient region (spectral residual), as a fraction of the width."),
        _f("saliency_y", pa.float64(), "Centre of the salient region, as a fraction of the height."),
        _f("face_count", pa.int32(), "Faces detected (including too_small ones); the faces are in faces.parquet."),
        _f("preview_path", pa.string(), "Small sRGB JPEG of the image, relative to the output folder."),
        _f("verdict", pa.string(), "accept, flag or reject: the plan's word on the image under the chart."),
        _f("faces_to_brighten", pa.int32(), "Faces the plan brightens (or asks a retoucher to)."),
        _f("render_key", pa.string(), "Hash of source, resolved chart and code version the exports were made with."),
        _f("status", pa.string(), "ok or failed.", False),
        _f("error", pa.string(), "Why the file failed, readable by a person; on an ok row, warnings (an export above its size cap)."),
        _f("duplicate_of", pa.string(), "source_path of the identical file that was processed instead."),
        _f("stage_seconds", pa.map_(pa.string(), pa.float64()), "Wall-clock seconds spent in each stage."),
    ],
    metadata={"postprod.table": "manifest"},
)


LANDMARK_VALUES = 10

FACES_SCHEMA = pa.schema(
    [
        _f("source_path", pa.string(), "source_path of the image (joins with manifest.parquet).", False),
        _f("face_index", pa.int32(), "Index of the face in its image, 0-based, left to right.", False),
        _f("x", pa.float32(), "Left edge of the face box, full-resolution pixels of the oriented image.", False),
        _f("y", pa.float32(), "Top edge of the face box, full-resolution pixels of the oriented image.", False),
        _f("width", pa.float32(), "Width of the face box in full-resolution pixels.", False),
        _f("height", pa.float32(), "Height of the face box in full-resolution pixels.", False),
        _f("score", pa.float32(), "Detector confidence in [0, 1].", False),
        _f(
            "landmarks",
            pa.list_(pa.float32(), LANDMARK_VALUES),
            "Five (x, y) points in full-resolution pixels, flattened: eye on the image's left, eye on the "
            "image's right, nose tip, mouth corner on the image's left, mouth corner on the image's right.",
        ),
        _f("exposure_ev", pa.float32(), "log2(median linear luminance of the face centre / exposure target)."),
        _f(
            "sharpness",
            pa.float32(),
            "Variance of the Laplacian of the face (grey 0-255) resampled to 128 px wide; higher is sharper.",
        ),
        _f("too_small", pa.bool_(), "Face below the minimum size for retouching (kept, flagged).", False),
    ],
    metadata={"postprod.table": "faces"},
)


def face_rows(records: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows of ``faces.parquet`` (:data:`FACES_SCHEMA`) for some image records.

    Parameters
    ----------
    records : iterable of ImageRecord
        Records whose ``faces`` were filled by the detect_faces stage.

    Raises
    ------
    ValueError
        If a face does not have exactly ten landmark values.
    """
    rows: list[dict[str, Any]] = []
    for record in records:
        for index, face in enumerate(record.faces):
            if len(face.landmarks) != LANDMARK_VALUES:
                raise ValueError(
                    f"{record.source_path} face {index}: {len(face.landmarks)} landmark values, "
                    f"expected {LANDMARK_VALUES}"
                )
            rows.append(
                {
                    "source_path": record.source_path,
                    "face_index": index,
                    "x": face.x,
                    "y": face.y,
                    "width": face.width,
                    "height": face.height,
                    "score": face.score,
                    "landmarks": list(face.landmarks),
                    "exposure_ev": face.exposure_ev,
                    "sharpness": face.sharpness,
                    "too_small": face.too_small,
                }
            )
    return rows


def table_metadata(extra: dict[str, Any] | None = None) -> dict[bytes, bytes]:
    meta = {
        "postprod.schema_version": str(SCHEMA_VERSION),
        "postprod.version": __version__,
        "postprod.written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    for key, value in (extra or {}).items():
        meta[f"postprod.{key}"] = value if isinstance(value, str) else json.dumps(value)
    return {k.encode(): v.encode() for k, v in meta.items()}


def to_table(rows: Iterable[dict[str, Any]], schema: pa.Schema, extra_meta: dict[str, Any] | None = None) -> pa.Table:
    """Build a table whose columns are exactly ``schema``'s (extra keys are an error)."""
    rows = list(rows)
    names = set(schema.names)
    for row in rows:
        unknown = set(row) - names
        if unknown:
            raise KeyError(f"row has fields not in the schema: {sorted(unknown)}")
    table = pa.Table.from_pylist(rows, schema=schema)
    meta = dict(schema.metadata or {})
    meta.update(table_metadata(extra_meta))
    return table.replace_schema_metadata(meta)


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` atomically (:func:`pipeline.kernel.files.write_bytes_atomic`)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_bytes_atomic(Path(path), sink.getvalue().to_pybytes())


def schema_version_of(path: Path) -> int:
    meta = pq.read_schema(path).metadata or {}
    return int(meta.get(b"postprod.schema_version", b"0"))


EXPORTS_SCHEMA = pa.schema(
    [
        _f("source_path", pa.string(), "Source file, relative to the shoot.", False),
        _f("rendition", pa.string(), "The chart's rendition name.", False),
        _f("path", pa.string(), "Exported file, relative to the output folder.", False),
        _f("width", pa.int32(), "Width in pixels.", False),
        _f("height", pa.int32(), "Height in pixels.", False),
        _f("bytes", pa.int64(), "File size in bytes.", False),
        _f("format", pa.string(), "jpeg, webp, tiff or png.", False),
        _f("sha256", pa.string(), "SHA-256 of the exported file.", False),
    ],
    metadata={"postprod.table": "exports"},
)


def export_rows(records: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows of ``exports.parquet``: one per delivered file."""
    return [{"source_path": r.source_path, **dataclasses.asdict(e)} for r in records for e in r.exports]
