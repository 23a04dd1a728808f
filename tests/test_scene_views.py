"""Keypoints of the analysis proxy and the views of one place they link (issue 14, scene grouping).

Tier 1: synthetic arrays and the evidence file. Tier 2: windows of real photographs of the
tuning split (benchmarks/scene_shoot.py's TUNE_SCENES; never the held-out split's), as the
generated shoots frame them: two views of one place link, two places do not, the same place
under another light is told apart, and the grouping separates two places that their light
and settings cannot.
"""

from __future__ import annotations

import hashlib

import gc
import importlib.util
import sys
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from charts.loader import load_chart
from pipeline.imaging.measure.keypoints import (
    KEYPOINTS_FORMAT,
    KeypointFiles,
    Keypoints,
    find_keypoints,
    keypoints_bytes,
    keypoints_path,
    read_keypoints,
    visual_words,
)
from pipeline.kernel.records import ImageRecord, SourceKind
from pipeline.planning.plan import plan_shoot
from pipeline.planning.scenes import frame_light, group_scenes, scene_labels
from pipeline.planning.views import (
    MIN_INLIERS,
    ViewFrame,
    ViewLinks,
    light_between,
    link_views,
    matched_keypoints,
)

ROOT = Path(__file__).resolve().parents[1]


def _load_shoot_module():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("scene_shoot", ROOT / "benchmarks" / "scene_shoot.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


ss = _load_shoot_module()
TUNE = {s.name: s for s in ss.TUNE_SCENES}
PLAIN = ViewFrame(settings_ev=0.0, white_rgb=(1.0, 1.0, 1.0), reference="raw")


# --- tier 1 -------------------------------------------------------------------------------------

def test_a_flat_frame_has_no_keypoints_and_bad_input_names_the_problem() -> None:
    assert len(find_keypoints(np.full((64, 96, 3), 0.18, np.float32))) == 0
    assert len(find_keypoints(np.zeros((64, 96, 3), np.float32))) == 0
    with pytest.raises(ValueError):
        find_keypoints(np.zeros((64, 96), np.float32))
    with pytest.raises(ValueError, match="max_keypoints"):
        find_keypoints(np.full((64, 96, 3), 0.18, np.float32), max_keypoints=0)
    with pytest.raises(ValueError, match="ORB descriptors"):
        visual_words(np.zeros((3, 16), np.uint8))


def test_the_evidence_file_round_trips_and_a_damaged_one_reads_as_absent(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    kp = Keypoints(rng.uniform(0, 1, (50, 2)).astype(np.float32), rng.integers(0, 256, (50, 32), dtype=np.uint8),
                   rng.uniform(0, 1, (50, 3)).astype(np.float32), np.zeros(50, np.uint16))
    kp = replace(kp, words=visual_words(kp.descriptors))
    path = tmp_path / keypoints_path("ab" * 32)
    path.parent.mkdir(parents=True)
    path.write_bytes(keypoints_bytes(kp))
    back = read_keypoints(path)
    assert back is not None and len(back) == 50
    assert np.array_equal(back.descriptors, kp.descriptors) and np.array_equal(back.words, kp.words)
    assert np.abs(back.xy - kp.xy).max() < 1e-4 and np.abs(back.rgb - kp.rgb).max() < 2e-3
    assert path.stat().st_size < 40_000
    path.write_bytes(keypoints_bytes(kp)[:100])
    assert read_keypoints(path) is None
    assert read_keypoints(tmp_path / "missing.npz") is None
    buf = tmp_path / "other.npz"
    np.savez(buf, format=np.array(KEYPOINTS_FORMAT + 1, np.int16), xy=np.zeros((0, 2), np.uint16))
    assert read_keypoints(buf) is None


def _random_keypoints(seed: int, n: int = 50) -> Keypoints:
    rng = np.random.default_rng(seed)
    descriptors = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    return Keypoints(rng.uniform(0, 1, (n, 2)).astype(np.float32), descriptors,
                     rng.uniform(0, 1, (n, 3)).astype(np.float32), visual_words(descriptors))


def test_keypoint_files_read_each_frame_when_asked_and_keep_nothing(tmp_path: Path) -> None:
    good, damaged = tmp_path / "good.npz", tmp_path / "damaged.npz"
    good.write_bytes(keypoints_bytes(_random_keypoints(1)))
    damaged.write_bytes(keypoints_bytes(_random_keypoints(2))[:100])
    files = KeypointFiles({0: good, 1: damaged, 2: tmp_path / "missing.npz"})
    assert len(files) == 3 and list(files) == [0, 1, 2]
    assert 1 in files and 3 not in files  # whether a frame has a file, without reading it
    first, again = files.get(0), files.get(0)
    assert first is not None and len(first) == 50 and first is not again  # read anew: nothing cached
    assert files.get(1) is None and files.get(2) is None and files.get(3) is None  # absent, as read_keypoints says
    with pytest.raises(KeyError):
        files[1]


def test_keypoint_files_keep_hash_named_paths_as_their_hashes(tmp_path: Path) -> None:
    # The stage's files (<content hash>.npz in one folder) are kept as 32 bytes each and found again by index,
    # whatever order the indices come in; any other path is kept as given.
    folder = tmp_path / ".postprod" / "keypoints"
    folder.mkdir(parents=True)
    named = {}
    for i in (7, 2, 9):
        path = folder / f"{hashlib.sha256(str(i).encode()).hexdigest()}.npz"
        path.write_bytes(keypoints_bytes(_random_keypoints(i, n=10 + i)))
        named[i] = path
    other = tmp_path / "elsewhere" / "frame.npz"
    other.parent.mkdir()
    other.write_bytes(keypoints_bytes(_random_keypoints(4, n=14)))
    upper = folder / f"{hashlib.sha256(b'5').hexdigest().upper()}.npz"  # not a name the stage writes: as given
    upper.write_bytes(keypoints_bytes(_random_keypoints(5, n=15)))
    files = KeypointFiles(iter([(7, str(named[7])), (2, str(named[2])), (4, other), (9, named[9]), (5, upper)]))
    assert len(files._index) == 3 and len(files._hashes) == 96  # the hash-named three as bytes
    assert sorted(files) == [2, 4, 5, 7, 9] and len(files) == 5
    for i in (2, 4, 5, 7, 9):
        assert i in files and len(files[i]) == 10 + i
    assert 3 not in files and files.get(3) is None and "7" not in files
    in_order = KeypointFiles({i: named[i] for i in sorted(named)})
    assert [len(in_order[i]) for i in in_order] == [12, 17, 19] and 8 not in in_order


class _WatchedKeypoints(Mapping[int, Keypoints]):
    """Keypoints made when asked for, counting how many made before are still held when another is."""

    def __init__(self, n: int) -> None:
        self.n, self.made, self.reads, self.most_held = n, {}, [], 0

    def __getitem__(self, index: int) -> Keypoints:
        if not 0 <= index < self.n:
            raise KeyError(index)
        gc.collect()
        self.most_held = max(self.most_held, sum(ref() is not None for ref in self.made.values()))
        self.reads.append(index)
        found = _random_keypoints(index)
        self.made[index] = weakref.ref(found)
        return found

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


def test_planning_holds_one_run_of_keypoints_at_a_time() -> None:
    """Issue 16 (target 5): the driver's planning must not hold every frame's keypoints of a shoot."""
    chart = load_chart("base").chart
    records = [_record(k, 0.0) for k in range(9)]
    for k, record in enumerate(records):  # three runs of three frames, hours apart
        record.camera.captured_at = START + timedelta(hours=3 * (k // 3), seconds=20 * k)
    watched = _WatchedKeypoints(len(records))
    plan_shoot(records, chart, keypoints=watched)
    assert sorted(watched.reads) == list(range(9))  # every frame read, once
    assert watched.most_held <= 2  # at most the frames of its own run before it
    assert all(r.plan.scene_id is not None for r in records)
    assert len({r.plan.scene_id for r in records}) >= 3  # the runs are apart: never one scene


# --- tier 2: windows of real photographs (tuning split) -------------------------------------------

@pytest.fixture(scope="module")
def photos(testdata: Path) -> dict[str, np.ndarray]:
    return {n: ss.load_photo(testdata, TUNE[n]) for n in ("bar", "street", "balcony")}


def _view(photo: np.ndarray, x: float, y: float, share: float, gain: float = 1.0,
          light: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    h, w = photo.shape[:2]
    ww = int(w * share)
    wh = min(ww * 2 // 3, h)
    window = (int((w - ww) * x), int((h - wh) * y), ww, wh)
    return np.clip(ss.frame_pixels(photo, window, 900) * np.float32(gain) * np.asarray(light, np.float32), 0, 1)


def test_two_views_of_one_place_link_and_two_places_do_not(photos: dict[str, np.ndarray]) -> None:
    wide = find_keypoints(_view(photos["bar"], 0.1, 0.2, 0.75))
    # Another view of the bar: moved, a third closer, and a stop brighter (exposure does not move keypoints).
    other_view = find_keypoints(_view(photos["bar"], 0.8, 0.6, 0.55, gain=2.0))
    street = find_keypoints(_view(photos["street"], 0.5, 0.5, 0.7))
    assert len(wide) > 100 and len(street) > 100
    assert len(matched_keypoints(wide, other_view)[0]) >= 2 * MIN_INLIERS
    assert len(matched_keypoints(wide, street)[0]) < MIN_INLIERS
    assert len(matched_keypoints(other_view, street)[0]) < MIN_INLIERS


def test_the_light_between_two_views_is_read_on_the_surfaces_they_share(photos: dict[str, np.ndarray]) -> None:
    a = find_keypoints(_view(photos["balcony"], 0.2, 0.3, 0.7))
    same = find_keypoints(_view(photos["balcony"], 0.7, 0.6, 0.6))
    # The same place with its warm lamps switched off: 1.5 stops less light, much bluer.
    lamp = find_keypoints(_view(photos["balcony"], 0.7, 0.6, 0.6, gain=2.0**-1.5, light=(0.8, 1.0, 1.25)))
    qi, ti = matched_keypoints(a, same)
    assert len(qi) >= MIN_INLIERS
    unchanged = light_between(a.rgb[qi], same.rgb[ti], PLAIN, PLAIN)
    assert unchanged.level_ev is not None and abs(unchanged.level_ev) < 0.3
    assert unchanged.mired is not None and abs(unchanged.mired) < 10
    assert not unchanged.changed()
    qi, ti = matched_keypoints(lamp, a)
    assert len(qi) >= MIN_INLIERS
    other = light_between(lamp.rgb[qi], a.rgb[ti], PLAIN, PLAIN)
    assert other.changed()
    assert other.level_ev is not None and -2.0 < other.level_ev < -1.0
    assert other.mired is not None and other.mired < -20  # the light without the lamps is cooler
    # The same ratios, explained by the camera (a shutter 1.5 stops shorter, and an As Shot white set for
    # a warmer light, which renders the same light bluer): the same light.
    camera = ViewFrame(settings_ev=-1.5, white_rgb=(1 / 0.8, 1.0, 1 / 1.25), reference="raw")
    assert not light_between(lamp.rgb[qi], a.rgb[ti], camera, PLAIN).changed()


START = datetime(2025, 3, 14, 9, 0, 0)


def _record(k: int, exposure_ev: float) -> ImageRecord:
    """Two places shot without touching the camera, under one daylight: the records cannot tell them apart."""
    row = dict(source_path=f"IMG_{k:04d}.dng", content_hash=f"{k:064x}", file_size=1, format="dng",
               source_kind=SourceKind.RAW, width=3000, height=2000, sharpness=100.0, lines_found=0,
               clipped_highlights_pct=0.0, clipped_shadows_pct_r=0.0, clipped_shadows_pct_g=0.0,
               clipped_shadows_pct_b=0.0, phash="0" * 16, palette=None, exposure_meter_ev=exposure_ev,
               shutter_s=1 / 125, aperture=5.6, iso=400, captured_at=START + timedelta(seconds=20 * k),
               as_shot_temperature_k=5200.0, as_shot_tint=0.0, wb_cast_a=0.0, wb_cast_b=0.0,
               wb_temperature_shift_k=0.0)
    return ImageRecord.from_row(row)


def test_keypoints_separate_two_places_their_light_and_settings_cannot(photos: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(5)
    places = ["bar", "street", "bar", "bar", "street", "street", "bar", "street"]
    records = [_record(k, float(rng.normal(0, 0.1))) for k in range(len(places))]
    keypoints = {k: find_keypoints(_view(photos[p], *rng.uniform(0, 1, 2), float(rng.uniform(0.55, 0.8))))
                 for k, p in enumerate(places)}
    assert len(set(group_scenes(records, 1800))) == 1  # by their light alone: one scene
    found = group_scenes(records, 1800, keypoints=keypoints)
    assert len(set(found)) == 2
    assert all((found[i] == found[j]) == (places[i] == places[j]) for i in range(8) for j in range(8))
    links = link_views([keypoints[k] for k in range(8)], [frame_light(r).view_frame() for r in records])
    assert links.matched < 8 * 7 // 2  # not every pair: the best candidate of each place
    # A frame without keypoints (evidence missing) is grouped by its light, not dropped.
    partial = group_scenes(records, 1800, keypoints={k: v for k, v in keypoints.items() if k != 3})
    assert None not in partial


def test_frames_the_keypoints_compared_and_linked_to_nothing_are_not_grouped_by_their_light() -> None:
    """Two close-ups of two places shot alike read the same light; only frames without keypoints group by it."""
    place = [_record(k, 0.0) for k in range(3)]
    # Two frames at other settings (ISO 1600) with the same light as each other.
    strays = [replace(_record(k, 2.0), camera=replace(_record(k, 2.0).camera, iso=1600.0)) for k in (3, 4)]
    lights = [frame_light(r) for r in place + strays]
    compared = ViewLinks(group=[0, 0, 0, 1, 2], matchable=[True] * 5)
    labels = scene_labels(lights, compared)
    assert labels[0] == labels[1] == labels[2] and len({labels[0], labels[3], labels[4]}) == 3
    without = ViewLinks(group=[0, 0, 0, 1, 2], matchable=[True, True, True, False, False])
    labels = scene_labels(lights, without)
    assert labels[3] == labels[4] != labels[0]


def test_a_close_up_joins_its_place(photos: dict[str, np.ndarray]) -> None:
    """A close-up two to three times closer than the other views shares few corners with them, enough."""
    rng = np.random.default_rng(9)
    places = ["bar", "street", "bar", "street", "bar", "street", "bar"]
    keypoints = [find_keypoints(_view(photos[p], *rng.uniform(0.3, 0.7, 2), float(rng.uniform(0.6, 0.8))))
                 for p in places]
    h, w = photos["bar"].shape[:2]
    x, y, ww, wh = ss._closeup_window(photos["bar"], bright=False)
    keypoints.append(find_keypoints(ss.frame_pixels(photos["bar"], (x, y, ww, wh), 900)))
    places.append("bar")
    links = link_views(keypoints, [PLAIN] * len(places))
    assert all((links.group[i] == links.group[j]) == (places[i] == places[j])
               for i in range(len(places)) for j in range(len(places)))


def _with_logo(view: np.ndarray, logo: np.ndarray) -> np.ndarray:
    """``view`` with ``logo`` stamped 12 px in from its bottom-right corner, as an agency stamps its listing photos."""
    out = view.copy()
    h, w = logo.shape[:2]
    out[-h - 12:-12, -w - 12:-12] = logo
    return out


def test_a_logo_both_pictures_carry_links_no_views(photos: dict[str, np.ndarray],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Two places stamped with one broker's logo in a corner share its keypoints at one place of both frames: without
    the spread of the inliers read, the logo alone links them (1,620 listing photos grouped into scenes of up to 93
    frames, their whites matched as one); two views of one place stamped with it still link, their matches spread
    over the place."""
    import pipeline.planning.views as views

    logo = _view(photos["balcony"], 0.3, 0.4, 0.9)[100:150, 200:300]  # a textured 100 x 50 px stamp
    bar = find_keypoints(_with_logo(_view(photos["bar"], 0.1, 0.2, 0.75), logo))
    street = find_keypoints(_with_logo(_view(photos["street"], 0.5, 0.5, 0.7), logo))
    other_view = find_keypoints(_with_logo(_view(photos["bar"], 0.8, 0.6, 0.55, gain=2.0), logo))
    with monkeypatch.context() as m:
        m.setattr(views, "MIN_INLIER_SPREAD", 0.0)
        assert len(matched_keypoints(bar, street)[0]) >= MIN_INLIERS  # what the logo did before
    assert len(matched_keypoints(bar, street)[0]) == 0
    assert len(matched_keypoints(bar, other_view)[0]) >= 2 * MIN_INLIERS
