"""The Arrow schema of the Parquet outputs: the contract with downstream tools.

``MANIFEST_SCHEMA`` describes ``manifest.parquet``, one row per input file.
It is generated from the record's column declarations
(:data:`pipeline.kernel.records.MANIFEST_COLUMNS`). Its version goes into the
Parquet metadata; bump it on any change that a reader could notice.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import __version__
from pipeline.kernel.files import atomic_file, write_bytes_atomic
from pipeline.kernel.records import MANIFEST_COLUMNS

SCHEMA_VERSION = 28  # 2: Camera Raw's as-shot white balance, baseline exposure and default crop; 3: failure;
# 4: identity (camera_serial, photographer...) and the equipment check (focus_miss, equipment_evidence...);
# 5: scenes (palette, scene_id) beside 4's columns; 6: keypoints_path (scene grouping's evidence)
# 7: one exposure number: exposure_ev/exposure_verdict/exposure_keyed_on are the plan's (exposure_ev the
# offset it corrects), exposure_meter_ev the whole frame's meter; with them the white-balance judgement
# (wb_cast_mired, wb_tint, wb_uncertainty_mired) and the lines' support/agreement columns
# 8: chroma_p99 (a black-and-white picture gets no colour judgement)
# 9: white_balance_mode (the camera's automatic white balance is trusted in daylight)
# 10: exposure_compensation_ev (a camera JPEG's exposure compensation is kept)
# 11: exposure_white_ev (the white point that floors a headshot's faces-only reading)
# 12: wb_colour_checker, wb_colour_checker_box (the light read off a ColorChecker in the frame, and where it is)
# 13: exposure_backdrop_pct (a white backdrop: the exposure read on the subject, never darkened), wb_backdrop
# (the light read off that backdrop)
# 14: exposure_backdrop_rgb (the backdrop's colour, which the plan's whiten_backdrop delivers white),
# exposure_subject_box (what stands on it, which a crop pads rather than cuts)
# 15: exposure_backdrop_falloff (a sweep's light falling off across the frame, read and whitened against)
# 16: saliency_map (where the subject is: the crops placed on the salient object hold it)
# 17: flash_fired (a flash frame is no exposure of a bracket)
# 18: exposure_unclipped_key_ev (a darkening that only the clipped pixels ask for is proposed, not applied)
# 19: clipped_shadows_pct (black pixels, every channel at black: the shadows check's share, which a saturated
# colour with one channel at black no longer fills)
# 20: sharpness_peak (the frame's sharpest part: a subject in focus before a blurred background is not soft)
# 21: off_tone_chroma_p99 (a toned black-and-white picture keeps its tone)
# 22: turned_by_xmp (a RAW developed in the turn its XMP states: a frame the photographer turned while culling)
# 23: unsure_faces (detections not sure enough to be faces, which a chart that blurs faces for privacy blurs too)
# 24: faces.parquet's red_eyes (a flash's red pupils, which the plan takes the red out of)
# 25: wb_tint_uncertainty (the light's tint taken out as far as each frame's cues agree on it)
# 26: border_bars (the flat bars a picture was padded with: crops are placed inside them)
# 27: sky_share (a blue sky in the top quarter: a daylight scene whose shade reads cool by nature)
# 28: sky_rgb (that sky's colour: a correction that turns it teal or purple is proposed)


def use_system_memory_pool() -> bool:
    """Make glibc's malloc Arrow's default memory pool in this process, unless the user chose one.

    The driver writes its tables a few hundred rows at a time. pyarrow's
    bundled pool (mimalloc here; jemalloc in some builds) keeps the pages of
    those freed batches for reuse instead of giving them back: about 12 MB
    more resident at the contact sheets (the driver's peak) on 1,000 images
    than on 100 (profile of 2026-11-30, benchmarks/RESULTS.md, target 5),
    which glibc's malloc returns or reuses for the next batch. Arrow's own
    ``ARROW_DEFAULT_MEMORY_POOL``, when set, is left as the user set it.

    This covers what pyarrow allocates (tables, reads); the Parquet writer's
    pages come from Arrow's C++ default pool, which only that variable chooses,
    before pyarrow loads: ``import pipeline`` sets it (``pipeline/__init__.py``),
    so this is the fallback for a process that loaded pyarrow first.

    Returns
    -------
    bool
        Whether the pool was changed.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return False
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())
        return True
    return False


def _f(name: str, type_: pa.DataType, description: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": description})


#: ``manifest.parquet``: generated from the record's column declarations
#: (:data:`pipeline.kernel.records.MANIFEST_COLUMNS`), so the two cannot disagree.
MANIFEST_SCHEMA = pa.schema(
    [_f(c.name, c.arrow, c.description, c.nullable) for c in MANIFEST_COLUMNS],
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
        _f("exposure_ev", pa.float32(), "log2(scene light of the face centre / that of a face in a well-exposed photograph)."),
        _f(
            "sharpness",
            pa.float32(),
            "Variance of the Laplacian of the face (grey 0-255) resampled to 128 px wide; higher is sharper.",
        ),
        _f("too_small", pa.bool_(), "Face below the minimum size for retouching (kept, flagged).", False),
        _f("colour_rgb", pa.list_(pa.float32(), 3),
           "Median linear RGB (1.0 = white) of the face centre: the skin colour the white balance must keep."),
        _f("surround_ev", pa.float32(),
           "log2(face centre luminance / its neighbourhood's lit surfaces): how much darker the face is than the light around it."),
        _f("clipped_pct", pa.float32(),
           "Percent of the face centre's pixels with a channel clipped at white: the skin's highlights lost."),
        _f("skin_ev", pa.float32(),
           "The face's skin under its eyes (cheeks and nose), on exposure_ev's scale: read clear of dark glasses."),
        _f("red_eyes", pa.list_(pa.float32()),
           "The face's red pupils (a flash's red eye): x, y, radius in full-resolution pixels, three a red eye."),
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
                    "colour_rgb": None if face.colour_rgb is None else list(face.colour_rgb),
                    "surround_ev": face.surround_ev,
                    "clipped_pct": face.clipped_pct,
                    "skin_ev": face.skin_ev,
                    "red_eyes": face.red_eyes,
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


def write_parquet_rows(
    rows: Iterable[dict[str, Any]],
    schema: pa.Schema,
    path: Path,
    extra_meta: dict[str, Any] | None = None,
    batch_rows: int = 2048,
) -> int:
    """Write rows to a Parquet file batch by batch (atomically); the number of rows.

    The same table as ``write_parquet_atomic(to_table(rows, schema, extra_meta), path)``
    without holding the rows, the table or the encoded file whole: a 10,000-image
    manifest took 60 MB more at its peak the other way.

    Raises
    ------
    KeyError
        If a row has fields the schema lacks.
    OSError
        If the file cannot be written.
    """
    meta = dict(schema.metadata or {})
    meta.update(table_metadata(extra_meta))
    schema = schema.with_metadata(meta)
    names = set(schema.names)
    count = 0
    with atomic_file(path) as f, pq.ParquetWriter(f, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            batch.clear()

        for row in rows:
            unknown = set(row) - names
            if unknown:
                raise KeyError(f"row has fields not in the schema: {sorted(unknown)}")
            batch.append(row)
            count += 1
            if len(batch) >= batch_rows:
                flush()
        if batch or count == 0:
            flush()
    return count


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
        _f("render_key", pa.string(), "What the file was rendered from (source, chart, operations, code)."),
        _f("stale", pa.bool_(),
           "True when a review decision changed the image since the file was rendered: `postprod render OUT`.",
           False),
    ],
    metadata={"postprod.table": "exports"},
)


def export_rows(records: Iterable[Any], stale: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Rows of ``exports.parquet``: one per delivered file; ``stale`` names images whose exports are stale."""
    stale = set(stale)
    return [{"source_path": r.source_path, **dataclasses.asdict(e), "render_key": r.render_key,
             "stale": r.source_path in stale} for r in records for e in r.exports]
