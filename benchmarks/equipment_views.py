"""A view shot again is no new picture: photosite and dust findings on real RAWs re-exposed as brackets.

The equipment checks call a photosite a defect when it stands out from its neighbours in frame after frame
"while the scene changes"; a tripod's series (an exposure bracket, a product turned a little between frames) does
not change the scene, and puts the view's glints and fine dark points on the same photosites in every frame. So
the frames of a merged bracket and a frame that is nearly the picture of an earlier one of its body (the plan's
near-duplicate, or its perceptual hash within :data:`pipeline.equipment.analysis.SAME_VIEW_HASH_BITS`) add no
photosite or dust evidence.

Here each real Bayer RAW of the shared data (``raw/``: two Canon PowerShot G2 and two S40 CRWs, real sensors with
their own defects) is re-exposed photosite by photosite (:func:`pipeline.imaging.dng.rescale_raw_to_dng`) at
-1.5, -0.4, 0, +1.0 and +1.5 EV: a bracket of five frames of one view, without EXIF bracketing (so the plan's
bracket rule does not merge it). postprod processes the twenty frames (local executor) under the chart ``base``
and under the same chart with near-duplicates ignored; the body findings are counted as the run reports them, and
as every frame counted them (before: each frame's facts with no near-duplicate, merge or hash). A finding whose
frames are all of one view is the view's, not the sensor's; one seen in both views of its body may be a real
defect of these 2002 compacts.

    python benchmarks/equipment_views.py [--work DIR] [--write benchmarks/EQUIPMENT_VIEWS.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.equipment.analysis import analyse_equipment, frame_facts  # noqa: E402
from pipeline.imaging.dng import rescale_raw_to_dng  # noqa: E402
from pipeline.kernel.run import RunSettings, process_shoot  # noqa: E402

#: The bracket each RAW becomes (EV against the frame as shot).
OFFSETS_EV = (-1.5, -0.4, 0.0, 1.0, 1.5)
PHOTOSITE_KINDS = ("hot_pixel", "dead_pixel", "stuck_pixel")
NO_DUPLICATES_CHART = """schema_version: 2
extends: base
description: base, near-duplicates ignored (equipment_views.py)
acceptance:
  duplicates: {max_hash_distance: 4, action: ignore}
"""


def build_shoot(raw_dir: Path, shoot: Path) -> list[str]:
    """The brackets of every Canon CRW of ``raw_dir`` in ``shoot``; returns the views' names."""
    shoot.mkdir(parents=True, exist_ok=True)
    views = []
    for src in sorted(raw_dir.glob("Canon_*.CRW")):
        views.append(src.stem)
        for off in OFFSETS_EV:
            dest = shoot / f"{src.stem}_ev{off:+.1f}.dng"
            if not dest.is_file():
                rescale_raw_to_dng(src, dest, 2.0**off)
    return views


def count(findings, views: list[str]) -> dict[str, Counter]:  # noqa: ANN001
    """Per body: photosite findings, and those whose evidence frames are all of one view."""
    out: dict[str, Counter] = {}
    for f in findings:
        if f.kind.value not in PHOTOSITE_KINDS:
            continue
        c = out.setdefault(f.camera_model or "?", Counter())
        seen = {v for v in views for e in f.evidence if e.startswith(v)}
        c["findings"] += 1
        c["one view"] += len(seen) == 1
        c["frames examined"] = max(c["frames examined"], f.frames_examined)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")))
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "postprod" / "equipment_views")
    ap.add_argument("--write", type=Path, default=None, help="also write the table to this Markdown file")
    args = ap.parse_args()
    shoot = args.work / "shoot"
    views = build_shoot(args.data / "raw", shoot)
    if not views:
        raise SystemExit(f"no Canon CRW in {args.data / 'raw'}")
    chart_file = args.work / "no_duplicates.yaml"
    chart_file.write_text(NO_DUPLICATES_CHART)
    rows = []
    for chart, name in (("base", "base"), (str(chart_file), "duplicates ignored")):
        out = args.work / f"out-{name.replace(' ', '-')}"
        result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart=chart))
        facts = [frame_facts(r) for r in result.records]
        every = [dataclasses.replace(f, near_duplicate=False, merged=False, phash=None) for f in facts]
        for counting, frames in (("every frame (before)", every), ("once a view (now)", facts)):
            for body, c in sorted(count(analyse_equipment(frames, out).findings, views).items()):
                rows.append((name, counting, body, c["findings"], c["one view"], c["findings"] - c["one view"],
                             c["frames examined"]))
    lines = ["| chart | frames counted | body | photosite findings | of one view only | of both views | frames "
             "examined |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {' | '.join(str(v) for v in row)} |" for row in rows]
    table = "\n".join(lines)
    print(table)
    if args.write:
        head = [
            "# Equipment findings when a view is shot again",
            "",
            "Written by `benchmarks/equipment_views.py` (its docstring says how the brackets are made). "
            "A body with no finding in a row is not listed.",
            "",
            f"- date: {datetime.now():%Y-%m-%d %H:%M}",
            f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}",
            f"- views: {', '.join(views)}; each at {', '.join(f'{o:+.1f}' for o in OFFSETS_EV)} EV",
            f"- command: `python benchmarks/equipment_views.py --write {args.write}`",
            "",
            "",
        ]
        args.write.write_text("\n".join(head) + table + "\n")
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
