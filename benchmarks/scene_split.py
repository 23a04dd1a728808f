"""Scene grouping alone against known truth: analyse a generated shoot once, then group it in seconds.

``benchmarks/consistency.py`` measures the whole journey (three runs with
renders and exports, minutes a shoot); choosing the grouping's constants needs
only the grouping. This script builds the same generated shoots
(:mod:`scene_shoot`), analyses each once through the real pipeline (decode,
measurements, keypoints, a plan; no render), keeps the output folder, and then
groups the manifest's records with the evidence files as planning does, printing
the adjusted Rand index and every frame put with another scene or left alone.

Splits: ``tune`` and ``tune-same-settings`` (the constants are chosen on them);
``held-out`` only with ``--held-out`` (the fresh split of ``consistency.py``:
look at it at the end, once or twice, and report it); ``retired-held-out`` with
``--retired`` (seen while the first grouping was built: a comparison).

    python benchmarks/scene_split.py [--work DIR] [--held-out]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import scene_shoot as ss  # noqa: E402
from consistency import FRAMES_PER_SCENE, LONG_EDGE, SPLITS, TESTDATA, Split, chart_text  # noqa: E402

from pipeline.imaging.measure.keypoints import read_keypoints  # noqa: E402
from pipeline.kernel.records import ImageRecord, Status  # noqa: E402
from pipeline.kernel.run import RunSettings, process_shoot  # noqa: E402
from pipeline.planning.scenes import frame_light, group_scenes  # noqa: E402
from pipeline.planning.views import describe_links, link_views  # noqa: E402

ANALYSIS_GRAPH = """schema_version: 1
name: analysis
description: the default graph up to the plan (no render) - scene grouping benchmark
stages:
  - stage: decode_raw
    params: {proxy_long_edge: 1600}
  - stage: measure_exposure
  - stage: find_keypoints
  - stage: detect_faces
  - stage: plan_retouch
"""

SAME_SETTINGS = Split("tune-same-settings", ss.TUNE_SCENES_SAME_SETTINGS, None, (5, 6))


def analysed(split: Split, seed: int, work: Path) -> tuple[Path, list[ss.FrameTruth]]:
    """Build and analyse the shoot once (kept in ``work``); its output folder and truth."""
    dest = work / f"{split.name}-{seed}"
    out = dest / "out"
    if not (out / "manifest.parquet").is_file():
        frames = ss.build_scene_shoot(dest, TESTDATA, split.scenes, FRAMES_PER_SCENE, seed, LONG_EDGE,
                                      split.distractor)
        graph = dest / "analysis.yaml"
        graph.write_text(ANALYSIS_GRAPH, encoding="utf-8")
        chart = dest / "chart.yaml"
        chart.write_text(chart_text("culinary", True), encoding="utf-8")
        process_shoot(RunSettings(shoot_dir=dest / "shoot", out_dir=out, executor="local", chart=chart,
                                  graph_path=graph, force=True))
    frames, _ = ss.read_truth(dest)
    return out, frames


def group(out: Path, use_keypoints: bool = True) -> tuple[list[ImageRecord], list[int | None], str]:
    """Group the analysed shoot's records as planning does (1800 s gap); the records, scenes and link summary."""
    records = [ImageRecord.from_row(r) for r in pq.read_table(out / "manifest.parquet").to_pylist()]
    keypoints = {}
    if use_keypoints:
        for i, r in enumerate(records):
            if r.status is Status.OK and r.keypoints_path:
                found = read_keypoints(out / r.keypoints_path)
                if found is not None:
                    keypoints[i] = found
    scenes = group_scenes(records, 1800, keypoints=keypoints)
    summary = describe_links(link_views([keypoints.get(i) for i in range(len(records))],
                                        [frame_light(r).view_frame() for r in records])) if keypoints else "-"
    return records, scenes, summary


def report(split: Split, seed: int, work: Path, use_keypoints: bool) -> float:
    out, frames = analysed(split, seed, work)
    records, scenes, summary = group(out, use_keypoints)
    found = {r.source_path: s for r, s in zip(records, scenes)}
    truth = {f.file: f.scene for f in frames}
    ari = ss.adjusted_rand_index([truth[f.file] for f in frames], [found[f.file] for f in frames])
    members: dict[int | None, set[str]] = {}
    sizes: dict[int | None, int] = {}
    for f in frames:
        members.setdefault(found[f.file], set()).add(f.scene)
        sizes[found[f.file]] = sizes.get(found[f.file], 0) + 1
    wrong = [f"{f.file} ({f.scene}{', close-up' if f.closeup else ''}) in {found[f.file]}" for f in frames
             if len(members[found[f.file]]) > 1 or sizes[found[f.file]] == 1]
    by_scene = {s: sorted({found[f.file] for f in frames if f.scene == s}) for s in sorted(set(truth.values()))}
    print(f"{split.name} seed {seed}: ARI {ari:.3f}; scenes found per place {by_scene}; {summary}")
    if wrong:
        print("   " + "; ".join(wrong))
    return ari


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/postprod-scene-split"))
    parser.add_argument("--held-out", action="store_true", help="also the held-out split (look once, at the end)")
    parser.add_argument("--retired", action="store_true", help="also the retired held-out split (seen before)")
    parser.add_argument("--no-keypoints", action="store_true", help="group by light and palette alone")
    args = parser.parse_args(argv)
    os.environ.setdefault("POSTPROD_MODEL_DIR", str(TESTDATA / "models"))
    os.environ.setdefault("POSTPROD_OFFLINE", "1")
    splits = [SPLITS[0], SAME_SETTINGS] + ([SPLITS[1]] if args.held_out else []) + (
        [SPLITS[2]] if args.retired else [])
    start = time.perf_counter()
    for split in splits:
        aris = [report(split, seed, args.work, not args.no_keypoints) for seed in split.seeds]
        print(f"== {split.name}: mean ARI {sum(aris) / len(aris):.3f}, min {min(aris):.3f}")
    print(f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
