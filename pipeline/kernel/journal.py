"""The journal of a run: every image's record after each segment, keyed by what produced it.

A rerun reuses every journalled result whose key still matches and whose
files are all there, so a run killed half-way finishes without redoing or
duplicating work.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.kernel.files import write_json_atomic
from pipeline.kernel.graph import Graph
from pipeline.kernel.records import Failure, ImageRecord, SourceTask, Status, record_from_json, record_to_json
from pipeline.kernel.stage import RunContext

STATE_DIR = ".postprod"
#: Bumped when the journal's record layout changes: older entries are then redone, not misread.
JOURNAL_FORMAT = 2


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


def segment_spec(graph: Graph) -> list[Any]:
    return [[s.name, s.cls.version, s.params.model_dump(mode="json") if hasattr(s.params, "model_dump") else None]
            for s in graph.stages]


class Journal:
    """Per-segment results of earlier runs, keyed by what went into them."""

    def __init__(self, out_dir: Path) -> None:
        self.root = out_dir / STATE_DIR / "journal"

    def _path(self, segment: int, content_hash: str) -> Path:
        return self.root / f"segment{segment}" / f"{content_hash}.json"

    def get(self, segment: int, content_hash: str, key: str, out_dir: Path) -> ImageRecord | None:
        path = self._path(segment, content_hash)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if entry.get("key") != key:
            return None
        try:
            record = record_from_json(entry["record"])
        except (TypeError, KeyError, ValueError):  # written by another version: redo
            return None
        if record.status is Status.FAILED and (
                record.failure is Failure.TRANSIENT
                or record.failure is None and (record.error or "").startswith("worker process died")):
            return None  # the machine's failure, not the file's (journalled by versions before the distinction)
        for e in record.exports:  # a file deleted or cut short since: redo the image
            p = out_dir / e.path
            if not p.is_file() or p.stat().st_size != e.bytes:
                return None
        if record.equipment.evidence_path and not (out_dir / record.equipment.evidence_path).is_file():
            return None  # the frame's equipment evidence went: analyse again
        if record.keypoints_path and not (out_dir / record.keypoints_path).is_file():
            return None  # the frame's keypoints went: analyse again (else its scene is found by its light alone)
        return record

    def put(self, segment: int, content_hash: str, key: str, record: ImageRecord) -> None:
        # Not synced: an entry lost in a power cut is redone (get() refuses a cut-short one).
        write_json_atomic(self._path(segment, content_hash), {"key": key, "record": record_to_json(record)},
                          durable=False)


def journal_key(graph: Graph, context: RunContext, task: SourceTask, record: ImageRecord | None,
                after_plan: bool) -> str:
    """What a segment's result depends on. Analysis (before planning) does not
    depend on the chart, so changing charts re-plans without re-analysing."""
    incoming = None
    if record is not None:
        incoming = record_to_json(record)
        incoming.pop("stage_seconds", None)
        if after_plan:
            # Of a reviewer's decision only what changes pixels: a rejection (edited amounts are in
            # params already). Accepting, marking done or commenting re-renders nothing.
            for op in incoming.get("operations") or []:
                op["review"] = {"rejected": (op.get("review") or {}).get("status") == "rejected"}
    chart_hash = context.chart_hash if after_plan else None
    shoot_id = context.shoot_id if after_plan else None
    naming = (task.seq, task.stem) if after_plan else None
    return _digest(__version__, JOURNAL_FORMAT, segment_spec(graph), chart_hash, shoot_id, task.content_hash, naming,
                   incoming)


