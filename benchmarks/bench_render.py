"""Time every stage on one image against a bare LibRaw decode; prints a table.

    python benchmarks/bench_render.py [FILE ...] [--chart base] [--repeat 3]

Without files it builds the demo shoot (pipeline/demo.py) in a temporary
folder and times its 2400 px DNG IMG_0003 and the shared Canon G2 CRW. Each
number is the best of ``--repeat`` runs (the machine's other load only ever
adds time). "bare LibRaw" is ``rawpy.imread(path).postprocess()`` with its
defaults (AHD demosaic, 8-bit sRGB): what a script that only converts RAW
files would spend.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import rawpy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from render_cases import task_for  # noqa: E402

from charts.loader import load_chart  # noqa: E402
from pipeline.cli.demo import build_demo_shoot  # noqa: E402
from pipeline.kernel.records import AppliedBy, Operation, OperationKind, WorkItem  # noqa: E402
from pipeline.kernel.stage import RunContext  # noqa: E402
from stages import REGISTRY  # noqa: E402

#: Timed in this order, each with its default parameters.
STAGES = ("decode_raw", "measure_exposure", "detect_faces", "render", "export")

SHARED = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data"))

OPS = [
    Operation("exposure", OperationKind.EXPOSURE, {"ev": 0.4}, "bench", applied_by=AppliedBy.RENDERER),
    Operation("white_balance", OperationKind.WHITE_BALANCE, {"gains": [0.95, 1.0, 1.06]}, "bench"),
    Operation("straighten", OperationKind.STRAIGHTEN, {"angle_deg": 1.2, "axis": "horizon"}, "bench"),
]


def bare(path: Path) -> None:
    with rawpy.imread(str(path)) as raw:
        raw.postprocess()


def time_file(path: Path, chart_name: str, out_dir: Path, repeat: int) -> dict[str, float]:
    chart = load_chart(chart_name)
    context = RunContext(shoot_dir=path.parent, out_dir=out_dir, chart=chart, shoot_id="bench")
    stages = [REGISTRY[name](REGISTRY[name].Params(), context) for name in STAGES]
    for s in stages:
        s.setup()
    best: dict[str, float] = {}
    for _ in range(repeat):
        t = time.perf_counter()
        bare(path)
        best["bare LibRaw"] = min(best.get("bare LibRaw", 1e9), time.perf_counter() - t)
        task = task_for(path)
        item = WorkItem(task=task, record=task.new_record())
        total = 0.0
        for s in stages:
            if s.name == "render":
                item.record.operations = OPS
            t = time.perf_counter()
            s.process(item)
            dt = time.perf_counter() - t
            total += dt
            best[s.name] = min(best.get(s.name, 1e9), dt)
        best["pipeline total"] = min(best.get("pipeline total", 1e9), total)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--chart", default="base")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = args.files
        if not files:
            demo = build_demo_shoot(Path(tmp) / "demo")
            files = [p for p in demo if p.name == "IMG_0003.dng"]
            crw = SHARED / "raw" / "Canon_PowerShot_G2_CRW_0304.CRW"
            if crw.exists():
                files.append(crw)
        results = {f.name: time_file(f, args.chart, Path(tmp) / "out", args.repeat) for f in files}
    names = list(next(iter(results.values())))
    print(f"chart: {args.chart}; best of {args.repeat}; milliseconds")
    print(f"{'stage':18s}" + "".join(f"{n[:28]:>30s}" for n in results))
    for n in names:
        print(f"{n:18s}" + "".join(f"{r[n] * 1000:30.0f}" for r in results.values()))
    print(f"{'total / bare':18s}" + "".join(f"{r['pipeline total'] / r['bare LibRaw']:30.2f}" for r in results.values()))


if __name__ == "__main__":
    main()
