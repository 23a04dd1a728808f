"""Noise reduction: the noise read as it was put in, a RAW twin with a sensor's noise delivered nearer its clean twin,
a clean twin left nearly as it was, the bands and strips the picture cleaned whole, and the plan's operation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import jsonschema
import numpy as np
import pytest
import rawpy
from skimage import data as samples

from benchmarks.noise import CHART, noisy_twin
from charts.loader import load_chart
from pipeline.imaging import denoise
from pipeline.imaging.bayer import BayerFrame
from pipeline.imaging.render import (Adjustments, NoiseReduction, RenditionStrips, adjustments_from_operations,
                                     render_frame, render_rows, rows_noise)
from pipeline.kernel.errors import ConfigError
from pipeline.kernel.records import AppliedBy, ImageRecord, Operation, OperationKind
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import SCHEMA_PATH
from pipeline.planning.plan import plan_image, plan_shoot
from pipeline.planning.rules.noise import MIN_CAMERA_FRAMES, NOISE_MARGIN
from tests.planning_inputs import chart_with, image_record, lines_record, of_kind

CRW = "Canon_PowerShot_G2_CRW_0304.CRW"


def _smooth_photo() -> np.ndarray:
    """A real photo made smooth (the coffee sample, enlarged 3x): linear light, float32, with next to no grain."""
    srgb = cv2.resize(samples.coffee(), None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


@pytest.mark.parametrize("spread", [0.005, 0.01, 0.02])
def test_the_level_read_is_the_noise_put_in(spread: float) -> None:
    # White noise of a known spread in the square root of each channel: the brightness (the mean of three
    # independent roots) holds spread / sqrt(3) of it, a colour difference spread * sqrt(2).
    rng = np.random.default_rng(3)
    roots = np.sqrt(_smooth_photo()) + rng.normal(0.0, spread, (1200, 1800, 3)).astype(np.float32)
    levels = denoise.noise_levels(np.maximum(roots, 0.0) ** 2)
    assert levels is not None
    assert levels.luma == pytest.approx(spread / math.sqrt(3.0), rel=0.2)
    assert levels.red_green == pytest.approx(spread * math.sqrt(2.0), rel=0.2)
    assert levels.blue_green == pytest.approx(spread * math.sqrt(2.0), rel=0.2)


def test_nothing_to_read_on_a_clipped_or_tiny_picture() -> None:
    assert denoise.noise_levels(np.ones((200, 300, 3), np.float32)) is None  # all white: no block holds noise
    assert denoise.noise_levels(np.full((8, 8, 3), 0.2, np.float32)) is None
    with pytest.raises(ValueError, match="strength"):
        denoise.reduce_noise(np.zeros((32, 32, 3), np.float32), denoise.NoiseLevels(0.01, 0.01, 0.01), 2.5)


def test_bands_are_the_picture_cleaned_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    noisy = np.clip(_smooth_photo() + rng.normal(0.0, 0.02, (1200, 1800, 3)), 0.0, 1.0).astype(np.float32)
    levels = denoise.noise_levels(noisy)
    assert levels is not None
    banded = noisy.copy()
    denoise.reduce_noise(banded, levels)  # 3 bands of 512 rows
    monkeypatch.setattr(denoise, "BAND_ROWS", 10_000)
    whole = noisy.copy()
    denoise.reduce_noise(whole, levels)
    np.testing.assert_allclose(banded, whole, atol=1e-6)
    assert float(np.abs(whole - noisy).mean()) > 0.005  # it did something


def test_strips_of_a_noise_reduced_rendition_are_the_rendition_whole(raw_dir: Path) -> None:
    with rawpy.imread(str(raw_dir / CRW)) as raw:
        frame = BayerFrame(raw)
        whole = frame.whole()
        w, h = frame.width, frame.height
        adj = Adjustments(exposure_ev=0.3, noise=NoiseReduction(1.0, 1.0))
        box, size = (0.0, 0.0, float(w), float(h)), (w, h)
        reference = render_frame(whole, w, h, adj, box, size, "srgb", 0.5, 8, white_of_source=1.0)
        levels = rows_noise(frame.region, w, h, adj, box, size)
        assert levels is not None
        strips = RenditionStrips(w, h, 8, lambda v0, v1: render_rows(
            frame.region, w, h, adj, box, size, (v0, v1), "srgb", 0.5, 8, 0.8, 1.0, None, levels), rows_per_strip=97)
        got = np.concatenate(list(strips.strips()))
        plain = render_frame(whole, w, h, Adjustments(exposure_ev=0.3), box, size, "srgb", 0.5, 8, white_of_source=1.0)
    assert int(np.abs(got.astype(int) - reference).max()) <= 1
    assert float(np.abs(reference.astype(int) - plain).mean()) > 0.1  # the reduction changed the picture


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The astronaut sample (enlarged to 1024 px, real detail) as DNG twins: clean, and with heavy sensor noise
    (about ISO 12800), developed by postprod as a user runs it, noise reduction on and off."""
    work = tmp_path_factory.mktemp("noise")
    shoot = work / "twins"
    shoot.mkdir()
    srgb = cv2.resize(samples.astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC).astype(np.float64) / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    noisy_twin(linear, 0.0, 100, 1, shoot / "clean.dng")
    noisy_twin(linear, 0.008, 12800, 2, shoot / "heavy.dng")
    cv2.imwrite(str(shoot / "camera.jpg"), cv2.cvtColor((srgb * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    outs = {}
    for mode, noise in (("on", ""), ("off", "noise: {luminance: 0, colour: 0}")):
        chart = work / f"{mode}.yaml"
        chart.write_text(CHART % noise)
        outs[mode] = work / mode
        result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=outs[mode], executor="local", chart=str(chart)))
        assert not result.failed
    return outs


def _full(out: Path, stem: str) -> np.ndarray:
    return cv2.imread(str(out / "exports" / "twins" / "full" / f"{stem}.jpg"))


def test_a_noisy_raw_comes_out_nearer_its_clean_twin(twins: dict[str, Path]) -> None:
    clean = _full(twins["off"], "clean")
    before, after = _psnr(_full(twins["off"], "heavy"), clean), _psnr(_full(twins["on"], "heavy"), clean)
    assert after - before >= 3.0, (before, after)
    # The clean twin (no noise put in) is nearly left as it was: its grain reads under the brightness's gate, and
    # its colour moves by at most a few times the colour noise read.
    assert _psnr(_full(twins["on"], "clean"), clean) >= 40.0


def test_the_plan_reduces_a_raws_noise_and_says_what_it_read(twins: dict[str, Path]) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    doc = json.loads((twins["on"] / "instructions" / "heavy.dng.json").read_text())
    jsonschema.validate(doc, schema)
    (op,) = [o for o in doc["operations"] if o["kind"] == "reduce_noise"]
    assert op["params"] == {"luminance": 1.0, "colour": 1.0} and op["applied_by"] == "renderer"
    assert "ISO 12800" in op["reason"]
    assert "reduces the noise" in doc["xmp_note"]
    # A camera's JPEG has had its noise reduced by the camera: the chart's default leaves it; turned off, none.
    camera = json.loads((twins["on"] / "instructions" / "camera.jpg.json").read_text())
    assert not [o for o in camera["operations"] if o["kind"] == "reduce_noise"]
    off = json.loads((twins["off"] / "instructions" / "heavy.dng.json").read_text())
    assert not [o for o in off["operations"] if o["kind"] == "reduce_noise"]


def test_a_reviewer_turns_it_down() -> None:
    op = Operation(op_id="reduce_noise", kind=OperationKind.REDUCE_NOISE, params={"luminance": 1.0, "colour": 0.5},
                   reason="r", confidence=1.0, applied_by=AppliedBy.RENDERER)
    assert adjustments_from_operations([op]).noise == NoiseReduction(1.0, 0.5)
    op.review = {"status": "rejected"}
    assert adjustments_from_operations([op]).noise is None


def test_a_strength_beyond_two_stops_the_chart(tmp_path: Path) -> None:
    chart = tmp_path / "loud.yaml"
    chart.write_text("schema_version: 2\nextends: base\nnoise:\n  luminance: 3\n")
    with pytest.raises(ConfigError, match="luminance"):
        load_chart(str(chart))


def test_the_chart_says_which_sources_and_how_far() -> None:
    base = load_chart("base").chart
    raw, jpeg = image_record(iso=6400.0, noise_sigma=3.2), lines_record()
    (op,) = of_kind(plan_image(raw, base), OperationKind.REDUCE_NOISE)
    assert "ISO 6400" in op.reason and "3.2 of 255" in op.reason and op.measured == 3.2
    assert not of_kind(plan_image(jpeg, base), OperationKind.REDUCE_NOISE)
    everything = chart_with(base, "noise", sources="all", colour=0.5)
    (op,) = of_kind(plan_image(jpeg, everything), OperationKind.REDUCE_NOISE)
    assert op.params == {"luminance": 1.0, "colour": 0.5}
    assert not of_kind(plan_image(raw, chart_with(base, "noise", luminance=0.0, colour=0.0)),
                       OperationKind.REDUCE_NOISE)


def _camera_frame(iso: float, luma: float, colour: float | None = None, model: str = "noise twin") -> ImageRecord:
    spread = luma / 2.0 if colour is None else colour
    return image_record(camera_make="postprod-noise", camera_model=model, iso=iso, noise_luma=luma,
                        noise_red_green=spread, noise_blue_green=spread)


def _noise_op(record: ImageRecord) -> Operation:
    (op,) = of_kind(record.operations, OperationKind.REDUCE_NOISE)
    return op


def test_a_frame_reading_far_above_its_camera_at_its_iso_is_texture() -> None:
    base = load_chart("base").chart
    # A camera's frames read its noise over the square root of their ISO alike: six at ISO 400 about 0.004, two at
    # ISO 1600 twice that. A ninth at ISO 400 reads three times its camera (moss, gravel): a share of its reading.
    frames = [_camera_frame(400.0, 0.004 * f) for f in (0.9, 1.0, 1.0, 1.1, 1.05, 0.95)]
    frames += [_camera_frame(1600.0, 0.008), _camera_frame(1600.0, 0.0085)]
    moss = _camera_frame(400.0, 0.012, colour=0.002)
    other = [_camera_frame(400.0, 0.012, model="another body")]  # alone of its camera: nothing to compare with
    records = [*frames, moss, *other]
    plan_shoot(records, base)
    shares = _noise_op(moss).params["read_shares"]
    assert shares[0] == pytest.approx(NOISE_MARGIN * 0.004 / 0.012, rel=0.05) and shares[1:] == [1.0, 1.0]
    assert "3.0x the noise its camera reads at this ISO on 9 frames" in _noise_op(moss).reason
    assert adjustments_from_operations(moss.operations).noise.shares == tuple(shares)  # type: ignore[union-attr]
    for record in (*frames, *other):
        assert "read_shares" not in _noise_op(record).params
    # Four frames of a camera say too little of it.
    few = [_camera_frame(400.0, 0.004) for _ in range(MIN_CAMERA_FRAMES - 2)] + [_camera_frame(400.0, 0.012)]
    plan_shoot(few, base)
    assert all("read_shares" not in _noise_op(r).params for r in few)


def test_read_shares_out_of_range_are_refused() -> None:
    op = Operation(op_id="reduce_noise", kind=OperationKind.REDUCE_NOISE,
                   params={"luminance": 1.0, "colour": 1.0, "read_shares": [0.5, 1.2, 1.0]}, reason="r",
                   confidence=1.0, applied_by=AppliedBy.RENDERER)
    with pytest.raises(ValueError, match="read_shares"):
        adjustments_from_operations([op])


@pytest.fixture(scope="module")
def grass_shoot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """scikit-image's photos (300-640 px) as one camera's DNG twins at ISO 800 (light noise): four smooth ones and a
    field of grass, whose texture reads as heavy noise; and the grass twin alone, with its clean twin, in a shoot of
    its own."""
    work = tmp_path_factory.mktemp("grass")
    shoot, alone = work / "shoot", work / "alone"
    shoot.mkdir()
    alone.mkdir()
    for n, name in enumerate(("coffee", "astronaut", "chelsea", "rocket", "grass")):
        srgb = getattr(samples, name)()
        srgb = np.dstack([srgb] * 3) if srgb.ndim == 2 else srgb
        srgb = srgb / 255.0  # as the package ships them (enlarged, the grass would lose its finest blades)
        linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        noisy_twin(linear, 0.0005, 800, 10 + n, shoot / f"{name}.dng")
        if name == "grass":
            noisy_twin(linear, 0.0005, 800, 10 + n, alone / "grass.dng")
            noisy_twin(linear, 0.0, 100, 1, alone / "clean.dng")
    outs = {}
    for label, folder, noise in (("shoot", shoot, ""), ("alone", alone, ""),
                                 ("off", alone, "noise: {luminance: 0, colour: 0}")):
        chart = work / f"{label}.yaml"
        chart.write_text(CHART % noise)
        outs[label] = work / f"out-{label}"
        assert not process_shoot(RunSettings(shoot_dir=folder, out_dir=outs[label], executor="local",
                                             chart=str(chart))).failed
    return outs


def _export(out: Path, folder: str, stem: str) -> np.ndarray:
    return cv2.imread(str(out / "exports" / folder / "full" / f"{stem}.jpg"))


def test_a_field_of_grass_keeps_its_blades_beside_its_cameras_other_frames(grass_shoot: dict[str, Path]) -> None:
    doc = json.loads((grass_shoot["shoot"] / "instructions" / "grass.dng.json").read_text())
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    (op,) = [o for o in doc["operations"] if o["kind"] == "reduce_noise"]
    assert op["params"]["read_shares"][0] < 0.5 and "fine texture, not noise" in op["reason"]
    # The truth: the grass photographed without noise. Beside its camera's other frames the grass comes out nearer
    # it than alone (its whole reading taken for noise, its blades smoothed as grain).
    clean = _export(grass_shoot["off"], "alone", "clean")
    beside = _psnr(_export(grass_shoot["shoot"], "shoot", "grass"), clean)
    alone = _psnr(_export(grass_shoot["alone"], "alone", "grass"), clean)
    assert beside >= alone + 1.0, (beside, alone)
    smooth = json.loads((grass_shoot["shoot"] / "instructions" / "astronaut.dng.json").read_text())
    assert [o for o in smooth["operations"] if o["kind"] == "reduce_noise"][0]["params"] == {"luminance": 1.0,
                                                                                           "colour": 1.0}


def test_a_black_and_white_frame_is_compared_by_its_brightness_alone() -> None:
    # No colour to read (a monochrome picture): its brightness still tells its texture, its colour share stays 1.
    frames = [_camera_frame(400.0, 0.004) for _ in range(5)]
    grey = image_record(camera_make="postprod-noise", camera_model="noise twin", iso=400.0, noise_luma=0.012,
                        noise_red_green=0.0, noise_blue_green=None)
    plan_shoot([*frames, grey], load_chart("base").chart)
    shares = _noise_op(grey).params["read_shares"]
    assert shares[0] == pytest.approx(NOISE_MARGIN / 3.0, rel=0.01) and shares[1:] == [1.0, 1.0]


def test_a_frame_whose_colour_alone_reads_high_keeps_its_whole_reading() -> None:
    # A colourful scene's colour noise reads above its camera's (a dark channel's read noise): that is noise, not
    # texture, which shows in the brightness.
    frames = [_camera_frame(400.0, 0.004) for _ in range(5)]
    colourful = _camera_frame(400.0, 0.004, colour=0.02)
    plan_shoot([*frames, colourful], load_chart("base").chart)
    assert "read_shares" not in _noise_op(colourful).params
