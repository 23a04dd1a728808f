"""How long ``postprod operators`` takes on thousands of output folders, and whether it tracks defects right.

Generates N small output folders (default 2,000) as ``postprod process`` writes
them: a ``manifest.parquet`` of 30 frames (the record's own schema), an
``operators.parquet`` made by :func:`pipeline.equipment.analysis.operator_rows`
from those records, and an ``equipment.parquet`` with the findings of the
shoot's body. 60 bodies are shared by 25 photographers over two years; every
fourth body gets a dust spot at some shoot and has it cleaned some shoots
later (a known date), every fifth a hot photosite from some shoot on. Then it
runs the command (``python -m pipeline.cli operators ROOT``) in a fresh
process, prints the time, and checks every generated dust spot's status and
first appearance against what was generated.

    python benchmarks/operators.py [--folders 2000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow.parquet as pq  # noqa: E402

from pipeline.equipment.analysis import (  # noqa: E402
    EQUIPMENT_SCHEMA,
    OPERATORS_SCHEMA,
    assign_photographers,
    operator_rows,
)
from pipeline.kernel.records import (  # noqa: E402
    AppliedBy,
    ExposureVerdict,
    ImageRecord,
    Operation,
    OperationKind,
    SourceKind,
    Verdict,
)
from pipeline.kernel.schema import MANIFEST_SCHEMA, to_table, write_parquet_atomic  # noqa: E402

FRAMES = 30
BODIES = 60
PHOTOGRAPHERS = 25
START = datetime(2025, 1, 6, 9)


def _record(i: int, shoot: int, body: str, person: str, when: datetime, rng: random.Random) -> ImageRecord:
    r = ImageRecord(f"IMG_{i:04d}.CR3", f"{shoot:08x}{i:056x}", 25_000_000, "cr3", SourceKind.RAW)
    r.camera.make, r.camera.model, r.camera.captured_at = "Canon", "EOS R5", when + timedelta(seconds=7 * i)
    r.camera.aperture = rng.choice([4.0, 5.6, 8.0, 11.0, 16.0])
    r.identity.camera_serial, r.identity.artist = body, person
    r.plan.exposure_ev = rng.gauss(-0.2, 0.6)
    r.plan.exposure_verdict = ExposureVerdict.UNDER if r.plan.exposure_ev < -1 else (
        ExposureVerdict.OVER if r.plan.exposure_ev > 1 else ExposureVerdict.OK)
    r.lines.horizon_tilt_deg = rng.gauss(0.6, 1.0)
    r.lines.verticals_tilt_deg = rng.gauss(0.0, 1.2)
    r.equipment.focus_miss = rng.random() < 0.04
    ops = []
    if abs(r.plan.exposure_ev) > 0.3:
        ops.append(Operation("exposure", OperationKind.EXPOSURE, {"ev": -r.plan.exposure_ev}, "exposure"))
    if rng.random() < 0.1:
        ops.append(Operation("reject-sharpness", OperationKind.REJECT, {"check": "sharpness"}, "soft",
                             applied_by=AppliedBy.RETOUCHER))
    r.operations = ops
    r.plan.verdict = Verdict.REJECT if any(o.kind is OperationKind.REJECT for o in ops) else Verdict.ACCEPT
    return r


def generate(root: Path, folders: int, seed: int = 7) -> dict[str, tuple[datetime, datetime | None]]:
    """Write the folders; returns each dust spot's truth: body -> (first shoot date, cleaned-by shoot date)."""
    rng = random.Random(seed)
    people = [f"Photographer {k:02d}" for k in range(PHOTOGRAPHERS)]
    bodies = [f"0{31000000 + k}" for k in range(BODIES)]
    holder = {b: people[k % PHOTOGRAPHERS] for k, b in enumerate(bodies)}
    shoots_of: dict[str, list[datetime]] = {b: [] for b in bodies}
    plan = []
    for s in range(folders):
        when = START + timedelta(hours=9 * s + rng.randint(0, 5))
        body = bodies[rng.randrange(BODIES)]
        shoots_of[body].append(when)
        plan.append((s, when, body))
    # Dust on every fourth body: appears at its 3rd shoot, cleaned before its 3rd-from-last.
    dust = {}
    for k, b in enumerate(bodies):
        d = shoots_of[b]
        if k % 4 == 0 and len(d) >= 8:
            dust[b] = (d[2], d[-3])
    for s, when, body in plan:
        folder = root / f"shoot-{s:05d}"
        folder.mkdir(parents=True)
        person = holder[body]
        records = [_record(i, s, body, person, when, rng) for i in range(FRAMES)]
        assign_photographers(records)
        meta = {"shoot_id": f"shoot-{s:05d}", "shoot": str(folder)}
        write_parquet_atomic(to_table((r.to_row() for r in records), MANIFEST_SCHEMA, meta), folder / "manifest.parquet")
        write_parquet_atomic(to_table(operator_rows(records, meta["shoot_id"]), OPERATORS_SCHEMA, meta),
                             folder / "operators.parquet")
        findings = []
        k = bodies.index(body)
        base = {"shoot_id": meta["shoot_id"], "camera_serial": body, "camera_make": "Canon", "camera_model": "EOS R5",
                "photographer": person, "captured_from": when, "captured_until": when + timedelta(minutes=3),
                "frames_examined": FRAMES, "source_path": None, "confidence": 0.9}
        if body in dust and dust[body][0] <= when < dust[body][1]:
            findings.append({**base, "kind": "dust", "x": 0.3 + 0.002 * rng.random(), "y": 0.6, "radius": 0.004,
                             "strength": 0.2, "frames": 9, "evidence": [], "detail": "dust"})
        if k % 5 == 0 and when >= shoots_of[body][min(1, len(shoots_of[body]) - 1)]:
            findings.append({**base, "kind": "hot_pixel", "x": 0.5001, "y": 0.25, "radius": None, "strength": 0.9,
                             "frames": 18, "evidence": [], "detail": "hot"})
        for r in records:
            if r.equipment.focus_miss:
                findings.append({**base, "kind": "focus_miss", "x": 0.5, "y": 0.4, "radius": None, "strength": 2.4,
                                 "frames": 1, "source_path": r.source_path, "evidence": [r.source_path],
                                 "detail": "soft face"})
        write_parquet_atomic(to_table(findings, EQUIPMENT_SCHEMA, meta), folder / "equipment.parquet")
    return dust


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--folders", type=int, default=2000)
    ap.add_argument("--keep", type=Path, default=None, help="generate here and keep it (default: a temporary folder)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="postprod-operators-"))
    try:
        if root.exists() and any(root.iterdir()):
            shutil.rmtree(root)
        t = time.perf_counter()
        truth = generate(root / "outputs", args.folders)
        gen_s = time.perf_counter() - t
        out = root / "history"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([sys.executable, "-m", "pipeline.cli", "operators", str(root / "outputs"), "--out",
                               str(out), "--limit", "5"], env=env, capture_output=True, text=True)
        run_s = time.perf_counter() - t
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        if done.returncode:
            print(done.stdout, done.stderr)
            return 1
        print(done.stdout)
        defects = pq.read_table(out / "body_defects.parquet").to_pylist()
        dust = {d["body"]: d for d in defects if d["kind"] == "dust"}
        right = sum(1 for b, (first, cleaned) in truth.items() if b in dust and dust[b]["first_seen"] == first
                    and dust[b]["status"] == "gone")
        sizes = sum(f.stat().st_size for f in (root / "outputs").rglob("*.parquet"))
        print(f"| output folders | parquet files | generate | `postprod operators` (new process): wall / CPU | dust "
              f"spots tracked right (first seen, cleaned) |\n|---|---|---|---|---|\n| {args.folders} | "
              f"{sizes / 1e6:.1f} MB | {gen_s:.0f} s | {run_s:.2f} s / {cpu_s:.2f} s on {os.cpu_count()} CPUs | "
              f"{right}/{len(truth)} |")
        return 0 if right == len(truth) else 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
