"""Group photos made of tuning faces: how the faces rule's lift amount depends on the lit faces' spread.

In a real group photo the lit faces read apart from each other: skins of
different tones, people nearer a lamp or a window, faces turned. The faces
rule measures a shadow's depth against the other faces of the photo
(:func:`~pipeline.planning.rules.faces.judge_against_peers`), so that spread
goes straight into the amount. The tuning material's group photos are few
and evenly lit (a row of children on one pavement, a table under one lamp),
so the amounts there are good while the held-out split's group photos miss
by a median 0.65 EV (issue 17).

This script builds group photos that spread like real ones without a
held-out photo: each is a grid of cells, each cell a face of the tuning
material with the scene around it (:func:`benchmarks.faces_shadow_fit.tuning_face_sources`
with ``extra``: the tuning split's face photos and the shared and package
photos in no split of the benchmark's pool; it refuses a held-out source),
scaled to a common face width and cut to a cell that holds the face's
surround ring. The faces of one grid come from different photos, so they
differ in skin, light and exposure as much as photos do (an upper bound of
a real group's spread); within a photo the faces keep their own light. The
grids then get :func:`benchmarks.faces_shadow_fit.make_shoot`'s twins (a
shadow over one face at each depth, JPEG and DNG, the unshadowed grid, and
every other face shadowed), and run through postprod's analysis and plan.

It prints the faces rule's figures (as faces_shadow_fit.py does) and, over
the shadowed faces the rule lifts in a group, each amount estimator's
(:func:`estimators`) share within 0.3 EV and median error, by the unshadowed
twin's spread of the faces that count and by the face's own *lit offset*
(the peers' depth it reads on the unshadowed twin), then the mix's weight
refitted with one source left out (:func:`spread_table`). ``--from-dump``
takes this script's dumps and faces_shadow_fit.py's.

The acceptance rule, written before any estimator was tried (issue 17,
faces10): a new amount replaces the peers' median only if, with any constant
it fits refitted with one source left out, (1) the share of shadowed faces
lifted with an amount within 0.3 EV of the truth rises on this material and
on faces_shadow_fit.py's (``--extra-photos``) twins, (2) lit faces lifted do
not rise there nor on faces_lit_check.py's material, and (3) no row of
``accuracy.py --split tuning`` gets worse.

Measured 2026-11-30 (8 grids of 6 faces from 11 photos, 1280 px, 464 images; faces_shadow_fit.py
``--extra-photos`` at 1280 px beside it; shadowed faces lifted in a group, JPEG and DNG):

- the peers' amount (A) misses by the face's lit offset: slope 1.00, r 0.94 on the grids (1.02,
  r 1.00 on faces_shadow_fit's twins). Within 0.3 EV by |lit offset| on the grids: under 0.15 EV
  150 of 175, 0.15-0.3 62 of 84, 0.3-0.5 11 of 76, over 0.5 4 of 113.
- the surroundings' witness less the skin allowance (Bs) misses by the face's lit
  face-to-surroundings offset instead; the two misses are far from equal, and their weighted mean
  misses least where the lit offset is large (grids, over 0.5 EV: A 4, mix 45 of 113; 0.3-0.5 EV: 11
  and 51 of 76) and a little more where it is small (under 0.15 EV: 150 and 131 of 175).
- the weight, refitted with one source left out on both materials together: 0.7 for every source;
  within 0.3 EV A -> mix: grids 227 -> 296 of 448 (median |error| 0.29 -> 0.19), faces_shadow_fit's
  twins 190 -> 195 of 228 (0.16 -> 0.15). Refitted on faces_shadow_fit's twins alone: 184 of 228
  (their groups are evenly lit but for the tea room, where both witnesses miss by 1.4-1.6 EV).
- the grids lift lit faces far more often than real photos do (227 of 2208; faces_shadow_fit's
  twins 14 of 726): faces of different photos whose reading and whose face-to-surroundings ratio
  both sit under the key faces'. The amount does not change which faces are lifted.
- out of sample, the grids at 500 px (faces 37-51 px wide): within 0.3 EV A 253, mix (0.7) 296 of 464.
- the mix (0.7) in the rule (branch faces10-amount) against the acceptance rule: (1) passes with the
  weight refitted on both materials (above), fails with it refitted on faces_shadow_fit's twins alone
  (190 -> 184 of 228); (2) passes: found and lit faces lifted unchanged (faces_shadow_fit 14 of 726,
  grids 227 of 2208, faces_lit_check tuning 0 of 4/7/21 and 2 lifts on 20 photos outside the pool);
  (3) ``accuracy.py --split tuning``: amount within 0.3 EV 8 -> 9 of 10, every other row equal but
  the diagnostic median |amount error| 0.12 -> 0.14 EV. Not shipped: the rule asked for no row
  worse and one reading of (1) fails; tests/test_accuracy_floor.py's faces floor fails with it too
  (amount within 0.3 EV 3 -> 2 of 6 on its tiny corpus).

Usage::

    python benchmarks/faces_group_fit.py [--work DIR] [--long-edge PX] [--dump FILE]
    python benchmarks/faces_group_fit.py --from-dump FILE [FILE ...]
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.accuracy import analysis_graph, match_faces  # noqa: E402
from benchmarks.accuracy_corpus import Source, load_photo  # noqa: E402
from benchmarks.faces_shadow_fit import (  # noqa: E402
    LIT_BELOW_EV,
    SHADOWED_AT_EV,
    figures,
    make_shoot,
    replan,
    tuning_face_sources,
)

#: A cell of a grid (px, width x height) and the face box widths cycled over the cells: the cell
#: holds the face's surround ring (1.6 box sizes from its centre) with a margin.
CELL = (380, 440)
FACE_WIDTHS = (84, 100, 116)
#: The mix's weight on the surroundings' witness: refitted with any one source left out on the grids
#: and faces_shadow_fit.py's twins together, 0.7 every time (branch faces10-amount ships it in
#: rules.faces.shadow_amount; it did not pass its acceptance rule, see the docstring).
AMOUNT_WEIGHT = 0.7
#: Faces per grid, in rows of three, and grids made.
FACES_PER_GRID = 6
GRIDS = 8


def face_cells(sources: list[Any]) -> list[tuple[str, np.ndarray, tuple[float, float, float, float]]]:
    """Every face of ``sources`` inside its photo, cut to a cell around it: (source id, cell sRGB8, box in the cell)."""
    import cv2
    from PIL import Image

    cells = []
    n = 0
    for src in sources:
        photo = load_photo(src.path, 100_000)  # full size: cells are scaled once, below
        h, w = photo.shape[:2]
        for box in src.faces:
            x, y, bw, bh = box
            if x < 0 or y < 0 or x + bw > w or y + bh > h:
                continue  # a face cut by the frame
            target = FACE_WIDTHS[n % len(FACE_WIDTHS)]
            n += 1
            s = target / bw
            cw, ch = round(CELL[0] / s), round(CELL[1] / s)  # the cell in the photo's pixels, centred on the face
            x0, y0 = round(x + bw / 2 - cw / 2), round(y + bh / 2 - ch / 2)
            # Where the cell runs off the photo, the photo goes on mirrored (its own light, no border).
            pad = max(0, -x0, -y0, x0 + cw - w, y0 + ch - h)
            padded = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_REFLECT_101) if pad else photo
            crop = padded[y0 + pad:y0 + pad + ch, x0 + pad:x0 + pad + cw]
            cell = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize(CELL, Image.Resampling.LANCZOS))
            sx, sy = CELL[0] / cw, CELL[1] / ch
            cells.append((src.id, cell, ((x - x0) * sx, (y - y0) * sy, bw * sx, bh * sy)))
    return cells


def grids(cells: list[tuple[str, np.ndarray, tuple[float, ...]]], folder: Path, count: int = GRIDS,
          seed: int = 17) -> list[Any]:
    """``count`` grids of :data:`FACES_PER_GRID` faces, each face from a photo no other face of its grid is from
    where the faces allow (fixed seed), written as PNG sources with their boxes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    by_source: dict[str, list[int]] = {}
    for k, (sid, _, _) in enumerate(cells):
        by_source.setdefault(sid, []).append(k)
    uses = np.zeros(len(cells))
    out = []
    for g in range(count):
        picked: list[int] = []
        for sid in rng.permutation(sorted(by_source)):
            if len(picked) == FACES_PER_GRID:
                break
            least = min(by_source[sid], key=lambda k: (uses[k], rng.random()))
            picked.append(least)
        while len(picked) < FACES_PER_GRID:  # fewer photos than faces: a second face of some
            rest = [k for k in range(len(cells)) if k not in picked]
            picked.append(min(rest, key=lambda k: (uses[k], rng.random())))
        for k in picked:
            uses[k] += 1
        cols = 3
        rows = -(-len(picked) // cols)
        canvas = np.zeros((rows * CELL[1], cols * CELL[0], 3), np.uint8)
        boxes = []
        for i, k in enumerate(picked):
            r, c = divmod(i, cols)
            canvas[r * CELL[1]:(r + 1) * CELL[1], c * CELL[0]:(c + 1) * CELL[0]] = cells[k][1]
            bx, by, bw, bh = cells[k][2]
            boxes.append((bx + c * CELL[0], by + r * CELL[1], bw, bh))
        path = folder / f"grid{g}.png"
        from PIL import Image

        Image.fromarray(canvas).save(path)
        out.append(Source(f"grid/{g}", path, "faces", tuple(boxes)))
        ORIGINS[f"grid/{g}"] = [cells[k][0] for k in picked]
    return out


#: Grid id -> the source photo of each of its faces (left to right, top to bottom: the boxes' order).
ORIGINS: dict[str, list[str]] = {}


def _scene_gain(display_gain: float, ev: float, rendered: bool) -> float:
    """A lift wanted in display light (EV) as the gain the renderer applies: scene light for a RAW."""
    from pipeline.planning.rules.faces import shown_ev, unshown_ev

    return display_gain if rendered else unshown_ev(shown_ev(ev, True) + display_gain, True) - ev


def face_rows(records: dict[str, Any], truth: dict[str, list[dict[str, Any]]], chart: str = "base") -> list[dict[str, Any]]:
    """One row per shadowed face the plan lifted: its truth, the peers' spread and each estimator's amount.

    ``peers``: the peers' (the key faces other than the face) readings'
    standard deviation, in the light the renderer multiplies; ``A``: the
    rule's amount (the peers' median); ``B``: the surround witness as an
    amount (how much further under its surroundings the face reads than its
    peers under theirs, display light, turned into the renderer's gain);
    ``L``: the lone-face rule's amount (:data:`SURROUND_LIT_EV` less the
    face's own surround reading, as :func:`lone_face_shadow` gives a lone face).
    """
    from charts.loader import load_chart
    from pipeline.imaging.measure.metering import is_rendered
    from pipeline.planning.plan import plan_image
    from pipeline.planning.rules.faces import (
        SURROUND_LIT_EV,
        judge_against_peers,
        lit_by_falloff,
        lone_face_shadow,
        shown_ev,
        shown_surround_ev,
    )
    from pipeline.planning.state import PlanState

    resolved = load_chart(chart).chart
    lit_twins: dict[str, tuple[float, dict[int, tuple[float, float | None]]]] = {}
    for name in sorted(truth):
        r = records.get(name)
        if "_lit." not in name or r is None or r.status != "ok":
            continue
        plan = PlanState.start(r, resolved)
        plan_image(r, resolved, plan=plan)
        rendered = is_rendered(r.source_kind)
        counted = [shown_ev(r.faces[i].exposure_ev, rendered) for i in plan.faces_that_count
                   if r.faces[i].exposure_ev is not None]
        det = [([f.x, f.y, f.width, f.height], None) for f in r.faces]
        flash = lit_by_falloff([r.faces[i] for i in plan.faces_that_count])
        offsets = {}
        for k, j in enumerate(match_faces(truth[name], det)):
            if j is not None and plan.key_faces and j in plan.faces_that_count and r.faces[j].exposure_ev is not None:
                judged = judge_against_peers(r, plan.key_faces, j, flash)
                offsets[k] = (judged.depth, judged.surround)
        lit_twins[name] = (float(np.std(counted)) if len(counted) > 1 else 0.0, offsets)
    rows = []
    for name in sorted(truth):
        r = records.get(name)
        if r is None or r.status != "ok":
            continue
        plan = PlanState.start(r, resolved)
        plan_image(r, resolved, plan=plan)
        rendered = is_rendered(r.source_kind)
        lifts = {int(o.params["face_index"]): float(o.params["ev"]) for o in r.operations
                 if str(o.kind) == "brighten_face"}
        det = [([f.x, f.y, f.width, f.height], None) for f in r.faces]
        if not plan.key_faces or lone_face_shadow(r, plan.faces_that_count) is not None:
            continue  # no peers to judge against, or the lone-face rule's photo
        flash = lit_by_falloff([r.faces[i] for i in plan.faces_that_count])
        for k, (t, j) in enumerate(zip(truth[name], match_faces(truth[name], det))):
            if j is None or j not in lifts or j not in plan.faces_that_count:
                continue
            if not (t["shadow_ev"] >= SHADOWED_AT_EV or t["shadow_ev"] < LIT_BELOW_EV):
                continue
            f = r.faces[j]
            judged = judge_against_peers(r, plan.key_faces, j, flash)
            peers = [shown_ev(r.faces[p].exposure_ev, rendered) for p in plan.key_faces if p != j]
            own = shown_surround_ev(f, rendered)
            row = {"name": name, "tag": name.split("_")[0], "face": k, "truth": t["shadow_ev"],
                   "domain": "JPEG" if rendered else "DNG", "lift": lifts[j], "A": judged.depth,
                   "peers": float(np.std(peers)) if len(peers) > 1 else 0.0, "n_peers": len(peers),
                   "B": None if judged.surround is None else _scene_gain(judged.surround, f.exposure_ev, rendered),
                   "Bs": None if judged.surround is None else (
                       _scene_gain(judged.surround, f.exposure_ev, rendered) - judged.skin),
                   "L": None if own is None else _scene_gain(SURROUND_LIT_EV - own, f.exposure_ev, rendered)}
            natural, offsets = lit_twins.get(f"{name.split('_')[0]}_lit{Path(name).suffix}", (None, {}))
            row["natural"] = natural  # the unshadowed twin's spread of the faces that count
            row["offset_A"], row["offset_B"] = offsets.get(k, (None, None))  # where the face reads lit
            rows.append(row)
    return rows


def estimators(row: dict[str, Any], w: float | None = None) -> dict[str, float]:
    """The amounts compared: A (the peers' depth), B, Bs (B less the skin allowance), L, ``mix``
    ((1 - w) A + w Bs, ``w`` by default :data:`AMOUNT_WEIGHT`) and
    ``med`` (median of A, Bs, L)."""
    if w is None:
        w = AMOUNT_WEIGHT
    a, b, lone = row["A"], row["Bs"], row["L"]
    out = {"A": a}
    if b is not None:
        out["B"] = row["B"]
        out["Bs"] = b
        out["mix"] = (1 - w) * a + w * b
    if lone is not None:
        out["L"] = lone
    if b is not None and lone is not None:
        out["med"] = float(np.median([a, b, lone]))
    return out


def fit_w(rows: list[dict[str, Any]]) -> float:
    """The weight of B in ``mix`` that puts the most amounts within 0.3 EV (then the least median error)."""
    best = (-1, 0.0, 0.0)
    for w in np.linspace(0.0, 1.0, 11):
        errs = [abs(estimators(r, float(w))["mix"] - r["truth"]) for r in rows if r["B"] is not None]
        if not errs:
            return 0.0
        key = (sum(e <= 0.3 for e in errs), -statistics.median(errs), -float(w))
        if key > best:
            best = key
    return -best[2]


def spread_table(rows: list[dict[str, Any]], origin_of: Any = None) -> list[str]:
    """Amounts within 0.3 EV and median |error| per estimator, overall and by the peers' spread; the mix LOSO."""
    shadowed = [r for r in rows if r["truth"] >= SHADOWED_AT_EV]
    origin_of = origin_of or (lambda r: r["tag"])
    lines = []
    bins = ((0.0, 0.15), (0.15, 0.3), (0.3, 0.5), (0.5, 9.0))
    names = ("A", "B", "Bs", "L", "mix", "med")
    head = f"{'faces':>26s} {'n':>4s} " + " ".join(f"{n + ' in 0.3':>9s} {n + ' med':>7s}" for n in names)
    lines.append(head)
    groups = [("all", shadowed)]
    groups += [(f"natural {lo:.2f}-{hi:.2f}", [r for r in shadowed if r["natural"] is not None
                                                and lo <= r["natural"] < hi]) for lo, hi in bins]
    groups += [(f"|lit offset| {lo:.2f}-{hi:.2f}", [r for r in shadowed if r["offset_A"] is not None
                                                     and lo <= abs(r["offset_A"]) < hi]) for lo, hi in bins]
    for label, sel in groups:
        cols = []
        for n in names:
            errs = [abs(e[n] - r["truth"]) for r in sel if n in (e := estimators(r))]
            cols.append(f"{sum(x <= 0.3 for x in errs):4d}/{len(errs):<4d} "
                        f"{(statistics.median(errs) if errs else float('nan')):7.2f}")
        lines.append(f"{label:>26s} {len(sel):4d} " + " ".join(cols))
    # Leave one source out: the mix's weight fitted on the other sources' faces.
    within = n = 0
    errs = []
    for src in sorted({origin_of(r) for r in shadowed}):
        w = fit_w([r for r in shadowed if origin_of(r) != src])
        for r in (r for r in shadowed if origin_of(r) == src and r["B"] is not None):
            e = abs(estimators(r, w)["mix"] - r["truth"])
            errs.append(e)
            within += e <= 0.3
            n += 1
    if n:
        lines.append(f"mix, weight refitted leaving one source out: within 0.3 EV {within}/{n}, "
                     f"median |error| {statistics.median(errs):.2f}; weight on all: {fit_w(shadowed):.1f}")
    pairs = [(r["offset_A"], e["A"] - r["truth"]) for r in shadowed if r["offset_A"] is not None
             for e in [estimators(r)]]
    if len(pairs) > 2:
        x, y = np.array(pairs).T
        lines.append(f"A's error against the face's lit offset (A on its unshadowed twin): slope "
                     f"{np.polyfit(x, y, 1)[0]:.2f}, correlation {np.corrcoef(x, y)[0, 1]:.2f}, n {len(x)}")
    pairs = [(r["offset_B"], e["Bs"] - r["truth"]) for r in shadowed if r["offset_B"] is not None
             for e in [estimators(r)] if "Bs" in e]
    if len(pairs) > 2:
        x, y = np.array(pairs).T
        lines.append(f"Bs's error against the face's lit surround offset: slope {np.polyfit(x, y, 1)[0]:.2f}, "
                     f"correlation {np.corrcoef(x, y)[0, 1]:.2f}, n {len(x)}")
    lit = [r for r in rows if r["truth"] < LIT_BELOW_EV]
    lines.append(f"lit faces lifted (unchanged by an amount estimator: the decision is the rule's): {len(lit)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")))
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "postprod" / "faces_group_fit")
    parser.add_argument("--grids", type=int, default=GRIDS)
    parser.add_argument("--long-edge", type=int, default=max(CELL) * 3,
                        help="grids at most this many px (500: the small faces of snapshots and group photos)")
    parser.add_argument("--dump", type=Path, default=None, help="pickle the records and truth here")
    parser.add_argument("--from-dump", type=Path, nargs="*", default=None,
                        help="no analysis: plan these dumps (this script's or faces_shadow_fit.py's) again")
    args = parser.parse_args(argv)
    os.environ.setdefault("POSTPROD_MODEL_DIR", str(args.data / "models"))
    if args.from_dump:
        for path in args.from_dump:
            with path.open("rb") as fh:
                dumped = pickle.load(fh)  # noqa: S301 (a file this script or faces_shadow_fit.py wrote)
            truth, records = dumped["truth"], replan(dumped["records"])
            origins = dumped.get("origins", {})
            print(f"== {path.name}")
            for k, v in figures(records, truth).items():
                print(f"  {k}: {v}")
            rows = face_rows(records, truth)
            print("\n".join(spread_table(rows, lambda r, o=origins: o.get((r["tag"], r["face"]), r["tag"]))))
        return 0
    from pipeline.kernel.run import RunSettings, process_shoot

    t = time.perf_counter()
    sources = tuning_face_sources(args.data, args.work, extra=True)
    cells = face_cells(sources)
    print(f"{len(cells)} faces of {len({c[0] for c in cells})} photos: " + ", ".join(sorted({c[0] for c in cells})))
    made = grids(cells, args.work / "grids", args.grids)
    truth = make_shoot(made, args.work / "shoot", long_edge=args.long_edge)
    origins = {(f"s{n}", i): ORIGINS[g.id][i] for n, g in enumerate(made) for i in range(len(g.faces))}
    if (args.work / "out").exists():
        shutil.rmtree(args.work / "out")
    result = process_shoot(RunSettings(shoot_dir=args.work / "shoot", out_dir=args.work / "out", executor="local",
                                       graph_path=analysis_graph(args.work / "graph.yaml"), chart="base", force=True))
    records = {r.source_path: r for r in result.records}
    if args.dump:
        with args.dump.open("wb") as fh:
            pickle.dump({"truth": truth, "records": records, "origins": origins}, fh)
    print(f"{len(records)} images in {time.perf_counter() - t:.0f} s")
    for k, v in figures(records, truth).items():
        print(f"  {k}: {v}")
    rows = face_rows(records, truth)
    print("\n".join(spread_table(rows, lambda r: origins.get((r["tag"], r["face"]), r["tag"]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
