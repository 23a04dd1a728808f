"""Reviewers' decisions: validated, versioned, written back to every output that carries them.

A change goes, in one SQLite write transaction (``BEGIN IMMEDIATE``, so two
tabs or two servers on the same folder take turns):

1. the image's version is compared with the one the client saw (a stale tab
   gets :class:`Conflict` and reloads);
2. the instructions JSON is changed and written atomically, then its XMP
   sidecar and ``instructions.parquet`` (rebuilt from every JSON document);
3. the version is bumped, the decision recorded in the ``decisions`` table
   and an audit row written per changed field.

The database is the source of truth (:mod:`pipeline.outputs.decisions`): the
files carry copies. It also keeps what the JSON cannot: the amount the plan
proposed under each reviewer's edit. ``postprod process`` writes its
documents under the same lock with the decisions merged in; when the store
sees a document changed outside it, it puts the decisions back, re-applies
each edit whose planned amount is unchanged and, where the plan now proposes
something else, drops the edit and sets the operation back to pending.
"""

from __future__ import annotations

import copy
import getpass
import hashlib
import json
import logging
import math
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.imaging.geometry import fits, parse_aspect, shrink_to_fit
from pipeline.kernel.files import write_bytes_atomic
from pipeline.kernel.records import (
    RENDER_ON_ACCEPT,
    AppliedBy,
    Face,
    Frame,
    ImageRecord,
    Operation,
    OperationKind,
    renderer_applies,
)  # fmt: skip
from pipeline.kernel.run import EXPORTS_NAME, INSTRUCTIONS_NAME, MANIFEST_NAME, SUMMARY_NAME
from pipeline.kernel.schema import EXPORTS_SCHEMA, to_table, write_parquet_atomic
from pipeline.outputs import decisions
from pipeline.outputs.decisions import DB_NAME
from pipeline.outputs.instructions import (
    INSTRUCTIONS_SCHEMA,
    instruction_name,
    instruction_rows,
    operation_doc,
    operation_from_doc,
    reviewed_summary,
)  # fmt: skip
from pipeline.outputs.shoot import rewrite_report, run_chart
from pipeline.outputs.xmp import (  # noqa: F401 - image_decision: re-exported for callers
    crs_settings,
    files_note,
    framings,
    image_decision,
    write_xmp,
    xmp_note,
)
from pipeline.planning.rules.faces import FEATHER_FRACTION
from pipeline.planning.rules.white_balance import reviewed_params
from pipeline.review.culling import (
    CULLING_FIELDS,
    Decision,
    culling_from_doc,
    review_doc,
)  # fmt: skip

log = logging.getLogger(__name__)

REVIEW_STATUSES = ("pending", "accepted", "rejected", "done")
# Kinds whose amount a reviewer may change, and the bounds of an amount.
EV_KINDS = ("exposure", "brighten_face", "lift_shadows")
MAX_ABS_EV = 5.0
# Straightening and a crop's own turn, in degrees either way.
MAX_ABS_ANGLE = 45.0
# White balance: a shift in mired (+ warmer) or in kelvin, and a tint shift in Lab a*, either way. Kelvin is not
# even: a light 100 mired cooler than D65 is already 12,400 K further, and the plan's own shifts reach 1e6 K for
# a blue cast (a tungsten preset in daylight), so the kelvin bound is the locus' end and mired is the edit's unit.
MAX_ABS_MIRED = 500.0
MAX_ABS_TEMPERATURE_K = 1e6
MAX_ABS_TINT = 100.0
MAX_COMMENT = 2000
MAX_NAME = 100
# Relative aspect error allowed in an edited crop (the browser rounds pixels).
ASPECT_TOLERANCE = 0.01
# Operations a reviewer may add to an image by hand, each from a box drawn on it: a face the detector missed (turned
# away, masked, in a reflection, in a deep shadow), blurred for privacy or brightened; a red eye the finder missed
# (the box over the pupil). Their op_ids: the kind, "drawn" and a number.
ADDABLE_KINDS = ("blur_face", "brighten_face", "red_eye")
# A face lift drawn with no amount given: half a stop, to be set on the instruction (the plan's lifts are measured).
DRAWN_LIFT_EV = 0.5
# The smallest region a reviewer may blur, in full-resolution pixels either way (a slip of the mouse is smaller).
MIN_DRAWN_PX = 4.0

# What the review app adds to the review database (pipeline.outputs.decisions makes the rest):
# image-level decisions, and an id per decision in the audit trail. Additive, checked on every open.
_CULLING_SQL = """
CREATE TABLE IF NOT EXISTS culling (
    source_path TEXT PRIMARY KEY,
    flag TEXT CHECK (flag IN ('pick', 'reject')),
    stars INTEGER NOT NULL DEFAULT 0 CHECK (stars BETWEEN 0 AND 5),
    label TEXT,
    by TEXT,
    at TEXT
)
"""


class ReviewError(ValueError):
    """A change the instructions cannot take (bad amount, unknown operation); HTTP 422."""


class NotFound(KeyError):
    """No such image (or it has no plan); HTTP 404."""


class Conflict(Exception):
    """The image changed since the client read it; HTTP 409 with the current state."""

    def __init__(self, version: int, doc: dict[str, Any]) -> None:
        super().__init__(f"image changed since it was read (now version {version})")
        self.version = version
        self.doc = doc


class Paused(RuntimeError):
    """Decisions are refused for a while (a re-render is rewriting the instruction files); HTTP 423."""


class StaleDecision(Exception):
    """Some images of a decision changed since the client read them; nothing was written (HTTP 409).

    ``stale`` maps each such image to its current ``(doc, version)``.
    """

    def __init__(self, stale: dict[str, tuple[dict[str, Any], int]]) -> None:
        names = ", ".join(list(stale)[:3]) + (" ..." if len(stale) > 3 else "")
        super().__init__(f"{len(stale)} image(s) changed since they were read ({names}): nothing was saved")
        self.stale = stale


@dataclass(frozen=True)
class Decided:
    """One image after a decision: the document as written, its version, and how to take the change back.

    ``undo`` is an item of a ``POST /api/decisions`` body that restores what
    this decision changed (its version is the new one); posting it back gives
    an ``undo`` that redoes the decision. None when nothing changed.
    """

    source_path: str
    doc: dict[str, Any]
    version: int
    undo: dict[str, Any] | None


@dataclass(frozen=True)
class OpChange:
    """What a reviewer changes on one operation; ``None`` leaves a field as it is."""

    op_id: str
    status: str | None = None
    ev: float | None = None
    box: tuple[float, float, float, float] | None = None
    comment: str | None = None
    temperature_shift_k: float | None = None  # white balance, in kelvin (Lightroom's sign) ...
    mired_shift: float | None = None  # ... or in mired (+ warmer): one of the two
    tint_shift: float | None = None  # white balance
    angle_deg: float | None = None  # straighten
    rotate_deg: float | None = None  # a crop's own turn on top of the straightening
    add: str | None = None  # a kind of :data:`ADDABLE_KINDS`: a new operation (its ``box``), ``op_id`` picked if empty
    remove: bool = False  # take away an operation a reviewer added (the plan's own are rejected instead)


@dataclass
class ImageEntry:
    """One image of the shoot, as the manifest lists it."""

    source_path: str
    content_hash: str
    source_kind: str
    status: str
    error: str | None
    doc_path: Path | None  # None when the image has no plan (failed)
    render_key: str | None = None  # what the exports on disk were made from (manifest)
    preview_path: str | None = None  # the run's small sRGB preview (manifest)
    orientation: int | None = None  # the turn it was developed in (a RAW's: its XMP's where the photographer turned it)


@dataclass
class _Cached:
    stat: tuple[int, int]
    sha: str
    doc: dict[str, Any]


def default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "reviewer"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def doc_bytes(doc: dict[str, Any]) -> bytes:
    """The instructions file's bytes, formatted as ``pipeline.kernel.run`` writes them."""
    return (json.dumps(doc, indent=2, default=str, ensure_ascii=False) + "\n").encode("utf-8")


def clean_reviewer(name: str | None, default: str) -> str:
    name = (name or "").strip()
    if not name:
        return default
    if len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise ReviewError(f"reviewer name must be at most {MAX_NAME} printable characters")
    return name


def parse_change(data: Any) -> OpChange:
    """An :class:`OpChange` from a client's JSON object.

    Raises
    ------
    ReviewError
        On a missing ``op_id``, an unknown status, or a value of the wrong type.
    """
    if not isinstance(data, dict):
        raise ReviewError("each change must be an object")
    unknown = set(data) - {"op_id", "status", "ev", "box", "comment", "temperature_shift_k", "mired_shift",
                           "tint_shift", "angle_deg", "rotate_deg", "add", "remove"}
    if unknown:
        raise ReviewError(f"unknown fields in change: {sorted(unknown)}")
    add, remove = data.get("add"), data.get("remove", False)
    if add is not None and add not in ADDABLE_KINDS:
        raise ReviewError(f"add must be one of {', '.join(ADDABLE_KINDS)}")
    if not isinstance(remove, bool):
        raise ReviewError("remove must be true or false")
    if add is not None and (remove or data.get("box") is None):
        raise ReviewError(f"an added {add} needs its box (and is not removed in the same change)")
    op_id = data.get("op_id", "" if add is not None else None)
    if not isinstance(op_id, str) or not (op_id or add is not None):
        raise ReviewError("op_id is required")
    status = data.get("status")
    if status is not None and status not in REVIEW_STATUSES:
        raise ReviewError(f"status must be one of {', '.join(REVIEW_STATUSES)}")
    ev = data.get("ev")
    if ev is not None:
        if isinstance(ev, bool) or not isinstance(ev, (int, float)) or not math.isfinite(ev):
            raise ReviewError("ev must be a number")
        if abs(ev) > MAX_ABS_EV:
            raise ReviewError(f"ev must be within +-{MAX_ABS_EV:g}")
        ev = round(float(ev), 2)
    box = data.get("box")
    if box is not None:
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)):
            raise ReviewError("box must be [x, y, width, height]")
        box = tuple(round(float(v), 1) for v in box)
    comment = data.get("comment")
    if comment is not None:
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise ReviewError(f"comment must be text of at most {MAX_COMMENT} characters")
    amounts = {name: _number(data, name, limit, nd) for name, limit, nd in (
        ("temperature_shift_k", MAX_ABS_TEMPERATURE_K, 0), ("mired_shift", MAX_ABS_MIRED, 1),
        ("tint_shift", MAX_ABS_TINT, 2), ("angle_deg", MAX_ABS_ANGLE, 2), ("rotate_deg", MAX_ABS_ANGLE, 2))}
    if amounts["temperature_shift_k"] is not None and amounts["mired_shift"] is not None:
        raise ReviewError("give a white balance's shift in kelvin or in mired, not both")
    return OpChange(op_id, status, ev, box, comment, **amounts, add=add, remove=remove)


def _number(data: dict[str, Any], name: str, limit: float, nd: int) -> float | None:
    """``data[name]`` as a finite number within +-``limit``, rounded to ``nd`` decimals (None when absent).

    Raises
    ------
    ReviewError
        If the value is not a number or is out of bounds.
    """
    v = data.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ReviewError(f"{name} must be a number")
    if abs(v) > limit:
        raise ReviewError(f"{name} must be within +-{limit:g}")
    return round(float(v), nd)


def refresh_summary(doc: dict[str, Any]) -> None:
    """Rewrite the one-line summary from the operations a reviewer has not rejected."""
    doc["summary"] = reviewed_summary([
        Operation(op_id=o["op_id"], kind=OperationKind(o["kind"]), params=o["params"], reason=o["reason"],
                  applied_by=AppliedBy(o["applied_by"]), review=o.get("review"))
        for o in doc["operations"]])


def rejudge_doc_crops(doc: dict[str, Any], chart: Any) -> bool:
    """Judge the flags of a document's crops again on the frames the renderer now cuts, as the next run does on
    its records (:func:`~pipeline.planning.rules.crops.rejudge_crop_flags`): the instruction file a reviewer's
    move, resize, turn or rejection writes says at once which faces the crop cuts and what its renditions
    enlarge, not the plan's flags for the plan's box. The verdict follows; the summary is the caller's.

    Returns
    -------
    bool
        Whether the document's operations changed.
    """
    from pipeline.planning.plan import verdict_of
    from pipeline.planning.rules.crops import rejudge_crop_flags

    image = doc["image"]
    record = ImageRecord(source_path=doc["source_path"], content_hash=doc["content_hash"], file_size=0,
                         format=image.get("format") or "", source_kind=image.get("source_kind") or "raster",
                         frame=Frame(width=image["width"], height=image["height"]),
                         faces=[Face(*f["box"], score=f.get("score") or 0.0, landmarks=[])
                                for f in doc.get("faces") or []],
                         operations=[operation_from_doc(o) for o in doc["operations"]])
    written = {op.op_id: (op, o) for op, o in zip(record.operations, doc["operations"])}
    if not rejudge_crop_flags(record, chart):
        return False
    # An operation the judge left alone keeps its document as written; a flag it made (again) is written anew.
    doc["operations"] = [written[op.op_id][1] if written.get(op.op_id, (None,))[0] is op else operation_doc(op)
                         for op in record.operations]
    doc["verdict"] = str(verdict_of(record.operations))
    return True


def drawn_feather(box: tuple[float, ...] | list[float]) -> float:
    """The fall-off of a face lift drawn over ``box``: the plan's own for a face of that size."""
    return round(FEATHER_FRACTION * max(float(box[2]), float(box[3])), 1)


def _inside(root: Path, rel: str) -> Path:
    """``root / rel`` when it stays inside ``root`` (symlinks resolved)."""
    path = (root / rel).resolve()
    if path != root and root not in path.parents:
        raise ReviewError(f"{rel!r} points outside the output folder")
    return path


class EmbeddedCopies:
    """Copies of sources with their XMP packet inside, refreshed behind the decisions in one background thread.

    Jobs for the same copy coalesce (only the latest packet matters) and every
    pass embeds all that are waiting through one exiftool process
    (:func:`pipeline.outputs.xmp.embed_packets`): a 2,000-image batch decision
    costs one exiftool run, not 2,000. A copy that cannot be written is logged
    and left as it was, as the run leaves it.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._pending: dict[Path, tuple[Path, Path, Path]] = {}
        self._busy = False
        self._thread: threading.Thread | None = None

    def add(self, source: Path, packet: Path, dest: Path) -> None:
        """Refresh ``dest`` from ``source`` (or, when the source is gone, from ``dest`` itself) with ``packet``."""
        with self._cv:
            self._pending[dest] = (source, packet, dest)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="postprod-embed", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def flush(self, timeout: float | None = 60.0) -> bool:
        """Wait until nothing is waiting or being written; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _run(self) -> None:
        from pipeline.outputs.xmp import EmbedError, embed_packets

        while True:
            with self._cv:
                if not self._cv.wait_for(lambda: bool(self._pending), timeout=30.0):
                    self._thread = None  # idle: a later add starts another
                    return
                jobs, self._pending, self._busy = list(self._pending.values()), {}, True
            try:
                ready = [(src if src.is_file() else dest, packet, dest) for src, packet, dest in jobs
                         if src.is_file() or dest.is_file()]
                failed = embed_packets(ready) if ready else {}
                failed.update({dest: "neither the source nor an earlier copy is there" for src, _, dest in jobs
                               if not src.is_file() and not dest.is_file()})
            except EmbedError as exc:
                failed = {dest: str(exc) for _, _, dest in jobs}
            except Exception as exc:  # noqa: BLE001 - a background thread: say it, keep serving
                failed = {dest: f"{type(exc).__name__}: {exc}" for _, _, dest in jobs}
            for path, reason in failed.items():
                log.warning("%s: settings not embedded: %s", path, reason)
            with self._cv:
                self._busy = False
                self._cv.notify_all()


class ReviewStore:
    """The review state of one output folder.

    Parameters
    ----------
    out_dir : Path
        A ``postprod process`` output folder (``manifest.parquet``, ``instructions/``).
    shoot_dir : Path, optional
        Where the sources are, when the shoot moved since it was processed;
        by default the folder named in the manifest.

    Raises
    ------
    FileNotFoundError
        If the folder has no manifest, or the shoot folder is not there.
    """

    def __init__(self, out_dir: Path, shoot_dir: Path | None = None) -> None:
        self.out_dir = Path(out_dir).resolve()
        manifest = self.out_dir / MANIFEST_NAME
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} not found: is this a `postprod process` output folder?")
        table = pq.read_table(manifest)
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        if shoot_dir is None:
            shoot = meta.get("postprod.shoot")
            if not shoot:
                try:
                    shoot = json.loads((self.out_dir / SUMMARY_NAME).read_text(encoding="utf-8"))["shoot"]
                except (OSError, ValueError, KeyError):
                    shoot = None
            if not shoot:
                raise FileNotFoundError("the manifest does not name the shoot folder: pass --shoot")
            shoot_dir = Path(shoot)
        self.shoot_dir = Path(shoot_dir).resolve()
        if not self.shoot_dir.is_dir():
            raise FileNotFoundError(f"shoot folder {self.shoot_dir} not found (moved? pass --shoot)")
        self.shoot_name = meta.get("postprod.shoot_id") or self.shoot_dir.name
        self.chart_name = meta.get("postprod.chart")
        self.entries: dict[str, ImageEntry] = {}
        self._manifest_stat = (0, 0)
        self._read_manifest()
        self.db_path = self.out_dir / DB_NAME
        self._lock = threading.RLock()
        self._cache: dict[str, _Cached] = {}
        self._stale: dict[str, tuple[str, str | None, bool | None]] = {}  # sp -> (doc sha, render key, stale)
        self._render_keys: Any = None  # RenderKeys of the run's chart, made on first use
        self._chart: Any = None
        self._paused: str | None = None  # why decisions are refused for now
        self.copies = EmbeddedCopies()
        with closing(self._connect()) as con:  # creates the tables (and fills the decisions of an older database)
            self._migrate(con)

    def _read_manifest(self) -> None:
        """The images of the manifest (again, when a rerun rewrote it)."""
        manifest = self.out_dir / MANIFEST_NAME
        st = manifest.stat()
        table = pq.read_table(manifest)
        names = set(table.column_names)
        optional = [c for c in ("render_key", "preview_path", "orientation") if c in names]
        entries: dict[str, ImageEntry] = {}
        for row in table.select(["source_path", "content_hash", "source_kind", "status", "error",
                                 "duplicate_of", *optional]).to_pylist():
            if row["duplicate_of"]:
                continue  # the original is reviewed; a duplicate has no plan of its own
            sp = row["source_path"]
            if sp.startswith("/") or ".." in sp.split("/"):
                continue  # a manifest written by postprod never has these
            doc_path = self.out_dir / "instructions" / instruction_name(sp)
            entries[sp] = ImageEntry(sp, row["content_hash"], row["source_kind"], row["status"], row["error"],
                                     doc_path if doc_path.is_file() else None, row.get("render_key"),
                                     row.get("preview_path"), row.get("orientation"))
        self.entries = entries
        self._order = sorted(entries)
        self._manifest_stat = (st.st_mtime_ns, st.st_size)

    def pause(self, why: str) -> None:
        """Refuse decisions (:class:`Paused`) until :meth:`resume`: a run is rewriting the instruction files."""
        with self._lock:
            self._paused = why

    def resume(self) -> None:
        with self._lock:
            self._paused = None

    def refresh(self) -> bool:
        """Re-read the manifest if a run rewrote it since (new render keys, new images); True if it did."""
        try:
            st = (self.out_dir / MANIFEST_NAME).stat()
        except OSError:
            return False
        if (st.st_mtime_ns, st.st_size) == self._manifest_stat:
            return False
        with self._lock:
            self._read_manifest()
            self._stale.clear()
            self._render_keys = None
            self._chart = None
        return True

    @staticmethod
    def _migrate(con: sqlite3.Connection) -> None:
        """Add the culling table and the audit's decision ids to a database written without them."""
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute(_CULLING_SQL)
            if "change_id" not in {row[1] for row in con.execute("PRAGMA table_info(audit)")}:
                con.execute("ALTER TABLE audit ADD COLUMN change_id TEXT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    # --- plumbing ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # One connection per call: Flask serves requests on several threads.
        return decisions.connect(self.out_dir)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once: one writer at a time across tabs and processes."""
        with self._lock, decisions.transaction(self.out_dir) as con:
            yield con

    def entry(self, source_path: str) -> ImageEntry:
        try:
            return self.entries[source_path]
        except KeyError:
            raise NotFound(source_path) from None

    def planned(self, source_path: str) -> ImageEntry:
        e = self.entry(source_path)
        if e.doc_path is None:
            raise NotFound(source_path)
        return e

    def source_file(self, source_path: str) -> Path:
        """The source of an image, looked up through the manifest (never a client's path)."""
        return self.shoot_dir / self.entry(source_path).source_path

    def _load(self, entry: ImageEntry) -> _Cached:
        """The document on disk, parsed once per change of the file."""
        assert entry.doc_path is not None
        st = entry.doc_path.stat()
        key = (st.st_mtime_ns, st.st_size)
        cached = self._cache.get(entry.source_path)
        if cached is not None and cached.stat == key:
            return cached
        data = entry.doc_path.read_bytes()
        cached = _Cached(key, hashlib.sha256(data).hexdigest(), json.loads(data))
        self._cache[entry.source_path] = cached
        return cached

    def _write_doc(self, entry: ImageEntry, doc: dict[str, Any]) -> str:
        """Write the JSON and the Camera Raw settings (packet; the embedded copy follows); return the JSON's SHA-256.

        The packet is written at once; the copy of a JPEG, TIFF, PNG or DNG with
        the packet inside is refreshed by :class:`EmbeddedCopies` in the
        background, many images to one exiftool run: exiftool takes most of a
        second to start, and a culling key must not wait for it.
        """
        assert entry.doc_path is not None
        settings = None
        if doc.get("renditions") is not None:
            doc["framings"] = framings(doc)  # an edited or rejected crop changes what the renditions show
            settings = crs_settings(doc)
            doc["xmp_note"] = xmp_note(doc, settings, files_note(self._load(entry).doc))
        data = doc_bytes(doc)
        write_bytes_atomic(entry.doc_path, data)
        _inside(self.out_dir, doc["xmp"])
        if doc.get("xmp_copy"):
            _inside(self.out_dir, doc["xmp_copy"])
        write_xmp(self.out_dir, doc, None, image_decision(doc), embed=False, settings=settings)
        if doc.get("xmp_copy"):
            self.copies.add(self.shoot_dir / entry.source_path, self.out_dir / doc["xmp"], self.out_dir / doc["xmp_copy"])
        self._cache.pop(entry.source_path, None)
        return hashlib.sha256(data).hexdigest()

    def flush_embeds(self, timeout: float | None = 60.0) -> bool:
        """Wait until every embedded copy shows the latest decisions (tests, a server's shutdown)."""
        return self.copies.flush(timeout)

    def _write_parquet(self) -> None:
        """Rebuild ``instructions.parquet`` from every document, keeping the run's metadata."""
        path = self.out_dir / INSTRUCTIONS_NAME
        extra: dict[str, Any] = {}
        if path.is_file():
            for k, v in (pq.read_schema(path).metadata or {}).items():
                key = k.decode()
                if key.startswith("postprod.") and key not in (
                        "postprod.schema_version", "postprod.version", "postprod.written_at", "postprod.table"):
                    extra[key.removeprefix("postprod.")] = v.decode()
        rows: list[dict[str, Any]] = []
        for sp in sorted(self.entries):
            e = self.entries[sp]
            if e.doc_path is not None:
                rows += instruction_rows(self._load(e).doc)
        write_parquet_atomic(to_table(rows, INSTRUCTIONS_SCHEMA, extra), path)

    def _mark_exports(self) -> None:
        """Mark the exports whose image changed since they were rendered, in ``exports.parquet`` and the report.

        Written only when the set of stale images changed.
        """
        path = self.out_dir / EXPORTS_NAME
        if not path.is_file():
            return
        docs: dict[str, dict[str, Any]] = {}
        stale: set[str] = set()
        for sp, e in self.entries.items():
            if e.doc_path is None:
                continue
            doc = self._load(e).doc
            docs[sp] = doc
            if self.stale(sp, doc):
                stale.add(sp)
        table = pq.read_table(path)
        rows = table.to_pylist()
        marked = {r["source_path"] for r in rows if r.get("stale")}
        if "stale" in table.column_names and marked == {r["source_path"] for r in rows} & stale:
            return
        for r in rows:
            r["stale"] = r["source_path"] in stale
            if not r.get("render_key") and r["source_path"] in self.entries:
                r["render_key"] = self.entries[r["source_path"]].render_key
        extra = {k.decode().removeprefix("postprod."): v.decode() for k, v in (table.schema.metadata or {}).items()
                 if k.decode().startswith("postprod.") and k.decode() not in (
                     "postprod.schema_version", "postprod.version", "postprod.written_at", "postprod.table")}
        write_parquet_atomic(to_table(rows, EXPORTS_SCHEMA, extra), path)
        rewrite_report(self.out_dir, docs, stale)

    def _audit(self, con: sqlite3.Connection, at: str, by: str | None, sp: str, op_id: str | None, what: str,
               before: Any, after: Any, version: int, change_id: str | None = None) -> None:
        con.execute(
            "INSERT INTO audit (at, by, source_path, op_id, field, before_json, after_json, version, change_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (at, by, sp, op_id, what, json.dumps(before), json.dumps(after), version, change_id),
        )

    def _sync(self, con: sqlite3.Connection, entry: ImageEntry) -> tuple[dict[str, Any], int]:
        """The document and its version; a document changed outside the store gets a new version.

        Call inside a write transaction.
        """
        cached = self._load(entry)
        sp = entry.source_path
        row = con.execute("SELECT version, doc_sha FROM images WHERE source_path = ?", (sp,)).fetchone()
        if row is None:
            con.execute("INSERT INTO images (source_path, version, doc_sha) VALUES (?, 0, ?)", (sp, cached.sha))
            return cached.doc, 0
        version, sha = row
        if sha == cached.sha:
            return cached.doc, version
        # Re-planned (or edited by hand) since we last wrote it.
        version += 1
        doc = copy.deepcopy(cached.doc)
        at = utc_now()
        changed = self._reapply_decisions(con, sp, doc)
        changed = self._reapply_edits(con, sp, doc, at, version) or changed
        changed = self._restore_culling(con, sp, doc, at, version) or changed
        if changed:
            refresh_summary(doc)
            new_sha = self._write_doc(entry, doc)
            self._write_parquet()
        else:
            new_sha = cached.sha
        self._audit(con, at, None, sp, None, "document", None, "changed outside the review app", version)
        con.execute("UPDATE images SET version = ?, doc_sha = ? WHERE source_path = ?", (version, new_sha, sp))
        return doc, version

    @staticmethod
    def _reapply_decisions(con: sqlite3.Connection, sp: str, doc: dict[str, Any]) -> bool:
        """Put the database's decisions back on a document written without them (the database is the truth)."""
        changed = False
        known = decisions.read(con, sp).get(sp, {})
        for op in doc["operations"]:
            review = known.get(op["op_id"])
            if review is not None and review != op.get("review"):
                if decisions.is_decided(review) or decisions.is_decided(op.get("review")):
                    op["review"] = review
                    changed = True
        return changed

    def _reapply_edits(self, con: sqlite3.Connection, sp: str, doc: dict[str, Any], at: str, version: int) -> bool:
        ops = {o["op_id"]: o for o in doc["operations"]}
        changed = False
        for op_id, param, planned_json, value_json in con.execute(
                "SELECT op_id, param, planned_json, value_json FROM edits WHERE source_path = ?", (sp,)).fetchall():
            planned, value = json.loads(planned_json), json.loads(value_json)
            op = ops.get(op_id)
            current = None if op is None else op["params"].get(param)
            if op is not None and current == value:
                continue
            if op is not None and current == planned:
                op["params"][param] = value
                self._audit(con, at, None, sp, op_id, param, planned, value, version)
                changed = True
                continue
            # The plan now proposes something else: the edit no longer applies.
            con.execute("DELETE FROM edits WHERE source_path = ? AND op_id = ? AND param = ?", (sp, op_id, param))
            self._audit(con, at, None, sp, op_id, f"edit dropped ({param})", value, current, version)
            if op is not None and (op["review"].get("params") or {}).get(param) is not None:
                params = {k: v for k, v in op["review"]["params"].items() if k != param}
                op["review"] = {k: v for k, v in op["review"].items() if k != "params"}
                if params:
                    op["review"]["params"] = params
                changed = True
            if op is not None and op["review"]["status"] != "pending":
                before = op["review"]["status"]
                op["review"] = {**op["review"], "status": "pending", "by": None, "at": None}
                self._audit(con, at, None, sp, op_id, "status", before, "pending", version)
                changed = True
            if op is not None:
                decisions.save(con, sp, op_id, op["review"])
        return changed

    def _restore_culling(self, con: sqlite3.Connection, sp: str, doc: dict[str, Any], at: str, version: int) -> bool:
        """Put the database's culling back into a document a rerun rewrote without it (the database is the record)."""
        row = con.execute("SELECT flag, stars, label, by, at FROM culling WHERE source_path = ?", (sp,)).fetchone()
        if row is None:
            return False
        culling = {"flag": row[0], "stars": row[1], "label": row[2]}
        keywords = (doc.get("review") or {}).get("keywords") or []
        want = review_doc(culling, keywords, row[3], row[4])
        if doc.get("review") == want:
            return False
        self._audit(con, at, None, sp, None, "image review restored", doc.get("review"), want, version)
        doc["review"] = want
        return True

    def _culling(self, con: sqlite3.Connection, sp: str, doc: dict[str, Any]) -> dict[str, Any]:
        row = con.execute("SELECT flag, stars, label FROM culling WHERE source_path = ?", (sp,)).fetchone()
        if row is not None:
            return {"flag": row[0], "stars": row[1], "label": row[2]}
        return culling_from_doc(doc)

    # --- reading ----------------------------------------------------------------

    def culling(self) -> dict[str, dict[str, Any]]:
        """Every image's culling (flag, stars, label), from the database or, where it has none, the document."""
        with closing(self._connect()) as con:
            rows = con.execute("SELECT source_path, flag, stars, label FROM culling").fetchall()
        out = {sp: {"flag": f, "stars": s, "label": lab} for sp, f, s, lab in rows}
        for sp, e in self.entries.items():
            if sp not in out and e.doc_path is not None and sp in self._cache:
                out[sp] = culling_from_doc(self._cache[sp].doc)
        return out

    def culling_of(self, source_path: str, doc: dict[str, Any]) -> dict[str, Any]:
        """One image's culling (flag, stars, label)."""
        with closing(self._connect()) as con:
            return self._culling(con, source_path, doc)

    def run_chart(self) -> Any:
        """The resolved chart the last run rendered with (None when it cannot be known)."""
        if self._chart is None:
            self._chart = run_chart(self.out_dir) or False
        return self._chart or None

    def _keys(self) -> Any:
        """RenderKeys of the chart the run rendered with (None when it cannot be known)."""
        if self._render_keys is None:
            from pipeline.imaging.render import RenderKeys

            chart = self.run_chart()
            self._render_keys = RenderKeys(chart.chart) if chart is not None else False
        return self._render_keys or None

    def stale(self, source_path: str, doc: dict[str, Any]) -> bool | None:
        """Whether the image's exports were made from other decisions than its document's (None: no exports,
        or the run's chart cannot be read)."""
        entry = self.planned(source_path)
        cached = self._cache.get(source_path)
        sha = cached.sha if cached is not None and cached.doc is doc else None
        hit = self._stale.get(source_path)
        if sha is not None and hit is not None and hit[0] == sha and hit[1] == entry.render_key:
            return hit[2]
        result: bool | None = None
        keys = self._keys()
        if doc.get("exports") and entry.render_key and keys is not None:
            from pipeline.outputs.instructions import operation_from_doc

            ops = [operation_from_doc(o) for o in doc["operations"]]
            result = keys.key(entry.content_hash, ops) != entry.render_key
        if sha is not None:
            self._stale[source_path] = (sha, entry.render_key, result)
        return result

    def stale_images(self) -> list[str]:
        """The images whose exports are stale, in shoot order."""
        out = []
        for e, doc, _ in self.documents():
            if doc is not None and self.stale(e.source_path, doc):
                out.append(e.source_path)
        return out


    def get(self, source_path: str) -> tuple[dict[str, Any], int]:
        """An image's instructions document and its version.

        Raises
        ------
        NotFound
            If the image is not in the manifest or has no plan.
        """
        entry = self.planned(source_path)
        with self._transaction() as con:
            return self._sync(con, entry)

    def peek(self, source_path: str) -> dict[str, Any]:
        """An image's document as its file stands, without the database (for pictures: thumbnails, previews).

        Raises
        ------
        NotFound
            If the image is not in the manifest or has no plan.
        """
        return self._load(self.planned(source_path)).doc

    def documents(self) -> list[tuple[ImageEntry, dict[str, Any] | None, int]]:
        """Every image in shoot order with its document (None when it has no plan) and version."""
        out = []
        self.refresh()
        with self._transaction() as con:
            known = {sp: (v, sha) for sp, v, sha in con.execute("SELECT source_path, version, doc_sha FROM images")}
            for sp in self._order:
                e = self.entries[sp]
                if e.doc_path is None:
                    out.append((e, None, 0))
                    continue
                cached, row = self._load(e), known.get(sp)
                if row is not None and row[1] == cached.sha:  # unchanged since the store last saw it
                    out.append((e, cached.doc, row[0]))
                else:
                    doc, version = self._sync(con, e)
                    out.append((e, doc, version))
        return out

    def doc_sha(self, source_path: str, doc: dict[str, Any]) -> str | None:
        """SHA-256 of the file ``doc`` was read from, when it is the store's cached copy (else None)."""
        cached = self._cache.get(source_path)
        return cached.sha if cached is not None and cached.doc is doc else None

    def warm(self) -> None:
        """Read every document and work out what is stale, so the first gallery does not wait for it."""
        for e, doc, _ in self.documents():
            if doc is not None:
                self.stale(e.source_path, doc)

    def planned_values(self, source_path: str) -> dict[str, dict[str, Any]]:
        """The plan's own values of the parameters a reviewer changed, by op_id and parameter (what "Plan's values"
        in the review takes an operation back to)."""
        self.entry(source_path)
        with closing(self._connect()) as con:
            rows = con.execute("SELECT op_id, param, planned_json FROM edits WHERE source_path = ?",
                               (source_path,)).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for op_id, param, planned in rows:
            out.setdefault(op_id, {})[param] = json.loads(planned)
        return out

    def history(self, source_path: str) -> list[dict[str, Any]]:
        """The audit trail of an image, oldest first."""
        self.entry(source_path)
        with closing(self._connect()) as con:
            rows = con.execute(
                "SELECT at, by, op_id, field, before_json, after_json, version, change_id FROM audit"
                " WHERE source_path = ? ORDER BY id", (source_path,)).fetchall()
        return [{"at": at, "by": by, "op_id": op, "field": f, "before": json.loads(b) if b else None,
                 "after": json.loads(a) if a else None, "version": v, "change_id": c}
                for at, by, op, f, b, a, v, c in rows]

    # --- changing ---------------------------------------------------------------

    def update(self, source_path: str, version: int, changes: list[OpChange], reviewer: str) -> tuple[dict[str, Any], int]:
        """Apply a reviewer's changes to one image and write them back everywhere.

        Parameters
        ----------
        source_path : str
            The image, as the manifest names it.
        version : int
            The version the reviewer's view was made from.
        changes : list of OpChange
            Applied in order, all or none.
        reviewer : str
            Who; recorded with the time (UTC) on each changed operation.

        Returns
        -------
        (doc, version)
            The document as written and its new version (unchanged when the
            changes changed nothing).

        Raises
        ------
        NotFound
            If the image is unknown or has no plan.
        Conflict
            If the image changed since ``version``.
        ReviewError
            If a change does not fit its operation (unknown op_id, an amount
            on an operation that has none, a crop of another aspect or one
            that leaves the image).
        """
        try:
            (done,) = self.decide([Decision(source_path, version, changes=tuple(changes))], reviewer)
        except StaleDecision as exc:
            doc, current = exc.stale[source_path]
            raise Conflict(current, doc) from None
        return done.doc, done.version

    def decide(self, wanted: list[Decision], reviewer: str) -> list[Decided]:
        """Apply one reviewer's decision across images, all or none, and write it back everywhere.

        Each image's instructions JSON and XMP sidecar are written, then
        ``instructions.parquet`` once (only when an instruction changed: culling
        alone leaves it alone) and the exports' stale marks. One transaction:
        another tab or server waits, and sees all of it or none.

        Parameters
        ----------
        wanted : list of Decision
            One per image; each carries the version its view was made from.
        reviewer : str
            Recorded with the time (UTC) on everything changed.

        Returns
        -------
        list of Decided
            In the order given; an image the decision did not change keeps its version.

        Raises
        ------
        NotFound
            If an image is unknown or has no plan.
        StaleDecision
            If any image changed since its version; nothing is written.
        Paused
            While a re-render rewrites the instruction files.
        ReviewError
            If a change does not fit (see :meth:`update`), naming the image.
        """
        entries = [self.planned(d.source_path) for d in wanted]
        change_id = uuid.uuid4().hex[:16]
        if self._paused:
            raise Paused(f"{self._paused}: decisions are paused until it ends")
        with self._transaction() as con:
            current: list[tuple[dict[str, Any], int]] = [self._sync(con, e) for e in entries]
            stale = {d.source_path: cur for d, cur in zip(wanted, current) if cur[1] != d.version}
            if stale:
                raise StaleDecision(stale)
            at = utc_now()
            results: list[Decided] = []
            ops_changed = False
            for d, entry, (doc, version) in zip(wanted, entries, current):
                new = copy.deepcopy(doc)
                try:
                    audit, undo = self._apply_decision(con, d, new, reviewer, at)
                except ReviewError as exc:
                    raise ReviewError(f"{d.source_path}: {exc}") from None
                if not audit:
                    results.append(Decided(d.source_path, doc, version, None))
                    continue
                crops = {o["op_id"] for o in new["operations"] if o["kind"] == "crop"}
                if any(op_id in crops for op_id, *_ in audit) and (chart := self.run_chart()) is not None:
                    rejudge_doc_crops(new, chart.chart)  # after the undo's body: its flags are the system's
                if any(op_id is not None for op_id, *_ in audit):
                    refresh_summary(new)
                    ops_changed = True
                version += 1
                for op_id, what, before, after in audit:
                    self._audit(con, at, reviewer, d.source_path, op_id, what, before, after, version, change_id)
                reviewed = {op["op_id"]: op.get("review") for op in new["operations"]}
                for op_id in dict.fromkeys(op_id for op_id, *_ in audit if op_id is not None):
                    if op_id in reviewed:  # (a removed one's decision went with it)
                        decisions.save(con, d.source_path, op_id, reviewed[op_id])
                sha = self._write_doc(entry, new)
                con.execute("UPDATE images SET version = ?, doc_sha = ? WHERE source_path = ?",
                            (version, sha, d.source_path))
                results.append(Decided(d.source_path, new, version, {"source_path": d.source_path,
                                                                       "version": version, **undo}))
            if ops_changed:
                self._write_parquet()
                self._mark_exports()
        return results

    def _apply_decision(self, con: sqlite3.Connection, d: Decision, doc: dict[str, Any], reviewer: str,
                        at: str) -> tuple[list[tuple[str | None, str, Any, Any]], dict[str, Any]]:
        """Apply one image's decision to ``doc`` (a copy); return the audit rows and the undo item's body."""
        before_doc = copy.deepcopy(doc)
        before_culling = self._culling(con, d.source_path, doc)
        changes = list(d.changes) + self._expand(doc, d)
        audit: list[tuple[str | None, str, Any, Any]] = []
        boxes: set[str] = set()
        for change in changes:
            applied = self._apply(con, d.source_path, doc, change, reviewer, at)
            audit += applied
            # A box a reviewer drew must fit as drawn; one turned the other way round is shrunk to fit, as the plan's
            # are (the straightened frame's corners take more of a tall box than the picture's edges show).
            if change.box is not None and not any(op_id == change.op_id and what == "aspect_turned"
                                                  for op_id, what, *_ in applied):
                boxes.add(change.op_id)
        audit += self._align_crops(con, d.source_path, doc, boxes, reviewer, at)
        if d.culling:
            after = {**before_culling, **d.culling}
            for name in CULLING_FIELDS:
                if after[name] != before_culling[name]:
                    audit.append((None, name, before_culling[name], after[name]))
            if any(op_id is None for op_id, *_ in audit):
                con.execute("INSERT OR REPLACE INTO culling (source_path, flag, stars, label, by, at)"
                            " VALUES (?, ?, ?, ?, ?, ?)",
                            (d.source_path, after["flag"], after["stars"], after["label"], reviewer, at))
                keywords = (doc.get("review") or {}).get("keywords") or []
                doc["review"] = review_doc(after, keywords, reviewer, at)
        return audit, self._undo_body(before_doc, doc, before_culling, d.culling)

    @staticmethod
    def _expand(doc: dict[str, Any], d: Decision) -> list[OpChange]:
        """The single changes a decision's shorthands stand for."""
        out: list[OpChange] = []
        if d.all_status is not None:
            for o in doc["operations"]:
                status = o["review"]["status"]
                if d.all_status in ("accepted", "rejected") and d.all_proposals:
                    # The corrections proposed to a person, after a look at them ("Accept proposals").
                    wanted = status == "pending" and bool(o["params"].get(RENDER_ON_ACCEPT))
                elif d.all_status in ("accepted", "rejected"):
                    # Automatic corrections only: a flag or a retoucher's task (a proposal too) is answered one by one.
                    wanted = status == "pending" and o["applied_by"] == "renderer" and o["kind"] not in ("flag", "reject")
                elif d.all_status == "done":
                    wanted = status != "rejected"
                else:
                    wanted = status != "pending"
                if wanted:
                    out.append(OpChange(o["op_id"], status=d.all_status))
        if d.amount is not None:
            kind, ev = d.amount
            matching = [o for o in doc["operations"] if o["kind"] == kind]
            if not matching:
                raise ReviewError(f"it has no {kind} instruction")
            out += [OpChange(o["op_id"], ev=ev) for o in matching]
        return out

    @staticmethod
    def _undo_body(before: dict[str, Any], after: dict[str, Any], culling: dict[str, Any],
                   asked: Any) -> dict[str, Any]:
        """The changes that take ``after`` back to ``before``: per changed operation its former status,
        comment and every parameter a reviewer may set; an added operation removed, a removed one added again;
        the former culling fields."""
        body: dict[str, Any] = {}
        old_ops = {o["op_id"]: o for o in before["operations"]}
        changes = []
        for op in after["operations"]:
            old = old_ops.get(op["op_id"])
            if old is None:  # added by this decision: removed
                changes.append({"op_id": op["op_id"], "remove": True})
                continue
            if old["params"] == op["params"] and old["review"] == op["review"]:
                continue
            change: dict[str, Any] = {"op_id": op["op_id"], "status": old["review"]["status"]}
            if (old["review"].get("comment") or None) != (op["review"].get("comment") or None):
                change["comment"] = old["review"].get("comment") or ""
            for param, name in (("ev", "ev"), ("box", "box"), ("temperature_shift_k", "temperature_shift_k"),
                                ("tint_shift", "tint_shift"), ("rotate_deg", "rotate_deg")):
                if old["params"].get(param) != op["params"].get(param):
                    change[name] = old["params"].get(param) if param != "rotate_deg" else old["params"].get(param, 0.0)
            if op["kind"] == "straighten" and old["params"].get("angle_deg") != op["params"].get("angle_deg"):
                change["angle_deg"] = old["params"]["angle_deg"]
            changes.append(change)
        now = {op["op_id"] for op in after["operations"]}
        for op in before["operations"]:  # a reviewer's addition removed: added again, as it was
            if op["op_id"] not in now and (op.get("review") or {}).get("added"):
                change = {"op_id": op["op_id"], "add": op["kind"], "box": op["params"]["box"],
                          "status": op["review"]["status"]}
                if "ev" in op["params"]:
                    change["ev"] = op["params"]["ev"]
                if op["review"].get("comment"):
                    change["comment"] = op["review"]["comment"]
                changes.append(change)
        if changes:
            body["changes"] = changes
        if asked:
            body["image"] = {name: culling[name] for name in asked}
        return body

    def _apply(self, con: sqlite3.Connection, sp: str, doc: dict[str, Any], change: OpChange, reviewer: str,
               at: str) -> list[tuple[str | None, str, Any, Any]]:
        added: list[tuple[str | None, str, Any, Any]] = []
        if change.add is not None:
            change, added = self._add(con, sp, doc, change, reviewer, at)
        op = next((o for o in doc["operations"] if o["op_id"] == change.op_id), None)
        if op is None:
            raise ReviewError(f"no operation {change.op_id!r} in {sp}")
        if change.remove:
            return self._remove(con, sp, doc, op)
        review = dict(op.get("review") or {"status": "pending", "by": None, "at": None, "comment": None})
        p = op["params"]
        out: list[tuple[str | None, str, Any, Any]] = []

        def set_param(param: str, value: Any) -> None:
            before = p.get(param)
            if before == value:
                return
            self._remember_edit(con, sp, change.op_id, param, before, value)
            self._note_param(con, sp, change.op_id, review, param, value)
            out.append((change.op_id, param, before, value))
            if value is None:
                p.pop(param, None)
            else:
                p[param] = value

        n_before = len(out)
        if change.ev is not None:
            if op["kind"] not in EV_KINDS:
                raise ReviewError(f"{change.op_id} ({op['kind']}) has no amount in EV")
            if op["kind"] == "lift_shadows" and change.ev < 0:
                raise ReviewError(f"{change.op_id}: a shadow lift is 0 EV (none) or more, got {change.ev:+g}")
            set_param("ev", change.ev)
        if change.box is not None:
            if op["kind"] in ADDABLE_KINDS:
                self._check_drawn(doc, change.box)
                if op["kind"] == "brighten_face":  # the lift's fall-off follows its face
                    set_param("feather_px", drawn_feather(change.box))
                if op["kind"] == "red_eye":
                    if not op["params"].get("drawn"):
                        raise ReviewError(f"{change.op_id}: the finder's red eyes are not redrawn (reject it, then "
                                          "mark each eye)")
                    x, y, w, h = change.box
                    set_param("eyes", [[round(x + w / 2, 1), round(y + h / 2, 1), round(max(w, h) / 2, 1)]])
            elif op["kind"] != "crop":
                raise ReviewError(f"{change.op_id} ({op['kind']}) is not a crop")
            else:
                turned = self._check_crop_shape(op, change.box)  # whether it fits is checked at its final angle
                set_param("aspect_turned", True if turned else None)  # a crop that follows the picture, turned
            set_param("box", list(change.box))
        if change.temperature_shift_k is not None or change.mired_shift is not None or change.tint_shift is not None:
            if op["kind"] != "white_balance":
                raise ReviewError(f"{change.op_id} ({op['kind']}) has no temperature or tint")
            for param, value in self._white_balance(con, sp, doc, op, change).items():
                set_param(param, value)
        if change.angle_deg is not None:
            if op["kind"] != "straighten":
                raise ReviewError(f"{change.op_id} ({op['kind']}) has no straightening angle"
                                  + (" (turn a crop with rotate_deg)" if op["kind"] == "crop" else ""))
            set_param("angle_deg", change.angle_deg)
        if change.rotate_deg is not None:
            if op["kind"] != "crop":
                raise ReviewError(f"{change.op_id} ({op['kind']}) is not a crop")
            planned = self._planned(con, sp, change.op_id, "rotate_deg", p.get("rotate_deg"))
            # No turn where the plan had none: the parameter goes, and the edit with it.
            set_param("rotate_deg", None if change.rotate_deg == 0 and planned is None else change.rotate_deg)
        amount_changed = len(out) > n_before
        status = change.status
        if status is None and amount_changed and review["status"] == "pending":
            status = "accepted"  # changing the amount is accepting the changed amount
        if status is not None and status != review["status"]:
            out.append((change.op_id, "status", review["status"], status))
            review["status"] = status
        if change.comment is not None:
            comment = change.comment.strip() or None
            if comment != review.get("comment"):
                out.append((change.op_id, "comment", review.get("comment"), comment))
                review["comment"] = comment
        if out:
            if review["status"] == "pending" and not review.get("comment"):
                review["by"], review["at"] = None, None  # back to an untouched plan
            else:
                review["by"], review["at"] = reviewer, at
            op["review"] = review
        return added + out

    def _add(self, con: sqlite3.Connection, sp: str, doc: dict[str, Any], change: OpChange, reviewer: str,
             at: str) -> tuple[OpChange, list[tuple[str | None, str, Any, Any]]]:
        """Put a reviewer's new operation (``change.add``, at ``change.box``) into ``doc``, accepted, marked
        ``added`` in its review so that a re-plan makes it again; return the change left to apply to it (its
        status or comment: the box is taken) and the audit row.

        Its op_id is the one asked for, when it is free and of the kind's drawn ones (an undone removal made
        again), else the next free ``<kind>-drawn-<n>``.
        """
        assert change.add is not None and change.box is not None
        kind, box = change.add, list(change.box)
        self._check_drawn(doc, change.box)
        prefix = f"{kind}-drawn-"
        taken = {o["op_id"] for o in doc["operations"]} | {
            op for (op,) in con.execute("SELECT op_id FROM decisions WHERE source_path = ?", (sp,))}
        op_id = change.op_id
        if op_id in taken or not (op_id.startswith(prefix) and op_id[len(prefix):].isdigit()):
            op_id = prefix + str(next(n for n in range(1, len(taken) + 2) if f"{prefix}{n}" not in taken))
        if kind == "brighten_face":
            ev = DRAWN_LIFT_EV if change.ev is None else change.ev
            if ev <= 0:
                raise ReviewError(f"a face lift brightens: give it more than 0 EV (got {ev:+g})")
            params = {"box": box, "ev": ev, "feather_px": drawn_feather(box), "drawn": True}
            reason = f"a face {reviewer} marked in the review to brighten (the amount is theirs to set)"
        elif kind == "red_eye":  # the pupil: the disc in the box drawn over it
            x, y, w, h = box
            params = {"box": box, "eyes": [[round(x + w / 2, 1), round(y + h / 2, 1), round(max(w, h) / 2, 1)]],
                      "drawn": True}
            reason = f"a red eye {reviewer} marked in the review: the red taken out of the pupil"
        else:
            params = {"box": box, "drawn": True}
            reason = f"blurred for privacy: a face {reviewer} marked in the review"
        review = {"status": "accepted", "by": reviewer, "at": at, "comment": None, "params": dict(params),
                  "added": {"kind": kind, "reason": reason}}
        op = {"op_id": op_id, "kind": kind, "params": params, "reason": reason, "measured": None, "target": None,
              "confidence": 1.0, "applied_by": "renderer", "review": review}
        ops = doc["operations"]
        after = max((k + 1 for k, o in enumerate(ops) if o["kind"] == kind), default=None)
        if after is None:  # before the checks, flags and crops (the plan's order: corrections first)
            after = next((k for k, o in enumerate(ops) if o["kind"] in ("crop", "flag", "reject")), len(ops))
        ops.insert(after, op)
        for param, value in params.items():
            self._remember_edit(con, sp, op_id, param, None, value)
        return OpChange(op_id, status=change.status, comment=change.comment), [(op_id, "added", None, params)]

    def _remove(self, con: sqlite3.Connection, sp: str, doc: dict[str, Any],
                op: dict[str, Any]) -> list[tuple[str | None, str, Any, Any]]:
        """Take a reviewer's added operation out of ``doc`` and out of the database's decisions and edits."""
        if op["kind"] not in ADDABLE_KINDS or not (op.get("review") or {}).get("added"):
            raise ReviewError(f"{op['op_id']} ({op['kind']}) was not drawn by a reviewer: reject it instead")
        doc["operations"].remove(op)
        con.execute("DELETE FROM decisions WHERE source_path = ? AND op_id = ?", (sp, op["op_id"]))
        con.execute("DELETE FROM edits WHERE source_path = ? AND op_id = ?", (sp, op["op_id"]))
        return [(op["op_id"], "removed", {"kind": op["kind"], **op["params"], "status": op["review"]["status"]},
                 None)]

    @staticmethod
    def _check_drawn(doc: dict[str, Any], box: tuple[float, float, float, float]) -> None:
        """A region drawn on the image: at least :data:`MIN_DRAWN_PX` either way, no larger than the image and
        on it (a head at the frame's edge may reach beyond it)."""
        x, y, w, h = box
        W, H = float(doc["image"]["width"]), float(doc["image"]["height"])
        if w < MIN_DRAWN_PX or h < MIN_DRAWN_PX:
            raise ReviewError(f"a drawn region must be at least {MIN_DRAWN_PX:g} pixels either way (got {w:g}x{h:g})")
        if w > W or h > H:
            raise ReviewError(f"a drawn region must fit in the {W:.0f}x{H:.0f} image (got {w:g}x{h:g})")
        if x >= W or y >= H or x + w <= 0 or y + h <= 0:
            raise ReviewError(f"the region {w:g}x{h:g} at ({x:g}, {y:g}) lies off the {W:.0f}x{H:.0f} image")

    @staticmethod
    def _planned(con: sqlite3.Connection, sp: str, op_id: str, param: str, current: Any) -> Any:
        """What the plan proposed for a parameter (the current value when no reviewer changed it)."""
        row = con.execute("SELECT planned_json FROM edits WHERE source_path = ? AND op_id = ? AND param = ?",
                          (sp, op_id, param)).fetchone()
        return json.loads(row[0]) if row else current

    def _white_balance(self, con: sqlite3.Connection, sp: str, doc: dict[str, Any], op: dict[str, Any],
                       change: OpChange) -> dict[str, Any]:
        """The white-balance parameters for a changed temperature (in kelvin or mired) and/or tint (the plan's own
        when back to them)."""
        p = op["params"]
        params = ("gains", "mired_shift", "temperature_shift_k", "tint_shift") + (
            ("target_mired",) if "target_mired" in p else ())
        planned = {k: self._planned(con, sp, change.op_id, k, p.get(k)) for k in params}
        tint = change.tint_shift if change.tint_shift is not None else p["tint_shift"]
        if change.mired_shift is not None:
            back = change.mired_shift == planned["mired_shift"]
        else:
            temperature = change.temperature_shift_k if change.temperature_shift_k is not None else p["temperature_shift_k"]
            back = temperature == planned["temperature_shift_k"]
        if back and tint == planned["tint_shift"]:
            return planned
        m = doc.get("measurements") or {}
        if m.get("wb_temperature_shift_k") is None or m.get("wb_cast_b") is None:
            raise ReviewError("the image has no white-balance measurement to shift from")
        try:
            chosen = reviewed_params(m, p, float(tint), mired_shift=change.mired_shift,
                                     temperature_shift_k=None if change.mired_shift is not None else temperature)
        except ValueError as exc:
            raise ReviewError(str(exc)) from None
        return {k: chosen[k] for k in params}

    def _align_crops(self, con: sqlite3.Connection, sp: str, doc: dict[str, Any], explicit: set[str], reviewer: str,
                     at: str) -> list[tuple[str | None, str, Any, Any]]:
        """Keep each crop's ``angle_deg`` (the turn of its box) at the straightening the renderer applies (a proposed
        one once accepted) plus the crop's own ``rotate_deg``; a box that no longer fits is shrunk about its centre, one
        a reviewer just drew must fit as drawn (a crop padded beyond the frame fits as it is while unturned)."""
        ops = doc["operations"]
        applied = sum(float(o["params"]["angle_deg"]) for o in ops  # a proposed turn once accepted too
                      if o["kind"] == "straighten" and renderer_applies(o["applied_by"], o["params"], o["review"]))
        W, H = float(doc["image"]["width"]), float(doc["image"]["height"])
        out: list[tuple[str | None, str, Any, Any]] = []
        for op in ops:
            if op["kind"] != "crop":
                continue
            p = op["params"]
            angle = round(applied + float(p.get("rotate_deg") or 0.0), 2)
            box = tuple(float(v) for v in p["box"])
            changed: list[tuple[str, Any, Any]] = []
            if float(p.get("angle_deg") or 0.0) != angle:
                changed.append(("angle_deg", p.get("angle_deg"), angle))
            # A packshot's crop padded beyond the frame (its pad_rgb) reaches past it on purpose, unturned.
            padded = bool(p.get("pad_rgb")) and not angle
            if not padded and not fits(box, angle, W, H, eps=1.0):
                if op["op_id"] in explicit:
                    raise ReviewError(f"crop turned by {angle:g} deg leaves the {W:.0f}x{H:.0f} image")
                smaller = [round(v, 1) for v in shrink_to_fit(box, angle, W, H)]
                changed.append(("box", p["box"], smaller))
            if not changed:
                continue
            review = dict(op["review"])
            for param, before, value in changed:
                self._remember_edit(con, sp, op["op_id"], param, before, value)
                self._note_param(con, sp, op["op_id"], review, param, value)
                p[param] = value
                out.append((op["op_id"], param, before, value))
            op["review"] = review
        return out

    @staticmethod
    def _note_param(con: sqlite3.Connection, sp: str, op_id: str, review: dict[str, Any], param: str,
                    value: Any) -> None:
        """Record an edited parameter in the review, where a rerun of `postprod process` finds it."""
        edited = con.execute("SELECT 1 FROM edits WHERE source_path = ? AND op_id = ? AND param = ?",
                             (sp, op_id, param)).fetchone()
        params = dict(review.get("params") or {})
        if edited:
            params[param] = value
        else:  # back to the planned value
            params.pop(param, None)
        if params:
            review["params"] = params
        else:
            review.pop("params", None)

    def _remember_edit(self, con: sqlite3.Connection, sp: str, op_id: str, param: str, before: Any, value: Any) -> None:
        row = con.execute("SELECT planned_json FROM edits WHERE source_path = ? AND op_id = ? AND param = ?",
                          (sp, op_id, param)).fetchone()
        planned = json.loads(row[0]) if row else before
        if planned == value:  # back to what the plan proposed
            con.execute("DELETE FROM edits WHERE source_path = ? AND op_id = ? AND param = ?", (sp, op_id, param))
            return
        con.execute("INSERT OR REPLACE INTO edits (source_path, op_id, param, planned_json, value_json)"
                    " VALUES (?, ?, ?, ?, ?)", (sp, op_id, param, json.dumps(planned), json.dumps(value)))

    @staticmethod
    def _check_crop_shape(op: dict[str, Any], box: tuple[float, float, float, float]) -> bool:
        """Check a crop's new ``box`` against its aspect; return whether the box is the aspect turned (a 3:2 crop's
        2:3 box).

        A crop the chart lets follow the picture (``orientation: source`` in its params) may be turned either way by a
        reviewer: an upright picture's 3:2 crop, turned to 2:3 by the plan, back to a 3:2 strip, or a landscape
        picture's to 2:3. Any other crop keeps the orientation the plan gave it (a client's 4:5 stays upright).
        """
        x, y, w, h = box
        if w <= 0 or h <= 0:
            raise ReviewError("crop width and height must be positive")
        p = op["params"]
        want = parse_aspect(p["aspect"])
        turned = bool(p.get("aspect_turned"))  # to the picture's orientation (a chart's orientation: source)
        ratio = w / h
        if p.get("orientation") == "source" and want != 1.0:
            turned = abs(math.log(ratio * want)) < abs(math.log(ratio / want))  # the nearer of the two orientations
        if abs(ratio / (1.0 / want if turned else want) - 1) > ASPECT_TOLERANCE:
            raise ReviewError(f"crop must keep its {p['aspect']} aspect{', turned' if turned else ''} "
                              f"(got {ratio:.3f})")
        return turned
