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
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.imaging.geometry import fits, parse_aspect
from pipeline.kernel.files import write_bytes_atomic
from pipeline.kernel.records import AppliedBy, Operation, OperationKind
from pipeline.kernel.run import INSTRUCTIONS_NAME, MANIFEST_NAME, SUMMARY_NAME
from pipeline.kernel.schema import to_table, write_parquet_atomic
from pipeline.outputs import decisions
from pipeline.outputs.decisions import DB_NAME
from pipeline.outputs.instructions import (
    INSTRUCTIONS_SCHEMA,
    instruction_name,
    instruction_rows,
    summary_line,
)  # fmt: skip
from pipeline.outputs.xmp import (  # noqa: F401 - image_decision: re-exported for callers
    crs_settings,
    framings,
    image_decision,
    write_xmp,
)

log = logging.getLogger(__name__)

REVIEW_STATUSES = ("pending", "accepted", "rejected", "done")
# Kinds whose amount a reviewer may change, and the bounds of an amount.
EV_KINDS = ("exposure", "brighten_face")
MAX_ABS_EV = 5.0
MAX_COMMENT = 2000
MAX_NAME = 100
# Relative aspect error allowed in an edited crop (the browser rounds pixels).
ASPECT_TOLERANCE = 0.01

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


@dataclass(frozen=True)
class OpChange:
    """What a reviewer changes on one operation; ``None`` leaves a field as it is."""

    op_id: str
    status: str | None = None
    ev: float | None = None
    box: tuple[float, float, float, float] | None = None
    comment: str | None = None


@dataclass
class ImageEntry:
    """One image of the shoot, as the manifest lists it."""

    source_path: str
    content_hash: str
    source_kind: str
    status: str
    error: str | None
    doc_path: Path | None  # None when the image has no plan (failed)


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
    unknown = set(data) - {"op_id", "status", "ev", "box", "comment"}
    if unknown:
        raise ReviewError(f"unknown fields in change: {sorted(unknown)}")
    op_id = data.get("op_id")
    if not isinstance(op_id, str) or not op_id:
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
    return OpChange(op_id, status, ev, box, comment)


def refresh_summary(doc: dict[str, Any]) -> None:
    """Rewrite the one-line summary from the operations a reviewer has not rejected."""
    ops = []
    for o in doc["operations"]:
        if (o.get("review") or {}).get("status") == "rejected":
            continue
        ops.append(Operation(op_id=o["op_id"], kind=OperationKind(o["kind"]), params=o["params"], reason=o["reason"],
                             applied_by=AppliedBy(o["applied_by"])))
    faces = sum(op.kind is OperationKind.BRIGHTEN_FACE for op in ops)
    doc["summary"] = summary_line(ops, faces)


def _inside(root: Path, rel: str) -> Path:
    """``root / rel`` when it stays inside ``root`` (symlinks resolved)."""
    path = (root / rel).resolve()
    if path != root and root not in path.parents:
        raise ReviewError(f"{rel!r} points outside the output folder")
    return path


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
        for row in table.select(["source_path", "content_hash", "source_kind", "status", "error",
                                 "duplicate_of"]).to_pylist():
            if row["duplicate_of"]:
                continue  # the original is reviewed; a duplicate has no plan of its own
            sp = row["source_path"]
            if sp.startswith("/") or ".." in sp.split("/"):
                continue  # a manifest written by postprod never has these
            doc_path = self.out_dir / "instructions" / instruction_name(sp)
            self.entries[sp] = ImageEntry(sp, row["content_hash"], row["source_kind"], row["status"], row["error"],
                                          doc_path if doc_path.is_file() else None)
        self.db_path = self.out_dir / DB_NAME
        self._lock = threading.RLock()
        self._cache: dict[str, _Cached] = {}
        with closing(self._connect()):
            pass  # creates the tables (and fills the decisions of a database from before they were kept)

    # --- plumbing ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # One connection per call: Flask serves requests on several threads.
        return decisions.connect(self.out_dir)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once: one writer at a time across tabs and processes."""
        with self._lock, closing(self._connect()) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

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
        """Write the JSON and the Camera Raw settings (packet, and the embedded copy); return the JSON's SHA-256."""
        assert entry.doc_path is not None
        settings = None
        if doc.get("renditions") is not None:
            doc["framings"] = framings(doc)  # an edited or rejected crop changes what the renditions show
            settings = crs_settings(doc)
        data = doc_bytes(doc)
        write_bytes_atomic(entry.doc_path, data)
        _inside(self.out_dir, doc["xmp"])
        if doc.get("xmp_copy"):
            _inside(self.out_dir, doc["xmp_copy"])
        failed = write_xmp(self.out_dir, doc, self.shoot_dir / entry.source_path, image_decision(doc),
                           settings=settings)
        for path, reason in failed.items():
            log.warning("%s: settings not embedded: %s", path, reason)
        self._cache.pop(entry.source_path, None)
        return hashlib.sha256(data).hexdigest()

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

    def _audit(self, con: sqlite3.Connection, at: str, by: str | None, sp: str, op_id: str | None, what: str,
               before: Any, after: Any, version: int) -> None:
        con.execute(
            "INSERT INTO audit (at, by, source_path, op_id, field, before_json, after_json, version)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (at, by, sp, op_id, what, json.dumps(before), json.dumps(after), version),
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

    # --- reading ----------------------------------------------------------------

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

    def documents(self) -> list[tuple[ImageEntry, dict[str, Any] | None, int]]:
        """Every image in shoot order with its document (None when it has no plan) and version."""
        out = []
        with self._transaction() as con:
            for sp in sorted(self.entries):
                e = self.entries[sp]
                if e.doc_path is None:
                    out.append((e, None, 0))
                else:
                    doc, version = self._sync(con, e)
                    out.append((e, doc, version))
        return out

    def history(self, source_path: str) -> list[dict[str, Any]]:
        """The audit trail of an image, oldest first."""
        self.entry(source_path)
        with closing(self._connect()) as con:
            rows = con.execute(
                "SELECT at, by, op_id, field, before_json, after_json, version FROM audit"
                " WHERE source_path = ? ORDER BY id", (source_path,)).fetchall()
        return [{"at": at, "by": by, "op_id": op, "field": f, "before": json.loads(b) if b else None,
                 "after": json.loads(a) if a else None, "version": v} for at, by, op, f, b, a, v in rows]

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
        entry = self.planned(source_path)
        with self._transaction() as con:
            doc, current = self._sync(con, entry)
            if version != current:
                raise Conflict(current, doc)
            new = copy.deepcopy(doc)
            at = utc_now()
            audit: list[tuple[str | None, str, Any, Any]] = []
            for change in changes:
                audit += self._apply(con, source_path, new, change, reviewer, at)
            if not audit:
                return doc, current
            refresh_summary(new)
            version = current + 1
            for op_id, what, before, after in audit:
                self._audit(con, at, reviewer, source_path, op_id, what, before, after, version)
            reviewed = {op["op_id"]: op.get("review") for op in new["operations"]}
            for op_id in dict.fromkeys(op_id for op_id, *_ in audit if op_id is not None):
                decisions.save(con, source_path, op_id, reviewed[op_id])
            sha = self._write_doc(entry, new)
            con.execute("UPDATE images SET version = ?, doc_sha = ? WHERE source_path = ?",
                        (version, sha, source_path))
            self._write_parquet()
        return new, version

    def _apply(self, con: sqlite3.Connection, sp: str, doc: dict[str, Any], change: OpChange, reviewer: str,
               at: str) -> list[tuple[str | None, str, Any, Any]]:
        op = next((o for o in doc["operations"] if o["op_id"] == change.op_id), None)
        if op is None:
            raise ReviewError(f"no operation {change.op_id!r} in {sp}")
        review = dict(op.get("review") or {"status": "pending", "by": None, "at": None, "comment": None})
        p = op["params"]
        out: list[tuple[str | None, str, Any, Any]] = []
        amount_changed = False
        if change.ev is not None:
            if op["kind"] not in EV_KINDS:
                raise ReviewError(f"{change.op_id} ({op['kind']}) has no amount in EV")
            if p["ev"] != change.ev:
                self._remember_edit(con, sp, change.op_id, "ev", p["ev"], change.ev)
                self._note_param(con, sp, change.op_id, review, "ev", change.ev)
                out.append((change.op_id, "ev", p["ev"], change.ev))
                p["ev"] = change.ev
                amount_changed = True
        if change.box is not None:
            if op["kind"] != "crop":
                raise ReviewError(f"{change.op_id} ({op['kind']}) is not a crop")
            self._check_crop(doc, op, change.box)
            box = list(change.box)
            if p["box"] != box:
                self._remember_edit(con, sp, change.op_id, "box", p["box"], box)
                self._note_param(con, sp, change.op_id, review, "box", box)
                out.append((change.op_id, "box", p["box"], box))
                p["box"] = box
                amount_changed = True
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
    def _check_crop(doc: dict[str, Any], op: dict[str, Any], box: tuple[float, float, float, float]) -> None:
        x, y, w, h = box
        if w <= 0 or h <= 0:
            raise ReviewError("crop width and height must be positive")
        want = parse_aspect(op["params"]["aspect"])
        if abs((w / h) / want - 1) > ASPECT_TOLERANCE:
            raise ReviewError(f"crop must keep its {op['params']['aspect']} aspect (got {w / h:.3f})")
        W, H = float(doc["image"]["width"]), float(doc["image"]["height"])
        angle = float(op["params"].get("angle_deg") or 0.0)
        if not fits(box, angle, W, H, eps=1.0):
            raise ReviewError(f"crop turned by {angle:g} deg leaves the {W:.0f}x{H:.0f} image")
