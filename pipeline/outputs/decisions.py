"""Reviewers' decisions, kept in ``OUT/review.sqlite``: the one place they are true.

The review app (:mod:`pipeline.review.store`) writes a decision here and into
the instructions JSON, its XMP sidecar and ``instructions.parquet`` in one
SQLite write transaction. ``postprod process`` rewrites those files at the
end of every run; it takes the same write lock, reads the decisions again
and writes them into the documents it writes, so a decision made while a
rerun was going (during a long render) is in the files that rerun leaves,
not reverted to what the run read when it planned.

``BEGIN IMMEDIATE`` is the lock: one writer at a time across the review
app's threads, several review servers, and the run.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from pipeline.kernel.records import AppliedBy, Operation, OperationKind

DB_NAME = "review.sqlite"
#: ``PRAGMA user_version`` of a database whose ``decisions`` table is complete.
DECISIONS_VERSION = 1

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS images (
    source_path TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    doc_sha TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS edits (
    source_path TEXT NOT NULL,
    op_id TEXT NOT NULL,
    param TEXT NOT NULL,
    planned_json TEXT NOT NULL,
    value_json TEXT NOT NULL,
    PRIMARY KEY (source_path, op_id, param)
);
CREATE TABLE IF NOT EXISTS decisions (
    source_path TEXT NOT NULL,
    op_id TEXT NOT NULL,
    review_json TEXT NOT NULL,
    PRIMARY KEY (source_path, op_id)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    by TEXT,
    source_path TEXT NOT NULL,
    op_id TEXT,
    field TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_image ON audit (source_path, id);
"""


def connect(out_dir: Path) -> sqlite3.Connection:
    """A connection to the folder's review database, created with its tables when missing.

    A database from before the ``decisions`` table gets it filled from the
    reviews in the instructions documents (which were then the only record).
    """
    con = sqlite3.connect(Path(out_dir) / DB_NAME, timeout=30, isolation_level=None)
    con.execute("PRAGMA busy_timeout=30000")
    con.execute("PRAGMA synchronous=NORMAL")
    if con.execute("PRAGMA user_version").fetchone()[0] < DECISIONS_VERSION:
        con.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        con.execute("BEGIN IMMEDIATE")
        try:
            if con.execute("PRAGMA user_version").fetchone()[0] < DECISIONS_VERSION:  # another process did it
                for statement in filter(None, (s.strip() for s in SCHEMA_SQL.split(";"))):
                    con.execute(statement)  # not executescript(): it would commit the open transaction
                _import_from_documents(con, Path(out_dir))
                con.execute(f"PRAGMA user_version = {DECISIONS_VERSION}")
        except BaseException:
            con.execute("ROLLBACK")
            con.close()
            raise
        con.execute("COMMIT")
    return con


@contextmanager
def transaction(out_dir: Path) -> Iterator[sqlite3.Connection]:
    """A write transaction on the folder's review database, taken at once (the decisions lock)."""
    with closing(connect(out_dir)) as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def is_decided(review: dict[str, Any] | None) -> bool:
    """Whether a review says anything beyond an untouched plan."""
    if not review:
        return False
    return bool(review.get("status", "pending") != "pending" or review.get("comment") or review.get("params")
                or review.get("by"))


def reviewers_operations(reviews: dict[str, dict[str, Any]], planned: set[str]) -> list[Operation]:
    """The operations reviewers added to an image that its plan does not make (``planned``: its operation ids).

    A reviewer adds one when a decision for a whole scene reaches a frame the
    plan left without that correction (:mod:`pipeline.review.scenes`); its
    decision says so with ``added: {"kind", "reason"}`` and holds every
    parameter, so a re-plan can make it again.
    """
    out = []
    for op_id, review in sorted(reviews.items()):
        added = review.get("added")
        if op_id in planned or not isinstance(added, dict):
            continue
        try:
            kind = OperationKind(added.get("kind"))
        except ValueError:
            continue  # a kind this version does not know: left out, not guessed
        out.append(Operation(op_id=op_id, kind=kind, params=dict(review.get("params") or {}),
                             reason=str(added.get("reason") or "added by a reviewer"), confidence=1.0,
                             applied_by=AppliedBy.RENDERER, review=review))
    return out


def read(con: sqlite3.Connection, source_path: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Decisions by source path and operation id (of one image when ``source_path`` is given)."""
    if source_path is None:
        rows = con.execute("SELECT source_path, op_id, review_json FROM decisions").fetchall()
    else:
        rows = con.execute("SELECT source_path, op_id, review_json FROM decisions WHERE source_path = ?",
                           (source_path,)).fetchall()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for sp, op_id, review in rows:
        out.setdefault(sp, {})[op_id] = json.loads(review)
    return out


def save(con: sqlite3.Connection, source_path: str, op_id: str, review: dict[str, Any] | None) -> None:
    """Record an operation's review (call inside :func:`transaction`).

    An operation set back to pending is recorded as such, not forgotten: it
    must override an older "accepted" wherever that is still written.
    """
    con.execute("INSERT OR REPLACE INTO decisions (source_path, op_id, review_json) VALUES (?, ?, ?)",
                (source_path, op_id, json.dumps(review or {"status": "pending", "by": None, "at": None,
                                                          "comment": None}, sort_keys=True)))


def _import_from_documents(con: sqlite3.Connection, out_dir: Path) -> None:
    known = {(sp, op) for sp, op in con.execute("SELECT source_path, op_id FROM decisions")}
    for path in sorted((out_dir / "instructions").glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            sp, ops = doc["source_path"], doc["operations"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for op in ops:
            review = op.get("review") if isinstance(op, dict) else None
            if isinstance(review, dict) and is_decided(review) and (sp, op.get("op_id")) not in known:
                save(con, sp, op["op_id"], review)


def documents_written(con: sqlite3.Connection, shas: dict[str, str]) -> int:
    """Note instructions documents a run rewrote (call inside the :func:`transaction` that wrote them).

    An image the review app has seen gets a new version when its document's
    bytes changed, so a tab still showing the old one is told to reload
    instead of overwriting the new plan; an audit row says who changed it.

    Returns
    -------
    int
        The number of images whose version moved.
    """
    from datetime import datetime, timezone

    at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    moved = 0
    for sp, sha in shas.items():
        row = con.execute("SELECT version, doc_sha FROM images WHERE source_path = ?", (sp,)).fetchone()
        if row is None or row[1] == sha:
            continue
        version = row[0] + 1
        con.execute("UPDATE images SET version = ?, doc_sha = ? WHERE source_path = ?", (version, sha, sp))
        con.execute("INSERT INTO audit (at, by, source_path, op_id, field, before_json, after_json, version)"
                    " VALUES (?, NULL, ?, NULL, 'document', NULL, ?, ?)",
                    (at, sp, json.dumps("rewritten by postprod process"), version))
        moved += 1
    return moved


def reviewed_amounts(out_dir: Path, kind: str = "exposure", param: str = "ev") -> list[tuple[str, float, float, str]]:
    """What reviewers made of the plan's amounts: ``(source_path, planned, wanted, status)`` of every ``kind``
    operation they accepted, marked done, changed or rejected (pending ones say nothing and are left out).

    ``planned`` is the plan's ``param`` (0 for an operation a reviewer added), ``wanted`` the amount the
    reviewer left it at (0 when rejected: the image as shot). Read from ``instructions.parquet`` (the
    documents as reviewed) and the review database's ``edits`` (what the plan had proposed under an edit).
    A folder without either gives an empty list.
    """
    import pyarrow.parquet as pq

    from pipeline.outputs.shoot import INSTRUCTIONS_NAME  # (shoot imports this module: named here, not at the top)

    table = Path(out_dir) / INSTRUCTIONS_NAME
    if not table.is_file():
        return []
    rows = pq.read_table(table, columns=["source_path", "op_id", "kind", "params_json", "review_status"]).to_pylist()
    planned: dict[tuple[str, str], Any] = {}
    added: set[tuple[str, str]] = set()
    db = Path(out_dir) / DB_NAME

    def edits(con: sqlite3.Connection) -> tuple[dict[tuple[str, str], Any], set[tuple[str, str]]]:
        return ({(sp, op): json.loads(p) for sp, op, p in con.execute(
                    "SELECT source_path, op_id, planned_json FROM edits WHERE param = ?", (param,))},
                {(sp, op) for sp, ops in read(con).items() for op, review in ops.items() if review.get("added")})

    if db.is_file():
        try:  # read only first: an archived shoot's folder may not be writable, and nothing here writes
            with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as con:
                planned, added = edits(con)
        except sqlite3.Error:  # a database from before its decisions table (connect() fills it in)
            with closing(connect(out_dir)) as con:
                planned, added = edits(con)
    out = []
    for r in rows:
        status = r["review_status"]
        if r["kind"] != kind or status not in ("accepted", "done", "rejected"):
            continue
        now = json.loads(r["params_json"] or "{}").get(param)
        key = (r["source_path"], r["op_id"])
        was = 0.0 if key in added else planned.get(key, now)
        if now is None or was is None:
            continue
        out.append((r["source_path"], float(was), 0.0 if status == "rejected" else float(now), status))
    return out
