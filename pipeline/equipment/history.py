"""Many shoots put together: per-photographer and per-body histories (``postprod operators``).

Each output folder holds ``operators.parquet`` (one row per photographer),
``equipment.parquet`` (one row per finding) and ``manifest.parquet`` (one
row per file). This module reads them for hundreds or thousands of folders
with pyarrow datasets (only the columns it needs, in parallel) and answers:

* per photographer: how their frames fared across shoots (shares of frames
  the charts corrected or rejected, and why; exposure and tilt habits;
  bursts, duplicates, focus misses);
* per camera body: its shoots, and each defect's history: a dust spot or a
  photosite is tracked by its position on the sensor from shoot to shoot;
  when it first appeared, when it was last seen, and whether later shoots
  that could have shown it did not (cleaned, or mapped out).

A later shoot *could have shown* a dust spot when the body shot at least
:data:`SHOWS_DUST_FRAMES` frames at f/8 or smaller in it (what a dust check
needs to find a spot that was found before); otherwise the spot's status is
"not seen since, too few frames to tell", not "cleaned".
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.equipment.analysis import (
    EQUIPMENT_NAME,
    EQUIPMENT_SCHEMA,
    EXPOSURE_BIN_EDGES,
    OPERATORS_NAME,
    OPERATORS_SCHEMA,
    TILT_BIN_EDGES,
    median_from_hist,
    share,
)

MANIFEST_NAME = "manifest.parquet"
#: Dust findings of one body closer than this (fraction of the frame's width) are one spot.
SAME_SPOT = 0.02
#: A later shoot could have shown a known dust spot with this many frames at f/8 or smaller.
SHOWS_DUST_FRAMES = 12
SMALL_APERTURE = 8.0
#: Folders below a given one searched for output folders.
SEARCH_DEPTH = 3
PHOTOSITE_KINDS = ("hot_pixel", "dead_pixel", "stuck_pixel")
_MANIFEST_COLUMNS = ("camera_serial", "camera_make", "camera_model", "captured_at", "aperture", "status",
                     "duplicate_of")


def find_output_folders(paths: Sequence[Path]) -> list[Path]:
    """Output folders among ``paths``: each one itself when it holds a manifest, else the ones below it.

    Raises
    ------
    FileNotFoundError
        When a path does not exist or no output folder is found at all.
    """
    found: list[Path] = []
    for root in paths:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a folder")
        if (root / MANIFEST_NAME).is_file():
            found.append(root)
            continue
        stack = [(root, 0)]
        while stack:
            folder, depth = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for e in entries:
                if e.is_dir(follow_symlinks=False) and not e.name.startswith("."):
                    p = Path(e.path)
                    if (p / MANIFEST_NAME).is_file():
                        found.append(p)
                    elif depth + 1 < SEARCH_DEPTH:
                        stack.append((p, depth + 1))
    if not found:
        raise FileNotFoundError("no postprod output folder (one with manifest.parquet) in "
                                + ", ".join(str(p) for p in paths))
    return sorted(set(found))


def _read(paths: list[Path], schema: pa.Schema) -> pa.Table:
    """The rows of every file (files that lack a column give nulls; missing files are left out)."""
    present = [str(p) for p in paths if p.is_file()]
    if not present:
        return schema.empty_table()
    return ds.dataset(present, format="parquet", schema=schema).to_table(use_threads=True)


@dataclass
class Tables:
    """What the folders hold, put together."""

    folders: list[Path]
    operators: pa.Table
    equipment: pa.Table
    body_shoots: pa.Table  # one row per (shoot, body): frames, small-aperture frames, dates


def load_tables(folders: Sequence[Path], threads: int | None = None) -> Tables:
    """Read the three tables of every output folder (only the columns needed)."""
    folders = list(folders)
    operators = _read([f / OPERATORS_NAME for f in folders], OPERATORS_SCHEMA)
    equipment = _read([f / EQUIPMENT_NAME for f in folders], EQUIPMENT_SCHEMA)
    return Tables(folders, operators, equipment, _body_shoots(folders, threads))


def _body_shoots(folders: list[Path], threads: int | None) -> pa.Table:
    """Per output folder and body: frames, frames at f/8 or smaller, first and last capture."""
    schema = pa.schema([pa.field(n, t) for n, t in (
        ("camera_serial", pa.string()), ("camera_make", pa.string()), ("camera_model", pa.string()),
        ("captured_at", pa.timestamp("ms")), ("aperture", pa.float64()), ("status", pa.string()),
        ("duplicate_of", pa.string()))])  # fmt: skip
    manifests = [f / MANIFEST_NAME for f in folders]
    dataset = ds.dataset([str(p) for p in manifests], format="parquet", schema=schema)

    def one(args: tuple[int, ds.Fragment]) -> pa.Table | None:
        index, fragment = args
        t = fragment.to_table(schema=schema, columns=list(_MANIFEST_COLUMNS), use_threads=False)
        t = t.filter(pc.and_(pc.equal(t["status"], "ok"), pc.is_null(t["duplicate_of"])))
        if not t.num_rows:
            return None
        body = pc.coalesce(t["camera_serial"], pc.binary_join_element_wise(
            pc.coalesce(t["camera_make"], ""), pc.coalesce(t["camera_model"], ""), " "))
        small = pc.greater_equal(pc.coalesce(t["aperture"], 0.0), SMALL_APERTURE)
        t = pa.table({"body": pc.utf8_trim_whitespace(body), "serial": t["camera_serial"],
                      "make": t["camera_make"], "model": t["camera_model"], "captured_at": t["captured_at"],
                      "small": pc.cast(small, pa.int32())})
        g = t.group_by("body").aggregate([
            ("body", "count"), ("small", "sum"), ("captured_at", "min"), ("captured_at", "max"),
            ("serial", "max"), ("make", "max"), ("model", "max")])  # fmt: skip
        meta = fragment.physical_schema.metadata or {}
        shoot = (meta.get(b"postprod.shoot_id") or b"").decode("utf-8", "replace") or folders[index].name
        g = g.append_column("folder", pa.array([index] * g.num_rows, pa.int32()))
        return g.append_column("shoot_id", pa.array([shoot] * g.num_rows, pa.string()))

    with ThreadPoolExecutor(max_workers=threads or min(8, os.cpu_count() or 2)) as pool:
        parts = [t for t in pool.map(one, enumerate(dataset.get_fragments())) if t is not None]
    if not parts:
        return pa.table({"body": pa.array([], pa.string())})
    t = pa.concat_tables(parts)
    t = t.rename_columns([{"body_count": "frames", "small_sum": "small_aperture_frames",
                           "captured_at_min": "captured_from", "captured_at_max": "captured_until",
                           "serial_max": "camera_serial", "make_max": "camera_make",
                           "model_max": "camera_model"}.get(n, n) for n in t.column_names])
    return t.filter(pc.not_equal(t["body"], ""))


# --- photographers ----------------------------------------------------------------------------------
_COUNTS = ("captures", "files", "failed", "planned", "accepted", "flagged", "rejected", "needs_exposure",
           "needs_white_balance", "needs_brighten_face", "needs_straighten", "to_retoucher", "exposure_under",
           "exposure_over", "duplicates", "near_duplicates", "bursts", "burst_frames", "focus_misses", "focus_judged",
           "pitched_frames")
_HISTS = ("exposure_ev_hist", "horizon_tilt_hist", "verticals_tilt_hist", "keystone_lean_hist")

PHOTOGRAPHERS_SCHEMA = pa.schema(
    [pa.field("photographer", pa.string(), nullable=False), pa.field("shoots", pa.int32()),
     pa.field("first_shoot", pa.timestamp("ms")), pa.field("last_shoot", pa.timestamp("ms")),
     pa.field("bodies", pa.list_(pa.string()))]
    + [pa.field(c, pa.int64()) for c in _COUNTS]
    + [pa.field(h, pa.list_(pa.int64())) for h in _HISTS]
    + [pa.field(n, pa.float64()) for n in ("rejected_share", "to_retoucher_share", "exposure_share",
                                           "white_balance_share", "brighten_face_share", "straighten_share",
                                           "exposure_ev_median", "horizon_tilt_median_deg",
                                           "verticals_tilt_median_deg", "focus_miss_share", "pitched_share",
                                           "keystone_lean_median_deg")]
    + [pa.field("reasons", pa.map_(pa.string(), pa.int64()))],
    metadata={"postprod.table": "photographers"},
)


def photographer_history(operators: pa.Table) -> list[dict[str, Any]]:
    """One row per photographer over every shoot (:data:`PHOTOGRAPHERS_SCHEMA`), most frames first."""
    acc: dict[str, dict[str, Any]] = {}
    for row in operators.to_pylist():
        a = acc.setdefault(row["photographer"], {
            "photographer": row["photographer"], "shoots": set(), "first_shoot": None, "last_shoot": None,
            "bodies": set(), **{c: 0 for c in _COUNTS}, **{h: None for h in _HISTS}, "reasons": defaultdict(int)})
        a["shoots"].add(row["shoot_id"])
        for key, pick in (("first_shoot", min), ("last_shoot", max)):
            when = row["captured_from" if key == "first_shoot" else "captured_until"]
            if when is not None:
                a[key] = when if a[key] is None else pick(a[key], when)
        a["bodies"].update(row["bodies"] or [])
        for c in _COUNTS:
            a[c] += row[c] or 0
        for h in _HISTS:
            if row[h]:
                a[h] = list(row[h]) if a[h] is None else [x + y for x, y in zip(a[h], row[h])]
        for k, v in row["reasons"] or []:
            a["reasons"][k] += v
    out = []
    for a in acc.values():
        n = a["planned"]
        exposure = median_from_hist(a["exposure_ev_hist"] or [], EXPOSURE_BIN_EDGES)
        horizon = median_from_hist(a["horizon_tilt_hist"] or [], TILT_BIN_EDGES)
        verticals = median_from_hist(a["verticals_tilt_hist"] or [], TILT_BIN_EDGES)
        keystone = median_from_hist(a["keystone_lean_hist"] or [], TILT_BIN_EDGES)
        out.append({
            **a, "shoots": len(a["shoots"]), "bodies": sorted(a["bodies"]),
            "reasons": sorted(a["reasons"].items(), key=lambda kv: -kv[1]),
            "rejected_share": share(a["rejected"], n), "to_retoucher_share": share(a["to_retoucher"], n),
            "exposure_share": share(a["needs_exposure"], n),
            "white_balance_share": share(a["needs_white_balance"], n),
            "brighten_face_share": share(a["needs_brighten_face"], n),
            "straighten_share": share(a["needs_straighten"], n),
            "exposure_ev_median": exposure, "horizon_tilt_median_deg": horizon,
            "verticals_tilt_median_deg": verticals,
            "focus_miss_share": share(a["focus_misses"], a["focus_judged"]),
            "pitched_share": share(a["pitched_frames"], n), "keystone_lean_median_deg": keystone,
        })  # fmt: skip
    out.sort(key=lambda r: (-r["captures"], r["photographer"]))
    return out


# --- bodies -------------------------------------------------------------------------------------------
BODIES_SCHEMA = pa.schema(
    [pa.field("body", pa.string(), nullable=False), pa.field("camera_serial", pa.string()),
     pa.field("camera_make", pa.string()), pa.field("camera_model", pa.string()),
     pa.field("shoots", pa.int32()), pa.field("frames", pa.int64()), pa.field("small_aperture_frames", pa.int64()),
     pa.field("first_shoot", pa.timestamp("ms")), pa.field("last_shoot", pa.timestamp("ms")),
     pa.field("dust_spots_present", pa.int32()), pa.field("dust_spots_gone", pa.int32()),
     pa.field("dust_spots_undecided", pa.int32()), pa.field("photosite_defects", pa.int32()),
     pa.field("focus_misses", pa.int64())],
    metadata={"postprod.table": "bodies"},
)

DEFECTS_SCHEMA = pa.schema(
    [pa.field("body", pa.string(), nullable=False), pa.field("kind", pa.string(), nullable=False),
     pa.field("x", pa.float64()), pa.field("y", pa.float64()), pa.field("radius", pa.float64()),
     pa.field("first_seen", pa.timestamp("ms")), pa.field("first_shoot", pa.string()),
     pa.field("last_seen", pa.timestamp("ms")), pa.field("last_shoot", pa.string()),
     pa.field("shoots_seen", pa.int32()), pa.field("shoots_since", pa.int32()),
     pa.field("shoots_since_that_could_show_it", pa.int32()),
     pa.field("status", pa.string(), nullable=False), pa.field("detail", pa.string())],
    metadata={"postprod.table": "body_defects"},
)


@dataclass
class _Track:
    kind: str
    x: float
    y: float
    radius: float | None
    seen: list[tuple[datetime | None, str]]


def body_history(tables: Tables) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of ``bodies.parquet`` and ``body_defects.parquet`` (:data:`BODIES_SCHEMA`, :data:`DEFECTS_SCHEMA`)."""
    shoots_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if tables.body_shoots.num_rows:
        for row in tables.body_shoots.to_pylist():
            shoots_of[row["body"]].append(row)
    findings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in tables.equipment.to_pylist():
        key = f["camera_serial"] or " ".join(p for p in (f["camera_make"], f["camera_model"]) if p)
        if key:
            findings[key].append(f)
    bodies, defects = [], []
    for key in sorted(set(shoots_of) | set(findings)):
        shoots = sorted(shoots_of.get(key, []), key=lambda r: (r["captured_from"] or datetime.min))
        tracks = _tracks(findings.get(key, []))
        rows = [_defect_row(key, t, shoots) for t in tracks]
        defects += rows
        first = next((s for s in shoots if s["captured_from"]), None)
        dust_rows = [r for r in rows if r["kind"] == "dust"]
        meta = shoots[0] if shoots else (findings[key][0] if findings.get(key) else {})
        bodies.append({
            "body": key, "camera_serial": meta.get("camera_serial"), "camera_make": meta.get("camera_make"),
            "camera_model": meta.get("camera_model"), "shoots": len(shoots),
            "frames": sum(s["frames"] for s in shoots),
            "small_aperture_frames": sum(s["small_aperture_frames"] or 0 for s in shoots),
            "first_shoot": first["captured_from"] if first else None,
            "last_shoot": max((s["captured_until"] for s in shoots if s["captured_until"]), default=None),
            "dust_spots_present": sum(r["status"] == "present" for r in dust_rows),
            "dust_spots_gone": sum(r["status"] == "gone" for r in dust_rows),
            "dust_spots_undecided": sum(r["status"] == "undecided" for r in dust_rows),
            "photosite_defects": sum(r["kind"] in PHOTOSITE_KINDS and r["status"] != "gone" for r in rows),
            "focus_misses": sum(1 for f in findings.get(key, []) if f["kind"] == "focus_miss"),
        })  # fmt: skip
    bodies.sort(key=lambda b: (-b["frames"], b["body"]))
    return bodies, defects


def _tracks(findings: list[dict[str, Any]]) -> list[_Track]:
    """A body's dust and photosite findings of all its shoots, tracked by position (earliest first)."""
    tracks: list[_Track] = []
    for f in sorted(findings, key=lambda f: (f["captured_from"] or datetime.min, f["shoot_id"])):
        if f["kind"] == "focus_miss" or f["x"] is None or f["y"] is None:
            continue
        near = SAME_SPOT if f["kind"] == "dust" else 1e-4
        match = next((t for t in tracks if t.kind == f["kind"] and math.hypot(t.x - f["x"], t.y - f["y"]) <= near),
                     None)
        when = f["captured_from"]
        if match is None:
            tracks.append(_Track(f["kind"], f["x"], f["y"], f["radius"], [(when, f["shoot_id"])]))
        elif f["shoot_id"] not in {s for _, s in match.seen}:
            match.seen.append((when, f["shoot_id"]))
    return tracks


def _defect_row(body: str, t: _Track, shoots: list[dict[str, Any]]) -> dict[str, Any]:
    first, last = t.seen[0], t.seen[-1]
    last_time = last[0]
    later = [s for s in shoots if last_time is not None and s["captured_from"] is not None
             and s["captured_from"] > last_time and s["shoot_id"] not in {x for _, x in t.seen}]
    if t.kind == "dust":
        could = [s for s in later if (s["small_aperture_frames"] or 0) >= SHOWS_DUST_FRAMES]
    else:
        could = [s for s in later if s["frames"] >= 3]
    where = f"at {t.x:.0%} across, {t.y:.0%} down"
    if not later:
        status, detail = "present", f"{t.kind} {where}: seen in the body's latest shoot"
    elif could:
        status = "gone"
        detail = (f"{t.kind} {where}: last seen {_day(last_time)} ({last[1]}); not in {len(could)} later shoot(s) "
                  f"that would show it, the first {_day(could[0]['captured_from'])} ({could[0]['shoot_id']}): "
                  + ("cleaned in between" if t.kind == "dust" else "mapped out or gone in between"))
    else:
        status = "undecided"
        detail = (f"{t.kind} {where}: last seen {_day(last_time)} ({last[1]}); the {len(later)} later shoot(s) had "
                  f"too few frames at f/{SMALL_APERTURE:g} or smaller to tell whether it is still there")
    return {"body": body, "kind": t.kind, "x": t.x, "y": t.y, "radius": t.radius, "first_seen": first[0],
            "first_shoot": first[1], "last_seen": last_time, "last_shoot": last[1], "shoots_seen": len(t.seen),
            "shoots_since": len(later), "shoots_since_that_could_show_it": len(could), "status": status,
            "detail": detail}


def _day(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d") if when else "undated"
