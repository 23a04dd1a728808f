"""Everything a finished run writes into the output folder, from the shoot's records.

The names of the folder's files are the contract with reviewers and
downstream tools (the review app reads them back).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from charts.loader import ResolvedChart, load_chart
from charts.schema import Chart
from pipeline.equipment.analysis import (
    EQUIPMENT_NAME,
    EQUIPMENT_SCHEMA,
    OPERATORS_NAME,
    OPERATORS_SCHEMA,
    EquipmentResult,
    FrameFacts,
    analyse_equipment,
    assign_photographers,
    body_summary,
    equipment_rows,
    frame_facts,
    operator_rows,
)
from pipeline.equipment.evidence import EVIDENCE_DIR
from pipeline.imaging.measure.keypoints import KEYPOINTS_DIR
from pipeline.imaging.render import RenderKeys
from pipeline.kernel.errors import ConfigError
from pipeline.kernel.files import AtomicBatch, write_bytes_atomic, write_chunks_atomic, write_json_atomic
from pipeline.kernel.journal import STATE_DIR
from pipeline.kernel.memory import release_free_memory
from pipeline.kernel.record_store import RecordStore, RecordView
from pipeline.kernel.records import ImageRecord, Status
from pipeline.kernel.schema import (
    EXPORTS_SCHEMA,
    FACES_SCHEMA,
    MANIFEST_SCHEMA,
    export_rows,
    face_rows,
    write_parquet_rows,
)
from pipeline.kernel.sidecars import Culling, is_photographers
from pipeline.kernel.stage import RunContext
from pipeline.outputs import decisions
from pipeline.outputs.contact_sheet import THUMB_DIR, contact_sheet, thumbnail_path
from pipeline.outputs.equipment_report import FRAME_COLUMNS, FramePicture, read_equipment_view
from pipeline.outputs.instructions import (
    INSTRUCTIONS_SCHEMA,
    instruction_doc,
    instruction_name,
    instruction_rows,
)
from pipeline.outputs.report import ReportBuilder, ReportImage, render_report
from pipeline.outputs.verify import verify_exports
from pipeline.outputs.xmp import (
    EmbedError,
    ImageDecision,
    XmpForm,
    crs_settings,
    embed_packets,
    image_decision,
    sidecar_stems_taken,
    xmp_note,
    xmp_packet,
    xmp_target,
    xmp_targets,
)
from pipeline.planning.plan import verdict_of
from pipeline.planning.rules.crops import rejudge_crop_flags

MANIFEST_NAME = "manifest.parquet"
FACES_NAME = "faces.parquet"
INSTRUCTIONS_NAME = "instructions.parquet"
EXPORTS_NAME = "exports.parquet"
SUMMARY_NAME = "summary.json"
REPORT_NAME = "report.html"
CONTACT_DIR = "contact_sheets"
#: The resolved chart of the last run, ``<name>.yaml``: what `postprod render` and the review's stale marks use.
RUN_CHART_DIR = f"{STATE_DIR}/chart"
PREVIEW_DIR = "previews"
#: How the run's preview of a RAW is named (``previews/<hash>.dev.jpg``): developed through the camera-like curve, so
#: whoever reads it back as light (the review's thumbnails) undoes the curve (a rendered source's is ``<hash>.jpg``).
DEVELOPED_PREVIEW_SUFFIX = ".dev.jpg"


def after_preview_name(content_hash: str) -> str:
    """The corrected picture the render stage leaves for the report: ``previews/<hash>.after.jpg``."""
    return f"{PREVIEW_DIR}/{content_hash[:24]}.after.jpg"


def image_files(record: ImageRecord) -> list[str]:
    """The files the image stages wrote for ``record`` (relative to the output folder), unsynced
    (:meth:`pipeline.kernel.stage.Stage.write_file`): what the journal flushes before it vouches for them."""
    named = [e.path for e in record.exports]
    named += [p for p in (record.equipment.evidence_path, record.keypoints_path, record.preview_path) if p]
    if record.exports:
        named.append(after_preview_name(record.content_hash))
    return named


#: Planned images whose instructions are made at once (and their embedded copies, one exiftool run):
#: the documents of one chunk are the only ones in memory. 500 left 8 more of Python's 1 MB arenas
#: held after the instructions on 1,000 images than on 100 (a few of each chunk's objects outlive it and
#: pin them), and the contact sheets that come next are the driver's peak: 100 keeps that at what a
#: 100-image shoot fills (an exiftool start per 100 images, a few ms an image; RESULTS.md, target 5).
INSTRUCTION_CHUNK = 100
#: Rows of a table held before they are written (one row group each): a manifest row is about 8 KB as a
#: dict, so the default 2,048 made the outputs' peak 16 MB higher at 10,000 images than at 100.
OUTPUT_BATCH_ROWS = 256
#: The scratch copy of the records as the outputs edit them (photographers, decisions), for the later passes.
OUTPUT_RECORDS_DIR = f"{STATE_DIR}/output-records"


def _is_planned(r: ImageRecord) -> bool:
    return r.duplicate_of is None and r.status is Status.OK and r.plan.verdict is not None


def write_outputs(records: Iterable[ImageRecord], summary: dict[str, Any], graph_name: str, context: RunContext,
                  plan_params: dict[tuple[str, str], dict[str, Any]] | None = None,
                  keep_photographers: bool = False, culling: Mapping[str, Culling] | None = None) -> None:
    """Manifest, faces, instructions (JSON, Parquet, XMP), exports table, contact sheets, equipment and
    operators tables, summary, report.

    The instructions are written under the review database's write lock,
    with the decisions it holds then (:mod:`pipeline.outputs.decisions`):
    a reviewer's decision made while the run went on is kept, not reverted.
    What an earlier run left that this one does not write (exports, sheets,
    instructions, sidecars and previews of another chart, of files gone
    from the shoot, of a render killed half-way) is removed at the end, so
    the folder holds this run's outputs and nothing else.

    Memory does not grow with the shoot's size beyond a few names per image:
    ``records`` is read once, each record as it comes, and the records as
    the outputs edit them (photographers, decisions) go to a scratch store
    that every later pass reads one at a time; an instruction document is
    written and dropped (:data:`INSTRUCTION_CHUNK` at a time); the equipment
    pass reads :class:`~pipeline.equipment.analysis.FrameFacts`; the report
    reads each document back from its file (:class:`~pipeline.outputs.report.ReportBuilder`).

    Parameters
    ----------
    records : iterable of ImageRecord
        Every file of the shoot, duplicates and failures included, in the manifest's order
        (read once; a lazy :class:`~pipeline.kernel.record_store.RecordView` is not held).
    summary : dict
        The run's summary (``summary.json``, also shown in the report); gets
        ``decisions_not_rendered``: the images with a decision made after their render,
        ``equipment``: the findings by kind, and the camera bodies
        (:func:`pipeline.equipment.analysis.body_summary`).
    graph_name : str
        Name of the graph that produced the records (Parquet metadata).
    context : RunContext
        The run's output folder, chart and shoot id.
    plan_params : dict, optional
        The plan's parameters before reviewers' edits (:func:`merge_decisions`).
    keep_photographers : bool
        Each frame keeps the photographer the folder's manifest names (a
        re-render decides nobody again); otherwise ``--photographer``, the body
        register, else EXIF Artist (:func:`pipeline.equipment.analysis.assign_photographers`).
    culling : mapping of str to Culling, optional
        The photographer's culling by source path (:attr:`~pipeline.kernel.ingest.Shoot.culling`): each image's
        decision in its instructions and XMP until a reviewer's replaces it (:func:`image_review`).

    Raises
    ------
    ExportMismatchError
        If ``exports.parquet`` read back disagrees with the files on disk
        (:func:`pipeline.outputs.verify.verify_exports`).
    """
    out = context.out_dir
    # Named up front when they are known (a view of the run's store): the scratch store then holds the
    # run's own key strings, not a copy of each one read back with its record.
    keys = records.keys() if isinstance(records, RecordView) else ()
    store = RecordStore(out, keys, folder=out / OUTPUT_RECORDS_DIR)
    try:
        _write_outputs(records, store, summary, graph_name, context, plan_params, keep_photographers, culling or {})
    finally:
        store.close()


def _write_outputs(records: Iterable[ImageRecord], store: RecordStore, summary: dict[str, Any], graph_name: str,
                   context: RunContext, plan_params: dict[tuple[str, str], dict[str, Any]] | None,
                   keep_photographers: bool, culling: Mapping[str, Culling]) -> None:
    out = context.out_dir
    meta = {"graph": graph_name, "shoot": str(context.shoot_dir), "chart": context.chart_name,
            "chart_hash": context.chart_hash, "shoot_id": context.shoot_id}
    write_run_chart(out, context.chart)
    kept = previous_photographers(out) if keep_photographers else {}
    keep = _Names()  # what the run wrote: the rest of its folders is an earlier run's
    planned: list[str] = []
    planned_sources: list[tuple[str, str]] = []

    def manifest_rows() -> Iterator[dict[str, Any]]:
        # The one pass over the run's records: photographers put on, each kept in the scratch store.
        for r in records:
            assign_photographers((r,), context.photographer, context.photographer_register)
            if r.source_path in kept:
                r.identity.photographer, r.identity.photographer_source = kept[r.source_path]
            store.put(r.source_path, r)
            if r.duplicate_of is None:
                source = store.key(r.source_path)  # kept to the end: the store's string, not the record's
                if r.preview_path:
                    keep.add(r.preview_path)
                keep.update(e.path for e in r.exports)
                if _is_planned(r):
                    planned.append(source)
                    planned_sources.append((source, sys.intern(r.format)))
                    after = after_preview_name(r.content_hash)
                    if r.exports and (out / after).is_file():
                        keep.add(after)
            yield r.to_row()

    # Rows are written as they are made (2,048 at a time): the tables never sit in memory whole.
    write_parquet_rows(manifest_rows(), MANIFEST_SCHEMA, out / MANIFEST_NAME, meta, OUTPUT_BATCH_ROWS)
    every = store.keys()
    write_parquet_rows((row for r in store.view(every) if r.duplicate_of is None for row in face_rows([r])),
                       FACES_SCHEMA, out / FACES_NAME, meta, OUTPUT_BATCH_ROWS)
    taken = sidecar_stems_taken(planned_sources)
    planned_sources.clear()
    summary["decisions_not_rendered"] = []
    shas: dict[str, str] = {}
    chart = context.chart.chart if context.chart is not None else None
    with decisions.transaction(out) as con:
        reviews = decisions.read(con)

        def instruction_table_rows() -> Iterator[dict[str, Any]]:
            view = store.view(planned)
            for start in range(0, len(planned), INSTRUCTION_CHUNK):
                chunk = view[start : start + INSTRUCTION_CHUNK]
                for r in chunk:
                    if merge_decisions(r, reviews.get(r.source_path, {}), plan_params, chart) and r.exports:
                        summary["decisions_not_rendered"].append(r.source_path)
                    store.put(r.source_path, r)  # the later passes read the decisions as merged
                for doc in write_instruction_docs(chunk, context, taken, culling):
                    yield from instruction_rows(doc)
                    name = f"instructions/{instruction_name(doc['source_path'])}"
                    shas[doc["source_path"]] = hashlib.sha256((out / name).read_bytes()).hexdigest()
                    keep.update((name, doc["xmp"], *([doc["xmp_copy"]] if doc.get("xmp_copy") else [])))
                # Noted a chunk at a time (same transaction): the digests are not held for the whole shoot.
                decisions.documents_written(con, shas)
                shas.clear()

        if planned:
            write_parquet_rows(instruction_table_rows(), INSTRUCTIONS_SCHEMA, out / INSTRUCTIONS_NAME, meta,
                               OUTPUT_BATCH_ROWS)
        else:
            (out / INSTRUCTIONS_NAME).unlink(missing_ok=True)
        decisions.documents_written(con, shas)  # none left (each chunk's were noted)
    # After the decisions are merged: an export made before one that changes its pixels is stale.
    stale: set[str] = set()
    render_keys = RenderKeys(context.chart.chart) if context.chart is not None else None

    def export_table_rows() -> Iterator[dict[str, Any]]:
        for r in store.view(every):
            if r.duplicate_of is not None:
                continue
            if render_keys is not None and r.exports and r.render_key \
                    and render_keys.key(r.content_hash, r.operations) != r.render_key:
                stale.add(r.source_path)
            yield from export_rows([r], [r.source_path] if r.source_path in stale else ())

    write_parquet_rows(export_table_rows(), EXPORTS_SCHEMA, out / EXPORTS_NAME, meta, OUTPUT_BATCH_ROWS)
    verify_exports(out, EXPORTS_NAME)  # every row's file is on disk with its SHA-256, else ExportMismatchError
    # The tables' freed batches and the passes' records go back before the sheets, the driver's peak (their
    # free pages would otherwise stay resident under it, more the larger the shoot).
    release_free_memory()
    originals = _Originals(store, every)
    keep.update(p.relative_to(out).as_posix() for p in write_contact_sheets(originals, out))
    release_free_memory()  # the sheets' pictures, freed in the heap's middle: the passes after them grow from there
    remove_stale_outputs(out, NameDigests(keep.names()), review_previews=NameDigests(
        f"{instruction_name(r.source_path)[:-5]}.{r.content_hash[:12]}." for r in originals))
    keep.close()
    # The keypoints of frames no longer in the shoot (planning read them; the next run finds them again).
    remove_stale_outputs(out, NameDigests(r.keypoints_path for r in store.view(every) if r.keypoints_path),
                         folders=(str(KEYPOINTS_DIR),))
    found = write_equipment([frame_facts(r) for r in store.view(every)], context, meta)
    summary["equipment"] = dict(Counter(str(f.kind) for f in found.findings))
    summary.update(body_summary(found))
    write_json_atomic(out / SUMMARY_NAME, summary)
    del found

    def pictures_of(paths: set[str]) -> dict[str, FramePicture]:
        return {r.source_path: FramePicture(r.preview_path, r.frame.width, r.frame.height, r.frame.orientation or 1,
                                            r.camera.aperture) for r in store.view(every) if r.source_path in paths}

    # The section as `rewrite_report` draws it: from the tables just written.
    equipment = read_equipment_view(out, summary, pictures_of)
    planned_set = set(planned)
    planned.clear()
    with ReportBuilder() as report:
        for r in store.view(every):
            doc = picture = None
            if r.source_path in planned_set:
                doc = json.loads((out / "instructions" / instruction_name(r.source_path)).read_text(encoding="utf-8"))
                after = after_preview_name(r.content_hash)
                picture = after if r.exports and (out / after).is_file() else None
            report.add(ReportImage(r.source_path, str(r.status), r.error, r.duplicate_of, doc,
                                   picture or r.preview_path, r.source_path in stale))
        write_chunks_atomic(out / REPORT_NAME,
                            (c.encode("utf-8") for c in report.chunks(summary, context.chart_name, equipment)))


class _Names:
    """Paths relative to the output folder, noted one by one through the whole outputs pass.

    Spooled NUL-separated (a file name cannot hold a NUL) to a temporary
    file, not held: half a dozen names an image, about 0.24 KB, were still
    in memory at the contact sheets, the driver's peak (2.4 MB at 10,000
    images, and the buffer's copies as it grew; RESULTS.md, target 5). Before
    that, a set of strings read out of records kept the heap from giving
    their memory back (about 1.3 KB an image at 3,000 images, with the set's
    table). :meth:`names` reads them back a block at a time (made into a set of strings at once, they rose 6 MB
    over the contact sheets at 10,000 images); :meth:`close` removes the file.
    """

    #: Bytes of the file read at a time by :meth:`names`.
    BLOCK = 1 << 20

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile("w+b")

    def add(self, name: str) -> None:
        self._file.write(name.encode("utf-8", "surrogateescape") + b"\0")

    def update(self, names: Iterable[str]) -> None:
        for name in names:
            self.add(name)

    def close(self) -> None:
        """Remove the file (the names are not needed any more)."""
        self._file.close()

    def names(self) -> Iterator[str]:
        """Every name noted, in the order noted (a name noted twice comes twice)."""
        self._file.seek(0)
        rest = b""
        while block := self._file.read(self.BLOCK):
            *whole, rest = (rest + block).split(b"\0")
            yield from (n.decode("utf-8", "surrogateescape") for n in whole)
        self._file.seek(0, os.SEEK_END)


class NameDigests(Container[str]):
    """A set of names kept as their 8-byte BLAKE2b digests in one sorted array, for ``in``.

    8 bytes a name instead of a string and a set's slot (about 0.15 KB): the names
    a run keeps (:class:`_Names`, six or so an image) and the review previews'
    prefixes, asked about once per file on disk. Two names share a digest with a
    chance of 2**-64 a pair: a stale file would be kept, never a kept one removed.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self._sorted = np.unique(np.fromiter((self._digest(n) for n in names), dtype=np.uint64))

    @staticmethod
    def _digest(name: str) -> int:
        return int.from_bytes(hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=8).digest(),
                              "little")

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        d = np.uint64(self._digest(name))
        k = int(np.searchsorted(self._sorted, d))
        return k < len(self._sorted) and self._sorted[k] == d

    def __len__(self) -> int:
        return len(self._sorted)


class _Originals:
    """The files of a shoot that are not exact duplicates, from a record store, read again on every pass."""

    def __init__(self, store: RecordStore, keys: list[str]) -> None:
        self._view = store.view(keys)

    def __iter__(self) -> Iterator[ImageRecord]:
        return (r for r in self._view if r.duplicate_of is None)


def write_run_chart(out: Path, chart: ResolvedChart | None) -> None:
    """Keep the run's resolved chart in the output folder (``RUN_CHART_DIR/<name>.yaml``).

    `postprod render OUT` re-renders with exactly it (a chart edited since
    would otherwise re-render every image), and the review app computes
    stale exports from it.
    """
    if chart is None:
        return
    folder = out / RUN_CHART_DIR
    path = folder / f"{chart.name}.yaml"
    if folder.is_dir():
        for old in folder.glob("*.yaml"):
            if old != path:
                old.unlink(missing_ok=True)
    write_bytes_atomic(path, chart.to_yaml().encode("utf-8"))


def run_chart(out: Path) -> ResolvedChart | None:
    """The chart the last run into ``out`` used, or None when it cannot be known.

    Read from ``RUN_CHART_DIR``; for a folder written before it was kept, the
    chart of the manifest's name, if its content still has the run's hash.
    """
    kept = sorted((out / RUN_CHART_DIR).glob("*.yaml"))
    try:
        if len(kept) == 1:
            return load_chart(kept[0])
        meta = {k.decode(): v.decode() for k, v in (pq.read_schema(out / MANIFEST_NAME).metadata or {}).items()}
        name, digest = meta.get("postprod.chart"), meta.get("postprod.chart_hash")
        if not name or not digest:
            return None
        chart = load_chart(name)
        return chart if chart.digest == digest else None
    except (ConfigError, OSError, ValueError):
        return None


def read_run_settings(out: Path) -> tuple[Path, str | None, Path | None]:
    """The shoot folder, shoot id and kept chart file of the last run into ``out`` (to render it again).

    Raises
    ------
    FileNotFoundError
        If ``out`` is not an output folder, or it does not name its shoot folder.
    """
    manifest = out / MANIFEST_NAME
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: is this a `postprod process` output folder?")
    meta = {k.decode(): v.decode() for k, v in (pq.read_schema(manifest).metadata or {}).items()}
    shoot = meta.get("postprod.shoot")
    if not shoot:
        raise FileNotFoundError("the manifest does not name the shoot folder: pass --shoot")
    kept = sorted((out / RUN_CHART_DIR).glob("*.yaml"))
    return Path(shoot), meta.get("postprod.shoot_id") or None, kept[0] if len(kept) == 1 else None


def rewrite_report(out: Path, docs: dict[str, dict[str, Any]], stale: set[str]) -> None:
    """Write ``report.html`` again from the output folder (after review decisions changed what is stale).

    Parameters
    ----------
    out : Path
        The output folder (its manifest, summary and pictures are read).
    docs : dict
        The current instruction documents by source path.
    stale : set of str
        Images whose exports are stale.
    """
    table = pq.read_table(out / MANIFEST_NAME)
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    try:
        summary = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}
    images = []
    rows = table.select(["source_path", "content_hash", "status", "error", "duplicate_of",
                         *FRAME_COLUMNS]).to_pylist()
    for row in rows:
        sp = row["source_path"]
        doc = docs.get(sp)
        after = after_preview_name(row["content_hash"])
        picture = after if doc is not None and doc.get("exports") and (out / after).is_file() else row["preview_path"]
        images.append(ReportImage(sp, row["status"], row["error"], row["duplicate_of"], doc, picture, sp in stale))
    by_source = {row["source_path"]: row for row in rows}
    equipment = read_equipment_view(out, summary, lambda paths: {
        p: FramePicture.from_row(by_source[p]) for p in paths if p in by_source})
    html_text = render_report(images, summary, meta.get("postprod.chart"), equipment)
    write_bytes_atomic(out / REPORT_NAME, html_text.encode("utf-8"))


def write_equipment(records: list[FrameFacts], context: RunContext, meta: dict[str, Any]) -> EquipmentResult:
    """``equipment.parquet`` (findings per camera body) and ``operators.parquet`` (per photographer).

    Reads each frame's evidence file once (:func:`pipeline.equipment.analysis.analyse_equipment`),
    then removes the evidence files of frames no longer in the shoot.
    """
    out = context.out_dir
    result = analyse_equipment(records, out)
    write_parquet_rows(equipment_rows(result, context.shoot_id, records), EQUIPMENT_SCHEMA, out / EQUIPMENT_NAME,
                       meta)
    write_parquet_rows(operator_rows(records, context.shoot_id), OPERATORS_SCHEMA, out / OPERATORS_NAME, meta)
    keep = {r.evidence_path for r in records if r.evidence_path}
    remove_stale_outputs(out, keep, folders=(str(EVIDENCE_DIR),))
    return result


def previous_photographers(out: Path) -> dict[str, tuple[str | None, str | None]]:
    """(photographer, where the name came from) per frame, as the folder's manifest names them.

    Empty when there is no manifest, or one written before photographers were recorded.
    """
    try:
        table = pq.read_table(out / MANIFEST_NAME, columns=["source_path", "photographer", "photographer_source"])
    except (OSError, ValueError, KeyError):  # ArrowInvalid is a ValueError: a column it lacks
        return {}
    return {row["source_path"]: (row["photographer"], row["photographer_source"]) for row in table.to_pylist()}


def image_review(path: Path, culling: Culling | None) -> dict[str, Any] | None:
    """The image-level decision of an image's instructions: a reviewer's in its earlier file (kept across a
    re-plan), else the photographer's in the shoot's sidecar as it stands now (:mod:`pipeline.kernel.sidecars`),
    else None."""
    earlier = previous_image_review(path)
    if earlier is not None and not is_photographers(earlier):
        return earlier
    return culling.review() if culling is not None else None


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


def write_instruction_docs(records: list[ImageRecord], context: RunContext,
                           stems_taken: dict[str, str] | None = None,
                           culling: Mapping[str, Culling] | None = None) -> list[dict[str, Any]]:
    """``instructions/<name>.json`` and the Camera Raw settings (``xmp/``) of every planned image.

    Embedded-form sources (DNG, JPEG, TIFF, PNG) get their copies in one
    exiftool run; a copy that cannot be written leaves the packet and a note
    in its document (``xmp_note``) instead of failing the run. The packets,
    then the documents, are flushed to disk together (:class:`AtomicBatch`),
    not one ``fsync`` a file. ``stems_taken`` (:func:`~pipeline.outputs.xmp.sidecar_stems_taken` of the
    whole shoot) is for a part of the shoot: which sidecar names other images took; without it
    ``records`` are taken as the whole shoot.
    """
    out = context.out_dir
    chart = context.chart.chart if context.chart is not None else None
    renditions = [(name, r.crop) for name, r in chart.renditions.items()] if chart is not None else []
    embed = chart.xmp.embed_copies if chart is not None else True
    if stems_taken is None:
        targets = xmp_targets(((r.source_path, r.format) for r in records), embed)
    else:
        targets = {r.source_path: xmp_target(r.source_path, r.format, embed, stems_taken.get(r.source_path))
                   for r in records}
    docs: list[dict[str, Any]] = []
    jobs: list[tuple[Path, Path, Path]] = []
    with AtomicBatch() as packets:  # in place (committed) before exiftool copies them
        for r in records:
            doc_path = out / "instructions" / instruction_name(r.source_path)
            doc = instruction_doc(r, context.chart_name or "", context.chart_hash or "", renditions,
                                  targets[r.source_path], image_review(doc_path, (culling or {}).get(r.source_path)))
            settings = crs_settings(doc)
            doc["xmp_note"] = xmp_note(doc, settings, doc["xmp_note"])
            packet = out / doc["xmp"]
            # Who decided last and when, as the review app writes it: a rerun does not take it out of the packet.
            packets.write(packet, xmp_packet(doc, image_decision(doc), settings=settings).encode("utf-8"))
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
    with AtomicBatch() as files:
        for doc in docs:
            reason = failed.get(out / doc["xmp_copy"]) if doc["xmp_copy"] else None
            if reason:
                note = f"no copy with the settings inside: {reason}"
                doc["xmp_copy"], doc["xmp_note"] = None, "; ".join(filter(None, (doc["xmp_note"], note)))
            files.write(out / "instructions" / instruction_name(doc["source_path"]),
                        (json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n").encode("utf-8"))
    return docs


def merge_decisions(record: ImageRecord, reviews: dict[str, dict[str, Any]],
                    plan_params: dict[tuple[str, str], dict[str, Any]] | None = None,
                    chart: Chart | None = None) -> bool:
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
    chart : Chart, optional
        The run's chart: the flags of a crop reframed by a reviewer are judged
        again on the frame the renderer cuts, and those of one whose reviewer's
        frame was taken back are the plan's again
        (:func:`~pipeline.planning.rules.crops.rejudge_crop_flags`).

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
    record.operations += decisions.reviewers_operations(reviews, {op.op_id for op in record.operations})
    # Reframed now, or judged on a reviewer's frame that was taken back since (the plan's flags again).
    if chart is not None and rejudge_crop_flags(record, chart):
        record.plan.verdict = verdict_of(record.operations)
    return adjustments_from_operations(record.operations) != before


#: The folders a run fills; a file in them that the run did not write is an earlier run's leftover.
OWNED_FOLDERS = ("exports", "instructions", "xmp", CONTACT_DIR, "previews")


def remove_stale_outputs(out: Path, keep: Container[str], review_previews: Container[str] = frozenset(),
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


def _is_review_preview(name: str, prefixes: Container[str]) -> bool:
    dot = name.find(".")
    while dot >= 0:
        if name[: dot + 1] in prefixes:
            return True
        dot = name.find(".", dot + 1)
    return False


#: Images per contact sheet: 6 x 10 cells, about 1900 x 3400 px (20 MB while drawn) however large the shoot.
CONTACT_PAGE = 60


def write_contact_sheets(records: Iterable[ImageRecord], out: Path, page: int = CONTACT_PAGE) -> list[Path]:
    """``contact_sheets/<rendition>.jpg``: every delivered file of a rendition, ``page`` to a sheet.

    A rendition with more files gets numbered sheets, ``<rendition>-001.jpg``
    and on: one sheet for a whole shoot would grow the driver's memory with
    the shoot (300 MB at 1,000 images) and pass JPEG's 65,500 px limit near
    1,200. Sheets of an earlier run that this one does not rewrite are removed.
    ``records`` is read once, then once per rendition (a record store's view
    reads them again from disk), so only one sheet's cells are in memory.
    """
    counts = Counter(e.rendition for r in records for e in r.exports)
    folder = out / CONTACT_DIR
    written: list[Path] = []
    for rendition, count in sorted(counts.items()):
        single = count <= page
        cells: list[tuple[Path, str]] = []

        def sheet(cells: list[tuple[Path, str]], rendition: str = rendition, single: bool = single) -> None:
            name = f"{rendition}.jpg" if single else f"{rendition}-{len(written_here) + 1:03d}.jpg"
            written_here.append(contact_sheet([p for p, _ in cells], [c for _, c in cells], folder / name))

        written_here: list[Path] = []
        for r in records:
            for e in r.exports:
                if e.rendition != rendition:
                    continue
                caption = f"{PurePosixPath(r.source_path).name} [{r.plan.verdict}]" if r.plan.verdict else r.source_path
                # The cell the export made from its pixels, else (an export of an earlier run) the file itself.
                thumb = thumbnail_path(out, e.path)
                cells.append((thumb if thumb.is_file() else out / e.path, caption))
                if len(cells) == page:
                    sheet(cells)
                    cells = []
        if cells:
            sheet(cells)
        written += written_here
        stale = [folder / f"{rendition}.jpg", *folder.glob(f"{rendition}-[0-9][0-9][0-9].jpg")]
        for p in stale:
            if p not in written_here:
                p.unlink(missing_ok=True)
    shutil.rmtree(out / THUMB_DIR, ignore_errors=True)  # a transport from the workers, not an output
    return written
