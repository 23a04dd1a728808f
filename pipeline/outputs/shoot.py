"""Everything a finished run writes into the output folder, from the shoot's records.

The names of the folder's files are the contract with reviewers and
downstream tools (the review app reads them back).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator

from pipeline.kernel.files import AtomicBatch, write_chunks_atomic, write_json_atomic
from pipeline.kernel.records import ImageRecord, Status
from pipeline.kernel.schema import (
    EXPORTS_SCHEMA,
    FACES_SCHEMA,
    MANIFEST_SCHEMA,
    export_rows,
    face_rows,
    write_parquet_rows,
)
from pipeline.kernel.stage import RunContext
from pipeline.outputs.contact_sheet import THUMB_DIR, contact_sheet, thumbnail_path
from pipeline.outputs.instructions import (
    INSTRUCTIONS_SCHEMA,
    instruction_doc,
    instruction_name,
    instruction_rows,
    xmp_sidecar,
)
from pipeline.outputs.report import report_parts

MANIFEST_NAME = "manifest.parquet"
FACES_NAME = "faces.parquet"
INSTRUCTIONS_NAME = "instructions.parquet"
EXPORTS_NAME = "exports.parquet"
SUMMARY_NAME = "summary.json"
REPORT_NAME = "report.html"
CONTACT_DIR = "contact_sheets"


def write_outputs(records: Iterable[ImageRecord], summary: dict[str, Any], graph_name: str, context: RunContext) -> None:
    """Manifest, faces, instructions (JSON, Parquet, XMP), exports table, contact sheets, summary, report.

    Parameters
    ----------
    records : iterable of ImageRecord
        Every file of the shoot, duplicates and failures included, in the manifest's order; a
        re-iterable sequence (read once a table, none of them kept: it may be a lazy view).
    summary : dict
        The run's summary (``summary.json``, also shown in the report).
    graph_name : str
        Name of the graph that produced the records (Parquet metadata).
    context : RunContext
        The run's output folder, chart and shoot id.
    """
    out = context.out_dir
    meta = {"graph": graph_name, "shoot": str(context.shoot_dir), "chart": context.chart_name,
            "chart_hash": context.chart_hash, "shoot_id": context.shoot_id}
    # Rows, instruction files and the report are made as they are written: the driver's memory
    # does not grow with them (a 10,000-image shoot's outputs took 150 MB more at their peak at once).
    write_parquet_rows((r.to_row() for r in records), MANIFEST_SCHEMA, out / MANIFEST_NAME, meta)

    def originals() -> Iterator[ImageRecord]:  # a pass over the records, none of them kept
        return (r for r in records if r.duplicate_of is None)

    write_parquet_rows((row for r in originals() for row in face_rows([r])), FACES_SCHEMA, out / FACES_NAME, meta)
    write_parquet_rows((row for r in originals() for row in export_rows([r])), EXPORTS_SCHEMA, out / EXPORTS_NAME,
                       meta)
    with AtomicBatch() as files:  # two files an image, flushed to disk together

        def rows() -> Iterator[dict[str, Any]]:
            for r in originals():
                if r.status is not Status.OK or r.plan.verdict is None:
                    continue
                doc = instruction_doc(r, context.chart_name or "", context.chart_hash or "")
                files.write(out / "instructions" / instruction_name(r.source_path),
                            (json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n").encode("utf-8"))
                files.write(out / doc["xmp"], xmp_sidecar(doc).encode("utf-8"))
                yield from instruction_rows(doc)

        if any(r.status is Status.OK and r.plan.verdict is not None for r in originals()):
            write_parquet_rows(rows(), INSTRUCTIONS_SCHEMA, out / INSTRUCTIONS_NAME, meta)
    write_contact_sheets(originals(), out)
    write_json_atomic(out / SUMMARY_NAME, summary)
    write_chunks_atomic(out / REPORT_NAME, _lines(report_parts(records, summary, context.chart_name)))


def _lines(parts: Iterator[str]) -> Iterator[bytes]:
    """``"\\n".join(parts)``, encoded, a piece at a time."""
    for i, part in enumerate(parts):
        yield (("\n" if i else "") + part).encode("utf-8")


#: Images per contact sheet: 6 x 10 cells, about 1900 x 3400 px (20 MB while drawn) however large the shoot.
CONTACT_PAGE = 60


def write_contact_sheets(records: Iterable[ImageRecord], out: Path, page: int = CONTACT_PAGE) -> list[Path]:
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
            # The cell the export made from its pixels, else (an export of an earlier run) the file itself.
            thumb = thumbnail_path(out, e.path)
            by_rendition.setdefault(e.rendition, []).append((thumb if thumb.is_file() else out / e.path, caption))
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
    shutil.rmtree(out / THUMB_DIR, ignore_errors=True)  # a transport from the workers, not an output
    return written
