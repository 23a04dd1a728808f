"""A darkening that only a frame's blown part asks for is proposed to a person, not applied.

Tier 1: the unclipped key on written pixels, and the rule on records; tier 2: photos scikit-image ships, as
published and under a white sky pasted over their top (a blown overcast sky: the truth is that the ground is
exposed as published), developed 1 EV over through the accuracy benchmark's camera curve too, through the real
meter, plan and renderer.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from planning_inputs import face, image_record, of_kind

from benchmarks.accuracy_corpus import (
    _package_file,
    film_curve_inverse,
    film_curve_render,
    load_photo,
    save_jpeg,
    srgb8_to_linear,
    to_srgb8,
)
from charts.loader import load_chart
from pipeline.imaging.color import luminance
from pipeline.imaging.measure.exposure import unclipped_key_ev
from pipeline.imaging.measure.metering import KEY_LOG2
from pipeline.imaging.measure.proxy import measure_all
from pipeline.imaging.render import adjustments_from_operations
from pipeline.kernel.records import RENDER_ON_ACCEPT, AppliedBy, ImageRecord, OperationKind, SourceKind
from pipeline.kernel.run import RunSettings, process_shoot
from pipeline.outputs.instructions import summary_line
from pipeline.outputs.xmp import crs_settings
from pipeline.planning.plan import plan_image

BASE = load_chart("base").chart
#: The share of the frame's top a blown sky covers in the tier-2 photos (the Kodak suite's kodim20: 49.5 %).
SKY = 0.45


def _photo(name: str) -> np.ndarray:
    src = _package_file("skimage", f"data/{name}")
    if src is None:
        pytest.fail(f"scikit-image's {name} sample is missing (pip install scikit-image)")
    return load_photo(src)


def _with_sky(srgb8: np.ndarray) -> np.ndarray:
    out = srgb8.copy()
    out[: int(SKY * out.shape[0])] = 255
    return out


def test_the_unclipped_key_reads_the_frame_without_its_blown_part() -> None:
    coffee = srgb8_to_linear(_photo("coffee.png")).astype(np.float32)
    sky = srgb8_to_linear(_with_sky(_photo("coffee.png"))).astype(np.float32)
    ground = sky[int(SKY * sky.shape[0]):]
    for rendered in (True, False):
        whole = measure_all(coffee, rendered).exposure
        blown = measure_all(sky, rendered).exposure
        # The sky moves the frame's meter up by more than the plan's tolerance; the unclipped key reads the ground
        # as it reads alone.
        assert blown.meter_ev > whole.meter_ev + BASE.exposure.tolerance_ev
        alone = unclipped_key_ev(ground, luminance(ground), None, 0.995, rendered)
        assert blown.unclipped_key_ev == pytest.approx(alone, abs=0.02)
        assert blown.clipped_highlights_pct > 40.0
    # In scene light (a RAW's proxy) the reading is linear: the ground made a stop darker reads a stop lower.
    darker = sky.copy()
    darker[int(SKY * sky.shape[0]):] *= 0.5
    moved = measure_all(darker, False).exposure.unclipped_key_ev - measure_all(sky, False).exposure.unclipped_key_ev
    assert moved == pytest.approx(-1.0, abs=0.01)
    # A frame every pixel of which is clipped has no unclipped key.
    white = np.ones((64, 64, 3), np.float32)
    assert unclipped_key_ev(white, luminance(white), None, 0.995, True) is None
    # Nothing clipped: the unclipped key is the frame's key.
    mid = np.full((64, 64, 3), 2.0**KEY_LOG2, np.float32)
    assert unclipped_key_ev(mid, luminance(mid), None, 0.995, False) == pytest.approx(0.0, abs=1e-3)


def test_a_darkening_the_blown_part_alone_asks_for_is_proposed_not_applied() -> None:
    """kodim20's readings (a plane on grass under a white overcast sky): the frame 2.27 EV over, 49.5 % clipped,
    the rest 0.63 EV under."""
    def plan(unclipped: float | None, clipped: float = 49.5, **columns: object) -> list:
        record = image_record(**{"source_path": "a.jpg", "format": "jpeg", "source_kind": SourceKind.RASTER,
                                 "exposure_meter_ev": 2.27, "exposure_unclipped_key_ev": unclipped,
                                 "clipped_highlights_pct": clipped, **columns})
        return plan_image(record, BASE)
    (op,) = of_kind(plan(-0.63), OperationKind.EXPOSURE)
    assert op.applied_by is AppliedBy.RETOUCHER and op.params[RENDER_ON_ACCEPT] is True
    assert op.params["ev"] == -BASE.exposure.max_correction_ev  # the same amount, capped as before
    assert "Proposed, not applied" in op.reason and "-0.63 EV" in op.reason
    # Pending it changes no pixel; accepted, the renderer applies it; rejected, nothing.
    assert adjustments_from_operations([op]).exposure_ev == 0.0
    accepted = dataclasses.replace(op, review={"status": "accepted", "by": "retoucher"})
    assert adjustments_from_operations([accepted]).exposure_ev == pytest.approx(op.params["ev"])
    rejected = dataclasses.replace(op, review={"status": "rejected", "by": "retoucher"})
    assert adjustments_from_operations([rejected]).exposure_ev == 0.0
    assert summary_line([op], 0) == "exposure -2.00 EV (to confirm)"
    assert summary_line([accepted], 0) == "exposure -2.00 EV"  # the renderer's now
    # The XMP carries what the exports carry: no exposure while pending, the darkening once accepted.
    doc = {"source_path": "a.jpg", "image": {"width": 3000, "height": 2000, "format": "jpeg",
                                            "source_kind": "raster", "orientation": 1}}
    def exposure_of(operation: object) -> str:
        d = {**doc, "operations": [{"op_id": "exposure", "kind": "exposure", "params": operation.params,
                                    "applied_by": str(operation.applied_by), "review": operation.review}]}
        return crs_settings(d).attrs["crs:Exposure2012"]
    assert exposure_of(op) == "0.00" and exposure_of(accepted) == "-2.00"
    # The rest over as well, as surely as the plan's gate asks of any darkening (0.9 EV: 89 % sure over the frame
    # reading's 0.735 EV spread; the chart asks 80 %): a scene developed over, the darkening applied.
    (over,) = of_kind(plan(0.9), OperationKind.EXPOSURE)
    assert over.applied_by is AppliedBy.RENDERER and RENDER_ON_ACCEPT not in over.params
    # The rest 0.5 EV over: within what well-exposed photographs read (75 % sure), proposed.
    (unsure,) = of_kind(plan(0.5), OperationKind.EXPOSURE)
    assert unsure.params.get(RENDER_ON_ACCEPT) is True
    # Clipped within the chart's limit (2 % on base): nothing blown to make the reading, the darkening applied (a
    # RAW's: a JPEG that little clipped is left as shot, bright by intent, tests/test_bright_by_intent.py).
    (little,) = of_kind(plan(-0.63, clipped=1.5, source_path="a.dng", format="dng", source_kind=SourceKind.RAW),
                        OperationKind.EXPOSURE)
    assert little.applied_by is AppliedBy.RENDERER
    # Unmeasured (an analysis from before the reading): as before.
    (old,) = of_kind(plan(None), OperationKind.EXPOSURE)
    assert old.applied_by is AppliedBy.RENDERER
    # Keyed on faces, the faces say how bright the picture is: the darkening stands.
    faces = plan(-0.63, faces=[face(1000, 800, 400, 2.0, surround_ev=2.0)])
    (keyed,) = of_kind(faces, OperationKind.EXPOSURE)
    assert keyed.applied_by is AppliedBy.RENDERER and not math.isclose(keyed.params["ev"], 0.0)


def test_a_darkening_of_a_frame_mostly_blown_is_proposed_whatever_its_rest_reads() -> None:
    """photoprism's screenshot of a white web page: 69 % clipped, the frame 3.37 EV over and its grey bars alone
    1.79 EV over; darkened 2 EV, the page turned a flat grey. Half the frame blown or more: proposed, never applied."""
    def plan(clipped: float, **columns: object) -> list:
        record = image_record(**{"source_path": "a.png", "format": "png", "source_kind": SourceKind.RASTER,
                                 "exposure_meter_ev": 3.37, "exposure_unclipped_key_ev": 1.79,
                                 "clipped_highlights_pct": clipped, **columns})
        return plan_image(record, BASE)
    (op,) = of_kind(plan(69.1), OperationKind.EXPOSURE)
    assert op.applied_by is AppliedBy.RETOUCHER and op.params[RENDER_ON_ACCEPT] is True
    assert op.params["ev"] == -BASE.exposure.max_correction_ev
    assert "69 % of the frame is clipped at white" in op.reason and "flat grey" in op.reason
    assert adjustments_from_operations([op]).exposure_ev == 0.0
    # Keyed on faces too: a darkening would grey the page around them just the same.
    (keyed,) = of_kind(plan(69.1, faces=[face(1000, 800, 400, 2.0, surround_ev=2.0)]), OperationKind.EXPOSURE)
    assert keyed.params.get(RENDER_ON_ACCEPT) is True
    # A third of it blown, the rest over as surely: a scene developed over, darkened as before.
    (third,) = of_kind(plan(33.0), OperationKind.EXPOSURE)
    assert third.applied_by is AppliedBy.RENDERER


def test_a_backlit_frame_s_clipping_flag_says_what_its_rest_reads() -> None:
    """The mirror of the blown sky: a dusk sky at white holds the frame's reading near the target (the FiveK
    balcony developed 1.5 EV under reads +0.30, 5.3 % clipped, its rest 2.10 EV under): no brightening, and the
    clipped-highlights flag says what the rest reads and what the retoucher's work is."""
    def flag(unclipped: float | None, meter: float = 0.301, clipped: float = 5.3, **columns: object) -> str:
        record = image_record(**{"source_path": "a.jpg", "format": "jpeg", "source_kind": SourceKind.RASTER,
                                 "exposure_meter_ev": meter, "exposure_unclipped_key_ev": unclipped,
                                 "clipped_highlights_pct": clipped, **columns})
        ops = plan_image(record, BASE)
        (op,) = [o for o in ops if o.params.get("check") == "clipped_highlights"]
        rest = op.params.get("rest_ev")  # the rest's reading, for a platform that routes backlit frames
        assert (rest is None) == ("backlit" not in op.reason)
        assert rest is None or f"reads {rest:+.2f} EV" in op.reason
        return op.reason
    note = flag(-2.10)
    assert note.startswith("5.3% of pixels clipped in the highlights (max 2%); the rest of the frame reads -2.10 EV:")
    assert "backlit (a sky, a window)?" in note
    # The lift itself is proposed beside it (tests/test_shadow_lift.py); where the chart proposes none, the flag asks.
    assert note.endswith("a global brightening would clip more: a lift of the shadows is proposed (lift_shadows)")
    # The rest within what well-exposed photographs read (0.5 EV under: 75 % sure over the frame reading's 0.735 EV
    # spread; the chart asks 80 %), or over, or unmeasured: the flag as before.
    for rest in (-0.5, 0.0, 0.9, None):
        assert flag(rest) == "5.3% of pixels clipped in the highlights (max 2%)"
    # Brightened by the plan already (a frame read 1.0 EV under), the rest is read after the correction.
    assert "the rest of the frame reads -1.50 EV after the correction" in flag(-2.5, meter=-1.0)
    assert flag(-1.2, meter=-1.0) == "5.3% of pixels clipped in the highlights (max 2%)"
    # Keyed on faces, they say how bright the picture is: nothing added.
    keyed = flag(-2.10, faces=[face(1000, 800, 400, 0.0, surround_ev=0.0)])
    assert "backlit" not in keyed
    # On a white backdrop (white by design: a logo or a product on white), nothing added either.
    assert "backlit" not in flag(-2.04, clipped=2.5, exposure_backdrop_pct=79.9)
    # A frame read over as surely as a darkening asks (kodim20: 2.27 EV over, 49.5 % clipped, its rest 0.63 EV
    # under): its darkening is proposed (above), and the flag does not ask for the opposite.
    assert flag(-0.63, meter=2.27, clipped=49.5) == "49.5% of pixels clipped in the highlights (max 2%)"


#: scikit-image's photos as published (a cup on a table, a cat, a motorbike, the cameraman) ...
PUBLISHED = ("coffee.png", "chelsea.png", "motorcycle_left.png", "camera.png")
#: ... and those whose ground reads a stop over when developed a stop over (the coffee table's does not: read 0.0 EV
#: without its blown part, its darkening is proposed).
DEVELOPED_OVER = ("chelsea.png", "motorcycle_left.png", "camera.png")


@pytest.fixture(scope="module")
def skies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[ImageRecord, np.ndarray, np.ndarray]]:
    """Photos under a white sky over the top 45 % of the frame, as published and developed a stop over through the
    benchmark's camera curve: name -> (record, the source's pixels, the web export's), 8-bit sRGB."""
    work = tmp_path_factory.mktemp("skies")
    shoot = work / "shoot"
    shoot.mkdir()
    for name in PUBLISHED:
        save_jpeg(shoot / f"{name[:-4]}_sky.jpg", _with_sky(_photo(name)))
    for name in DEVELOPED_OVER:
        over = film_curve_render(film_curve_inverse(srgb8_to_linear(_photo(name))) * 2.0)
        save_jpeg(shoot / f"{name[:-4]}_over_sky.jpg", _with_sky(to_srgb8(np.clip(over, 0.0, 1.0))))
    out = work / "out"
    result = process_shoot(RunSettings(shoot_dir=shoot, out_dir=out, executor="local", chart="base"))
    exports = {r["source_path"]: out / r["path"] for r in pq.read_table(out / "exports.parquet").to_pylist()}
    return {r.source_path: (r, np.asarray(Image.open(shoot / r.source_path).convert("RGB")),
                            np.asarray(Image.open(exports[r.source_path]).convert("RGB")))
            for r in result.records}


def _ground_ev(srgb8: np.ndarray) -> float:
    """log2 of the mean linear luminance of the frame's lower half (under the pasted sky)."""
    ground = srgb8[srgb8.shape[0] // 2:]
    return math.log2(float(luminance(srgb8_to_linear(ground).astype(np.float32)).mean()))


@pytest.mark.parametrize("name", PUBLISHED)
def test_a_blown_sky_over_a_photo_exposed_as_published_leaves_its_ground_as_shot(skies: dict, name: str) -> None:
    record, source, export = skies[f"{name[:-4]}_sky.jpg"]
    # The sky reads the frame over by more than the plan's gate (before: darkened by the renderer, the ground with
    # it, by 0.85-1.15 EV) ...
    assert record.exposure.meter_ev > 0.6 and record.exposure.clipped_highlights_pct > 40.0
    (op,) = of_kind(record.operations, OperationKind.EXPOSURE)
    assert op.params["ev"] < -0.6
    assert op.applied_by is AppliedBy.RETOUCHER and op.params[RENDER_ON_ACCEPT] is True
    assert any(o.params.get("check") == "clipped_highlights" for o in record.operations)
    # ... and the delivered ground keeps its brightness: the darkening proposed is not in it (the white balance,
    # which cools a brown cup and table, takes up to 0.3 EV of their luminance).
    assert _ground_ev(export) > _ground_ev(source) - 0.3


@pytest.mark.parametrize("name", DEVELOPED_OVER)
def test_a_blown_sky_over_a_ground_developed_over_is_darkened(skies: dict, name: str) -> None:
    record, source, export = skies[f"{name[:-4]}_over_sky.jpg"]
    (op,) = of_kind(record.operations, OperationKind.EXPOSURE)
    assert op.applied_by is AppliedBy.RENDERER and op.params["ev"] < -1.0
    assert _ground_ev(export) < _ground_ev(source) - 0.5


def test_a_room_series_under_blown_windows_is_kept_at_its_usual_exposure_and_flagged() -> None:
    """A listing's room shot four times (one frame a stop over, one a stop under: real_estate_interiors matches
    the series for consistency), its windows blown in every frame (30 % clipped). The series reads 1.2 EV over its
    target at the usual settings; read without the windows, 0.2 EV: the scene's key rests on the windows."""
    from dataclasses import replace

    from test_scenes import frame

    from pipeline.planning.consistency import applied_exposure
    from pipeline.planning.plan import plan_shoot

    chart = load_chart("real_estate_interiors").chart
    stops = (0.0, 1.0, -1.0, 0.0)

    def series(rest_ev: float, clipped: float = 30.0) -> dict[str, ImageRecord]:
        records = []
        for k, s in enumerate(stops):
            r = frame(f"room{k}.dng", 60 * k, level_ev=chart.exposure.target_ev + 1.2, stops=s)
            unclipped = chart.exposure.target_ev + rest_ev + s
            records.append(replace(r, exposure=replace(r.exposure, clipped_highlights_pct=clipped,
                                                       unclipped_key_ev=unclipped)))
        plan_shoot(records, chart)
        return {r.source_path: r for r in records}

    kept = series(0.2)
    for k, s in enumerate(stops):
        record = kept[f"room{k}.dng"]
        # Levelled to the series' usual settings (each frame less its own stops), not darkened beyond them.
        assert applied_exposure(record.operations) == pytest.approx(-s, abs=0.01)
        (flag,) = [o for o in record.operations if o.params.get("check") == "scene_exposure_clipping"]
        assert "1.20 EV over" in flag.reason and "+0.20 EV" in flag.reason
    # The rest over as well, surely (1.1 EV): the series is darkened to its key, no flag.
    darkened = series(1.1)
    for k, s in enumerate(stops):
        record = darkened[f"room{k}.dng"]
        assert applied_exposure(record.operations) == pytest.approx(-1.2 - s, abs=0.01)
        assert not any(o.params.get("check") == "scene_exposure_clipping" for o in record.operations)
    # The same, but most of every frame blown (60 %): a darkening would grey it; kept at the usual settings, flagged.
    blown = series(1.1, clipped=60.0)
    for k, s in enumerate(stops):
        record = blown[f"room{k}.dng"]
        assert applied_exposure(record.operations) == pytest.approx(-s, abs=0.01)
        (flag,) = [o for o in record.operations if o.params.get("check") == "scene_exposure_clipping"]
        assert "60 % clipped at white and a darkening turns most of them a flat grey" in flag.reason
