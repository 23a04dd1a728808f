"""Faces lifted in group photos of every kind: the faces rule on photos nobody drew a shadow on.

The accuracy benchmark and ``benchmarks/faces_shadow_fit.py`` put known shadows on faces of family snapshots and
count what the faces rule finds; their groups are mostly of one skin tone, seen bare-faced. Crowds, classes, teams
and press conferences hold darker and lighter skins side by side, dark glasses, masks, caps and posters. This script
runs postprod's analysis and plan (the default graph up to the plan, local executor, as ``benchmarks/do_no_harm.py``
does) on folders of such photos and counts, per folder, the faces detected, the faces given a lift (applied by the
renderer, or told a retoucher) and the faces sent to a check; with ``--before CHECKOUT`` the same with another
checkout's code in the same run, and the lifts that differ. There is no truth but the eye: ``--sheet`` draws every
lift on a contact sheet (the face in its surroundings, numbered as the printed lines), to be judged as a retoucher
would (a shadow, or a face lit like its neighbours: a darker skin, dark glasses, a poster).

    python benchmarks/faces_in_the_wild.py FOLDER [FOLDER ...] [--before CHECKOUT] [--work DIR] [--sheet PNG]
        [--report PATH]

Folders used (2026-12-05; none is stored in the repository, nothing was chosen on them): 200 photos of WIDER FACE's
events (crowds, parades, demonstrations, press conferences, 416x416, the ``representative_dataset`` of
vishalw-iitk/Widerface_Yolov5 at cbae228) and the 24 school, team and party photos of
Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB's ``imgs/``. Their figures are in ``FACES_IN_THE_WILD.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import machine  # noqa: E402
from benchmarks.do_no_harm import run  # noqa: E402


@dataclass(frozen=True)
class Lift:
    """One face given a lift: the photo, the face's index and box, the amount and who applies it."""

    photo: str
    face: int
    box: tuple[float, float, float, float]
    ev: float
    applied: bool
    proposed: bool = False  # the renderer's once a reviewer accepts it (render_on_accept)


@dataclass
class Pool:
    """What the plan did to the faces of one folder."""

    photos: int = 0
    faces: int = 0
    checks: int = 0
    lifts: tuple[Lift, ...] = ()

    def row(self) -> tuple[int, int, int, int, int, int, int]:
        """Photos, faces, faces lifted, of them applied by the renderer, of them proposed to a reviewer, photos with a
        lift, faces sent to a check."""
        applied = sum(lift.applied for lift in self.lifts)
        proposed = sum(lift.proposed for lift in self.lifts)
        return (self.photos, self.faces, len(self.lifts), applied, proposed, len({lift.photo for lift in self.lifts}),
                self.checks)


def faces_of(out: Path) -> Pool:
    """The faces rule's decisions in an output folder (its manifest, faces and instruction tables)."""
    import pyarrow.parquet as pq

    ok = {r["source_path"] for r in pq.read_table(out / "manifest.parquet", columns=["source_path", "status"])
          .to_pylist() if r["status"] == "ok"}
    pool = Pool(photos=len(ok), faces=sum(r["source_path"] in ok for r in pq.read_table(
        out / "faces.parquet", columns=["source_path"]).to_pylist()))
    lifts = []
    for r in pq.read_table(out / "instructions.parquet",
                           columns=["source_path", "kind", "params_json", "applied_by"]).to_pylist():
        params = json.loads(r["params_json"] or "{}")
        if r["kind"] == "brighten_face":
            lifts.append(Lift(r["source_path"], int(params["face_index"]), tuple(params["box"]),
                              float(params["ev"]), r["applied_by"] == "renderer", bool(params.get("render_on_accept"))))
        elif r["kind"] == "flag" and params.get("check") == "face_shadow":
            pool.checks += 1
    pool.lifts = tuple(sorted(lifts, key=lambda lift: (lift.photo, lift.face)))
    return pool


def contact_sheet(lifts: tuple[Lift, ...], folders: dict[str, Path], path: Path, per_row: int = 8) -> None:
    """Each lift's face in its surroundings (the box in red), numbered in the order of the printed lines."""
    import cv2
    import numpy as np

    cell_w, cell_h = 170, 190
    cells = []
    # Each photo decoded once, however many of its faces are lifted (the lifts come sorted by photo), and only one
    # held at a time.
    photo, image = None, None
    for n, lift in enumerate(lifts):
        if lift.photo != photo:
            photo, image = lift.photo, cv2.imread(str(folders[lift.photo] / lift.photo))
        cell = np.zeros((cell_h, cell_w, 3), np.uint8)
        if image is not None:
            x, y, w, h = lift.box
            x0, y0 = int(max(0, x - 1.2 * w)), int(max(0, y - 0.8 * h))
            x1, y1 = int(min(image.shape[1], x + 2.2 * w)), int(min(image.shape[0], y + 2.0 * h))
            crop = image[y0:y1, x0:x1].copy()
            cv2.rectangle(crop, (int(x - x0), int(y - y0)), (int(x + w - x0), int(y + h - y0)), (0, 0, 255), 1)
            scale = min((cell_w) / max(1, crop.shape[1]), (cell_h - 20) / max(1, crop.shape[0]))
            crop = cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))),
                              interpolation=cv2.INTER_CUBIC)
            cell[:crop.shape[0], :crop.shape[1]] = crop
        cv2.putText(cell, f"{n} {lift.ev:+.1f}{_how(lift)}", (2, cell_h - 5),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 255), 1)
        cells.append(cell)
    while not cells or len(cells) % per_row:
        cells.append(np.zeros((cell_h, cell_w, 3), np.uint8))
    rows = [np.hstack(cells[i:i + per_row]) for i in range(0, len(cells), per_row)]
    cv2.imwrite(str(path), np.vstack(rows))


def table(pools: dict[str, Pool], before: dict[str, Pool] | None) -> list[str]:
    """The counts per folder, as Markdown rows (before -> now with ``before``)."""
    head = ("photos", "faces", "faces lifted", "of them applied by the renderer",
            "of them proposed to a reviewer (applied once accepted)", "photos with a lift", "faces sent to a check")
    out = ["| folder | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, pool in pools.items():
        now = pool.row()
        if before is None:
            cells = [str(v) for v in now]
        else:
            was = before[name].row()
            cells = [str(v) if v == w else f"{w} -> {v}" for v, w in zip(now, was)]
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


def _how(lift: Lift) -> str:
    return " applied" if lift.applied else " proposed" if lift.proposed else ""


def changes(pools: dict[str, Pool], before: dict[str, Pool]) -> list[str]:
    """The lifts that differ between the two checkouts, one line each."""
    out = []
    for name, pool in pools.items():
        now = {(lift.photo, lift.face): lift for lift in pool.lifts}
        was = {(lift.photo, lift.face): lift for lift in before[name].lifts}
        for key in sorted(set(now) | set(was)):
            a, b = was.get(key), now.get(key)
            if a is not None and b is not None and (a.ev, a.applied, a.proposed) == (b.ev, b.applied, b.proposed):
                continue
            def text(lift: Lift | None) -> str:
                return "none" if lift is None else f"{lift.ev:+.2f} EV{_how(lift)}"
            out.append(f"  {name}/{key[0]} face {key[1] + 1}: {text(a)} -> {text(b)}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", type=Path, nargs="+", help="folders of group photos")
    ap.add_argument("--chart", default="base", help="chart name or YAML path (default base)")
    ap.add_argument("--before", type=Path, help="another checkout (a worktree) whose code runs beside this one's")
    ap.add_argument("--work", type=Path, help="keep the analyses here (default: a temporary folder)")
    ap.add_argument("--sheet", type=Path, help="draw this checkout's lifts on a contact sheet (PNG)")
    ap.add_argument("--report", type=Path, help="also write the table and the lines as Markdown to this file")
    ap.add_argument("--about", default="", help="with --report: a paragraph on what the lifts are, judged by eye")
    args = ap.parse_args(argv)
    folders = {f.resolve().name if f.resolve().name != "in" else f.resolve().parent.name: f.resolve()
               for f in args.folders}
    with tempfile.TemporaryDirectory(prefix="postprod-faces-wild-") as tmp:
        work = args.work or Path(tmp)
        pools = {name: faces_of(run(folder, args.chart, work / name / "now")) for name, folder in folders.items()}
        before = None if args.before is None else {
            name: faces_of(run(folder, args.chart, work / name / "before", checkout=args.before.resolve()))
            for name, folder in folders.items()}
    lines = [f"Faces lifted under chart {args.chart}" + ("" if before is None else f", {args.before} -> this checkout")]
    lines += [""] + table(pools, before) + [""]
    numbered = tuple(lift for pool in pools.values() for lift in pool.lifts)
    where = {lift.photo: folders[name] for name, pool in pools.items() for lift in pool.lifts}
    lines += ["Lifts now (numbered as on the contact sheet):"]
    lines += [f"  {n:3d} {lift.photo} face {lift.face + 1}: {lift.ev:+.2f} EV{_how(lift)}"
              for n, lift in enumerate(numbered)]
    if before is not None:
        lines += ["", "Lifts that differ:"] + changes(pools, before)
    print("\n".join(lines))
    if args.sheet:
        contact_sheet(numbered, where, args.sheet)
    if args.report:
        m = machine()
        command = ("python benchmarks/faces_in_the_wild.py " + " ".join(str(f) for f in args.folders)
                   + (f" --before {args.before}" if args.before else "") + (" --about TEXT" if args.about else ""))
        text = "\n".join([
            "# Faces lifted in group photos of every kind", "",
            "Written by `benchmarks/faces_in_the_wild.py --report` (its docstring says what the folders are and why): "
            "the faces rule on group photos nobody drew a shadow on. There is no truth but the eye (`--sheet`).",
            *(["", args.about] if args.about else []), "",
            f"- date: {m['date']}", f"- machine: {m['cpu']}, Python {m['python']}",
            f"- postprod: commit {m['postprod commit']}, code hash {m['code hash']}",
            f"- command: `{command}`", "",
            "```", *lines, "```", ""])
        tmp = args.report.with_name(f".{args.report.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, args.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
