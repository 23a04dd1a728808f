"""Everything a finished run writes into the output folder, from the shoot's records.

The names of the folder's files are the contract with reviewers and
downstream tools (the review app reads them back).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.kernel.files import write_bytes_atomic, write_json_atomic
from pipeline.kernel.records import ImageRecord, Status
from pipeline.kernel.schema import (
    EXPORTS_SCHEMA,
    FACES_SCHEMA,
    MANIFEST_SCHEMA,
    export_rows,
    face_rows,
    to_table,
    write_parquet_atomic,
)
from pipeline.kernel.stage import RunContext
from pipeline.outputs.contact_sheet import contact_sheet
from pipeline.outputs.instructions import (
    INSTRUCTIONS_SCHEMA,
    instruction_doc,
    instruction_name,
    instruction_rows,
)
from pipeline.outputs.report import render_report
from pipeline.outputs.verify import verify_exports
from pipeline.outputs.xmp import (
    EmbedError,
    ImageDecision,
    XmpForm,
    crs_settings,
    embed_packets,
    xmp_note,
    xmp_packet,
    xmp_target,
    xmp_targets,
)

MANIFEST_NAME = "manifest.parquet"
FACES_NAME = "faces.parquet"
INSTRUCTIONS_NAME = "instructions.parquet"
EXPORTS_NAME = "exports.parquet"
SUMMARY_NAME = "summary.json"
REPORT_NAME = "report.html"
CONTACT_DIR = "contact_sheets"


def write_outputs(records: list[ImageRecord], summary: dict[str, Any], graph_name: str, context: RunContext) -> None:
    """Manifest, faces, instructions (JSON, Parquet, XMP), exports table, contact sheets, summary, report.

    Parameters
    ----------
    records : list of ImageRecord
        Every file of the shoot, duplicates and failures included, in the manifest's order.
    summary : dict
        The run's summary (``summary.json``, also shown in the report).
    graph_name : str
        Name of the graph that produced the records (Parquet metadata).
    context : RunContext
        The run's output folder, chart and shoot id.

    Raises
    ------
    ExportMismatchError
        If ``exports.parquet`` read back disagrees with the files on disk
        (:func:`pipeline.outputs.verify.verify_exports`).
    """
    out = context.out_dir
    meta = {"graph": graph_name, "shoot": str(context.shoot_dir), "chart": context.chart_name,
            "chart_hash": context.chart_hash, "shoot_id": context.shoot_id}
    write_parquet_atomic(to_table((r.to_row() for r in records), MANIFEST_SCHEMA, meta), out / MANIFEST_NAME)
    originals = [r for r in records if r.duplicate_of is None]
    write_parquet_atomic(to_table(face_rows(originals), FACES_SCHEMA, meta), out / FACES_NAME)
    write_parquet_atomic(to_table(export_rows(originals), EXPORTS_SCHEMA, meta), out / EXPORTS_NAME)
    verify_exports(out, EXPORTS_NAME)  # every row's file is on disk with its SHA-256, else ExportMismatchError
    planned = [r for r in originals if r.status is Status.OK and r.plan.verdict is not None]
    docs = write_instruction_docs(planned, context)
    rows: list[dict[str, Any]] = []
    for doc in docs:
        rows += instruction_rows(doc)
    if planned:
        write_parquet_atomic(to_table(rows, INSTRUCTIONS_SCHEMA, meta), out / INSTRUCTIONS_NAME)
    write_contact_sheets(originals, out)
    write_json_atomic(out / SUMMARY_NAME, summary)
    html_text = render_report(records, summary, context.chart_name)
    write_bytes_atomic(out / REPORT_NAME, html_text.encode("utf-8"))


def previous_image_review(path: Path) -> dict[str, Any] | None:
    """The image-level decision of an earlier instructions file, kept across a re-plan (None: none, or malformed)."""
    try:
        review = json.loads(path.read_text(encoding="utf-8")).get("review")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(review, dict):
        return None
    try:
        ImageDecision.from_doc({"review": review})
    except ValueError:
        return None  # not ours to repair: the plan's own files are rewritten without it
    return review


def write_instruction_docs(records: list[ImageRecord], context: RunContext) -> list[dict[str, Any]]:
    """``instructions/<name>.json`` and the Camera Raw settings (``xmp/``) of every planned image.

    Embedded-form sources (DNG, JPEG, TIFF, PNG) get their copies in one
    exiftool run; a copy that cannot be written leaves the packet and a note
    in its document (``xmp_note``) instead of failing the run.
    """
    out = context.out_dir
    chart = context.chart.chart if context.chart is not None else None
    renditions = [(name, r.crop) for name, r in chart.renditions.items()] if chart is not None else []
    embed = chart.xmp.embed_copies if chart is not None else True
    targets = xmp_targets(((r.source_path, r.format) for r in records), embed)
    docs: list[dict[str, Any]] = []
    jobs: list[tuple[Path, Path, Path]] = []
    for r in records:
        doc_path = out / "instructions" / instruction_name(r.source_path)
        doc = instruction_doc(r, context.chart_name or "", context.chart_hash or "", renditions,
                              targets[r.source_path], previous_image_review(doc_path))
        settings = crs_settings(doc)
        doc["xmp_note"] = xmp_note(doc, settings, doc["xmp_note"])
        packet = out / doc["xmp"]
        write_bytes_atomic(packet, xmp_packet(doc, settings=settings).encode("utf-8"))
        if doc["xmp_copy"]:
            jobs.append((context.shoot_dir / r.source_path, packet, out / doc["xmp_copy"]))
        elif doc["xmp_form"] == XmpForm.EMBEDDED:
            stale = xmp_target(r.source_path, r.format).copy  # copies turned off: an earlier run's goes
            if stale:
                (out / stale).unlink(missing_ok=True)
        docs.append(doc)
    try:
        failed = embed_packets(jobs)
    except EmbedError as exc:
        failed = {dest: str(exc) for _, _, dest in jobs}
    for doc in docs:
        reason = failed.get(out / doc["xmp_copy"]) if doc["xmp_copy"] else None
        if reason:
            note = f"no copy with the settings inside: {reason}"
            doc["xmp_copy"], doc["xmp_note"] = None, "; ".join(filter(None, (doc["xmp_note"], note)))
        write_json_atomic(out / "instructions" / instruction_name(doc["source_path"]), doc)
    return docs


#: Images per contact sheet: 6 x 10 cells, about 1900 x 3400 px (20 MB while drawn) however large the shoot.
CONTACT_PAGE = 60


def write_contact_sheets(records: list[ImageRecord], out: Path, page: int = CONTACT_PAGE) -> list[Path]:
    """``contact_sheets/<rendition>.jpg``: every delivered file of a rendition, ``page`` to a sheet.

    A rendition with more files gets numbered sheets, ``<rendition>-001.jpg``
    and on: one sheet for a whole shoot would grow the driver's memory with
    the shoot (300 MB at 1,000 images) and pass JPEG's 65,500 px limit near
    1,200. Sheets of an earlier run that this one does not rewrite are removed.
    """
    by_rendition: dict[str, list[tuple[Path, str]]] = {}
    for r in records:
        for e in r.exports:
            caption = f"{PurePosixPath(r.source_path).name} [{r.plan.verdict}]" if r.plan.verdict else r.source_path
            by_rendition.setdefault(e.rendition, []).append((out / e.path, caption))
    folder = out / CONTACT_DIR
    written: list[Path] = []
    for rendition, items in sorted(by_rendition.items()):
        pages = [items[i : i + page] for i in range(0, len(items), page)]
        for n, chunk in enumerate(pages, 1):
            name = f"{rendition}.jpg" if len(pages) == 1 else f"{rendition}-{n:03d}.jpg"
            written.append(contact_sheet([p for p, _ in chunk], [c for _, c in chunk], folder / name))
        stale = [folder / f"{rendition}.jpg", *folder.glob(f"{rendition}-[0-9][0-9][0-9].jpg")]
        for p in stale:
            if p not in written:
                p.unlink(missing_ok=True)
    return written
