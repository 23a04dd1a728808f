"""Everything a finished run writes into the output folder, from the shoot's records.

The names of the folder's files are the contract with reviewers and
downstream tools (the review app reads them back).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow.parquet as pq

from charts.loader import ResolvedChart, load_chart
from pipeline.imaging.render import RenderKeys
from pipeline.kernel.errors import ConfigError
from pipeline.kernel.files import write_bytes_atomic, write_json_atomic
from pipeline.kernel.journal import STATE_DIR
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
    xmp_sidecar,
)
from pipeline.outputs.report import ReportImage, render_report, report_images

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


def after_preview_name(content_hash: str) -> str:
    """The corrected picture the render stage leaves for the report: ``previews/<hash>.after.jpg``."""
    return f"{PREVIEW_DIR}/{content_hash[:24]}.after.jpg"


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
    """
    out = context.out_dir
    meta = {"graph": graph_name, "shoot": str(context.shoot_dir), "chart": context.chart_name,
            "chart_hash": context.chart_hash, "shoot_id": context.shoot_id}
    write_run_chart(out, context.chart)
    write_parquet_atomic(to_table((r.to_row() for r in records), MANIFEST_SCHEMA, meta), out / MANIFEST_NAME)
    originals = [r for r in records if r.duplicate_of is None]
    stale = stale_exports(originals, context.chart)
    write_parquet_atomic(to_table(face_rows(originals), FACES_SCHEMA, meta), out / FACES_NAME)
    write_parquet_atomic(to_table(export_rows(originals, stale), EXPORTS_SCHEMA, meta), out / EXPORTS_NAME)
    planned = [r for r in originals if r.status is Status.OK and r.plan.verdict is not None]
    rows: list[dict[str, Any]] = []
    docs: dict[str, dict[str, Any]] = {}
    for r in planned:
        path = out / "instructions" / instruction_name(r.source_path)
        doc = instruction_doc(r, context.chart_name or "", context.chart_hash or "")
        keep_image_review(doc, path)
        write_json_atomic(path, doc)
        write_bytes_atomic(out / doc["xmp"], xmp_sidecar(doc).encode("utf-8"))
        rows += instruction_rows(doc)
        docs[r.source_path] = doc
    if planned:
        write_parquet_atomic(to_table(rows, INSTRUCTIONS_SCHEMA, meta), out / INSTRUCTIONS_NAME)
    write_contact_sheets(originals, out)
    write_json_atomic(out / SUMMARY_NAME, summary)
    pictures = {r.source_path: after_preview_name(r.content_hash) for r in planned
                if r.exports and (out / after_preview_name(r.content_hash)).is_file()}
    html_text = render_report(report_images(records, docs, pictures, stale), summary, context.chart_name)
    write_bytes_atomic(out / REPORT_NAME, html_text.encode("utf-8"))


def keep_image_review(doc: dict[str, Any], path: Path) -> None:
    """Carry the image-level review (flag, stars, label: ``doc["review"]``) of the file a rerun replaces.

    The plan knows nothing of it; the review app's database holds it too and
    puts it back if it is lost.
    """
    try:
        previous = json.loads(path.read_text(encoding="utf-8")).get("review")
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(previous, dict):
        doc["review"] = previous


def stale_exports(records: list[ImageRecord], chart: ResolvedChart | None) -> set[str]:
    """Images whose exports were rendered from other operations than the records now carry."""
    if chart is None:
        return set()
    keys = RenderKeys(chart.chart)
    return {r.source_path for r in records
            if r.exports and r.render_key and keys.key(r.content_hash, r.operations) != r.render_key}


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
    for row in table.select(["source_path", "content_hash", "status", "error", "duplicate_of",
                             "preview_path"]).to_pylist():
        sp = row["source_path"]
        doc = docs.get(sp)
        after = after_preview_name(row["content_hash"])
        picture = after if doc is not None and doc.get("exports") and (out / after).is_file() else row["preview_path"]
        images.append(ReportImage(sp, row["status"], row["error"], row["duplicate_of"], doc, picture, sp in stale))
    html_text = render_report(images, summary, meta.get("postprod.chart"))
    write_bytes_atomic(out / REPORT_NAME, html_text.encode("utf-8"))


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
