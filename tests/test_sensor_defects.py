"""Hot, dead and stuck photosites: per frame from the CFA, per body across frames."""

from __future__ import annotations

import numpy as np
import pytest
import rawpy

from pipeline.equipment.findings import Body, FindingKind, FrameRef, photosite_findings
from pipeline.imaging.dng import write_dng
from pipeline.imaging.sensor_defects import PhotositeDeviation, PhotositeScan, find_photosite_outliers, scan_raw

RGGB = np.array([[0, 1], [3, 2]])
BLACK, WHITE = 512, 16383


def flat_cfa(level: float = 0.3, shape=(64, 96), seed: int = 0, noise: float = 0.004) -> np.ndarray:
    rng = np.random.default_rng(seed)
    signal = level + rng.normal(0.0, noise, shape)
    return np.rint(BLACK + np.clip(signal, 0, 1) * (WHITE - BLACK)).astype(np.uint16)


# --- tier 1 ------------------------------------------------------------------------------------
def test_hot_and_dead_photosites_on_a_flat_field():
    cfa = flat_cfa()
    cfa[10, 12] = WHITE  # hot: a red photosite at white
    cfa[21, 33] = BLACK  # dead: a green one at black
    scan = find_photosite_outliers(cfa, RGGB, [BLACK] * 4, WHITE)
    got = {(c.row, c.col, c.deviation) for c in scan.candidates}
    assert got == {(10, 12, PhotositeDeviation.BRIGHT), (21, 33, PhotositeDeviation.DARK)}
    hot = next(c for c in scan.candidates if c.row == 10)
    assert hot.value == pytest.approx(1.0)
    assert hot.neighbours == pytest.approx(0.3, abs=0.01)
    assert hot.sigmas > 100
    assert (scan.sensor_width, scan.sensor_height, scan.truncated, scan.skipped) == (96, 64, False, None)


def test_edges_and_fine_texture_are_not_candidates():
    cfa = flat_cfa(0.1)
    cfa[:, 48:] = flat_cfa(0.8)[:, 48:]  # a hard vertical edge
    cfa[30:34, 20:24] = flat_cfa(0.9)[30:34, 20:24]  # a 4x4 glint: 2x2 per colour plane, not one photosite
    assert find_photosite_outliers(cfa, RGGB, BLACK, WHITE).candidates == ()


def test_excess_must_beat_the_noise():
    quiet, loud = flat_cfa(noise=0.002), flat_cfa(noise=0.02)
    for cfa in (quiet, loud):
        cfa[10, 12] = np.uint16(BLACK + 0.45 * (WHITE - BLACK))  # 0.15 above a 0.3 field
    assert [(c.row, c.col) for c in find_photosite_outliers(quiet, RGGB, BLACK, WHITE).candidates] == [(10, 12)]
    # 0.15 is ~7.5 sigma over the field at sigma 0.02, but not 7 sigma beyond the brightest neighbour.
    assert find_photosite_outliers(loud, RGGB, BLACK, WHITE).candidates == ()


def test_candidates_are_capped_strongest_first():
    cfa = flat_cfa()
    for i in range(20):
        cfa[4 + 6 * (i % 10), 4 + 40 * (i // 10)] = np.uint16(BLACK + (0.5 + i * 0.02) * (WHITE - BLACK))
    scan = find_photosite_outliers(cfa, RGGB, BLACK, WHITE, max_candidates=5)
    assert scan.truncated and len(scan.candidates) == 5
    assert sorted(round(c.value, 2) for c in scan.candidates) == [0.8, 0.82, 0.84, 0.86, 0.88]
    assert [c.sigmas for c in scan.candidates] == sorted((c.sigmas for c in scan.candidates), reverse=True)


@pytest.mark.parametrize(
    "args, words",
    [
        ((np.zeros((4, 4), np.uint16), RGGB, 0, 100), "at least 6x6"),
        ((np.zeros((8, 8), np.uint16), np.zeros((6, 6)), 0, 100), "2x2"),
        ((np.zeros((8, 8), np.uint16), RGGB, 100, 100), "above the black level"),
    ],
)
def test_bad_input(args, words):
    with pytest.raises(ValueError, match=words):
        find_photosite_outliers(*args)


def test_a_negative_min_excess_is_refused():
    # The whole-mosaic gate leaves out the plane's edge photosites, which only a gate >= 0 allows.
    with pytest.raises(ValueError, match="min_excess"):
        find_photosite_outliers(flat_cfa(), RGGB, BLACK, WHITE, min_excess=-0.01)


def _scan(*positions: tuple[int, int, PhotositeDeviation, float]) -> PhotositeScan:
    from pipeline.imaging.sensor_defects import PhotositeCandidate

    return PhotositeScan(
        100, 80, tuple(PhotositeCandidate(r, c, d, v, 0.3, 50.0) for r, c, d, v in positions)
    )


BRIGHT, DARK = PhotositeDeviation.BRIGHT, PhotositeDeviation.DARK


def test_a_photosite_needs_three_frames_and_a_share_of_them():
    body = Body("S1", "Acme", "Z")
    frames = [FrameRef(f"f{i}.dng") for i in range(10)]
    hot = (40, 50, BRIGHT, 0.97)
    scans = [(_scan(hot, (i, i, BRIGHT, 0.9)), f) for i, f in enumerate(frames[:3])]  # + a transient per frame
    scans += [(_scan(), f) for f in frames[3:]]
    found = photosite_findings(body, scans)
    assert [(f.kind, f.frames, f.frames_examined) for f in found] == [(FindingKind.HOT_PIXEL, 3, 10)]
    assert (found[0].x, found[0].y) == pytest.approx(((50 + 0.5) / 100, (40 + 0.5) / 80))
    assert found[0].camera_serial == "S1"
    # Two frames are not enough; nor are 3 frames out of 20 (less than 30 %).
    assert photosite_findings(body, scans[1:]) == []
    assert photosite_findings(body, scans + [(_scan(), FrameRef(f"g{i}.dng")) for i in range(10)]) == []


def test_dead_and_stuck_are_told_apart():
    frames = [FrameRef(f"f{i}.dng") for i in range(4)]
    scans = [
        (_scan((10, 10, DARK, 0.0), (20, 20, BRIGHT if i % 2 else DARK, 0.41 + 0.005 * i)), f)
        for i, f in enumerate(frames)
    ]
    kinds = {(round(f.y * 80 - 0.5), round(f.x * 100 - 0.5)): f.kind for f in photosite_findings(Body(None, "A", "B"), scans)}
    assert kinds == {(10, 10): FindingKind.DEAD_PIXEL, (20, 20): FindingKind.STUCK_PIXEL}


def test_skipped_scans_count_for_nothing():
    frames = [FrameRef(f"f{i}.dng") for i in range(4)]
    skipped = PhotositeScan(100, 80, skipped="X-Trans")
    assert photosite_findings(Body("S"), [(skipped, f) for f in frames]) == []


# --- tier 2: DNGs and a real camera's sensor data ----------------------------------------------------
def test_scan_raw_on_a_generated_dng(tmp_path):
    cfa = flat_cfa(0.25, shape=(120, 160), seed=3)
    cfa[51, 77] = WHITE
    cfa[90, 10] = BLACK
    path = write_dng(tmp_path / "a.dng", cfa, pattern="GRBG", black_level=BLACK, white_level=WHITE)
    with rawpy.imread(str(path)) as raw:
        scan = scan_raw(raw)
    assert {(c.row, c.col, c.deviation) for c in scan.candidates} == {(51, 77, BRIGHT), (90, 10, DARK)}


def test_real_camera_frame_has_few_candidates(raw_dir):
    """A real Canon sensor (in a DNG): one frame may show a handful of outliers, not a flood."""
    with rawpy.imread(str(raw_dir / "tinydng_colorchart.dng")) as raw:
        scan = scan_raw(raw)
        w, h = raw.sizes.width, raw.sizes.height
    assert scan.skipped is None
    assert (scan.sensor_width, scan.sensor_height) == (w, h)
    assert len(scan.candidates) < 50 and not scan.truncated


def test_non_bayer_sensor_is_skipped_not_failed(raw_dir):
    with rawpy.imread(str(raw_dir / "RAW_KODAK_C330_FORMAT_NONE_YRGB.raw")) as raw:
        scan = scan_raw(raw)
    assert scan.skipped and scan.candidates == ()


def test_the_gate_keeps_every_photosite_beyond_its_extreme_neighbour():
    """The scan reads the neighbours again only of photosites its whole-mosaic dilation and erosion
    put beyond them, in bands of rows; with no noise test (sigmas=0) its candidates must be exactly
    the photosites beyond the brightest (darkest) of their 8 same-colour neighbours by the gate,
    found here by brute force, edges included."""
    rng = np.random.default_rng(7)
    cfa = flat_cfa(0.3, shape=(40, 58), seed=3, noise=0.03)  # noisy: many photosites near the gate
    cfa[:, 30:] = flat_cfa(0.7, shape=(40, 58), seed=4, noise=0.03)[:, 30:]  # an edge
    for r, c in rng.integers(0, (40, 58), (25, 2)):  # outliers, some on the border
        cfa[r, c] = WHITE if rng.random() < 0.5 else BLACK
    cfa[0, 0], cfa[39, 57] = WHITE, BLACK
    gate = 0.02
    scan = find_photosite_outliers(cfa, RGGB, BLACK, WHITE, sigmas=0.0, min_excess=gate, max_candidates=10**6)
    expected = set()
    v = cfa.astype(np.float64)
    for r in range(40):
        for c in range(58):
            ring = [v[min(max(r + dr, r % 2), 38 + r % 2), min(max(c + dc, c % 2), 56 + c % 2)]
                    for dr in (-2, 0, 2) for dc in (-2, 0, 2) if (dr, dc) != (0, 0)]
            if v[r, c] - max(ring) > gate * (WHITE - BLACK):
                expected.add((r, c, PhotositeDeviation.BRIGHT))
            if min(ring) - v[r, c] > gate * (WHITE - BLACK):
                expected.add((r, c, PhotositeDeviation.DARK))
    assert len(expected) > 20
    assert {(c.row, c.col, c.deviation) for c in scan.candidates} == expected
