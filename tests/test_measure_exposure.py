"""measure_exposure: synthetic arrays with inline expectations, then real photos.

Ground truth for the real photos is the file names and the data README
(shared/data/exposure): FiveK renders pushed 1.5 stops under (_N1.5) or over
(_P1.5), one over-exposed and three roughly normal Flickr photos.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from charts.loader import load_chart
from pipeline.imaging.color import Proxy, luminance, srgb_to_linear
from pipeline.imaging.decode import decode_raster
from pipeline.imaging.measure import (
    KEY_LOG2,
    WHITE_LOG2,
    clipped_pct,
    exposure_ev,
    exposure_verdict,
    hamming,
    inverse_tone_curve,
    line_tilts,
    measure_all,
    meter_log2,
    meter_rendered,
    meter_scene_linear,
    metering_reference,
    noise_sigma,
    phash,
    sharpness,
    tone_curve,
    white_balance_cast,
)
from pipeline.kernel.errors import InputError
from pipeline.kernel.graph import load_graph
from pipeline.kernel.ingest import scan_shoot
from pipeline.kernel.records import ExposureVerdict, ImageRecord, SourceKind
from pipeline.kernel.runner import Runner
from pipeline.kernel.schema import MANIFEST_SCHEMA, to_table
from pipeline.kernel.stage import RunContext
from pipeline.planning.rules.checks import SHARP_PART_TO_FRAME, crushed_pct
from stages.measure_exposure import MeasureExposure

TOLERANCE = load_chart("base").chart.exposure.tolerance_ev


# --- tier 1: synthetic arrays ------------------------------------------------------------


def test_clipped_pct_counts_each_channel_inline() -> None:
    rgb = np.full((10, 10, 3), 0.5, np.float32)
    rgb[0, :, 0] = 1.0  # 10 red clipped
    rgb[1, :5, :] = 1.0  # 5 pixels clipped in all three
    rgb[2, :, 1] = 0.0  # 10 green at black
    rgb[3, :2, 2] = 0.9951  # above 0.995: clipped
    rgb[3, 2:4, 2] = 0.994  # below: not
    rgb[4, :3, :] = 0.0  # 3 black pixels: crushed in every channel
    hi, lo, any_hi, black = clipped_pct(rgb)
    np.testing.assert_allclose(hi, [15.0, 5.0, 7.0])
    np.testing.assert_allclose(lo, [3.0, 13.0, 3.0])
    assert any_hi == pytest.approx(10 + 5 + 2)
    assert black == pytest.approx(3.0)  # the green row at 0 is a saturated colour, not black


def test_a_saturated_sky_is_not_crushed_shadows() -> None:
    # A deep blue sky over a sunlit cliff: the sky's red channel is 0 (as in immich's el_torcal_rocks.jpg, 16 % of
    # its pixels), its darkest pixels dark grey. The shadows check reads black pixels: none; the red channel
    # alone still says where it sits at black.
    rgb = np.full((100, 100, 3), 0.4, np.float32)
    rgb[:40] = (0.0, 0.1, 0.6)  # sky
    rgb[90:, :10] = 0.0  # 1 % of the frame black
    m = measure_all(rgb, False)
    assert m.exposure.clipped_shadows_pct_r == pytest.approx(41.0)
    assert m.exposure.clipped_shadows_pct == pytest.approx(1.0)
    record = ImageRecord(source_path="cliff.jpg", content_hash="0" * 64, file_size=1, format="jpeg",
                         source_kind=SourceKind.RASTER, exposure=m.exposure)
    assert crushed_pct(record) == pytest.approx(1.0)
    # A record measured before the black share was (null) is read on its worst channel, as it was then.
    before = dataclasses.replace(record, exposure=dataclasses.replace(m.exposure, clipped_shadows_pct=None))
    assert crushed_pct(before) == pytest.approx(41.0)


def test_clipped_pct_rejects_grey_image() -> None:
    with pytest.raises(ValueError, match="shape"):
        clipped_pct(np.zeros((10, 10), np.float32))


def test_the_meter_reads_key_and_white_point_against_a_well_exposed_photograph() -> None:
    # A photograph whose median and brightest pixels sit where a well-exposed one's do reads 0.
    assert meter_log2(KEY_LOG2, WHITE_LOG2) == pytest.approx(0.0, abs=1e-9)
    # Moved together, the reading moves with them (below the white point's clipping fade).
    assert meter_log2(KEY_LOG2 - 1.5, WHITE_LOG2 - 1.5) == pytest.approx(-1.5, abs=1e-9)
    assert meter_log2(KEY_LOG2 + 0.1, WHITE_LOG2 + 0.1) == pytest.approx(0.1, abs=1e-9)
    # A night scene: dark median, highlights where a well-exposed photograph has them: not brightened.
    assert meter_log2(KEY_LOG2 - 2.0, WHITE_LOG2) == pytest.approx(0.0, abs=1e-9)
    # A clipped white point says nothing: the key alone reads the push.
    assert meter_log2(KEY_LOG2 + 1.2, 0.0) == pytest.approx(1.2, abs=1e-9)
    # Bounded: the darkest and the brightest possible images read finite offsets.
    assert -30 < meter_log2(-24.0, -20.0) < -15 and meter_log2(0.0, 0.0) < 4.0


def test_exposure_ev_of_scene_linear_light_is_linear_in_stops() -> None:
    rng = np.random.default_rng(2)
    luma = (rng.lognormal(KEY_LOG2 * math.log(2), 0.9, (64, 64))).astype(np.float32).clip(0, 0.6)
    base = exposure_ev(luma, rendered=False)
    for k in (-2, -1, 0.5):
        assert exposure_ev(luma * np.float32(2.0**k), rendered=False) - base == pytest.approx(k, abs=1e-4)
    assert meter_scene_linear(luma) == base


def test_the_inverse_tone_curve_is_bounded_and_undoes_the_curve() -> None:
    assert float(inverse_tone_curve(0.0)) == 0.0 and float(inverse_tone_curve(1.0)) == pytest.approx(1.0)
    scene = np.logspace(-10, 0, 200, base=2.0)
    np.testing.assert_allclose(inverse_tone_curve(tone_curve(scene)), scene, rtol=2e-3)
    assert np.all(np.diff(tone_curve(scene)) > 0)
    # Camera-like: mid-grey scene light is shown brighter (the curve lifts the mid-tones), white stays white.
    assert 0.18 < float(tone_curve(0.18)) < 0.5
    # A rendered source is read in scene light: the same pixels as a RAW read darker.
    luma = np.full((32, 32), 0.2, np.float32)
    luma[:4] = 0.7
    assert meter_rendered(luma) < meter_scene_linear(luma)
    assert meter_rendered(np.clip(luma * 0, 0, 1) + 1.0) < 4.0  # pure white: a finite, bounded reading


def test_exposure_ev_refuses_black_but_meters_a_subject_on_black() -> None:
    luma = np.zeros((320, 320), np.float32)
    luma[:3, :300] = 0.5  # a lens cap's frame with a stray bright line: under 1 % lit
    for rendered in (False, True):
        with pytest.raises(InputError, match="pure black"):
            exposure_ev(luma, rendered=rendered)
    # A real photo taking a fifth of a pure black frame (an object on black velvet; photoprism's elephant was a
    # failed row, "at least half of the image is pure black"): keyed on what is lit, as the photo is alone.
    from skimage import data

    photo = luminance(srgb_to_linear(data.astronaut().astype(np.float32) / 255.0))
    photo = np.maximum(photo, 1e-4)  # (no pure black of its own)
    frame = np.zeros((1150, 1150), np.float32)
    frame[300:812, 300:812] = photo
    for rendered in (False, True):
        alone, on_black = exposure_ev(photo, rendered=rendered), exposure_ev(frame, rendered=rendered)
        assert on_black == pytest.approx(alone, abs=0.15)
        # A subject a stop darker reads darker: the key follows the subject.
        assert exposure_ev(frame * 0.5, rendered=rendered) < on_black - 0.5


def test_exposure_verdict_band() -> None:
    assert exposure_verdict(-0.71, 0.7) is ExposureVerdict.UNDER
    assert exposure_verdict(-0.7, 0.7) is ExposureVerdict.OK
    assert exposure_verdict(0.69, 0.7) is ExposureVerdict.OK
    assert exposure_verdict(0.71, 0.7) is ExposureVerdict.OVER
    with pytest.raises(ValueError):
        exposure_verdict(0.0, -1.0)


def _stripes(shape: tuple[int, int], period: int, vertical: bool) -> np.ndarray:
    img = np.full(shape, 0.05, np.float32)
    if vertical:
        img[:, (np.arange(shape[1]) // (period // 2)) % 2 == 0] = 0.6
    else:
        img[(np.arange(shape[0]) // (period // 2)) % 2 == 0, :] = 0.6
    return img


def _rotate(img: np.ndarray, deg: float) -> np.ndarray:
    """Rotate counter-clockwise as displayed, about the centre, then crop the borders away."""
    h, w = img.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    c = int(0.15 * min(h, w))
    return np.ascontiguousarray(out[c:-c, c:-c])


@pytest.mark.parametrize("deg", [-4.0, 2.5])
def test_line_tilts_of_rotated_stripes(deg: float) -> None:
    horizontal = line_tilts(_rotate(_stripes((700, 1000), 60, vertical=False), deg))
    assert horizontal.horizon_tilt_deg == pytest.approx(deg, abs=0.5)
    assert horizontal.verticals_tilt_deg is None
    vertical = line_tilts(_rotate(_stripes((700, 1000), 60, vertical=True), deg))
    # Turning counter-clockwise leans the tops of verticals to the left.
    assert vertical.verticals_tilt_deg == pytest.approx(-deg, abs=0.5)
    assert vertical.horizon_tilt_deg is None
    assert vertical.lines_found >= 3


def test_line_tilts_none_without_lines() -> None:
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.random((300, 400), dtype=np.float32), (0, 0), 20) * 0.2 + 0.2
    t = line_tilts(smooth)
    assert t.horizon_tilt_deg is None and t.verticals_tilt_deg is None and t.lines_found < 3


def _smooth_field(seed: int, shape: tuple[int, int] = (480, 640)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    field = cv2.GaussianBlur(rng.random(shape, dtype=np.float32), (0, 0), 12)
    field = (field - field.min()) / (field.max() - field.min())
    return srgb_to_linear(field)


def test_phash_stable_under_resize_and_far_for_another_image() -> None:
    a = _smooth_field(1)
    a_small = cv2.resize(a, (320, 240), interpolation=cv2.INTER_AREA)
    b = _smooth_field(2)
    ha, ha_small, hb = phash(a), phash(a_small), phash(b)
    assert len(ha) == 16 and int(ha, 16) >= 0
    assert hamming(ha, ha_small) <= 2
    assert hamming(ha, hb) >= 20


def test_hamming_inline() -> None:
    assert hamming("0000000000000000", "000000000000000f") == 4
    assert hamming("ffffffffffffffff", "0000000000000000") == 64
    assert hamming("00ff00ff00ff00ff", "00ff00ff00ff00fe") == 1
    with pytest.raises(ValueError, match="16 hex"):
        hamming("abc", "0000000000000000")


@pytest.mark.parametrize("sigma", [0.005, 0.02])
def test_noise_sigma_of_added_gaussian_noise(sigma: float) -> None:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:400, 0:600].astype(np.float32)
    clean = 0.3 + 0.4 * xx / 600 + 0.1 * np.sin(yy / 40)  # smooth, plus a few hard edges
    clean[100:300, 200:220] = 0.9
    noisy = clean + rng.normal(0, sigma, clean.shape).astype(np.float32)
    assert noise_sigma(noisy) == pytest.approx(sigma, rel=0.2)
    assert noise_sigma(clean) < 0.2 * sigma


def test_white_balance_cast_of_neutral_and_warm_greys() -> None:
    rng = np.random.default_rng(4)
    grey = np.repeat(rng.uniform(0.05, 0.6, (64, 64, 1)).astype(np.float32), 3, axis=2)
    neutral = white_balance_cast(grey)
    assert neutral is not None
    assert neutral.a == pytest.approx(0.0, abs=0.5) and neutral.b == pytest.approx(0.0, abs=0.5)
    assert neutral.temperature_shift_k == pytest.approx(0.0, abs=50)
    warm = white_balance_cast(grey * np.array([1.15, 1.0, 0.8], np.float32))
    assert warm is not None and warm.b > 5 and warm.temperature_shift_k < -800
    # Exposure does not change the cast.
    warm_dark = white_balance_cast(grey * np.array([1.15, 1.0, 0.8], np.float32) * 0.25)
    assert warm_dark.b == pytest.approx(warm.b, abs=0.5)


def test_sharpness_drops_with_blur() -> None:
    checker = np.kron((np.indices((40, 60)).sum(axis=0) % 2), np.ones((12, 12))).astype(np.float32) * 0.5 + 0.05
    blurred = cv2.GaussianBlur(checker, (0, 0), 4)
    assert sharpness(blurred) < 0.3 * sharpness(checker)
    with pytest.raises(ValueError, match="2-D"):
        sharpness(np.zeros((4, 600), np.float32))


def test_the_sharpest_part_of_a_photo_blurred_around_its_subject_stays_sharp() -> None:
    # skimage's coffee (a tuning photo) with all but the middle quarter of the frame (the cup) blurred as a shallow
    # depth of field would: the whole frame reads 5x softer, its sharpest part (the cup's rim) still sharp, at more
    # than SHARP_PART_TO_FRAME times the whole; blurred all over, both fall alike.
    from skimage import data

    from pipeline.imaging.measure.common import WORK_LONG_EDGE, encode_luma, resize_long_edge
    from pipeline.imaging.measure.focus import focus_measure

    luma = luminance(srgb_to_linear(data.coffee().astype(np.float32) / 255)).astype(np.float32)
    h, w = luma.shape
    bokeh = cv2.GaussianBlur(luma, (0, 0), 4.0)
    bokeh[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = luma[h // 4: 3 * h // 4, w // 4: 3 * w // 4]
    soft = cv2.GaussianBlur(luma, (0, 0), 4.0)

    def measured(img: np.ndarray):  # noqa: ANN202
        return focus_measure(img, encode_luma(resize_long_edge(img, WORK_LONG_EDGE)))

    sharp, shallow, blurred = measured(luma), measured(bokeh), measured(soft)
    assert sharp.sharpness_peak > sharp.sharpness
    assert shallow.sharpness < 0.25 * sharp.sharpness
    assert shallow.sharpness_peak > SHARP_PART_TO_FRAME * shallow.sharpness
    assert blurred.sharpness_peak < 0.01 * shallow.sharpness_peak
    assert blurred.sharpness_peak < SHARP_PART_TO_FRAME * 15  # base's minimum: soft all over stays soft


# --- tier 2: real photos -------------------------------------------------------------------

EXPECTED = {
    "a0716-MB_20030906_030_P1.5.JPG": ExposureVerdict.OVER,
    "a2192-IMG_2045_P1.5.JPG": ExposureVerdict.OVER,
    "a3354-MB_070908_069_P1.5.JPG": ExposureVerdict.OVER,
    "a0964-20061224_140610__E6B7217_N1.5.JPG": ExposureVerdict.UNDER,
    "a1359-NKIM_MG_6126_N1.5.JPG": ExposureVerdict.UNDER,
    "a2490-WP_CRW_3690_N1.5.JPG": ExposureVerdict.UNDER,
    "a4874-20090320_at_19h15m51__MG_0126_N1.5.JPG": ExposureVerdict.UNDER,
    "Justin Chiaratti-CC BY-NC-SA 2.0.jpg": ExposureVerdict.OVER,
    "Floris van Lint-CC BY-NC 2.0.jpg": ExposureVerdict.OK,
    "Probably Okay! (photo4) CC BY-SA 2.0.jpg": ExposureVerdict.OK,
    "Roland Tanglao-CC BY 2.0.jpg": ExposureVerdict.OK,
}

_cache: dict[tuple[str, int], np.ndarray] = {}


def proxy_of(exposure_dir: Path, name: str, long_edge: int = 1600) -> np.ndarray:
    key = (name, long_edge)
    if key not in _cache:
        _cache[key], _ = decode_raster(exposure_dir / name, long_edge, 250_000_000)
    return _cache[key]


def test_every_labelled_photo_is_present(exposure_dir: Path) -> None:
    on_disk = {p.name for p in exposure_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg")}
    assert on_disk == set(EXPECTED), "the exposure set changed: update EXPECTED from its README"


#: Where the plan's one number disagrees with the label: known misses, kept visible (strict: a fix shows).
#: (Two FiveK renders pushed 1.5 EV over, a0716 and a2192, read ok while the reference of a well-exposed
#: face was fitted on the four bright tuning photos with faces; with it fitted on 17 sources of tuning
#: material they read over, as labelled. Floris van Lint's upload reads 1.56 EV over, but its camera was set
#: to +4/3 EV of exposure compensation: the 0.23 EV left is ok, as labelled.)
KNOWN_MISSES = {
    # 1.5 EV under, but its dusk sky (5.3 % of the frame) is clipped, which puts its white point at full scale:
    # the meter never reads an image darker than its white point says, so it reads this one +0.30 (ok). Its
    # clipped-highlights flag says the rest reads 2.1 EV under (test_a_backlit_frame_is_told_what_its_rest_reads).
    "a4874-20090320_at_19h15m51__MG_0126_N1.5.JPG": "a clipped sky holds the reading up",
    # Keyed on its three faces (+0.97 to +1.42 over a well-exposed face's light, 2026-12-05) and its bright frame
    # (+1.78): +1.57 over, the darkening held at -0.78 EV by a face's skin. The faces read over as the frame does.
    "Probably Okay! (photo4) CC BY-SA 2.0.jpg": "its faces and its frame read over",
    # Keyed on two of its faces (+1.77, +2.08) and the bright frame (+1.39): +1.57 over, held at -0.79 EV.
    "Roland Tanglao-CC BY 2.0.jpg": "its faces and its frame read over",
}


@pytest.fixture(scope="module")
def planned(exposure_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Every photo of shared/data/exposure analysed and planned under the base chart (no render)."""
    from benchmarks.accuracy import analysis_graph
    from pipeline.kernel.run import RunSettings, process_shoot

    work = tmp_path_factory.mktemp("planned")
    result = process_shoot(RunSettings(shoot_dir=exposure_dir, out_dir=work / "out", executor="local",
                                       graph_path=analysis_graph(work / "graph.yaml"), chart="base"))
    return {r.source_path: r for r in result.records}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[n])) if n in KNOWN_MISSES else n
    for n in sorted(EXPECTED)])
def test_exposure_verdict_on_real_photos(planned: dict[str, object], name: str) -> None:
    # The plan's verdict on its one number (keyed on the faces that count, else the whole frame).
    r = planned[name]
    assert r.status == "ok", r.error
    assert r.plan.exposure_verdict is EXPECTED[name], (
        f"{name}: exposure_ev={r.plan.exposure_ev:+.2f} keyed on {r.plan.exposure_keyed_on}, "
        f"meter {r.exposure.meter_ev:+.2f}")
    if r.plan.exposure_keyed_on == "frame":
        assert r.plan.exposure_ev == pytest.approx(r.exposure.meter_ev)  # one number, no chart offset in base


def test_a_backlit_frame_is_told_what_its_rest_reads(planned: dict[str, object]) -> None:
    # The known miss above: its dusk sky at white holds the frame's reading at +0.30, "ok", no brightening. Its
    # clipped-highlights flag no longer reads as a call to darken: it says the rest reads 2.1 EV under and asks
    # for a local lift of the shadows.
    r = planned["a4874-20090320_at_19h15m51__MG_0126_N1.5.JPG"]
    (flag,) = [o for o in r.operations if o.params.get("check") == "clipped_highlights"]
    assert "the rest of the frame reads -2.10 EV: backlit" in flag.reason and flag.params["rest_ev"] == -2.1
    assert "a lift of the shadows is proposed" in flag.reason
    (lift,) = [o for o in r.operations if o.kind.value == "lift_shadows"]
    assert lift.params["ev"] == 0.7 and lift.params["rest_ev"] == -2.1
    # The photos developed over are clipped too (3-42 %), their rest is not under: each flag as before.
    for name in ("Justin Chiaratti-CC BY-NC-SA 2.0.jpg", "a0716-MB_20030906_030_P1.5.JPG",
                 "a2192-IMG_2045_P1.5.JPG", "a3354-MB_070908_069_P1.5.JPG"):
        (over,) = [o for o in planned[name].operations if o.params.get("check") == "clipped_highlights"]
        assert "backlit" not in over.reason and "rest_ev" not in over.params, name


# Two photos whose white point is not clipped: the range where the meter is linear (see meter_log2).
@pytest.mark.parametrize("name", ["a0964-20061224_140610__E6B7217_N1.5.JPG", "a1359-NKIM_MG_6126_N1.5.JPG"])
@pytest.mark.parametrize("k", [-1, 1, 2])
def test_exposure_ev_is_linear_in_stops_of_scene_light(exposure_dir: Path, name: str, k: int) -> None:
    # A JPEG shot k stops brighter: its scene light times 2**k, developed through the same curve.
    shown = luminance(proxy_of(exposure_dir, name))
    brighter = tone_curve(np.clip(inverse_tone_curve(shown) * 2.0**k, 0.0, 1.0)).astype(np.float32)
    base = exposure_ev(shown, rendered=True)
    assert exposure_ev(brighter, rendered=True) - base == pytest.approx(k, abs=0.15)


def test_sharpness_of_real_photo_drops_with_blur_and_ignores_size(exposure_dir: Path) -> None:
    name = "Roland Tanglao-CC BY 2.0.jpg"
    luma = luminance(proxy_of(exposure_dir, name))
    blurred = cv2.GaussianBlur(luma, (0, 0), 3)
    assert sharpness(blurred) < 0.5 * sharpness(luma)
    small = luminance(proxy_of(exposure_dir, name, long_edge=900))
    assert sharpness(small) == pytest.approx(sharpness(luma), rel=0.25)


def test_phash_of_a_resized_copy_is_near_and_other_photos_far(exposure_dir: Path) -> None:
    names = ["Floris van Lint-CC BY-NC 2.0.jpg", "Roland Tanglao-CC BY 2.0.jpg", "a2192-IMG_2045_P1.5.JPG"]
    hashes = [phash(luminance(proxy_of(exposure_dir, n))) for n in names]
    copy = phash(luminance(proxy_of(exposure_dir, names[0], long_edge=700)))
    assert hamming(hashes[0], copy) <= 4
    assert min(hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]) >= 16


def test_stage_writes_every_declared_field_into_a_valid_manifest_row(exposure_dir: Path, tmp_path: Path) -> None:
    shoot = scan_shoot(exposure_dir)
    graph = load_graph().segments()[0]
    task = next(t for t in shoot.tasks if t.source_path.startswith("Roland"))
    ctx = RunContext(shoot_dir=exposure_dir, out_dir=tmp_path, check_declarations=True)
    record = Runner(graph, ctx).run(task)
    assert record.status == "ok", record.error
    for group in MeasureExposure.writes:
        for f in dataclasses.fields(getattr(record, group)):
            if f.name not in ("horizon_tilt_deg", "verticals_tilt_deg", "colour_checker_box", "backdrop_rgb",
                              "backdrop_falloff", "subject_box", "border_bars", "sky_rgb"):  # none in this frame
                assert getattr(getattr(record, group), f.name) is not None, f"{group}.{f.name}"
    assert math.isfinite(record.exposure.meter_ev)
    # No chart is involved in measuring: the verdict and exposure_ev are the plan's (none before it).
    assert record.plan.exposure_ev is None and record.plan.exposure_verdict is None
    table = to_table([record.to_row()], MANIFEST_SCHEMA)
    assert table.column("exposure_meter_ev").to_pylist() == [pytest.approx(record.exposure.meter_ev)]
    assert len(table.column("phash").to_pylist()[0]) == 16


def test_the_stage_meters_each_kind_of_source_in_scene_light(exposure_dir: Path, tmp_path: Path) -> None:
    rgb = proxy_of(exposure_dir, "Roland Tanglao-CC BY 2.0.jpg")
    from pipeline.kernel.records import SourceKind, SourceTask, WorkItem

    evs = {}
    for kind in (SourceKind.RASTER, SourceKind.RAW):
        task = SourceTask(Path("x"), "x", "0" * 64, 1, "jpeg", kind)
        item = WorkItem(task=task, record=task.new_record(), artifacts={"proxy": Proxy(rgb=rgb, scale=1.0)})
        MeasureExposure(MeasureExposure.Params(), RunContext(shoot_dir=tmp_path, out_dir=tmp_path)).process(item)
        assert item.record.exposure.reference == metering_reference()
        evs[kind] = item.record.exposure.meter_ev
    luma = luminance(rgb)
    # Same pixels: a JPEG's are taken back through the camera's curve, a RAW's are scene light already.
    assert evs[SourceKind.RASTER] == pytest.approx(meter_rendered(luma), abs=1e-6)
    assert evs[SourceKind.RAW] == pytest.approx(meter_scene_linear(luma), abs=1e-6)
    assert evs[SourceKind.RASTER] < evs[SourceKind.RAW]


def test_saliency_centre_finds_the_odd_object() -> None:
    from pipeline.imaging.measure import saliency_centre

    img = np.full((300, 400), 0.4, np.float32)
    img += np.random.default_rng(1).normal(0, 0.01, img.shape).astype(np.float32)
    img[200:240, 300:350] = 0.95  # a bright object low on the right
    x, y = saliency_centre(img)
    assert 0.70 < x < 0.90 and 0.63 < y < 0.83


def _published_luminance(name: str) -> np.ndarray:
    """Display-linear luminance of one of the photographs scikit-image ships (as published, sRGB)."""
    import skimage.data

    im = getattr(skimage.data, name)()
    if im.ndim == 2:  # a grey photograph
        im = np.repeat(im[..., None], 3, axis=2)
    return luminance(srgb_to_linear((im[..., :3] / 255.0).astype(np.float32)))


def test_a_low_key_published_photo_is_not_pushed() -> None:
    # The rocket launch: most of the frame is dark (its median sits 1.5 EV under a typical photograph's
    # key), but its highlights reach white: as published, it needs no correction.
    shown = _published_luminance("rocket")
    key, white = (math.log2(float(v)) for v in inverse_tone_curve(np.percentile(shown, [50.0, 99.9])))
    assert key - KEY_LOG2 < -1.2 and white - WHITE_LOG2 > -0.5  # the key alone would brighten it
    assert abs(exposure_ev(shown, rendered=True)) <= 0.33  # the base chart's tolerance: left alone


@pytest.mark.parametrize("name", ["rocket", "coffee", "astronaut"])
def test_a_photo_rendered_1_5_ev_under_reads_1_5_ev_under(name: str) -> None:
    # The photo's scene light 1.5 EV lower, developed through the same camera curve: read within a
    # third of a stop of -1.5 (each reads within 0.3 EV of 0 as published), and exactly 1.5 below the
    # photo as published (its white point is not clipped).
    shown = _published_luminance(name)
    under = tone_curve(inverse_tone_curve(shown) * 2.0**-1.5).astype(np.float32)
    base, reading = exposure_ev(shown, rendered=True), exposure_ev(under, rendered=True)
    assert abs(base) <= 0.3
    assert reading == pytest.approx(-1.5, abs=0.33)
    assert reading - base == pytest.approx(-1.5, abs=0.05)


def _pushed(shown: np.ndarray, k: float) -> np.ndarray:
    """A rendered photo's scene light ``k`` EV brighter, developed through the same camera curve (white clips)."""
    return tone_curve(np.clip(inverse_tone_curve(shown) * 2.0**k, 0.0, 1.0)).astype(np.float32)


@pytest.mark.parametrize("name", ["rocket", "astronaut"])
def test_a_push_into_clipping_never_reads_darker_than_a_smaller_push(name: str) -> None:
    # What the meter holds once the white point clips (issue 17): a bigger push never reads darker, and a
    # clipped white point reads at least the clip level's own reading (a clipped image is never brightened).
    shown = _published_luminance(name)
    readings = [exposure_ev(_pushed(shown, k), rendered=True) for k in np.arange(0.0, 3.01, 0.25)]
    assert np.all(np.diff(readings) >= -1e-9), np.round(readings, 2)
    assert readings[-1] >= math.log2(0.97) - WHITE_LOG2


def _rolled_off(scene: np.ndarray) -> np.ndarray:
    """Scene light developed by a curve whose highlights roll off below white (darktable's default look does):
    a Reinhard-like shoulder that keeps mid-grey near the camera curve's and never reaches 0.97."""
    k = np.float32(0.45)
    return (np.float32(0.97) * (1 + k) * scene / (scene + k)).astype(np.float32)


@pytest.mark.parametrize("name", ["rocket", "coffee", "astronaut"])
def test_a_push_under_a_curve_that_rolls_highlights_off_reads_as_a_push(name: str) -> None:
    # Through the camera curve, such a look's white point sits below a photograph's (darktable's whites read 0.75
    # EV lower on the accuracy corpus's tuning twins), so with the white point weighed as a RAW's is, a photo
    # pushed 2 EV read 0.7-0.9 EV over the photo as developed. Its spread for a rendered source
    # (RENDERED_WHITE_SPREAD_EV) counts the curve's own uncertainty: the push reads at least 1 EV.
    scene = inverse_tone_curve(_published_luminance(name))
    base = exposure_ev(_rolled_off(scene), rendered=True)
    assert exposure_ev(_rolled_off(scene * 4.0), rendered=True) - base >= 0.97


#: The rocket launch as published reads -0.13 from its white point (its key 1.5 EV under); pushed 0.5 to 1.75
#: EV its white point clips (0.4 % of the frame at 1.5) and it reads +0.30, the clip level's own reading.
#: Readings of the clipped share or of the slope under the clip that would read the push also read over 1 to
#: 5 of the 27 tuning photographs that clip as published (benchmarks/fit_exposure_clip.py): the floor stays.
@pytest.mark.xfail(strict=True, reason="a clipped white point says only 'at least this bright' (reads +0.3)")
def test_a_low_key_photo_pushed_into_clipping_reads_the_push() -> None:
    shown = _published_luminance("rocket")
    reading = exposure_ev(_pushed(shown, 1.5), rendered=True)
    assert reading - exposure_ev(shown, rendered=True) == pytest.approx(1.5, abs=0.33)


#: Flat-lit published photos (mid-tones within a stop, highlights 1 to 2 EV below white): weighed as a RAW's
#: is, their white point read them under (-0.76, -0.55); with a rendered source's white point weighed by its
#: wider spread (RENDERED_WHITE_SPREAD_EV), -0.25 and -0.27.
@pytest.mark.parametrize("name", ["chelsea", "moon"])
def test_a_flat_lit_published_photo_is_not_pushed(name: str) -> None:
    assert abs(exposure_ev(_published_luminance(name), rendered=True)) <= 0.33


def test_a_cut_out_is_metered_on_its_opaque_pixels(tmp_path: Path) -> None:
    # The coffee cup cut out on a transparent background, flattened onto white for delivery: metered on the whole
    # frame, the white half read it 3.4 EV over and the plan darkened it 2 EV to grey. On its opaque pixels it
    # reads what the cup's own pixels read, whatever lies around them.
    from PIL import Image

    from pipeline.imaging.decode import decode_proxy
    from pipeline.kernel.records import SourceKind
    from tests.test_decode import _cutout

    path, _ = _cutout(tmp_path)
    decoded = decode_proxy(path, SourceKind.RASTER, 1600, 200_000_000)
    opaque = decoded.opacity >= 0.5
    kept = measure_all(decoded.rgb, True, opaque=opaque).exposure
    # Without its opacity the flattened cut-out is a packshot on white: its backdrop is found and left out too.
    whole = measure_all(decoded.rgb, True).exposure
    assert whole.backdrop_pct > 40 and whole.clipped_highlights_pct < 5
    assert whole.meter_ev == pytest.approx(kept.meter_ev, abs=0.3)
    on_black = tmp_path / "on_black.png"
    Image.open(path).convert("RGB").save(on_black)  # what the transparent pixels held: black
    black = measure_all(decode_proxy(on_black, SourceKind.RASTER, 1600, 200_000_000).rgb, True, opaque=opaque).exposure
    assert kept.meter_ev == pytest.approx(black.meter_ev, abs=1e-6)
    assert abs(kept.meter_ev) < 1.0 and kept.clipped_highlights_pct < 2.0 and kept.clipped_shadows_pct_g < 2.0


def _saturated_on_black(level: float) -> np.ndarray:
    """A saturated red subject (a fifth of the frame, its red channel at ``level``) on near-black, linear light."""
    rgb = np.full((400, 600, 3), 0.002, np.float32)
    yy, xx = np.mgrid[0:400, 0:600]
    subject = (yy - 200) ** 2 + (xx - 300) ** 2 < 110**2
    shade = np.clip(0.6 + 0.4 * (xx - 190) / 200, 0.6, 1.0).astype(np.float32)  # modelled, full scale at its right
    rgb[subject] = np.stack([level * shade, 0.05 * level * shade, 0.2 * level * shade], axis=-1)[subject]
    return rgb


@pytest.mark.parametrize("rendered", [False, True])
def test_a_saturated_subject_at_full_scale_is_not_read_under(rendered: bool) -> None:
    from pipeline.imaging.measure.metering import CHANNEL_WHITE_LOG2

    rgb = _saturated_on_black(1.0)
    by_luminance = exposure_ev(luminance(rgb), rendered)
    measured = measure_all(rgb, rendered).exposure
    # Its luminance (red is 0.21 of white) reads it well under; its red channel is at white: no room for a push.
    assert by_luminance < -1.0
    assert measured.meter_ev == pytest.approx(-CHANNEL_WHITE_LOG2, abs=0.02)
    # The floor moves with the light: in scene light the same subject two stops darker reads two stops darker.
    if not rendered:
        darker = measure_all(_saturated_on_black(0.25), rendered).exposure
        assert darker.meter_ev == pytest.approx(measured.meter_ev - 2.0, abs=0.02)


def test_the_channel_floor_never_brightens_a_reading_it_does_not_bind() -> None:
    # A grey scene: its brightest channel is its luminance, so the floor reads what the white point reads, and the
    # meter is the luminance meter's.
    rng = np.random.default_rng(5)
    grey = np.repeat(rng.uniform(0.01, 0.5, (300, 300, 1)).astype(np.float32), 3, axis=2)
    assert measure_all(grey, False).exposure.meter_ev == pytest.approx(exposure_ev(grey[..., 0], False), abs=1e-6)
