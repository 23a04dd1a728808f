"""Sensor dust: per-frame evidence maps, and spots found where a body's frames agree."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.equipment.findings import (
    DUST_APERTURE_FULL,
    DUST_MIN_FRAMES,
    Body,
    DustAccumulator,
    FindingKind,
    FrameRef,
    aperture_weight,
    dust_findings,
)
from pipeline.imaging.color import srgb_to_linear
from pipeline.imaging.dust import (
    GRID_LONG_EDGE,
    DustEvidence,
    dust_evidence,
    grid_shape,
    standardised,
    to_sensor_frame,
)
from pipeline.imaging.orientation import sensor_to_viewed, swaps_axes, viewed_to_sensor


def texture(seed: int, shape=(683, 1024), level: float = 0.35, amount: float = 0.25) -> np.ndarray:
    """A smooth, random scene: blobs of every size, slightly coloured."""
    rng = np.random.default_rng(seed)
    h, w = shape
    out = np.zeros((h, w, 3), np.float32)
    for size in (4, 12, 40):
        noise = rng.normal(0, 1, (h // size + 2, w // size + 2, 3)).astype(np.float32)
        out += cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC) * (amount / 3)
    return np.clip(level * np.exp(out), 0.02, 0.9)


def with_dip(rgb: np.ndarray, u: float, v: float, depth: float, sigma_px: float, channels=(0, 1, 2)) -> np.ndarray:
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    dip = 1.0 - depth * np.exp(-((xx - u * w) ** 2 + (yy - v * h) ** 2) / (2 * sigma_px**2))
    out = rgb.copy()
    for c in channels:
        out[..., c] *= dip
    return out


def peak(score: np.ndarray) -> tuple[float, float]:
    r, c = np.unravel_index(np.argmax(score), score.shape)
    return (c + 0.5) / score.shape[1], (r + 0.5) / score.shape[0]


# --- tier 1: geometry ----------------------------------------------------------------------------
@pytest.mark.parametrize("o", range(1, 9))
def test_orientation_round_trip_and_image_turn(o):
    u, v = sensor_to_viewed(0.2, 0.7, o)
    assert viewed_to_sensor(u, v, o) == pytest.approx((0.2, 0.7))
    # A marker at a viewed position lands, after to_sensor_frame, at viewed_to_sensor of it.
    viewed = np.zeros((40, 60) if not swaps_axes(o) else (60, 40), np.float32)
    vh, vw = viewed.shape
    viewed[int(0.25 * vh), int(0.6 * vw)] = 1.0
    sensor = to_sensor_frame(viewed, o)
    assert sensor.shape == (40, 60)
    r, c = np.unravel_index(np.argmax(sensor), sensor.shape)
    sx, sy = viewed_to_sensor((int(0.6 * vw) + 0.5) / vw, (int(0.25 * vh) + 0.5) / vh, o)
    assert ((c + 0.5) / 60, (r + 0.5) / 40) == pytest.approx((sx, sy), abs=1e-9)


def test_grid_shape():
    assert grid_shape(3000, 2000) == (171, GRID_LONG_EDGE)
    assert grid_shape(2000, 3000) == (GRID_LONG_EDGE, 171)


# --- tier 1: one frame -------------------------------------------------------------------------------
def test_a_neutral_dip_scores_highest_where_it_is():
    rgb = with_dip(texture(1, amount=0.05), 0.3, 0.6, depth=0.15, sigma_px=6)
    ev = dust_evidence(rgb)
    assert ev.score.shape == (171, 256) and ev.score.dtype == np.float16
    x, y = peak(ev.score.astype(np.float32))
    assert (x, y) == pytest.approx((0.3, 0.6), abs=2 / 256)
    r, c = np.unravel_index(np.argmax(ev.score), ev.score.shape)
    assert float(ev.depth[r, c]) == pytest.approx(0.15, abs=0.06)
    assert 0.5 * 9 / 1024 < float(ev.radius[r, c]) < 2 * 9 / 1024  # about 1.5 sigma
    assert ev.usable_fraction > 0.95


def test_a_coloured_dip_scores_much_lower_than_a_neutral_one():
    base = texture(2, amount=0.05)

    def at_spot(rgb: np.ndarray) -> float:
        return float(dust_evidence(rgb).score[84:88, 126:130].astype(np.float32).max())

    neutral = at_spot(with_dip(base, 0.5, 0.5, 0.3, 6))
    red_only = at_spot(with_dip(base, 0.5, 0.5, 0.3, 6, channels=(0,)))  # a red-absorbing speck, not a shadow
    assert neutral > 3 * at_spot(base)
    assert red_only < 0.25 * neutral


def test_portrait_frames_map_to_the_sensor():
    """Shot upright (orientation 6), a sensor spot appears elsewhere in the viewed frame; the map puts it back."""
    sx, sy = 0.8, 0.25
    u, v = sensor_to_viewed(sx, sy, 6)
    rgb = with_dip(texture(3, shape=(1024, 683), amount=0.05), u, v, 0.15, 6)
    ev = dust_evidence(rgb, orientation=6)
    assert ev.score.shape == (171, 256)
    assert peak(ev.score.astype(np.float32)) == pytest.approx((sx, sy), abs=2 / 256)


def test_nothing_to_see_in_a_clipped_or_black_frame():
    assert dust_evidence(np.ones((400, 600, 3), np.float32)).score.max() == 0
    dark = dust_evidence(np.full((400, 600, 3), 0.001, np.float32))
    assert dark.score.max() == 0 and dark.usable_fraction == 0.0
    assert standardised(dark.score).max() == 0


def test_bad_input():
    with pytest.raises(ValueError, match="H>=64"):
        dust_evidence(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="float"):
        dust_evidence(np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="orientation"):
        dust_evidence(np.zeros((100, 100, 3), np.float32), orientation=9)


# --- tier 1: a body ----------------------------------------------------------------------------------
def add_up(evidence: list) -> DustAccumulator:
    acc = DustAccumulator()
    for i, ev in enumerate(evidence):
        acc.add(ev, FrameRef(f"f{i:02d}.dng", 1, 16.0))
    return acc


def accumulate(frames: list[np.ndarray]) -> DustAccumulator:
    return add_up([dust_evidence(rgb) for rgb in frames])


def test_a_spot_that_stays_while_the_scene_changes_is_dust():
    frames = [with_dip(texture(10 + i), 0.7, 0.2, 0.2, 5) for i in range(12)]
    spots = accumulate(frames).spots()
    assert len(spots) == 1
    s = spots[0]
    assert (s.x, s.y) == pytest.approx((0.7, 0.2), abs=2 / 256)
    assert len(s.frames) >= DUST_MIN_FRAMES and s.frames_examined == 12
    rows = dust_findings(Body("S1", "Acme", "Z"), spots)
    assert rows[0].kind is FindingKind.DUST and rows[0].camera_serial == "S1"
    assert rows[0].strength == pytest.approx(0.2, abs=0.08)
    assert "f/16" in rows[0].detail and 0.5 <= rows[0].confidence <= 1


def test_spots_that_move_with_the_scene_are_not_dust():
    rng = np.random.default_rng(5)
    frames = [with_dip(texture(20 + i), *rng.uniform(0.1, 0.9, 2), 0.12, 5) for i in range(12)]
    assert accumulate(frames).spots() == []


def test_two_frames_are_not_enough():
    frames = [with_dip(texture(30 + i), 0.4, 0.4, 0.3, 5) if i < 2 else texture(30 + i) for i in range(12)]
    evidence = [dust_evidence(f) for f in frames]
    assert add_up(evidence).spots() == []
    assert add_up(evidence[:2]).spots() == []
    # In three quarters of the frames it is dust. (Where every frame could show it, the body score
    # is a mean over all of them: a spot that shows in a minority of such frames is diluted.)
    evidence[2:9] = [dust_evidence(with_dip(f, 0.4, 0.4, 0.3, 5)) for f in frames[2:9]]
    spots = add_up(evidence).spots()
    assert [(round(s.x, 2), round(s.y, 2)) for s in spots] == [(pytest.approx(0.4, abs=0.01), pytest.approx(0.4, abs=0.01))]
    assert {f"f{i:02d}.dng" for i in range(9)} <= {f.source_path for f in spots[0].frames}


def evidence_map(seed: int, at: tuple[int, int], z: float, depth: float, shows: float) -> DustEvidence:
    """A frame's evidence map: scores of no spot, but ``z`` robust sigmas at cell ``at``, with the dip's ``depth``
    there and the shallowest dip the frame could show there (``shows``); elsewhere 5 % dips, 10 % showable."""
    rng = np.random.default_rng(seed)
    shape = grid_shape(1536, 1024)
    score = 1.0 + np.abs(rng.normal(0.0, 1.0, shape))
    med = np.median(score)
    score[at] = med + z * 1.4826 * np.median(np.abs(score - med))
    depths, showable = np.full(shape, 0.05), np.full(shape, 0.1)
    depths[at], showable[at] = depth, shows
    return DustEvidence(score.astype(np.float16), depths.astype(np.float16), np.full(shape, 0.002, np.float16),
                        showable.astype(np.float16), 0.9)


def test_frames_too_busy_to_show_the_particle_do_not_witness_it():
    """A dark thing of the scene at one place in a few busy frames is not taken for the dust a clear frame shows.

    Four web-sized JPEGs of a PENTAX K100D: one frame clear at the place (it could show a 7 % dip) reads a dip of
    18 %; two frames busy there (a head of dark hair, a building's stone: they could show no dip under 40-44 %)
    read 90 % and 56 %. Before, the three made a spot 56 % deep and the sensor was to be cleaned.
    """
    at = (73, 66)
    scene = [evidence_map(1, at, 10.0, 0.18, 0.07), evidence_map(2, at, 4.0, 0.90, 0.40),
             evidence_map(3, at, 3.5, 0.56, 0.44), evidence_map(4, at, 2.0, 0.37, 0.12)]
    assert add_up(scene).spots() == []
    # Frames that could show a dip of the clear frame's depth (within DUST_WITNESS_MARGIN) are its witnesses.
    dust = [evidence_map(1, at, 10.0, 0.18, 0.07), evidence_map(2, at, 4.0, 0.25, 0.20),
            evidence_map(3, at, 3.5, 0.15, 0.30), evidence_map(4, at, 2.0, 0.37, 0.12)]
    spots = add_up(dust).spots()
    assert len(spots) == 1 and len(spots[0].frames) == 3 and spots[0].depth == pytest.approx(0.18, abs=0.01)
    assert (spots[0].y, spots[0].x) == pytest.approx(((at[0] + 0.5) / 171, (at[1] + 0.5) / 256))


def busy(rgb: np.ndarray, u: float, v: float, seed: int) -> np.ndarray:
    """Strong texture at the scale of a dust shadow around (u, v): foliage, print, a patterned shirt."""
    h, w = rgb.shape[:2]
    noise = cv2.GaussianBlur(np.random.default_rng(seed).normal(0, 1, (160, 160)).astype(np.float32), (0, 0), 4)
    out = rgb.copy()
    y0, x0 = int(v * h) - 80, int(u * w) - 80
    out[y0 : y0 + 160, x0 : x0 + 160] *= np.exp(noise / noise.std())[..., None]
    return out


def test_frames_that_cannot_show_a_place_do_not_dilute_it():
    # Six frames show the spot on a smooth scene; in six more the place is too busy to show anything.
    frames = [with_dip(texture(40 + i), 0.3, 0.6, 0.2, 5) for i in range(12)]
    frames[6:] = [busy(f, 0.3, 0.6, i) for i, f in enumerate(frames[6:])]
    evidence = [dust_evidence(f) for f in frames]
    acc = add_up(evidence)
    assert [(round(s.x, 2), round(s.y, 2)) for s in acc.spots()] == [(pytest.approx(0.3, abs=0.01), pytest.approx(0.6, abs=0.01))]
    # A plain mean over the twelve frames, in the same units, is well below the weighted score there.
    mean = sum(np.clip(standardised(ev.score), -3, 10) for ev in evidence) / 12
    mean = (mean - np.median(mean)) / (1.4826 * np.median(np.abs(mean - np.median(mean))))
    assert acc.body_score().max() >= mean.max() + 0.8


def test_aperture_weight_follows_the_shadow_depth():
    # The shadow's radius grows as 1/N, its depth falls as N**2: f/5.6 shows about a quarter of f/11.
    assert aperture_weight(DUST_APERTURE_FULL) == 1.0 and aperture_weight(22.0) == 1.0
    assert aperture_weight(5.6) == pytest.approx((5.6 / DUST_APERTURE_FULL) ** 2)
    assert aperture_weight(4.0) < aperture_weight(5.6) < aperture_weight(8.0) < 1.0
    assert aperture_weight(None) == 1.0 and aperture_weight(0) == 1.0  # the file does not say: counts fully
    with pytest.raises(ValueError, match="f-number"):
        aperture_weight(-2.8)
    with pytest.raises(ValueError, match="f-number"):
        DustAccumulator().add(dust_evidence(texture(1)), FrameRef("a", 1, -4.0))


def test_wide_open_frames_do_not_dilute_a_spot_their_small_aperture_frames_show():
    # 7 frames at f/16 show a 20 % shadow; 11 at f/4 show the same particle as the physics has it,
    # 16 times shallower and twice as wide: noise there. Weighted by aperture, the f/16 frames carry
    # the spot; weighted alike (the files not saying the aperture), the f/4 frames bury it.
    frames = []
    for i in range(18):
        n = 16.0 if i < 7 else 4.0
        frames.append((dust_evidence(with_dip(texture(60 + i), 0.35, 0.55, 0.2 * (n / 16) ** 2, 40 / n)), n))
    scores = {}
    for known in (True, False):
        acc = DustAccumulator()
        for i, (ev, n) in enumerate(frames):
            acc.add(ev, FrameRef(f"f{i:02d}.dng", 1, n if known else None))
        body = acc.body_score()
        r, c = int(0.55 * body.shape[0]), int(0.35 * body.shape[1])
        scores[known] = float(body[r - 1 : r + 2, c - 1 : c + 2].max())
        if known:
            assert [(round(s.x, 2), round(s.y, 2)) for s in acc.spots()] == [(pytest.approx(0.35, abs=0.01), pytest.approx(0.55, abs=0.01))]
        else:
            assert acc.spots() == []
    assert scores[True] >= scores[False] + 2.5


def test_maps_of_another_sensor_size_are_refused():
    acc = DustAccumulator()
    acc.add(dust_evidence(texture(1)), FrameRef("a"))
    with pytest.raises(ValueError, match="shape"):
        acc.add(dust_evidence(texture(2, shape=(1024, 1024))), FrameRef("b"))


# --- tier 2: real photos ---------------------------------------------------------------------------------
def test_no_dust_in_a_series_of_real_photos(exposure_dir):
    """Eleven different real photos: their dark round things do not line up into a spot.

    (Dust found through the whole path, real photos as DNGs through LibRaw, is
    tested on the generated corpus in test_equipment_corpus.py.)
    """
    photos = sorted(p for p in exposure_dir.glob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    frames = []
    for p in photos:
        with Image.open(p) as im:
            frames.append(srgb_to_linear(np.asarray(im.convert("RGB").resize((900, 600)), dtype=np.float32) / 255.0))
    assert len(frames) >= 10
    assert accumulate(frames).spots() == []


@pytest.mark.parametrize("shape", [(683, 1024), (341, 512), (1024, 683), (300, 257), (170, 256)])
def test_grid_pooling_covers_every_pixel_once(shape):
    from pipeline.imaging.dust import _to_grid

    a = np.random.default_rng(2).random(shape).astype(np.float32)
    rows, cols = grid_shape(shape[1], shape[0])
    for pool in (np.maximum, np.minimum):
        got = _to_grid(a, rows, cols, pool)
        if shape[0] >= rows and shape[1] >= cols:
            starts_y = -(-np.arange(rows) * shape[0] // rows)
            starts_x = -(-np.arange(cols) * shape[1] // cols)
            expected = pool.reduceat(pool.reduceat(a, starts_y, axis=0), starts_x, axis=1)
        else:
            expected = cv2.resize(a, (cols, rows), interpolation=cv2.INTER_NEAREST)
        assert np.array_equal(got, expected)


@pytest.mark.parametrize(("kind", "size", "evidence"), [("raster", (497, 331), False), ("raster", (1600, 1067), True),
                                                         ("raw", (976, 848), True)])
def test_a_small_rendered_copy_gives_no_dust_evidence(tmp_path, kind, size, evidence) -> None:
    # photoprism's example photos are 497 px copies of a Canon EOS 6D's frames: six "dust spots" came of
    # them that none of the frames shows. A camera's own JPEG is 2000 px or more; a RAW is the sensor.
    from pipeline.imaging.color import Proxy
    from pipeline.kernel.records import ImageRecord, SourceKind, SourceTask, WorkItem
    from pipeline.kernel.stage import RunContext
    from stages import REGISTRY

    w, h = size
    rgb = with_dip(texture(3, shape=(h, w)), 0.5, 0.4, 0.5, 3.0)
    path = tmp_path / ("a.jpg" if kind == "raster" else "a.dng")
    path.touch()  # (the identity read finds no EXIF in it)
    source_kind = SourceKind.RASTER if kind == "raster" else SourceKind.RAW
    record = ImageRecord(path.name, "0" * 64, 1, path.suffix[1:], source_kind)
    record.frame.width, record.frame.height = w, h
    item = WorkItem(SourceTask(path, path.name, "0" * 64, 1, path.suffix[1:], source_kind), record)
    item.artifacts["proxy"] = Proxy(rgb=rgb, scale=1.0)
    stage_cls = REGISTRY["inspect_equipment"]
    stage = stage_cls(stage_cls.Params(focus=False, lens=False, exiftool=False),
                      RunContext(shoot_dir=tmp_path, out_dir=tmp_path))
    stage.process(item)
    assert (record.equipment.dust_usable_pct is not None) == evidence
    assert (record.equipment.evidence_path is not None) == evidence
