"""Time the scene grouping of a large shoot: 2,000 frames in one run, keypoints and all.

The frames are views of real photographs (``benchmarks/scene_shoot.py``'s
windows, rendered in linear light at a proxy's size, no DNG): each photograph
of the shared data's ``exposure/`` and ``wb/`` folders gives two places (its left
and its right half, which share nothing), visited in turn by a photographer who
goes back and forth between two or three places at a time, with no gap long
enough to split the shoot (the worst case: every frame is one run). Each place
has its own light level, light colour and settings.

Printed: seconds to find one frame's keypoints (the worker's cost), seconds to
read the evidence files back (the planner's), seconds to group the whole shoot
with and without keypoints, the pairs matched, and the grouping's adjusted Rand
index against the places (information only: these photographs include the
tuning and held-out splits' own).

    python benchmarks/scene_grouping.py [--frames 2000] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import scene_shoot as ss  # noqa: E402

from pipeline.imaging.measure.keypoints import find_keypoints, keypoints_bytes, read_keypoints  # noqa: E402
from pipeline.kernel.records import ImageRecord, SourceKind  # noqa: E402
from pipeline.planning.scenes import frame_light, group_scenes  # noqa: E402
from pipeline.planning.views import describe_links, link_views  # noqa: E402

TESTDATA = Path(os.environ.get("POSTPROD_TESTDATA", ROOT.parent / "shared" / "data")).resolve()
PROXY_LONG_EDGE = 900


def places(data: Path) -> list[tuple[str, np.ndarray]]:
    """Two places per photograph: its left and right halves (linear, exposed as a camera meters them)."""
    out = []
    for folder in ("exposure", "wb"):
        for path in sorted((data / folder).glob("*.[jJ][pP]*[gG]")):
            spec = ss.SceneSpec(path.stem, f"{folder}/{path.name}", 0.0, 5000, 400, 1 / 125, 5.6, 35)
            photo = ss.load_photo(data, spec)
            w = photo.shape[1]
            out += [(f"{path.stem} left", photo[:, : w // 2]), (f"{path.stem} right", photo[:, w - w // 2:])]
    return out


def shoot_plan(n_frames: int, n_places: int, rng: np.random.Generator) -> list[int]:
    """The place of each frame in capture order: two or three places open at a time, visited back and forth."""
    order: list[int] = []
    per_place = max(3, n_frames // n_places)
    left = {p: per_place for p in range(n_places)}
    opened: list[int] = []
    upcoming = list(range(n_places))
    while len(order) < n_frames and (opened or upcoming):
        while len(opened) < int(rng.integers(2, 4)) and upcoming:
            opened.append(upcoming.pop(0))
        place = opened[int(rng.integers(0, len(opened)))]
        for _ in range(min(left[place], int(rng.integers(1, 4)))):
            order.append(place)
            left[place] -= 1
        if left[place] == 0:
            opened.remove(place)
        if not upcoming and not opened:
            upcoming = [p for p in range(n_places) if left[p] > 0]
    return order[:n_frames]


def frame_setup(place: int, rng: np.random.Generator) -> tuple[float, float]:
    """A frame's bracket offset (EV, in the shutter) and its camera's As Shot white (K, its place's light +- noise)."""
    light_k = float(np.random.default_rng(place).uniform(2800, 6500))
    return float(rng.choice(ss.OFFSETS_EV)), float(1e6 / (1e6 / light_k + rng.normal(0, 5)))


def record(k: int, place: int, when: datetime, offset: float, as_shot_k: float,
           rng: np.random.Generator) -> ImageRecord:
    """A frame's record: its place's settings and light level, its bracket offset and As Shot white."""
    prng = np.random.default_rng(place)
    prng.uniform(2800, 6500)  # the place's light (frame_setup's draw)
    iso = float(prng.choice([100, 200, 400, 800, 1600]))
    aperture = float(prng.choice([2.8, 4.0, 5.6, 8.0]))
    row = dict(source_path=f"IMG_{k:05d}.dng", content_hash=f"{k:064x}", file_size=1, format="dng",
               source_kind=SourceKind.RAW, width=3000, height=2000, sharpness=100.0, lines_found=0,
               clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0,
               clipped_shadows_pct_b=0.0, phash="0" * 16, palette=None,
               exposure_meter_ev=float(prng.uniform(-2, 2)) + offset + float(rng.normal(0, 0.5)),
               shutter_s=2.0**offset / 125, aperture=aperture, iso=iso, captured_at=when,
               as_shot_temperature_k=as_shot_k, as_shot_tint=0.0,
               wb_cast_a=float(rng.normal(0, 2)), wb_cast_b=float(rng.normal(0, 2)), wb_temperature_shift_k=0.0)
    return ImageRecord.from_row(row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/postprod-scene-grouping"),
                        help="keeps the frames' keypoints between runs")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(2000)
    where = places(TESTDATA)
    plan = shoot_plan(args.frames, len(where), rng)
    args.work.mkdir(parents=True, exist_ok=True)
    setups = [frame_setup(place, rng) for place in plan]
    cache = args.work / f"keypoints-v2-{args.frames}.pkl"
    if cache.exists():
        keypoints, found_s = pickle.loads(cache.read_bytes())
    else:
        keypoints, found_s = [], []
        for place, (offset, as_shot_k) in zip(plan, setups):
            photo = where[place][1]
            window = ss._window(rng, photo)
            # The proxy as LibRaw renders it: the place under its light, exposed by the offset, balanced
            # for the camera's As Shot white.
            light = ss.scene_light(float(np.random.default_rng(place).uniform(2800, 6500)))
            gain = (2.0**offset * light / ss.scene_light(as_shot_k)).astype(np.float32)
            view = np.clip(ss.frame_pixels(photo, window, PROXY_LONG_EDGE) * gain, 0.0, 1.0)
            start = time.perf_counter()
            keypoints.append(find_keypoints(view))
            found_s.append(time.perf_counter() - start)
        cache.write_bytes(pickle.dumps((keypoints, found_s)))
    files = args.work / "evidence"
    files.mkdir(exist_ok=True)
    for k, kp in enumerate(keypoints):
        (files / f"{k}.npz").write_bytes(keypoints_bytes(kp))
    start = time.perf_counter()
    read = [read_keypoints(files / f"{k}.npz") for k in range(len(keypoints))]
    read_s = time.perf_counter() - start
    when = datetime(2025, 6, 1, 9, 0, 0)
    records = []
    for k, (place, (offset, as_shot_k)) in enumerate(zip(plan, setups)):
        when += timedelta(seconds=int(rng.integers(5, 40)))
        records.append(record(k, place, when, offset, as_shot_k, rng))
    start = time.perf_counter()
    plain = group_scenes(records, max_gap_s=1800)
    plain_s = time.perf_counter() - start
    start = time.perf_counter()
    scenes = group_scenes(records, max_gap_s=1800, keypoints=dict(enumerate(read)))
    grouped_s = time.perf_counter() - start
    start = time.perf_counter()
    links = link_views(read, [frame_light(r).view_frame() for r in records])
    link_s = time.perf_counter() - start
    ari = ss.adjusted_rand_index(plan, scenes)
    ari_plain = ss.adjusted_rand_index(plan, plain)
    load = os.getloadavg()[0]
    print(f"{len(records)} frames, {len(set(plan))} places, one run; load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"find_keypoints: {np.median(found_s) * 1000:.0f} ms per frame (median, {PROXY_LONG_EDGE} px proxy)")
    print(f"reading {len(read)} evidence files: {read_s:.2f} s")
    print(f"grouping without keypoints: {plain_s:.2f} s (ARI {ari_plain:.3f})")
    print(f"grouping with keypoints: {grouped_s:.2f} s (ARI {ari:.3f}), of which linking the views "
          f"{link_s:.2f} s; {describe_links(links)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
