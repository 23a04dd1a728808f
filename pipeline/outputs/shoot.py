"""Everything a finished run writes into the output folder, from the shoot's records.

The names of the folder's files are the contract with reviewers and
downstream tools (the review app reads them back).
"""

from __future__ import annotations

import hashlib
from collections import Counter
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.equipment.analysis import (
    EQUIPMENT_NAME,
    EQUIPMENT_SCHEMA,
    OPERATORS_NAME,
    OPERATORS_SCHEMA,
    EquipmentResult,
    analyse_equipment,
    assign_photographers,
    equipment_rows,
    operator_rows,
)
from pipeline.equipment.evidence import EVIDENCE_DIR
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
from pipeline.outputs import decisions
from pipeline.outputs.contact_sheet import contact_sheet
from pipeline.outputs.instructions import (
    INSTRUCTIONS_SCHEMA,
    instruction_doc,
    instruction_name,
    instruction_rows,
)
from pipeline.outputs.report import render_report
from pipeline.outputs.xmp import (
    EmbedError,
    ImageDecision,
    XmpForm,
    crs_settings,
    embed_packets,
    image_decision,
    xmp_note,
    xmp_packet,
    xmp_targets,
)

MANIFEST_NAME = "manifest.parquet"
FACES_NAME = "faces.parquet"
INSTRUCTIONS_NAME = "instructions.parquet"
EXPORTS_NAME = "exports.parquet"
SUMMARY_NAME = "summary.json"
REPORT_NAME = "report.html"
CONTACT_DIR = "contact_sheets"


def write_outputs(records: list[ImageRecord], summary: dict[str, Any], graph_name: str, context: RunContext,
                  plan_params: dict[tuple[str, str], dict[str, Any]] | None = None) -> None:
    """Manifest, faces, instructions (JSON, Parquet, XMP), exports table, contact sheets, summary, report.

    The instructions are written under the review database's write lock,
    with the decisions it holds then (:mod:`pipeline.outputs.decisions`):
    a reviewer's decision made while the run went on is kept, not reverted.
    What an earlier run left that this one does not write (exports, sheets,
    instructions, sidecars and previews of another chart, of files gone
    from the shoot, of a render killed half-way) is removed at the end, so
    the folder holds this run's outputs and nothing else.

    Parameters
    ----------
    records : list of ImageRecord
        Every file of the shoot, duplicates and failures included, in the manifest's order.
    summary : dict
        The run's summary (``summary.json``, also shown in the report); gets
        ``decisions_not_rendered``: the images with a decision made after their render.
    graph_name : str
        Name of the graph that produced the records (Parquet metadata).
    context : RunContext
        The run's output folder, chart and shoot id.
    plan_params : dict, optional
        The plan's parameters before reviewers' edits (:func:`merge_decisions`).
    """
    out = context.out_dir
    meta = {"graph": graph_name, "shoot": str(context.shoot_dir), "chart": context.chart_name,
            "chart_hash": context.chart_hash, "shoot_id": context.shoot_id}
    assign_photographers(records, context.photographer, context.photographer_register)
    write_parquet_atomic(to_table((r.to_row() for r in records), MANIFEST_SCHEMA, meta), out / MANIFEST_NAME)
    originals = [r for r in records if r.duplicate_of is None]
    write_parquet_atomic(to_table(face_rows(originals), FACES_SCHEMA, meta), out / FACES_NAME)
    write_parquet_atomic(to_table(export_rows(originals), EXPORTS_SCHEMA, meta), out / EXPORTS_NAME)
    planned = [r for r in originals if r.status is Status.OK and r.plan.verdict is not None]
    keep: set[str] = {r.preview_path for r in originals if r.preview_path}
    keep |= {e.path for r in originals for e in r.exports}
    summary["decisions_not_rendered"] = []
    with decisions.transaction(out) as con:
        reviews = decisions.read(con)
        for r in planned:
            if merge_decisions(r, reviews.get(r.source_path, {}), plan_params) and r.exports:
                summary["decisions_not_rendered"].append(r.source_path)
        docs = write_instruction_docs(planned, context)
        rows: list[dict[str, Any]] = []
        shas: dict[str, str] = {}
        for doc in docs:
            rows += instruction_rows(doc)
            name = f"instructions/{instruction_name(doc['source_path'])}"
            shas[doc["source_path"]] = hashlib.sha256((out / name).read_bytes()).hexdigest()
            keep |= {name, doc["xmp"], *([doc["xmp_copy"]] if doc.get("xmp_copy") else [])}
        if planned:
            write_parquet_atomic(to_table(rows, INSTRUCTIONS_SCHEMA, meta), out / INSTRUCTIONS_NAME)
        else:
            (out / INSTRUCTIONS_NAME).unlink(missing_ok=True)
        decisions.documents_written(con, shas)
    keep |= {p.relative_to(out).as_posix() for p in write_contact_sheets(originals, out)}
    remove_stale_outputs(out, keep, review_previews={
        f"{instruction_name(r.source_path)[:-5]}.{r.content_hash[:12]}." for r in originals})
    equipment, operators = write_equipment(records, context, meta)
    summary["equipment"] = dict(Counter(str(f.kind) for f in equipment.findings))
    write_json_atomic(out / SUMMARY_NAME, summary)
    html_text = render_report(records, summary, context.chart_name, equipment, operators)
    write_bytes_atomic(out / REPORT_NAME, html_text.encode("utf-8"))


def write_equipment(records: list[ImageRecord], context: RunContext,
                    meta: dict[str, Any]) -> tuple[EquipmentResult, list[dict[str, Any]]]:
    """``equipment.parquet`` (findings per camera body) and ``operators.parquet`` (per photographer).

    Reads each frame's evidence file once (:func:`pipeline.equipment.analysis.analyse_equipment`),
    then removes the evidence files of frames no longer in the shoot.
    """
    out = context.out_dir
    result = analyse_equipment(records, out)
    write_parquet_atomic(to_table(equipment_rows(result, context.shoot_id, records), EQUIPMENT_SCHEMA, meta),
                         out / EQUIPMENT_NAME)
    operators = operator_rows(records, context.shoot_id)
    write_parquet_atomic(to_table(operators, OPERATORS_SCHEMA, meta), out / OPERATORS_NAME)
    keep = {r.equipment.evidence_path for r in records if r.equipment.evidence_path}
    remove_stale_outputs(out, keep, folders=(str(EVIDENCE_DIR),))
    return result, operators


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
        # Who decided last and when, as the review app writes it: a rerun does not take it out of the packet.
        write_bytes_atomic(packet, xmp_packet(doc, image_decision(doc), settings=settings).encode("utf-8"))
        if doc["xmp_copy"]:
            jobs.append((context.shoot_dir / r.source_path, packet, out / doc["xmp_copy"]))
        elif doc["xmp_form"] == XmpForm.EMBEDDED:
            (packet.parent / PurePosixPath(r.source_path).name).unlink(missing_ok=True)  # copies turned off
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


def merge_decisions(record: ImageRecord, reviews: dict[str, dict[str, Any]],
                    plan_params: dict[tuple[str, str], dict[str, Any]] | None = None) -> bool:
    """Put the review database's decisions on a record's operations (they replace what it carries).

    Parameters
    ----------
    record : ImageRecord
        A planned image; its operations are changed in place.
    reviews : dict
        The image's decisions by operation id (:func:`pipeline.outputs.decisions.read`).
    plan_params : dict, optional
        The plan's own parameters by (source path, operation id), before any
        reviewer's amount replaced them: an edit taken back since restores them.

    Returns
    -------
    bool
        Whether that changed what the renderer does (an amount, a
        rejection): the exports made before the decision do not show it yet.
    """
    from pipeline.imaging.render import adjustments_from_operations

    before = adjustments_from_operations(record.operations)
    for op in record.operations:
        review = reviews.get(op.op_id)
        if review is None:
            continue
        planned = (plan_params or {}).get((record.source_path, op.op_id), op.params)
        op.review = review if decisions.is_decided(review) else None
        op.params = {**planned, **(review.get("params") or {})}
    return adjustments_from_operations(record.operations) != before


#: The folders a run fills; a file in them that the run did not write is an earlier run's leftover.
OWNED_FOLDERS = ("exports", "instructions", "xmp", CONTACT_DIR, "previews")


def remove_stale_outputs(out: Path, keep: set[str], review_previews: set[str] = frozenset(),
                         folders: tuple[str, ...] = OWNED_FOLDERS) -> list[str]:
    """Remove every file in the run's ``folders`` that is not in ``keep`` (paths relative to ``out``).

    The review app's cached previews (``previews/<name>.<hash>.*``) are kept
    while their image, with the same content, is still in the shoot.

    Returns
    -------
    list of str
        The removed files, relative to ``out``.
    """
    removed: list[str] = []
    for folder in folders:
        root = out / folder
        if not root.is_dir() or root.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(root, topdown=False):
            here = Path(dirpath)
            for name in filenames:
                path = here / name
                rel = path.relative_to(out).as_posix()
                if rel in keep or (folder == "previews" and _is_review_preview(name, review_previews)):
                    continue
                path.unlink(missing_ok=True)
                removed.append(rel)
            if here != root:
                try:
                    here.rmdir()  # only when empty
                except OSError:
                    pass
    return removed


def _is_review_preview(name: str, prefixes: set[str]) -> bool:
    dot = name.find(".")
    while dot >= 0:
        if name[: dot + 1] in prefixes:
            return True
        dot = name.find(".", dot + 1)
    return False


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
