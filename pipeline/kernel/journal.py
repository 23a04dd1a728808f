"""The journal of a run: every image's record after each segment, keyed by what produced it.

A rerun reuses every journalled result whose key still matches and whose
files are all there, so a run killed half-way finishes without redoing or
duplicating work.

Durability is committed in groups. Stages write an image's files (exports,
previews, keypoints, equipment evidence) atomically but without ``fsync``
(:meth:`pipeline.kernel.stage.Stage.write_file`); :meth:`Journal.put` holds the
image's entry back, and a group (:attr:`Journal.COMMIT_EVERY` entries, or
what was put in :attr:`Journal.COMMIT_AFTER_S` seconds; and every held entry
at the end of each segment, :meth:`Journal.commit`) is committed by first
flushing the files of all its images to disk together
(:func:`~pipeline.kernel.files.make_durable`: one ``syncfs``), then writing
their entries. So an entry is never on disk before the files it vouches for
are, and a crash (a kill, a power cut) loses at most the images finished
since the last commit (about two seconds' work, and the images in progress):
their entries were never written, so the rerun does them again and writes
their files over under the same names (no duplicates; files of an image that
left the shoot meanwhile are removed at the end of the run, as ever). An
entry itself is not synced: one lost or cut short is redone too
(:meth:`Journal.get` refuses what it cannot read). Every write stays atomic
(a temporary file and a rename): a reader sees a file old or whole. The
files the end of the run writes (tables, report, instructions) are synced as
they are written.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.kernel.files import make_durable, write_json_atomic
from pipeline.kernel.graph import Graph
from pipeline.kernel.records import (
    RETRIED_FAILURES,
    ImageRecord,
    SourceTask,
    Status,
    pixel_review,
    record_from_json,
    record_to_json,
)
from pipeline.kernel.stage import RunContext

STATE_DIR = ".postprod"
#: Bumped when the journal's record layout changes: older entries are then redone, not misread. 3: the colour
#: group's ColorChecker (wb_colour_checker, wb_colour_checker_box): a frame journalled before had no chart looked for.
#: 4: the white backdrop's colour (exposure_backdrop_rgb), which its white point needs.
JOURNAL_FORMAT = 4
#: The libraries whose versions change what the stages compute (the RAW decode, OpenCV's filters and demosaic,
#: the face detector's runtime, the encoders), each by the distribution names it installs under: a result
#: journalled under other versions is redone, so one shoot's records never mix two of them. (OpenCV 5.1 rounds a
#: full-resolution master's edge a value apart from 5.0's: see pipeline.imaging.render.render_rows.)
KEYED_LIBRARIES = (
    ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"),
    ("rawpy",), ("onnxruntime", "onnxruntime-gpu"), ("numpy",), ("pillow",), ("pyexiv2",),
)


@functools.lru_cache(maxsize=1)
def library_versions() -> tuple[str, ...]:
    """``name==version`` of each of :data:`KEYED_LIBRARIES` as installed (``==absent`` when none of its names is)."""
    out = []
    for names in KEYED_LIBRARIES:
        for name in names:
            try:
                out.append(f"{name}=={metadata.version(name)}")
                break
            except metadata.PackageNotFoundError:
                continue
        else:
            out.append(f"{names[0]}==absent")
    return tuple(out)


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
    """Per-segment results of earlier runs, keyed by what went into them; new ones committed in groups."""

    #: Entries held back before a commit flushes their files and writes them.
    COMMIT_EVERY = 32
    #: Seconds after which the next put commits the group (a crash loses about this much work, and the
    #: image in progress).
    COMMIT_AFTER_S = 2.0

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.root = out_dir / STATE_DIR / "journal"
        # Entries are named as text: pathlib parses and interns every part of every path it makes, and the
        # journal names a few files an image (its entry, its exports, its evidence), 20,000 and more a shoot.
        self._root = os.fspath(self.root)
        self._held: list[tuple[str, dict[str, Any], list[str]]] = []
        self._oldest = 0.0
        self._in_flight: threading.Thread | None = None
        self._error: OSError | None = None

    def _path(self, segment: int, content_hash: str) -> str:
        return os.path.join(self._root, f"segment{segment}", f"{content_hash}.json")

    def get(self, segment: int, content_hash: str, key: str, out_dir: Path) -> ImageRecord | None:
        path = self._path(segment, content_hash)
        try:
            with open(path, encoding="utf-8") as f:
                entry = json.loads(f.read())
        except (OSError, ValueError):
            return None
        if entry.get("key") != key:
            return None
        try:
            record = record_from_json(entry["record"])
        except (TypeError, KeyError, ValueError):  # written by another version: redo
            return None
        if record.status is Status.FAILED and (
                record.failure in RETRIED_FAILURES
                or record.failure is None and (record.error or "").startswith("worker process died")):
            return None  # the machine's failure, not the file's (journalled by versions before the distinction)
        out = os.fspath(out_dir)
        for e in record.exports:  # a file deleted or cut short since: redo the image
            try:
                st = os.stat(os.path.join(out, e.path))
            except OSError:
                return None
            if not stat.S_ISREG(st.st_mode) or st.st_size != e.bytes:
                return None
        if record.equipment.evidence_path and not os.path.isfile(os.path.join(out, record.equipment.evidence_path)):
            return None  # the frame's equipment evidence went: analyse again
        if record.keypoints_path and not os.path.isfile(os.path.join(out, record.keypoints_path)):
            return None  # the frame's keypoints went: analyse again (else its scene is found by its light alone)
        return record

    def put(self, segment: int, content_hash: str, key: str, record: ImageRecord,
            files: Iterable[str] = ()) -> None:
        """Hold ``record``'s entry (as it is now) for a commit; start one when the group is full or old.

        ``files``: the image's files written unsynced (paths relative to the output folder,
        :func:`pipeline.outputs.shoot.image_files`), flushed to disk before the entry is written.
        The group is committed in a thread of its own (the next images go on meanwhile); at most
        one group is in flight, so a put waits for the previous group before it starts another.

        Raises
        ------
        OSError
            From the previous group's commit (a full disk, an I/O error).
        """
        if not self._held:
            self._oldest = time.monotonic()
        self._held.append((self._path(segment, content_hash), {"key": key, "record": record_to_json(record)},
                           list(files)))
        if len(self._held) >= self.COMMIT_EVERY or time.monotonic() - self._oldest >= self.COMMIT_AFTER_S:
            held, self._held = self._held, []
            self._wait()
            thread = threading.Thread(target=self._commit_in_thread, args=(held,), name="journal-commit", daemon=True)
            self._in_flight = thread
            thread.start()

    @property
    def held(self) -> int:
        """Entries put and not yet written (held, or in a commit still running)."""
        return len(self._held) + (self._in_flight is not None)

    def commit(self) -> None:
        """Write every entry put so far: wait for the group in flight, then commit the held ones here.

        Raises
        ------
        OSError
            If the files cannot be flushed or an entry written; the entries not written are dropped
            (their images are redone by the next run).
        """
        held, self._held = self._held, []
        self._wait()
        self._commit_group(held)

    def _wait(self) -> None:
        thread, self._in_flight = self._in_flight, None
        if thread is not None:
            thread.join()
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _commit_in_thread(self, held: list[tuple[str, dict[str, Any], list[str]]]) -> None:
        try:
            self._commit_group(held)
        except OSError as exc:
            self._error = exc  # raised in the run's thread by the next put or commit

    def _commit_group(self, held: list[tuple[str, dict[str, Any], list[str]]]) -> None:
        """Flush the group's files to disk, then write its entries (atomically, not synced)."""
        if not held:
            return
        out = os.fspath(self.out_dir)
        make_durable((os.path.join(out, rel) for _, _, files in held for rel in files), self.out_dir)
        for path, entry, _ in held:
            write_json_atomic(path, entry, durable=False)


def journal_key(graph: Graph, context: RunContext, task: SourceTask, record: ImageRecord | None,
                after_plan: bool) -> str:
    """What a segment's result depends on: postprod's version, the libraries' (:func:`library_versions`), the
    stages and their parameters, the source and what came in. Analysis (before planning) does not depend on the
    chart, so changing charts re-plans without re-analysing."""
    incoming = None
    if record is not None:
        incoming = record_to_json(record)
        incoming.pop("stage_seconds", None)
        if after_plan:
            # Of a reviewer's decision only what changes pixels (pixel_review).
            for op in incoming.get("operations") or []:
                op["review"] = pixel_review(op.get("params") or {}, op.get("review"))
    chart_hash = context.chart_hash if after_plan else None
    shoot_id = context.shoot_id if after_plan else None
    naming = (task.seq, task.stem) if after_plan else None
    # A turn the photographer's XMP gives the frame (a key of its own only then: every other key stays as it was).
    turned = () if task.orientation is None else (("orientation", task.orientation),)
    return _digest(__version__, JOURNAL_FORMAT, library_versions(), segment_spec(graph), chart_hash, shoot_id,
                   task.content_hash, naming, incoming, *turned)


