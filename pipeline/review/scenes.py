"""A reviewer's decision for a whole scene, and one frame's edit carried to its scene.

The scenes are the plan's (``scene_id`` in each instructions document). A
scene action changes every frame of the scene in one write transaction of the
store, all or none, with an audit row per changed field, and writes each
changed document back as :meth:`pipeline.review.store.ReviewStore.update` does
(JSON, Camera Raw settings, ``instructions.parquet``):

- **decide**: a review status for every instruction of every frame (accept or
  reject what is still pending; ``done`` for every one not rejected);
- **exposure**: every frame's exposure set to one amount, or moved by one
  amount from its own (a scene made a third of a stop brighter keeps its
  bracket corrected);
- **white balance**: every frame rendered at one white: a chosen frame's, or
  the median of the scene's frames as they stand (frames of a RAW and of a
  rendered file do not share a white: each kind is synced among itself);
- **propagate**: what a reviewer did to one frame's exposure and white balance
  (the change of amount, the white, the status) done to the rest of its scene.

A frame the plan left without an exposure or white-balance operation gets one,
marked ``added`` (its kind and reason) in its decision; ``postprod process``
makes added operations again on a re-plan
(:func:`pipeline.outputs.decisions.reviewers_operations`), as it keeps edited amounts.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.imaging.scene_light import as_shot_xy, gains_for_white, rendered_white, uv_to_xy, xy_to_uv
from pipeline.kernel.records import RENDER_ON_ACCEPT, awaiting_decision
from pipeline.outputs import decisions
from pipeline.planning.consistency import WhiteMatch, matched_white_balance_params
from pipeline.review.store import (
    MAX_ABS_EV,
    REVIEW_STATUSES,
    NotFound,
    OpChange,
    Paused,
    ReviewError,
    ReviewStore,
    refresh_summary,
    utc_now,
)

#: The white-balance parameters a sync writes (the renderer's gains and what people and the XMP read).
WHITE_PARAMS = ("gains", "mired_shift", "temperature_shift_k", "tint_shift", "white")
#: Kinds a scene's exposure and white balance are carried by.
EXPOSURE, WHITE_BALANCE = "exposure", "white_balance"

Audit = tuple[str | None, str, Any, Any]  # (op_id, field, before, after), as the store records them


@dataclass
class SceneResult:
    """What a scene action did: the frames it changed (with their new versions) and those it left, and why."""

    scene_id: int
    frames: list[str]
    changed: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"scene_id": self.scene_id, "frames": self.frames, "changed": self.changed, "skipped": self.skipped}


def scenes(store: ReviewStore) -> dict[int, list[str]]:
    """Scene id -> its frames (source paths, in shoot order), as the plan grouped them."""
    out: dict[int, list[str]] = {}
    for entry, doc, _ in store.documents():
        if doc is not None and doc.get("scene_id") is not None:
            out.setdefault(int(doc["scene_id"]), []).append(entry.source_path)
    return out


def scene_of(store: ReviewStore, source_path: str) -> int:
    """The scene of one frame.

    Raises
    ------
    NotFound
        If the frame has no plan.
    ReviewError
        If it has no scene (instructions written before scenes existed: re-plan with ``--only plan``).
    """
    doc, _ = store.get(source_path)
    if doc.get("scene_id") is None:
        raise ReviewError(f"{source_path} has no scene: re-plan the shoot (postprod process --only plan)")
    return int(doc["scene_id"])


def _op(doc: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The frame's operation of ``kind`` the renderer carries out, or would but for a rejection (the first): its
    own, or a person's marked :data:`~pipeline.kernel.records.RENDER_ON_ACCEPT` once accepted; or None."""
    return next((o for o in doc["operations"] if o["kind"] == kind and (
        o["applied_by"] == "renderer"
        or (o["params"].get(RENDER_ON_ACCEPT) and (o.get("review") or {}).get("status") == "accepted"))), None)


def _left_to_a_person(doc: dict[str, Any], kind: str) -> str | None:
    """Why the frame's operation of ``kind`` that :func:`_op` does not return is decided on the frame, or None
    without one: a proposal (:data:`~pipeline.kernel.records.RENDER_ON_ACCEPT`) not accepted yet, or a
    retoucher's work. A scene's action does not decide it for the frame."""
    applied = _op(doc, kind)
    op = next((o for o in doc["operations"] if o["kind"] == kind and o is not applied), None)
    if op is None:
        return None
    words = kind.replace("_", " ")
    if awaiting_decision(op["params"], op.get("review")):
        return f"its {words} is proposed, not applied: accept, change or reject it on the frame"
    return f"its {words} is left to a retoucher"


def _live(op: dict[str, Any] | None) -> dict[str, Any] | None:
    """``op`` unless a reviewer rejected it (the renderer skips it then)."""
    return None if op is None or (op.get("review") or {}).get("status") == "rejected" else op


def _add_op(store: ReviewStore, con: sqlite3.Connection, sp: str, doc: dict[str, Any], kind: str,
            params: dict[str, Any], reason: str, reviewer: str, at: str) -> list[Audit]:
    """Give a frame the operation of ``kind`` its plan did not make, as an accepted reviewer's addition."""
    op = {"op_id": kind, "kind": kind, "params": dict(params), "reason": reason, "measured": None, "target": None,
          "confidence": 1.0, "applied_by": "renderer",
          "review": {"status": "accepted", "by": reviewer, "at": at, "comment": None, "params": dict(params),
                     "added": {"kind": kind, "reason": reason}}}
    if any(o["op_id"] == kind for o in doc["operations"]):
        raise ReviewError(f"{sp} already has an operation {kind!r} (rejected or left to a retoucher): decide it there")
    after_wb = max((k + 1 for k, o in enumerate(doc["operations"]) if o["kind"] == WHITE_BALANCE), default=0)
    doc["operations"].insert(after_wb if kind == EXPOSURE else 0, op)
    for param, value in params.items():
        store._remember_edit(con, sp, kind, param, None, value)
    return [(kind, "added", None, params)]


def _set_params(store: ReviewStore, con: sqlite3.Connection, sp: str, op: dict[str, Any], params: dict[str, Any],
                reviewer: str, at: str) -> list[Audit]:
    """Change an operation's parameters as a reviewer's edit (kept across re-plans), accepting it if pending."""
    review = dict(op.get("review") or {"status": "pending", "by": None, "at": None, "comment": None})
    out: list[Audit] = []
    for param, value in params.items():
        before = op["params"].get(param)
        if before == value:
            continue
        store._remember_edit(con, sp, op["op_id"], param, before, value)
        store._note_param(con, sp, op["op_id"], review, param, value)
        op["params"][param] = value
        out.append((op["op_id"], param, before, value))
    if out:
        if review["status"] == "pending":
            out.append((op["op_id"], "status", "pending", "accepted"))
            review["status"] = "accepted"
        review["by"], review["at"] = reviewer, at
        op["review"] = review
    return out


def change_scene(store: ReviewStore, scene_id: int, reviewer: str,
                 edit: Callable[[sqlite3.Connection, str, dict[str, Any], str, SceneResult], list[Audit]]
                 ) -> SceneResult:
    """Run ``edit`` on every frame of a scene in one transaction and write the changed frames back.

    ``edit(con, source_path, doc, at, result)`` changes ``doc`` (a copy) and
    returns the audit rows; it may note a frame it leaves in
    ``result.skipped``. A :class:`ReviewError` from any frame changes nothing.

    Raises
    ------
    NotFound
        If no frame has that scene.
    ReviewError
        If a frame cannot take the change.
    """
    frames = scenes(store).get(scene_id)
    if not frames:
        raise NotFound(f"scene {scene_id}")
    if store._paused:
        raise Paused(f"{store._paused}: decisions are paused until it ends")
    result = SceneResult(scene_id, frames)
    with store._transaction() as con:
        at = utc_now()
        written: list[tuple[str, dict[str, Any], int, list[Audit]]] = []
        for sp in frames:
            entry = store.planned(sp)
            doc, version = store._sync(con, entry)
            new = copy.deepcopy(doc)
            audit = edit(con, sp, new, at, result)
            if audit:
                written.append((sp, new, version + 1, audit))
        change_id = uuid.uuid4().hex[:16]  # one scene decision: undone or read in the history as one
        for sp, new, version, audit in written:
            refresh_summary(new)
            for op_id, what, before, after in audit:
                store._audit(con, at, reviewer, sp, op_id, what, before, after, version, change_id)
            reviewed = {op["op_id"]: op.get("review") for op in new["operations"]}
            for op_id in dict.fromkeys(op_id for op_id, *_ in audit if op_id is not None):
                decisions.save(con, sp, op_id, reviewed[op_id])
            sha = store._write_doc(store.planned(sp), new)
            con.execute("UPDATE images SET version = ?, doc_sha = ? WHERE source_path = ?", (version, sha, sp))
            result.changed[sp] = version
        if written:
            store._write_parquet()
            store._mark_exports()
    return result


def decide_scene(store: ReviewStore, scene_id: int, status: str, reviewer: str) -> SceneResult:
    """``status`` for every instruction of the scene still pending (for ``done``: every one not rejected).

    Raises
    ------
    ReviewError
        On an unknown status.
    NotFound
        If the scene does not exist.
    """
    if status not in REVIEW_STATUSES:
        raise ReviewError(f"status must be one of {', '.join(REVIEW_STATUSES)}")

    def edit(con: sqlite3.Connection, sp: str, doc: dict[str, Any], at: str, result: SceneResult) -> list[Audit]:
        audit: list[Audit] = []
        for o in doc["operations"]:
            current = (o.get("review") or {}).get("status", "pending")
            if current == status or (current != "pending" if status != "done" else current == "rejected"):
                continue
            audit += store._apply(con, sp, doc, OpChange(o["op_id"], status=status), reviewer, at)
        return audit

    return change_scene(store, scene_id, reviewer, edit)


def set_scene_exposure(store: ReviewStore, scene_id: int, reviewer: str, ev: float | None = None,
                       ev_delta: float | None = None) -> SceneResult:
    """Every frame's exposure set to ``ev``, or moved by ``ev_delta`` from its own amount.

    A frame without an exposure operation gets one; a frame whose exposure a
    reviewer rejected or left to a retoucher is skipped (decide it on the frame).

    Raises
    ------
    ReviewError
        Unless exactly one of ``ev`` and ``ev_delta`` is given, within +-5 EV.
    NotFound
        If the scene does not exist.
    """
    if (ev is None) == (ev_delta is None):
        raise ReviewError("give either ev (the amount for every frame) or ev_delta (a change of every frame's own)")
    for value in (ev, ev_delta):
        if value is not None and (not np.isfinite(value) or abs(value) > MAX_ABS_EV):
            raise ReviewError(f"an amount must be within +-{MAX_ABS_EV:g} EV")

    def edit(con: sqlite3.Connection, sp: str, doc: dict[str, Any], at: str, result: SceneResult) -> list[Audit]:
        op = _op(doc, EXPOSURE)
        current = float(op["params"]["ev"]) if op is not None else 0.0
        amount = round(ev if ev is not None else current + ev_delta, 2)  # type: ignore[operator]
        if abs(amount) > MAX_ABS_EV:
            result.skipped[sp] = f"{amount:+.2f} EV is beyond +-{MAX_ABS_EV:g} EV"
            return []
        if op is None:
            if (why := _left_to_a_person(doc, EXPOSURE)) is not None:
                result.skipped[sp] = why
                return []
            if amount == 0:
                return []
            return _add_op(store, con, sp, doc, EXPOSURE, {"ev": amount},
                           f"set for scene {scene_id} by {reviewer}", reviewer, at)
        if (op.get("review") or {}).get("status") == "rejected":
            result.skipped[sp] = "its exposure was rejected"
            return []
        return store._apply(con, sp, doc, OpChange(op["op_id"], ev=amount), reviewer, at)

    return change_scene(store, scene_id, reviewer, edit)


def _white_of(doc: dict[str, Any]) -> tuple[str, tuple[float, float] | None, tuple[float, float]]:
    """(reference, As Shot white, the white the frame is rendered at now) of a document."""
    cr = doc.get("camera_raw") or {}
    shot = as_shot_xy(cr.get("as_shot_temperature_k"), cr.get("as_shot_tint"))
    raw = (doc.get("image") or {}).get("source_kind") == "raw"
    reference = "raw" if shot is not None else ("raw without as-shot white" if raw else "rendered")
    op = _live(_op(doc, WHITE_BALANCE))
    gains = op["params"]["gains"] if op is not None else (1.0, 1.0, 1.0)
    return reference, shot, rendered_white(gains, shot)


def _white_params(scene_id: int, target: tuple[float, float], shot: tuple[float, float] | None,
                  frames: int, measurements: dict[str, Any]) -> dict[str, Any]:
    gains = gains_for_white(target, shot)
    match = WhiteMatch(gains, target, target, None, shot, frames, False)
    params = matched_white_balance_params(match, scene_id, measurements.get("wb_temperature_shift_k"),
                                          measurements.get("wb_cast_b"), measurements.get("wb_cast_mired"))
    return {k: params[k] for k in WHITE_PARAMS}


def sync_scene_white_balance(store: ReviewStore, scene_id: int, reviewer: str,
                             reference: str | None = None) -> SceneResult:
    """Every frame rendered at one white: ``reference``'s, or the median of the scene's frames as they stand.

    Frames are synced with frames of their own kind (a RAW's white is read
    through its As Shot white balance, a rendered file's is its rendering);
    with a ``reference`` frame, frames of another kind are skipped. A frame
    whose white balance a reviewer rejected is skipped.

    Raises
    ------
    NotFound
        If the scene does not exist or ``reference`` has no plan.
    ReviewError
        If ``reference`` is not a frame of the scene.
    """
    frames = scenes(store).get(scene_id)
    if not frames:
        raise NotFound(f"scene {scene_id}")
    whites = {sp: _white_of(store.get(sp)[0]) for sp in frames}
    targets: dict[str, tuple[float, float]] = {}
    if reference is not None:
        if reference not in whites:
            raise ReviewError(f"{reference} is not a frame of scene {scene_id}")
        targets[whites[reference][0]] = whites[reference][2]
    else:
        for kind in {w[0] for w in whites.values()}:
            uv = [xy_to_uv(w[2]) for w in whites.values() if w[0] == kind]
            targets[kind] = uv_to_xy((statistics.median(u for u, _ in uv), statistics.median(v for _, v in uv)))

    def edit(con: sqlite3.Connection, sp: str, doc: dict[str, Any], at: str, result: SceneResult) -> list[Audit]:
        kind, shot, _ = _white_of(doc)
        if kind not in targets:
            result.skipped[sp] = f"a {kind} file does not share the {whites[reference][0]} reference's white"  # type: ignore[index]
            return []
        params = _white_params(scene_id, targets[kind], shot, sum(w[0] == kind for w in whites.values()),
                               doc.get("measurements") or {})
        op = _op(doc, WHITE_BALANCE)
        if op is None:
            if any(o["kind"] == WHITE_BALANCE for o in doc["operations"]):
                result.skipped[sp] = "its white balance is left to a retoucher"
                return []
            return _add_op(store, con, sp, doc, WHITE_BALANCE, params,
                           f"synced with scene {scene_id} by {reviewer}", reviewer, at)
        if (op.get("review") or {}).get("status") == "rejected":
            result.skipped[sp] = "its white balance was rejected"
            return []
        return _set_params(store, con, sp, op, params, reviewer, at)

    return change_scene(store, scene_id, reviewer, edit)


def _planned(con: sqlite3.Connection, sp: str, op_id: str, param: str, current: Any) -> Any:
    """The amount the plan proposed under a reviewer's edit (the current one when unedited)."""
    row = con.execute("SELECT planned_json FROM edits WHERE source_path = ? AND op_id = ? AND param = ?",
                      (sp, op_id, param)).fetchone()
    return json.loads(row[0]) if row else current


def propagate(store: ReviewStore, source_path: str, reviewer: str, version: int | None = None) -> SceneResult:
    """Do to the rest of a frame's scene what a reviewer did to the frame's exposure and white balance.

    - exposure: the change of amount from the plan's (``+0.3 EV``) to every
      frame's own amount; else its review status (accepted or rejected) to
      every frame's exposure;
    - white balance: an edited white (or one a reviewer added) to every frame
      of its kind (:func:`sync_scene_white_balance` from this frame); else its
      review status.

    Raises
    ------
    NotFound
        If the frame has no plan.
    ReviewError
        If the frame has no scene or nothing to propagate.
    Conflict
        If ``version`` is given and the frame changed since.
    """
    from pipeline.review.store import Conflict

    doc, current = store.get(source_path)
    if version is not None and version != current:
        raise Conflict(current, doc)
    scene_id = scene_of(store, source_path)
    exposure, white = _op(doc, EXPOSURE), _op(doc, WHITE_BALANCE)
    with store._transaction() as con:
        delta = None
        if exposure is not None and (exposure.get("review") or {}).get("params", {}).get("ev") is not None:
            planned = _planned(con, source_path, exposure["op_id"], "ev", exposure["params"]["ev"])
            delta = float(exposure["params"]["ev"]) - float(planned or 0.0)
    wb_review = (white or {}).get("review") or {}
    wb_edited = white is not None and wb_review.get("status") != "rejected" and bool(wb_review.get("params"))
    exposure_status = (exposure or {}).get("review", {}).get("status")
    wb_status = wb_review.get("status")
    if delta is None and not wb_edited and exposure_status in (None, "pending") and wb_status in (None, "pending"):
        raise ReviewError(f"{source_path}: no decision on its exposure or white balance to propagate")
    result = SceneResult(scene_id, scenes(store)[scene_id])
    others = [sp for sp in result.frames if sp != source_path]
    if delta is not None:
        _merge(result, _for_frames(store, scene_id, reviewer, others, exposure_delta=delta))
    elif exposure_status in ("accepted", "rejected", "done"):
        _merge(result, _for_frames(store, scene_id, reviewer, others, status=(EXPOSURE, exposure_status)))
    if wb_edited:
        synced = sync_scene_white_balance(store, scene_id, reviewer, reference=source_path)
        synced.changed.pop(source_path, None)
        _merge(result, synced)
    elif wb_status in ("accepted", "rejected", "done"):
        _merge(result, _for_frames(store, scene_id, reviewer, others, status=(WHITE_BALANCE, wb_status)))
    return result


def _merge(into: SceneResult, other: SceneResult) -> None:
    into.changed.update(other.changed)
    for sp, why in other.skipped.items():
        into.skipped.setdefault(sp, why)


def _for_frames(store: ReviewStore, scene_id: int, reviewer: str, frames: list[str],
                exposure_delta: float | None = None, status: tuple[str, str] | None = None) -> SceneResult:
    """An exposure change or a status on one kind of operation, for some of a scene's frames."""
    chosen = set(frames)

    def edit(con: sqlite3.Connection, sp: str, doc: dict[str, Any], at: str, result: SceneResult) -> list[Audit]:
        if sp not in chosen:
            return []
        if status is not None:
            kind, value = status
            op = _op(doc, kind)
            if op is None:
                result.skipped[sp] = _left_to_a_person(doc, kind) or f"no {kind.replace('_', ' ')} planned"
                return []
            return store._apply(con, sp, doc, OpChange(op["op_id"], status=value), reviewer, at)
        op = _op(doc, EXPOSURE)
        if op is not None and (op.get("review") or {}).get("status") == "rejected":
            result.skipped[sp] = "its exposure was rejected"
            return []
        current = float(op["params"]["ev"]) if op is not None else 0.0
        amount = round(current + exposure_delta, 2)  # type: ignore[operator]
        if abs(amount) > MAX_ABS_EV:
            result.skipped[sp] = f"{amount:+.2f} EV is beyond +-{MAX_ABS_EV:g} EV"
            return []
        if op is None:
            if (why := _left_to_a_person(doc, EXPOSURE)) is not None:
                result.skipped[sp] = why
                return []
            return _add_op(store, con, sp, doc, EXPOSURE, {"ev": amount},
                           f"propagated in scene {scene_id} by {reviewer}", reviewer, at) if amount else []
        return store._apply(con, sp, doc, OpChange(op["op_id"], ev=amount), reviewer, at)

    return change_scene(store, scene_id, reviewer, edit)
